"""The JetStream API audit advisory ($JS.EVENT.ADVISORY.API) on both servers: one per answered
API request, naming the requesting client, with the request and the response as sent."""

from __future__ import annotations

import json
import tempfile

from tests.wire.proto import connect


def test_api_requests_are_audited(impl, start_server):
    srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jsaudit-")])
    w = connect(srv, {"name": "auditor", "lang": "python", "version": "1.2.3", "headers": True})
    client_id = w.info["client_id"]
    w.send(b"SUB $JS.EVENT.ADVISORY.API 1\r\nSUB _INBOX.a.* 2\r\n")
    assert w.sync() == []
    create = b'{"name":"S","subjects":["s.>"]}'
    w.send(b"PUB $JS.API.STREAM.CREATE.S _INBOX.a.1 %d\r\n%s\r\n" % (len(create), create))
    w.send(b"PUB $JS.API.STREAM.INFO.NOPE _INBOX.a.2 0\r\n\r\n")
    replies, audits = {}, []
    while len(replies) < 2 or len(audits) < 2:
        op = w.read_op(5)
        if op.subject.startswith(b"_INBOX.a."):
            replies[op.subject.decode()] = op.payload.decode()
        else:
            audits.append(json.loads(op.payload))
    by_subject = {a["subject"]: a for a in audits}
    created = by_subject["$JS.API.STREAM.CREATE.S"]
    assert list(created) == ["type", "id", "timestamp", "server", "client", "subject", "request", "response"]
    assert created["type"] == "io.nats.jetstream.advisory.v1.api_audit"
    assert created["request"] == create.decode()
    assert created["response"] == replies["_INBOX.a.1"]
    c = created["client"]
    assert (c["id"], c["acc"], c["name"], c["lang"], c["ver"], c["host"]) == \
        (client_id, "$G", "auditor", "python", "1.2.3", "127.0.0.1")
    assert c["kind"] == "Client" and c["client_type"] == "nats" and c["server"] == created["server"]
    assert {"start", "rtt"} <= set(c)
    missing = by_subject["$JS.API.STREAM.INFO.NOPE"]
    assert "request" not in missing  # an empty request is left out
    assert json.loads(missing["response"])["error"]["err_code"] == 10059
    assert missing["response"] == replies["_INBOX.a.2"]
    w.close()
