#!/usr/bin/env python3
"""Chaos report: kill every kind of actor in a running actor-nats, again and again, under a
steady load, and measure how the supervisor tree recovers (issue 5, item 7).

What it measures, per kill:

  restart    time from the kill request until the actor is back in /actorz, running, with its
             restart count up by one (for a Client, which is temporary and never restarted:
             until the killed connection's library has reconnected and its new cid-N runs).
  delivery   time from the kill request until every subscription has received a marker
             published after the actor was seen back: marker messages go out on every subject
             about every 2 ms from the kill request on, and the markers published before the
             restart was seen do not count (so this includes `restart`, and a restarted shard
             that has not got its subscriptions back yet does not count as delivering).
  stall      the longest wait between marker arrivals, from the kill request on, on any
             subscription: whether delivery was interrupted at all (compare with the
             "(no kill)" row, the same measurement without a kill: this machine's floor).
  lost       data messages lost in the window: each publisher numbers its messages per subject,
             each subscription records what it got (a gap is a loss; a queue group counts its
             members together). After a kill the load runs on until every subscription has
             received what was published when delivery resumed, then the gaps are counted.
             Core NATS is at-most-once, so losses are counted, not failures; but a shard kill
             that loses messages of a publisher pinned to another shard is a failure.
  others     disconnects of the measured clients (every connection but the killed Client's):
             nats-py disconnect callbacks, the raw socket being closed, or a changed client id.

The kinds: each subject shard (shard-0..N-1: every shard holds every subscription and routes
the publishes of the connections pinned to it, cid % N), the router (restarts every shard), a client
(a dedicated throwaway nats-py connection, not a measured one), config, listener, monitor, and
the clients supervisor (which closes every connection by design: its disconnect column counts
the measured clients that came back). Then, unless --no-escalation, the restart budgets are
exceeded on purpose: shard kills back to back until the router gives up (its supervisor, the
root, restarts it), and finally router kills until the root gives up and the process exits
non-zero with a [FTL] line.

How: one actor-nats server (tests/servers.py) on free loopback ports, with
`debug { allow_kill: true }` and `-m <port>`; kills go through POST /actorz/kill. The load: one
nats-py publisher pinned to each shard (connections are opened until every shard has one; a
connection's shard is read from /actorz), each paced to --rate msgs/s over its own two literal
subjects and `jobs.run`; one nats-py subscriber on every literal subject and on `*.x`, a
raw-socket subscriber on `*.x`, and a queue group `workers` of two nats-py members on
`jobs.run`; all nats-py clients reconnect. The markers come from one probe connection pinned to
each shard, so every shard's deliveries are measured. Each publisher also numbers its messages
across its subjects: the `*.x` subscribers must see each publisher's messages in that order.
Kills are one at a time, each after the previous one has settled, and paced to leave a quarter
(at least one) of each supervisor's restart budget unused in any period plus 0.5 s (intensity
and period are read from actors/server.py and actors/router.py): root children at most 4 per
10.5 s, shards at most 15 per 5.5 s; shard and client kills fill the time the root's budget
needs to recover. /actorz is polled every 5 ms, so `restart` is
only as fine as one /actorz round trip (the "(no kill)" row shows it).

Run:  python scripts/chaos_report.py                    # 20 kills per kind (~5 min)
      python scripts/chaos_report.py --kills 30 --json chaos.json
      python scripts/chaos_report.py --quick            # 2 kills per kind, short load (< 60 s)
Exit status: 0 when every kill recovered as designed (losses allowed), 1 when something did
not (a timeout, an unexpected restart or disconnect, the process dying), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
from collections import Counter, deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

from tests.chaos.helpers import KILL_CONFIG, Chaos, RawClient, Watch, pin_publishers  # noqa: E402
from tests.servers import Server, free_port  # noqa: E402


def _budget(relpath: str, cls: str, default: tuple[int, float]) -> tuple[int, float]:
    """(intensity, period) of a supervisor class, read from its source (defaults if not found)."""
    try:
        body = (ROOT / relpath).read_text().split(f"class {cls}(", 1)[1]
        intensity = int(re.search(r"^\s+intensity = (\d+)", body, re.M).group(1))
        period = float(re.search(r"^\s+period = ([\d.]+)", body, re.M).group(1))
        return intensity, period
    except (OSError, IndexError, AttributeError, ValueError):
        return default


ROOT_BUDGET = _budget("actors/server.py", "Server", (5, 10.0))
ROUTER_BUDGET = _budget("actors/router.py", "Router", (20, 5.0))

ROOT_KINDS = ("router", "config", "listener", "monitor", "clients", "accounts", "system")  # of /server
TIMEOUT = 15.0  # per wait; only stops a broken run from hanging
MARKER_INTERVAL = 0.002
POLL = 0.005
MAX_ESCALATION_KILLS = 400


class RunError(RuntimeError):
    pass


# ---------------------------------------------------------------------------- bookkeeping

class Stream:
    """What one subscription received from one publisher on one subject: a flag per sequence
    number. Gaps up to a settled bound are losses; `ordered` streams also check the order."""

    __slots__ = ("ordered", "flags", "last", "received", "dups", "disorder", "counted", "lost")

    def __init__(self, ordered: bool):
        self.ordered = ordered
        self.flags = bytearray(4096)
        self.last = 0
        self.received = 0
        self.dups = 0
        self.disorder = 0
        self.counted = 0  # sequences 1..counted have been checked for gaps
        self.lost = 0

    def add(self, seq: int) -> None:
        if seq >= len(self.flags):
            self.flags.extend(bytes(max(seq + 1 - len(self.flags), len(self.flags))))
        if self.flags[seq]:
            self.dups += 1
        else:
            self.flags[seq] = 1
            self.received += 1
        if self.ordered and seq <= self.last:
            self.disorder += 1
        self.last = max(self.last, seq)

    def has(self, seq: int) -> bool:
        return seq < len(self.flags) and self.flags[seq] == 1

    def settle(self, bound: int) -> None:
        """Count the gaps in 1..bound (once: later calls only look past what was counted)."""
        if bound <= self.counted:
            return
        if bound >= len(self.flags):
            self.flags.extend(bytes(bound + 1 - len(self.flags)))
        got = self.flags.count(1, self.counted + 1, bound + 1)
        self.lost += (bound - self.counted) - got
        self.counted = bound


class Publisher:
    """Publishes `d <index> <seq> <total>` round-robin over `subjects`, paced to `rate` msgs/s
    (`seq` per subject, `total` over all of them); a publish that fails (the library's buffer
    is full while reconnecting) is retried with the same sequence number, so only what was
    handed to the library is counted as sent."""

    def __init__(self, nc, index: int, subjects: list[str], rate: float):
        self.nc = nc
        self.index = index
        self.subjects = list(subjects)
        self.period = len(self.subjects) / rate
        self.sent: Counter = Counter()
        self.total = 0
        self.errors = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def restart(self) -> None:
        """Start again after `stop` (on another connection, say); the numbering continues."""
        self._stop = asyncio.Event()
        self.start()

    async def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            for s in self.subjects:
                n = self.sent[s] + 1
                try:
                    await self.nc.publish(s, b"d %d %d %d" % (self.index, n, self.total + 1))
                except nats.errors.Error:
                    self.errors += 1
                    continue
                self.sent[s] = n
                self.total += 1
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < -1.0:  # fell far behind (a stall): do not burst to catch up
                next_t = time.monotonic()
            await asyncio.sleep(max(delay, 0.0))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=TIMEOUT)


class RawSub:
    """A raw-socket subscriber on `*.x` that opens a new connection when the server closes it
    (only killing the clients supervisor does that); counts those closes."""

    def __init__(self, host: str, port: int, on_msg):
        self.host, self.port, self.on_msg = host, port, on_msg
        self.raw: RawClient | None = None
        self.disconnects = 0
        self._stopping = False
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._open()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _open(self) -> None:
        self.raw = await RawClient(self.on_msg).connect(self.host, self.port)
        self.raw.send(b"SUB *.x 1\r\n")
        await self.raw.ping()

    async def _watch(self) -> None:
        while not self._stopping:
            await self.raw.closed.wait()
            if self._stopping:
                return
            self.disconnects += 1
            for _ in range(200):
                try:
                    await self._open()
                    break
                except (OSError, AssertionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    await asyncio.sleep(0.05)
            else:
                return

    @property
    def cid(self) -> int:
        return self.raw.info["client_id"]

    async def close(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self.raw is not None:
            await self.raw.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Pacer:
    """Keeps kills inside a supervisor's restart budget: at most `limit` (intensity less a
    quarter, at least one less) restarts charged in any window of `period` + 0.5 s."""

    def __init__(self, budget: tuple[int, float]):
        intensity, period = budget
        self.limit = max(1, intensity - max(1, intensity // 4))
        self.window = period + 0.5
        self.times: deque = deque()

    def wait_time(self, now: float) -> float:
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[0] + self.window - now

    def charge(self, t: float) -> None:
        self.times.append(t)

    def clear_time(self, now: float) -> float:
        """How long until nothing is charged in the window."""
        return max(0.0, self.times[-1] + self.window - now) if self.times else 0.0


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): with few samples p99 is the maximum."""
    s = sorted(samples)
    if not s:
        return None
    if q == 0.5:
        return statistics.median(s)
    return s[min(len(s) - 1, max(0, int(round(q * len(s))) - 1))]


