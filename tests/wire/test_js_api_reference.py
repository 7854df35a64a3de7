"""Differential tests of protocol/jsapi.py against the reference server.

Each case is sent to a JetStream-enabled reference nats-server (STREAM.CREATE or CONSUMER.CREATE);
our pure functions must produce the same `config` for a valid request (time- and server-
dependent fields aside) and the same error (code, err_code, description) for an invalid one.
These run against the reference binary only: skipped when AN_IMPL selects actor-nats alone.
"""

from __future__ import annotations

import json
import socket

import pytest

from actor_nats.protocol import jsapi
from actor_nats.protocol.jserrors import ApiError
from tests.servers import Server, selected_impls

pytestmark = pytest.mark.skipif("reference" not in selected_impls(),
                                reason="differential tests need the reference binary (AN_IMPL)")


class Requester:
    """A raw NATS connection that sends requests and returns the JSON replies."""

    def __init__(self, srv: Server):
        self.sock = srv.connect()
        self.sock.settimeout(5)
        self.buf = b""
        self.n = 0
        self._line()
        self.sock.sendall(b'CONNECT {"verbose":false,"headers":true,"protocol":1}\r\n'
                          b"SUB _R.> 1\r\nPING\r\n")
        while self._line() != b"PONG":
            pass

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, subject: str, body: bytes) -> dict:
        self.n += 1
        reply = f"_R.{self.n}"
        self.sock.sendall(f"PUB {subject} {reply} {len(body)}\r\n".encode() + body + b"\r\n")
        while True:
            line = self._line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            if line.startswith(b"MSG "):
                parts = line.split()
                data = self._exact(int(parts[-1]) + 2)[:-2]
                if parts[1].decode() == reply:
                    return json.loads(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    sd = tmp_path_factory.mktemp("js")
    srv = Server("reference", args=["-js", "-sd", str(sd)])
    req = Requester(srv)
    yield req
    req.close()
    srv.stop()


def body_of(case) -> bytes:
    return case if isinstance(case, bytes) else json.dumps(case).encode()


def ours_stream(subject_name: str, body: bytes) -> dict:
    try:
        req = jsapi.decode_stream_request(body)
        jsapi.check_stream_create_request(subject_name, req)
        return {"config": jsapi.with_dynamic_metadata(jsapi.normalize_stream_config(req))}
    except ApiError as e:
        return {"error": e.to_json()}


def theirs(resp: dict) -> dict:
    if "error" in resp:
        return {"error": resp["error"]}
    return {"config": resp["config"]}


S = "S"
STREAM_CASES = [
    {"name": S},
    {"name": S, "subjects": ["a.>", "b.*"], "max_age": 10**9, "retention": "workqueue", "storage": "memory"},
    {"name": S, "max_age": 60 * 10**9},
    {"name": S, "max_msgs": -5, "max_bytes": 0, "max_msg_size": -7, "max_consumers": 0},
    {"name": S, "discard": "NEW"},
    {"name": S, "subjects": []},
    b'{"name":"S","subjects":null}',
    {"name": S, "sources": [{"name": "A"}]},
    {"name": S, "mirror": {"name": "A"}},
    {"name": S, "metadata": {"a": "b"}, "allow_msg_ttl": True},
    {"name": S, "subject_delete_marker_ttl": 10**9},
    {"name": S, "placement": {}},
    {"name": S, "consumer_limits": {"max_ack_pending": 5, "inactive_threshold": 10**9}},
    {"name": S, "first_seq": 5, "no_ack": True},
    {"name": S, "retention": "interest", "description": "d", "allow_direct": True},
    {"name": S, "allow_msg_counter": True},
    {"name": S, "subjects": ["$JS.EVENT.x"]},
    {"name": S, "republish": {"dest": "rp.x", "src": "S"}},
    {"name": S, "subjects": ["a.*"], "republish": {"dest": "rp.$1", "src": "a.*"}},
    {"name": S, "subject_transform": {"src": "S", "dest": "T"}},
    {"name": S, "duplicate_window": 5 * 10**9, "max_age": 10 * 10**9},
    {"name": S, "discard": "new", "discard_new_per_subject": True, "max_msgs_per_subject": 3},
    # invalid
    b"", b"{", b'{"name":"S",}', b"not json", b"[]", b'{"name":"S"} x',
    {"name": S, "foo": 1},
    {"name": S, "retention": "foo"},
    {"name": S, "retention": "Limits"},
    {"name": S, "storage": "disk"},
    {"name": S, "compression": "gzip"},
    {"name": S, "max_msgs": "10"},
    {"name": S, "max_msgs": 1.5},
    {"name": S, "max_msgs": 99999999999999999999},
    {"name": S, "max_msg_size": 99999999999},
    {"name": S, "subjects": "a"},
    {"name": S, "duplicate_window": "1s"},
    {"name": S, "num_replicas": 3},
    {"name": S, "num_replicas": 9},
    {"name": S, "num_replicas": -1},
    {"name": S, "max_age": -1},
    {"name": S, "max_age": 1000},
    {"name": S, "max_age": 10**9, "duplicate_window": 2 * 10**9},
    {"name": S, "duplicate_window": 1000},
    {"name": S, "subjects": ["a.*", "a.b"]},
    {"name": S, "subjects": ["a", "a"]},
    {"name": S, "subjects": ["a..b"]},
    {"name": S, "subjects": ["a b"]},
    {"name": S, "subjects": [">"]},
    {"name": S, "subjects": ["$JS.API.>"]},
    {"name": S, "subjects": ["$SYS.x"]},
    {"name": "X"},
    {"name": S, "sealed": True},
    {"name": S, "mirror_direct": True},
    {"name": S, "mirror": {"name": "O"}, "subjects": ["q"]},
    {"name": S, "mirror": {"name": "O"}, "first_seq": 3},
    {"name": S, "mirror": {"name": "O"}, "sources": [{"name": "P"}]},
    {"name": S, "sources": [{"name": "A"}, {"name": "A"}]},
    {"name": S, "sources": [{"name": "A.b"}]},
    {"name": S, "deny_purge": True, "allow_rollup_hdrs": True},
    {"name": S, "max_msgs_per_subject": 0, "discard": "new", "discard_new_per_subject": True},
    {"name": S, "discard_new_per_subject": True, "max_msgs_per_subject": 2},
    {"name": S, "description": "x" * 5000},
    {"name": S, "persist_mode": "async", "storage": "memory"},
    {"name": S, "placement": {"preferred": "x"}},
    {"name": S, "subjects": ["a"], "pedantic": True, "max_msgs": -3},
    {"name": S, "allow_msg_counter": True, "discard": "new"},
    {"name": S, "subject_delete_marker_ttl": 5},
    {"name": S, "republish": {"dest": "S"}},
    {"name": S, "republish": {"dest": "rp.>", "src": "S"}},
]


@pytest.mark.parametrize("case", STREAM_CASES, ids=[str(i) for i in range(len(STREAM_CASES))])
def test_stream_create_matches_reference(ref, case):
    body = body_of(case)
    name = "X" if case == {"name": "X"} else S
    resp = ref.request(f"$JS.API.STREAM.CREATE.{S}", body)
    if "config" in resp:
        ref.request(f"$JS.API.STREAM.DELETE.{S}", b"")
    assert ours_stream(S, body) == theirs(resp), name


CONSUMER_STREAMS = {
    "S": {"name": "S", "subjects": ["s.>"]},
    "W": {"name": "W", "subjects": ["w.>"], "retention": "workqueue"},
    "L": {"name": "L", "subjects": ["l.>"], "consumer_limits": {"max_ack_pending": 10,
                                                                  "inactive_threshold": 10**10}},
}

CONSUMER_CASES = [
    ("CREATE.S.C", {"stream_name": "S", "config": {}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"ack_policy": "explicit"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"ack_policy": "explicit", "deliver_subject": "d.x"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"ack_policy": "all"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit",
                                                    "backoff": [10**9, 2 * 10**9], "max_deliver": 5}}),
    ("CREATE.S.C.s.a", {"stream_name": "S", "config": {"filter_subject": "s.a"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"filter_subject": "x.y"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"filter_subjects": ["s.a", "s.b"]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_policy": "by_start_time",
                                                    "opt_start_time": "2020-01-02T03:04:05.1+01:00"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_policy": "by_start_sequence", "opt_start_seq": 3}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"name": "Z"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"durable_name": "C", "name": "Z"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"priority_policy": "pinned_client", "priority_groups": ["g"]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"sample_freq": "50%", "ack_policy": "explicit",
                                                    "max_ack_pending": -5, "max_waiting": -3}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"pause_until": "2030-01-01T00:00:00Z", "metadata": {"k": "v"}}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "d.x", "idle_heartbeat": 10**9,
                                                    "flow_control": True}}),
    ("DURABLE.CREATE.S.D", {"stream_name": "S", "config": {"durable_name": "D"}}),
    ("CREATE.S", {"stream_name": "S", "config": {"deliver_subject": "d.y"}}),
    ("CREATE.L.C", {"stream_name": "L", "config": {"ack_policy": "explicit"}}),
    ("CREATE.W.C", {"stream_name": "W", "config": {"ack_policy": "explicit"}}),
    # invalid
    ("CREATE.S.C", b"{"),
    ("CREATE.S.C", {"stream_name": "S", "config": {"ack_wait": "1s"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"max_deliver": True}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"name": 5}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"backoff": [1.5]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"metadata": {"a": 1}}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"opt_start_time": "bad"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"zz": 1}}),
    ("CREATE.S.C", {"stream_name": "S", "zz": 1}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"ack_policy": "bogus"}}),
    ("CREATE.S.C", {"stream_name": "S", "action": "bogus"}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"priority_policy": "bogus"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"durable_name": "D"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"filter_subject": "s.a", "filter_subjects": ["s.b"]}}),
    ("CREATE.S.C.s.a", {"stream_name": "S", "config": {"filter_subjects": ["s.b"]}}),
    ("CREATE.S.C.s.a", {"stream_name": "S", "config": {"filter_subject": "s.b"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"filter_subjects": ["s.>", "s.a"]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"filter_subjects": [""]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_policy": "by_start_sequence"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"opt_start_seq": 4}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_policy": "last_per_subject"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"idle_heartbeat": 10**9}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "d.x", "max_waiting": 5}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "d.*"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "s.x"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "d.x", "flow_control": True}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "d.x", "idle_heartbeat": 10}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"deliver_subject": "d.x", "max_ack_pending": 5}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"backoff": [1, 2, 3], "max_deliver": 2, "ack_policy": "explicit"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"rate_limit_bps": 5}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"max_expires": 10}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"priority_groups": ["g"]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"priority_policy": "overflow"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"priority_policy": "overflow", "priority_groups": ["bad group"]}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"sample_freq": "x%"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"description": "d" * 5000}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"ack_wait": -5, "ack_policy": "explicit"}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"num_replicas": 3}}),
    ("CREATE.S.C", {"stream_name": "T", "config": {}}),
    ("CREATE.S", {"stream_name": "S", "config": {"durable_name": "X"}}),
    ("DURABLE.CREATE.S.D", {"stream_name": "S", "config": {}}),
    ("DURABLE.CREATE.S.D", {"stream_name": "S", "config": {"durable_name": "E"}}),
    ("CREATE.S.a*b", {"stream_name": "S", "config": {}}),
    ("CREATE.Q.C", {"stream_name": "Q", "config": {}}),
    ("CREATE.W.C", {"stream_name": "W", "config": {}}),
    ("CREATE.W.C", {"stream_name": "W", "config": {"ack_policy": "explicit", "deliver_policy": "new"}}),
    ("CREATE.L.C", {"stream_name": "L", "config": {"ack_policy": "explicit", "max_ack_pending": 50}}),
    ("CREATE.L.C", {"stream_name": "L", "config": {"inactive_threshold": 10**11}}),
    ("CREATE.S.C", {"stream_name": "S", "config": {"max_deliver": -5}, "pedantic": True}),
]


