"""Malformed JetStream API requests against a live actor-nats, compared with the reference.

Each test starts actor-nats (`-js -sd <tmp> -m <port>`) and the reference (`-js -sd <tmp>`),
sets up the same stream `S` (with messages, direct gets allowed) and pull consumers `C`, `P`
(pinned-client priority group `A`) and `K` (for acks) on both, then sends every endpoint of
its group a deterministic corpus of bad bodies (not JSON, truncated JSON, JSON of the wrong
type, wrong field types, absurd numbers, huge strings, deep nesting, invalid names) and a
seeded random batch. For every request:

- actor-nats answers (a JetStream API request within a timeout; a pull request or a direct
  get before a later no-wait request, see `Client.pull_batch`), and still answers `INFO`;
- where both servers answer with an error JSON, the `error` (code, err_code, description) is
  the reference's; where both answer a pull request or a direct get with a 400/408/409
  status, the status line is the reference's.

After each group, /actorz shows no actor restarted and the server log holds no crash (nor an
exception returned to an asking actor). The reference is run first; where the servers differ,
the reference is right. Requests neither server answers (a subject with a token too many) are
left out: waiting for them would only cost time.
"""

from __future__ import annotations

import json
import random
import urllib.request

import pytest

from tests.servers import free_port
from tests.wire.proto import connect

REPLY_TIMEOUT = 5.0  # generous: only stops a broken test from hanging
NOT_ANSWERED = "no reply"


# -- a client that matches replies to requests ------------------------------------------------


class Client:
    """Request/reply over one raw connection; replies are matched by their inbox, so late
    answers to earlier requests (a pull request expiring) are skipped."""

    def __init__(self, server):
        self.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1})
        self.w.send(b"SUB _F.> 1\r\n")
        self.n = 0
        self.early: dict[bytes, tuple] = {}

    def _send(self, subject: str | bytes, body: bytes, reply: str | bytes) -> None:
        subject = subject if isinstance(subject, bytes) else subject.encode()
        reply = reply if isinstance(reply, bytes) else reply.encode()
        self.w.send(b"PUB " + subject + b" " + reply + f" {len(body)}\r\n".encode() + body + b"\r\n")

    def _inbox(self) -> str:
        self.n += 1
        return f"_F.{self.n}"

    def _read_until(self, reply: bytes, timeout: float):
        if reply in self.early:
            return self.early.pop(reply)
        while True:
            try:
                op = self.w.read_op(timeout)
            except TimeoutError:
                return NOT_ANSWERED
            got = (op.headers, op.payload)
            if op.subject == reply:
                return got
            self.early.setdefault(op.subject, got)

    def request(self, subject: str | bytes, body: bytes = b"", timeout: float = REPLY_TIMEOUT,
                reply_tail: bytes = b""):
        """(headers or None, payload) of the reply, or NOT_ANSWERED. `reply_tail` is added
        to the inbox (bytes, to write one that is not UTF-8)."""
        reply = self._inbox().encode() + reply_tail
        self._send(subject, body, reply)
        return self._read_until(reply, timeout)

    def pull_batch(self, subject: str, bodies: list[bytes], marker: tuple[str, bytes]) -> list:
        """Pull requests (or direct gets) sent one after another, then `marker`, a request
        the same consumer (or stream) answers at once: its answer comes after every immediate
        answer to the ones before. Each request's first answer that came before it, or
        NOT_ANSWERED."""
        inboxes = []
        for body in bodies:
            inboxes.append(self._inbox())
            self._send(subject, body, inboxes[-1])
        inbox = self._inbox()
        self._send(*marker, inbox)
        assert self._read_until(inbox.encode(), REPLY_TIMEOUT) != NOT_ANSWERED
        return [self.early.pop(i.encode(), NOT_ANSWERED) for i in inboxes]

    def ack_all(self, subject: str, payloads: list[bytes]) -> None:
        """Fetch len(payloads) messages from the pull consumer at `subject` and ack each with
        one of the payloads (answers to +NXT are left unread)."""
        inbox = self._inbox()
        self._send(subject, json.dumps({"batch": len(payloads), "no_wait": True}).encode(), inbox)
        acks = []
        prefix = b"$JS.ACK." + subject.split(".")[-2].encode() + b"." + subject.split(".")[-1].encode() + b"."
        while len(acks) < len(payloads):
            op = self.w.read_op(REPLY_TIMEOUT)
            if op.subject == inbox.encode():
                break  # a status: the end of what there was
            if len(op.args) == 4 and op.args[2].startswith(prefix):
                acks.append(op.args[2].decode())
        for ack, payload in zip(acks, payloads):
            self.w.send(f"PUB {ack} {len(payload)}\r\n".encode() + payload + b"\r\n")

    def publish(self, subject: str, body: bytes) -> None:
        self.request(subject, body)

    def close(self):
        self.w.close()


