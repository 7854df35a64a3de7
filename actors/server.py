"""The Server: root of the supervisor tree, and the boot sequence around it.

    /server (one_for_one)
    ├── config      running options; reloads
    ├── router      (one_for_one) shard-0 .. shard-N-1: the subscription index
    ├── accounts    exports and imports between accounts (actors/accounts.py)
    ├── resolver    (operator mode) account JWTs: MEMORY or the full resolver (actors/resolver.py)
    ├── system      the system account's events and requests (actors/system.py)
    ├── jetstream   (when enabled) streams and consumers (actors/jetstream.py)
    ├── clients     (temporary children) cid-1, cid-2, ...: one per connection
    ├── listener    the client accept loop
    └── monitor     HTTP monitoring, when a monitoring port is set

Start order matters (clients need the router's shards, the listener needs the clients
supervisor, the monitor reads from all of them), and each child starts once the one before it
has finished starting (see Supervisor._await_started), so "Server is ready" follows JetStream's
recovery. A restart does not cascade: the root is
one_for_one, not rest_for_one as DESIGN.md first said. Every child's state is either derived
(a restarted router's shards ask the clients to register again) or held outside it (the
listening sockets live in the context), so restarting the router must not drop the
connections that a rest_for_one restart of `clients` would. If the root's restart budget is
exhausted the process exits non-zero with a clear message.

`ServerContext` is what every actor is given at start: the options, identity, the listening
sockets (bound at boot, before "Server is ready", so a port in use fails early), the shard
address book, and server-wide counters. Actors never reach each other's state through it.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import platform
import signal
import socket
import sys
import time

import gevent
import gevent.event
import pykka

from .. import NATS_VERSION, __version__
from ..protocol.ids import server_id as new_server_id
from .accounts import Accounts, AccountsTable
from .clients import Clients
from .config import Config
from .listener import Listener
from .monitor import Monitor
from .system import System
from .router import Router, ShardTable
from .runtime import Actor, ChildExited, ChildFailed, registry, tell
from .supervisor import ONE_FOR_ONE, START_TIMEOUT, ChildSpec, Supervisor

GC_THRESHOLD = 20_000  # young-generation allocations between collections (Python: 700)

log = logging.getLogger("actor_nats")


class Stats:
    """Server-wide counters (the reference keeps these as atomics on the server struct).

    Written by the actor where the event happens (the Clients supervisor counts accepted
    connections, a Client its slow-consumer or stale close, the Monitor its HTTP requests), read
    by the Monitor. They live in the context, not in an actor, so that a restarted Monitor or
    Clients supervisor does not reset what /varz reports. For message and byte totals /varz
    asks the open connections and the Clients supervisor (which keeps the totals of closed ones
    in step with its ring).
    """

    def __init__(self):
        self.total_connections = 0  # every accepted client connection, rejected ones included
        self.slow_consumers = 0  # clients closed as slow consumers (pending bytes or deadline)
        self.stale_connections = 0
        self.http_req_stats: dict[str, int] = {}  # monitoring path -> requests (/varz)
        self.config_load_time = time.time()  # start, then each applied reload


class ServerContext:
    def __init__(self, options, load_options=None):
        self.options = options
        self.load_options = load_options or (lambda: self.options)
        self.server_id = new_server_id()
        self.server_name = options.server_name or self.server_id
        self.shards = ShardTable()
        self.accounts = AccountsTable(options)  # replaced whole on a reload
        self.internal_ids = itertools.count(-1, -1)  # internal clients: negative, never a cid
        self.internals: dict = {}  # icid -> ref of each actor subscribed as an internal client
        self.stats = Stats()
        self.cids = itertools.count(1)
        self.start_time = time.time()
        self.listen_sock: socket.socket | None = None
        self.http_sock: socket.socket | None = None
        self.port = options.port
        self.shutting_down = False
        self.lame_duck = False
        self.done = gevent.event.AsyncResult()
        self.info_base: dict = {}

    def build_info(self) -> None:
        o = self.options
        self.info_base = {
            "server_id": self.server_id,
            "server_name": self.server_name,
            "version": NATS_VERSION,
            "proto": 1,
            "go": f"python{platform.python_version()}",
            "host": o.host,
            "port": self.port,
            "headers": not o.no_header_support,
        }
        if (o.auth.required and not o.auth.no_auth_user) or o.operator.enabled:
            self.info_base["auth_required"] = True  # forced off by no_auth_user, as the reference
        self.info_base["max_payload"] = o.max_payload
        if o.jetstream.enabled:
            self.info_base["jetstream"] = True
        if o.client_advertise:
            self.info_base["connect_urls"] = [o.client_advertise]

    def write_files(self) -> None:
        """The pid file and ports file (at start, and again when a reload changes them)."""
        write_files(self)

    def client_closed(self, client) -> None:
        """Called by a Client as it closes: its final record goes to the Clients supervisor
        as a message (the closed ring and the message/byte totals live there)."""
        info = client.conn_info()
        info["stop"] = time.time()
        info["reason"] = client.close_reason or "Client Closed"
        tell("/server/clients", ("closed", info))

    def slow_consumer(self, client) -> None:
        self.stats.slow_consumers += 1
        log.info("%sSlow Consumer Detected: MaxPending of %d Exceeded", client._prefix(),
                 self.options.max_pending)

    def stale_connection(self, client) -> None:
        self.stats.stale_connections += 1
        log.debug("%s:%d - cid:%d - Stale Client Connection - Closing", client.host, client.port, client.cid)


def _spec(child_id: str, cls, ctx, kind: str) -> ChildSpec:
    def start(path, parent, cid, restarted):
        return cls.start(path, parent, cid, ctx, restarted)
    return ChildSpec(child_id, start, kind=kind)


class Server(Supervisor):
    kind = "server"
    strategy = ONE_FOR_ONE
    intensity = 5
    period = 10.0

    def __init__(self, ctx):
        self.ctx = ctx
        specs = [_spec("config", Config, ctx, "config"),
                 _spec("router", Router, ctx, "router"),
                 _spec("accounts", Accounts, ctx, "accounts"),
                 _spec("system", System, ctx, "system"),
                 _spec("clients", Clients, ctx, "clients"),
                 _spec("listener", Listener, ctx, "listener")]
        if ctx.options.operator.enabled:
            from .resolver import Resolver

            # the account JWTs: loaded before the Accounts actor builds imports from them
            specs.insert(2, _spec("resolver", Resolver, ctx, "resolver"))
        if ctx.options.jetstream.enabled:
            from .jetstream import JetStream

            # after the router (streams subscribe), before the listener (ready once recovered)
            specs.insert(specs.index(next(sp for sp in specs if sp.id == "clients")),
                         _spec("jetstream", JetStream, ctx, "jetstream"))
        if ctx.http_sock is not None:
            specs.append(_spec("monitor", Monitor, ctx, "monitor"))
        super().__init__("/server", None, "server", specs)

    def root_down(self, message) -> None:
        if isinstance(message, ChildFailed):
            self.ctx.done.set((1, f"supervisor tree gave up: {message.error}"))
        elif isinstance(message, ChildExited) and not self.ctx.shutting_down:
            self.ctx.done.set((1, "supervisor tree stopped"))


# -- boot -------------------------------------------------------------------------------------

class BootError(Exception):
    pass


def _bind(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port if port >= 0 else 0))
        sock.listen(1024)
    except OSError as e:
        sock.close()
        hp = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        reason = e.strerror.lower() if e.strerror else str(e)
        raise BootError(f'Error listening on port: {hp}, "listen tcp {hp}: bind: {reason}"') from None
    return sock


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run(options, load_options=None) -> int:
    """Boot the server, serve until a stop signal, and return the process exit code."""
    ctx = ServerContext(options, load_options)
    o = options
    log.info("Starting nats-server")
    log.info("  Version:  %s (actor-nats %s)", NATS_VERSION, __version__)
    log.info("  Git:      [not set]")
    log.info("  Name:     %s", ctx.server_name)
    log.info("  ID:       %s", ctx.server_id)
    if o.config_file:
        from ..config.loader import digest

        log.info("Using configuration file: %s (%s)", o.config_file, digest(o.config_file))
    if o.operator.enabled:
        from .resolver import log_operators

        log_operators(o)
    try:
        if o.http_port:
            ctx.http_sock = _bind(o.http_host or o.host, o.http_port, "monitor")
            hport = ctx.http_sock.getsockname()[1]
            log.info("Starting http monitor on %s", _hostport(o.http_host or o.host, hport))
        ctx.listen_sock = _bind(o.host, o.port, "client")
    except BootError as e:
        log.log(60, "%s", e)
        return 1
    ctx.port = ctx.listen_sock.getsockname()[1]
    ctx.build_info()
    if o.jetstream.enabled:
        from .jetstream import log_startup

        log_startup(ctx)  # the reference's banner, before "Listening for client connections"
    root = Server.start(ctx)
    _await_tree(root)
    log.info("Listening for client connections on %s", _hostport(o.host, ctx.port))
    _write_files(ctx)
    _install_signals(ctx)  # before "Server is ready": a script may signal as soon as it reads it
    _tune_gc()
    log.info("Server is ready")
    code, why = ctx.done.get()
    if code != 0:
        log.log(60, "%s", why)
    _shutdown(ctx, root)
    return code


def _await_tree(root) -> None:
    """Wait until the root has started its whole static tree (it is marked ready once its
    `started()` returns, and that waits for each child in turn), so that `Server is ready` means
    ready, JetStream recovered included, as on the reference."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and root.is_alive():
        entry = registry.get("/server")
        if entry is not None and entry.ref is root and entry.ready:
            return
        registry.ready_signal.wait(0.05)


