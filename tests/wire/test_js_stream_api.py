"""JetStream stream API and publish acks over raw sockets, compared between actor-nats and the
reference: each script of requests runs against both servers (`-js -sd <tmp>`), and every
response must be the same once times and server ids are masked (JSON compared as dicts, in
key order; PubAcks and direct-get headers compared as bytes).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time

import pytest

from tests.wire.proto import connect

TIME = re.compile(rb'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z')
SERVER_ID = re.compile(rb'N[A-Z0-9]{55}')


def js_server(start_server, impl: str, extra=()):
    return start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-js-"), *extra])


class Requester:
    """Request/reply over one raw connection (headers on, no_responders on)."""

    def __init__(self, server):
        self.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1})
        self.w.send(b"SUB _INBOX.t.* 1\r\n")
        self.n = 0

    def request(self, subject: str, body: bytes = b"", headers: dict | None = None, timeout: float = 2.0):
        """(header block or None, payload) of the reply, or "timeout"."""
        self.n += 1
        reply = f"_INBOX.t.{self.n}"
        if headers:
            hdr = b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
            self.w.send(f"HPUB {subject} {reply} {len(hdr)} {len(hdr) + len(body)}\r\n".encode() + hdr + body + b"\r\n")
        else:
            self.w.send(f"PUB {subject} {reply} {len(body)}\r\n".encode() + body + b"\r\n")
        try:
            op = self.w.read_op(timeout)
        except TimeoutError:
            return "timeout"
        assert op.subject == reply.encode()
        return op.headers, op.payload

    def close(self):
        self.w.close()


def masked(resp):
    if resp == "timeout":
        return resp
    hdr, payload = resp
    hdr = SERVER_ID.sub(b"SID", TIME.sub(b"T", hdr)) if hdr else hdr
    body = SERVER_ID.sub(b"SID", TIME.sub(b"T", payload))
    if body.startswith(b"{"):
        obj = json.loads(body)
        return hdr, list(_items(obj))
    return hdr, body


def _items(obj, prefix=""):
    """Flatten a JSON object to (path, value) in key order (so order is compared too)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "pause_remaining" and isinstance(v, int) and v > 0:
                v = "N"  # time left: differs by the time the request took
            yield from _items(v, f"{prefix}.{k}")
    else:
        yield prefix, obj


def run_script(server, script):
    r = Requester(server)
    try:
        return [masked(r.request(subj, body.encode(), hdrs)) for subj, hdrs, body in script]
    finally:
        r.close()


def compare(start_server, script, raw_bytes_for=(), skip=()):
    """`skip`: indexes of requests whose answers are not compared."""
    results = {impl: run_script(js_server(start_server, impl), script) for impl in ("reference", "actor")}
    for i, (req, want, got) in enumerate(zip(script, results["reference"], results["actor"])):
        if i in skip:
            continue
        assert got == want, f"request {i} {req}: reference {want!r}, actor-nats {got!r}"


def S(subject, body="", **hdrs):
    return (subject, {k.replace("_", "-"): v for k, v in hdrs.items()} or None, body)


def H(subject, headers: dict, body=""):
    return (subject, headers, body)


