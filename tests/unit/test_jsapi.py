"""Unit tests of protocol/jserrors.py and protocol/jsapi.py (pure; no server)."""

from __future__ import annotations

import pytest

from actor_nats.protocol import jsapi
from actor_nats.protocol import jserrors as E
from actor_nats.protocol.jserrors import ApiError


# -- error catalogue

def test_catalogue_entries_and_placeholders():
    assert len(E.CATALOGUE) == 227
    assert E.JSStreamNotFoundError().to_json() == {"code": 404, "err_code": 10059,
                                                   "description": "stream not found"}
    e = E.JSInvalidJSONError(err="unexpected EOF")
    assert (e.code, e.err_code, e.description) == (400, 10025, "invalid JSON: unexpected EOF")
    assert str(e) == "invalid JSON: unexpected EOF (10025)"
    assert E.JSStreamInvalidConfigError(err=ValueError("x")).description == "x"
    assert E.JSConsumerMaxPendingAckExcessError(limit=5).description.endswith("system limit of 5")
    assert E.JSStreamExternalDelPrefixOverlapsError(prefix="p", subject="s").description == \
        "stream external delivery prefix p overlaps with stream subject s"
    assert E.JSNotEnabledForAccountError().is_("JSNotEnabledForAccountErr")
    assert E.from_json(E.JSConsumerNotFoundError().to_json()) == E.JSConsumerNotFoundError()


# -- JSON and times

def test_go_json_escapes_like_go():
    assert jsapi.go_json({"s": ["a.>", "<&>"], "n": 1}) == b'{"s":["a.\\u003e","\\u003c\\u0026\\u003e"],"n":1}'


@pytest.mark.parametrize("ns,text", [
    (0, "1970-01-01T00:00:00Z"),
    (1_795_716_576_123_456_789, "2026-11-26T18:09:36.123456789Z"),
    (1_795_716_576_120_000_000, "2026-11-26T18:09:36.12Z"),
    (None, "0001-01-01T00:00:00Z"),
])
def test_format_and_parse_time(ns, text):
    assert jsapi.format_time(ns) == text
    assert jsapi.parse_time_ns(text) == (jsapi.ZERO_TIME_NS if ns is None else ns)


def test_time_offsets_and_errors():
    assert jsapi.normalize_time("2020-01-02T03:04:05.100+01:00") == "2020-01-02T03:04:05.1+01:00"
    assert jsapi.parse_time_ns("2020-01-02T03:04:05+01:00") == jsapi.parse_time_ns("2020-01-02T02:04:05Z")
    with pytest.raises(ValueError, match='cannot parse "bad" as "2006"'):
        jsapi.parse_time("bad")


@pytest.mark.parametrize("ns,text", [(0, "0s"), (1_500_000_000, "1.5s"), (90 * 10**9, "1m30s"),
                                     (100 * 10**6, "100ms"), (3600 * 10**9, "1h0m0s"), (1500, "1.5µs")])
def test_durations(ns, text):
    assert jsapi.format_duration(ns) == text
    assert jsapi.parse_duration(text) == ns


def test_parse_duration_errors():
    with pytest.raises(ValueError, match="invalid duration"):
        jsapi.parse_duration("abc")
    with pytest.raises(ValueError, match="missing unit"):
        jsapi.parse_duration("5")


def test_api_response_type_and_error_order():
    r = jsapi.api_response("STREAM.CREATE", error=E.JSStreamNotFoundError())
    assert list(r) == ["type", "error"]
    assert r["type"] == "io.nats.jetstream.api.v1.stream_create_response"
    assert jsapi.api_response("consumer_info_response", {"x": 1})["x"] == 1


# -- request decoding

@pytest.mark.parametrize("body,msg", [
    (b"{", "invalid JSON: unexpected EOF"),
    (b'{"name":"S",}', "invalid JSON: invalid character '}' looking for beginning of object key string at offset 13"),
    (b'{"name":"S","max_msgs":"1"}', "invalid JSON: json: cannot unmarshal string into Go struct field "
                                     "StreamConfigRequest.max_msgs of type int64"),
    (b'{"name":"S","x":1}', 'invalid JSON: json: unknown field "x"'),
    (b'{"name":"S","storage":"disk"}', 'invalid JSON: can not unmarshal "\\"disk\\""'),
])
def test_decode_stream_request_errors(body, msg):
    with pytest.raises(ApiError) as ei:
        jsapi.decode_stream_request(body)
    assert ei.value.err_code == 10025 and ei.value.description == msg


def test_decode_empty_and_multiple_values():
    assert jsapi.decode_stream_request(b"") == {}
    assert jsapi.decode_stream_request(b'{"name":"A"} {"name":"B"}')["name"] == "B"


# -- stream config

