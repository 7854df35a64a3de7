"""Subject delete markers (`subject_delete_marker_ttl`, ADR-48) on both servers: when the last
message of a subject ages out, a marker takes its place (no body; `Nats-Marker-Reason: MaxAge`,
`Nats-TTL`, `Nats-Rollup: sub`), and the marker itself expires without leaving another; a
message TTL below the marker TTL is raised to it."""

from __future__ import annotations

import base64
import json
import tempfile
import time

from tests.wire.test_js_stream_api import Requester


def wait_for(check, timeout: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def api(r: Requester, subject: str, body: dict | None = None) -> dict:
    return json.loads(r.request(subject, json.dumps(body).encode() if body is not None else b"")[1])


def last_of(r: Requester, subject: str) -> dict | None:
    resp = api(r, "$JS.API.STREAM.MSG.GET.M", {"last_by_subj": subject})
    return resp.get("message")


def test_markers_replace_the_last_message_of_a_subject_and_expire(impl, start_server):
    srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jssdm-")])
    r = Requester(srv)
    cfg = api(r, "$JS.API.STREAM.CREATE.M", {"name": "M", "subjects": ["m.>"], "max_age": 1_000_000_000,
                                             "subject_delete_marker_ttl": 1_000_000_000})["config"]
    assert cfg["allow_msg_ttl"] is True and cfg["allow_rollup_hdrs"] is True
    for subject in ("m.a", "m.b", "m.b"):
        assert "error" not in json.loads(r.request(subject, b"data")[1])

    def markers():
        msgs = [last_of(r, s) for s in ("m.a", "m.b")]
        if all(m and not m.get("data") for m in msgs):
            return msgs
        return None

    for m in wait_for(markers, what="the delete markers"):
        hdrs = base64.b64decode(m["hdrs"])
        assert hdrs.startswith(b"NATS/1.0\r\n")
        assert b"Nats-Marker-Reason: MaxAge\r\n" in hdrs and b"Nats-TTL: 1s\r\n" in hdrs
        assert b"Nats-Rollup: sub\r\n" in hdrs
    assert api(r, "$JS.API.STREAM.INFO.M")["state"]["messages"] == 2
    # the markers expire in turn, leaving nothing behind
    wait_for(lambda: api(r, "$JS.API.STREAM.INFO.M")["state"]["messages"] == 0, what="an empty stream")
    assert api(r, "$JS.API.STREAM.INFO.M")["state"]["messages"] == 0
    r.close()


def test_a_short_message_ttl_is_raised_to_the_marker_ttl(impl, start_server):
    srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jssdm-")])
    r = Requester(srv)
    api(r, "$JS.API.STREAM.CREATE.M", {"name": "M", "subjects": ["m.>"], "allow_msg_ttl": True,
                                       "subject_delete_marker_ttl": 5_000_000_000})
    ack = json.loads(r.request("m.t", b"x", headers={"Nats-TTL": "1s", "A": "b"})[1])
    assert ack["seq"] == 1
    hdrs = base64.b64decode(last_of(r, "m.t")["hdrs"])
    assert b"Nats-TTL: 5\r\n" in hdrs and b"Nats-TTL: 1s" not in hdrs and b"A: b\r\n" in hdrs
    r.close()