def test_stream_crud_and_errors(start_server):
    compare(start_server, [
        S("$JS.API.INFO"),
        S("$JS.API.STREAM.CREATE.S1", '{"name":"S1","subjects":["foo.>"]}'),
        S("$JS.API.STREAM.CREATE.S1", '{"name":"S1","subjects":["foo.>"]}'),
        S("$JS.API.STREAM.CREATE.S1", '{"name":"S1","subjects":["foo.*"]}'),
        S("$JS.API.STREAM.CREATE.S2", '{"name":"S2","subjects":["foo.bar"]}'),
        S("$JS.API.STREAM.CREATE.X", '{"name":"Y"}'),
        S("$JS.API.STREAM.CREATE.X", '{bad'),
        S("$JS.API.STREAM.CREATE.X", ""),
        S("$JS.API.STREAM.CREATE.R", '{"name":"R","num_replicas":3}'),
        S("$JS.API.STREAM.CREATE.M", '{"name":"M","subjects":["m"],"max_age":1000000000,"duplicate_window":2000000000}'),
        S("$JS.API.STREAM.CREATE.M", '{"name":"M","subjects":["m"],"max_age":1000000000}'),
        S("$JS.API.STREAM.CREATE.BAD", '{"name":"BAD","retention":"foo"}'),
        S("$JS.API.STREAM.CREATE.BAD", '{"name":"BAD","discard_new_per_subject":true}'),
        S("$JS.API.STREAM.CREATE.BAD", '{"name":"BAD","max_age":-5}'),
        S("$JS.API.STREAM.CREATE.MD", '{"name":"MD","metadata":{"a":"b"},"description":"hi","subjects":["md"]}'),
        S("$JS.API.STREAM.CREATE.MD", '{"name":"MD","metadata":{"a":"b"},"description":"hi","subjects":["md"]}'),
        S("foo.a", "hello"),
        S("foo.a", "hello"),
        S("$JS.API.STREAM.INFO.S1"),
        S("$JS.API.STREAM.INFO.S1", '{"subjects_filter":">"}'),
        S("$JS.API.STREAM.INFO.NOPE"),
        S("$JS.API.STREAM.NAMES"),
        S("$JS.API.STREAM.NAMES", '{"subject":"foo.x"}'),
        S("$JS.API.STREAM.NAMES", '{"subject":"bar.x"}'),
        S("$JS.API.STREAM.LIST"),
        S("$JS.API.STREAM.UPDATE.S1", '{"name":"S1","subjects":["foo.>","bar"],"storage":"memory"}'),
        S("$JS.API.STREAM.UPDATE.S1", '{"name":"S1","subjects":["foo.>","bar"]}'),
        S("$JS.API.STREAM.UPDATE.NOPE", '{"name":"NOPE"}'),
        S("bar", "x"),
        S("$JS.API.STREAM.DELETE.MD"),
        S("$JS.API.STREAM.DELETE.MD"),
        S("$JS.API.INFO"),
    ])


def test_publish_headers(start_server):
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.D", '{"name":"D","subjects":["d.>"],"allow_rollup_hdrs":true,"storage":"memory"}'),
        H("d.a", {"Nats-Msg-Id": "x1"}, "one"),
        H("d.a", {"Nats-Msg-Id": "x1"}, "one"),
        H("d.b", {"Nats-Expected-Stream": "Z"}, "two"),
        H("d.b", {"Nats-Expected-Stream": "D"}, "two"),
        H("d.b", {"Nats-Expected-Last-Sequence": "5"}, "two"),
        H("d.b", {"Nats-Expected-Last-Sequence": "2"}, "two"),
        H("d.b", {"Nats-Expected-Last-Msg-Id": "zz"}, "two"),
        H("d.b", {"Nats-Expected-Last-Msg-Id": "x1"}, "two"),
        H("d.c", {"Nats-Expected-Last-Subject-Sequence": "3"}, "two"),
        H("d.c", {"Nats-Expected-Last-Subject-Sequence": "0"}, "two"),
        H("d.c", {"Nats-Expected-Last-Subject-Sequence": "0"}, "two"),
        H("d.e", {"Nats-TTL": "5s"}, "two"),
        H("d.e", {"Nats-Rollup": "bad"}, "two"),
        S("d.f", "1"), S("d.f", "2"),
        H("d.f", {"Nats-Rollup": "sub"}, "three"),
        S("$JS.API.STREAM.INFO.D", '{"subjects_filter":">"}'),
        H("d.g", {"Nats-Rollup": "all"}, "four"),
        S("$JS.API.STREAM.INFO.D"),
        S("$JS.API.STREAM.CREATE.NR", '{"name":"NR","subjects":["nr.>"]}'),
        H("nr.a", {"Nats-Rollup": "sub"}, "5"),
    ])


