#!/usr/bin/env python3
"""Benchmark actor-nats against the reference nats-server, same scenarios, same run.

What it measures (each throughput scenario with 16 B and 128 B payloads):

  pub      one publisher, no subscribers: messages/s the server reads (publish for D seconds,
           then PING and wait for PONG, so the server has read everything; rate = sent / time
           to PONG).
  1to1     publisher -> one subscriber: messages/s delivered, and the delivered fraction.
  fanout   publisher -> 4 subscribers on the same subject: total messages/s delivered.
  queue    publisher -> 4 subscribers in one queue group: total messages/s delivered; then a
           second, numbered run checks every message is delivered exactly once.
  reqrep   one responder, one requester sending one request at a time over `_INBOX.bench`:
           round-trip p50 / p99 in microseconds (after a warm-up).
  rss      server VmRSS before and after opening N idle connections (CONNECT+PING, PONG each):
           KB per connection.
  js-sync  JetStream, file storage, 128 B: publish with one PubAck outstanding at a time.
  js-pipe  the same with up to 256 PubAcks outstanding: acked messages/s.
  js-fetch a durable pull consumer (explicit ack) fetching batches of 256 from a filled
           stream, acking every message: messages/s.

How: each implementation's server is started fresh for each scenario (on a free loopback port,
via tests/servers.py), reference first, then actor-nats, so machine drift hits both alike. The
load generators (scripts/loadgen.py) run one process per role, on raw sockets: publishers send
pre-built 256 KB buffers of `PUB` frames with one sendall each, subscribers only count `MSG `
occurrences. Delivery is timed at the subscribers: from the publisher's start to the last
receive, until all expected messages arrived or no progress for a while. The server's CPU
seconds (utime+stime from /proc/<pid>/stat, its whole process tree) are recorded over each
throughput run, giving messages per server-CPU-second, which drifts less than msgs/s on a
shared 2-core machine. The CPU use of the server, of the load generators and of everything else
on the machine (from /proc/stat; includes softirq time) is printed too, so a saturated load
generator or a contended run is visible. One publisher process saturates the reference (it
reads each client on one goroutine; the server sits near 100% of a core and the publisher near
5%); --pubs 2 did not raise its numbers.

Run:  python scripts/bench.py                       # both implementations, all scenarios (~3 min)
      python scripts/bench.py --impl reference      # only the reference
      python scripts/bench.py --quick --json out.json --scenarios pub,1to1-16,reqrep
      python scripts/bench.py --repeat 3            # median of 3 alternating runs: less noise
      python scripts/bench.py --scenarios 1to1 --rate 200000   # paced publisher (sanity)
Ratios are actor-nats / reference; each is compared with the target from the issue. Exit status
is 0 when the runs completed (targets missed or not), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402
from tests.servers import Server  # noqa: E402

IMPL_NAMES = {"reference": "reference", "actor": "actor-nats"}

# name -> (kind, payload size)
SCENARIOS = {
    "pub-16": ("pub", 16), "pub-128": ("pub", 128),
    "1to1-16": ("1to1", 16), "1to1-128": ("1to1", 128),
    "fanout-16": ("fanout", 16), "fanout-128": ("fanout", 128),
    "queue-16": ("queue", 16), "queue-128": ("queue", 128),
    "reqrep-16": ("reqrep", 16), "reqrep-128": ("reqrep", 128),
    "rss": ("rss", 0),
    "js-sync-128": ("jssync", 128), "js-pipe-128": ("jspipe", 128), "js-fetch-128": ("jsfetch", 128),
}
SUBSCRIBERS = {"pub": 0, "1to1": 1, "fanout": 4, "queue": 4}
# kind -> (comparison, target ratio actor/reference, what the ratio is of)
TARGETS = {
    "pub": (">=", 0.25), "1to1": (">=", 0.35), "fanout": (">=", 0.45), "queue": (">=", 0.35),
    "reqrep": ("<=", 2.5), "rss": ("<=", 1.0),
    "jssync": (">=", 0.7), "jspipe": (">=", 0.4), "jsfetch": (">=", 0.4),
}
JS_KINDS = {"jssync", "jspipe", "jsfetch"}
JS_WINDOW = 256  # outstanding PubAcks in the pipelined publish
JS_BATCH = 256  # pull batch in the fetch scenario
SUBJECT = "bench.subj"

CTX = mp.get_context("fork")
_WORKERS: list = []


class ScenarioError(RuntimeError):
    pass


# ------------------------------------------------------------------------------ /proc helpers

def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def server_cpu(pid: int) -> float:
    """utime+stime in seconds of the server process and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def server_rss_kb(pid: int) -> int:
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------------------- process helpers

