"""A Client: one connection from a NATS client, as an actor.

It owns the socket, the connection's options (CONNECT), its subscriptions (sid -> Subscription,
the source of truth the shards index), its outbound buffer, and its counters. Two helper
greenlets belong to it: the reader (recv, then hand the bytes to the actor as one mailbox
message and wait until they are processed: one message per read batch, and back-pressure for
free) and the writer (one sendall per accumulated buffer, bounded by write_deadline). Timers
(ping, auth) also only send messages to the actor; all state changes happen in its own greenlet.

A Client is temporary: if it crashes its connection closes and the client library reconnects.

Subject mappings: when its account has mappings (ctx.accounts.mapper), a Client maps each
publish's subject before the permission check and before the shard sees it (_map_pub; the
reply is not mapped), caching what each subject maps to; with none, the publish loop checks one
None per message and nothing else.

Ordering: all of a connection's publishes go to one shard (actors/router.py), so they are routed
in order. A PONG is sent only after that shard has processed them (a barrier through it), so that `publish; flush()` means what it means on the
reference: the messages were routed, including to this client's own subscriptions.
"""

from __future__ import annotations

import json
from collections import Counter
import logging
import socket
import time

import gevent
import pykka

from .. import NATS_VERSION
from ..protocol import errors
from ..protocol.errors import ProtocolError, err_line
from ..protocol.parser import CONNECT, ERROR, HPUB, PING, PONG, PUB, SUB, UNSUB, ClientParser
from ..protocol.subjects import subject_matches, valid_literal_subject, valid_subject
from ..protocol.trace import inbound, outbound_frames
from ..protocol.ids import nonce as new_nonce
from . import auth as authn
from .monitor import go_duration
from .router import Subscription
from .runtime import Actor, registry, tell

log = logging.getLogger("actor_nats")
TRACE = 5  # the TRC level (actors/log.py)

PONG_FRAME = b"PONG\r\n"
RESUME = object()
_BLANK5 = (b"", b"", b"", b"", b"")  # held in the deferred queue: continue stalled input here
PING_FRAME = b"PING\r\n"
OK_FRAME = b"+OK\r\n"
READ_SIZE = 65536
MAX_READ_SIZE = 262144
SHARD_HIGH_WATER = 64  # pending batches in a shard's mailbox before publishers wait


