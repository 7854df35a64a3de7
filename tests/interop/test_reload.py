"""Config reload journeys, as an operator runs them: edit the file, send SIGHUP (or
`--signal reload=<pidfile>`), read the log, and expect connected applications not to notice.

Every expectation here was observed on the reference nats-server 2.15.1; the exact log lines
are asserted, so actor-nats must print what the reference prints. Notes on the reference:

- A successful reload logs `Trapped "hangup" signal`, one `Reloaded: <key> = <value>` line per
  changed option (plus `Reloaded: authorization users` and `Reloaded: accounts`, which it logs on
  every successful reload, even one with no change), then
  `Reloaded server configuration (sha256:<digest of the parsed file>)`. The per-option lines come
  in the order of Go's Options struct; the tests compare them as a set.
- A refused reload logs `Trapped "hangup" signal` and one
  `[ERR] Failed to reload server configuration: <reason>`, and applies nothing from the file.
- Flags override the file on reload too, so a server started with `-a`/`-p` (as the `server`
  fixture is) never sees a port or host change; the port/host journeys start servers from the
  file alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.interop.helpers import Clients, flush, run, unique, TIMEOUT
from tests.servers import Server, command, free_port
from tests.wire.proto import client, err_line, pub, raw_client

RELOAD_TIMEOUT = 15.0  # generous: reached only when a reload never finishes

TRAPPED = '[INF] Trapped "hangup" signal'
ALWAYS = ["[INF] Reloaded: authorization users", "[INF] Reloaded: accounts"]
DONE = "Reloaded server configuration ("
FAILED = "[ERR] Failed to reload server configuration: "

# `[pid] 2026/01/02 15:04:05.000000 [INF] text`, the timestamp absent with logtime off.
_LINE = re.compile(r"^\[\d+\] (?:\d\S* \d\S* )?(\[[A-Z]{3}\] .*)$")
_DIGEST = re.compile(r"\(sha256:([0-9a-f]{64})\)")


# --- helpers -----------------------------------------------------------------------------------


def log_lines(text: str) -> list[str]:
    """Complete log lines as `[LVL] text` (pid and timestamp dropped)."""
    lines = text.split("\n")[:-1]  # the last piece is empty or a line still being written
    out = []
    for line in lines:
        m = _LINE.match(line)
        if m:
            out.append(m.group(1))
    return out


def server_lines(lines: list[str]) -> list[str]:
    """The server's own lines: no per-client lines (`<addr> - cid:N - ...`), no DBG/TRC."""
    return [l for l in lines if " - cid:" not in l and not l.startswith(("[DBG]", "[TRC]"))]


def reload(srv: Server, config: str | None = None, trigger=None) -> list[str]:
    """Write `config` (if given) to the server's file, trigger a reload (SIGHUP unless
    `trigger` is given) and wait for its outcome. Returns the server's own log lines from the
    trigger up to and including the `Reloaded server configuration` / `Failed to reload` line."""
    if config is not None:
        srv.config_path.write_text(config)
    start = len(srv.log())
    if trigger is None:
        srv.signal(signal.SIGHUP)
    else:
        trigger()
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while True:
        lines = server_lines(log_lines(srv.log()[start:]))
        for i, line in enumerate(lines):
            if DONE in line or line.startswith(FAILED):
                return lines[:i + 1]
        assert srv.proc.poll() is None, f"server exited during reload:\n{srv.log()}"
        assert time.monotonic() < deadline, f"reload never finished:\n{srv.log()[start:]}"
        time.sleep(0.02)


def assert_reloaded(block: list[str], *changes: str) -> str:
    """`block` is a successful reload that logged exactly `changes` (`key = value` texts, or
    whole `[INF] ...` lines); returns its digest."""
    assert block[0] == TRAPPED, block
    assert block[-1].startswith("[INF] " + DONE), block
    expected = ALWAYS + [c if c.startswith("[") else f"[INF] Reloaded: {c}" for c in changes]
    assert sorted(block[1:-1]) == sorted(expected), block
    return _DIGEST.search(block[-1]).group(1)


def assert_refused(block: list[str], reason: str) -> None:
    assert block == [TRAPPED, FAILED + reason], block