def test_limits_and_policies(start_server):
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.N", '{"name":"N","subjects":["n.>"],"discard":"new","max_msgs":1,"max_msg_size":10}'),
        S("n.a", "x"), S("n.a", "x"),
        S("n.b", "xxxxxxxxxxxxxxxxxxxxxxxx"),
        H("n.b", {"Nats-Rollup": "sub"}, "x"),
        S("$JS.API.STREAM.CREATE.P", '{"name":"P","subjects":["p.>"],"discard":"new","max_msgs_per_subject":1,"discard_new_per_subject":true}'),
        S("p.a", "x"), S("p.a", "x"), S("p.b", "x"),
        S("$JS.API.STREAM.CREATE.B", '{"name":"B","subjects":["b.>"],"discard":"new","max_bytes":60}'),
        S("b.a", "x"), S("b.a", "x"),
        S("$JS.API.STREAM.CREATE.L", '{"name":"L","subjects":["l.>"],"max_msgs":2,"max_msgs_per_subject":1}'),
        S("l.a", "1"), S("l.a", "2"), S("l.b", "3"), S("l.c", "4"),
        S("$JS.API.STREAM.INFO.L", '{"deleted_details":true}'),
        S("$JS.API.STREAM.CREATE.SE", '{"name":"SE","subjects":["se.>"],"deny_delete":true,"deny_purge":true}'),
        S("se.a", "x"),
        S("$JS.API.STREAM.MSG.DELETE.SE", '{"seq":1}'),
        S("$JS.API.STREAM.PURGE.SE"),
        S("$JS.API.STREAM.UPDATE.SE", '{"name":"SE","subjects":["se.>"],"deny_delete":true,"deny_purge":true,"sealed":true}'),
        S("se.a", "x"),
        S("$JS.API.STREAM.CREATE.I", '{"name":"I","subjects":["i.>"],"retention":"interest"}'),
        S("i.a", "x"),
        S("$JS.API.STREAM.INFO.I"),
        S("$JS.API.STREAM.CREATE.W", '{"name":"W","subjects":["w.>"],"retention":"workqueue"}'),
        S("w.a", "x"),
        S("$JS.API.STREAM.INFO.W"),
        S("$JS.API.STREAM.UPDATE.W", '{"name":"W","subjects":["w.>"],"retention":"limits"}'),
        S("$JS.API.STREAM.CREATE.T", '{"name":"T","subjects":["t.>"],"allow_msg_ttl":true}'),
        H("t.a", {"Nats-TTL": "bad"}, "x"),
        H("t.a", {"Nats-TTL": "never"}, "x"),
        H("t.a", {"Nats-TTL": "10s"}, "x"),
        S("$JS.API.STREAM.INFO.T"),
    ])


def test_msg_get_delete_purge_direct(start_server):
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.D", '{"name":"D","subjects":["d.>"],"allow_direct":true}'),
        H("d.a", {"Nats-Msg-Id": "x1"}, "one"),
        S("d.b", "two"), S("d.c", "three"), S("d.b", "four"), S("d.a", ""),
        S("$JS.API.DIRECT.GET.D", '{"seq":1}'),
        S("$JS.API.DIRECT.GET.D.d.b"),
        S("$JS.API.DIRECT.GET.D"),
        S("$JS.API.DIRECT.GET.D", '{"seq":100}'),
        S("$JS.API.DIRECT.GET.D", '{bad'),
        S("$JS.API.DIRECT.GET.D", '{"last_by_subj":"d.zz"}'),
        S("$JS.API.DIRECT.GET.D", '{"next_by_subj":"d.b","seq":3}'),
        S("$JS.API.DIRECT.GET.NOPE", '{"seq":1}'),
        S("$JS.API.STREAM.MSG.GET.D", '{"seq":1}'),
        S("$JS.API.STREAM.MSG.GET.D", '{"seq":5}'),
        S("$JS.API.STREAM.MSG.GET.D", '{"seq":50}'),
        S("$JS.API.STREAM.MSG.GET.D", '{"last_by_subj":"d.b"}'),
        S("$JS.API.STREAM.MSG.GET.D", '{"next_by_subj":"d.b","seq":3}'),
        S("$JS.API.STREAM.MSG.GET.D", '{}'),
        S("$JS.API.STREAM.MSG.GET.D"),
        S("$JS.API.STREAM.MSG.GET.NOPE", '{"seq":1}'),
        S("$JS.API.STREAM.MSG.DELETE.D", '{"seq":2}'),
        S("$JS.API.STREAM.MSG.DELETE.D", '{"seq":2}'),
        S("$JS.API.STREAM.MSG.DELETE.D", '{"seq":3,"no_erase":true}'),
        S("$JS.API.STREAM.INFO.D", '{"deleted_details":true}'),
        S("$JS.API.STREAM.PURGE.D", '{"filter":"d.a"}'),
        S("$JS.API.STREAM.PURGE.D", '{"seq":1,"keep":1}'),
        S("$JS.API.STREAM.PURGE.D", '{bad'),
        S("$JS.API.STREAM.PURGE.D", '{"keep":1}'),
        S("$JS.API.STREAM.INFO.D"),
        S("$JS.API.STREAM.PURGE.D"),
        S("$JS.API.STREAM.INFO.D"),
        S("$JS.API.STREAM.PURGE.NOPE"),
        S("$JS.API.CONSUMER.MSG.NEXT.D.nope"),
    ])