def test_stream_defaults():
    cfg = jsapi.normalize_stream_config({"name": "S"})
    assert cfg["subjects"] == ["S"] and cfg["duplicate_window"] == 120 * 10**9
    assert cfg["metadata"] == {"_nats.req.level": "0"}
    assert list(cfg)[:4] == ["name", "subjects", "retention", "max_consumers"]
    assert jsapi.normalize_stream_config({"name": "S", "max_age": 10**10})["duplicate_window"] == 10**10
    assert jsapi.with_dynamic_metadata(cfg)["metadata"] == {
        "_nats.level": "5", "_nats.req.level": "0", "_nats.ver": "2.15.1"}


@pytest.mark.parametrize("req,err_code,desc", [
    ({"name": "a.b"}, 10052, "stream name is required and can not contain '.', '*', '>', '\\', '/'"),
    ({"name": "S", "num_replicas": 3}, 10074, None),
    ({"name": "S", "subjects": ["a.*", "a.b"]}, 10052, 'subject "a.*" overlaps with "a.b"'),
    ({"name": "S", "max_age": 10**9, "duplicate_window": 2 * 10**9}, 10052,
     "duplicates window can not be larger then max age"),
    ({"name": "S", "mirror": {"name": "O"}, "subjects": ["x"]}, 10034, None),
])
def test_stream_errors(req, err_code, desc):
    with pytest.raises(ApiError) as ei:
        jsapi.normalize_stream_config(req)
    assert ei.value.err_code == err_code
    if desc:
        assert ei.value.description == desc


def test_stream_update_rules():
    old = jsapi.normalize_stream_config({"name": "S", "deny_delete": True})
    with pytest.raises(ApiError, match="can not change storage type"):
        jsapi.stream_config_update_check(old, {"name": "S", "storage": "memory", "deny_delete": True})
    with pytest.raises(ApiError, match="cancel deny message deletes"):
        jsapi.stream_config_update_check(old, {"name": "S"})
    with pytest.raises(ApiError, match="to/from workqueue"):
        jsapi.stream_config_update_check(old, {"name": "S", "retention": "workqueue", "deny_delete": True})
    new = jsapi.stream_config_update_check(old, {"name": "S", "deny_delete": True, "max_msgs": 5})
    assert new["max_msgs"] == 5
    sealed = jsapi.stream_config_update_check(old, {"name": "S", "deny_delete": True, "sealed": True})
    assert sealed["discard"] == "new" and sealed["deny_purge"]


# -- consumers

STREAM = jsapi.normalize_stream_config({"name": "S", "subjects": ["s.>"]})


def test_consumer_defaults_pull_and_push():
    pull = jsapi.normalize_consumer_config(STREAM, {"name": "C", "ack_policy": "explicit"})
    assert pull["ack_wait"] == 30 * 10**9 and pull["max_waiting"] == 512
    assert pull["max_ack_pending"] == 1000 and pull["inactive_threshold"] == 5 * 10**9
    push = jsapi.normalize_consumer_config(STREAM, {"durable_name": "D", "deliver_subject": "d"})
    assert push["ack_policy"] == "none" and "max_waiting" not in push and "inactive_threshold" not in push


def test_parse_consumer_create_subject_rules():
    cc = jsapi.parse_consumer_create("$JS.API.CONSUMER.CREATE.S.C.s.a",
                                     b'{"stream_name":"S","config":{"filter_subject":"s.a"}}')
    assert (cc.stream, cc.name) == ("S", "C")
    with pytest.raises(ApiError) as ei:
        jsapi.parse_consumer_create("$JS.API.CONSUMER.CREATE.S.C.s.a",
                                    b'{"stream_name":"S","config":{"filter_subject":"s.b"}}')
    assert ei.value.err_code == 10131
    with pytest.raises(ApiError) as ei:
        jsapi.parse_consumer_create("$JS.hub.API.CONSUMER.CREATE.S", b'{"stream_name":"S","config":'
                                    b'{"durable_name":"x"}}')
    assert ei.value.err_code == 10020


def test_consumer_update_rules():
    old = jsapi.normalize_consumer_config(STREAM, {"durable_name": "D", "ack_policy": "explicit"})
    assert jsapi.consumer_update_check(old, dict(old)) is None
    err = jsapi.consumer_update_check(old, dict(old, ack_policy="all"))
    assert err.err_code == 10012 and err.description == "ack policy can not be updated"
    err = jsapi.consumer_update_check(old, dict(old, deliver_subject="x"))
    assert err.description == "can not update pull consumer to push based"
    assert jsapi.consumer_update_check(old, dict(old, max_ack_pending=5)) is None