# ---------------------------------------------------------------------------- the scenario

class Kind:
    """One row of the report: a kind of actor and how to find, kill and wait for it."""

    def __init__(self, name: str, kind: str, pacer: Pacer | None):
        self.name = name  # row label: shard-0, router, client, ...
        self.kind = kind
        self.pacer = pacer
        self.kills: list[dict] = []


class Chaos2(Chaos):
    """The helpers' Chaos, with /actorz polls that tolerate the monitor being restarted."""

    async def try_actorz(self) -> dict | None:
        try:
            return await self.actorz()
        except (urllib.error.URLError, ConnectionError, OSError, AssertionError, ValueError):
            return None


class Report:
    def __init__(self, opts):
        self.opts = opts
        self.srv: Server | None = None
        self.chaos: Chaos2 | None = None
        self.ncs: dict[str, object] = {}
        self.watches: dict[str, Watch] = {}
        self.errors: Counter = Counter()
        self.pubs: list[Publisher] = []
        self.raw: RawSub | None = None
        self.streams: dict[tuple, Stream] = {}
        self.members: dict[tuple, int] = {}  # (member, pub, subject) -> last seq
        self.pub_order: dict[tuple, int] = {}  # (target, pub) -> last publisher-wide seq
        self.pub_disorder = 0  # a publisher's messages out of order across its subjects
        self.arrivals: dict[tuple, list] = {}  # (target, subject, probe) -> [(marker id, time)]
        self.arrival_max: dict[tuple, int] = {}  # (target, subject, probe) -> highest marker id
        self.marker_floor = 1 << 62
        self.marker_sent: dict[int, float] = {}
        self.next_marker = 1
        self.root_pacer = Pacer(ROOT_BUDGET)
        self.router_pacer = Pacer(ROUTER_BUDGET)
        self.baseline: dict = {}
        self.escalation: dict = {}
        self.kinds: list[Kind] = []
        self.anomalies: list[str] = []
        self.started = time.monotonic()
        self.aborted = False  # set when interrupted: the escalation thread stops killing

    # -- setup --------------------------------------------------------------------------------

    async def connect(self, name: str):
        watch = Watch()

        async def error_cb(e):
            self.errors[name] += 1

        nc = await nats.connect(self.srv.url, name=name, allow_reconnect=True,
                                reconnect_time_wait=0.05, max_reconnect_attempts=200,
                                connect_timeout=5, error_cb=error_cb,
                                disconnected_cb=watch.on_disconnect,
                                reconnected_cb=watch.on_reconnect)
        self.ncs[name] = nc
        self.watches[name] = watch
        return nc

    def record(self, target: str, subject: str, data: bytes, member: str | None = None) -> None:
        if data[:2] == b"d ":
            _, p, s, t = data.split()
            p, seq, total = int(p), int(s), int(t)
            key = (target, p, subject)
            stream = self.streams.get(key)
            if stream is None:
                stream = self.streams[key] = Stream(ordered=target != "queue")
            stream.add(seq)
            if target in ("wild", "raw"):  # one subscription each: one publisher's order
                if total <= self.pub_order.get((target, p), 0):
                    self.pub_disorder += 1
                self.pub_order[(target, p)] = total
            if member is not None:
                mk = (member, p, subject)
                if seq > self.members.get(mk, 0):
                    self.members[mk] = seq
        elif data[:2] == b"m ":
            _, p, m = data.split()
            mid = int(m)
            if mid >= self.marker_floor:
                key = (target, subject, int(p))
                self.arrivals.setdefault(key, []).append((mid, time.monotonic()))
                if mid > self.arrival_max.get(key, 0):
                    self.arrival_max[key] = mid

    async def pin(self, prefix: str) -> dict[int, object]:
        """A connection pinned to each shard (see pin_publishers), named <prefix><shard>; the
        spare ones it closes are forgotten."""
        pinned = await pin_publishers(self.chaos, lambda k: self.connect(f"{prefix}-{k}"))
        for name in [n for n in self.ncs if n.startswith(prefix + "-")]:
            nc, watch = self.ncs.pop(name), self.watches.pop(name)
            for i, p in pinned.items():
                if p is nc:
                    self.ncs[f"{prefix}{i}"], self.watches[f"{prefix}{i}"] = nc, watch
        return pinned

    def pinned_cids(self) -> dict[tuple, int]:
        out = {("pub", p.index): p.nc.client_id for p in self.pubs}
        out.update({("probe", i): nc.client_id for i, nc in self.probes.items()})
        return out

    async def repin(self) -> str | None:
        """After a kill that reconnected publishers or probes (the clients supervisor's: every
        connection comes back with a new cid, so on another shard): find their shards again
        and, where two share a shard, replace one by a new connection (opened until one lands
        on the shard left without). A publisher keeps its numbering: it flushes (so its
        shard has routed everything it sent) before its new connection publishes. Returns a
        description of what moved, or None."""
        if self.pinned_cids() == self.pinned:
            return None
        n = len(self.shard_paths)
        moves = []
        for prefix in ("pub", "probe"):
            conns = ({p.index: p.nc for p in self.pubs} if prefix == "pub" else dict(self.probes))
            shard = {i: await self.chaos.shard_of(nc.client_id) for i, nc in conns.items()}
            holders: dict[int, int] = {}
            extra = []
            for i in sorted(conns):
                if shard[i] in holders:
                    extra.append(i)
                else:
                    holders[shard[i]] = i
            missing = {k for k in range(n) if k not in holders}
            for k in range(64):
                if not missing:
                    break
                name = f"{prefix}-new-{k}"
                nc = await self.connect(name)
                idx = await self.chaos.shard_of(nc.client_id)
                watch = self.watches.pop(name)
                del self.ncs[name]
                if idx not in missing:
                    await nc.close()
                    continue
                missing.discard(idx)
                i = extra.pop()
                shard[i] = idx
                old = conns[i]
                if prefix == "pub":
                    pub = self.pubs[[p.index for p in self.pubs].index(i)]
                    await pub.stop()
                    await old.flush(timeout=5)
                    pub.nc = nc
                    pub.restart()
                else:
                    await old.flush(timeout=5)
                    self.probes[i] = nc
                self.ncs[f"{prefix}{i}"], self.watches[f"{prefix}{i}"] = nc, watch
                await old.close()
            if missing:
                raise RunError(f"no new {prefix} connection landed on shards {sorted(missing)}")
            if prefix == "pub":
                self.pub_shard = shard
            moves.append(f"{prefix}: " + ", ".join(f"{prefix}{i} on shard-{shard[i]}"
                                                   for i in sorted(shard)))
        self.pinned = self.pinned_cids()
        return "; ".join(moves)

    def _cb(self, target: str, member: str | None = None):
        async def cb(msg):
            self.record(target, msg.subject, msg.data, member)
        return cb

    async def setup(self) -> None:
        o = self.opts
        http_port = free_port()
        self.srv = Server("actor", config=KILL_CONFIG, args=["-m", str(http_port)],
                          ready_timeout=30.0)
        self.chaos = Chaos2(self.srv, http_port)
        # before any other traffic: publishers, then marker probes, one pinned to each shard
        pubs = await self.pin("pub")
        probes = await self.pin("probe")
        self.subjects = {i: [f"p{i}a.x", f"p{i}b.x"] for i in sorted(pubs)}
        self.literals = [s for i in sorted(self.subjects) for s in self.subjects[i]]
        sub = await self.connect("sub")
        for s in self.literals:
            await sub.subscribe(s, cb=self._cb("lit"))
        await sub.subscribe("*.x", cb=self._cb("wild"))
        for m in ("q1", "q2"):
            nc = await self.connect(m)
            await nc.subscribe("jobs.run", queue="workers", cb=self._cb("queue", m))
        victim = await self.connect("victim")  # the Client that gets killed; not measured
        await victim.subscribe("victim.v", cb=self._cb("victim"))
        self.raw = RawSub(self.srv.host, self.srv.port,
                          lambda subject, sid, payload: self.record("raw", subject, payload))
        await self.raw.start()
        for nc in self.ncs.values():
            await nc.flush(timeout=5)
        self.targets = []  # (target, subject, probe): each probe's markers must reach each
        for p, subjects in self.subjects.items():
            for s in subjects:
                for target in ("lit", "wild", "raw"):
                    self.streams[(target, p, s)] = Stream(ordered=True)
                    self.targets.append((target, s, p))
            self.streams[("queue", p, "jobs.run")] = Stream(ordered=False)
            self.targets += [("queue", "jobs.run", p), ("victim", "victim.v", p)]
        self.marker_subjects = {p: self.subjects[p] + ["jobs.run", "victim.v"] for p in probes}
        self.pubs = [Publisher(pubs[p], p, self.subjects[p] + ["jobs.run"], o.rate)
                     for p in sorted(pubs)]
        self.probes = probes
        self.pub_shard = {p: p for p in pubs}  # publisher -> the shard it is pinned to now
        self.pinned = self.pinned_cids()
        self.victim = victim
        # the subscriptions are all in place once a marker round reaches every target
        await self.delivery_round(time.monotonic(), ready_at=time.monotonic())

        tree = await self.chaos.actorz()
        shards = self.chaos.shard_paths(tree)
        self.kinds.append(Kind("(no kill)", "none", None))  # the measuring floor
        for p in shards:
            self.kinds.append(Kind(p.rsplit("/", 1)[1], "shard", self.router_pacer))
        self.shard_paths = shards
        for name in ("router", "client", "config", "listener", "monitor", "clients", "accounts",
                     "system"):
            if name != "client" and f"/server/{name}" not in tree:
                continue
            self.kinds.append(Kind(name, name, self.root_pacer if name in ROOT_KINDS else None))

    # -- measuring ------------------------------------------------------------------------------

    def measured(self) -> list[str]:
        return [n for n in self.ncs if n != "victim"]

    def measured_cids(self) -> dict[str, int]:
        out = {n: self.ncs[n].client_id for n in self.measured()}
        out["raw"] = self.raw.cid
        return out

    def disconnect_counts(self) -> dict[str, int]:
        out = {n: self.watches[n].disconnects for n in self.measured()}
        out["raw"] = self.raw.disconnects
        return out

    def total_lost(self) -> int:
        return sum(st.lost for st in self.streams.values())

    def lost_by_target(self) -> Counter:
        c: Counter = Counter()
        for (target, _, _), st in self.streams.items():
            c[target] += st.lost
        return c

    def lost_by_publisher(self) -> Counter:
        """Over the subscriptions that get every message (not the queue group)."""
        c: Counter = Counter()
        for (target, p, _), st in self.streams.items():
            if target != "queue":
                c[p] += st.lost
        return c

    async def delivery_round(self, t0: float, ready: asyncio.Event | None = None,
                             ready_at: float | None = None) -> tuple[float, float, str]:
        """Publish markers on every subject every MARKER_INTERVAL until the actor is back
        (`ready` set; `ready_at` is when it was seen) and every target has received a marker
        published after that. Returns (delivery: time from t0 until the last target got such a
        marker; stall: the longest wait between marker arrivals on any target, from t0 on;
        the target with that stall)."""
        self.arrivals, self.arrival_max = {}, {}
        self.marker_floor = self.next_marker
        first_late = None  # the first marker published after the actor was seen back
        delivered: dict[tuple, float] = {}  # target -> when it first had a marker >= first_late
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        done_at = None
        while True:
            now = time.monotonic()
            if ready_at is None and ready is not None and ready.is_set():
                ready_at = getattr(ready, "at", now)
            if first_late is not None and done_at is None:
                for t in self.targets:
                    if t not in delivered and self.arrival_max.get(t, 0) >= first_late:
                        delivered[t] = next(a for mid, a in self.arrivals[t] if mid >= first_late)
                if len(delivered) == len(self.targets):
                    done_at = now
            if done_at is not None and now - done_at >= 0.02:  # a few more, for the stalls
                break
            if loop.time() > deadline:
                missing = [t for t in self.targets if t not in delivered]
                raise RunError(f"delivery did not resume within {TIMEOUT}s "
                               f"(actor back: {ready_at is not None}; not reached: {missing[:6]})")
            mid = self.next_marker
            self.next_marker += 1
            try:
                for p, nc in self.probes.items():
                    payload = b"m %d %d" % (p, mid)
                    for s in self.marker_subjects[p]:
                        await nc.publish(s, payload)
                if first_late is None and ready_at is not None:
                    first_late = mid
            except nats.errors.Error:
                pass
            await asyncio.sleep(MARKER_INTERVAL)
        self.marker_floor = 1 << 62
        delivery = max(delivered.values()) - t0
        stall, stall_target = 0.0, ""
        for target in self.targets:
            prev = t0
            for _, t in sorted(self.arrivals[target], key=lambda a: a[1]):
                if t - prev > stall:
                    stall, stall_target = t - prev, f"{target[0]} {target[1]} (probe {target[2]})"
                prev = t
        return delivery, stall, stall_target

    async def settle(self) -> None:
        """Let every subscription receive what has been published so far (or lose it), then
        count the gaps."""
        bounds = {(p.index, s): p.sent[s] for p in self.pubs for s in p.subjects}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        queue_seen: dict[tuple, float] = {}
        pending = dict(self.streams)
        while pending:
            now = loop.time()
            for key, st in list(pending.items()):
                target, p, s = key
                b = bounds[(p, s)]
                if target != "queue":
                    done = st.last >= b
                elif not st.has(b):
                    done = b == 0
                else:
                    queue_seen.setdefault(key, now)
                    done = (all(self.members.get((m, p, s), 0) >= b for m in ("q1", "q2"))
                            or now - queue_seen[key] > 0.3)
                if done:
                    st.settle(b)
                    del pending[key]
            if not pending:
                break
            if now > deadline:
                raise RunError(f"subscriptions stopped delivering: {sorted(pending)[:6]}")
            await asyncio.sleep(0.01)

    async def wait_back(self, check, t0: float, ready: asyncio.Event) -> tuple[float, dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            tree = await self.chaos.try_actorz()
            if tree is not None and check(tree):
                ready.at = time.monotonic()
                ready.set()
                return ready.at - t0, tree
            if self.srv.proc.poll() is not None:
                raise RunError(f"the server exited ({self.srv.proc.returncode})")
            if loop.time() > deadline:
                raise RunError(f"not back after {TIMEOUT}s")
            await asyncio.sleep(POLL)

    # -- one kill -------------------------------------------------------------------------------

    async def kill_once(self, kind: Kind) -> dict:
        c = self.chaos
        tree = await c.actorz()
        old_cid = None
        if kind.kind == "none":
            path = "/server"
        elif kind.kind == "shard":
            path = f"/server/router/{kind.name}"
        elif kind.kind == "client":
            old_cid = self.victim.client_id
            path = f"/server/clients/cid-{old_cid}"
        else:
            path = f"/server/{kind.kind}"
        if path not in tree:
            raise RunError(f"{path} is not in /actorz")
        before = tree[path]["restarts"]
        shards_before = {p: tree[p]["restarts"] for p in self.shard_paths}

        def check(now: dict) -> bool:
            if kind.kind == "none":
                return True
            if kind.kind == "client":
                new = self.victim.client_id
                e = now.get(f"/server/clients/cid-{new}")
                return (new != old_cid and path not in now and e is not None
                        and e["state"] == "running")
            e = now.get(path)
            if e is None or e["state"] != "running" or e["restarts"] <= before:
                return False
            if kind.kind == "router":  # and every shard of the new router
                return all(now.get(p, {}).get("restarts", -1) > shards_before[p]
                           and now[p]["state"] == "running" for p in self.shard_paths)
            return True

        disc0 = self.disconnect_counts()
        cids0 = self.measured_cids()
        lost0 = self.lost_by_target()
        lost_pub0 = self.lost_by_publisher()
        ready = asyncio.Event()
        t0 = time.monotonic()
        if kind.pacer is not None:
            kind.pacer.charge(t0)
        if kind.kind != "none":
            await c.kill(path, f"chaos report: {kind.name}")
        back = asyncio.get_running_loop().create_task(self.wait_back(check, t0, ready))
        try:
            delivery, stall, stalled = await self.delivery_round(t0, ready)
            restart, _ = await back
        finally:
            if not back.done():
                back.cancel()
                await asyncio.gather(back, return_exceptions=True)
        await self.settle()
        lost_by = self.lost_by_target() - lost0
        lost_pub = self.lost_by_publisher() - lost_pub0
        disc1 = self.disconnect_counts()
        cids1 = self.measured_cids()
        conn_cids = await c.cids()
        disconnected = sorted(n for n in disc1 if disc1[n] > disc0[n]
                              or cids1[n] != cids0[n] or cids1[n] not in conn_cids)
        tree1 = await c.actorz()
        if kind.kind in ("client", "none"):
            restarts = 0
        else:
            restarts = tree1[path]["restarts"] - before
        notes = []
        if kind.kind not in ("client", "none") and restarts != 1:
            notes.append(f"{path} restarts +{restarts}")
        if kind.kind == "shard":  # only the publisher pinned to the killed shard may lose
            index = tree[path]["index"]
            others = {p: n for p, n in lost_pub.items() if self.pub_shard[p] != index}
            if others:
                notes.append(f"{path} killed: lost messages of publishers pinned to other "
                             f"shards {others}")
        # nothing else restarted: only the killed actor and what it supervises
        for p, e in tree1.items():
            if kind.kind != "none" and (p == path or p.startswith(path + "/")):
                continue
            if p.startswith("/server/clients/"):
                continue
            if p in tree and e["restarts"] != tree[p]["restarts"]:
                notes.append(f"{p} restarted too")
        if self.srv.proc.poll() is not None:
            notes.append("server exited")
        return {"path": path, "restart_ms": restart * 1000, "delivery_ms": delivery * 1000,
                "stall_ms": stall * 1000, "stalled": stalled, "lost": sum(lost_by.values()),
                "lost_by": {k: v for k, v in lost_by.items() if v},
                "lost_by_publisher": {str(k): v for k, v in lost_pub.items() if v},
                "restarts": restarts, "disconnected": disconnected, "notes": notes}

    # -- phases ---------------------------------------------------------------------------------

    async def run_baseline(self, seconds: float) -> None:
        lost0 = self.total_lost()
        disc0 = self.disconnect_counts()
        sent0 = sum(p.sent.total() for p in self.pubs)
        await asyncio.sleep(seconds)
        await self.settle()
        disc1 = self.disconnect_counts()
        self.baseline = {"seconds": seconds, "published": sum(p.sent.total() for p in self.pubs) - sent0,
                         "lost": self.total_lost() - lost0,
                         "disconnected": sorted(n for n in disc1 if disc1[n] > disc0[n])}

    async def run_kills(self) -> None:
        o = self.opts
        jobs = [k for _ in range(o.kills) for k in self.kinds]
        done = 0
        while jobs:
            now = time.monotonic()
            pick = None
            for i, k in enumerate(jobs):
                if k.pacer is None or k.pacer.wait_time(now) <= 0:
                    pick = i
                    break
            if pick is None:
                await asyncio.sleep(min(k.pacer.wait_time(now) for k in jobs) + 0.01)
                continue
            k = jobs.pop(pick)
            try:
                r = await self.kill_once(k)
            except RunError as e:
                r = {"error": str(e), "notes": [str(e)]}
                self.anomalies.append(f"{k.name}: {e}")
                if self.srv.proc.poll() is not None:
                    k.kills.append(r)
                    raise
                await asyncio.sleep(0.5)
            k.kills.append(r)
            done += 1
            if not o.quiet:
                if "error" in r:
                    line = f"ERROR {r['error']}"
                else:
                    line = (f"restart {r['restart_ms']:6.1f} ms  delivery {r['delivery_ms']:6.1f} ms"
                            f"  stall {r['stall_ms']:6.1f} ms  lost {r['lost']:4d}"
                            + (f"  disconnected {','.join(r['disconnected'])}"
                               if r["disconnected"] else "")
                            + (f"  ({'; '.join(r['notes'])})" if r["notes"] else ""))
                print(f"  [{time.monotonic() - self.started:6.1f}s] kill {done:3d} "
                      f"{k.name:<9} {line}", flush=True)
            if self.srv.proc.poll() is None:
                moved = await self.repin()
                if moved and not o.quiet:
                    print(f"  pinned again after reconnecting: {moved}", flush=True)
            await asyncio.sleep(o.gap)

    async def escalate_router(self) -> None:
        """Shard kills back to back until the router exceeds its budget and fails; the root
        restarts it (and its shards); clients stay connected."""
        c = self.chaos
        now = time.monotonic()
        wait = max(self.router_pacer.clear_time(now), self.root_pacer.wait_time(now))
        await asyncio.sleep(wait)
        tree = await c.actorz()
        r0 = tree["/server/router"]["restarts"]
        root0 = tree["/server"]["restarts"]
        shards0 = {p: tree[p]["restarts"] for p in self.shard_paths}
        disc0, cids0, lost0 = self.disconnect_counts(), self.measured_cids(), self.total_lost()
        kills, t_last, gave_up = 0, time.monotonic(), False
        t_first = t_last
        while kills < MAX_ESCALATION_KILLS and not gave_up:
            path = self.shard_paths[kills % len(self.shard_paths)]
            before = tree[path]["restarts"]
            t_last = time.monotonic()
            await c.kill(path, "chaos report: router budget")
            kills += 1
            deadline = t_last + TIMEOUT
            while True:
                tree = await c.try_actorz() or tree
                if tree["/server/router"]["restarts"] > r0:
                    gave_up = True
                    break
                e = tree.get(path)
                if e is not None and e["restarts"] > before and e["state"] == "running":
                    break
                if time.monotonic() > deadline:
                    raise RunError(f"{path} not back during the router escalation")
                await asyncio.sleep(0.002)
        self.root_pacer.charge(t_last)
        ready = asyncio.Event()

        def check(now):
            e = now.get("/server/router")
            return (e is not None and e["state"] == "running" and e["restarts"] > r0
                    and all(now.get(p, {}).get("state") == "running" for p in self.shard_paths))

        back = asyncio.get_running_loop().create_task(self.wait_back(check, t_last, ready))
        delivery, stall, stalled = await self.delivery_round(t_last, ready)
        restart, tree1 = await back
        await self.settle()
        disc1, cids1 = self.disconnect_counts(), self.measured_cids()
        conn_cids = await c.cids()
        disconnected = sorted(n for n in disc1 if disc1[n] > disc0[n]
                              or cids1[n] != cids0[n] or cids1[n] not in conn_cids)
        line = f"/server/router: more than {ROUTER_BUDGET[0]} restarts in {ROUTER_BUDGET[1]}s; giving up"
        logged = line in self.srv.log()
        ok = (gave_up and kills > ROUTER_BUDGET[0] and logged
              and tree1["/server"]["restarts"] == root0
              and tree1["/server/router"]["restarts"] == r0 + 1 and not disconnected)
        self.escalation["router"] = {
            "budget": f"{ROUTER_BUDGET[0]} in {ROUTER_BUDGET[1]:g}s", "kills": kills,
            "gave_up": gave_up, "seconds": round(t_last - t_first, 3), "logged": logged,
            "router_back_ms": restart * 1000, "delivery_ms": delivery * 1000,
            "stall_ms": stall * 1000, "stalled": stalled,
            "lost": self.total_lost() - lost0, "disconnected": disconnected,
            "shard_restarts": {p.rsplit("/", 1)[1]: tree1[p]["restarts"] - shards0[p]
                               for p in self.shard_paths},
            "root_restarts": tree1["/server"]["restarts"] - root0, "as_designed": ok}

    def escalate_root(self) -> None:
        """Router kills (each after the previous restart is visible) until the root exceeds
        its budget: the process must exit non-zero with one [FTL] line."""
        c, server = self.chaos, self.srv
        kills, t_first, t_last = 0, time.monotonic(), time.monotonic()

        def router_restarts():
            return c.actorz_sync()["/server/router"]["restarts"]

        while server.proc.poll() is None and kills < MAX_ESCALATION_KILLS and not self.aborted:
            try:
                before = router_restarts()
                status, _ = c.kill_sync("/server/router", "chaos report: root budget")
            except (urllib.error.URLError, ConnectionError, OSError, KeyError, AssertionError):
                break  # the process is going away
            if status != 200:
                break
            kills += 1
            t_last = time.monotonic()
            self.root_pacer.times.append(t_last)
            deadline = time.monotonic() + TIMEOUT
            while (server.proc.poll() is None and time.monotonic() < deadline
                   and not self.aborted):
                try:
                    if router_restarts() > before:
                        break
                except (urllib.error.URLError, ConnectionError, OSError, KeyError, AssertionError):
                    pass
                time.sleep(POLL)
        if self.aborted:
            return
        try:
            code = server.proc.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        now = time.monotonic()
        at_exit = sum(1 for t in self.root_pacer.times if t_last - t <= ROOT_BUDGET[1])
        lines = [ln for ln in server.log().splitlines() if "supervisor tree gave up" in ln]
        pattern = rf"\[FTL\] supervisor tree gave up: .*more than {ROOT_BUDGET[0]} restarts in"
        ok = (code not in (None, 0) and len(lines) == 1 and re.search(pattern, lines[0]) is not None)
        self.escalation["root"] = {
            "budget": f"{ROOT_BUDGET[0]} in {ROOT_BUDGET[1]:g}s", "kills": kills,
            "seconds": round(now - t_first, 3), "root_restarts_in_period": at_exit,
            "exit_code": code, "log_line": lines[0] if lines else None, "as_designed": ok}

    # -- the whole run ----------------------------------------------------------------------------

    async def run(self) -> None:
        o = self.opts
        await self.setup()
        pinned = ", ".join(f"{p.index}: cid {p.nc.client_id} on {' '.join(p.subjects)}"
                           for p in self.pubs)
        print(f"  server pid {self.srv.pid}, client port {self.srv.port}, monitoring port "
              f"{self.chaos.http_port}; publishers by shard: {pinned}", flush=True)
        for p in self.pubs:
            p.start()
        await asyncio.sleep(0.5)
        await self.settle()
        await self.run_baseline(o.baseline)
        print(f"  baseline: {self.baseline['published']} published in {o.baseline:g}s, "
              f"{self.baseline['lost']} lost", flush=True)
        await self.run_kills()
        if not o.no_escalation:
            await self.escalate_router()
            e = self.escalation["router"]
            print(f"  router budget: gave up after {e['kills']} shard kills in {e['seconds']:.2f}s; "
                  f"back in {e['router_back_ms']:.1f} ms", flush=True)
        for p in self.pubs:
            await p.stop()
        await self.close_clients()
        if not o.no_escalation:
            await asyncio.to_thread(self.escalate_root)
            e = self.escalation["root"]
            print(f"  root budget: gave up after {e['kills']} router kills; exit code "
                  f"{e['exit_code']}", flush=True)

    async def close_clients(self) -> None:
        for p in self.pubs:
            await p.stop()
        for nc in list(self.ncs.values()):
            if not nc.is_closed:
                try:
                    await asyncio.wait_for(nc.close(), 5)
                except (asyncio.TimeoutError, nats.errors.Error, OSError):
                    pass
        if self.raw is not None:
            await self.raw.close()

    def stop_server(self) -> None:
        if self.srv is not None:
            try:
                self.srv.stop()
            finally:
                shutil.rmtree(self.srv.dir, ignore_errors=True)

    # -- results ----------------------------------------------------------------------------------

    def rows(self) -> list[dict]:
        out = []
        for k in self.kinds:
            ok = [r for r in k.kills if "error" not in r]
            rs = [r["restart_ms"] for r in ok]
            ds = [r["delivery_ms"] for r in ok]
            ss = [r["stall_ms"] for r in ok]
            lost = sum(r["lost"] for r in ok)
            others = sum(len(r["disconnected"]) for r in ok)
            notes = sorted({n for r in k.kills for n in r.get("notes", [])})
            lost_by: Counter = Counter()
            for r in ok:
                lost_by.update(r["lost_by"])
            out.append({
                "kind": k.name, "kills": len(k.kills), "errors": len(k.kills) - len(ok),
                "restarts": sum(r["restarts"] for r in ok),
                "restart_p50_ms": percentile(rs, 0.5), "restart_p99_ms": percentile(rs, 0.99),
                "delivery_p50_ms": percentile(ds, 0.5), "delivery_p99_ms": percentile(ds, 0.99),
                "stall_p50_ms": percentile(ss, 0.5), "stall_p99_ms": percentile(ss, 0.99),
                "lost": lost, "lost_per_kill": lost / len(ok) if ok else None,
                "lost_by": dict(lost_by), "other_disconnects": others,
                "expected_disconnects": k.kind == "clients", "notes": notes, "samples": k.kills})
        return out

    def ok(self, rows) -> bool:
        if self.anomalies:
            return False
        if any(st.dups or st.disorder for st in self.streams.values()) or self.pub_disorder:
            return False
        for r in rows:
            if r["errors"] or r["notes"]:
                return False
            if r["other_disconnects"] and not r["expected_disconnects"]:
                return False
            if r["kind"] not in ("client", "(no kill)") and r["restarts"] != r["kills"]:
                return False
        return all(e.get("as_designed") for e in self.escalation.values())


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "  ".join(str(x).rjust(w) if i else str(x).ljust(w)  # noqa: E731
                               for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render(rep: Report, rows: list[dict]) -> str:
    o = rep.opts
    out = []
    b = rep.baseline
    headers = ["kind", "kills", "restarts", "restart p50", "p99", "delivery p50", "p99",
               "stall p50", "p99", "lost", "lost/kill", "other disc."]
    body = []
    for r in rows:
        disc = str(r["other_disconnects"])
        if r["expected_disconnects"]:
            disc += " (all, by design)"
        restarts = {"client": "0 (temp.)", "(no kill)": "-"}.get(r["kind"], str(r["restarts"]))
        body.append([r["kind"], str(r["kills"]) + (f" ({r['errors']} err)" if r["errors"] else ""),
                     restarts, _ms(r["restart_p50_ms"]), _ms(r["restart_p99_ms"]),
                     _ms(r["delivery_p50_ms"]), _ms(r["delivery_p99_ms"]),
                     _ms(r["stall_p50_ms"]), _ms(r["stall_p99_ms"]), str(r["lost"]),
                     "-" if r["lost_per_kill"] is None else f"{r['lost_per_kill']:.1f}", disc])
    out.append("ms from the kill request until: restart = the actor is back in /actorz with "
               "restarts+1 (client: reconnected as a new cid);")
    out.append("  delivery = every subscription has received a marker published after that; "
               "stall = the longest gap in marker arrivals")
    out.append("  on any subscription (markers every 2 ms); lost = data messages lost in the "
               "window (core NATS is at-most-once);")
    out.append("  (no kill) = the same measurement without a kill: the floor of each column on "
               "this machine")
    out.append("")
    out.append(table(body, headers))
    notes = [(r["kind"], n) for r in rows for n in r["notes"]]
    if notes or rep.anomalies:
        out.append("")
        for kind, n in notes:
            out.append(f"  ! {kind}: {n}")
        for a in rep.anomalies:
            if not any(a.endswith(n) for _, n in notes):
                out.append(f"  ! {a}")
    lost_any = [(r["kind"], r["lost_by"]) for r in rows if r["lost_by"]]
    if lost_any:
        out.append("")
        out.append("lost by subscription: " + "; ".join(
            f"{k}: " + ", ".join(f"{t}={n}" for t, n in sorted(by.items())) for k, by in lost_any))
    if rep.escalation:
        out.append("")
        out.append("restart budgets exceeded on purpose:")
        e = rep.escalation.get("router")
        if e:
            out.append(f"  router ({e['budget']}): gave up after {e['kills']} back-to-back shard kills "
                       f"in {e['seconds']:.2f}s{'' if e['logged'] else ' (no log line!)'}; "
                       f"the root restarted it in {e['router_back_ms']:.1f} ms (shards restarted "
                       f"{sorted(set(e['shard_restarts'].values()))} times, root +"
                       f"{e['root_restarts']}); delivery {e['delivery_ms']:.1f} ms, stall "
                       f"{e['stall_ms']:.1f} ms; "
                       f"{e['lost']} lost; other disconnects {len(e['disconnected'])}: "
                       f"{'as designed' if e['as_designed'] else 'NOT as designed'}")
        e = rep.escalation.get("root")
        if e:
            out.append(f"  root ({e['budget']}): gave up after {e['kills']} router kills "
                       f"(then {e['root_restarts_in_period']} kills of root children in the "
                       f"last {ROOT_BUDGET[1]:g}s, counting the paced ones); exit code "
                       f"{e['exit_code']}: {'as designed' if e['as_designed'] else 'NOT as designed'}")
            if e["log_line"]:
                out.append(f"    {e['log_line'].strip()}")
    out.append("")
    if b:
        out.append(f"before the kills: {b['published']} messages published in {b['seconds']:g}s "
                   f"of load without kills, {b['lost']} lost, "
                   f"{len(b['disconnected'])} disconnects")
    dups = sum(st.dups for st in rep.streams.values())
    disorder = sum(st.disorder for st in rep.streams.values())
    out.append(f"duplicates: {dups}, out of order: {disorder} per subject (over every "
               f"subscription and publisher), {rep.pub_disorder} per publisher across its "
               f"subjects (on *.x)")
    alive = getattr(rep, "server_state", "?")
    published = sum(p.sent.total() for p in rep.pubs)
    pub_errors = sum(p.errors for p in rep.pubs)
    total_kills = sum(r["kills"] for r in rows if r["kind"] != "(no kill)")
    out.append(f"{total_kills} paced kills; server process {alive}; "
               f"{published} messages published by {len(rep.pubs)} publishers (one per shard) at "
               f"{o.rate:g} msgs/s each ({pub_errors} publish errors); "
               f"{time.monotonic() - rep.started:.0f}s")
    return "\n".join(out)


# ------------------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, help="kills per kind, each shard counting as a kind "
                    "(10; quick 2)")
    ap.add_argument("--json", metavar="FILE", help="write the results (with every sample) as JSON")
    ap.add_argument("--quick", action="store_true", help="short run (CI smoke, < 60 s)")
    ap.add_argument("--rate", type=float, default=500.0,
                    help="messages/s per publisher (one publisher per shard) (500)")
    ap.add_argument("--baseline", type=float, help="seconds of load without kills (3; quick 1)")
    ap.add_argument("--gap", type=float, default=0.05,
                    help="seconds of plain load between one kill settling and the next (0.05)")
    ap.add_argument("--no-escalation", action="store_true",
                    help="skip exceeding the router's and the root's restart budgets")
    ap.add_argument("--quiet", action="store_true", help="no line per kill")
    opts = ap.parse_args(argv)
    opts.kills = opts.kills if opts.kills is not None else (2 if opts.quick else 20)
    opts.baseline = opts.baseline if opts.baseline is not None else (1.0 if opts.quick else 3.0)
    if opts.kills < 1 or opts.rate <= 0:
        ap.error("--kills must be at least 1 and --rate positive")
    return opts


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    print(f"actor-nats chaos report: {opts.kills} kills per kind, one publisher per shard at "
          f"{opts.rate:g} msgs/s each; budgets: root {ROOT_BUDGET[0]} in {ROOT_BUDGET[1]:g}s, "
          f"router "
          f"{ROUTER_BUDGET[0]} in {ROUTER_BUDGET[1]:g}s; {os.cpu_count()} cores, Python "
          f"{platform.python_version()}", flush=True)
    rep = Report(opts)
    interrupted, failure = False, None

    async def go():
        try:
            await rep.run()
        finally:
            rep.aborted = True
            await rep.close_clients()

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted; results so far:", file=sys.stderr)
    except (RunError, RuntimeError, OSError, AssertionError, nats.errors.Error,
            asyncio.TimeoutError) as e:
        failure = f"{type(e).__name__}: {e}"
        print(f"\nrun failed: {failure}", file=sys.stderr)
        if rep.srv is not None:
            print(rep.srv.log()[-3000:], file=sys.stderr)
    finally:
        if rep.srv is None:
            rep.server_state = "never started"
        elif "root" in rep.escalation:
            rep.server_state = (f"up through every paced kill; exited with code "
                                f"{rep.escalation['root']['exit_code']} when the root's budget "
                                f"was exceeded on purpose")
        elif rep.srv.proc.poll() is None:
            rep.server_state = "up until stopped"
        else:
            rep.server_state = f"NOT up (exit code {rep.srv.proc.returncode})"
        rep.stop_server()
    rows = rep.rows()
    print()
    print(render(rep, rows))
    ok = failure is None and not interrupted and rep.ok(rows)
    if opts.json:
        meta = {"kills_per_kind": opts.kills, "rate_per_publisher": opts.rate,
                "publishers": len(rep.pubs),
                "quick": opts.quick, "baseline": rep.baseline, "cores": os.cpu_count(),
                "python": platform.python_version(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "budgets": {"root": list(ROOT_BUDGET), "router": list(ROUTER_BUDGET)},
                "published": sum(p.sent.total() for p in rep.pubs), "failure": failure,
                "duplicates": sum(st.dups for st in rep.streams.values()),
                "out_of_order": sum(st.disorder for st in rep.streams.values()),
                "out_of_order_across_subjects": rep.pub_disorder,
                "interrupted": interrupted, "anomalies": rep.anomalies,
                "server": getattr(rep, "server_state", None), "ok": ok}
        Path(opts.json).write_text(json.dumps({"meta": meta, "kinds": rows,
                                               "escalation": rep.escalation}, indent=2))
    if interrupted:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