def spawn(target, *args, **kwargs):
    p = CTX.Process(target=target, args=args, kwargs=kwargs, daemon=True)
    p.start()
    _WORKERS.append(p)
    return p


def reap(procs, timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join(2.0)
        if p in _WORKERS:
            _WORKERS.remove(p)


def reap_all() -> None:
    for p in list(_WORKERS):
        if p.is_alive():
            p.terminate()
    reap(list(_WORKERS), timeout=3.0)
    # A server interrupted while starting has no Server object to stop it: end any child of
    # this process that is still there (all of them were started by this script).
    strays = sorted(_children(os.getpid()))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for c in strays:
            try:
                os.kill(c, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        while strays and time.monotonic() < deadline:
            for c in list(strays):
                try:
                    if os.waitpid(c, os.WNOHANG)[0] == c:
                        strays.remove(c)
                except ChildProcessError:
                    strays.remove(c)
            time.sleep(0.05)


def _children(pid: int) -> set[int]:
    out = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.update(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def wait_ready(conns, results, what: str, timeout: float = 30.0) -> None:
    for i, c in enumerate(conns):
        if not c.poll(timeout):
            raise ScenarioError(f"{what} {i} not ready after {timeout}s")
        if c.recv() != "ready":
            err = results[i].recv() if results[i].poll(5) else {"error": "?"}
            raise ScenarioError(f"{what} {i}: {err.get('error')}")


def get_result(conn, what: str, timeout: float) -> dict:
    if not conn.poll(timeout):
        raise ScenarioError(f"{what}: no result after {timeout:.0f}s")
    r = conn.recv()
    if not r.get("ok"):
        raise ScenarioError(f"{what}: {r.get('error')}")
    return r


class Running:
    """A server of one implementation, started fresh; stops it (and removes its dir) on exit."""

    def __init__(self, impl: str, ready_timeout: float, jetstream: bool = False):
        self.impl = impl
        self.ready_timeout = ready_timeout
        self.srv: Server | None = None
        self.store_dir = None
        if jetstream:
            import tempfile

            self.store_dir = tempfile.mkdtemp(prefix=f"an-bench-js-{impl}-")

    def __enter__(self) -> Server:
        args = ["-js", "-sd", self.store_dir] if self.store_dir else []
        self.srv = Server(self.impl, args=args, ready_timeout=self.ready_timeout)
        return self.srv

    def __exit__(self, *exc):
        if self.srv is not None:
            try:
                self.srv.stop()
            finally:
                shutil.rmtree(self.srv.dir, ignore_errors=True)
                if self.store_dir:
                    shutil.rmtree(self.store_dir, ignore_errors=True)
        return False


def alive(srv: Server) -> None:
    if srv.proc.poll() is not None:
        raise ScenarioError(f"server exited ({srv.proc.returncode}): {srv.log()[-2000:]}")


# ------------------------------------------------------------------------------- scenarios

def flow(srv: Server, kind: str, size: int, opts, numbered_count: int = 0) -> dict:
    """Run publishers -> subscribers once; returns the measurements.

    With numbered_count > 0: one publisher sends exactly that many numbered messages and the
    subscribers return the numbers they got (the queue group's exactly-once check).
    """
    nsubs = SUBSCRIBERS[kind]
    npubs = 1 if numbered_count else opts.pubs
    queue = "bench-q" if kind == "queue" else ""
    host, port = srv.host, srv.port
    counts = CTX.Array("q", max(1, nsubs), lock=False)
    last = CTX.Array("d", max(1, nsubs), lock=False)
    stop = CTX.Value("b", 0, lock=False)
    go = CTX.Event()
    procs = []
    try:
        sub_ready, sub_res = [], []
        for i in range(nsubs):
            r_ready, w_ready = CTX.Pipe(duplex=False)
            r_res, w_res = CTX.Pipe(duplex=False)
            procs.append(spawn(loadgen.subscriber, host, port, SUBJECT, queue, i, counts, last,
                               stop, w_ready, w_res, keep=bool(numbered_count)))
            sub_ready.append(r_ready)
            sub_res.append(r_res)
        wait_ready(sub_ready, sub_res, "subscriber")
        pub_ready, pub_res = [], []
        for i in range(npubs):
            r_ready, w_ready = CTX.Pipe(duplex=False)
            r_res, w_res = CTX.Pipe(duplex=False)
            procs.append(spawn(loadgen.publisher, host, port, SUBJECT, size, opts.duration,
                               numbered_count, go, w_ready, w_res, rate=opts.rate,
                               numbered=bool(numbered_count)))
            pub_ready.append(r_ready)
            pub_res.append(r_res)
        wait_ready(pub_ready, pub_res, "publisher")
        time.sleep(0.05)
        cpu0, busy0 = server_cpu(srv.pid), machine_busy()
        go.set()
        pubs = [get_result(c, f"publisher {i}", opts.duration + 120) for i, c in enumerate(pub_res)]
        sent = sum(p["sent"] for p in pubs)
        t0 = min(p["t0"] for p in pubs)
        t_pong = max(p["t_pong"] for p in pubs)
        out = {"publishers": npubs, "subscribers": nsubs, "sent": sent,
               "sent_per_s": sent / (t_pong - t0), "pub_cpu_s": sum(p["cpu"] for p in pubs)}
        if nsubs == 0:
            cpu1, busy1 = server_cpu(srv.pid), machine_busy()
            wall = t_pong - t0
            out.update(msgs=sent, msgs_per_s=sent / wall, wall_s=wall)
        else:
            expected = sent * nsubs if kind == "fanout" else sent
            prev, t_progress = -1, time.monotonic()
            hard = time.monotonic() + opts.drain_max
            while True:
                total = sum(counts)
                now = time.monotonic()
                if total >= expected or now > hard:
                    break
                if total != prev:
                    prev, t_progress = total, now
                elif now - t_progress > opts.idle_timeout:
                    break
                if srv.proc.poll() is not None:
                    break
                time.sleep(0.01)
            cpu1, busy1 = server_cpu(srv.pid), machine_busy()
            stop.value = 1
            subs = [get_result(c, f"subscriber {i}", 30) for i, c in enumerate(sub_res)]
            delivered = sum(s["count"] for s in subs)
            t_end = max([last[i] for i in range(nsubs) if counts[i]] or [t_pong])
            wall = max(t_end, t0 + 1e-9) - t0
            out.update(msgs=delivered, msgs_per_s=delivered / wall, wall_s=wall,
                       expected=expected, delivered_fraction=delivered / expected if expected else 0,
                       per_subscriber=[s["count"] for s in subs],
                       sub_cpu_s=sum(s["cpu"] for s in subs))
            if numbered_count:
                seqs = [s["seqs"] for s in subs]
                flat = [x for ss in seqs for x in ss]
                uniq = set(flat)
                out["check"] = {
                    "sent": numbered_count, "received": len(flat),
                    "duplicates": len(flat) - len(uniq),
                    "missing": len(set(range(numbered_count)) - uniq),
                    "foreign": len(uniq - set(range(numbered_count))),
                }
        out["server_cpu_s"] = cpu1 - cpu0
        out["server_cpu_pct"] = 100.0 * out["server_cpu_s"] / out["wall_s"]
        gen = out["pub_cpu_s"] + out.get("sub_cpu_s", 0.0)
        out["loadgen_cpu_pct"] = 100.0 * gen / out["wall_s"]
        # everything else on the machine (other sessions, tests): a contended run shows here
        other = max(0.0, (busy1 - busy0) - out["server_cpu_s"] - gen)
        out["other_cpu_pct"] = 100.0 * other / out["wall_s"]
        out["pub_cpu_pct"] = 100.0 * out["pub_cpu_s"] / out["wall_s"] / npubs
        out["msgs_per_server_cpu_s"] = out["msgs"] / out["server_cpu_s"] if out["server_cpu_s"] > 0 else None
        alive(srv)
        return out
    finally:
        stop.value = 1
        go.set()
        reap(procs)


def run_throughput(impl, kind, size, opts) -> dict:
    with Running(impl, opts.ready_timeout) as srv:
        res = flow(srv, kind, size, opts)
        res["value"] = res["msgs_per_s"]
        if kind == "queue":
            chk = flow(srv, kind, size, opts, numbered_count=opts.check_count)
            c = chk["check"]
            c["per_subscriber"] = chk["per_subscriber"]
            c["once"] = (c["duplicates"] == 0 and c["missing"] == 0 and c["foreign"] == 0
                         and c["received"] == c["sent"])
            res["exactly_once"] = c
        return res


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def run_reqrep(impl, size, opts) -> dict:
    with Running(impl, opts.ready_timeout) as srv:
        procs = []
        stop = CTX.Value("b", 0, lock=False)
        go = CTX.Event()
        try:
            rr, rw = CTX.Pipe(duplex=False)
            resr, resw = CTX.Pipe(duplex=False)
            procs.append(spawn(loadgen.responder, srv.host, srv.port, "bench.req", size, stop, rw, resw))
            wait_ready([rr], [resr], "responder")
            qr, qw = CTX.Pipe(duplex=False)
            qresr, qresw = CTX.Pipe(duplex=False)
            procs.append(spawn(loadgen.requester, srv.host, srv.port, "bench.req", size,
                               opts.rr_warmup, opts.rr_count, go, qw, qresw))
            wait_ready([qr], [qresr], "requester")
            go.set()
            r = get_result(qresr, "requester", 60 + opts.rr_count * 0.05)
            s = sorted(r["samples_us"])
            alive(srv)
            return {"value": percentile(s, 0.50), "p50_us": percentile(s, 0.50),
                    "p90_us": percentile(s, 0.90), "p99_us": percentile(s, 0.99),
                    "mean_us": statistics.fmean(s), "max_us": s[-1], "n": len(s),
                    "warmup": opts.rr_warmup}
        finally:
            stop.value = 1
            go.set()
            reap(procs)


def _js_publish(srv, size, count, window, timeout) -> dict:
    go = CTX.Event()
    r_ready, w_ready = CTX.Pipe(duplex=False)
    r_res, w_res = CTX.Pipe(duplex=False)
    procs = [spawn(loadgen.js_publisher, srv.host, srv.port, "js.bench", size, count, window, go,
                   w_ready, w_res)]
    try:
        wait_ready([r_ready], [r_res], "JetStream publisher")
        cpu0 = server_cpu(srv.pid)
        go.set()
        r = get_result(r_res, "JetStream publisher", timeout)
        r["server_cpu_s"] = server_cpu(srv.pid) - cpu0
        return r
    finally:
        go.set()
        reap(procs)


def run_jetstream(impl, kind, size, opts) -> dict:
    """File-storage stream `BENCH` on `js.bench`: synchronous publish (one PubAck at a time),
    pipelined publish (JS_WINDOW outstanding), or a durable pull consumer fetching JS_BATCH at a
    time with an explicit +ACK per message (after a pipelined fill)."""
    with Running(impl, opts.ready_timeout, jetstream=True) as srv:
        made = loadgen.js_setup(srv.host, srv.port, "BENCH", "js.bench")
        if "error" in made:
            raise ScenarioError(f"stream create: {made['error']}")
        count = opts.js_sync_count if kind == "jssync" else opts.js_count
        if kind in ("jssync", "jspipe"):
            r = _js_publish(srv, size, count, 1 if kind == "jssync" else JS_WINDOW, 60 + count * 0.01)
            if r["errors"]:
                raise ScenarioError(f"{r['errors']} publishes answered with an error")
            wall = r["t1"] - r["t0"]
            out = {"msgs": r["acked"], "msgs_per_s": r["acked"] / wall, "wall_s": wall,
                   "server_cpu_s": r["server_cpu_s"]}
        else:
            fill = _js_publish(srv, size, count, JS_WINDOW, 60 + count * 0.01)
            if fill["errors"]:
                raise ScenarioError(f"{fill['errors']} publishes answered with an error")
            go = CTX.Event()
            r_ready, w_ready = CTX.Pipe(duplex=False)
            r_res, w_res = CTX.Pipe(duplex=False)
            procs = [spawn(loadgen.js_fetcher, srv.host, srv.port, "BENCH", "bench", count, JS_BATCH,
                           go, w_ready, w_res)]
            try:
                wait_ready([r_ready], [r_res], "JetStream fetcher")
                cpu0 = server_cpu(srv.pid)
                go.set()
                r = get_result(r_res, "JetStream fetcher", 60 + count * 0.01)
                cpu = server_cpu(srv.pid) - cpu0
            finally:
                go.set()
                reap(procs)
            wall = r["t1"] - r["t0"]
            out = {"msgs": r["got"], "msgs_per_s": r["got"] / wall, "wall_s": wall, "server_cpu_s": cpu}
        alive(srv)
        out["value"] = out["msgs_per_s"]
        return out


def run_rss(impl, opts) -> dict:
    with Running(impl, opts.ready_timeout) as srv:
        warm = []
        procs = []
        try:
            for _ in range(5):  # first connections may trigger one-time allocations
                warm.append(loadgen.connect(srv.host, srv.port, "bench-warm"))
            time.sleep(opts.settle)
            before = server_rss_kb(srv.pid)
            parent, child = CTX.Pipe()
            procs.append(spawn(loadgen.idle_connections, srv.host, srv.port, opts.conns, 50, child))
            if not parent.poll(120):
                raise ScenarioError("idle connections not open after 120s")
            r = parent.recv()
            if not r.get("ok"):
                raise ScenarioError(f"idle connections ({r.get('opened')} opened): {r.get('error')}")
            time.sleep(opts.settle)
            after = server_rss_kb(srv.pid)
            alive(srv)
            parent.send("close")
            per = (after - before) / opts.conns
            return {"value": per, "kb_per_conn": per, "rss_before_kb": before,
                    "rss_after_kb": after, "conns": opts.conns}
        finally:
            for s in warm:
                loadgen.close(s)
            reap(procs)


def pick_median(runs: list[dict]) -> dict:
    """The run with the median value (lower median) among successful runs, with all values."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["value"])
    chosen = dict(ok[(len(ok) - 1) // 2])
    if len(runs) > 1:
        chosen["repeats"] = [r.get("value") for r in runs]
        chosen["failed_repeats"] = len(runs) - len(ok)
    return chosen


def run_one(name, impl, opts) -> dict:
    kind, size = SCENARIOS[name]
    if kind in SUBSCRIBERS:
        return run_throughput(impl, kind, size, opts)
    if kind == "reqrep":
        return run_reqrep(impl, size, opts)
    if kind in JS_KINDS:
        return run_jetstream(impl, kind, size, opts)
    return run_rss(impl, opts)


# -------------------------------------------------------------------------------- reporting

def fmt_value(kind, r) -> str:
    if r is None:
        return "n/a"
    if "error" in r:
        return "ERROR"
    if kind in SUBSCRIBERS:
        s = f"{r['msgs_per_s']:,.0f}/s"
        if kind != "pub":
            s += f" ({100 * r['delivered_fraction']:.1f}%)"
        if kind == "queue" and "exactly_once" in r:
            s += " once" if r["exactly_once"]["once"] else " NOT-ONCE"
        return s
    if kind == "reqrep":
        return f"p50 {r['p50_us']:.0f} / p99 {r['p99_us']:.0f} us"
    if kind in JS_KINDS:
        return f"{r['msgs_per_s']:,.0f}/s"
    return f"{r['kb_per_conn']:.1f} KB/conn"


def ratio_of(kind, ref, act, key="value"):
    if not ref or not act or "error" in ref or "error" in act:
        return None
    a, b = act.get(key), ref.get(key)
    if a is None or not b:
        return None
    return a / b


def fmt_ratio(kind, ratio) -> str:
    if ratio is None:
        return "n/a"
    if kind == "reqrep":
        return f"{ratio:.2f}x slower"
    return f"{ratio:.3f}"


def table(rows, headers) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    return "\n".join(out)


def report(results, scenarios, impls, opts) -> str:
    both = len(impls) == 2
    rows = []
    for name in scenarios:
        kind, _ = SCENARIOS[name]
        ref = results[name].get("reference")
        act = results[name].get("actor")
        ratio = ratio_of(kind, ref, act)
        op, target = TARGETS[kind]
        met = "n/a" if ratio is None else ("yes" if (ratio >= target if op == ">=" else ratio <= target) else "NO")
        extra = ""
        if kind == "reqrep":
            p99 = ratio_of(kind, ref, act, "p99_us")
            extra = f" (p99 {p99:.2f}x)" if p99 else ""
        rows.append([name, fmt_value(kind, ref), fmt_value(kind, act),
                     fmt_ratio(kind, ratio) + extra,
                     f"{op} {target}" + ("x" if kind == "reqrep" else ""), met])
    out = [table(rows, ["scenario", "reference", "actor-nats", "ratio actor/ref", "target", "met"])]

    rows = []
    for name in scenarios:
        kind, _ = SCENARIOS[name]
        if kind not in SUBSCRIBERS:
            continue
        ref = results[name].get("reference")
        act = results[name].get("actor")

        def eff(r):
            if not r or "error" in r or not r.get("msgs_per_server_cpu_s"):
                return "n/a"
            return f"{r['msgs_per_server_cpu_s']:,.0f}"

        def cpu(r):
            if not r or "error" in r:
                return "n/a"
            return (f"{r['server_cpu_pct']:.0f}/{r['loadgen_cpu_pct']:.0f}/"
                    f"{r.get('other_cpu_pct', 0):.0f}%")

        ratio = ratio_of(kind, ref, act, "msgs_per_server_cpu_s")
        pubs = (ref or act or {}).get("publishers", opts.pubs)
        rows.append([name, f"{pubs}p/{SUBSCRIBERS[kind]}s", eff(ref), eff(act),
                     "n/a" if ratio is None else f"{ratio:.3f}", cpu(ref), cpu(act)])
    if rows:
        out.append("")
        out.append("messages per server-CPU-second (delivered, or read for pub); CPU over the run "
                   f"in % of one core ({os.cpu_count()} cores): server / load generators / "
                   "other processes")
        out.append(table(rows, ["scenario", "procs", "ref msgs/cpu-s", "actor msgs/cpu-s",
                                "ratio", "ref cpu srv/gen/oth", "actor cpu srv/gen/oth"]))
    notes = []
    seen_errors = set()
    for name in scenarios:
        for impl in impls:
            r = results[name].get(impl)
            if r and "error" in r and (impl, r["error"]) in seen_errors:
                continue
            if r and "error" in r:
                seen_errors.add((impl, r["error"]))
                notes.append(f"{name} [{IMPL_NAMES[impl]}]: {r['error']}")
            elif r and "exactly_once" in r and not r["exactly_once"]["once"]:
                notes.append(f"{name} [{IMPL_NAMES[impl]}]: exactly-once check failed: {r['exactly_once']}")
            elif r and r.get("pub_cpu_pct", 0) > 90 and SCENARIOS[name][0] == "pub" and r.get("server_cpu_pct", 100) < 80:
                notes.append(f"{name} [{IMPL_NAMES[impl]}]: publisher at {r['pub_cpu_pct']:.0f}% CPU, "
                             f"server at {r['server_cpu_pct']:.0f}%: load generator may be the limit "
                             "(try --pubs 2)")
    if notes:
        out.append("")
        out.extend(notes)
    if not both:
        out.append("")
        out.append(f"(only {', '.join(IMPL_NAMES[i] for i in impls)} was run; ratios need both)")
    return "\n".join(out)


# ------------------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=["both", "actor", "reference"], default="both")
    ap.add_argument("--quick", action="store_true", help="short runs (CI smoke)")
    ap.add_argument("--json", metavar="FILE", help="write all results as JSON")
    ap.add_argument("--scenarios", default="",
                    help="comma-separated names or kinds: " + ", ".join(SCENARIOS)
                    + " (kinds: pub, 1to1, fanout, queue, reqrep, rss, jssync, jspipe, jsfetch)")
    ap.add_argument("--duration", type=float, help="seconds of publishing per run (3; quick 0.5)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each scenario this many times (alternating implementations) and "
                         "report the median run (1)")
    ap.add_argument("--pubs", type=int, default=1, help="publisher processes (1)")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="pace each publisher to this many msgs/s (0 = as fast as possible)")
    ap.add_argument("--conns", type=int, help="idle connections for rss (1000; quick 200)")
    ap.add_argument("--rr-count", type=int, help="timed requests (2000; quick 300)")
    ap.add_argument("--rr-warmup", type=int, help="warm-up requests (500; quick 50)")
    ap.add_argument("--js-count", type=int,
                    help="messages in the pipelined JetStream publish and fetch (20000; quick 2000)")
    ap.add_argument("--js-sync-count", type=int,
                    help="messages in the synchronous JetStream publish (10000; quick 300)")
    ap.add_argument("--check-count", type=int,
                    help="numbered messages in the queue exactly-once check (100000; quick 10000)")
    ap.add_argument("--idle-timeout", type=float, default=3.0,
                    help="stop waiting for deliveries after this long without progress (3)")
    ap.add_argument("--drain-max", type=float, default=60.0,
                    help="stop waiting for deliveries this long after publishing ends (60)")
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    opts = ap.parse_args(argv)
    q = opts.quick
    opts.duration = opts.duration or (0.5 if q else 3.0)
    opts.conns = opts.conns or (200 if q else 1000)
    opts.rr_count = opts.rr_count or (300 if q else 2000)
    opts.rr_warmup = opts.rr_warmup if opts.rr_warmup is not None else (50 if q else 500)
    opts.check_count = opts.check_count or (10000 if q else 100000)
    opts.js_count = opts.js_count or (2000 if q else 20000)
    opts.js_sync_count = opts.js_sync_count or (300 if q else 10000)
    opts.settle = 0.3 if q else 1.0
    chosen = []
    for part in [p.strip() for p in opts.scenarios.split(",") if p.strip()]:
        matches = [n for n, (k, _) in SCENARIOS.items() if n == part or k == part]
        if not matches:
            ap.error(f"unknown scenario {part!r}")
        chosen += [m for m in matches if m not in chosen]
    opts.chosen = chosen or list(SCENARIOS)
    opts.impls = ["reference", "actor"] if opts.impl == "both" else [opts.impl]
    return opts


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    nofile = loadgen.raise_nofile(opts.conns + 1024)
    if nofile < opts.conns + 64:
        print(f"warning: RLIMIT_NOFILE is {nofile}; using {nofile - 64} idle connections")
        opts.conns = max(1, nofile - 64)
    header = (f"actor-nats vs nats-server: {', '.join(IMPL_NAMES[i] for i in opts.impls)}; "
              f"{opts.duration:g}s per throughput run, {opts.pubs} publisher process(es), "
              f"{'median of %d runs, ' % opts.repeat if opts.repeat > 1 else ''}"
              f"{os.cpu_count()} cores, Python {platform.python_version()}"
              + (f", publishers paced to {opts.rate:,.0f} msgs/s" if opts.rate else ""))
    print(header, flush=True)
    results = {name: {} for name in opts.chosen}
    unavailable: dict[str, str] = {}
    interrupted = False
    try:
        for name in opts.chosen:
            kind = SCENARIOS[name][0]
            runs = {impl: [] for impl in opts.impls}
            for rep in range(opts.repeat):
                for impl in opts.impls:
                    if impl in unavailable:
                        results[name][impl] = {"error": unavailable[impl]}
                        continue
                    t = time.monotonic()
                    try:
                        r = run_one(name, impl, opts)
                    except (ScenarioError, OSError, loadgen.ProtocolError) as e:
                        r = {"error": f"{type(e).__name__}: {e}"}
                    except RuntimeError as e:  # the server did not start
                        lines = [x for x in str(e).splitlines() if x.strip()] or [type(e).__name__]
                        msg = lines[0] + (f" ... {lines[-1].strip()}" if len(lines) > 1 else "")
                        unavailable[impl] = f"server did not start: {msg[:300]}"
                        r = {"error": unavailable[impl], "log": str(e)[-2000:]}
                    runs[impl].append(r)
                    results[name][impl] = pick_median(runs[impl])
                    print(f"  {name:<11} {IMPL_NAMES[impl]:<10} {fmt_value(kind, r):<40} "
                          f"({time.monotonic() - t:.1f}s)"
                          + (f"  {r['error']}" if "error" in r else ""), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted; results so far:", file=sys.stderr)
    finally:
        reap_all()
    print()
    print(report(results, opts.chosen, opts.impls, opts))
    if opts.json:
        meta = {"impls": opts.impls, "duration_s": opts.duration, "publishers": opts.pubs,
                "rate": opts.rate, "repeat": opts.repeat, "cores": os.cpu_count(),
                "python": platform.python_version(),
                "quick": opts.quick, "conns": opts.conns, "rr_count": opts.rr_count,
                "rr_warmup": opts.rr_warmup, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "targets": {k: {"op": op, "ratio": v} for k, (op, v) in TARGETS.items()}}
        Path(opts.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