class Client(Actor):
    kind = "client"

    def __init__(self, path, parent, child_id, ctx, sock, addr, cid: int, reject: str | None = None):
        super().__init__(path, parent, child_id)
        self.ctx = ctx
        self.opts = ctx.options
        self.sock = sock
        self.host, self.port = addr[0], addr[1]
        self.cid = cid
        self.reject = reject
        self.start = time.time()
        self.last_activity = self.start
        self.parser = ClientParser(self.opts.max_payload, self.opts.max_control_line)
        # CONNECT options, with the reference's defaults for a client that has not sent one
        self.verbose = True
        self.pedantic = True
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.protocol = 0
        self.name = ""
        self.lang = ""
        self.version = ""
        self.connect_received = False
        self.first_pong_sent = False
        # auth (actors/auth.py): set at CONNECT; None = no permissions to check
        auth = self.opts.auth
        self._operator = self.opts.operator.enabled  # JWT auth (actors/auth.py, actors/resolver.py)
        self._auth_required = auth.required or self._operator
        self._awaiting_auth = self._auth_required and not auth.no_auth_user  # ops before CONNECT refused
        self._nonce = new_nonce() if auth.has_nkeys or self._operator else ""
        self._fetched: dict = {}  # operator mode: accounts fetched for this CONNECT -> error
        self._jwt_account = ""  # the JWT account this connection counts against
        self._jwt_max_subs = -1  # from the user and account claims
        self._expiry_timer = None
        self._auth_timer = None
        self.identity = None
        self.account = "$G"  # the subject space this connection lives in (set by auth)
        self._creds: dict | None = None  # CONNECT's credentials, re-checked on reload
        self._pub_perms = None  # Permissions with publish lists, else None (the fast path)
        self._pub_cache: dict = {}  # subject -> allowed, for _pub_perms
        # subject mappings of our account (protocol/transform.py SubjectMapper), looked up again
        # whenever the context's AccountsTable is replaced (a reload, a JWT update) or our
        # account changes; _map_cache (subject -> mapped subject, Choice, or False for none) is
        # None when the account has no mappings: the publish path then checks nothing else
        self._mapper = None
        self._map_cache: dict | None = None
        self._mappings_of = None  # the AccountsTable _mapper was taken from
        self._sub_perms = None
        self._deliver_filter = False  # subscribe deny lists or allow_responses
        self._responses = None
        # subscriptions
        self.subs: dict[bytes, Subscription] = {}
        self.max_msgs: dict[bytes, int] = {}
        self.delivered: Counter = Counter()
        # output
        self._out: list[bytes] = []
        self.pending_bytes = 0
        self._deferred: list[bytes] | None = None  # control frames held behind a barrier
        self._barrier_token = 0
        self._barrier_waiting: set[int] = set()
        self._barrier_queue: list = []
        self._inflight: set[int] = set()  # shards sent publishes since the last barrier
        self._pubs: dict[int, list] = {}
        self._shard = ctx.shards.shard_for(cid)  # every publish of ours goes to this shard
        self._no_interest: set[bytes] = set()  # subjects nobody subscribes to, as of:
        self._ni_generation = -1  # ... this interest generation (see ShardTable)
        self._resume: list | None = None  # input events waiting for a barrier
        self._closing = False  # no more input is processed
        self._close_ready = False  # the writer shuts the socket once the output is flushed
        self.close_reason = ""
        # counters
        self.out_msgs = self.out_bytes = 0  # out_bytes: message sizes, as the reference counts
        self.pings_out = 0
        self.rtt = 0.0  # seconds: CONNECT's arrival after accept, then each PING -> PONG
        self._rtt_start = 0.0
        self._closed_subs: dict | None = None  # the subscriptions as they were at close
        # helpers
        self._greenlets: list = []  # a writer while the socket is full; close timers
        self._raw = None
        self._io = None  # read watcher (no reader greenlet: an idle connection costs no stack)
        self._ping_timer = None
        self._rearm_timer = None
        self._read_size = READ_SIZE
        self._writing = False
        self._trace = self.opts.trace
        self._debug = self.opts.debug or self.opts.trace

    # -- lifecycle --------------------------------------------------------------------------

    def describe(self) -> dict:
        return {"cid": self.cid, "ip": self.host, "port": self.port,
                "shard": self._shard}  # where its publishes are routed

    def started(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._raw = getattr(self.sock, "_sock", self.sock)  # the non-blocking OS socket
        if self._debug:
            log.debug("%sClient connection created", self._prefix())
        self._out.append(self._info_frame())
        if self.reject:
            self._send_err(self.reject, close=True, reason="Maximum Connections Exceeded")
            self._flush_out()
            return
        loop = gevent.get_hub().loop
        self._io = loop.io(self._raw.fileno(), 1)
        self._io.start(self._on_readable)
        if self.opts.ping_interval > 0:
            self._ping_timer = loop.timer(self.opts.ping_interval, self.opts.ping_interval)
            self._ping_timer.start(self._tell_self, ("ping_tick",))
        if self._auth_required and self.opts.auth.timeout > 0:
            self._auth_timer = loop.timer(self.opts.auth.timeout)
            self._auth_timer.start(self._tell_self, ("auth_timeout",))
        self._flush_out()

    def cleanup(self) -> None:
        self._closing = True
        if self._jwt_account:
            from .resolver import account_clients

            conns = account_clients(self.ctx).get(self._jwt_account)
            if conns is not None:
                conns.pop(self.cid, None)
            self._jwt_account = ""
        for watcher in (self._io, self._ping_timer, self._rearm_timer, self._auth_timer,
                        self._expiry_timer):
            if watcher is not None:
                watcher.stop()
                watcher.close()
        self._io = self._ping_timer = self._rearm_timer = self._auth_timer = self._expiry_timer = None
        current = gevent.getcurrent()
        for g in self._greenlets:
            if g is not current:
                g.kill(block=False)
        try:
            self.sock.close()
        except OSError:
            pass
        self._closed_subs = dict(self.subs)  # for the closed-connection record (conn_info)
        self._remove_all_subs()
        if self._debug:
            log.debug("%sClient connection closed: %s", self._prefix(), self.close_reason or "Client Closed")
        self.ctx.client_closed(self)
        tell("/server/system", ("client_closed", self.conn_info(False), self.close_reason or "Client Closed", self.identity, (self._creds or {}).get("user", ""), self.connect_received))

    # -- mailbox ----------------------------------------------------------------------------

    def handle(self, message):
        try:
            return self._handle(message)
        finally:
            if (self._out or self._close_ready) and not self._writing:
                self._flush_out()
            if message[0] == "data" and self.actor_inbox.qsize():
                gevent.sleep(0)  # yield after each read batch: a busy client must not starve
                # others (with an empty mailbox, waiting for the next message yields anyway)

    def _handle(self, message):
        kind = message[0]
        if kind == "msgs":
            self._deliver(message[1], message[2], message[3])
        elif kind == "data":
            self._on_data(message[1])
        elif kind == "barrier":
            self._on_barrier(message[1], message[2])
        elif kind == "noresp":
            self._no_responders(message[1], message[2])
        elif kind == "no_interest":
            generation = message[1]
            if generation == self.ctx.shards.interest_generation:
                if generation != self._ni_generation:
                    self._no_interest.clear()
                    self._ni_generation = generation
                if len(self._no_interest) < 4096:
                    self._no_interest.update(message[2])
        elif kind == "ping_tick":
            self._ping_tick()
        elif kind == "auth_timeout":
            if not self.connect_received and not self._closing:
                self._send_err(errors.AUTH_TIMEOUT, close=True, reason="Authentication Timeout")
        elif kind == "eof":
            self._close(message[1], flush=False)
        elif kind == "reregister":
            self._reregister(message[1])
        elif kind == "ldm":
            if self.protocol >= 1:
                self._send(self._info_frame(ldm=True))
        elif kind == "close":
            self._close(message[1], flush=True)
        elif kind == "stop":
            self.stop()
        elif kind == "kick":  # e.g. a reload lowered max_connections below the count
            log.error("%s%s - Account:%s", self._prefix(), message[1], self.account)
            self._send_err(message[1], close=True, reason="Maximum Connections Exceeded")
        elif kind == "options":
            self.opts = message[1]
            self._trace = self.opts.trace
            self._debug = self.opts.debug or self.opts.trace
            self.parser.max_payload = self.opts.max_payload
            self.parser.max_control_line = self.opts.max_control_line
            if self.identity is not None and self.identity.jwt is not None:
                self._apply_jwt_limits(self.identity)  # claims' payload limit stays in force
            self._recheck_auth()
        elif kind == "connz":
            return self.conn_info(message[1])
        elif kind in ("account_fetched", "account_update", "account_kick", "account_expired",
                      "auth_expired"):
            self._on_jwt_event(message)
        else:
            return super().handle(message)
        return None

    # -- reading ----------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """Read watcher callback (runs in the gevent hub, must not block): read what is
        there and hand it to the actor as one message; reading pauses until it is processed,
        which bounds this connection's input and gives the shards back-pressure."""
        try:
            data = self._raw.recv(self._read_size)
        except BlockingIOError:
            return
        except OSError:
            data = None
        if self._io is not None:
            self._io.stop()
        if not data:
            self._tell_self(("eof", "Client Closed" if data == b"" else "Read Error"))
            return
        if len(data) == self._read_size and self._read_size < MAX_READ_SIZE:
            self._read_size *= 2
        self._tell_self(("data", data))

    def _rearm_reader(self) -> None:
        if self._io is None or self._closing:
            return
        shard = self.ctx.shards.refs[self._shard]  # where our publishes go: its depth is ours to mind
        if shard is not None and shard.actor_inbox.qsize() > SHARD_HIGH_WATER:
            if self._rearm_timer is None:
                self._rearm_timer = gevent.get_hub().loop.timer(0.0005)
            self._rearm_timer.start(self._rearm_reader)
            return
        self._io.start(self._on_readable)

    def _on_data(self, data: bytes) -> None:
        try:
            if self._closing:
                return
            self.last_activity = time.time()
            p = self.parser
            before, hbefore = p.in_msgs, p.in_hmsgs
            events = p.feed(data)
            # only plain PUBs (the usual read of a publisher): _process may take them at once
            self._run(events, p.in_msgs - before == len(events) and p.in_hmsgs == hbefore)
        finally:
            if self._resume is None:
                self._rearm_reader()  # read again (not while input is stalled)

    def _run(self, events: list, plain: bool = False) -> None:
        if not self._process(events, plain):
            return
        while self.parser.paused and not self._closing:
            if not self._process(self.parser.feed(b"")):
                return

    def _stall(self, rest: list) -> None:
        """Stop processing input until everything published so far has been routed and
        delivered back (used where the reference's synchronous processing shows, e.g. a SUB at
        max_subscriptions that an auto-unsubscribe in flight would make room for)."""
        self._resume = rest
        self._send_ctl(None)

    def _resumed(self) -> None:
        rest, self._resume = self._resume, None
        try:
            self._run(rest)
        finally:
            if self._resume is None:
                self._rearm_reader()

    def _process(self, events: list, plain: bool = False) -> bool:
        """Handle parsed events in order; False if processing stalled (see _stall). `plain`:
        every event is a PUB (no control op, no HPUB), so with nothing to check per message
        they are batched at once."""
        pubs = self._pubs  # shard index -> batch not yet sent; sent before any control frame
        stalled = False
        trace = self._trace
        simple = not (self.pedantic or self.verbose or trace or self._pub_perms or self._awaiting_auth)
        if self._ni_generation != self.ctx.shards.interest_generation:
            self._no_interest.clear()
        no_interest = self._no_interest
        batch = None  # our shard's batch in _pubs, while nothing in between can have sent it
        if self._mappings_of is not self.ctx.accounts:
            self._load_mappings()
        mcache = self._map_cache
        if plain and simple and mcache is None:  # (simple implies no trace)
            if no_interest:
                nr = self.no_responders
                events = [ev for ev in events if ev[1] not in no_interest or (ev[2] is not None and nr)]
            if events and not self._closing:
                self._batch().extend(events)
                self._flush_pubs()
            return True
        held: list = []  # trace: a mapped message's payload line goes after its MAPPING line
        for i, ev in enumerate(events):
            op = ev[0]
            if trace:
                prefix = self._prefix()
                lines = inbound(ev)
                if mcache is not None and (op == PUB or op == HPUB):
                    held, lines = lines[1:], lines[:1]
                for line in lines:
                    log.log(TRACE, "%s%s", prefix, line)
            if op == PUB and simple:
                if mcache is not None:
                    ev = self._map_pub(ev, mcache)
                    if ev is None:
                        continue  # a weighted mapping dropped it
                if ev[1] in no_interest and (ev[2] is None or not self.no_responders):
                    continue  # no subscriber anywhere, as of the current interest generation
                if batch is None:
                    batch = self._batch()
                batch.append(ev)
                continue
            batch = None  # (a control frame below sends the publishes before it)
            if self._awaiting_auth and op != CONNECT:
                self._send_err(errors.AUTH_VIOLATION, close=True)
                break
            if op == PUB or op == HPUB:
                if op == HPUB:
                    if not self.headers:
                        log.error("%smessage headers not supported", self._prefix())
                        self._close("Protocol Violation", flush=True)
                        break
                    if ev[3] == 0:  # an empty header block: subscribers get a plain MSG
                        ev = (PUB, ev[1], ev[2], ev[4], ev[5])
                if self.pedantic and not valid_literal_subject(ev[1]):
                    self._send_err(errors.INVALID_PUBLISH_SUBJECT)
                if mcache is not None:  # mapped before the permission check, as the reference
                    mapped = self._map_pub(ev, mcache)
                    if trace:
                        if mapped is not ev:
                            log.log(TRACE, "%s<<- [MAPPING %s -> %s]", prefix, ev[1].decode(errors="replace"),
                                    mapped[1].decode(errors="replace") if mapped is not None else "")
                        for line in held:
                            log.log(TRACE, "%s%s", prefix, line)
                    if mapped is None:  # a weighted mapping dropped it
                        if self.verbose:
                            self._send_ctl(OK_FRAME)
                        continue
                    ev = mapped
                if self._pub_perms is not None and not self._can_publish(ev[1]):
                    continue  # no +OK for a denied publish, as the reference
                if self.verbose:
                    self._send_ctl(OK_FRAME)
                self._batch().append(ev)
            elif op == PING:
                self._send_ctl(PONG_FRAME, pong=True)
            elif op == SUB:
                maxsubs = self.opts.max_subscriptions
                if maxsubs and len(self.subs) >= maxsubs and self.max_msgs \
                        and (pubs or self._inflight):
                    self._stall(events[i:])
                    stalled = True
                    break
                self._on_sub(ev[1], ev[2], ev[3])
            elif op == UNSUB:
                self._on_unsub(ev[1], ev[2])
            elif op == PONG:
                self.pings_out = 0
                if self._rtt_start:
                    self.rtt = max(time.time() - self._rtt_start, 1e-9)
            elif op == CONNECT:
                if self._operator and self._fetch_account(ev[1]):
                    self._resume = events[i:]  # CONNECT again once the Resolver answers
                    stalled = True
                    break
                if not self._on_connect(ev[1]):
                    break
            elif op == ERROR:
                err: ProtocolError = ev[1]
                if err.detail:
                    log.error("%s%s", self._prefix(), err.detail)
                if err.text is not None:
                    self._send_err(err.text, close=err.close, reason=err.reason)
                else:
                    self._close(err.reason, flush=True)
                break
            if self._closing:
                break
        if pubs and not self._closing:
            self._flush_pubs()
        return not stalled

    def _load_mappings(self) -> None:
        """Take our account's mappings from the current AccountsTable (checked once per read:
        a reload or a JWT update replaces the table, and our next publish sees the new one)."""
        accounts = self.ctx.accounts
        self._mappings_of = accounts
        mapper = accounts.mapper(self.account)
        if mapper is not self._mapper:
            self._mapper = mapper
            self._map_cache = {} if mapper is not None else None

    def _map_pub(self, ev: tuple, cache: dict):
        """A publish with its subject mapped (the same tuple when no mapping applies; None when
        a weighted mapping drops it). What a subject maps to is cached; a weighted or random
        destination is drawn per message. The reply subject is not mapped."""
        subject = ev[1]
        m = cache.get(subject)
        if m is None:
            m = self._mapper.resolve(subject)
            if m is None:
                m = False
            if len(cache) >= 4096:
                cache.clear()
            cache[subject] = m
        if m is False:
            return ev
        mapped = m if m.__class__ is bytes else m.pick()
        if not mapped:
            return None
        return (ev[0], mapped) + ev[2:]

    def _batch(self) -> list:
        """This read's batch for our shard (every publish of a connection goes to one shard,
        so its messages are routed in the order they were published: see actors/router.py)."""
        idx = self._shard
        batch = self._pubs.get(idx)
        if batch is None:
            batch = self._pubs[idx] = []
        return batch

    def _flush_pubs(self) -> None:
        """Send each shard its batch of this read's publishes (one tell per shard)."""
        pubs = self._pubs
        shards = self.ctx.shards
        info = (self.cid, self.actor_ref, self.echo, self.no_responders, shards.interest_generation,
                self.account)
        refs = self.ctx.shards.refs
        for idx, batch in pubs.items():
            self._inflight.add(idx)
            try:
                refs[idx].tell(("pub", info, batch, None))
            except (pykka.ActorDeadError, AttributeError):
                pass  # the shard is restarting: core NATS may drop, as on a route flap
        pubs.clear()

    # -- protocol ops -----------------------------------------------------------------------

    def _on_connect(self, raw: bytes) -> bool:
        self.rtt = max(time.time() - self.start, 1e-9)  # the reference's first estimate
        try:
            opts = json.loads(raw)
            if not isinstance(opts, dict):
                raise ValueError("CONNECT is not an object")
        except ValueError:
            self._close("Protocol Violation", flush=True)
            return False
        proto = opts.get("protocol", 0)
        if not isinstance(proto, int) or isinstance(proto, bool):
            self._close("Protocol Violation", flush=True)  # the reference's JSON decode fails
            return False
        if proto not in (0, 1):
            self._send_err(errors.INVALID_CLIENT_PROTOCOL, close=True,
                           reason="Bad Client Protocol Version")
            return False
        self.verbose = bool(opts.get("verbose", self.verbose))
        self.pedantic = bool(opts.get("pedantic", self.pedantic))
        self.echo = bool(opts.get("echo", self.echo))
        self.headers = bool(opts.get("headers", False)) and not self.opts.no_header_support
        self.parser.headers_ok = self.headers
        self.no_responders = bool(opts.get("no_responders", False))
        self.protocol = proto
        self.name = str(opts.get("name", "") or "")
        self.lang = str(opts.get("lang", "") or "")
        self.version = str(opts.get("version", "") or "")
        if self.no_responders and not self.headers:
            self._send_err(errors.NO_RESPONDERS_NEEDS_HEADERS, close=True,
                           reason="No Responders Requires Headers")
            return False
        if not self._authorize(opts):
            return False
        self.connect_received = True
        entry = registry.get(self.path)  # the tree shows the client's name and account
        if entry is not None and entry.ref is self.actor_ref:
            if self.name:
                entry.info["name"] = self.name
            if self.account != "$G":
                entry.info["account"] = self.account
        tell("/server/system", ("client_connect", self.conn_info(False), self.identity))
        if self.verbose:
            self._send_ctl(OK_FRAME)
        return True

    def _authorize(self, opts: dict) -> bool:
        """Run auth for this CONNECT (a second CONNECT runs it again) and take the user's
        permissions; on failure -ERR 'Authorization Violation' and close."""
        if opts.get("account") or opts.get("new_account"):
            self._auth_failed("")
            return False
        auth = self.opts.auth
        self._creds = {k: opts[k] for k in ("user", "pass", "auth_token", "nkey", "sig")
                       if isinstance(opts.get(k), str) and opts[k]}
        if self._operator:
            return self._authorize_jwt(opts)
        if not self._auth_required:
            return True
        identity, detail = authn.authenticate(auth, opts, self._nonce)
        if identity is None:
            self._auth_failed(detail)
            return False
        self._awaiting_auth = False
        if self._auth_timer is not None:
            self._auth_timer.stop()
        if identity.user is not None and not self._creds:  # let in as no_auth_user
            self._creds = {"no_auth_user": identity.user}
        self._take_identity(identity)
        return True

    def _take_identity(self, identity) -> None:
        self.identity = identity
        self.account = (identity.user.account if identity.user is not None else "") or "$G"
        self._mappings_of = None  # the account's mappings are looked up again
        perms = identity.permissions
        self._pub_perms = perms if perms is not None and perms.has_pub else None
        self._pub_cache = {}
        self._sub_perms = perms
        self._responses = authn.Responses(identity.responses) if identity.responses else None
        self._deliver_filter = bool((perms is not None and perms.has_sub_deny) or self._responses)

    def _recheck_auth(self) -> None:
        """A reload: check this connection's own CONNECT credentials against the new auth
        options, as the reference's reloadAuthorization does for each client. A login whose
        user or nkey is no longer listed is closed ("Client Closed", no -ERR; the reference does
        this on every reload, so a login to a single `user`/`password` goes too); credentials
        that no longer pass get -ERR 'Authorization Violation'; the rest take their user's new
        permissions, and subscriptions those deny are removed with a -ERR each."""
        auth = self.opts.auth
        if self._closing or self._operator:
            return  # operator mode: account JWT updates re-check connections (_on_jwt_event)
        if not self.connect_received:
            # not logged in yet: CONNECT is checked against the new options when it comes
            self._auth_required = auth.required
            return
        creds = self._creds or {}
        no_auth = creds.get("no_auth_user")
        nkey = no_auth.nkey if no_auth is not None else creds.get("nkey", "")
        username = no_auth.username if no_auth is not None else creds.get("user", "")
        if nkey or username:
            if nkey:
                user = next((u for u in auth.users if u.nkey == nkey), None)
            else:
                user = next((u for u in auth.users if not u.nkey and u.username == username), None)
            if user is None:
                self._close("Client Closed", flush=True)
                return
        self._auth_required = auth.required
        if not auth.required:
            return  # nothing to check; this connection's permissions stay as they are
        if no_auth is not None:
            # the reference logged it in with the user's own username and password: it stays
            # while that password is unchanged
            if user.password != no_auth.password:
                self._revoked(f'User "{username}"')
                return
            identity = authn.Identity(user, f"{'nkey' if nkey else 'user'}:{nkey or username}")
            self._creds = {"no_auth_user": user}
        else:
            identity, detail = authn.authenticate(auth, creds, self._nonce)
            if identity is None:
                self._revoked(detail)
                return
        new_account = (identity.user.account if identity.user is not None else "") or "$G"
        if new_account != self.account:
            self._close("Client Closed", flush=True)  # its subscriptions live in the old account
            return
        self._take_identity(identity)  # clears the per-subject publish cache
        perms = identity.permissions
        if perms is None or not self.subs:
            return
        who = (f'Nkey "{nkey}"' if nkey else f'User "{username}"' if username else 'User "N/A"')
        for sid, sub in list(self.subs.items()):
            if perms.can_subscribe(sub.subject, sub.queue):
                continue
            text = sub.subject.decode(errors="replace")
            q = f' using queue "{sub.queue.decode(errors="replace")}"' if sub.queue else ""
            sid_text = sid.decode(errors="replace")
            self._remove_sub(sid)
            self._send_err(f'Permissions Violation for Subscription to "{text}"{q} (sid "{sid_text}")')
            log.info('Removed sub "%s"%s (sid "%s") for %s - not authorized', text, q, sid_text, who)

    # -- operator mode (JWT auth) -----------------------------------------------------------

    def _fetch_account(self, raw: bytes) -> bool:
        """A CONNECT whose user JWT names an account this server does not have yet: ask the
        Resolver to fetch it (True: wait for its "account_fetched" answer)."""
        try:
            opts = json.loads(raw)
        except ValueError:
            return False
        token = opts.get("jwt") if isinstance(opts, dict) else None
        if not isinstance(token, str) or not token:
            return False
        account = authn.issuer_account_of(token)
        if account is None or account in self._fetched or self.ctx.accounts.claims(account) is not None:
            return False
        from .runtime import tell

        self._fetched[account] = "fetching jwt failed due to shutdown"  # until answered
        if not tell("/server/resolver", ("fetch", account, self.actor_ref)):
            self._fetched[account] = "account missing"
            return False
        return True

    def _authorize_jwt(self, opts: dict) -> bool:
        from .resolver import account_clients

        identity, detail = authn.authenticate_jwt(self.ctx.accounts, opts, self._nonce, self.host,
                                                  fetched=self._fetched)
        if identity is authn.FETCH:
            identity, detail = None, "Account JWT lookup error: account missing"
        if identity is None:
            if detail.startswith("!"):
                log.error("%s%s", self._prefix(), detail[1:])
            else:
                log.debug("%s%s", self._prefix(), detail)
            self._auth_failed("")
            return False
        self._awaiting_auth = False
        if self._auth_timer is not None:
            self._auth_timer.stop()
        account = identity.user.account
        conns = account_clients(self.ctx).setdefault(account, {})
        limit = int((identity.account_claims.get("limits") or {}).get("conn", 0))
        if self.cid not in conns and limit != -1 and len(conns) >= limit:
            self._account_conns_exceeded()
            return False
        if self._jwt_account and self._jwt_account != account:
            account_clients(self.ctx).get(self._jwt_account, {}).pop(self.cid, None)
        conns[self.cid] = self.actor_ref
        self._jwt_account = account
        self._take_identity(identity)
        self._apply_jwt_limits(identity)
        self._set_expiry(identity)
        user, acc = identity.jwt, identity.account_claims
        log.debug('%sAuthenticated JWT: Client "%s" (claim-name: "%s", claim-tags: []) signed with '
                  '"%s" by Account "%s" (claim-name: "%s", claim-tags: []) signed with "%s"',
                  self._prefix(), user.subject, user.name, user.issuer, account, acc.name, acc.issuer)
        return True

    def _apply_jwt_limits(self, identity) -> bool:
        """Max subscriptions and payload from the claims; False if the connection was closed
        because it is already past the new subscription limit."""
        subs, payload = authn.user_limits(identity)
        self._jwt_max_subs = subs
        mp = self.opts.max_payload
        self.parser.max_payload = min(mp, payload) if payload >= 0 else mp
        if subs >= 0 and len(self.subs) > subs:
            log.error("%s%s", self._prefix(), errors.MAX_SUBSCRIPTIONS)
            self._send_err(errors.MAX_SUBSCRIPTIONS, close=True, reason="Maximum Subscriptions Exceeded")
            return False
        return True

    def _set_expiry(self, identity) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.stop()
            self._expiry_timer = None
        expires = identity.jwt.expires
        if expires:
            loop = gevent.get_hub().loop
            self._expiry_timer = loop.timer(max(expires - time.time(), 0.0))
            self._expiry_timer.start(self._tell_self, ("auth_expired",))

    def _account_conns_exceeded(self) -> None:
        log.error("%smaximum account active connections exceeded", self._prefix())
        self._send_err("maximum account active connections exceeded", close=True,
                       reason="Maximum Account Connections Exceeded")

    def _on_jwt_event(self, message) -> None:
        kind = message[0]
        if kind == "account_fetched":
            self._fetched[message[1]] = message[2]
            if self._resume is not None and not self._closing:
                self._resumed()
            return
        if self._closing or self.identity is None or self.identity.jwt is None:
            return
        if kind == "auth_expired":
            log.debug("%sUser Authentication Expired", self._prefix())
            self._send_err("User Authentication Expired", close=True, reason="Authentication Expired")
        elif kind == "account_expired":
            log.debug("%sAccount Authentication Expired", self._prefix())
            self._send_err("Account Authentication Expired", close=True, reason="Authentication Expired")
        elif kind == "account_kick":
            self._account_conns_exceeded()
        elif kind == "account_update":
            account = self.ctx.accounts.claims(self.account)
            if account is None:
                return
            user = self.identity.jwt
            limits = account.get("limits") or {}
            if user.get("bearer_token") and limits.get("disallow_bearer"):
                log.debug("%sBearer User JWT not allowed", self._prefix())
                self._auth_failed("")
                return
            if authn.user_revoked(account, user):
                log.debug("%sUser Authentication Revoked", self._prefix())
                self._send_err("User Authentication Revoked", close=True, reason="Credentials Revoked")
                return
            if user.issuer != account.subject and user.issuer not in account.signing_keys:
                self._auth_failed("")
                return
            self.identity.account_claims = account
            self._apply_jwt_limits(self.identity)

    def _revoked(self, detail: str) -> None:
        """Credentials a reload no longer accepts: logged with the login's tag, as the reference."""
        log.error("%s%sauthentication error%s", self._prefix(), self._who(),
                  f" - {detail}" if detail else "")
        self._send_err(errors.AUTH_VIOLATION, close=True, reason="Authentication Failure")

    def _auth_failed(self, detail: str) -> None:
        log.error("%sauthentication error%s", self._prefix(), f" - {detail}" if detail else "")
        self._send_err(errors.AUTH_VIOLATION, close=True, reason="Authentication Failure")

    def _can_publish(self, subject: bytes) -> bool:
        """Publish permissions: one dict lookup per message once a subject has been seen;
        allow_responses grants are not cached (they run out)."""
        allowed = self._pub_cache.get(subject)
        if allowed is None:
            allowed = self._pub_perms.can_publish(subject)
            if len(self._pub_cache) >= 1024:
                self._pub_cache.clear()
            self._pub_cache[subject] = allowed
        if not allowed:
            if self._responses is not None and self._responses.allow(subject):
                return True
            text = subject.decode(errors="replace")
            log.error('%s%sPublish Violation - Subject "%s"', self._prefix(), self._who(), text)
            self._send_err(f'Permissions Violation for Publish to "{text}"')
        return allowed

    def _who(self) -> str:
        return f'"{self.account}/{self.identity.label}" - ' if self.identity is not None and self.identity.label else ""

    def _after_pong(self) -> None:
        if not self.first_pong_sent and self.connect_received:
            self.first_pong_sent = True
            if self.protocol >= 1:
                self._send_ctl(self._info_frame(connect_info=True))

    def _on_barrier(self, index: int, token: int) -> None:
        for tok, waiting in self._barrier_queue:
            if tok == token:
                waiting.discard(index)
        self._release_barriers()

    def _release_barriers(self) -> None:
        """Write held control frames up to the first barrier still waiting for a shard."""
        queue = self._barrier_queue
        while queue and not queue[0][1]:
            token = queue.pop(0)[0]
            held = self._deferred or []
            self._deferred = None
            for i, item in enumerate(held):
                if item.__class__ is tuple:  # ("barrier", token): the point a barrier guards
                    if item[1] != token:
                        self._deferred = held[i:]
                        break
                    continue
                if item is PONG_FRAME:
                    self._send(item)
                    self._after_pong()
                elif item is RESUME:
                    self._resumed()
                else:
                    self._send(item)
        if self._deferred is None and self._closing and not self._close_ready:
            self._finish_close()

    def _on_sub(self, subject: bytes, queue, sid: bytes) -> None:
        if not valid_subject(subject) or (queue is not None and not queue.strip()):
            self._send_err(errors.INVALID_SUBJECT)
            return
        if self._sub_perms is not None and not self._sub_perms.can_subscribe(subject, queue):
            text = subject.decode(errors="replace")
            q = f' using queue "{queue.decode(errors="replace")}"' if queue else ""
            log.error('%s%sSubscription Violation - Subject "%s"%s, SID %s', self._prefix(), self._who(),
                      text, f', Queue: "{queue.decode(errors="replace")}"' if queue else "",
                      sid.decode(errors="replace"))
            self._send_err(f'Permissions Violation for Subscription to "{text}"{q}')
            return
        maxsubs = self.opts.max_subscriptions
        if self._jwt_max_subs >= 0 and (not maxsubs or self._jwt_max_subs < maxsubs):
            maxsubs = self._jwt_max_subs
            if len(self.subs) >= maxsubs:
                log.error("%s%s", self._prefix(), errors.MAX_SUBSCRIPTIONS)
                self._send_err(errors.MAX_SUBSCRIPTIONS)
                return
        if maxsubs and len(self.subs) >= maxsubs:
            self._send_err(errors.MAX_SUBSCRIPTIONS)
            return
        if sid in self.subs:
            if self.verbose:
                self._send_ctl(OK_FRAME)
            return
        sub = Subscription(subject, queue, sid, self.actor_ref, self.cid, self.headers,
                           account=self.account)
        self.subs[sid] = sub
        self._tell_shards(sub, True)
        if self.verbose:
            self._send_ctl(OK_FRAME)

    def _on_unsub(self, sid: bytes, max_msgs) -> None:
        sub = self.subs.get(sid)
        if sub is not None:
            if max_msgs is not None and max_msgs > 0 and max_msgs > self.delivered.get(sid, 0):
                self.max_msgs[sid] = max_msgs
                if not sub.limited:
                    limited = sub.with_limit()
                    self.subs[sid] = limited
                    self._tell_shards(sub, False)
                    self._tell_shards(limited, True)
            else:
                self._remove_sub(sid)
        if self.verbose:
            self._send_ctl(OK_FRAME)

    def _remove_sub(self, sid: bytes) -> None:
        if self._trace:
            log.log(TRACE, "%s<-> [DELSUB %s]", self._prefix(), sid.decode(errors="replace"))
        sub = self.subs.pop(sid, None)
        self.max_msgs.pop(sid, None)
        self.delivered.pop(sid, None)
        if sub is not None:
            self._tell_shards(sub, False)

    def _remove_all_subs(self) -> None:
        shards = self.ctx.shards
        ops = [(False, sub) for sub in self.subs.values()]
        self.subs.clear()
        shards.interest_generation += 1
        if not ops:
            return
        for ref in shards.refs:
            if ref is not None:
                try:
                    ref.tell(("subs", ops))
                except pykka.ActorDeadError:
                    pass

    def _tell_shards(self, sub: Subscription, add: bool) -> None:
        if self._pubs:
            self._flush_pubs()  # keep this connection's order: earlier publishes first
        shards = self.ctx.shards
        shards.interest_generation += 1  # at send time: see ShardTable
        ops = [(add, sub)]
        for ref in shards.refs:
            if ref is not None:
                try:
                    ref.tell(("subs", ops))
                except pykka.ActorDeadError:
                    pass

    def _reregister(self, index: int) -> None:
        """A shard restarted: give it our subscriptions again; it lost our barriers too."""
        shards = self.ctx.shards
        ops = [(True, sub) for sub in self.subs.values()]
        shards.interest_generation += 1
        ref = shards.refs[index]
        if ops and ref is not None:
            try:
                ref.tell(("subs", ops))
            except pykka.ActorDeadError:
                pass
        for _, waiting in self._barrier_queue:
            waiting.discard(index)
        self._release_barriers()

    # -- delivery ---------------------------------------------------------------------------

    def _deliver(self, parts: list, count: int, limited) -> None:
        if self._close_ready:
            return
        if self._deliver_filter:
            count = self._filter_delivery(parts, count)
        if limited:
            count = self._count_limited(parts, count, {i for i, _ in limited})
        else:
            sids = parts[1::5]  # (head, sid, mid, payload, CRLF) per message
            if not sids:
                return
            delivered = self.delivered
            if len(sids) == 1:  # a single message (request/reply, a PubAck): no Counter.update
                sid = sids[0]
                delivered[sid] = delivered.get(sid, 0) + 1
            elif len(self.subs) == 1 and sids.count(next(iter(self.subs))) == len(sids):
                delivered[sids[0]] += len(sids)  # the common case, at C speed
            else:
                delivered.update(sids)
            if self.max_msgs:
                for sid, maxm in list(self.max_msgs.items()):
                    if self.delivered[sid] >= maxm:
                        self._remove_sub(sid)
        data = b"".join(parts)
        if not data:
            return
        self.out_msgs += count
        self.out_bytes += len(b"".join(parts[3::5]))  # payload (+headers) sizes; a join is
        # cheaper than summing lengths
        self.last_activity = time.time()
        self._out.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > self.opts.max_pending:
            self.ctx.slow_consumer(self)
            self._close("Slow Consumer (Pending Bytes)", flush=False)

    def _filter_delivery(self, parts: list, count: int) -> int:
        """Subscribe deny lists also hold back messages that reach a wildcard subscription;
        allow_responses remembers the reply subject of each request delivered."""
        perms = self._sub_perms
        deny = perms is not None and perms.has_sub_deny
        responses = self._responses
        for i in range(0, len(parts), 5):
            head = parts[i]
            if not head:
                continue
            subject = head[4:-1] if head[0] == 77 else head[5:-1]  # b"MSG s " / b"HMSG s "
            if deny and perms.deny_delivery(subject):
                parts[i:i + 5] = _BLANK5
                count -= 1
                continue
            if responses is not None:
                toks = parts[i + 2].split()
                if len(toks) == (2 if head[0] == 77 else 3):
                    responses.track(toks[0])
        return count

    def _count_limited(self, parts: list, count: int, limited_at: set) -> int:
        """Count deliveries per sid; drop what arrives for a sid past its UNSUB max (or after it
        was removed), and remove a sid when it reaches its max."""
        delivered = self.delivered
        for i in range(0, len(parts), 5):
            sid = parts[i + 1]
            if i not in limited_at:
                delivered[sid] += 1
                continue
            maxm = self.max_msgs.get(sid)
            if sid not in self.subs or maxm is None or delivered[sid] >= maxm:
                parts[i:i + 5] = _BLANK5
                count -= 1
                if sid in self.subs:
                    self._remove_sub(sid)
                continue
            n = delivered[sid] + 1
            delivered[sid] = n
            if n >= maxm:
                self._remove_sub(sid)
        return count

    def _no_responders(self, subject: bytes, reply: bytes) -> None:
        for sub in self.subs.values():
            if sub.queue is None and subject_matches(sub.subject, reply):
                hdr = b"NATS/1.0 503\r\nNats-Subject: " + subject + b"\r\n\r\n"
                n = str(len(hdr)).encode()
                self._send(b"HMSG " + reply + b" " + sub.sid + b" " + n + b" " + n + b"\r\n" + hdr + b"\r\n")
                return

    # -- writing ----------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        self._out.append(frame)
        self.pending_bytes += len(frame)

    def _send_ctl(self, frame: bytes, pong: bool = False) -> None:
        """A control frame (PONG, +OK, -ERR, INFO) goes out after everything this connection
        published before it has been routed, as on the reference, where processing is
        synchronous: `publish; flush()` then means the messages reached their subscribers."""
        if self._pubs:
            self._flush_pubs()
        if self._inflight:
            self._barrier_token += 1
            token = self._barrier_token
            waiting = set(self._inflight)
            self._inflight.clear()
            refs = self.ctx.shards.refs
            for idx in list(waiting):
                try:
                    refs[idx].tell(("barrier", self.actor_ref, token))
                except (pykka.ActorDeadError, AttributeError):
                    waiting.discard(idx)
            self._barrier_queue.append((token, waiting))
            if self._deferred is None:
                self._deferred = []
            self._deferred.append(("barrier", token))
        if frame is None:  # a resume point for stalled input, not a frame
            frame = RESUME
        if self._deferred is not None:
            self._deferred.append(frame)
            self._release_barriers()
        elif frame is RESUME:
            self._resumed()
        else:
            self._send(frame)
            if pong:
                self._after_pong()

    def _send_err(self, text: str, close: bool = False, reason: str | None = None) -> None:
        self._send_ctl(err_line(text))
        if close:
            self._close(reason or text, flush=True)

    def _flush_out(self) -> None:
        """Write what is queued with one non-blocking send, once per mailbox message. What the
        socket does not take goes to a writer greenlet, bounded by write_deadline; an idle
        connection has no writer."""
        out = self._out
        self._out = []
        data = out[0] if len(out) == 1 else b"".join(out)
        if self._trace and data:
            prefix = self._prefix()
            for line in outbound_frames(data):
                log.log(TRACE, "%s%s", prefix, line)
        try:
            sent = self._raw.send(data) if data else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._out = []
            self._tell_self(("eof", "Write Error"))
            return
        self.pending_bytes -= sent
        if sent < len(data):
            self._out = [data[sent:]]
            self._writing = True
            self._greenlets.append(gevent.spawn(self._writer))
        elif self._close_ready:
            self._shutdown_socket()
            self.stop()

    def _writer(self) -> None:
        """Drain the output the socket could not take at once; then exit."""
        sock = self.sock
        deadline = self.opts.write_deadline or None
        try:
            while self._out:
                out = self._out
                self._out = []
                data = out[0] if len(out) == 1 else b"".join(out)
                try:
                    with gevent.Timeout(deadline):
                        sock.sendall(data)
                except gevent.Timeout:
                    self._write_deadline_exceeded(len(data))
                    return
                self.pending_bytes -= len(data)
        except OSError:
            self._tell_self(("eof", "Write Error"))
            return
        finally:
            self._writing = False
            current = gevent.getcurrent()
            if current in self._greenlets:
                self._greenlets.remove(current)
        if self._close_ready:
            self._shutdown_socket()
            self._tell_self(("stop",))

    def _write_deadline_exceeded(self, attempted: int) -> None:
        """A write blocked past write_deadline: a slow consumer, counted and named as the
        reference does, then closed."""
        self.ctx.stats.slow_consumers += 1
        log.info("%sSlow Consumer Detected: WriteDeadline of %s exceeded with %d chunks of %d "
                 "total bytes.", self._prefix(), go_duration(self.opts.write_deadline), 1, attempted)
        self._tell_self(("eof", "Slow Consumer (Write Deadline)"))

    def _shutdown_socket(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _tell_self(self, message) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass

    def _close(self, reason: str, flush: bool) -> None:
        """Close the connection and stop. With `flush`, what is queued goes out first, including
        control frames still held behind a barrier (so a -ERR follows the MSGs it follows)."""
        if self._closing:
            if not flush:
                self.stop()
            return
        self._closing = True
        self.close_reason = reason
        if not flush:
            self._out = []
            self._shutdown_socket()
            self.stop()
            return
        # a peer that never reads must not keep us: stop anyway after a grace period
        self._greenlets.append(gevent.spawn_later(2.0, self._tell_self, ("stop",)))
        if self._deferred is None:
            self._finish_close()

    def _finish_close(self) -> None:
        self._close_ready = True  # the socket is shut once the output is flushed

    # -- timers -----------------------------------------------------------------------------

    def _ping_tick(self) -> None:
        if self._closing:
            return
        if self.pings_out + 1 > self.opts.ping_max:
            self.ctx.stale_connection(self)
            self._send_err(errors.STALE_CONNECTION, close=True, reason="Stale Connection")
            return
        self.pings_out += 1
        self._rtt_start = time.time()
        self._send_ctl(PING_FRAME)

    # -- introspection ----------------------------------------------------------------------

    def _prefix(self) -> str:
        """The reference's log prefix for a client: `host:port - cid:N - "name" - `."""
        name = f'"{self.name}" - ' if self.name else ""
        return f"{self.host}:{self.port} - cid:{self.cid} - {name}"

    @property
    def in_msgs(self) -> int:
        return self.parser.in_msgs

    @property
    def in_bytes(self) -> int:
        return self.parser.in_bytes

    def _info_frame(self, ldm: bool = False, connect_info: bool = False) -> bytes:
        info = dict(self.ctx.info_base)
        info["client_id"] = self.cid
        info["client_ip"] = self.host
        if self._nonce:
            info["nonce"] = self._nonce
        if ldm:
            info["ldm"] = True
        if connect_info:
            info["connect_info"] = True
            info["remote_account"] = self.account
        return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b" \r\n"

    def conn_info(self, subs: bool = True) -> dict:
        """This connection for /connz (raw values: times in epoch seconds, rtt in seconds; the
        Monitor encodes them). With `subs`, each subscription as the reference's SubDetail
        fields. After close (the closed-connection record) the subscriptions are those it had."""
        info = {
            "cid": self.cid, "kind": "Client", "type": "nats", "ip": self.host, "port": self.port,
            "start": self.start, "last_activity": self.last_activity, "rtt": self.rtt,
            "pending_bytes": max(self.pending_bytes, 0), "in_msgs": self.in_msgs,
            "out_msgs": self.out_msgs, "in_bytes": self.in_bytes, "out_bytes": self.out_bytes,
            "subscriptions": 0, "name": self.name, "lang": self.lang, "version": self.version,
            "account": self.account,
        }
        current = self.subs if self._closed_subs is None else self._closed_subs
        info["subscriptions"] = len(current)
        if subs:
            info["subs"] = [{"subject": sub.subject.decode(errors="replace"),
                             "qgroup": sub.queue.decode(errors="replace") if sub.queue else "",
                             "sid": sid.decode(errors="replace"),
                             "msgs": self.delivered.get(sid, 0),
                             "max": self.max_msgs.get(sid, 0)} for sid, sub in current.items()]
        return info


__all__ = ["Client", "NATS_VERSION"]