def test_pub_ack_bytes(start_server):
    """The PubAck bytes themselves, not just their JSON."""
    for impl in ("reference", "actor"):
        r = Requester(js_server(start_server, impl))
        r.request("$JS.API.STREAM.CREATE.S", b'{"name":"S","subjects":["s"]}')
        assert r.request("s", b"x") == (None, b'{"stream":"S","seq":1}'), impl
        assert r.request("s", b"x", {"Nats-Msg-Id": "a"}) == (None, b'{"stream":"S","seq":2}'), impl
        assert r.request("s", b"x", {"Nats-Msg-Id": "a"}) == (None, b'{"stream":"S","seq":2,"duplicate": true}'), impl
        r.close()


@pytest.mark.parametrize("impl", ["reference", "actor"])
def test_no_jetstream_means_no_responders(start_server, impl):
    r = Requester(start_server(impl))
    hdr, _ = r.request("$JS.API.INFO")
    assert hdr.startswith(b"NATS/1.0 503")
    r.close()


def _advisories(server, script):
    """The stream and consumer advisories a script's requests cause, in order (ids and times
    masked)."""
    r = Requester(server)
    r.w.send(b"SUB $JS.EVENT.ADVISORY.STREAM.> 90\r\nSUB $JS.EVENT.ADVISORY.CONSUMER.*.*.* 91\r\n")
    events = []
    try:
        for subj, hdrs, body in script:
            r.n += 1
            reply = f"_INBOX.t.{r.n}"
            data = body.encode()
            r.w.send(f"PUB {subj} {reply} {len(data)}\r\n".encode() + data + b"\r\n")
            while True:
                op = r.w.read_op(2.0)
                if op.subject == reply.encode():
                    break
                adv = json.loads(op.payload)
                assert len(adv.pop("id")) == 22 and adv.pop("timestamp")
                events.append((op.subject.decode(), adv))
        # an advisory published after the response
        r.w.send(b"PING\r\n")
        while True:
            try:
                op = r.w.read_op(0.5)
            except TimeoutError:
                break
            if op.verb not in ("MSG", "HMSG"):
                continue
            adv = json.loads(op.payload)
            adv.pop("id"), adv.pop("timestamp")
            events.append((op.subject.decode(), adv))
    finally:
        r.close()
    return events


def test_stream_and_consumer_advisories(start_server):
    script = [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["x"]}'),
        S("$JS.API.STREAM.UPDATE.S", '{"name":"S","subjects":["s.>","t"]}'),
        S("$JS.API.CONSUMER.CREATE.S.C", '{"stream_name":"S","config":{"durable_name":"C"}}'),
        S("$JS.API.CONSUMER.CREATE.S.C", '{"stream_name":"S","config":{"durable_name":"C"}}'),
        S("$JS.API.CONSUMER.CREATE.S.C", '{"stream_name":"S","config":{"durable_name":"C","max_deliver":2}}'),
        S("$JS.API.CONSUMER.DELETE.S.C"),
        S("$JS.API.CONSUMER.DELETE.S.C"),
        S("$JS.API.STREAM.DELETE.S"),
        S("$JS.API.STREAM.DELETE.S"),
    ]
    want = _advisories(js_server(start_server, "reference"), script)
    got = _advisories(js_server(start_server, "actor"), script)
    assert sorted(got, key=str) == sorted(want, key=str)
    assert got == want


