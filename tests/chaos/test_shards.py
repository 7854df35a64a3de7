"""Kill subject Shards and the Router under traffic: the shard (or every shard) is restarted,
asks the clients to register their subscriptions again, and delivers again, while no client
connection is dropped. Every shard holds every subscription and routes the publishes of the
connections pinned to it (cid % N, shown in /actorz), so the traffic comes from one publisher
pinned to each shard. Core NATS is at-most-once, so messages published while a shard is down
may be lost: they are counted and printed, never asserted to be zero; what is asserted is that
nothing arrives twice or out of order (per subject, and per publisher across subjects), that
a shard's kill loses only messages of the publisher pinned to it, and that delivery resumes
on every subscription.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter, deque

import pytest

from tests.chaos.helpers import (
    RawClient, Traffic, connect_watched, percentiles, pin_publishers, time_to_first_marker,
)
from tests.interop.helpers import Clients, eventually, flush, run

ROUNDS = 5  # kills per shard; 4 * 5 = 20 restarts, within the router's budget of 20


def _report(what: str, lost: dict[str, int], kills: int) -> None:
    total = sum(lost.values())
    detail = ", ".join(f"{k}={v}" for k, v in sorted(lost.items()) if v)
    print(f"\n[chaos] {what}: {total} messages lost over {kills} kills "
          f"({total / max(kills, 1):.1f} per kill){': ' + detail if detail else ''}")


async def _losses_only_from(t: Traffic, idx: int, path: str, gaps: Counter,
                            lost_by_pub: Counter) -> Counter:
    """After shard `idx` (at `path`) was killed and every subscription delivers again: the
    messages lost since `gaps` (a `Traffic.gaps()` before the kill) are all the killed shard's
    publisher's. Adds them to `lost_by_pub`; returns the new gaps."""
    now = await t.gaps()
    lost = now - gaps
    others = {p: n for p, n in lost.items() if p != f"p{idx}"}
    assert not others, f"killing {path} lost messages of other shards' publishers: {others}"
    lost_by_pub.update(lost)
    return now


