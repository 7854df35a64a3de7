"""JetStream streams through nats-py's JetStream API, on actor-nats and on the reference
(`-js -sd <tmp>`): create/update/info/delete, publish acks and their errors, limits, retention,
message get/delete, purge, direct get, recovery from the file store after a restart. Every test
runs on both servers, so the reference proves each expectation. The crash test (the Stream actor
killed under publish load) is actor-nats only.
"""

from __future__ import annotations

import asyncio
import tempfile

import nats
import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from tests.chaos.helpers import KILL_CONFIG, Chaos
from tests.interop.helpers import run
from tests.servers import free_port


def js_args(sd: str | None = None) -> list[str]:
    return ["-js", "-sd", sd or tempfile.mkdtemp(prefix="an-js-")]


@pytest.fixture
def js_server(impl, start_server):
    return start_server(impl, args=js_args())


def test_stream_lifecycle(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        info = await js.add_stream(name="ORDERS", subjects=["orders.>"])
        assert info.config.name == "ORDERS" and info.state.messages == 0
        # idempotent with the same config; 10058 with a different one
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        with pytest.raises(BadRequestError) as e:
            await js.add_stream(name="ORDERS", subjects=["orders.*"])
        assert e.value.err_code == 10058
        with pytest.raises(BadRequestError) as e:
            await js.add_stream(name="OTHER", subjects=["orders.new"])
        assert e.value.err_code == 10065
        for i in range(5):
            ack = await js.publish(f"orders.{i % 2}", f"m{i}".encode())
            assert (ack.stream, ack.seq) == ("ORDERS", i + 1)
        info = await js.stream_info("ORDERS", subjects_filter=">")
        assert info.state.messages == 5 and info.state.subjects == {"orders.0": 3, "orders.1": 2}
        assert await js.find_stream_name_by_subject("orders.x") == "ORDERS"
        cfg = info.config
        cfg.subjects = ["orders.>", "returns"]
        info = await js.update_stream(cfg)
        assert info.config.subjects == ["orders.>", "returns"]
        await js.publish("returns", b"r")
        names = await js.streams_info()
        assert [s.config.name for s in names] == ["ORDERS"]
        acc = await js.account_info()
        assert acc.streams == 1 and acc.storage > 0
        assert await js.delete_stream("ORDERS")
        with pytest.raises(NotFoundError):
            await js.stream_info("ORDERS")
        await nc.close()
    run(main)


def test_dedupe_and_expected_headers(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="D", subjects=["d.>"], storage=StorageType.MEMORY)
        a1 = await js.publish("d.a", b"1", headers={"Nats-Msg-Id": "one"})
        a2 = await js.publish("d.a", b"1", headers={"Nats-Msg-Id": "one"})
        assert (a1.seq, a1.duplicate) == (1, None) and (a2.seq, a2.duplicate) == (1, True)
        with pytest.raises(APIError) as e:
            await js.publish("d.a", b"x", stream="NOT_D")
        assert e.value.err_code == 10060
        with pytest.raises(APIError) as e:
            await js.publish("d.a", b"x", headers={"Nats-Expected-Last-Sequence": "7"})
        assert e.value.err_code == 10071
        with pytest.raises(APIError) as e:
            await js.publish("d.b", b"x", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
        assert e.value.err_code == 10071
        ok = await js.publish("d.b", b"x", headers={"Nats-Expected-Last-Subject-Sequence": "0"})
        assert ok.seq == 2
        with pytest.raises(APIError) as e:
            await js.publish("d.c", b"x", headers={"Nats-Expected-Last-Msg-Id": "one"})
        assert e.value.err_code == 10070
        await nc.close()
    run(main)


def test_limits_discard_and_rollup(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="OLD", subjects=["old.>"], max_msgs=3, max_msgs_per_subject=2)
        for i in range(5):
            await js.publish("old.a" if i < 4 else "old.b", str(i).encode())
        info = await js.stream_info("OLD")
        assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (3, 3, 5)
        await js.add_stream(name="NEW", subjects=["new"], max_msgs=2, discard=DiscardPolicy.NEW)
        await js.publish("new", b"1")
        await js.publish("new", b"2")
        with pytest.raises(APIError) as e:
            await js.publish("new", b"3")
        assert e.value.err_code == 10077 and e.value.description == "maximum messages exceeded"
        await js.add_stream(name="SZ", subjects=["sz"], max_msg_size=8)
        with pytest.raises(APIError) as e:
            await js.publish("sz", b"123456789")
        assert e.value.err_code == 10054
        await js.add_stream(name="RU", subjects=["ru.>"], allow_rollup_hdrs=True)
        for i in range(3):
            await js.publish("ru.x", str(i).encode())
        await js.publish("ru.y", b"y")
        await js.publish("ru.x", b"last", headers={"Nats-Rollup": "sub"})
        info = await js.stream_info("RU")
        assert info.state.messages == 2
        await js.publish("ru.z", b"all", headers={"Nats-Rollup": "all"})
        info = await js.stream_info("RU")
        assert (info.state.messages, info.state.last_seq) == (1, 6)
        await nc.close()
    run(main)


def test_max_age_expires(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="AGE", subjects=["age"], max_age=1.0)
        await js.publish("age", b"x")
        for _ in range(60):
            if (await js.stream_info("AGE")).state.messages == 0:
                break
            await asyncio.sleep(0.1)
        assert (await js.stream_info("AGE")).state.messages == 0
        await nc.close()
    run(main)


def test_msg_get_delete_purge(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="G", subjects=["g.>"], allow_direct=True)
        for s in ("g.a", "g.b", "g.a", "g.c", "g.b"):
            await js.publish(s, s.encode())
        m = await js.get_msg("G", seq=2)
        assert (m.subject, m.seq, m.data) == ("g.b", 2, b"g.b")
        m = await js.get_msg("G", subject="g.a")
        assert m.seq == 3
        m = await js.get_msg("G", subject="g.b", direct=True)
        assert m.seq == 5
        m = await js.get_msg("G", seq=1, direct=True)
        assert m.subject == "g.a"
        with pytest.raises(NotFoundError):
            await js.get_msg("G", seq=99)
        assert await js.delete_msg("G", 2)
        with pytest.raises(APIError):
            await js.delete_msg("G", 2)
        info = await js.stream_info("G")
        assert info.state.messages == 4
        await js.purge_stream("G", subject="g.a")
        assert (await js.stream_info("G")).state.messages == 2
        await js.purge_stream("G", keep=1)
        assert (await js.stream_info("G")).state.messages == 1
        await js.purge_stream("G")
        info = await js.stream_info("G")
        assert (info.state.messages, info.state.first_seq) == (0, 6)
        await nc.close()
    run(main)


def test_deny_delete_purge_and_sealed(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        info = await js.add_stream(name="P", subjects=["p"], deny_delete=True, deny_purge=True)
        await js.publish("p", b"x")
        with pytest.raises(APIError) as e:
            await js.delete_msg("P", 1)
        assert e.value.err_code == 10057
        with pytest.raises(APIError) as e:
            await js.purge_stream("P")
        assert e.value.err_code == 10110
        cfg = info.config
        cfg.sealed = True
        await js.update_stream(cfg)
        with pytest.raises(APIError) as e:
            await js.publish("p", b"y")
        assert e.value.err_code == 10109
        await nc.close()
    run(main)


def test_workqueue_and_interest_retention(js_server):
    async def main():
        nc = await nats.connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="WQ", subjects=["wq.>"], retention=RetentionPolicy.WORK_QUEUE)
        for i in range(3):
            await js.publish("wq.a", str(i).encode())
        sub = await js.pull_subscribe("wq.a", "workers", stream="WQ")
        msgs = await sub.fetch(3, timeout=5)
        for m in msgs:
            await m.ack_sync()
        for _ in range(50):
            if (await js.stream_info("WQ")).state.messages == 0:
                break
            await asyncio.sleep(0.05)
        assert (await js.stream_info("WQ")).state.messages == 0
        await js.add_stream(name="IN", subjects=["in.>"], retention=RetentionPolicy.INTEREST)
        await js.publish("in.a", b"nobody listens")
        assert (await js.stream_info("IN")).state.messages == 0
        s1 = await js.pull_subscribe("in.a", "one", stream="IN")
        s2 = await js.pull_subscribe("in.>", "two", stream="IN")
        await js.publish("in.a", b"both")
        (m1,) = await s1.fetch(1, timeout=5)
        await m1.ack_sync()
        assert (await js.stream_info("IN")).state.messages == 1
        (m2,) = await s2.fetch(1, timeout=5)
        await m2.ack_sync()
        for _ in range(50):
            if (await js.stream_info("IN")).state.messages == 0:
                break
            await asyncio.sleep(0.05)
        assert (await js.stream_info("IN")).state.messages == 0
        await nc.close()
    run(main)


@pytest.mark.parametrize("storage", [StorageType.FILE])
def test_file_stream_recovers_after_restart(impl, start_server, storage):
    sd = tempfile.mkdtemp(prefix="an-js-")

    async def fill(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="KEEP", subjects=["keep.>"], storage=storage, max_msgs_per_subject=5))
        for i in range(20):
            await js.publish(f"keep.{i % 3}", f"m{i}".encode(), headers={"Nats-Msg-Id": f"id{i}"})
        await nc.close()

    async def check(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info("KEEP")
        assert (info.state.messages, info.state.last_seq) == (15, 20)
        assert info.config.max_msgs_per_subject == 5
        m = await js.get_msg("KEEP", subject="keep.1")
        assert (m.seq, m.data) == (20, b"m19")
        # the dedupe window survives the restart
        ack = await js.publish("keep.1", b"again", headers={"Nats-Msg-Id": "id19"})
        assert ack.duplicate and ack.seq == 20
        await nc.close()

    srv = start_server(impl, args=js_args(sd))
    run(fill, srv.url)
    srv.stop()
    srv = start_server(impl, args=js_args(sd))
    run(check, srv.url)


def test_jetstream_off_means_no_responders(impl, start_server):
    srv = start_server(impl)

    async def main():
        nc = await nats.connect(srv.url)
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("$JS.API.INFO", b"", timeout=2)
        await nc.close()
    run(main)


@pytest.mark.parametrize("storage", [StorageType.MEMORY, StorageType.FILE])
def test_stream_actor_killed_under_load_keeps_acked(start_server, storage):
    """Kill the Stream actor repeatedly while publishers wait for acks: every acked message is
    still in the stream afterwards (a message that got no ack may or may not be)."""
    http_port = free_port()
    srv = start_server("actor", config=KILL_CONFIG, args=["-m", str(http_port), *js_args()])
    chaos = Chaos(srv, http_port)
    path = "/server/jetstream/$G/LOAD"

    async def main():
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="LOAD", subjects=["load.>"], storage=storage)
        acked: dict[int, bytes] = {}
        stop = asyncio.Event()

        async def publisher(n):
            i = 0
            while not stop.is_set():
                data = f"{n}-{i}".encode()
                i += 1
                try:
                    ack = await js.publish(f"load.{n}", data, timeout=1.0)
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                        nats.js.errors.NoStreamResponseError):
                    continue
                assert ack.seq not in acked
                acked[ack.seq] = data
        tasks = [asyncio.create_task(publisher(n)) for n in range(4)]
        kills = 0
        for _ in range(5):
            await asyncio.sleep(0.3)
            if (await chaos.kill(path)).get("killed"):
                kills += 1
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        assert kills >= 3 and len(acked) > 50
        for seq, data in acked.items():
            m = await js.get_msg("LOAD", seq=seq)
            assert m.data == data
        await nc.close()
    run(main, timeout=120)


ACCOUNTS_CONFIG = """
accounts {
  A: { jetstream: { max_streams: 1, max_consumers: 2 }, users: [{user: a, password: a}] }
  B: { users: [{user: b, password: b}] }
}
"""


def test_account_limits_and_not_enabled(impl, start_server):
    srv = start_server(impl, config=ACCOUNTS_CONFIG, args=js_args())

    async def main():
        na = await nats.connect(srv.url, user="a", password="a")
        nb = await nats.connect(srv.url, user="b", password="b")
        ja, jb = na.jetstream(), nb.jetstream()
        acc = await ja.account_info()
        assert (acc.limits.max_streams, acc.limits.max_consumers) == (1, 2)
        await ja.add_stream(name="ONE", subjects=["one"])
        with pytest.raises(BadRequestError) as e:
            await ja.add_stream(name="TWO", subjects=["two"])
        assert e.value.err_code == 10027
        with pytest.raises(APIError) as e:
            await jb.account_info()
        assert e.value.err_code == 10039
        with pytest.raises(APIError) as e:
            await jb.add_stream(name="B1", subjects=["b1"])
        assert e.value.err_code == 10039
        await na.close()
        await nb.close()
    run(main)