def test_inactive_ephemeral_deleted_advisory(start_server):
    """An ephemeral consumer past its inactive_threshold is deleted with an advisory."""
    script = [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("$JS.API.CONSUMER.CREATE.S.E", '{"stream_name":"S","config":{"name":"E","inactive_threshold":500000000}}'),
    ]
    results = {}
    for impl in ("reference", "actor"):
        r = Requester(js_server(start_server, impl))
        r.w.send(b"SUB $JS.EVENT.ADVISORY.CONSUMER.DELETED.> 92\r\n")
        for subj, _, body in script:
            assert b"error" not in r.request(subj, body.encode())[1]
        op = r.w.read_op(5.0)
        adv = json.loads(op.payload)
        adv.pop("id"), adv.pop("timestamp")
        results[impl] = (op.subject.decode(), adv)
        r.close()
    assert results["actor"] == results["reference"]


def test_pause_unpin_and_cluster_only_api(start_server):
    """CONSUMER.PAUSE / UNPIN answers, and the 10010 a single server gives for the leader
    stepdowns and peer remove (META.LEADER.STEPDOWN and SERVER.REMOVE get no answer)."""
    future, past = "2030-01-01T00:00:00Z", "2000-01-01T00:00:00Z"
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("$JS.API.CONSUMER.CREATE.S.C", '{"stream_name":"S","config":{"durable_name":"C","ack_policy":"explicit"}}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", json.dumps({"pause_until": future})),
        S("$JS.API.CONSUMER.INFO.S.C"),
        S("$JS.API.CONSUMER.PAUSE.S.C", "{}"),
        S("$JS.API.CONSUMER.INFO.S.C"),
        S("$JS.API.CONSUMER.PAUSE.S.C", json.dumps({"pause_until": past})),
        S("$JS.API.CONSUMER.INFO.S.C"),
        S("$JS.API.CONSUMER.PAUSE.S.C", json.dumps({"pause_until": "2030-01-01T00:00:00.5+01:00"})),
        S("$JS.API.CONSUMER.PAUSE.S.C", ""),
        S("$JS.API.CONSUMER.PAUSE.S.C", "null"),
        S("$JS.API.CONSUMER.PAUSE.S.C", '{"pause_until":null}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", "{bad"),
        S("$JS.API.CONSUMER.PAUSE.S.C", "[]"),
        S("$JS.API.CONSUMER.PAUSE.S.C", '{"pause_until":"bogus"}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", '{"pause_until":"2030-02-30T00:00:00Z"}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", '{"pause_until":"2030-01-01T00:00:00Z","x":1}'),
        S("$JS.API.CONSUMER.PAUSE.S.NOPE", json.dumps({"pause_until": future})),
        S("$JS.API.CONSUMER.PAUSE.NOPE.C", "{}"),
        S("$JS.API.CONSUMER.CREATE.S.D", json.dumps({"stream_name": "S", "config": {
            "durable_name": "D", "ack_policy": "explicit", "pause_until": future}})),
        S("$JS.API.CONSUMER.INFO.S.D"),
        S("$JS.API.CONSUMER.CREATE.S.P", json.dumps({"stream_name": "S", "config": {
            "durable_name": "P", "ack_policy": "explicit", "priority_policy": "overflow",
            "priority_groups": ["g"]}})),
        S("$JS.API.CONSUMER.UNPIN.S.P", '{"group":"g"}'),
        S("$JS.API.CONSUMER.UNPIN.S.P", '{"group":"h"}'),
        S("$JS.API.CONSUMER.UNPIN.S.P", '{"group":"bad name"}'),
        S("$JS.API.CONSUMER.UNPIN.S.C", '{"group":"g","y":2}'),
        S("$JS.API.CONSUMER.UNPIN.S.C", "{}"),
        S("$JS.API.CONSUMER.UNPIN.S.C", '{"group":""}'),
        S("$JS.API.CONSUMER.UNPIN.S.C", ""),
        S("$JS.API.CONSUMER.UNPIN.S.C", "{bad"),
        S("$JS.API.CONSUMER.UNPIN.S.C", "[]"),
        S("$JS.API.CONSUMER.UNPIN.S.NOPE", '{"group":"g"}'),
        S("$JS.API.CONSUMER.UNPIN.NOPE.C", '{"group":"g"}'),
        S("$JS.API.CONSUMER.UNPIN.NOPE.C", "{}"),
        S("$JS.API.STREAM.LEADER.STEPDOWN.S"),
        S("$JS.API.STREAM.LEADER.STEPDOWN.NOPE", "{bad"),
        S("$JS.API.CONSUMER.LEADER.STEPDOWN.S.C"),
        S("$JS.API.CONSUMER.LEADER.STEPDOWN.S.NOPE"),
        S("$JS.API.STREAM.PEER.REMOVE.S", '{"peer":"x"}'),
        S("$JS.API.STREAM.PEER.REMOVE.NOPE"),
        S("$JS.API.INFO"),
    ], skip={21})  # ConsumerInfo.priority_groups (consumer.py does not show it yet)


def test_pause_advisories(start_server):
    script = [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("$JS.API.CONSUMER.CREATE.S.C", '{"stream_name":"S","config":{"durable_name":"C"}}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", '{"pause_until":"2000-01-01T00:00:00Z"}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", '{"pause_until":"2030-01-01T00:00:00Z"}'),
        S("$JS.API.CONSUMER.PAUSE.S.C", "{}"),
        S("$JS.API.CONSUMER.CREATE.S.D", '{"stream_name":"S","config":{"durable_name":"D",'
          '"pause_until":"2030-01-01T00:00:00Z"}}'),
    ]
    want = _advisories(js_server(start_server, "reference"), script)
    got = _advisories(js_server(start_server, "actor"), script)
    assert got == want


SYS_CONF = """
jetstream {{ store_dir: "{sd}" }}
accounts {{
  SYS {{ users [{{user: sys, password: sys}}] }}
  A {{ jetstream: enabled, users [{{user: a, password: a}}] }}
}}
system_account: SYS
"""


def _account_purge(server):
    """ACCOUNT.PURGE and the system-only requests from SYS and from A; then A's state."""
    sysw = Requester.__new__(Requester)
    sysw.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1, "user": "sys", "pass": "sys"})
    sysw.w.send(b"SUB _INBOX.t.* 1\r\n")
    sysw.n = 0
    a = Requester.__new__(Requester)
    a.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1, "user": "a", "pass": "a"})
    a.w.send(b"SUB _INBOX.t.* 1\r\n")
    a.n = 0
    out = []
    try:
        out.append(masked(a.request("$JS.API.STREAM.CREATE.S", b'{"name":"S","subjects":["s.>"]}')))
        out.append(masked(a.request("$JS.API.CONSUMER.CREATE.S.C", b'{"stream_name":"S","config":{"durable_name":"C"}}')))
        for r in (a, sysw):
            for subj, body in [("$JS.API.META.LEADER.STEPDOWN", b""), ("$JS.API.SERVER.REMOVE", b'{"peer":"x"}'),
                               ("$JS.API.ACCOUNT.PURGE.NOPE", b"")]:
                out.append(masked(r.request(subj, body, timeout=0.5)))
        out.append(masked(sysw.request("$JS.API.ACCOUNT.PURGE.A")))
        for _ in range(40):
            names = masked(a.request("$JS.API.STREAM.NAMES"))
            if ('.total', 0) in names[1]:
                break
            time.sleep(0.25)
        out.append(names)
        out.append(masked(a.request("$JS.API.INFO")))
    finally:
        a.close()
        sysw.close()
    return out