def startup_digest(srv: Server) -> str:
    line = next(l for l in log_lines(srv.log()) if "Using configuration file:" in l)
    return _DIGEST.search(line).group(1)


def info(srv: Server) -> dict:
    """The INFO a new client is greeted with."""
    w = raw_client(srv)
    w.close()
    return w.info


def round_trip_ok(srv: Server) -> None:
    """A new raw client can subscribe, publish and receive."""
    w = client(srv)
    subject = unique("rt.")
    w.send(f"SUB {subject} 1\r\n".encode())
    ops = w.roundtrip(pub(subject, b"hi"))
    assert [op.payload for op in ops] == [b"hi"], ops
    w.close()


def cli(impl: str, *args: str) -> None:
    base = command(impl)
    base = base[:-1] if impl == "actor" else base  # actor-nats: flags without `run` mean run
    proc = subprocess.run(base + list(args), capture_output=True, text=True, timeout=15,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr


async def watched_client(clients: Clients):
    """A nats-py client whose disconnects and closes are recorded in `events`."""
    events: list[str] = []

    async def disconnected():
        events.append("disconnected")

    async def closed():
        events.append("closed")

    nc = await clients.connect(disconnected_cb=disconnected, closed_cb=closed)
    subject = unique("watch.")
    sub = await nc.subscribe(subject)
    await flush(nc)
    return nc, events, subject, sub


async def still_connected(nc, events, subject, sub) -> None:
    """The client was never disconnected and its subscription still works."""
    assert nc.is_connected and events == [], events
    await nc.publish(subject, b"still here")
    msg = await sub.next_msg(timeout=TIMEOUT)
    assert msg.data == b"still here"
    assert events == []


class FileOnlyServer(Server):
    """A server started with `-c` alone (plus `args`), listening where its file says."""

    def __init__(self, impl: str, config: str, port: int, args=()):
        self.impl = impl
        self.host = "127.0.0.1"
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix=f"an-{impl}-"))
        self.log_path = self.dir / "server.log"
        self.config_path = self.dir / "server.conf"
        self.config_path.write_text(config)
        self.argv = command(impl) + ["-c", str(self.config_path), *args]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self._wait_ready(15.0)


@pytest.fixture
def file_only_server():
    started: list[Server] = []

    def start(impl: str, config: str, port: int) -> Server:
        srv = FileOnlyServer(impl, config, port)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


# --- 1. max_payload ----------------------------------------------------------------------------


def test_max_payload_reload_applies_to_every_client_and_keeps_them_connected(impl, start_server):
    srv = start_server(impl, config="max_payload: 1MB\n")
    before = client(srv)  # a raw client connected before the reload

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            nc = watched[0]
            assert nc.max_payload == 1048576
            block = await asyncio.to_thread(reload, srv, "max_payload: 2KB\n")
            assert_reloaded(block, "max_payload = 2048")
            await still_connected(*watched)
            # The reference sends no new INFO to connected clients: nats-py keeps the old value.
            await flush(nc)
            assert nc.max_payload == 1048576
            nc2 = await clients.connect()
            assert nc2.max_payload == 2048

    run(main)
    assert before.sync() == []  # nothing was pushed to the raw client either
    # The new limit applies to a connection made before the reload ...
    assert before.roundtrip(pub("big", b"x" * 2048)) == []
    before.send(pub("big", b"x" * 2049))
    before.expect_err_and_close("Maximum Payload Violation")
    # ... and to new ones, whose INFO says so.
    w = client(srv)
    assert w.info["max_payload"] == 2048
    w.send(pub("big", b"x" * 2049))
    w.expect_err_and_close("Maximum Payload Violation")


# --- 2. timing and limit options -----------------------------------------------------------------


@pytest.mark.parametrize("config, logged", [
    ('ping_interval: "1m"', "ping_interval = 1m0s"),
    ("ping_interval: 90", "ping_interval = 1m30s"),  # a bare integer is seconds
    ('ping_interval: "1h2m3.5s"', "ping_interval = 1h2m3.5s"),
    ("ping_max: 5", "ping_max = 5"),
    ('write_deadline: "3s"', "write_deadline = 3s"),
    ('write_deadline: "500ms"', "write_deadline = 500ms"),
    ("write_deadline: 2", "write_deadline = 2s"),
    ("max_control_line: 2048", "max_control_line = 2048"),
    ("max_connections: 100", "max_connections = 100"),
    ("logtime_utc: true", "logtime_utc = true"),
    ('client_advertise: "example.com:4222"', "[INF] Reload: client_advertise = example.com:4222"),
])
def test_reloaded_values_are_logged_as_the_reference_does(impl, start_server, config, logged):
    srv = start_server(impl, config="max_payload: 1MB\n")
    assert_reloaded(reload(srv, f"max_payload: 1MB\n{config}\n"), logged)


