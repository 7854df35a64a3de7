"""JetStream consumer API over raw sockets, compared between actor-nats and the reference: the
same CONSUMER.CREATE (all subject forms, DURABLE.CREATE, legacy ephemeral), INFO, NAMES, LIST and
DELETE requests run against both servers (`-js -sd <tmp>`), and every response must be the same
once times, server ids and generated consumer names are masked (JSON compared in key order).
"""

from __future__ import annotations

import json

import pytest

from tests.wire.proto import connect, pub
from tests.wire.test_js_stream_api import Requester, S, js_server, masked


def run_script(server, script):
    """The masked responses; a name the server generated (legacy ephemeral create) is replaced
    by EPH<n> everywhere after it appears."""
    r = Requester(server)
    generated: dict[bytes, bytes] = {}
    out = []
    try:
        for subj, hdrs, body in script:
            resp = r.request(subj, body.encode(), hdrs)
            if resp != "timeout":
                hdr, payload = resp
                if subj.startswith("$JS.API.CONSUMER.CREATE.") and subj.count(".") == 4 \
                        and payload.startswith(b"{"):
                    name = json.loads(payload).get("name")
                    if name and name != json.loads(body).get("config", {}).get("name"):
                        generated[name.encode()] = b"EPH%d" % len(generated)
                for name, mask in generated.items():
                    payload = payload.replace(b'"' + name + b'"', b'"' + mask + b'"')
                resp = hdr, payload
            out.append(masked(resp))
    finally:
        r.close()
    return out


def compare(start_server, script):
    results = {impl: run_script(js_server(start_server, impl), script) for impl in ("reference", "actor")}
    for i, (req, want, got) in enumerate(zip(script, results["reference"], results["actor"])):
        assert got == want, f"request {i} {req}: reference {want!r}, actor-nats {got!r}"


def C(subject, **body):
    return S("$JS.API.CONSUMER." + subject, json.dumps(body))


def test_consumer_create_forms_info_names_list_delete(start_server):
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("$JS.API.STREAM.CREATE.E", '{"name":"E","subjects":["e.>"]}'),
        S("s.a", "1"), S("s.b", "2"), S("s.a", "3"),
        C("CREATE.S.A", stream_name="S", config={"durable_name": "A", "ack_policy": "explicit"}),
        C("CREATE.S.A", stream_name="S", config={"durable_name": "A", "ack_policy": "explicit"}),
        C("CREATE.S.B.s.a", stream_name="S", config={"name": "B", "filter_subject": "s.a"}),
        C("DURABLE.CREATE.S.D", stream_name="S", config={"durable_name": "D"}),
        C("CREATE.E", stream_name="E", config={"ack_policy": "explicit"}),
        S("$JS.API.CONSUMER.NAMES.E"),
        S("$JS.API.CONSUMER.LIST.E"),
        C("CREATE.S", stream_name="S", config={"name": "N", "max_deliver": 5}),
        C("CREATE.S.F", stream_name="S", config={"filter_subjects": ["s.a", "s.b"], "durable_name": "F",
                                                  "deliver_policy": "last_per_subject"}),
        C("CREATE.S.G", stream_name="S", config={"durable_name": "G", "deliver_policy": "by_start_sequence",
                                                  "opt_start_seq": 2, "metadata": {"k": "v"}}),
        S("$JS.API.CONSUMER.INFO.S.A"),
        S("$JS.API.CONSUMER.INFO.S.B"),
        S("$JS.API.CONSUMER.INFO.S.F"),
        S("$JS.API.CONSUMER.INFO.S.G"),
        S("$JS.API.CONSUMER.INFO.S.NOPE"),
        S("$JS.API.CONSUMER.INFO.NOPE.A"),
        S("$JS.API.CONSUMER.INFO.S.A", "{bad"),
        S("$JS.API.CONSUMER.INFO.S.A", "{}"),
        S("$JS.API.CONSUMER.NAMES.S"),
        S("$JS.API.CONSUMER.NAMES.S", '{"offset":2}'),
        S("$JS.API.CONSUMER.NAMES.S", '{"offset":50}'),
        S("$JS.API.CONSUMER.NAMES.S", '{"zz":1}'),
        S("$JS.API.CONSUMER.NAMES.S", '[]'),
        S("$JS.API.CONSUMER.NAMES.NOPE"),
        S("$JS.API.CONSUMER.LIST.S", '{"offset":4}'),
        S("$JS.API.CONSUMER.LIST.NOPE"),
        S("$JS.API.STREAM.INFO.S"),
        S("$JS.API.CONSUMER.DELETE.S.A", "{bad"),
        S("$JS.API.CONSUMER.DELETE.S.NOPE"),
        S("$JS.API.CONSUMER.DELETE.NOPE.A"),
        S("$JS.API.CONSUMER.DELETE.S.A"),
        S("$JS.API.CONSUMER.DELETE.S.A"),
        S("$JS.API.CONSUMER.NAMES.S"),
        S("$JS.API.INFO"),
    ])