def test_account_purge_from_the_system_account(start_server):
    results = {}
    for impl in ("reference", "actor"):
        sd = tempfile.mkdtemp(prefix="an-js-")
        conf = os.path.join(sd, "sys.conf")
        with open(conf, "w") as f:
            f.write(SYS_CONF.format(sd=sd))
        results[impl] = _account_purge(start_server(impl, args=["-c", conf]))
    assert results["actor"] == results["reference"]


@pytest.mark.parametrize("impl", ["reference", "actor"])
def test_pub_ack_reaches_whoever_subscribes_to_the_reply(start_server, impl):
    """A PubAck is an ordinary message on the reply subject: every plain subscriber gets it
    (a second connection, a wildcard beside a literal), one member of a queue group, and with
    republish on, the republished message comes before the PubAck on one connection."""
    server = js_server(start_server, impl)
    a = connect(server, {"headers": True})
    b = connect(server, {"headers": True})
    a.send(b"SUB ack.1 1\r\nSUB ack.* 2\r\nSUB rp.> 3\r\n")
    b.send(b"SUB ack.1 1\r\nSUB ack.2 q 2\r\n")
    a.sync()
    b.sync()
    r = Requester(server)
    r.request("$JS.API.STREAM.CREATE.S", b'{"name":"S","subjects":["s.*"],'
                                        b'"republish":{"src":"s.r","dest":"rp.r"}}')
    a.send(b"PUB s.x ack.1 1\r\nx\r\n")  # three subscriptions on two connections
    got_a = sorted((op.subject, op.args[1], op.payload) for op in (a.read_op(), a.read_op()))
    assert got_a == [(b"ack.1", b"1", b'{"stream":"S","seq":1}'), (b"ack.1", b"2", b'{"stream":"S","seq":1}')]
    op = b.read_op()
    assert (op.subject, op.args[1], op.payload) == (b"ack.1", b"1", b'{"stream":"S","seq":1}')
    a.send(b"PUB s.y ack.2 1\r\ny\r\n")  # a wildcard here, a queue group there
    assert (a.read_op().payload, b.read_op().payload) == (b'{"stream":"S","seq":2}',) * 2
    a.send(b"PUB s.r ack.3 1\r\nr\r\n")  # republished first, then the PubAck
    first, second = a.read_op(), a.read_op()
    assert (first.subject, second.subject, second.payload) == (b"rp.r", b"ack.3", b'{"stream":"S","seq":3}')
    assert a.sync() == [] and b.sync() == []
    for w in (a, b, r):
        w.close()