def test_ping_and_limit_reload_keeps_clients_and_applies(impl, start_server):
    srv = start_server(impl, config="max_payload: 1MB\n")

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            block = await asyncio.to_thread(reload, srv, (
                'ping_interval: "1s"\nping_max: 3\nwrite_deadline: "3s"\n'
                "max_control_line: 1024\nmax_connections: 100\nmax_payload: 1MB\n"))
            assert_reloaded(block, "ping_interval = 1s", "ping_max = 3", "write_deadline = 3s",
                            "max_control_line = 1024", "max_connections = 100")
            # nats-py answers the server's now frequent PINGs and stays connected.
            await still_connected(*watched)
            stale = await asyncio.to_thread(unanswered_pings, srv)
            assert stale == [b"PING\r\n"] * 3 + [err_line("Stale Connection")]
            await still_connected(*watched)
            await asyncio.to_thread(round_trip_ok, srv)

    run(main)


def test_max_control_line_reload_applies_to_connected_clients(impl, start_server):
    srv = start_server(impl, config="max_control_line: 4096\n")
    before = client(srv)
    long_sub = b"SUB " + b"a" * 1100 + b" 1\r\n"
    assert before.roundtrip(long_sub) == []
    assert_reloaded(reload(srv, "max_control_line: 1024\n"), "max_control_line = 1024")
    before.send(long_sub)
    before.expect_err_and_close("maximum control line exceeded")
    w = client(srv)
    w.send(long_sub)
    w.expect_err_and_close("maximum control line exceeded")


def unanswered_pings(srv: Server) -> list[bytes]:
    """A new raw client that never answers PINGs: what it receives until the server drops it."""
    w = client(srv)
    return [op.raw for op in w.ops_until_closed(timeout=20, pings=True)]


def test_lowering_max_connections_closes_random_excess_clients(impl, start_server):
    """The reference closes (len(clients) - max_connections) connections picked at random
    (Go map order) with `-ERR 'maximum connections exceeded'`, and refuses new ones."""
    srv = start_server(impl, config="max_connections: 10\n")
    wires = [client(srv) for _ in range(5)]
    block = reload(srv, "max_connections: 2\n")
    assert_reloaded(block, "[INF] Closed 3 connections to fall within max_connections",
                    "max_connections = 2")
    closed = wait_for_closes(wires, 3)
    for w in closed:
        assert w.ops_until_closed() == [err_line("maximum connections exceeded")]
    for w in wires:
        if w not in closed:
            assert w.sync() == []  # the survivors are untouched
    assert "maximum connections exceeded" in srv.log()
    # A new client gets its INFO, then the error, and is closed.
    w = raw_client(srv)
    assert w.ops_until_closed() == [err_line("maximum connections exceeded")]
    # Raising the limit lets a new client in again.
    assert_reloaded(reload(srv, "max_connections: 3\n"), "max_connections = 3")
    round_trip_ok(srv)
    for w in wires:
        if w not in closed:
            assert w.sync() == []


