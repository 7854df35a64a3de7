"""Kill the Listener, the Monitor and the Config actor: each is restarted by the root and does
its job again (new connections are accepted, the monitoring port answers, a reload is
applied), while existing clients keep being served without noticing.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.chaos.helpers import (
    KILL_CONFIG, RawClient, Tally, connect_watched, http_json, send_markers,
)
from tests.interop.helpers import Clients, eventually, flush, run, unique


async def _check_new_connection(srv, clients) -> None:
    """A brand-new nats-py client and a raw socket are accepted and served."""
    fresh = await clients.connect(name="fresh")
    subject = unique("fresh.")
    sub = await fresh.subscribe(subject)
    await flush(fresh)
    await fresh.publish(subject, b"hello")
    assert (await sub.next_msg(timeout=10)).data == b"hello"
    await fresh.close()
    raw = await RawClient().connect(srv.server.host, srv.server.port)
    assert raw.info["client_id"] > 0
    await raw.close()


def test_kill_listener_monitor_and_config(chaos):
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            pub, w_pub = await connect_watched(clients, "pub")
            sub, w_sub = await connect_watched(clients, "sub")
            tally = Tally("sub")
            await sub.subscribe("live.x", cb=tally.callback())
            await flush(sub)
            targets = [("live.x", tally)]
            await send_markers(pub, targets)
            ids = (pub.client_id, sub.client_id)
            before = await srv.actorz()

            # Listener: new connections are still accepted
            entry = await srv.kill_and_wait("/server/listener")
            assert entry["listen"] == before["/server/listener"]["listen"]
            await _check_new_connection(srv, clients)
            await send_markers(pub, targets)

            # Monitor: the monitoring port answers again (the kill's own answer came back)
            await srv.kill_and_wait("/server/monitor")
            status, body = await asyncio.to_thread(http_json, srv.base + "/healthz")
            assert (status, body) == (200, {"status": "ok"})
            status, body = await asyncio.to_thread(http_json, srv.base + "/varz")
            assert status == 200 and body["connections"] == 2
            await send_markers(pub, targets)

            # Config: the new Config actor applies a reload (SIGHUP)
            await srv.kill_and_wait("/server/config")
            srv.server.signal(signal.SIGHUP)
            await eventually(lambda: "Reloaded server configuration" in srv.server.log(),
                             what="the reload to be applied by the restarted Config actor")
            await send_markers(pub, targets)
            await _check_new_connection(srv, clients)

            after = await srv.actorz()
            for path in ("/server/listener", "/server/monitor", "/server/config"):
                assert after[path]["restarts"] == before[path]["restarts"] + 1, after[path]
            for path in ("/server", "/server/router", "/server/clients"):
                assert after[path]["restarts"] == before[path]["restarts"], after[path]
            assert w_pub.disconnects == 0 and w_sub.disconnects == 0
            assert (pub.client_id, sub.client_id) == ids
            assert await srv.cids() == set(ids)

    run(main)
    assert srv.server.proc.poll() is None
    assert "supervisor tree gave up" not in srv.server.log()


def test_connections_opened_while_the_listener_is_killed_are_all_served(chaos):
    """The listening socket outlives the Listener: connections that arrive while it is being
    restarted wait in the backlog and are accepted by the next one; none is lost."""
    srv = chaos()

    async def main():
        raws: list[RawClient] = []
        stop = asyncio.Event()

        async def opener():
            while not stop.is_set():
                batch = await asyncio.gather(*[RawClient().connect(srv.server.host,
                                                                   srv.server.port)
                                               for _ in range(5)])
                raws.extend(batch)

        task = asyncio.create_task(opener())
        for _ in range(3):
            target = len(raws) + 10
            await eventually(lambda: len(raws) >= target or task.done(), what="connections")
            await srv.kill_and_wait("/server/listener", "chaos: connect storm")
        stop.set()
        await task  # every connect got INFO and a PONG (RawClient.connect checks both)
        cids = [r.info["client_id"] for r in raws]
        assert len(set(cids)) == len(cids)
        assert set(cids) <= await srv.cids()
        for r in raws:
            assert not r.closed.is_set()
        print(f"\n[chaos] {len(raws)} connections opened across 3 listener kills")
        await asyncio.gather(*[r.close() for r in raws])

    run(main)


LAME_DUCK = KILL_CONFIG + 'lame_duck_duration: "30s"\nlame_duck_grace_period: "20s"\n'


def _end_lame_duck(srv) -> None:
    """SIGTERM is ignored in lame duck (as the reference does); SIGINT ends it now."""
    if srv.server.proc.poll() is None:
        srv.server.signal(signal.SIGINT)
        srv.server.wait(timeout=30)


async def _enter_lame_duck(srv) -> RawClient:
    """SIGUSR2, and wait until a protocol-1 connection has been told (INFO ldm:true)."""
    raw = await RawClient().connect(srv.server.host, srv.server.port)
    srv.server.signal(signal.SIGUSR2)
    await eventually(lambda: any(i.get("ldm") for i in raw.infos), what="INFO ldm:true")
    await raw.ping()
    await srv.actorz()
    return raw


def test_lame_duck_stops_the_accept_loop_without_an_error(chaos):
    srv = chaos(config=LAME_DUCK)

    async def main():
        raw = await _enter_lame_duck(srv)
        assert "Error accepting client connection" not in srv.server.log()
        await raw.close()

    try:
        run(main)
    finally:
        _end_lame_duck(srv)


def test_listener_killed_in_lame_duck_is_restarted(chaos):
    srv = chaos(config=LAME_DUCK)

    async def main():
        raw = await _enter_lame_duck(srv)
        before = (await srv.actorz())["/server/listener"]["restarts"]
        await srv.kill("/server/listener", "chaos: lame duck")
        entry = await srv.wait_restarted("/server/listener", before)
        assert entry["restarts"] == before + 1
        with pytest.raises(ConnectionRefusedError):
            await RawClient().connect(srv.server.host, srv.server.port)
        await raw.ping()  # existing connections are still served through the grace period
        await raw.close()

    try:
        run(main)
    finally:
        _end_lame_duck(srv)