def test_shard_kills_under_traffic(chaos):
    """Each shard killed ROUNDS times while a publisher pinned to every shard runs: the shard
    comes back with its restart count up by one, every subscription (literal, wildcard, queue
    group, raw socket) delivers again from every publisher, only the publisher pinned to the
    killed shard loses messages, and no connection notices."""
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            t = await Traffic.create(srv, clients)
            tree = await srv.actorz()
            shards = srv.shard_paths(tree)
            assert len(shards) == len(t.pubs) >= 2
            before = {p: a["restarts"] for p, a in tree.items()}

            # without kills, nothing is lost
            t.publisher.start()
            await t.wait_published(500)
            assert set((await t.stop_and_count()).values()) == {0}

            t.publisher.start()
            await t.wait_published(200)
            recoveries = []
            gaps = await t.gaps()
            assert sum(gaps.values()) == 0, gaps
            lost_by_pub: Counter = Counter()
            for _ in range(ROUNDS):
                for path in shards:
                    idx = tree[path]["index"]
                    subject = t.subjects[idx][0]  # published by the publisher pinned to it
                    restarts = (await srv.actorz())[path]["restarts"]
                    t0 = time.monotonic()
                    await srv.kill(path, "chaos: shard under traffic")
                    recoveries.append(
                        await time_to_first_marker(t.pubs[idx], subject, t.tallies[subject], t0))
                    entry = await srv.wait_restarted(path, restarts)
                    assert entry["restarts"] == restarts + 1
                    assert entry["index"] == idx
                    await t.markers()  # every subscription, from every publisher
                    assert srv.server.proc.poll() is None
                    gaps = await _losses_only_from(t, idx, path, gaps, lost_by_pub)
                    await t.wait_published(50)
            lost = await t.stop_and_count()
            _report("shard kills under traffic", lost, ROUNDS * len(shards))
            print(f"[chaos] deliveries lost to literal and wildcard subscriptions, by publisher "
                  f"(each while its own shard was down): {dict(sorted(lost_by_pub.items()))}")
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
    while shards are killed and restarted. Afterwards every shard holds exactly the
    connection's current subscriptions: from a publisher pinned to each shard, one marker per
    subject reaches every current plain sid once, one member of each current queue group once,
    and no sid that was unsubscribed. Meanwhile those publishers publish and flush in a loop:
    every PONG comes back (the barriers that a dead shard lost are released when it
    restarts)."""
    srv = chaos()
    rng = random.Random(20261127)

    async def main():
        async with Clients(srv.url) as clients:
            watches = []

            async def connect(k):
                nc, w = await connect_watched(clients, f"pub-{k}")
                watches.append((nc, w))
                return nc

            pubs = await pin_publishers(srv, connect)  # shard index -> publisher pinned to it
            pub_watches = [w for nc, w in watches if any(nc is p for p in pubs.values())]
            subjects = [f"c{n}.x" for n in range(4)]
            got: list[tuple[str, str, bytes]] = []
            raw = await RawClient(lambda s, sid, p: got.append((s, sid, p))).connect(
                srv.server.host, srv.server.port)
            raw.send(b"SUB *.x W\r\n")  # permanent: orders the final check per publisher
            active: dict[str, tuple[str, str | None]] = {}  # sid -> (subject, queue)
            sids = itertools.count(1)
            stop = asyncio.Event()
            flushes: Counter = Counter()

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

            async def flush_loop(idx, nc):
                while not stop.is_set():
                    for s in subjects:
                        await nc.publish(s, b"f")
                    await flush(nc)
                    flushes[idx] += 1

            tasks = [asyncio.create_task(churn())]
            tasks += [asyncio.create_task(flush_loop(idx, nc)) for idx, nc in pubs.items()]
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
            assert set(flushes) == set(pubs), flushes
            print(f"\n[chaos] churn: {next(sids) - 1} SUBs, {len(active)} left, {kills} kills, "
                  f"flushes per shard {dict(sorted(flushes.items()))}")

            # wait until every shard serves every current subscription: a probe marker from
            # each publisher per (subject, sid) until each current plain sid has one from each
            # (queue sids are covered by the exact round below)
            def matches(sub_subject: str, subject: str) -> bool:
                return sub_subject == subject or sub_subject == "*.x"

            want = {(b"probe:%d" % idx, s, sid) for idx in pubs for s in subjects
                    for sid, (ss, q) in active.items() if q is None and matches(ss, s)}
            want |= {(b"probe:%d" % idx, s, "W") for idx in pubs for s in subjects}

            def probed():
                return {(p, s, sid) for s, sid, p in got if p.startswith(b"probe:")}

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not want <= probed():
                assert loop.time() < deadline, f"never reached: {sorted(want - probed())[:10]}"
                for idx, nc in pubs.items():
                    for s in subjects:
                        await nc.publish(s, b"probe:%d" % idx)
                await asyncio.sleep(0.02)

            # the exact round, from each publisher: F on each subject, then G (via the
            # permanent W, a publisher's G on a subject arrives after every delivery of its F
            # on that subject: one shard routes both, to one connection)
            got.clear()
            for idx, nc in pubs.items():
                for s in subjects:
                    await nc.publish(s, b"F:%d" % idx)
                    await nc.publish(s, b"G:%d" % idx)
            await eventually(lambda: {(p, s) for s, sid, p in got if p[:2] == b"G:" and sid == "W"}
                             == {(b"G:%d" % idx, s) for idx in pubs for s in subjects},
                             what="every G marker")
            for idx in pubs:
                for s in subjects:
                    fs = Counter(sid for ss, sid, p in got if ss == s and p == b"F:%d" % idx)
                    plain = {sid for sid, (ss, q) in active.items()
                             if q is None and matches(ss, s)}
                    plain.add("W")
                    for sid in plain:
                        assert fs[sid] == 1, (idx, s, sid, fs)
                    for group in ("g1", "g2"):
                        members = {sid for sid, (ss, q) in active.items()
                                   if q == group and matches(ss, s)}
                        assert sum(fs[sid] for sid in members) == (1 if members else 0), \
                            (idx, s, group, members, fs)
                    stray = set(fs) - plain - {sid for sid, (_, q) in active.items() if q}
                    assert not stray, f"shard {idx}, {s}: deliveries to unsubscribed sids {stray}"
            assert raw.errors == []
            assert all(w.disconnects == 0 for w in pub_watches)
            await raw.close()

    run(main, timeout=120)


@pytest.mark.slow
def test_shard_recovery_time_over_many_kills(chaos):
    """Measure (print, not assert) how long a shard takes to deliver again after a kill, over
    many kills under heavier publishers (one pinned to each shard; the first delivery timed is
    the killed shard's publisher's, and only that publisher may lose messages); kills are
    paced to stay well inside the Router's restart budget (at most 15 per 5.5 s, against 20
    per 5 s)."""
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
            gaps = await t.gaps()
            lost_by_pub: Counter = Counter()
            for n in range(kills_total):
                while len(recent) >= 15:
                    wait = 5.5 - (time.monotonic() - recent[0])
                    if wait <= 0:
                        recent.popleft()
                    else:
                        await asyncio.sleep(wait)
                path = shards[n % len(shards)]
                idx = tree[path]["index"]
                subject = t.subjects[idx][0]  # published by the publisher pinned to the shard
                restarts = (await srv.actorz())[path]["restarts"]
                t0 = time.monotonic()
                recent.append(t0)
                await srv.kill(path, "chaos: recovery timing")
                recoveries.append(
                    await time_to_first_marker(t.pubs[idx], subject, t.tallies[subject], t0))
                await srv.wait_restarted(path, restarts)
                await t.markers()
                gaps = await _losses_only_from(t, idx, path, gaps, lost_by_pub)
            lost = await t.stop_and_count()
            _report("paced shard kills under heavier publishers", lost, kills_total)
            print(f"[chaos] deliveries lost to literal and wildcard subscriptions, by publisher "
                  f"(each while its own shard was down): {dict(sorted(lost_by_pub.items()))}")
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
    subscription back must not reset it, and deliveries routed by different shards count
    together: 5 in all, however many shard restarts in between. A raw connection publishes to
    itself (through its own shard, so every count is exact at each PONG), and a second raw
    connection, pinned to another shard, publishes to it too (each of its batches ends with a
    message to an unlimited sid, which arrives after the rest of the batch)."""
    srv = chaos()

    async def main():
        got: list[tuple[str, str]] = []
        marks: set[bytes] = set()  # payloads of the other connection's lim.b markers

        def on_msg(subject: str, sid: str, payload: bytes) -> None:
            if payload:
                marks.add(payload)
            else:
                got.append((subject, sid))

        raw = await RawClient(on_msg).connect(srv.server.host, srv.server.port)
        own = await srv.shard_of(raw.info["client_id"])
        spares = []
        for _ in range(16):  # a connection pinned to another shard than raw's
            other = await RawClient().connect(srv.server.host, srv.server.port)
            if await srv.shard_of(other.info["client_id"]) != own:
                break
            spares.append(other)
        else:
            raise AssertionError("every connection was pinned to raw's shard")
        for c in spares:
            await c.close()
        tokens = itertools.count(1)

        async def roundtrip(data: bytes) -> list[tuple[str, str]]:
            got.clear()
            raw.send(data)
            await raw.ping()  # echo is on: our own deliveries come before the PONG
            return sorted(got)  # one message's copies to several sids come in any order

        def mark() -> bytes:
            token = b"m%d" % next(tokens)
            other.send(b"PUB lim.b %d\r\n%s\r\n" % (len(token), token))
            return token

        async def from_other(data: bytes) -> list[tuple[str, str]]:
            """`data` and then a lim.b marker from the other connection: when the marker
            arrives, whatever its shard delivered of `data` has arrived before it."""
            got.clear()
            other.send(data)
            token = mark()
            await other.ping()
            await eventually(lambda: token in marks, what="the marker from the other shard")
            return sorted(got)

        assert await roundtrip(b"SUB lim.a 1\r\nSUB lim.b 2\r\nSUB *.w 3\r\nSUB lim.w 4\r\n"
                               b"UNSUB 1 5\r\nUNSUB 3 5\r\n") == []
        assert await roundtrip(b"PUB lim.a 0\r\n\r\n" * 2 + b"PUB lim.w 0\r\n\r\n" * 2) == \
            [("lim.a", "1")] * 2 + [("lim.w", "3")] * 2 + [("lim.w", "4")] * 2
        tree = await srv.actorz()
        for path in srv.shard_paths(tree):
            await srv.kill_and_wait(path, "chaos: limits")
        # lim.b delivers again through both connections' shards: the connection has
        # registered its subscriptions again with every restarted shard
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while ("lim.b", "2") not in await roundtrip(b"PUB lim.b 0\r\n\r\n"):
            assert loop.time() < deadline, "lim.b never delivered again"
        while not marks:
            assert loop.time() < deadline, "lim.b never delivered again from the other shard"
            mark()
            await other.ping()
            await asyncio.sleep(0.01)
        assert await from_other(b"") == []
        # 3rd delivery of sids 1 and 3 routed by the other shard, then 4th and 5th by our own
        assert await from_other(b"PUB lim.a 0\r\n\r\nPUB lim.w 0\r\n\r\n") == \
            [("lim.a", "1"), ("lim.w", "3"), ("lim.w", "4")]
        assert await roundtrip(b"PUB lim.a 0\r\n\r\n" * 10) == [("lim.a", "1")] * 2
        assert await roundtrip(b"PUB lim.w 0\r\n\r\n" * 10) == \
            [("lim.w", "3")] * 2 + [("lim.w", "4")] * 10
        assert await roundtrip(b"PUB lim.a 0\r\n\r\nPUB x.w 0\r\n\r\n") == []
        assert await from_other(b"PUB lim.a 0\r\n\r\nPUB x.w 0\r\n\r\n" * 3) == []
        assert raw.errors == [] and other.errors == []
        await other.close()
        await raw.close()

    run(main)