def _tune_gc() -> None:
    """The objects made while starting (modules, config, actors) live as long as the server:
    freeze them out of the collector's view, and collect the young generation less often. The
    hot path allocates short-lived tuples and lists by the thousand per second; with the default
    threshold (700) the collector ran every few messages and showed in profiles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def _write_files(ctx) -> None:
    ctx.write_files()


def write_files(ctx) -> None:
    o = ctx.options
    if o.pid_file:
        with open(o.pid_file, "w") as f:
            f.write(str(os.getpid()))
    if o.ports_file_dir:
        ports = {"nats": [f"nats://{_hostport(o.host, ctx.port)}"]}
        if ctx.http_sock is not None:
            ports["monitoring"] = [f"http://{_hostport(o.http_host or o.host, ctx.http_sock.getsockname()[1])}"]
        path = os.path.join(o.ports_file_dir, f"actor-nats_{os.getpid()}.ports")
        with open(path, "w") as f:
            json.dump(ports, f)
        ctx.ports_file = path


def _remove_files(ctx) -> None:
    for path in (ctx.options.pid_file, getattr(ctx, "ports_file", "")):
        if path:
            try:
                os.remove(path)
            except OSError:
                pass


def _install_signals(ctx) -> None:
    def stop(sig_name):
        log.info('Trapped "%s" signal', sig_name)
        if ctx.lame_duck and sig_name == "terminated":
            return
        log.info("Initiating Shutdown...")
        log.info("Server Exiting..")
        ctx.done.set((0, ""))

    def reload():
        log.info('Trapped "hangup" signal')
        ref = registry.ref("/server/config")
        if ref is not None:
            ref.tell(("reload",))

    def ldm():
        gevent.spawn(lame_duck, ctx)

    def reopen():
        from . import log as nlog
        nlog.reopen()
        log.info("File log re-opened")

    gevent.signal_handler(signal.SIGINT, stop, "interrupt")
    gevent.signal_handler(signal.SIGTERM, stop, "terminated")
    gevent.signal_handler(signal.SIGHUP, reload)
    gevent.signal_handler(signal.SIGUSR2, ldm)
    gevent.signal_handler(signal.SIGUSR1, reopen)


def lame_duck(ctx) -> None:
    """Stop accepting, tell clients (INFO ldm:true), wait the grace period, then close the
    connections spread over the rest of lame_duck_duration, then exit."""
    if ctx.lame_duck:
        return
    ctx.lame_duck = True
    o = ctx.options
    log.info("Entering lame duck mode, stop accepting new clients")
    tell("/server/system", ("lame_duck",))
    tell("/server/listener", ("stop_accepting",))
    try:
        ctx.listen_sock.close()
    except OSError:
        pass
    refs = _client_refs()
    for ref in refs:
        try:
            ref.tell(("ldm",))
        except pykka.ActorDeadError:
            pass
    grace = min(o.lame_duck_grace_period, o.lame_duck_duration)
    gevent.sleep(grace)
    refs = _client_refs()
    window = max(o.lame_duck_duration - grace, 0.0)
    if refs:
        log.info("Closing existing clients")
        pause = window / len(refs) if refs else 0
        for ref in refs:
            try:
                ref.tell(("close", "Server Shutdown"))
            except pykka.ActorDeadError:
                pass
            if pause:
                gevent.sleep(min(pause, 1.0))
    ctx.done.set((0, ""))


def _client_refs() -> list:
    return [e.ref for e in registry.children("/server/clients")]


def _shutdown(ctx, root) -> None:
    ctx.shutting_down = True
    system = registry.ref("/server/system")  # $SYS.SERVER.<id>.SHUTDOWN goes out before the closes
    if system is not None:
        try:
            system.ask(("shutdown",), timeout=1.0)
        except Exception:
            pass
    for sock in (ctx.listen_sock, ctx.http_sock):
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
    for ref in _client_refs():
        try:
            ref.tell(("close", "Server Shutdown"))
        except pykka.ActorDeadError:
            pass
    gevent.sleep(0.05)
    try:
        root.stop(block=True, timeout=5)
    except Exception:
        pass
    _remove_files(ctx)
    sys.stdout.flush()


__all__ = ["run", "Server", "ServerContext", "Actor"]
