"""/jsz and the JetStream section of /varz, on both servers for the same scenario (a file stream
with five messages and a durable pull consumer): the same keys with the same JSON types at
every level, and the same counts."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import nats
import pytest

from tests.servers import free_port


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10) as r:
        return json.loads(r.read())


def _shape(v):
    """Keys and JSON types, recursively (lists by their first element)."""
    if isinstance(v, dict):
        return {k: _shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_shape(v[0])] if v else []
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


@pytest.fixture
def js_server(impl, start_server, tmp_path):
    http = free_port()
    srv = start_server(impl, args=["-js", "-sd", str(tmp_path), "-m", str(http)])
    srv.http_port = http

    async def setup():
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        for _ in range(5):
            await js.publish("s.x", b"hi")
        await js.pull_subscribe("s.>", durable="D")
        await nc.close()

    asyncio.run(setup())
    return srv


def test_jsz_counts(js_server):
    body = _get(js_server.http_port, "jsz")
    assert (body["streams"], body["consumers"], body["messages"], body["accounts"]) == (1, 1, 5, 1)
    assert body["storage"] == body["bytes"] > 0 and body["memory"] == 0
    assert body["api"]["total"] >= 3 and body["api"]["level"] >= 1
    assert "disabled" not in body and "account_details" not in body


def test_jsz_details_shape_matches_reference(js_server, start_server, tmp_path_factory):
    ours = _get(js_server.http_port, "jsz?streams=1&consumers=1&config=1")
    stream = ours["account_details"][0]["stream_detail"][0]
    assert stream["name"] == "S" and stream["state"]["messages"] == 5
    assert stream["consumer_detail"][0]["name"] == "D"
    assert stream["consumer_detail"][0]["num_pending"] == 5
    varz = _get(js_server.http_port, "varz")["jetstream"]
    assert set(varz) == {"config", "stats", "limits"}
    assert varz["stats"]["storage"] == ours["storage"]
    if js_server.impl == "reference":
        return
    # the same scenario on the reference: the same keys and types everywhere
    http = free_port()
    ref = start_server("reference", args=["-js", "-sd", str(tmp_path_factory.mktemp("ref")), "-m", str(http)])

    async def setup():
        nc = await nats.connect(ref.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        for _ in range(5):
            await js.publish("s.x", b"hi")
        await js.pull_subscribe("s.>", durable="D")
        await nc.close()

    asyncio.run(setup())
    theirs = _get(http, "jsz?streams=1&consumers=1&config=1")
    assert _shape(ours) == _shape(theirs)
    assert _shape(varz) == _shape(_get(http, "varz")["jetstream"])