def test_consumer_create_error_order(start_server):
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"],"max_consumers":2}'),
        S("$JS.API.STREAM.CREATE.W", '{"name":"W","subjects":["w.>"],"retention":"workqueue"}'),
        S("$JS.API.CONSUMER.CREATE.S.C", "{bad"),
        C("CREATE.NOPE.C", stream_name="NOPE", config={}),
        C("CREATE.S.C", stream_name="T", config={}),
        C("CREATE.NOPE.C", stream_name="NOPE", config={"ack_wait": "1s"}),
        C("CREATE.NOPE.C", stream_name="NOPE", config={"deliver_subject": "d.*"}),
        C("CREATE.S.C", stream_name="S", config={"deliver_subject": "d.*"}),
        C("CREATE.S.C", stream_name="S", config={"durable_name": "X"}),
        C("DURABLE.CREATE.S.D", stream_name="S", config={}),
        C("CREATE.S", stream_name="S", config={"durable_name": "X"}),
        C("CREATE.S.C.s.a", stream_name="S", config={"filter_subject": "s.b"}),
        C("CREATE.S.C", stream_name="S", config={"num_replicas": 3}),
        C("CREATE.S.C", stream_name="S", action="update", config={"durable_name": "C"}),
        C("CREATE.S.C", stream_name="S", action="create", config={"durable_name": "C", "ack_policy": "explicit"}),
        C("CREATE.S.C", stream_name="S", action="create", config={"durable_name": "C", "ack_policy": "explicit"}),
        C("CREATE.S.C", stream_name="S", action="create", config={"durable_name": "C", "ack_policy": "explicit",
                                                                  "max_deliver": 3}),
        C("CREATE.S.C", stream_name="S", config={"durable_name": "C", "ack_policy": "explicit", "max_deliver": 3}),
        C("CREATE.S.C", stream_name="S", action="update", config={"durable_name": "C", "ack_policy": "explicit",
                                                                  "max_deliver": 4}),
        C("CREATE.S.C", stream_name="S", config={"durable_name": "C", "ack_policy": "none"}),
        C("CREATE.S.C", stream_name="S", config={"durable_name": "C", "ack_policy": "explicit",
                                                  "deliver_subject": "push"}),
        C("CREATE.S.C", stream_name="S", config={"durable_name": "C", "ack_policy": "explicit",
                                                  "deliver_policy": "new"}),
        C("CREATE.S.E", stream_name="S", config={"durable_name": "E"}),
        C("CREATE.S.E2", stream_name="S", config={"durable_name": "E2"}),
        C("CREATE.S.E", stream_name="S", config={"durable_name": "E"}),
        C("CREATE.S.C", stream_name="S", config={"durable_name": "C", "ack_policy": "explicit", "max_deliver": 3}),
        C("CREATE.W.A", stream_name="W", config={"durable_name": "A"}),
        C("CREATE.W.A", stream_name="W", config={"durable_name": "A", "ack_policy": "explicit"}),
        C("CREATE.W.A", stream_name="W", config={"durable_name": "A", "ack_policy": "explicit"}),
        C("CREATE.W.B", stream_name="W", config={"durable_name": "B", "ack_policy": "explicit"}),
        C("CREATE.W.B", stream_name="W", config={"durable_name": "B", "ack_policy": "explicit",
                                                  "filter_subject": "w.b"}),
        C("CREATE.W.A", stream_name="W", config={"durable_name": "A", "ack_policy": "explicit",
                                                  "filter_subject": "w.a"}),
        C("CREATE.W.B", stream_name="W", config={"durable_name": "B", "ack_policy": "explicit",
                                                  "filter_subject": "w.b"}),
        C("CREATE.W.C", stream_name="W", config={"durable_name": "C", "ack_policy": "explicit",
                                                  "filter_subject": "w.>"}),
        C("CREATE.W.C", stream_name="W", config={"durable_name": "C", "ack_policy": "explicit",
                                                  "filter_subject": "w.c", "deliver_policy": "last"}),
        C("CREATE.S.Z", stream_name="S", config={"durable_name": "Z" * 300}),
    ])


