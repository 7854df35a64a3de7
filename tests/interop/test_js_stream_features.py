"""Stream features through nats-py, on actor-nats and on the reference (`-js -sd <tmp>`):
republish (with and without headers_only, the Nats-* headers the reference adds) and
subject_transform (wildcards and the mapping functions), the stored subjects read back with
MSG.GET and through a consumer; sources (filters, transforms, start sequence and time, the
Nats-Stream-Source header) and mirrors (same sequences, gaps and headers kept) within one
server, and both after a restart. Every test runs on both servers, so the reference proves each
expectation.
"""

from __future__ import annotations

import asyncio
import json
import tempfile

import nats
import pytest
from nats.js.api import RePublish, StreamConfig, StreamSource, SubjectTransform

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


async def _msgs(nc, stream: str, upto: int) -> dict:
    """seq -> (subject, headers or {}, data) of the messages stored in `stream` up to `upto`."""
    import base64

    out = {}
    for seq in range(1, upto + 1):
        m = await nc.request(f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": seq}).encode())
        d = json.loads(m.data)
        if "message" not in d:
            continue
        mm = d["message"]
        hdrs = base64.b64decode(mm.get("hdrs", "")).decode()
        h = dict(line.split(": ", 1) for line in hdrs.split("\r\n")[1:] if line)
        out[seq] = (mm["subject"], h, base64.b64decode(mm.get("data", "")))
    return out


async def _wait_count(js, stream: str, n: int, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if (await js.stream_info(stream)).state.messages >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stream} has {(await js.stream_info(stream)).state.messages} messages, want {n}")


def _sourced(msgs: dict) -> list:
    """(subject, data, Nats-Stream-Source without its id, other headers) sorted."""
    out = []
    for subject, h, data in msgs.values():
        h = dict(h)
        src = h.pop("Nats-Stream-Source", "")
        out.append((subject, data, " ".join(src.split(" ")[:5]), sorted(h.items())))
    return sorted(out)


def test_sources(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o.>"])
        for i in range(5):
            await js.publish(f"o.{i % 2}", f"m{i}".encode(), headers={"H": "3"} if i == 3 else None)
        info = await js.add_stream(StreamConfig(name="S", subjects=["s.>"], sources=[
            StreamSource(name="O", opt_start_seq=2, filter_subject="o.1"),
            StreamSource(name="O", subject_transforms=[SubjectTransform(src="o.0", dest="zero")])]))
        assert sorted(s.name for s in info.sources) == ["O", "O"]
        await js.publish("s.x", b"own")
        await js.publish("o.1", b"late")
        await _wait_count(js, "S", 7)
        assert _sourced(await _msgs(nc, "S", 8)) == [
            ("o.1", b"late", "O 6 o.1 > o.1", []),
            ("o.1", b"m1", "O 2 o.1 > o.1", []),
            ("o.1", b"m3", "O 4 o.1 > o.1", [("H", "3")]),
            ("s.x", b"own", "", []),
            ("zero", b"m0", "O 1 o.0 zero o.0", []),
            ("zero", b"m2", "O 3 o.0 zero o.0", []),
            ("zero", b"m4", "O 5 o.0 zero o.0", []),
        ]
        info = await js.stream_info("S")
        assert sorted((s.name, s.lag) for s in info.sources) == [("O", 0), ("O", 0)]
        # a source that does not exist yet is read once it does
        await js.add_stream(StreamConfig(name="LATER", subjects=["later"], sources=[StreamSource(name="P")]))
        await js.add_stream(name="P", subjects=["p"])
        await js.publish("p", b"x")
        await _wait_count(js, "LATER", 1)
        await nc.close()

    run(main)


def test_source_start_time(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o"])
        for i in range(3):
            await js.publish("o", f"old{i}".encode())
        m = await nc.request("$JS.API.STREAM.MSG.GET.O", json.dumps({"seq": 3}).encode())
        t3 = json.loads(m.data)["message"]["time"]
        await asyncio.sleep(0.05)
        await js.publish("o", b"new")
        cfg = {"name": "S", "subjects": ["s"], "sources": [{"name": "O", "opt_start_time": t3}]}
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.S", json.dumps(cfg).encode())).data)
        assert "error" not in r
        await _wait_count(js, "S", 2)
        await asyncio.sleep(0.3)
        assert [d for _, _, d in (await _msgs(nc, "S", 3)).values()] == [b"old2", b"new"]
        await nc.close()

    run(main)


def test_mirror(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o.>"])
        for i in range(5):
            await js.publish(f"o.{i}", f"m{i}".encode(), headers={"H": "1"} if i == 1 else None)
        await js.delete_msg("O", 3)
        with pytest.raises(nats.js.errors.APIError) as e:
            await js.add_stream(StreamConfig(name="BAD", subjects=["b"], mirror=StreamSource(name="O")))
        assert e.value.err_code == 10034
        info = await js.add_stream(StreamConfig(name="M", mirror=StreamSource(name="O")))
        assert info.mirror.name == "O"
        await js.publish("o.5", b"m5")
        await _wait_count(js, "M", 5)
        origin, mirror = await _msgs(nc, "O", 7), await _msgs(nc, "M", 7)
        assert sorted(mirror) == [1, 2, 4, 5, 6]
        assert mirror == origin
        info = await js.stream_info("M")
        assert (info.state.first_seq, info.state.last_seq, info.mirror.name, info.mirror.lag) == (1, 6, "O", 0)
        # the mirror keeps the origin's timestamps
        for seq in (1, 6):
            a = json.loads((await nc.request("$JS.API.STREAM.MSG.GET.O", json.dumps({"seq": seq}).encode())).data)
            b = json.loads((await nc.request("$JS.API.STREAM.MSG.GET.M", json.dumps({"seq": seq}).encode())).data)
            assert a["message"]["time"] == b["message"]["time"]
        await nc.close()

    run(main)


def test_sources_and_mirror_after_restart(impl, start_server):
    """Nothing sourced or mirrored twice after a restart; what came in meanwhile follows."""
    sd = tempfile.mkdtemp(prefix="an-js-")

    async def fill(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o"])
        await js.add_stream(StreamConfig(name="S", subjects=["s"], sources=[StreamSource(name="O")]))
        await js.add_stream(StreamConfig(name="M", mirror=StreamSource(name="O")))
        for i in range(4):
            await js.publish("o", f"m{i}".encode())
        await _wait_count(js, "S", 4)
        await _wait_count(js, "M", 4)
        await nc.close()

    async def check(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.publish("o", b"m4")
        await _wait_count(js, "S", 5)
        await _wait_count(js, "M", 5)
        await asyncio.sleep(0.5)
        assert (await js.stream_info("S")).state.messages == 5
        assert (await js.stream_info("M")).state.last_seq == 5
        assert [d for _, _, d in (await _msgs(nc, "S", 6)).values()] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        await nc.close()

    srv = start_server(impl, args=["-js", "-sd", sd])
    run(fill, srv.url)
    srv.stop()
    srv = start_server(impl, args=["-js", "-sd", sd])
    run(check, srv.url)


def test_no_ack(js_server):
    """no_ack: the message is stored and nothing answers, not even an error."""
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="N", subjects=["n"], no_ack=True, max_msg_size=3))
        for body in (b"ok", b"toolong"):
            with pytest.raises(nats.errors.TimeoutError):
                await nc.request("n", body, timeout=0.3)
        assert (await js.stream_info("N")).state.messages == 1
        await nc.close()

    run(main)