def test_workqueue_rules():
    cfg = {"ack_policy": "explicit", "deliver_policy": "all", "filter_subject": "w.a"}
    jsapi.check_workqueue_consumer(cfg, [])
    with pytest.raises(ApiError) as ei:
        jsapi.check_workqueue_consumer(cfg, [["w.*"]])
    assert ei.value.err_code == 10100
    with pytest.raises(ApiError) as ei:
        jsapi.check_workqueue_consumer(dict(cfg, filter_subject=""), [["w.b"]])
    assert ei.value.err_code == 10099


# -- subjects

@pytest.mark.parametrize("subject,expected", [
    ("$JS.API.INFO", ("INFO", "", "", "", "")),
    ("$JS.API.STREAM.CREATE.S", ("STREAM.CREATE", "S", "", "", "")),
    ("$JS.API.CONSUMER.CREATE.S.C.foo.>", ("CONSUMER.CREATE", "S", "C", "foo.>", "")),
    ("$JS.API.CONSUMER.CREATE.S", ("CONSUMER.CREATE", "S", "", "", "")),
    ("$JS.API.CONSUMER.DURABLE.CREATE.S.D", ("CONSUMER.DURABLE.CREATE", "S", "D", "", "")),
    ("$JS.API.CONSUMER.MSG.NEXT.S.C", ("CONSUMER.MSG.NEXT", "S", "C", "", "")),
    ("$JS.API.DIRECT.GET.KV_b.$KV.b.k", ("DIRECT.GET", "KV_b", "", "$KV.b.k", "")),
    ("$JS.hub.API.STREAM.INFO.S", ("STREAM.INFO", "S", "", "", "hub")),
    ("$JS.API.STREAM.MSG.GET.S", ("STREAM.MSG.GET", "S", "", "", "")),
])
def test_parse_api_subject(subject, expected):
    assert tuple(jsapi.parse_api_subject(subject)) == expected


def test_parse_api_subject_not_api():
    assert jsapi.parse_api_subject("foo.bar") is None


# -- pull requests

def test_pull_requests():
    assert jsapi.parse_pull_request(b"").batch == 1
    assert jsapi.parse_pull_request(b" 10 ").batch == 10
    pr = jsapi.parse_pull_request(b'{"batch":5,"expires":1000000000,"no_wait":true}')
    assert (pr.batch, pr.expires, pr.no_wait) == (5, 10**9, True)
    with pytest.raises(jsapi.PullRequestError) as ei:
        jsapi.parse_pull_request(b'{"batch":1,"expires":1000000000,"idle_heartbeat":600000000}')
    assert ei.value.header() == b"NATS/1.0 400 Bad Request - heartbeat value too large\r\n\r\n"
    with pytest.raises(jsapi.PullRequestError, match="Exceeded MaxRequestBatch of 2"):
        jsapi.check_pull_request(jsapi.PullRequest(batch=3), {"max_batch": 2})


# -- acks

@pytest.mark.parametrize("payload,kind,extra", [
    (b"", "ack", None), (b"+ACK", "ack", None), (b"+OK", "ack", None),
    (b"-NAK", "nak", None), (b'-NAK {"delay": 2000000000}', "nak", 2 * 10**9), (b"-NAK 1s", "nak", 10**9),
    (b"-NAK bogus", "nak", None), (b"+WPI", "progress", None), (b"+NXT 5", "next", None),
    (b"+TERM too bad ", "term", None), (b"what", "unknown", None),
])
def test_parse_ack(payload, kind, extra):
    a = jsapi.parse_ack(payload)
    assert a.kind == kind
    if kind == "nak":
        assert a.delay == extra
    if kind == "term":
        assert a.reason == "too bad"
    if kind == "next":
        assert a.next_request == b" 5"


def test_ack_reply_subject_round_trip():
    subj = jsapi.ack_reply_subject("S", "C", 1, 10, 3, 1700000000000000000, 7)
    assert subj == "$JS.ACK.S.C.1.10.3.1700000000000000000.7"
    r = jsapi.parse_ack_reply(subj)
    assert (r.stream, r.consumer, r.delivered, r.stream_seq, r.consumer_seq, r.pending) == ("S", "C", 1, 10, 3, 7)
    v2 = jsapi.parse_ack_reply("$JS.ACK.dom.ACCHASH.S.C.1.10.3.17.7.rand")
    assert v2.domain == "dom" and v2.stream_seq == 10
    assert jsapi.parse_ack_reply("$JS.ACK.S.C.1") is None


def test_pub_ack_bytes():
    assert jsapi.pub_ack("S", 1) == b'{"stream":"S","seq":1}'
    assert jsapi.pub_ack("S", 1, duplicate=True) == b'{"stream":"S","seq":1,"duplicate": true}'
    assert jsapi.pub_ack("S", 2, domain="hub") == b'{"stream":"S","domain":"hub","seq":2}'
    assert jsapi.pub_ack_error(E.JSStreamNotFoundError()) == \
        b'{"error":{"code":404,"err_code":10059,"description":"stream not found"}}'
