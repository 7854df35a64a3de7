"""Helpers for chaos tests: kill actors of a running actor-nats through its monitoring port
while nats-py clients (and raw sockets, where exactness matters) keep using it.

Owns: the `/actorz` view and `/actorz/kill` calls (run off the event loop, so clients keep
being served while a test waits on HTTP), waiting for a supervisor to restart an actor,
finding a publisher pinned to each shard (a connection's /actorz entry shows the shard all its
publishes go to; checked against the shards' mailbox counters), counting what each
subscription received (`Tally`), continuous publishers, marker rounds that prove every
subscription delivers again, a raw asyncio NATS connection, and nats-py connections whose
disconnects are recorded.

Must not: start servers (the `chaos` fixture in conftest.py does, through `start_server`),
patch anything, or assert on timing (timeouts here are generous and only stop a broken test
from hanging).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

from tests.interop.helpers import TIMEOUT, eventually, flush

KILL_CONFIG = "debug { allow_kill: true }\n"


# -- monitoring port ------------------------------------------------------------------------

def http_json(url: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, dict]:
    """(status, decoded JSON body) of one HTTP call; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode(errors="replace")}


class Chaos:
    """One actor-nats server started with a monitoring port: its client URL, `/actorz`,
    `/connz` and `/actorz/kill`. The async methods run HTTP in a worker thread."""

    def __init__(self, server, http_port: int):
        self.server = server
        self.http_port = http_port
        self.base = f"http://127.0.0.1:{http_port}"
        self.url = server.url

    # sync -----------------------------------------------------------------------------------

    def get(self, path: str) -> tuple[int, dict]:
        return http_json(self.base + path)

    def actorz_sync(self) -> dict[str, dict]:
        status, body = self.get("/actorz")
        assert status == 200, (status, body)
        return {a["path"]: a for a in body["actors"]}

    def kill_sync(self, path: str, reason: str = "chaos test") -> tuple[int, dict]:
        query = urllib.parse.urlencode({"path": path, "reason": reason})
        return http_json(f"{self.base}/actorz/kill?{query}", method="POST")

    # async ----------------------------------------------------------------------------------

    async def actorz(self) -> dict[str, dict]:
        return await asyncio.to_thread(self.actorz_sync)

    async def connz(self) -> dict:
        status, body = await asyncio.to_thread(self.get, "/connz")
        assert status == 200, (status, body)
        return body

    async def cids(self) -> set[int]:
        return {c["cid"] for c in (await self.connz())["connections"]}

    async def kill(self, path: str, reason: str = "chaos test") -> dict:
        status, body = await asyncio.to_thread(self.kill_sync, path, reason)
        assert status == 200, f"kill {path}: HTTP {status} {body}"
        assert body["killed"] == path
        return body

    async def wait_restarted(self, path: str, before: int, timeout: float = TIMEOUT) -> dict:
        """Wait until the actor at `path` runs again with more than `before` restarts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            entry = (await self.actorz()).get(path)
            if entry is not None and entry["restarts"] > before and entry["state"] == "running":
                return entry
            if loop.time() > deadline:
                raise AssertionError(f"{path} not restarted (restarts > {before}) after {timeout}s: "
                                     f"{entry}")
            assert self.server.proc.poll() is None, f"server exited:\n{self.server.log()}"
            await asyncio.sleep(0.005)

    async def kill_and_wait(self, path: str, reason: str = "chaos test") -> dict:
        before = (await self.actorz())[path]["restarts"]
        await self.kill(path, reason)
        entry = await self.wait_restarted(path, before)
        assert entry["restarts"] == before + 1, entry
        return entry

    def shard_paths(self, tree: dict[str, dict]) -> list[str]:
        return sorted((p for p, a in tree.items() if a["kind"] == "shard"),
                      key=lambda p: tree[p]["index"])

    async def shard_of(self, cid: int) -> int:
        """The shard connection `cid` publishes through, as its /actorz entry shows it."""
        entry = (await self.actorz()).get(f"/server/clients/cid-{cid}")
        assert entry is not None and entry.get("cid") == cid, f"cid {cid} not in /actorz: {entry}"
        assert isinstance(entry.get("shard"), int), f"cid {cid}: no shard in /actorz: {entry}"
        return entry["shard"]


async def pin_publishers(chaos: "Chaos", connect, max_connections: int = 32,
                         verify: bool = True) -> dict[int, object]:
    """One connection pinned to each shard: call `await connect(k)` (k = 0, 1, ...; it returns
    a nats-py client) until every shard has one, reading each connection's shard from /actorz
    (`Chaos.shard_of`). Connections pinned to a shard already covered are closed again (and
    waited out of /connz). With `verify`, each pinned connection then publishes a probe and
    flushes, and its shard's `received` counter must move, and no other shard's (tried again
    while the server's own traffic moves others too). Call it before any other traffic.
    Returns shard index -> connection."""
    tree = await chaos.actorz()
    paths = {tree[p]["index"]: p for p in chaos.shard_paths(tree)}
    pinned: dict[int, object] = {}
    spares = []
    for k in range(max_connections):
        if len(pinned) == len(paths):
            break
        nc = await connect(k)
        idx = await chaos.shard_of(nc.client_id)
        assert idx in paths, f"cid {nc.client_id}: shard {idx} is not one of {sorted(paths)}"
        if idx in pinned:
            spares.append(nc)
        else:
            pinned[idx] = nc
    missing = sorted(set(paths) - set(pinned))
    assert not missing, f"no publisher pinned to shards {missing} in {max_connections} connections"
    if spares:
        gone = {nc.client_id for nc in spares}
        for nc in spares:
            await nc.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while gone & await chaos.cids():
            assert loop.time() < deadline, f"closed connections {gone} still in /connz"
            await asyncio.sleep(0.01)
    if verify:
        for idx, nc in sorted(pinned.items()):
            await _verify_pinned(chaos, nc, paths[idx], list(paths.values()))
    return pinned


async def _verify_pinned(chaos: "Chaos", nc, path: str, paths: list[str]) -> None:
    """`nc`'s publishes reach the shard at `path`, and no other shard."""
    for attempt in range(20):
        tree = await chaos.actorz()
        before = {p: tree[p]["received"] for p in paths}
        # a fresh subject each time: the publisher may drop a subject it learnt has no interest
        await nc.publish(f"pin.{nc.client_id}.{attempt}", b"probe")
        await flush(nc)
        tree = await chaos.actorz()
        moved = {p for p in paths if tree[p]["received"] != before[p]}
        assert path in moved, (f"cid {nc.client_id} is shown pinned to {path}, but its publish "
                               f"moved {sorted(moved)}")
        if moved == {path}:
            return
        # the server's own traffic (a STATSZ counting subscriptions asks every shard) interleaved
    raise AssertionError("the shards never went quiet")


# -- counting deliveries --------------------------------------------------------------------

class Tally:
    """What one subscription (or one queue group) received.

    Data messages carry `d:<publisher>:<seq>:<publisher seq>` (see `Publisher`: a sequence per
    subject and one across the publisher's subjects) or just `d:<seq>`; markers carry
    `m:<id>`. Sequences must only increase per (publisher, subject): no duplicates, no
    reordering; gaps are losses. They must also increase per publisher across subjects (all of
    a publisher's messages are routed by one shard, in publish order). Across the members of a
    queue group (`ordered=False`) only duplicates are wrong.
    """

    def __init__(self, name: str, ordered: bool = True):
        self.name = name
        self.ordered = ordered  # False for a queue group: its members are separate connections
        self.seen: set = set()  # (publisher, subject, seq) when not ordered: a repeat is a duplicate
        self.count = 0
        self.per_subject: Counter = Counter()
        self.per_stream: Counter = Counter()  # (publisher, subject) -> received
        self.last_seq: dict[tuple, int] = {}  # (publisher, subject) -> last seq
        self.last_pub_seq: dict[str, int] = {}  # publisher -> last publisher seq
        self.disorder: list = []
        self.markers: dict[tuple[str, int], float] = {}  # (subject, id) -> first arrival

    def record(self, subject: str, data: bytes) -> None:
        kind, _, value = data.partition(b":")
        if kind == b"m":
            self.markers.setdefault((subject, int(value)), time.monotonic())
        elif kind == b"d":
            fields = value.split(b":")
            if len(fields) == 1:
                pub, seq, pub_seq = None, int(fields[0]), None
            else:
                pub, seq, pub_seq = fields[0].decode(), int(fields[1]), int(fields[2])
            stream = (pub, subject)
            if self.ordered:
                last = self.last_seq.get(stream, 0)
                if seq <= last:
                    self.disorder.append((subject, pub, last, seq))
                self.last_seq[stream] = seq
                if pub_seq is not None:
                    last = self.last_pub_seq.get(pub, 0)
                    if pub_seq <= last:
                        self.disorder.append((pub, "across subjects", last, pub_seq))
                    self.last_pub_seq[pub] = pub_seq
            elif (pub, subject, seq) in self.seen:
                self.disorder.append((subject, pub, "duplicate", seq))
            else:
                self.seen.add((pub, subject, seq))
            self.count += 1
            self.per_subject[subject] += 1
            self.per_stream[stream] += 1

    def gaps(self) -> Counter:
        """Per publisher: the messages missing below the last one received on each subject
        (losses, once the tally is ordered and nothing arrives out of order)."""
        out: Counter = Counter()
        for stream, last in self.last_seq.items():
            out[stream[0]] += last - self.per_stream[stream]
        return out

    def callback(self):
        async def cb(msg):
            self.record(msg.subject, msg.data)
        return cb

    def has_marker(self, subject: str, marker_id: int) -> bool:
        return (subject, marker_id) in self.markers

    def first_marker_at_or_after(self, subject: str, marker_id: int):
        times = [t for (s, m), t in self.markers.items() if s == subject and m >= marker_id]
        return min(times) if times else None


class Publisher:
    """Publishes `d:<name>:<seq>:<total>` round-robin over `subjects` until stopped, pausing
    between rounds: `seq` counts per subject, `total` over all of them."""

    def __init__(self, nc, subjects: list[str], pause: float = 0.01, name: str = "p"):
        self.nc = nc
        self.name = name
        self.subjects = list(subjects)
        self.pause = pause
        self.sent: Counter = Counter()
        self.total = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start (or start again after `stop`; the sequences continue)."""
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        prefix = b"d:" + self.name.encode() + b":"
        while not self._stop.is_set():
            for s in self.subjects:
                n = self.sent[s] + 1
                await self.nc.publish(s, prefix + b"%d:%d" % (n, self.total + 1))
                self.sent[s] = n
                self.total += 1
            await asyncio.sleep(self.pause)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


class Publishers:
    """Several `Publisher`s started and stopped together."""

    def __init__(self, publishers: list[Publisher]):
        self.publishers = list(publishers)

    def start(self) -> None:
        for p in self.publishers:
            p.start()

    async def stop(self) -> None:
        for p in self.publishers:
            p._stop.set()
        for p in self.publishers:
            await p.stop()

    def sent_on(self, subject: str) -> int:
        return sum(p.sent[subject] for p in self.publishers)

    @property
    def total(self) -> int:
        return sum(p.total for p in self.publishers)


_marker_ids = itertools.count(1)


def new_marker() -> int:
    return next(_marker_ids)


async def send_markers(nc, targets, marker_id: int | None = None, timeout: float = TIMEOUT,
                       interval: float = 0.02) -> int:
    """Publish marker `m:<id>` on each (subject, tally) target, again and again, until every
    tally has received it on that subject (a wildcard subscription can be a target once per
    subject it matches). Returns the marker id. Fails if some never do within `timeout`. The
    markers go through `nc`'s shard only: a round per publisher covers every shard.

    No flush here: a publisher task may be running on `nc` (see interop `settle`)."""
    marker_id = new_marker() if marker_id is None else marker_id
    payload = b"m:%d" % marker_id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        missing = [(s, t) for s, t in targets if not t.has_marker(s, marker_id)]
        if not missing:
            return marker_id
        if loop.time() > deadline:
            raise AssertionError(f"marker {marker_id} never reached "
                                 f"{sorted({(t.name, s) for s, t in missing})}")
        for subject in sorted({s for s, _ in missing}):
            await nc.publish(subject, payload)
        await asyncio.sleep(interval)


async def time_to_first_marker(nc, subject: str, tally: Tally, t0: float,
                               timeout: float = TIMEOUT) -> float:
    """Publish a fresh marker on `subject` about every millisecond until `tally` sees one of
    them; return the time from `t0` (monotonic) to that first arrival."""
    first = new_marker()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        arrived = tally.first_marker_at_or_after(subject, first)
        if arrived is not None:
            return arrived - t0
        if loop.time() > deadline:
            raise AssertionError(f"no marker reached {tally.name} on {subject} after {timeout}s")
        await nc.publish(subject, b"m:%d" % new_marker())
        await asyncio.sleep(0.001)


def percentiles(samples: list[float]) -> str:
    s = sorted(samples)
    if not s:
        return "no samples"
    p50 = statistics.median(s)
    p99 = s[min(len(s) - 1, max(0, int(round(0.99 * len(s))) - 1))]
    return (f"n={len(s)} p50={p50 * 1000:.1f}ms p99={p99 * 1000:.1f}ms "
            f"min={s[0] * 1000:.1f}ms max={s[-1] * 1000:.1f}ms")


# -- clients --------------------------------------------------------------------------------

class Watch:
    """Connection events of one nats-py client (callbacks record, tests assert)."""

    def __init__(self):
        self.disconnects = 0
        self.reconnects = 0
        self.reconnected = asyncio.Event()
        self.disconnected = asyncio.Event()

    async def on_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    async def on_reconnect(self) -> None:
        self.reconnects += 1
        self.reconnected.set()


async def connect_watched(clients, name: str, **options):
    """A nats-py client with reconnect on, whose disconnects and reconnects are recorded."""
    watch = Watch()
    options.setdefault("allow_reconnect", True)
    options.setdefault("reconnect_time_wait", 0.05)
    options.setdefault("max_reconnect_attempts", 200)
    nc = await clients.connect(name=name, disconnected_cb=watch.on_disconnect,
                               reconnected_cb=watch.on_reconnect, **options)
    return nc, watch


class RawClient:
    """A raw protocol connection on asyncio streams. A reader task parses what the server
    sends: MSGs go to `on_msg(subject, sid, payload)`, server PINGs are answered, PONGs are
    counted, `-ERR` and later INFO lines kept, and `closed` is set when the server closes the
    connection."""

    def __init__(self, on_msg=None):
        self.on_msg = on_msg
        self.info: dict = {}
        self.errors: list[str] = []
        self.infos: list[dict] = []  # INFO lines after the first (e.g. lame duck's ldm:true)
        self.pongs = 0
        self.closed = asyncio.Event()
        self._pong = asyncio.Event()
        self._reader = self._writer = None
        self._task: asyncio.Task | None = None

    async def connect(self, host: str, port: int, connect: dict | None = None) -> "RawClient":
        self._reader, self._writer = await asyncio.open_connection(host, port)
        line = await asyncio.wait_for(self._reader.readline(), TIMEOUT)
        assert line.startswith(b"INFO "), line
        self.info = json.loads(line[5:])
        opts = {"verbose": False, "pedantic": False, "protocol": 1, "name": "raw"}
        opts.update(connect or {})
        self.send(b"CONNECT " + json.dumps(opts).encode() + b"\r\n")
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        await self.ping()
        return self

    def send(self, data: bytes) -> None:
        self._writer.write(data)

    async def ping(self, timeout: float = TIMEOUT) -> None:
        """PING and wait for the PONG: everything sent before has been processed."""
        before = self.pongs
        self._pong.clear()
        self.send(b"PING\r\n")
        await eventually(lambda: self.pongs > before or self.closed.is_set(), timeout,
                         "PONG on the raw connection")
        assert not self.closed.is_set(), "raw connection closed by the server"

    async def _read_loop(self) -> None:
        r = self._reader
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                if not line.endswith(b"\r\n"):
                    break  # closed mid-line
                line = line[:-2]
                if line.startswith(b"MSG "):
                    args = line.split()[1:]
                    body = await r.readexactly(int(args[-1]) + 2)
                    if self.on_msg is not None:
                        self.on_msg(args[0].decode(), args[1].decode(), body[:-2])
                elif line == b"PING":
                    self.send(b"PONG\r\n")
                elif line == b"PONG":
                    self.pongs += 1
                    self._pong.set()
                elif line.startswith(b"-ERR"):
                    self.errors.append(line.decode(errors="replace"))
                elif line.startswith(b"INFO "):
                    self.infos.append(json.loads(line[5:]))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._task is not None:
            await asyncio.wait([self._task], timeout=TIMEOUT)


# -- a whole scenario -----------------------------------------------------------------------

class Traffic:
    """A publisher pinned to every shard, and subscriptions of every kind: literal subjects, a
    wildcard, a queue group, a raw socket.

    - `pubs[i]` (nats-py, pinned to shard i, see `pin_publishers`) publishes
      `d:p<i>:<seq>:<total>` on its own literal subjects `subjects[i]` (`p<i>a.x`, `p<i>b.x`)
      and on `jobs.run`: killing any shard stops live traffic;
    - `sub` (nats-py) subscribes to each literal subject and to `*.x`;
    - `q1`, `q2` (nats-py) form queue group `workers` on `jobs.run`;
    - `raw` (a raw socket) subscribes to `*.x` too: it cannot reconnect behind our back.
    Every shard holds every subscription, so each publisher reaches every subscription through
    its own shard. `marker_targets[i]` are the (subject, tally) pairs a marker round from
    `pubs[i]` must reach (the queue group's members each, so both have caught up).
    """

    @classmethod
    async def create(cls, chaos: Chaos, clients, pause: float = 0.005) -> "Traffic":
        self = cls()
        self.chaos = chaos
        opened = []

        async def connect(k):
            nc, w = await connect_watched(clients, f"pub-{k}")
            opened.append((nc, w))
            return nc

        self.pubs = await pin_publishers(chaos, connect)  # before any other traffic
        self.watches = {}
        for idx, nc in sorted(self.pubs.items()):
            self.watches[f"pub{idx}"] = next(w for c, w in opened if c is nc)
        self.subjects = {idx: [f"p{idx}a.x", f"p{idx}b.x"] for idx in sorted(self.pubs)}
        self.owner = {s: idx for idx, subjects in self.subjects.items() for s in subjects}
        self.literals = [s for idx in sorted(self.subjects) for s in self.subjects[idx]]
        self.sub, w_sub = await connect_watched(clients, "sub")
        self.q1, w_q1 = await connect_watched(clients, "q1")
        self.q2, w_q2 = await connect_watched(clients, "q2")
        self.watches.update({"sub": w_sub, "q1": w_q1, "q2": w_q2})
        self.tallies: dict[str, Tally] = {}
        for s in self.literals:
            t = self.tallies[s] = Tally(f"sub {s}")
            await self.sub.subscribe(s, cb=t.callback())
        self.wild = Tally("sub *.x")
        await self.sub.subscribe("*.x", cb=self.wild.callback())
        self.queue = Tally("queue workers jobs.run", ordered=False)
        self.q_members = {"q1": Tally("q1"), "q2": Tally("q2")}
        for name, nc in (("q1", self.q1), ("q2", self.q2)):
            member = self.q_members[name]

            async def cb(msg, member=member):
                self.queue.record(msg.subject, msg.data)
                member.record(msg.subject, msg.data)

            await nc.subscribe("jobs.run", queue="workers", cb=cb)
        for nc in (self.sub, self.q1, self.q2):
            await flush(nc)
        self.raw_wild = Tally("raw *.x")
        self.raw = RawClient(lambda subject, sid, payload: self.raw_wild.record(subject, payload))
        host, port = chaos.server.host, chaos.server.port
        await self.raw.connect(host, port)
        self.raw.send(b"SUB *.x 1\r\n")
        await self.raw.ping()
        self.marker_targets = {}
        for idx, subjects in self.subjects.items():
            targets = [(s, self.tallies[s]) for s in subjects]
            targets += [(s, self.wild) for s in subjects]
            targets += [(s, self.raw_wild) for s in subjects]
            targets += [("jobs.run", m) for m in self.q_members.values()]
            self.marker_targets[idx] = targets
        self.publisher = Publishers([Publisher(self.pubs[idx], self.subjects[idx] + ["jobs.run"],
                                               pause, name=f"p{idx}")
                                     for idx in sorted(self.pubs)])
        self.client_ids = self.client_id_map()
        self.cids = await chaos.cids()
        assert self.raw.info["client_id"] in self.cids
        assert set(self.client_ids.values()) <= self.cids
        return self

    def client_id_map(self) -> dict[str, int]:
        out = {f"pub{idx}": nc.client_id for idx, nc in self.pubs.items()}
        out.update({"sub": self.sub.client_id, "q1": self.q1.client_id, "q2": self.q2.client_id})
        return out

    async def markers(self, timeout: float = TIMEOUT) -> list[int]:
        """A marker round from every publisher (each through its own shard), concurrently."""
        return list(await asyncio.gather(*(
            send_markers(self.pubs[idx], self.marker_targets[idx], timeout=timeout)
            for idx in sorted(self.pubs))))

    async def wait_published(self, n: int) -> None:
        target = self.publisher.total + n
        await eventually(lambda: self.publisher.total >= target, what=f"{n} more publishes")

    def expected(self) -> dict[str, int]:
        sent_on = self.publisher.sent_on
        exp = {self.tallies[s].name: sent_on(s) for s in self.literals}
        on_x = sum(sent_on(s) for s in self.literals)
        exp[self.wild.name] = on_x
        exp[self.raw_wild.name] = on_x
        exp[self.queue.name] = sent_on("jobs.run")
        return exp

    def received(self) -> dict[str, Tally]:
        out = {t.name: t for t in self.tallies.values()}
        for t in (self.wild, self.raw_wild, self.queue):
            out[t.name] = t
        return out

    def ordered_tallies(self) -> list[Tally]:
        """The subscriptions that get every message of their subjects, in order (not the
        queue group's members, which get a share)."""
        return [*self.tallies.values(), self.wild, self.raw_wild]

    async def gaps(self, timeout: float = TIMEOUT) -> Counter:
        """Messages lost so far, per publisher name, summed over the ordered subscriptions.
        The publishers must be running and every shard delivering: first wait until every
        subscription has received a message that each publisher sent after this call, so
        that every loss before it shows as a gap."""
        want = [(t, (p.name, s), p.sent[s]) for p in self.publisher.publishers
                for s in p.subjects if s in self.owner
                for t in (self.tallies[s], self.wild, self.raw_wild)]
        await eventually(lambda: all(t.last_seq.get(key, 0) > b for t, key, b in want), timeout,
                         "every subscription to get something newer from every publisher")
        out: Counter = Counter()
        for t in self.ordered_tallies():
            out.update(t.gaps())
        return out

    async def stop_and_count(self) -> dict[str, int]:
        """Stop the publishers, wait until everything they sent has been delivered (a marker
        round from each: one publisher's messages keep their order), and return the losses
        per subscription. Fails on a duplicate or a reordering, or on more received than
        sent."""
        await self.publisher.stop()
        await self.markers()
        expected, received = self.expected(), self.received()
        for t in self.q_members.values():
            assert t.disorder == [], f"queue member {t.name}: reordered: {t.disorder[:5]}"
        lost = {}
        for name, exp in expected.items():
            t = received[name]
            assert t.disorder == [], f"{name}: duplicated or reordered: {t.disorder[:5]}"
            assert t.count <= exp, f"{name}: received {t.count} > sent {exp}"
            lost[name] = exp - t.count
        return lost

    async def assert_connections_intact(self) -> None:
        """Nobody was disconnected: no nats-py disconnect, the same client ids, the same
        connections in /connz, and the raw socket still open and answering."""
        for name, w in self.watches.items():
            assert w.disconnects == 0, f"{name} was disconnected"
        assert self.client_id_map() == self.client_ids
        assert await self.chaos.cids() == self.cids
        assert not self.raw.closed.is_set(), "the raw connection was closed"
        await self.raw.ping()
        assert self.raw.errors == []

    async def close(self) -> None:
        await self.publisher.stop()
        await self.raw.close()
