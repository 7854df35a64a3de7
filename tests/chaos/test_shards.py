"""Kill subject Shards and the Router under traffic: the shard (or every shard) is restarted,
asks the clients to register their subscriptions again, and delivers again, while no client
connection is dropped. Core NATS is at-most-once, so messages published while a shard is down
may be lost: they are counted and printed, never asserted to be zero; what is asserted is that
nothing arrives twice or out of order and that delivery resumes on every subscription.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter, deque

import pytest

from tests.chaos.helpers import (
    RawClient, Traffic, connect_watched, map_shards, percentiles, time_to_first_marker,
)
from tests.interop.helpers import Clients, eventually, flush, run

ROUNDS = 5  # kills per shard; 4 * 5 = 20 restarts, within the router's budget of 20


def _report(what: str, lost: dict[str, int], kills: int) -> None:
    total = sum(lost.values())
    detail = ", ".join(f"{k}={v}" for k, v in sorted(lost.items()) if v)
    print(f"\n[chaos] {what}: {total} messages lost over {kills} kills "
          f"({total / max(kills, 1):.1f} per kill){': ' + detail if detail else ''}")


def test_shard_kills_under_traffic(chaos):
    """Each shard killed ROUNDS times while a publisher runs: the shard comes back with its
    restart count up by one, every subscription (literal, wildcard, queue group, raw socket)
    delivers again, and no connection notices."""
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            t = await Traffic.create(srv, clients)
            tree = await srv.actorz()
            shards = srv.shard_paths(tree)
            assert len(shards) == len(t.owners) >= 2
            before = {p: a["restarts"] for p, a in tree.items()}

            # without kills, nothing is lost
            t.publisher.start()
            await t.wait_published(500)
            assert set((await t.stop_and_count()).values()) == {0}

            t.publisher.start()
            await t.wait_published(200)
            recoveries = []
            for _ in range(ROUNDS):
                for path in shards:
                    idx = tree[path]["index"]
                    subject = t.owners[idx][0]
                    restarts = (await srv.actorz())[path]["restarts"]
                    t0 = time.monotonic()
                    await srv.kill(path, "chaos: shard under traffic")
                    recoveries.append(
                        await time_to_first_marker(t.pub, subject, t.tallies[subject], t0))
                    entry = await srv.wait_restarted(path, restarts)
                    assert entry["restarts"] == restarts + 1
                    assert entry["index"] == idx
                    await t.markers()  # every subscription, through every shard
                    assert srv.server.proc.poll() is None
                    await t.wait_published(50)
            lost = await t.stop_and_count()
            _report("shard kills under traffic", lost, ROUNDS * len(shards))
            print(f"[chaos] shard recovery (kill request -> first marker delivered): "
                  f"{percentiles(recoveries)}")

            after = await srv.actorz()
            for path in shards:
                assert after[path]["restarts"] == before[path] + ROUNDS, after[path]
                assert after[path]["state"] == "running"
            for path in ("/server", "/server/router", "/server/clients", "/server/listener",
                         "/server/config", "/server/monitor"):
                assert after[path]["restarts"] == before[path], after[path]
            await t.assert_connections_intact()
            # the subscriptions are all still there, once each
            assert t.wild.count > 0 and t.raw_wild.count > 0
            assert all(m.count > 0 for m in t.q_members.values())
            await t.close()

    run(main, timeout=120)
    assert srv.server.proc.poll() is None
    log = srv.server.log()
    assert log.count("Killing actor /server/router/shard-") == ROUNDS * 4
    assert "supervisor tree gave up" not in log


def test_router_kill_restarts_every_shard(chaos):
    """Killing the Router supervisor restarts it and all its shards; the new shards get every
    subscription back; no client is disconnected."""
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            t = await Traffic.create(srv, clients)
            tree = await srv.actorz()
            shards = srv.shard_paths(tree)
            t.publisher.start()
            await t.wait_published(200)
            kills = 2
            for n in range(kills):
                entry = await srv.kill_and_wait("/server/router")
                assert entry["restarts"] == tree["/server/router"]["restarts"] + n + 1
                now = await srv.actorz()
                for p in shards:
                    assert now[p]["state"] == "running", now[p]
                    # new incarnations: started by (so after) the new router
                    assert now[p]["age"] <= now["/server/router"]["age"], (now[p], now["/server/router"])
                await t.markers()
                await t.wait_published(100)
            lost = await t.stop_and_count()
            _report("router kills under traffic", lost, kills)
            after = await srv.actorz()
            assert after["/server"]["restarts"] == tree["/server"]["restarts"]
            assert after["/server/clients"]["restarts"] == tree["/server/clients"]["restarts"]
            await t.assert_connections_intact()
            await t.close()

    run(main, timeout=90)
    assert srv.server.proc.poll() is None


def test_router_kill_counts_a_restart_of_every_shard(chaos):
    srv = chaos()

    async def main():
        before = await srv.actorz()
        await srv.kill_and_wait("/server/router")
        after = await srv.actorz()
        shards = srv.shard_paths(after)
        assert len(shards) == 4
        for p in shards:
            assert after[p]["restarts"] == before[p]["restarts"] + 1, after[p]

    run(main)


def test_subscription_churn_across_shard_kills_leaves_exact_interest(chaos):
    """A raw connection subscribes and unsubscribes (literal, `*.x` and queue subscriptions)
    while shards are killed and restarted. Afterwards the shards hold exactly the connection's
    current subscriptions: one marker per subject reaches every current plain sid once, one
    member of each current queue group once, and no sid that was unsubscribed. Meanwhile a
    nats-py client publishes and flushes in a loop: every PONG comes back (the barriers that
    a dead shard lost are released when it restarts)."""
    srv = chaos()
    rng = random.Random(20261127)

    async def main():
        async with Clients(srv.url) as clients:
            pub, w_pub = await connect_watched(clients, "pub")
            owners = await map_shards(srv, pub)
            subjects = [s for idx in sorted(owners) for s in owners[idx]]
            flusher, w_flusher = await connect_watched(clients, "flusher")
            got: list[tuple[str, str, bytes]] = []
            raw = await RawClient(lambda s, sid, p: got.append((s, sid, p))).connect(
                srv.server.host, srv.server.port)
            raw.send(b"SUB *.x W\r\n")  # permanent: orders the final check per subject
            active: dict[str, tuple[str, str | None]] = {}  # sid -> (subject, queue)
            sids = itertools.count(1)
            stop = asyncio.Event()
            flushes = 0

            async def churn():
                while not stop.is_set():
                    for _ in range(5):
                        if active and rng.random() < 0.45:
                            sid = rng.choice(sorted(active))
                            del active[sid]
                            raw.send(f"UNSUB {sid}\r\n".encode())
                        else:
                            sid = str(next(sids))
                            subject = rng.choice(subjects + ["*.x"])
                            queue = rng.choice([None, None, "g1", "g2"])
                            active[sid] = (subject, queue)
                            q = f" {queue}" if queue else ""
                            raw.send(f"SUB {subject}{q} {sid}\r\n".encode())
                    await asyncio.sleep(0.002)

            async def flush_loop():
                nonlocal flushes
                while not stop.is_set():
                    for s in subjects:
                        await flusher.publish(s, b"f")
                    await flush(flusher)
                    flushes += 1

            tasks = [asyncio.create_task(churn()), asyncio.create_task(flush_loop())]
            tree = await srv.actorz()
            shards = srv.shard_paths(tree)
            kills = 0
            for _ in range(3):
                for path in shards:
                    await srv.kill_and_wait(path, "chaos: churn")
                    kills += 1
                    await asyncio.sleep(0.05)  # let some churn happen against each incarnation
            stop.set()
            await asyncio.gather(*tasks)
            await raw.ping()
            assert flushes > 0
            print(f"\n[chaos] churn: {next(sids) - 1} SUBs, {len(active)} left, {kills} kills, "
                  f"{flushes} flushes")

            # wait until the shards serve every current subscription: a probe marker per
            # (subject, sid) until each current plain sid has one (queue sids are covered
            # by the exact round below)
            def matches(sub_subject: str, subject: str) -> bool:
                return sub_subject == subject or sub_subject == "*.x"

            probe = b"probe"
            want = {(s, sid) for s in subjects for sid, (ss, q) in active.items()
                    if q is None and matches(ss, s)} | {(s, "W") for s in subjects}

            def probed():
                return {(s, sid) for s, sid, p in got if p == probe}

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not want <= probed():
                assert loop.time() < deadline, f"never reached: {sorted(want - probed())[:10]}"
                for s in subjects:
                    await pub.publish(s, probe)
                await asyncio.sleep(0.02)

            # the exact round: F on each subject, then G (via the permanent W, G on a subject
            # arrives after every F delivery on that subject)
            got.clear()
            for s in subjects:
                await pub.publish(s, b"F")
                await pub.publish(s, b"G")
            await eventually(lambda: {s for s, sid, p in got if p == b"G" and sid == "W"}
                             == set(subjects), what="every G marker")
            for s in subjects:
                fs = Counter(sid for ss, sid, p in got if ss == s and p == b"F")
                plain = {sid for sid, (ss, q) in active.items() if q is None and matches(ss, s)}
                plain.add("W")
                for sid in plain:
                    assert fs[sid] == 1, (s, sid, fs)
                for group in ("g1", "g2"):
                    members = {sid for sid, (ss, q) in active.items()
                               if q == group and matches(ss, s)}
                    assert sum(fs[sid] for sid in members) == (1 if members else 0), \
                        (s, group, members, fs)
                stray = set(fs) - plain - {sid for sid, (_, q) in active.items() if q}
                assert not stray, f"{s}: deliveries to unsubscribed sids {stray}"
            assert raw.errors == []
            assert w_pub.disconnects == 0 and w_flusher.disconnects == 0
            await raw.close()

    run(main, timeout=120)


@pytest.mark.slow
def test_shard_recovery_time_over_many_kills(chaos):
    """Measure (print, not assert) how long a shard takes to deliver again after a kill, over
    many kills under a heavier publisher; kills are paced to stay well inside the Router's
    restart budget (at most 15 per 5.5 s, against 20 per 5 s)."""
    srv = chaos()
    kills_total = 60

    async def main():
        async with Clients(srv.url) as clients:
            t = await Traffic.create(srv, clients, pause=0.001)
            tree = await srv.actorz()
            shards = srv.shard_paths(tree)
            t.publisher.start()
            await t.wait_published(1000)
            recent: deque = deque()
            recoveries = []
            for n in range(kills_total):
                while len(recent) >= 15:
                    wait = 5.5 - (time.monotonic() - recent[0])
                    if wait <= 0:
                        recent.popleft()
                    else:
                        await asyncio.sleep(wait)
                path = shards[n % len(shards)]
                subject = t.owners[tree[path]["index"]][0]
                restarts = (await srv.actorz())[path]["restarts"]
                t0 = time.monotonic()
                recent.append(t0)
                await srv.kill(path, "chaos: recovery timing")
                recoveries.append(
                    await time_to_first_marker(t.pub, subject, t.tallies[subject], t0))
                await srv.wait_restarted(path, restarts)
                await t.markers()
            lost = await t.stop_and_count()
            _report("paced shard kills under a heavier publisher", lost, kills_total)
            print(f"[chaos] {t.publisher.total} messages published")
            print(f"[chaos] shard recovery (kill request -> first marker delivered): "
                  f"{percentiles(recoveries)}")
            after = await srv.actorz()
            assert after["/server/router"]["restarts"] == tree["/server/router"]["restarts"]
            await t.assert_connections_intact()
            await t.close()

    run(main, timeout=300)


def test_auto_unsubscribe_limits_survive_shard_restarts(chaos):
    """`UNSUB <sid> <max>` is counted by the connection, so a restarted shard that gets the
    subscription back must not reset it: 5 in all, however many shard restarts in between
    (a raw connection publishing to itself, so every count is exact at each PONG)."""
    srv = chaos()

    async def main():
        got: list[tuple[str, str]] = []
        raw = await RawClient(lambda s, sid, p: got.append((s, sid))).connect(
            srv.server.host, srv.server.port)

        async def roundtrip(data: bytes) -> list[tuple[str, str]]:
            got.clear()
            raw.send(data)
            await raw.ping()  # echo is on: our own deliveries come before the PONG
            return sorted(got)  # one message's copies to several sids come in any order

        assert await roundtrip(b"SUB lim.a 1\r\nSUB lim.b 2\r\nSUB *.w 3\r\nSUB lim.w 4\r\n"
                               b"UNSUB 1 5\r\nUNSUB 3 5\r\n") == []
        assert await roundtrip(b"PUB lim.a 0\r\n\r\n" * 3 + b"PUB lim.w 0\r\n\r\n" * 3) == \
            [("lim.a", "1")] * 3 + [("lim.w", "3")] * 3 + [("lim.w", "4")] * 3
        tree = await srv.actorz()
        for path in srv.shard_paths(tree):
            await srv.kill_and_wait(path, "chaos: limits")
        # lim.b and lim.w (same first token as lim.a) deliver again: the connection has
        # registered again with the shard that holds lim.a and with every shard (for *.w)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while ("lim.b", "2") not in await roundtrip(b"PUB lim.b 0\r\n\r\n"):
            assert loop.time() < deadline, "lim.b never delivered again"
        assert await roundtrip(b"PUB lim.a 0\r\n\r\n" * 10) == [("lim.a", "1")] * 2
        assert await roundtrip(b"PUB lim.w 0\r\n\r\n" * 10) == \
            [("lim.w", "3")] * 2 + [("lim.w", "4")] * 10
        assert await roundtrip(b"PUB lim.a 0\r\n\r\nPUB x.w 0\r\n\r\n") == []
        assert raw.errors == []
        await raw.close()

    run(main)