@pytest.mark.parametrize("storage", ["file", "memory"])
def test_msg_delete_errors_and_sealed(start_server, storage):
    """MSG.DELETE of sequences that are gone answers as each of the reference's stores does (the
    file store: an error outside first..last, "not found" for a gap inside; the memory store:
    always "not found"), and a sealed stream refuses purge and delete as sealed, not as
    deny_purge/deny_delete."""
    cfg = f'"name":"X","subjects":["x"],"storage":"{storage}"'
    delete = "$JS.API.STREAM.MSG.DELETE.X"
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.X", "{" + cfg + "}"),
        S("x", "1"), S("x", "2"), S("x", "3"), S("x", "4"), S("x", "5"),
        S(delete, '{"seq":1}'), S(delete, '{"seq":3}'), S(delete, '{"seq":5}'),
        S(delete, '{"seq":1}'),  # below first_seq
        S(delete, '{"seq":3}'),  # a gap inside
        S(delete, '{"seq":5}'),  # the last sequence, deleted
        S(delete, '{"seq":9}'),  # beyond the last
        S(delete, '{"seq":0}'), S(delete, '{}'),
        S(delete, '{"seq":2,"no_erase":true}'), S(delete, '{"seq":2}'),
        S(delete, '{"seq":4}'), S(delete, '{"seq":4}'),  # the stream is empty now
        S("$JS.API.STREAM.INFO.X"),
        S("x", "6"),
        S("$JS.API.STREAM.UPDATE.X", "{" + cfg + ',"sealed":true}'),
        S("$JS.API.STREAM.PURGE.X"),
        S("$JS.API.STREAM.PURGE.X", '{"filter":"x"}'),
        S("$JS.API.STREAM.PURGE.X", '{"seq":1,"keep":1}'),
        S(delete, '{"seq":6}'),
        S("$JS.API.STREAM.INFO.X"),
    ])


def test_a_subject_that_is_not_utf8_is_stored_and_read_back(start_server):
    """Subjects are bytes: a publish to `d.<0xff>` is stored, MSG.GET shows it as JSON does
    (U+FFFD) and DIRECT.GET gives back the very byte, as the reference."""
    got = {}
    for impl in ("reference", "actor"):
        w = connect(js_server(start_server, impl), {"headers": True})
        w.send(b"SUB _INBOX.t.* 1\r\n")
        out = []
        for subj, body in ((b"$JS.API.STREAM.CREATE.D", b'{"name":"D","subjects":["d.>"],"allow_direct":true}'),
                           (b"d.\xff", b"x"), (b"$JS.API.STREAM.MSG.GET.D", b'{"seq":1}'),
                           (b"$JS.API.DIRECT.GET.D", b'{"seq":1}')):
            w.send(b"PUB %s _INBOX.t.1 %d\r\n%s\r\n" % (subj, len(body), body))
            op = w.read_op(5)
            out.append(masked((op.headers, op.payload)))
        got[impl] = out[1:]
        w.close()
    assert got["actor"] == got["reference"]
    assert b"Nats-Subject: d.\xff\r\n" in got["actor"][2][0]
