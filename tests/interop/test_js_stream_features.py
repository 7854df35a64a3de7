"""Stream features through nats-py, on actor-nats and on the reference (`-js -sd <tmp>`):
republish (with and without headers_only, the Nats-* headers the reference adds) and
subject_transform (wildcards and the mapping functions), the stored subjects read back with
MSG.GET and through a consumer. Every test runs on both servers, so the reference proves each
expectation.
"""

from __future__ import annotations

import asyncio
import json
import tempfile

import nats
import pytest
from nats.js.api import RePublish, StreamConfig, SubjectTransform

from tests.interop.helpers import run


@pytest.fixture
def js_server(impl, start_server):
    return start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-js-")])


async def _stored_subjects(nc, stream: str, n: int) -> list[str]:
    out = []
    for seq in range(1, n + 1):
        m = await nc.request(f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": seq}).encode())
        out.append(json.loads(m.data)["message"]["subject"])
    return out


def test_republish(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        got: list = []
        await nc.subscribe("rp.>", cb=_collector(got))
        await js.add_stream(StreamConfig(name="S", subjects=["a.>"],
                                         republish=RePublish(src="a.*.>", dest="rp.{{wildcard(1)}}.>")))
        await js.add_stream(StreamConfig(name="H", subjects=["h.>"],
                                         republish=RePublish(src=">", dest="rp.h.>", headers_only=True)))
        info = await js.stream_info("S")
        assert info.config.republish.src == "a.*.>" and info.config.republish.dest == "rp.{{wildcard(1)}}.>"
        acks = [await js.publish("a.x.1", b"one"), await js.publish("a.y.2", b"two", headers={"Foo": "bar"}),
                await js.publish("a.x.1", b"three"), await js.publish("h.k", b"1234567")]
        assert [a.seq for a in acks] == [1, 2, 3, 1]
        for _ in range(50):
            if len(got) >= 4:
                break
            await asyncio.sleep(0.05)
        got.sort(key=lambda g: (g[1].get("Nats-Stream"), int(g[1]["Nats-Sequence"])))
        for g in got:
            assert g[1].pop("Nats-Time-Stamp").endswith("Z")
        assert got == [
            ("rp.h.h.k", {"Nats-Stream": "H", "Nats-Subject": "h.k", "Nats-Sequence": "1",
                          "Nats-Last-Sequence": "0", "Nats-Msg-Size": "7"}, b""),
            ("rp.x.1", {"Nats-Stream": "S", "Nats-Subject": "a.x.1", "Nats-Sequence": "1",
                        "Nats-Last-Sequence": "0"}, b"one"),
            ("rp.y.2", {"Foo": "bar", "Nats-Stream": "S", "Nats-Subject": "a.y.2", "Nats-Sequence": "2",
                        "Nats-Last-Sequence": "0"}, b"two"),
            ("rp.x.1", {"Nats-Stream": "S", "Nats-Subject": "a.x.1", "Nats-Sequence": "3",
                        "Nats-Last-Sequence": "1"}, b"three"),
        ]
        # a republish destination inside the stream's own subjects is a cycle
        with pytest.raises(nats.js.errors.APIError) as e:
            await js.add_stream(StreamConfig(name="C", subjects=["c.>"], republish=RePublish(src=">", dest="c.x.>")))
        assert e.value.err_code == 10052
        await nc.close()

    run(main)


def _collector(got: list):
    async def cb(m):
        got.append((m.subject, dict(m.headers or {}), m.data))
    return cb


def test_subject_transform(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="T", subjects=["t.>"], subject_transform=SubjectTransform(
            src="t.*.*", dest="tt.{{wildcard(2)}}.{{partition(2,1,2)}}.{{Partition(2)}}.$1")))
        await js.add_stream(StreamConfig(name="U", subjects=["u.>"], subject_transform=SubjectTransform(
            src="u.*.*", dest="uu.{{split(1,-)}}.{{splitfromleft(2,2)}}.{{SplitFromRight(1,2)}}."
                             "{{slicefromleft(2,2)}}.{{slicefromright(2,2)}}")))
        await js.add_stream(StreamConfig(name="W", subjects=["w.>"], subject_transform=SubjectTransform(
            src="w.>", dest="ww.>")))
        for s in ["t.k1.k2", "t.abc.defg", "t.x", "t.k1.k2.k3"]:
            await js.publish(s, b"p")
        for s in ["u.a-b--c.defgh", "u.abcde.fghij"]:
            await js.publish(s, b"p")
        await js.publish("w.a.b", b"p")
        assert await _stored_subjects(nc, "T", 4) == ["tt.k2.0.0.k1", "tt.defg.1.1.abc", "t.x", "t.k1.k2.k3"]
        assert await _stored_subjects(nc, "U", 2) == ["uu.a.b.c.de.fgh.a-b-.-c.de.fg.h.d.ef.gh",
                                                      "uu.abcde.fg.hij.abc.de.fg.hi.j.f.gh.ij"]
        assert await _stored_subjects(nc, "W", 1) == ["ww.a.b"]
        # consumers see the stored subject, and filter on it
        sub = await js.pull_subscribe("tt.>", durable="d", stream="T")
        msgs = await sub.fetch(2, timeout=2)
        assert [m.subject for m in msgs] == ["tt.k2.0.0.k1", "tt.defg.1.1.abc"]
        info = await js.stream_info("T", subjects_filter=">")
        assert info.state.subjects == {"tt.k2.0.0.k1": 1, "tt.defg.1.1.abc": 1, "t.x": 1, "t.k1.k2.k3": 1}
        await nc.close()

    run(main)


def test_transform_then_republish(js_server):
    """The republish source matches the transformed subject."""
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        got: list = []
        await nc.subscribe("out.>", cb=_collector(got))
        await js.add_stream(StreamConfig(name="X", subjects=["in.>"],
                                         subject_transform=SubjectTransform(src="in.*", dest="mid.{{wildcard(1)}}"),
                                         republish=RePublish(src="mid.*", dest="out.$1")))
        await js.publish("in.a", b"A")
        await js.publish("in.a.b", b"B")  # not transformed, not republished
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        assert [(s, h["Nats-Subject"], d) for s, h, d in got] == [("out.a", "mid.a", b"A")]
        await nc.close()

    run(main)
