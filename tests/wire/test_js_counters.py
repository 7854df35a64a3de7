"""Counter streams (ADR-49, `allow_msg_counter`) on both servers: `Nats-Incr` publishes keep a
running total per subject in `{"val":"N"}` bodies and the PubAck carries it; the reference's
errors for a missing, invalid, payload-carrying or disabled increment, and for headers that
do not go with one. PubAcks are compared as bytes.
"""

from __future__ import annotations

import base64
import json
import tempfile

import pytest

from tests.wire.test_js_stream_api import Requester


@pytest.fixture
def req(impl, start_server):
    srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jscnt-")])
    r = Requester(srv)
    body = json.dumps({"name": "C", "subjects": ["c.>"], "allow_msg_counter": True, "allow_direct": True})
    assert "error" not in json.loads(r.request("$JS.API.STREAM.CREATE.C", body.encode())[1])
    body = json.dumps({"name": "P", "subjects": ["p.>"]})
    assert "error" not in json.loads(r.request("$JS.API.STREAM.CREATE.P", body.encode())[1])
    yield r
    r.close()


def incr(r: Requester, subject: str, value: str, body: bytes = b"", **extra) -> bytes:
    return r.request(subject, body, headers={"Nats-Incr": value, **extra})[1]


def test_increments_keep_a_total_per_subject(req):
    assert incr(req, "c.a", "+5") == b'{"stream":"C","seq":1,"val":"5"}'
    assert incr(req, "c.a", "-2") == b'{"stream":"C","seq":2,"val":"3"}'
    assert incr(req, "c.b", "7") == b'{"stream":"C","seq":3,"val":"7"}'
    big = str(10 ** 30)
    assert incr(req, "c.a", big) == b'{"stream":"C","seq":4,"val":"%s"}' % str(10 ** 30 + 3).encode()
    stored = json.loads(req.request("$JS.API.STREAM.MSG.GET.C", b'{"last_by_subj":"c.b"}')[1])["message"]
    assert base64.b64decode(stored["data"]) == b'{"val":"7"}'
    assert b"Nats-Incr: 7" in base64.b64decode(stored["hdrs"])


@pytest.mark.parametrize("subject, value, body, extra, err_code", [
    ("c.a", None, b"", {}, 10169),  # no Nats-Incr on a counter stream
    ("c.a", "+1", b"x", {}, 10170),  # a payload
    ("c.a", "abc", b"", {}, 10171),
    ("c.a", "1.5", b"", {}, 10171),
    ("c.a", "+1", b"", {"Nats-Rollup": "sub"}, 10171),
    ("c.a", "+1", b"", {"Nats-Expected-Last-Sequence": "0"}, 10171),
    ("p.a", "+1", b"", {}, 10168),  # not a counter stream
    ("p.a", "x", b"", {}, 10171),
])
def test_increment_errors(req, subject, value, body, extra, err_code):
    headers = dict(extra)
    if value is not None:
        headers["Nats-Incr"] = value
    ack = json.loads(req.request(subject, body, headers=headers or None)[1])
    assert ack["error"]["err_code"] == err_code and ack["seq"] == 0


def test_unsupported_stream_features_are_refused(start_server):
    """Not built yet here: refused with a clear error rather than accepted and ignored."""
    r = Requester(start_server("actor", args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jscnt-")]))
    try:
        for key, value in (("allow_atomic", True), ("allow_msg_schedules", True)):
            body = json.dumps({"name": "X", key: value, "allow_msg_ttl": True}).encode()
            resp = json.loads(r.request("$JS.API.STREAM.CREATE.X", body)[1])
            assert resp["error"]["err_code"] == 10052, resp
            assert "not supported by actor-nats yet" in resp["error"]["description"]
    finally:
        r.close()


def test_an_increment_too_long_to_convert_is_refused_and_the_stream_goes_on(start_server):
    """Python converts at most 4300 digits: a longer Nats-Incr is refused as invalid (the
    reference would take it) and nothing breaks."""
    r = Requester(start_server("actor", args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jscnt-")]))
    try:
        body = json.dumps({"name": "C", "subjects": ["c.>"], "allow_msg_counter": True}).encode()
        assert "error" not in json.loads(r.request("$JS.API.STREAM.CREATE.C", body)[1])
        ack = json.loads(incr(r, "c.a", "9" * 5000))
        assert ack["error"]["err_code"] == 10171
        assert incr(r, "c.a", "+2") == b'{"stream":"C","seq":1,"val":"2"}'
    finally:
        r.close()


def test_malformed_ttl_numbers_are_invalid_and_break_nothing(impl, start_server):
    """A Nats-TTL in other digits, or too long for an int64, is an invalid TTL (10165) on both
    servers, and the stream goes on."""
    r = Requester(start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jscnt-")]))
    try:
        body = json.dumps({"name": "T", "subjects": ["t.>"], "allow_msg_ttl": True}).encode()
        assert "error" not in json.loads(r.request("$JS.API.STREAM.CREATE.T", body)[1])
        for ttl in ("²", "9" * 5000):
            ack = json.loads(r.request("t.1", b"x", headers={"Nats-TTL": ttl})[1])
            assert ack["error"]["err_code"] == 10165, ack
        assert json.loads(r.request("t.1", b"x")[1]) == {"stream": "T", "seq": 1}
    finally:
        r.close()