def test_push_consumer_without_interest(start_server):
    compare(start_server, [
        S("$JS.API.STREAM.CREATE.S", '{"name":"S","subjects":["s.>"]}'),
        S("s.a", "1"), S("s.b", "2"),
        C("DURABLE.CREATE.S.D", stream_name="S", config={"durable_name": "D", "deliver_subject": "dd"}),
        C("CREATE.S", stream_name="S", config={"ack_policy": "explicit", "deliver_subject": "eph"}),
        S("$JS.API.CONSUMER.INFO.S.D"),
    ])


@pytest.mark.parametrize("impl", ["reference", "actor"])
def test_pull_request_whose_inbox_is_gone(start_server, impl):
    """A pull request left waiting by a client that unsubscribed its inbox (nats.js leaving a
    consume() loop) is dropped: the next message goes to the request still listening, with
    its first delivery count, and INFO counts only that one as waiting."""

    server = js_server(start_server, impl)
    r = Requester(server)
    r.request("$JS.API.STREAM.CREATE.Q", b'{"name":"Q","subjects":["q"]}')
    r.request("$JS.API.CONSUMER.DURABLE.CREATE.Q.w",
              b'{"stream_name":"Q","config":{"durable_name":"w","ack_policy":"explicit"}}')
    c = connect(server, {"headers": True})
    c.send(b"SUB inbox.a 1\r\n")
    c.sync()
    c.send(pub("$JS.API.CONSUMER.MSG.NEXT.Q.w", b'{"batch":2,"expires":30000000000}', "inbox.a"))
    c.sync()
    c.send(b"UNSUB 1\r\nSUB inbox.b 2\r\n")
    c.sync()
    c.send(pub("$JS.API.CONSUMER.MSG.NEXT.Q.w", b'{"batch":1,"expires":30000000000}', "inbox.b"))
    c.sync()
    hdr, body = r.request("q", b"m1")
    assert body == b'{"stream":"Q","seq":1}'
    op = c.read_op()
    assert (op.verb, op.subject, op.payload) == ("MSG", b"q", b"m1")
    assert op.args[1] == b"2"  # on inbox.b's subscription
    assert op.args[2].split(b".")[4:7] == [b"1", b"1", b"1"]  # delivery count 1, sseq 1, dseq 1
    _, info = r.request("$JS.API.CONSUMER.INFO.Q.w")
    info = json.loads(info)
    assert (info["num_waiting"], info["num_ack_pending"], info["delivered"]["stream_seq"]) == (0, 1, 1)
    c.close()
    r.close()