# -- the servers --------------------------------------------------------------------------------

SETUP = [
    ("$JS.API.STREAM.CREATE.S",
     {"name": "S", "subjects": ["s.>"], "allow_direct": True, "max_msgs_per_subject": 5}),
    ("$JS.API.CONSUMER.CREATE.S.C",
     {"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit", "max_waiting": 4096}}),
    ("$JS.API.CONSUMER.CREATE.S.P",
     {"stream_name": "S", "config": {"durable_name": "P", "ack_policy": "explicit",
                                     "priority_policy": "pinned_client", "priority_groups": ["A"]}}),
    ("$JS.API.CONSUMER.CREATE.S.K",
     {"stream_name": "S", "config": {"durable_name": "K", "ack_policy": "explicit"}}),
]


class Pair:
    """The reference and actor-nats, each with the fixture stream and consumers."""

    def __init__(self, start_server, store_dir):
        self.http_port = free_port()
        self.ref = start_server("reference", args=["-js", "-sd", str(store_dir / "reference")])
        self.actor = start_server("actor", args=["-js", "-sd", str(store_dir / "actor"),
                                                 "-m", str(self.http_port)])
        self.clients = {"reference": Client(self.ref), "actor": Client(self.actor)}
        for c in self.clients.values():
            for subject, body in SETUP:
                _, payload = c.request(subject, json.dumps(body).encode())
                assert "error" not in json.loads(payload), payload
            for i in range(20):
                c.publish(f"s.{i % 4}", f"m{i}".encode())

    def close(self):
        for c in self.clients.values():
            c.close()

    def actorz(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/actorz", timeout=5) as r:
            return {a["path"]: a for a in json.loads(r.read())["actors"]}

    def check_actor_healthy(self, context: str) -> None:
        assert self.actor.proc.poll() is None, \
            f"actor-nats exited after {context}:\n{self.actor.log()[-3000:]}"
        hdr, payload = self.clients["actor"].request("$JS.API.INFO")
        info = json.loads(payload)
        assert info["type"] == "io.nats.jetstream.api.v1.account_info_response", (context, info)

    def check_no_crash(self) -> None:
        restarted = {p: a["restarts"] for p, a in self.actorz().items() if a["restarts"]}
        log = self.actor.log()
        crashes = [line for line in log.splitlines()
                   if " crashed: " in line or "Traceback" in line or "Exception returned" in line]
        assert not restarted and not crashes, f"restarted: {restarted}\n" + "\n".join(crashes[:20])


# -- comparing answers ------------------------------------------------------------------------


# Errors whose description actor-nats words otherwise (only code and err_code are compared):
# subject transform destinations are checked by protocol/transform.py, which does not word its
# errors as the reference's ValidateMapping.
KNOWN_WORDING = {10156: "stream transform destination"}


def same_error(want: dict, got: dict) -> bool:
    if want.get("err_code") in KNOWN_WORDING:
        return (want["code"], want["err_code"]) == (got.get("code"), got.get("err_code"))
    return want == got


def api_error(resp):
    if resp == NOT_ANSWERED or resp[1][:1] != b"{":
        return None
    try:
        return json.loads(resp[1]).get("error")
    except ValueError:
        return None


def status_line(resp):
    """`400 Bad Request - ...` of a status reply, or None."""
    if resp == NOT_ANSWERED or not resp[0]:
        return None
    line = resp[0].split(b"\r\n", 1)[0].decode(errors="replace")
    return line[len("NATS/1.0 "):] or None


def show(resp) -> str:
    if resp == NOT_ANSWERED:
        return resp
    hdr, payload = resp
    return repr((hdr or b"") + payload)[:600]


def run_api(pair: Pair, requests: list[tuple], reply_tail: bytes = b"") -> list[str]:
    """Each request (subject, body) to both servers (reference first); the differences."""
    diffs = []
    for subject, body in requests:
        what = f"{subject!r} {body[:120]!r}{'...' if len(body) > 120 else ''}"
        want = pair.clients["reference"].request(subject, body, reply_tail=reply_tail)
        got = pair.clients["actor"].request(subject, body, reply_tail=reply_tail)
        if got == NOT_ANSWERED and want != NOT_ANSWERED:
            diffs.append(f"{what}: no answer from actor-nats (reference: {show(want)})")
        we, ge = api_error(want), api_error(got)
        if we is not None and ge is not None and not same_error(we, ge):
            diffs.append(f"{what}: reference {we}, actor-nats {ge}")
        pair.check_actor_healthy(what)
    return diffs


PULL_MARKER = ("$JS.API.CONSUMER.MSG.NEXT.S.C", b'{"batch":1,"no_wait":true}')
GET_MARKER = ("$JS.API.DIRECT.GET.S", b'{"seq":1}')


def run_pulls(pair: Pair, subject: str, bodies: list[bytes], marker=PULL_MARKER) -> list[str]:
    """Pull requests or direct gets (answered with status messages): both servers, statuses
    of the 4xx kinds the request itself causes compared."""
    want = pair.clients["reference"].pull_batch(subject, bodies, marker)
    got = pair.clients["actor"].pull_batch(subject, bodies, marker)
    diffs = []
    for body, w, g in zip(bodies, want, got):
        ws, gs = status_line(w), status_line(g)
        if ws and ws[:3] in ("400", "408", "409") and ws != "408 Request Timeout" and gs != ws:
            diffs.append(f"{subject} {body[:120]!r}: reference {ws!r}, actor-nats {gs!r} ({show(g)})")
    pair.check_actor_healthy(subject)
    return diffs


# -- the corpus ---------------------------------------------------------------------------------

DEEP = b"[" * 2000 + b"]" * 2000
TOO_DEEP = b"[" * 10001 + b"]" * 10001
HUGE_INT = b"9" * 5000
MALFORMED = [
    b"", b" ", b"\r\n\t", b"{}", b"[]", b"null", b"true", b"0", b"-1", b'"S"', b"{", b"}", b"[", b"{]", b'{"',
    b'{"name"', b'{"name":', b'{"name":"S"', b'{"name":"S",}', b"{'name':'S'}", b"nul", b"nulx", b"tru",
    b"{}{}", b"{} x", b"{}}", b'{"a":1}[1]', b"not json", b"\xff\xfe", b"\xef\xbb\xbf{}", b"{\xc3\xa9}",
    b'{"\xff":1}', b'{"name":"\\ud800"}', b'{"name":"\\q"}', b'{"name":"\\u12x4"}', b'{"name":"a\x01"}',
    b"{\"name\":1.}", b'{"name":-}', b'{"name":1e}', b'{"name":01}', b'{"name":NaN}', b'{"name":Infinity}',
    b'{"name":-Infinity}',
    DEEP, TOO_DEEP, b'{"name":' + DEEP + b"}", b'{"a":' * 3000 + b"1" + b"}" * 3000, b"[" * 12000,
    b'{"x":' + HUGE_INT + b"}", b"1" + HUGE_INT, b'"' + b"x" * 100_000 + b'"',
]


def wrong_types(fields: list[str], extra: list[bytes] = ()) -> list[bytes]:
    """Each field with each kind of JSON value, absurd numbers and unicode."""
    values = [b"null", b"true", b"-1", b"0", b"1.5", b"1e3", b"-0", b"18446744073709551616",
              b"9223372036854775808", b"-9223372036854775809", HUGE_INT, b'"x"', b'"\\u00e9\\ud83d\\ude00"',
              b'""', b"[]", b"[null]", b"[1]", b'["a", null]', b"{}", b'{"a":null}', b'{"a":1}', DEEP]
    out = []
    for f in fields:
        for v in values:
            out.append(b'{"' + f.encode() + b'":' + v + b"}")
    return out + list(extra)


STREAM_FIELDS = ["name", "description", "subjects", "retention", "max_consumers", "max_msgs", "max_bytes",
                 "max_age", "max_msgs_per_subject", "max_msg_size", "discard", "storage", "num_replicas",
                 "duplicate_window", "placement", "mirror", "sources", "compression", "first_seq",
                 "subject_transform", "republish", "consumer_limits", "metadata", "persist_mode",
                 "subject_delete_marker_ttl", "sealed", "pedantic"]
CONSUMER_FIELDS = ["durable_name", "name", "deliver_policy", "opt_start_seq", "opt_start_time", "ack_policy",
                   "ack_wait", "max_deliver", "backoff", "filter_subject", "filter_subjects", "replay_policy",
                   "sample_freq", "max_waiting", "max_ack_pending", "max_batch", "max_expires", "max_bytes",
                   "deliver_subject", "idle_heartbeat", "inactive_threshold", "num_replicas", "metadata",
                   "pause_until", "priority_groups", "priority_policy", "priority_timeout"]


def stream_bodies(name: str) -> list[bytes]:
    """STREAM.CREATE/UPDATE bodies for stream `name` (wrong types inside a valid request)."""
    n = json.dumps(name).encode()
    out = []
    for body in wrong_types(STREAM_FIELDS):
        if body.startswith(b'{"name":'):
            out.append(body)
        else:
            out.append(b'{"name":' + n + b"," + body[1:])
    for extra in ({"subjects": ["a b"]}, {"subjects": ["*.>"], "no_ack": True}, {"subjects": [""]},
                  {"description": "d" * 5000}, {"metadata": {"k": "v" * 200_000}}, {"subjects": ["s.>"]},
                  {"sources": [None]}, {"sources": [{"name": "a.b"}]},
                  {"mirror": {"name": "S", "external": None}},
                  {"mirror": {"name": "S", "opt_start_time": "0000-01-01T00:00:00Z"}},
                  {"sources": [{"name": "S", "subject_transforms": [None]}]}, {"max_age": 2**63 - 1},
                  {"duplicate_window": -(2**63)}, {"first_seq": 2**64 - 1},
                  {"subject_transform": {"dest": "{{x}}"}},
                  {"republish": {"src": ">", "dest": "{{wildcard(9)}}"}}, {"placement": {"tags": [None]}},
                  {"consumer_limits": None}, {"metadata": {"\ud800": "x"}}, {"description": "é" * 3000},
                  {"metadata": {"a": "é" * 70000}}):
        out.append(json.dumps(dict({"name": name}, **extra)).encode())
    return out


def consumer_bodies(stream: str, durable: str | None) -> list[bytes]:
    out = []
    base = {"stream_name": stream}
    for body in wrong_types(CONSUMER_FIELDS):
        cfg = json.loads(body) if DEEP not in body and HUGE_INT not in body else None
        if cfg is None:
            out.append(b'{"stream_name":"' + stream.encode() + b'","config":' + body + b"}")
            continue
        if durable and "durable_name" not in cfg:
            cfg["durable_name"] = durable
        out.append(json.dumps(dict(base, config=cfg)).encode())
    for extra in ({"config": None}, {"config": []}, {"action": None}, {"action": "x"}, {"action": 5},
                  {"stream_name": None}, {"stream_name": 5}, {"pedantic": "x"},
                  {"config": {"durable_name": "a.b"}}, {"config": {"name": "a b"}},
                  {"config": {"durable_name": "x" * 300}},
                  {"config": {"pause_until": "0001-01-01T00:00:00+01:00"}},
                  {"config": {"pause_until": "9999-12-31T23:59:59-01:00"}},
                  {"config": {"pause_until": "2020-01-01T00:00:00+24:00"}},
                  {"config": {"opt_start_time": "2020-01-01T00:00:00+24:00",
                              "deliver_policy": "by_start_time"}},
                  {"config": {"opt_start_time": "0000-01-01T00:00:00Z", "deliver_policy": "by_start_time"}},
                  {"config": {"backoff": [None, -1]}}, {"config": {"sample_freq": "9" * 5000}},
                  {"config": {"sample_freq": "\u0661"}}, {"config": {"metadata": {"a": None}}},
                  {"config": {"deliver_subject": "\ud800"}}, {"config": {"filter_subjects": [None]}},
                  {"config": {"durable_name": "é" * 200}}, {"config": {"description": "é" * 3000}},
                  {"config": {"metadata": {"a": "é" * 70000}}}):
        out.append(json.dumps(dict(base, **extra)).encode())
    return out


def random_json(rng: random.Random, keys: list[str], depth: int = 0):
    r = rng.random()
    if depth > 3 or r < 0.45:
        return rng.choice([None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63) - 1, 2**64, 1.5, -0.0, "",
                           "S", "C", "a.b", "*", ">", "é", "\ud83d\ude00", "x" * rng.randint(0, 200),
                           rng.randint(-10**20, 10**20), "1s", "2024-01-01T00:00:00Z", "explicit", "limits",
                           "pinned_client", "memory", "s2", "new", "all"])
    if r < 0.65:
        return [random_json(rng, keys, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(keys + ["x", "Name", "NAME"]): random_json(rng, keys, depth + 1)
            for _ in range(rng.randint(0, 5))}


def random_bodies(seed: int, keys: list[str], n: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = json.dumps(random_json(rng, keys), ensure_ascii=rng.random() < 0.5)
        body = text.encode("utf-8", "surrogatepass")
        r = rng.random()
        if r < 0.15:
            body = body[:rng.randint(0, len(body))]
        elif r < 0.25:
            i = rng.randint(0, len(body))
            body = body[:i] + bytes([rng.randint(0, 255)]) + body[i:]
        out.append(body)
    return out


BAD_NAMES = ["*", ">", "é", "x" * 300, "a\\b", "NOPE"]

# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture
def pair(start_server, tmp_path):
    p = Pair(start_server, tmp_path)
    yield p
    p.close()


def finish(pair: Pair, diffs: list[str]) -> None:
    pair.check_no_crash()
    assert not diffs, f"{len(diffs)} differences from the reference:\n" + "\n".join(diffs[:40])


def test_stream_create_and_update(pair):
    requests = []
    for body in MALFORMED + stream_bodies("F") + random_bodies(1, STREAM_FIELDS, 60):
        requests.append(("$JS.API.STREAM.CREATE.F", body))
    for body in MALFORMED + stream_bodies("S") + random_bodies(2, STREAM_FIELDS, 40):
        requests.append(("$JS.API.STREAM.UPDATE.S", body))
    # (a name of two tokens, `a.b`, makes a subject neither server answers)
    for name in ["*", ">", "é", "x" * 300, "é" * 200, "a\\b"]:
        for body in (b"", json.dumps({"name": name}).encode()):
            requests.append((f"$JS.API.STREAM.CREATE.{name}", body))
            requests.append((f"$JS.API.STREAM.UPDATE.{name}", body))
    finish(pair, run_api(pair, requests))


def test_stream_requests(pair):
    paged = ["offset", "subject", "deleted_details", "subjects_filter"]
    requests = []
    for op in ("STREAM.NAMES", "STREAM.LIST"):
        for body in MALFORMED + wrong_types(["offset", "subject"]) + random_bodies(3, paged, 15):
            requests.append((f"$JS.API.{op}", body))
    for body in MALFORMED + wrong_types(paged) + random_bodies(4, paged, 15):
        requests.append(("$JS.API.STREAM.INFO.S", body))
    purge = ["filter", "seq", "keep"]
    for body in MALFORMED + wrong_types(purge) + random_bodies(5, purge, 15):
        requests.append(("$JS.API.STREAM.PURGE.NOPE", body))
        if not body.strip() or body == b"{}":
            continue
        requests.append(("$JS.API.STREAM.PURGE.S", body))
    get_fields = ["seq", "last_by_subj", "next_by_subj", "batch", "max_bytes", "start_time", "multi_last",
                  "up_to_seq", "up_to_time", "no_hdr"]
    for body in MALFORMED + wrong_types(get_fields) + random_bodies(6, get_fields, 25):
        requests.append(("$JS.API.STREAM.MSG.GET.S", body))
    for body in MALFORMED + wrong_types(["seq", "no_erase"]) + random_bodies(7, ["seq", "no_erase"], 15):
        requests.append(("$JS.API.STREAM.MSG.DELETE.S", body))
    for body in MALFORMED[:12] + [b'{"x":1}', b"[1]", DEEP]:
        requests.append(("$JS.API.STREAM.DELETE.NOPE", body))
        requests.append(("$JS.API.STREAM.SNAPSHOT.NOPE", body))
        requests.append(("$JS.API.STREAM.SNAPSHOT.S", body))
        requests.append(("$JS.API.STREAM.LEADER.STEPDOWN.S", body))
        requests.append(("$JS.API.CONSUMER.LEADER.STEPDOWN.S.C", body))
    # a restore of the existing stream: no request that passes the checks opens a transfer
    # (the reference would wait for its chunks when it stops)
    for body in MALFORMED + [b'{"config":null}', b'{"config":[]}', b'{"config":{"name":"R2"}}',
                             b'{"config":5}', b'{"config":{"name":"S","subjects":[null]}}',
                             b'{"config":' + DEEP + b"}", b'{"state":{"messages":-1}}']:
        requests.append(("$JS.API.STREAM.RESTORE.S", body))
    for name in BAD_NAMES:
        for op in ("STREAM.INFO", "STREAM.PURGE", "STREAM.DELETE", "STREAM.MSG.GET", "STREAM.MSG.DELETE"):
            requests.append((f"$JS.API.{op}.{name}", b""))
    requests.append(("$JS.API.STREAM.MSG.DELETE.S", b'{"seq":1}'))
    requests.append(("$JS.API.STREAM.PURGE.S", b'{"seq":3}'))
    finish(pair, run_api(pair, requests))


def test_consumer_create(pair):
    requests = []
    forms = [("$JS.API.CONSUMER.CREATE.S", None), ("$JS.API.CONSUMER.CREATE.S.D1", "D1"),
             ("$JS.API.CONSUMER.CREATE.S.D2.s.1", "D2"), ("$JS.API.CONSUMER.DURABLE.CREATE.S.D3", "D3")]
    for i, (subject, durable) in enumerate(forms):
        bodies = MALFORMED + consumer_bodies("S", durable) + random_bodies(10 + i, CONSUMER_FIELDS + [
            "stream_name", "config", "action"], 30)
        requests += [(subject, b) for b in bodies]
    # (DURABLE.CREATE with a token too few or too many is not answered, by either server)
    for tail in ("S.*", "S.>", "S.a.*", "NOPE.X", "S.é", "*"):
        subject = "$JS.API.CONSUMER.CREATE." + tail
        for body in (b"", b'{"stream_name":"S","config":{}}',
                     b'{"stream_name":"S","config":{"durable_name":"X"}}'):
            requests.append((subject, body))
    long_name = "é" * 200  # 400 bytes: too long for the reference, whose limit counts bytes
    body = json.dumps({"stream_name": "S", "config": {"durable_name": long_name}}).encode()
    for form in ("DURABLE.CREATE", "CREATE"):
        requests.append((f"$JS.API.CONSUMER.{form}.S.{long_name}", body))
    finish(pair, run_api(pair, requests))


def test_consumer_requests(pair):
    requests = []
    for op in ("CONSUMER.NAMES.S", "CONSUMER.LIST.S", "CONSUMER.NAMES.NOPE"):
        for body in MALFORMED + wrong_types(["offset"]) + random_bodies(20, ["offset"], 10):
            requests.append((f"$JS.API.{op}", body))
    for op in ("CONSUMER.INFO.S.C", "CONSUMER.DELETE.S.NOPE", "CONSUMER.INFO.NOPE.C"):
        for body in MALFORMED[:16] + [b'{"x":1}', b"[1]", DEEP]:
            requests.append((f"$JS.API.{op}", body))
    pause = wrong_types(["pause_until"], [json.dumps({"pause_until": t}).encode() for t in (
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z",
        "2020-13-01T00:00:00Z", "2020-02-30T00:00:00Z", "2020-01-01T24:00:00Z", "2020-01-01T00:00:00+99:99",
        "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2020-01-01t00:00:00z", "2020-01-01T00:00:00+24:00",
        "2020-01-01T00:00:00+24:60", "\u0662\u0660\u0662\u0660-01-01T00:00:00Z")])
    for body in MALFORMED + pause + random_bodies(21, ["pause_until"], 10):
        requests.append(("$JS.API.CONSUMER.PAUSE.S.C", body))
        requests.append(("$JS.API.CONSUMER.PAUSE.S.NOPE", body))
    requests.append(("$JS.API.CONSUMER.PAUSE.S.C", b"{}"))
    for body in MALFORMED + wrong_types(["group"]) + random_bodies(22, ["group"], 10) + [
            b'{"group":"A"}', b'{"group":"B"}', b'{"group":"' + b"x" * 20 + b'"}', b'{"group":"a b"}']:
        requests.append(("$JS.API.CONSUMER.UNPIN.S.P", body))
        requests.append(("$JS.API.CONSUMER.UNPIN.S.C", body))
    for name in BAD_NAMES:
        for op in ("CONSUMER.INFO.S", "CONSUMER.DELETE.S", "CONSUMER.PAUSE.S", "CONSUMER.UNPIN.S",
                   "CONSUMER.NAMES", "CONSUMER.LIST"):
            requests.append((f"$JS.API.{op}.{name}", b""))
    for body in MALFORMED[:10]:
        requests.append(("$JS.API.INFO", body))
    finish(pair, run_api(pair, requests))


def test_consumer_name_longer_than_a_file_name(pair):
    body = json.dumps({"stream_name": "S", "config": {"name": "x" * 300}}).encode()
    finish(pair, run_api(pair, [("$JS.API.CONSUMER.CREATE.S", body)]))


def test_subjects_that_are_not_utf8(pair):
    diffs = run_api(pair, [(b"$JS.API.STREAM.INFO.\xff", b""), (b"$JS.API.DIRECT.GET.S.s.\xff", b"")])
    diffs += run_api(pair, [("$JS.API.STREAM.INFO.S", b"")], reply_tail=b".\xff")  # the reply subject
    finish(pair, diffs)


def test_pull_requests_and_direct_gets(pair):
    pull_fields = ["batch", "expires", "max_bytes", "no_wait", "idle_heartbeat", "group", "min_pending",
                   "min_ack_pending", "id", "priority"]
    pulls = MALFORMED + wrong_types(pull_fields) + random_bodies(30, pull_fields, 60) + [
        b"5", b" 5 ", b"+5", b"-5", b"0", HUGE_INT, "\u0661\u0662".encode(), b"1e3", b"99999999999999999999",
        b'{"idle_heartbeat":5000000000000000000}',
        b'{"batch":1,"expires":1000000000,"idle_heartbeat":600000000}',
        b'{"batch":1} x', b'{"batch":1}{"batch":2}', b'{"expires":null,"idle_heartbeat":5}']
    diffs = run_pulls(pair, "$JS.API.CONSUMER.MSG.NEXT.S.C", pulls)
    diffs += run_pulls(pair, "$JS.API.CONSUMER.MSG.NEXT.S.P", pulls[:60] + [
        b'{"batch":1,"group":"A","priority":10}', b'{"batch":1,"group":"A","min_pending":5}',
        b'{"batch":1,"group":"B"}', b'{"batch":1,"group":"A","id":"x"}'],
                       marker=("$JS.API.CONSUMER.MSG.NEXT.S.P", b'{"batch":1,"no_wait":true,"group":"A"}'))
    get_fields = ["seq", "last_by_subj", "next_by_subj", "batch", "max_bytes", "start_time", "multi_last",
                  "up_to_seq", "up_to_time", "no_hdr"]
    gets = MALFORMED + wrong_types(get_fields) + random_bodies(31, get_fields, 40) + [
        b'{"last_by_subj":"\\ud800"}', b'{"multi_last":["\\udfff"]}',
        b'{"seq":1,"start_time":"0000-01-01T00:00:00Z"}']
    diffs += run_pulls(pair, "$JS.API.DIRECT.GET.S", gets, GET_MARKER)
    diffs += run_pulls(pair, "$JS.API.DIRECT.GET.S.s.1", gets[:60], GET_MARKER)
    acks = [b"-NAK " + b for b in (b"[" * 3000, b'{"delay":' + HUGE_INT + b"}", b'{"delay":null}',
                                    b"9" * 30 + b"s", b'{"delay":' + DEEP + b"}", b"\xff",
                                    b'{"delay":1}{"delay":2}')]
    acks += [b"+NXT " + b for b in pulls[:30]] + [b"+TERM \xff", b"+WPI", b"\xff"]
    for c in pair.clients.values():
        for i in range(len(acks)):
            c.publish(f"s.k.{i}", b"k")
        c.ack_all("$JS.API.CONSUMER.MSG.NEXT.S.K", acks)
    # the consumer has taken the acks before it answers this
    _, info = pair.clients["actor"].request("$JS.API.CONSUMER.INFO.S.K")
    assert "error" not in json.loads(info), info
    pair.check_actor_healthy("acks")
    finish(pair, diffs)