def wait_for_closes(wires, n: int) -> list:
    """Wait until `n` of `wires` have been closed by the server; return them."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    closed: list = []
    while len(closed) < n:
        assert time.monotonic() < deadline, f"only {len(closed)} of {n} connections closed"
        for w in wires:
            if w in closed:
                continue
            try:
                w._fill(time.monotonic() + 0.02)
            except ConnectionError:
                closed.append(w)
    return closed


# --- 3. debug and trace ------------------------------------------------------------------------


def test_turning_on_trace_by_reload_traces_old_and_new_clients(impl, start_server):
    srv = start_server(impl, config="debug: false\ntrace: false\n")

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            old = watched[0]
            await flush(old)
            assert "[TRC]" not in srv.log() and "[DBG]" not in srv.log()
            block = await asyncio.to_thread(reload, srv, "debug: true\ntrace: true\n")
            assert_reloaded(block, "debug = true", "trace = true")
            await still_connected(*watched)
            new = await clients.connect()
            await flush(new)
            await flush(old)
            for nc in (old, new):
                ping = re.compile(rf"^\[TRC\] 127\.0\.0\.1:\d+ - cid:{nc.client_id} - .*<<- \[PING\]$",
                                  re.M)
                await eventually_in_log(srv, ping)
            created = re.compile(rf"^\[DBG\] 127\.0\.0\.1:\d+ - cid:{new.client_id} - "
                                 r"Client connection created$", re.M)
            await eventually_in_log(srv, created)

            # Trace off again: a new client's PING is no longer traced (debug still is).
            block = await asyncio.to_thread(reload, srv, "debug: true\ntrace: false\n")
            assert_reloaded(block, "trace = false")
            quiet = await clients.connect()
            await flush(quiet)
            cid = quiet.client_id
            await quiet.close()
            gone = re.compile(rf"^\[DBG\] 127\.0\.0\.1:\d+ - cid:{cid} - .*"
                              r"Client connection closed", re.M)
            await eventually_in_log(srv, gone)
            assert not any(l.startswith("[TRC]") and f" - cid:{cid} - " in l
                           for l in log_lines(srv.log()))
            await still_connected(*watched)

    run(main)


async def eventually_in_log(srv: Server, pattern: re.Pattern) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not pattern.search("\n".join(log_lines(srv.log()))):
        assert asyncio.get_running_loop().time() < deadline, \
            f"{pattern.pattern!r} never logged:\n{srv.log()}"
        await asyncio.sleep(0.02)


# --- 4. refused reloads ------------------------------------------------------------------------


def test_port_and_host_changes_are_refused_and_nothing_is_applied(impl, file_only_server):
    port, other = free_port(), free_port()
    base = f"host: 127.0.0.1\nport: {port}\n"
    srv = file_only_server(impl, base + "max_payload: 1MB\n", port)
    before = client(srv)

    for config, reason in [
        (f"host: 127.0.0.1\nport: {other}\n",
         f"config reload not supported for Port: old={port}, new={other}"),
        (f'listen: "127.0.0.1:{other}"\n',
         f"config reload not supported for Port: old={port}, new={other}"),
        (f"host: 0.0.0.0\nport: {port}\n",
         "config reload not supported for Host: old=127.0.0.1, new=0.0.0.0"),
    ]:
        # The valid max_payload change in the same file is not applied either.
        assert_refused(reload(srv, config + "max_payload: 2KB\n"), reason)
        assert info(srv)["max_payload"] == 1048576
        assert before.roundtrip(pub("big", b"x" * 4096)) == []
        round_trip_ok(srv)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", other), timeout=5).close()

    # The same address spelt as `listen` is no change; a later valid reload still works.
    block = reload(srv, f'listen: "127.0.0.1:{port}"\nmax_payload: 2KB\n')
    assert_reloaded(block, "max_payload = 2048")
    assert info(srv)["max_payload"] == 2048
    assert before.sync() == []


REFUSED = [
    ("server_name: alpha", "server_name: beta",
     "config reload not supported for ServerName: old=alpha, new=beta"),
    ("", "http_port: {http}", "config reload not supported for HTTPPort: old=0, new={http}"),
    ("", "max_pending: 1MB",
     "config reload not supported for MaxPending: old=67108864, new=1048576"),
    ("", "max_subscriptions: 10", "config reload not supported for MaxSubs: old=0, new=10"),
    ("", 'lame_duck_duration: "30s"',
     "config reload not supported for LameDuckDuration: old=2m0s, new=30s"),
    ("", 'lame_duck_grace_period: "3s"',
     "config reload not supported for LameDuckGracePeriod: old=10s, new=3s"),
]


@pytest.mark.parametrize("old, new, reason", REFUSED, ids=[r[1].split(":")[0] for r in REFUSED])
def test_unreloadable_option_is_refused_and_nothing_is_applied(impl, start_server, old, new,
                                                               reason):
    http = free_port()
    new, reason = new.format(http=http), reason.format(http=http)
    srv = start_server(impl, config=f"{old}\nmax_payload: 1MB\n")
    name = info(srv)["server_name"]

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            block = await asyncio.to_thread(reload, srv, f"{old}\n{new}\nmax_payload: 2KB\n")
            assert_refused(block, reason)
            await still_connected(*watched)

    run(main)
    # The old configuration is still the one in force.
    greeting = info(srv)
    assert greeting["max_payload"] == 1048576
    assert greeting["server_name"] == name
    w = client(srv)
    for sid in range(1, 12):  # more than the refused max_subscriptions: 10
        w.send(f"SUB many {sid}\r\n".encode())
    assert w.roundtrip(pub("big", b"x" * 4096)) == []
    if new.startswith("http_port"):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", http), timeout=5).close()
    # A later valid reload (diffed against the old configuration) still works.
    assert_reloaded(reload(srv, f"{old}\nmax_payload: 2KB\n"), "max_payload = 2048")
    assert info(srv)["max_payload"] == 2048


# --- 5. broken files ---------------------------------------------------------------------------


BROKEN = [
    ("unknown key", "max_payload: 2KB\nno_such_key: 1\n",
     '{path}:2:1: unknown field "no_such_key"'),
    ("unterminated string", 'max_payload: "2KB\n',
     "Parse error on line 2: 'Unexpected EOF.'"),
    ("unterminated map", "max_payload: 2KB\nping_interval: {\n",
     "Parse error on line 3: 'Unexpected EOF processing map.'"),
    ("bad duration", 'max_payload: 2KB\nping_interval: "xyz"\n',
     '{path}:2:1: error parsing ping_interval: time: invalid duration "xyz"'),
    ("key without value", "max_payload: 2KB\nmax_payload\n",
     "config is invalid ({path}:3:1)"),
]


@pytest.mark.parametrize("config, error", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_file_is_refused_and_the_old_config_stays(impl, start_server, config, error):
    srv = start_server(impl, config="max_payload: 1MB\n")
    before = client(srv)

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            block = await asyncio.to_thread(reload, srv, config)
            assert_refused(block, error.format(path=srv.config_path))
            await still_connected(*watched)

    run(main)
    assert info(srv)["max_payload"] == 1048576
    assert before.roundtrip(pub("big", b"x" * 4096)) == []
    # Fixing the file and reloading again works.
    assert_reloaded(reload(srv, "max_payload: 2KB\n"), "max_payload = 2048")
    assert info(srv)["max_payload"] == 2048
    assert before.sync() == []


# --- 6. no change ------------------------------------------------------------------------------


def test_reload_without_change_reloads_nothing(impl, start_server):
    srv = start_server(impl, config="max_payload: 1MB\nping_max: 3\n")
    before = client(srv)
    digest = startup_digest(srv)

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            # The untouched file, then the same options respelt: the digest is of the parsed
            # file, so neither is a change.
            assert assert_reloaded(await asyncio.to_thread(reload, srv)) == digest
            respelt = "# same options\nping_max = 3; max_payload = 1048576\n"
            assert assert_reloaded(await asyncio.to_thread(reload, srv, respelt)) == digest
            await still_connected(*watched)

    run(main)
    assert before.sync() == []
    assert info(srv)["max_payload"] == 1048576
    round_trip_ok(srv)


def test_emptied_file_resets_options_to_defaults(impl, start_server):
    """The reference accepts a file with no values on reload (it only warns about one at
    startup, and `-t` rejects it) and takes every option back to its default."""
    srv = start_server(impl, config="max_payload: 2KB\nping_max: 5\n")
    before = client(srv)
    for emptied in ("# everything removed\n", ""):
        block = reload(srv, emptied)
        digest = assert_reloaded(block, "max_payload = 1048576", "ping_max = 2")
        assert digest == hashlib.sha256(b"{}\n").hexdigest()  # the digest of an empty map
        assert info(srv)["max_payload"] == 1048576
        assert before.roundtrip(pub("big", b"x" * 4096)) == []
        assert_reloaded(reload(srv, "max_payload: 2KB\nping_max: 5\n"),
                        "max_payload = 2048", "ping_max = 5")


# --- 7. --signal reload ------------------------------------------------------------------------


def test_signal_reload_via_pid_file_and_pid(impl, start_server, tmp_path):
    pid_file = tmp_path / "server.pid"
    srv = start_server(impl, args=["-P", str(pid_file)], config="max_payload: 1MB\n")
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "no pid file"
        time.sleep(0.02)
    before = client(srv)

    async def main():
        async with Clients(srv.url) as clients:
            watched = await watched_client(clients)
            block = await asyncio.to_thread(
                reload, srv, "max_payload: 2KB\n",
                lambda: cli(impl, "--signal", f"reload={pid_file}"))
            assert_reloaded(block, "max_payload = 2048")
            block = await asyncio.to_thread(
                reload, srv, "max_payload: 3KB\n",
                lambda: cli(impl, "--signal", f"reload={srv.pid}"))
            assert_reloaded(block, "max_payload = 3072")
            # A refusal is reported the same way.
            block = await asyncio.to_thread(
                reload, srv, "max_payload: 3KB\nmax_pending: 1MB\n",
                lambda: cli(impl, "--signal", f"reload={pid_file}"))
            assert_refused(block, "config reload not supported for MaxPending: "
                                  "old=67108864, new=1048576")
            await still_connected(*watched)
            nc = await clients.connect()
            assert nc.max_payload == 3072

    run(main)
    assert before.sync() == []
    assert srv.proc.poll() is None


# --- files and log format ------------------------------------------------------------------------


def test_pid_file_and_ports_file_dir_reload(impl, start_server, tmp_path):
    srv = start_server(impl, config="max_payload: 1MB\n")
    pid_file = tmp_path / "new.pid"
    block = reload(srv, f'max_payload: 1MB\npid_file: "{pid_file}"\n')
    assert_reloaded(block, f"pid_file = {pid_file}")
    assert int(pid_file.read_text()) == srv.pid

    ports_dir = tmp_path / "ports"
    ports_dir.mkdir()
    block = reload(srv, f'max_payload: 1MB\npid_file: "{pid_file}"\nports_file_dir: "{ports_dir}"\n')
    # The reference also logs an [ERR] about cleaning up a ports file that never existed.
    block = [l for l in block if not l.startswith("[ERR] Error cleaning up ports file")]
    assert_reloaded(block, f"ports_file_dir = {ports_dir}")
    (path,) = ports_dir.glob(f"*_{srv.pid}.ports")
    assert json.loads(path.read_text())["nats"] == [f"nats://127.0.0.1:{srv.port}"]
    round_trip_ok(srv)


def test_logtime_off_by_reload_drops_timestamps_from_then_on(impl, start_server):
    srv = start_server(impl, config="logtime: true\n")
    start = len(srv.log())
    assert_reloaded(reload(srv, "logtime: false\n"), "logtime = false")
    raw = srv.log()[start:].splitlines()
    # The `Reloaded: logtime` line is still stamped; the closing line already is not.
    assert re.match(r"^\[\d+\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+ \[INF\] Reloaded: logtime = false$",
                    next(l for l in raw if "Reloaded: logtime" in l))
    assert re.match(r"^\[\d+\] \[INF\] Reloaded server configuration \(sha256:[0-9a-f]{64}\)$",
                    raw[-1])


# --- JetStream limits ---------------------------------------------------------------------------


def test_jetstream_limits_reload_and_other_jetstream_changes_are_refused(impl, start_server, tmp_path):
    base = 'jetstream { store_dir: "%s", max_mem: 1G, max_file: 5G%s }\n'
    srv = start_server(impl, config=base % (tmp_path, ""))
    assert_reloaded(reload(srv, (base % (tmp_path, "")).replace("1G", "2G").replace("5G", "6G")),
                    "JetStream max_mem_store = 1.86 GB", "JetStream max_file_store = 5.59 GB")
    grown = (base % (tmp_path, "")).replace("1G", "2G").replace("5G", "6G")
    assert_refused(reload(srv, grown.replace(" }", ", domain: x }")),
                   "config reload not supported for JetStreamDomain: old=, new=x")
    assert_refused(reload(srv, grown.replace(" }", ', sync_interval: "1m" }')),
                   "config reload not supported for SyncInterval: old=2m0s, new=1m0s")
    assert_refused(reload(srv, grown.replace(str(tmp_path), str(tmp_path / "other"))),
                   "config reload not supported for jetstream storage directory")