def ours_consumer(subject: str, body: bytes) -> dict:
    try:
        cc = jsapi.parse_consumer_create("$JS.API.CONSUMER." + subject, body)
        if cc.stream not in streams_normalized:
            from actor_nats.protocol.jserrors import JSStreamNotFoundError
            raise JSStreamNotFoundError()
        scfg = streams_normalized[cc.stream]
        cfg = jsapi.normalize_consumer_config(scfg, cc.config, pedantic=cc.pedantic)
        if scfg["retention"] == "workqueue":
            jsapi.check_workqueue_consumer(cfg, [])
        jsapi.check_consumer_name(cfg, cfg.get("name") or "generated")
        return {"config": jsapi.with_dynamic_metadata(cfg)}
    except ApiError as e:
        return {"error": e.to_json()}


streams_normalized = {name: jsapi.normalize_stream_config(cfg) for name, cfg in CONSUMER_STREAMS.items()}


@pytest.fixture(scope="module")
def ref_streams(ref):
    for name, cfg in CONSUMER_STREAMS.items():
        resp = ref.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(cfg).encode())
        assert "config" in resp, resp
        ours = jsapi.with_dynamic_metadata(streams_normalized[name])
        assert ours == resp["config"]
    return ref


@pytest.mark.parametrize("case", CONSUMER_CASES, ids=[str(i) for i in range(len(CONSUMER_CASES))])
def test_consumer_create_matches_reference(ref_streams, case):
    subject, req = case
    body = body_of(req)
    resp = ref_streams.request("$JS.API.CONSUMER." + subject, body)
    if "config" in resp:
        ref_streams.request(f"$JS.API.CONSUMER.DELETE.{resp['stream_name']}.{resp['name']}", b"")
    got = ours_consumer(subject, body)
    want = theirs(resp)
    if subject.count(".") == 1 and "config" in want:
        # a legacy ephemeral: the reference generates the name
        want["config"].pop("name", None)
    assert got == want


def test_pub_ack_matches_reference(ref_streams):
    ref = ref_streams
    hdr = b"NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n"
    acks = []
    for _ in range(2):
        ref.n += 1
        reply = f"_R.{ref.n}"
        ref.sock.sendall(f"HPUB s.pub {reply} {len(hdr)} {len(hdr) + 1}\r\n".encode() + hdr + b"x\r\n")
        acks.append(_read_reply(ref, reply))
    seq = json.loads(acks[0])["seq"]
    assert acks[0] == jsapi.pub_ack("S", seq)
    assert acks[1] == jsapi.pub_ack("S", seq, duplicate=True)


def _read_reply(ref: Requester, reply: str) -> bytes:
    while True:
        line = ref._line()
        if line.startswith(b"MSG "):
            parts = line.split()
            data = ref._exact(int(parts[-1]) + 2)[:-2]
            if parts[1].decode() == reply:
                return data
        elif line == b"PING":
            ref.sock.sendall(b"PONG\r\n")
