"""Kill Client actors: a Client is temporary, so only its own connection closes (the library
reconnects and subscribes again), its subscriptions leave the shards, and every other
connection carries on as if nothing happened. Killing the Clients supervisor drops every
connection, and they all come back.
"""

from __future__ import annotations

import asyncio

from tests.chaos.helpers import RawClient, Tally, connect_watched, send_markers
from tests.interop.helpers import Clients, flush, run, wait_event


async def subsz(srv) -> int:
    """The clients' subscriptions (the server's own internal ones, for $SYS requests, are not
    counted: /connz lists client connections only)."""
    status, body = await asyncio.to_thread(srv.get, "/connz")
    assert status == 200, body
    return sum(c["subscriptions"] for c in body["connections"])


def test_kill_one_client_actor(chaos):
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            pub, w_pub = await connect_watched(clients, "pub")
            victim, w_victim = await connect_watched(clients, "victim", expect_errors=True)
            other, w_other = await connect_watched(clients, "other")
            t_victim, t_other = Tally("victim"), Tally("other")
            await victim.subscribe("victim.x", cb=t_victim.callback())
            await other.subscribe("other.x", cb=t_other.callback())
            await flush(victim)
            await flush(other)
            raw_got = Tally("raw other")
            raw_other = await RawClient(lambda s, sid, p: raw_got.record(s, p)).connect(
                srv.server.host, srv.server.port)
            raw_other.send(b"SUB rawother.x 7\r\n")
            raw_victim = await RawClient().connect(srv.server.host, srv.server.port)
            raw_victim.send(b"SUB rawvictim.x 1\r\nSUB rawvictim.y 2\r\n")
            await raw_other.ping()
            await raw_victim.ping()
            targets = [("victim.x", t_victim), ("other.x", t_other), ("rawother.x", raw_got)]
            await send_markers(pub, targets)
            cids = await srv.cids()
            assert await subsz(srv) == 5
            old_cid, other_cid = victim.client_id, other.client_id
            assert {old_cid, other_cid, pub.client_id} <= cids

            # a nats-py client: it is disconnected, reconnects as a new connection, and its
            # subscription delivers again
            await srv.kill(f"/server/clients/cid-{old_cid}", "chaos: one client")
            await wait_event(w_victim.reconnected, "the victim to reconnect")
            assert w_victim.disconnects >= 1
            assert victim.client_id != old_cid
            await send_markers(pub, targets)
            now = await srv.cids()
            assert old_cid not in now and victim.client_id in now
            assert now == cids - {old_cid} | {victim.client_id}
            tree = await srv.actorz()
            assert f"/server/clients/cid-{old_cid}" not in tree
            assert tree[f"/server/clients/cid-{victim.client_id}"]["restarts"] == 0
            assert tree["/server/clients"]["restarts"] == 0
            assert await subsz(srv) == 5  # the victim's old subscription is gone, not leaked

            # a raw connection: the server closes it, and its subscriptions leave the shards
            raw_cid = raw_victim.info["client_id"]
            await srv.kill(f"/server/clients/cid-{raw_cid}", "chaos: raw client")
            await wait_event(raw_victim.closed, "the server to close the killed connection")
            await send_markers(pub, targets)
            assert raw_cid not in await srv.cids()
            await eventually_async(lambda: subsz(srv), 3, "the raw victim's subscriptions to go")

            # everyone else carried on
            for name, w in (("pub", w_pub), ("other", w_other)):
                assert w.disconnects == 0, f"{name} was disconnected"
            assert other.client_id == other_cid
            assert not raw_other.closed.is_set()
            await raw_other.ping()
            assert raw_other.errors == []
            await raw_other.close()
            await raw_victim.close()

    run(main)


async def eventually_async(fn, expected, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await fn()
        if got == expected:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what}: got {got}, expected {expected}")
        await asyncio.sleep(0.02)


def test_kill_clients_supervisor_drops_and_restores_every_connection(chaos):
    """The Clients supervisor's children are its connections: killing it closes them all; it
    is restarted, the libraries reconnect, and their subscriptions work again."""
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            pub, w_pub = await connect_watched(clients, "pub", expect_errors=True)
            sub, w_sub = await connect_watched(clients, "sub", expect_errors=True)
            tally = Tally("sub")
            await sub.subscribe("after.x", cb=tally.callback())
            await flush(sub)
            await send_markers(pub, [("after.x", tally)])
            old = {pub.client_id, sub.client_id}
            assert await srv.cids() == old

            await srv.kill_and_wait("/server/clients")
            await wait_event(w_pub.reconnected, "the publisher to reconnect")
            await wait_event(w_sub.reconnected, "the subscriber to reconnect")
            await send_markers(pub, [("after.x", tally)])
            new = {pub.client_id, sub.client_id}
            assert new.isdisjoint(old)
            assert await srv.cids() == new
            assert await subsz(srv) == 1
            tree = await srv.actorz()
            assert tree["/server/router"]["restarts"] == 0
            assert all(f"/server/clients/cid-{c}" in tree for c in new)

    run(main)
    assert srv.server.proc.poll() is None
