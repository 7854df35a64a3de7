"""System: the system account's events and requests, as an internal client (/server/system).

It owns what the reference's internal system client does ($SYS, reference/NATS.md §9), in the
system account only (`system_account`, default `$SYS`; nothing at all with `no_system_account`):
a client of any other account never sees this traffic.

Events it publishes:
- `$SYS.ACCOUNT.<acc>.CONNECT` / `.DISCONNECT` (client_connect / client_disconnect advisories),
  told by each Client as it logs in and as it closes; after each, the account's connection
  counts on `$SYS.ACCOUNT.<acc>.SERVER.CONNS` and the old `$SYS.SERVER.ACCOUNT.<acc>.CONNS`
  (coalesced: one gather of the clients per burst, not one per connection);
- `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` when a login fails;
- `$SYS.SERVER.<id>.STATSZ`, 250ms after start and then doubling up to every 10s, and on request;
- `$SYS.SERVER.<id>.LAMEDUCK` and `.SHUTDOWN` (the server tells it; shutdown waits for it);
- actor-nats' own `$SYS.SERVER.<id>.CLIENT.SLOW_CONSUMER`: which connection was closed as a slow
  consumer, in which account, how many bytes were pending and when (the reference only counts).

Requests it answers (reply = `{"server": {...}, "data": {...}}` or `"error": {code, description}`):
`$SYS.REQ.SERVER.PING` (STATSZ), `$SYS.REQ.SERVER.PING.<X>` and `$SYS.REQ.SERVER.<id>.<X>` for the
monitoring endpoints (the body holds the endpoint's options and the filters server_name, cluster,
host, tags, domain: a filter that does not match means no answer), `.RELOAD` (as SIGHUP),
`.KICK` and `.LDM` ({"cid": N}), actor-nats' `.KILL` ({"path", "reason"}: crash an actor, as
/actorz/kill, always allowed from the system account), `$SYS.REQ.ACCOUNT.<acc>.{CONNZ, SUBSZ,
INFO, STATZ, CONNS}`, `$SYS.REQ.ACCOUNT.PING.STATZ`, `$SYS.REQ.USER.INFO`; and, in every other
account (what the reference's automatic imports give), `$SYS.REQ.SERVER.PING.CONNZ`,
`$SYS.REQ.ACCOUNT.PING.CONNZ` / `.STATZ` and `$SYS.REQ.USER.INFO`, each about that account only.

The endpoint data comes from monitor.Endpoints, the same dicts as HTTP. Computing it means asking
other actors, so each request is computed on a helper greenlet, which hands the answer back to
this actor to publish; nothing asks this actor except the server at shutdown (no ask cycle).
"""

from __future__ import annotations

import json
import logging
import random
import string
import time

import gevent
import pykka

from .. import NATS_VERSION
from ..protocol.subjects import subject_matches
from .internal import InternalClient
from .monitor import BadRequest, Endpoints, _json_body, go_time
from .runtime import Actor, CrashRequest, registry

log = logging.getLogger("actor_nats")

FALLBACK_SYSTEM_ACCOUNT = "$SYS"
STATSZ_FIRST = 0.25  # the reference's first statsz, then doubling ...
STATSZ_MAX = 10.0  # ... up to every 10s
CONNS_DELAY = 0.05  # account connection-count events: one per account per burst
ENDPOINTS = ("STATSZ", "VARZ", "SUBSZ", "CONNZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "ACCOUNTZ", "JSZ",
             "HEALTHZ", "IDZ")
ACCOUNT_REQS = ("CONNZ", "SUBSZ", "INFO", "STATZ", "CONNS")
CONNECT_TYPE = "io.nats.server.advisory.v1.client_connect"
DISCONNECT_TYPE = "io.nats.server.advisory.v1.client_disconnect"
CONNS_TYPE = "io.nats.server.advisory.v1.account_connections"
SLOW_CONSUMER_TYPE = "io.actor-nats.advisory.v1.slow_consumer"
_NUID = string.ascii_letters + string.digits


def _tell(ref, message) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass


def _event_id() -> str:
    return "".join(random.choices(_NUID, k=22))


class NoAnswer(Exception):
    """The request gets no reply (a filter that does not match, a body the reference ignores)."""


class ReqError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


# -- request bodies: the reference's option structs (JSON) as the HTTP query dicts -------------

_STATE = {0: "open", 1: "closed", 2: "all"}


def _query(endpoint: str, opts: dict) -> dict:
    """The HTTP query of `endpoint` that means what the `$SYS` request options mean."""
    q: dict[str, str] = {}

    def flag(key: str, qkey: str | None = None) -> None:
        v = opts.get(key)
        if v is not None and not isinstance(v, bool):
            raise ReqError(400, f"json: cannot unmarshal {_go_type(v)} into Go struct field "
                                f"options.{key} of type bool")
        if v:
            q[qkey or key] = "true"

    def num(key: str, qkey: str | None = None) -> None:
        v = opts.get(key)
        if v is None:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            raise ReqError(400, f"json: cannot unmarshal {_go_type(v)} into Go struct field "
                                f"options.{key} of type int")
        q[qkey or key] = str(int(v))

    def text(key: str, qkey: str | None = None) -> None:
        v = opts.get(key)
        if v is None:
            return
        if not isinstance(v, str):
            raise ReqError(400, f"json: cannot unmarshal {_go_type(v)} into Go struct field "
                                f"options.{key} of type string")
        if v:
            q[qkey or key] = v

    if endpoint == "CONNZ":
        text("sort")
        flag("auth")
        flag("subscriptions", "subs")
        if opts.get("subscriptions_detail"):
            q["subs"] = "detail"
        num("offset")
        num("limit")
        num("cid")
        state = opts.get("state")
        if state is not None:
            if state not in _STATE:
                raise ReqError(400, f"json: cannot unmarshal {_go_type(state)} into Go struct "
                                    "field options.state of type server.ConnState")
            q["state"] = _STATE[state]
        text("user")
        text("acc")
        text("filter_subject")
        text("mqtt_client")
    elif endpoint == "SUBSZ":
        flag("subscriptions", "subs")
        num("offset")
        num("limit")
        text("test")
        text("account", "acc")
    elif endpoint in ("ROUTEZ", "GATEWAYZ", "LEAFZ"):
        flag("subscriptions", "subs")
        if opts.get("subscriptions_detail"):
            q["subs"] = "detail"
        text("account", "acc")
    elif endpoint == "ACCOUNTZ":
        text("account", "acc")
    elif endpoint == "JSZ":
        text("account", "acc")
        for key in ("accounts", "streams", "consumers", "config", "raft"):
            flag(key)
        flag("leader_only", "leader-only")
        num("offset")
        num("limit")
    elif endpoint == "HEALTHZ":
        for key in ("js-enabled-only", "js-server-only", "js-meta-only", "details"):
            flag(key)
        for key in ("account", "stream", "consumer"):
            text(key)
    return q


def _go_type(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _decode(data: bytes) -> dict:
    """A request body: empty means no options; bad JSON is a 400 error."""
    if not data.strip():
        return {}
    try:
        opts = json.loads(data)
    except ValueError as e:
        raise ReqError(400, f"invalid JSON: {e}") from None
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise ReqError(400, f"json: cannot unmarshal {_go_type(opts)} into Go value of type "
                            "server.EventFilterOptions")
    return opts


def client_info(info: dict, user: str = "", *, rtt: bool = False, server: str = "",
                stop: float | None = None, name_tag: bool = False) -> dict:
    """A connection (its Client's conn_info) as the reference's ClientInfo JSON, in its field
    order: start, host, id, acc, user, name, lang, ver, rtt, server, stop, name_tag, kind,
    client_type; the optional ones as each event carries them (the connect and disconnect
    events, the JetStream audit and snapshot advisories)."""
    acc = info.get("account", "$G")
    c = {"start": go_time(info["start"]), "host": info["ip"], "id": info["cid"], "acc": acc}
    if user:
        c["user"] = user
    for key, field in (("name", "name"), ("lang", "lang"), ("ver", "version")):
        if info.get(field):
            c[key] = info[field]
    if rtt:
        ns = int(info.get("rtt", 0) * 1e9)
        if ns:
            c["rtt"] = ns
    if server:
        c["server"] = server
    if stop is not None:
        c["stop"] = go_time(stop)
    if name_tag:
        c["name_tag"] = acc
    c["kind"] = info.get("kind", "Client")
    c["client_type"] = info.get("type", "nats")
    return c


class System(Actor, InternalClient):
    kind = "system"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.internal_init(ctx)
        self.endpoints = Endpoints(ctx)
        self.seq = 0
        self.account = ""  # the system account subscribed in ("" = none)
        self._table = None  # the AccountsTable the subscriptions were made for
        self._ticker = None
        self._conns_timer = None
        self._dirty: set[str] = set()  # accounts whose connection counts changed
        self._users: dict[int, tuple[str, str]] = {}  # cid -> (user, account) of open logins

    def describe(self) -> dict:
        return {"account": self._system_account()}

    def started(self) -> None:
        self._resubscribe()
        self._ticker = gevent.spawn(self._statsz_loop)

    def cleanup(self) -> None:
        for g in (self._ticker, self._conns_timer):
            if g is not None:
                g.kill(block=False)
        self.iunsubscribe_all()

    # -- mailbox ----------------------------------------------------------------------------

    def handle(self, message):
        if self.internal_handle(message):
            return None
        kind = message[0]
        if kind == "publish":  # (subject, payload, account) computed on a helper greenlet
            self._publish(message[1], message[2], message[3])
        elif kind == "client_connect":
            self._on_client_connect(message[1], message[2])
        elif kind == "client_closed":
            self._on_client_closed(*message[1:])
        elif kind == "statsz_tick":
            self._resubscribe()
            if self.account:
                self._spawn(self._send_statsz, f"$SYS.SERVER.{self.ctx.server_id}.STATSZ", self.account)
        elif kind == "conns_flush":
            self._conns_timer = None
            dirty, self._dirty = self._dirty, set()
            if self.account and dirty:
                self._spawn(self._send_conns, sorted(dirty))
        elif kind == "lame_duck":
            if self.account:
                self._publish(f"$SYS.SERVER.{self.ctx.server_id}.LAMEDUCK",
                              _json_body(self._server_info(), indent=False), self.account)
        elif kind == "shutdown":  # asked by the server before it closes the connections
            if self.account:
                subject = f"$SYS.SERVER.{self.ctx.server_id}.SHUTDOWN"
                self._publish(subject, _json_body(self._server_info(), indent=False), self.account)
                self._drain(subject)
            return True
        else:
            return super().handle(message)
        return None

    def _spawn(self, fn, *args) -> None:
        gevent.spawn(self._guarded, fn, *args)

    @staticmethod
    def _guarded(fn, *args) -> None:
        try:
            fn(*args)
        except NoAnswer:
            pass
        except Exception:  # a bug answering one request must not take the actor down
            log.exception("system: %s failed", getattr(fn, "__name__", fn))

    def _send(self, subject: str, data, account: str) -> None:
        """From a helper greenlet: hand a payload (bytes, or a dict completed with the server
        block here) to the actor, which publishes it."""
        payload = data if isinstance(data, bytes) else _json_body(data, indent=False)
        try:
            self.actor_ref.tell(("publish", subject, payload, account))
        except pykka.ActorDeadError:
            pass

    def _publish(self, subject: str, payload: bytes, account: str) -> None:
        self.ipublish(subject, payload, account=account)

    def _drain(self, subject: str) -> None:
        """Wait until our shard has routed what we published (its mailbox is in order), so
        the subscribers get it before their connections close."""
        shards = self.ctx.shards
        ref = shards.refs[shards.shard_for(self.icid)]
        if ref is not None:
            try:
                ref.ask(("subsz", self.account), timeout=1.0)
            except Exception:
                pass

    # -- accounts and subscriptions ---------------------------------------------------------

    def _system_account(self) -> str:
        table = getattr(self.ctx, "accounts", None)
        if table is None:
            return FALLBACK_SYSTEM_ACCOUNT
        return table.system_account

    def _resubscribe(self) -> None:
        """Subscribe for the accounts as they are now (at start, and after a reload swapped the
        accounts table)."""
        table = getattr(self.ctx, "accounts", None)
        if table is self._table and self._table is not None:
            return
        self._table = table
        self.iunsubscribe_all()
        self.account = sys_acc = self._system_account()
        if not sys_acc:
            return
        sid = self.ctx.server_id
        sub = self.isubscribe
        sub("$SYS.REQ.SERVER.PING", self._req(self._server_req, "STATSZ", sys_acc, True), account=sys_acc)
        for name in ENDPOINTS:
            sub(f"$SYS.REQ.SERVER.PING.{name}", self._req(self._server_req, name, sys_acc, True),
                account=sys_acc)
            sub(f"$SYS.REQ.SERVER.{sid}.{name}", self._req(self._server_req, name, sys_acc, False),
                account=sys_acc)
        for name, fn in (("RELOAD", self._reload), ("KICK", self._kick), ("LDM", self._ldm),
                         ("KILL", self._kill)):
            sub(f"$SYS.REQ.SERVER.{sid}.{name}", self._req(fn, name, sys_acc, False), account=sys_acc)
        for name in ACCOUNT_REQS:
            sub(f"$SYS.REQ.ACCOUNT.*.{name}", self._req(self._account_req, name, sys_acc, None),
                account=sys_acc)
        sub("$SYS.REQ.USER.INFO", self._req(self._user_info, "INFO", sys_acc, None), account=sys_acc)
        # every other account: what the reference's automatic imports give it
        names = table.names() if table is not None else []
        for acc in names:
            if acc == sys_acc:
                continue
            sub("$SYS.REQ.SERVER.PING.CONNZ", self._req(self._own_account, "CONNZ", acc, None), account=acc)
            sub("$SYS.REQ.ACCOUNT.PING.CONNZ", self._req(self._own_account, "CONNZ", acc, None), account=acc)
            sub("$SYS.REQ.ACCOUNT.PING.STATZ", self._req(self._own_account, "STATZ", acc, None), account=acc)
            sub("$SYS.REQ.USER.INFO", self._req(self._user_info, "INFO", acc, None), account=acc)

    def _req(self, fn, name: str, account: str, ping):
        """A subscription callback: the request is answered on a helper greenlet."""
        def callback(subject, reply, hdr, data):
            if reply:
                self._spawn(self._answer, fn, name, account, ping, subject, reply, data)
        return callback

    def _answer(self, fn, name, account, ping, subject, reply, data) -> None:
        try:
            out = fn(name, account, ping, subject, data, reply)
        except ReqError as e:
            out = {"server": self._server_info(),
                   "error": {"code": e.code, "description": e.description}}
        except BadRequest as e:
            out = {"server": self._server_info(), "data": None,
                   "error": {"code": 500, "description": str(e)}}
        self._send(reply, out, account)

    # -- the server block of every message ----------------------------------------------------

    def _server_info(self) -> dict:
        o = self.ctx.options
        self.seq += 1
        js = bool(o.jetstream.enabled)
        info = {"name": self.ctx.server_name, "host": o.host, "id": self.ctx.server_id,
                "ver": NATS_VERSION}
        if js and o.jetstream.domain:
            info["domain"] = o.jetstream.domain
        info.update({"jetstream": js, "flags": 1 if js else 0, "seq": self.seq,
                     "time": go_time(time.time())})
        return info

    def _filtered_out(self, opts: dict) -> bool:
        """The reference's EventFilterOptions: a request for other servers gets no answer."""
        o = self.ctx.options
        if opts.get("server_name") and opts["server_name"] != self.ctx.server_name:
            return True
        if opts.get("cluster"):
            return True  # no cluster here
        if opts.get("host") and opts["host"] != o.host:
            return True
        if opts.get("tags"):
            return True  # no server tags here
        if opts.get("domain") and opts["domain"] != (o.jetstream.domain if o.jetstream.enabled else ""):
            return True
        return False

    # -- $SYS.REQ.SERVER ----------------------------------------------------------------------

    def _server_req(self, name, account, ping, subject, data, reply):
        try:
            opts = _decode(data)
        except ReqError:
            if ping:
                raise NoAnswer() from None
            raise
        if self._filtered_out(opts):
            raise NoAnswer()
        if name == "IDZ":
            return {"name": self.ctx.server_name, "host": self.ctx.options.host, "id": self.ctx.server_id}
        if name == "STATSZ":
            return {"server": self._server_info(), "statsz": self.endpoints.statsz()}
        query = _query(name, opts)
        result = getattr(self.endpoints, "ep_" + name.lower())(query)
        status, body = result[0], result[-1]
        if name == "HEALTHZ":  # the status code travels in the body here
            body = {"status": body.get("status"), "status_code": int(status.split()[0]),
                    **{k: v for k, v in body.items() if k != "status"}}
        return {"server": self._server_info(), "data": body}

    def _send_statsz(self, subject: str, account: str) -> None:
        self._send(subject, {"server": self._server_info(), "statsz": self.endpoints.statsz()}, account)

    def _statsz_loop(self) -> None:
        delay = STATSZ_FIRST
        while True:
            gevent.sleep(delay)
            delay = min(delay * 2, STATSZ_MAX)
            try:
                self.actor_ref.tell(("statsz_tick",))
            except pykka.ActorDeadError:
                return

    def _reload(self, name, account, ping, subject, data, reply):
        ref = registry.ref("/server/config")
        if ref is None:
            raise ReqError(500, "config actor is not running")
        log.info("Reloading configuration on a $SYS request")
        try:
            result = ref.ask(("reload",), timeout=30)
        except Exception as e:
            raise ReqError(500, f"reload failed: {e}") from None
        if isinstance(result, tuple) and result and not result[0]:
            raise ReqError(500, f"failed to reload config: {result[1]}")
        return {"server": self._server_info()}

    def _client_ref(self, data: bytes):
        opts = _decode(data)
        cid = opts.get("cid")
        if not data.strip() or not isinstance(cid, int) or isinstance(cid, bool):
            raise NoAnswer()  # the reference does not answer a request without a cid
        return registry.ref(f"/server/clients/cid-{cid}")

    def _kick(self, name, account, ping, subject, data, reply):
        ref = self._client_ref(data)
        if ref is None:
            raise ReqError(500, "no such client or leafnode id")
        ref.tell(("close", "Kicked"))
        return {"server": self._server_info()}

    def _ldm(self, name, account, ping, subject, data, reply):
        ref = self._client_ref(data)
        if ref is None:
            raise ReqError(500, "no such client id")
        ref.tell(("ldm",))
        return {"server": self._server_info()}

    def _kill(self, name, account, ping, subject, data, reply):
        """actor-nats' own: crash an actor as a real fault would (always allowed from the system
        account, as /actorz/kill is when debug.allow_kill is on)."""
        opts = _decode(data)
        path = opts.get("path")
        if not isinstance(path, str) or not path:
            raise ReqError(400, 'a "path" is required')
        reason = opts.get("reason") or "killed on purpose"
        ref = registry.ref(path)
        if ref is None:
            raise ReqError(404, f"no actor at {path!r}")
        log.warning("Killing actor %s on a $SYS request: %s", path, reason)
        # after the answer is handed over: killing this actor itself still answers first
        gevent.spawn(_tell, ref, CrashRequest(str(reason)))
        return {"server": self._server_info(), "data": {"killed": path, "reason": str(reason)}}

    # -- $SYS.REQ.ACCOUNT and USER ----------------------------------------------------------

    def _account_req(self, name, account, ping, subject, data, reply):
        acc = subject.split(".")[3]
        opts = _decode(data)
        if self._filtered_out(opts):
            raise NoAnswer()
        if acc == "PING" and name == "STATZ":
            return {"server": self._server_info(), "data": self.endpoints.ep_accstatz(
                {"unused": "true" if opts.get("include_unused") else ""})[1]}
        return self._about_account(name, acc, opts)

    def _own_account(self, name, account, ping, subject, data, reply):
        opts = _decode(data)
        if self._filtered_out(opts):
            raise NoAnswer()
        return self._about_account(name, account, opts)

    def _about_account(self, name: str, acc: str, opts: dict) -> dict:
        e = self.endpoints
        if name == "INFO":
            detail = e.account_detail(acc)
            if detail is None:
                return {"server": self._server_info(), "data": None,
                        "error": {"code": 500, "description": f"Account {acc} does not exist"}}
            return {"server": self._server_info(), "data": detail}
        if name in ("CONNZ", "SUBSZ"):
            query = _query(name, opts)
            query["acc"] = acc
            if name == "SUBSZ":
                query["subs"] = "true"  # the reference lists an account's subscriptions here
            data = getattr(e, "ep_" + name.lower())(query)[1]
            if name == "CONNZ" and not e._account_exists(acc):
                data = dict(data, server_id="", connections=None)  # as the reference answers
            return {"server": self._server_info(), "data": data}
        if name == "STATZ":
            query = {"accs": acc, "unused": "true" if opts.get("include_unused") else ""}
            return {"server": self._server_info(), "data": e.ep_accstatz(query)[1]}
        if name == "CONNS":
            return self._conns_event(acc)
        raise NoAnswer()

    def _user_info(self, name, account, ping, subject, data, reply):
        """Who am I: the requester is the connection of `account` subscribed to the reply
        subject (its inbox), and its login is the one it connected with."""
        open_conns, _, _ = self.endpoints._clients_view(True)
        rep = reply.encode()
        for c in open_conns:
            if c.get("account", "$G") != account:
                continue
            if any(subject_matches(s["subject"].encode(), rep) for s in c.get("subs", ())):
                user = self._users.get(c["cid"], ("", account))[0]
                return {"server": self._server_info(),
                        "data": {"user": user, "account": account, "account_name": account}}
        raise NoAnswer()

    # -- client events ----------------------------------------------------------------------

    def _client_json(self, info: dict, user: str, stop: float | None = None) -> dict:
        return client_info(info, user, rtt=stop is not None, stop=stop, name_tag=True)

    @staticmethod
    def _user_of(identity, fallback: str = "") -> str:
        user = getattr(identity, "user", None)
        if user is None:
            return fallback
        return user.nkey or user.username or fallback

    def _on_client_connect(self, info: dict, identity) -> None:
        self._resubscribe()
        user = self._user_of(identity)
        acc = info.get("account", "$G")
        self._users[info["cid"]] = (user, acc)
        if not self.account:
            return
        now = time.time()
        event = {"type": CONNECT_TYPE, "id": _event_id(), "timestamp": go_time(now),
                 "server": self._server_info(), "client": self._client_json(info, user)}
        self._publish(f"$SYS.ACCOUNT.{acc}.CONNECT", _json_body(event, indent=False), self.account)
        self._account_changed(acc)

    def _on_client_closed(self, info: dict, reason: str, identity, attempted_user: str = "",
                          connected: bool = True) -> None:
        known = self._users.pop(info["cid"], None)
        if not self.account:
            return
        auth_failed = reason == "Authentication Failure"
        if not connected and not auth_failed and known is None:
            return  # never logged in: no account saw it
        now = time.time()
        user = self._user_of(identity, attempted_user)
        acc = info.get("account", "$G")
        client = self._client_json(info, user, stop=now)
        event = {"type": DISCONNECT_TYPE, "id": _event_id(), "timestamp": go_time(now),
                 "server": self._server_info(), "client": client,
                 "sent": {"msgs": info.get("in_msgs", 0), "bytes": info.get("in_bytes", 0)},
                 "received": {"msgs": info.get("out_msgs", 0), "bytes": info.get("out_bytes", 0)},
                 "reason": reason}
        if auth_failed:
            self._publish(f"$SYS.SERVER.{self.ctx.server_id}.CLIENT.AUTH.ERR",
                          _json_body(event, indent=False), self.account)
            event = dict(event, id=_event_id(), server=self._server_info())
        if reason.startswith("Slow Consumer"):
            advisory = {"type": SLOW_CONSUMER_TYPE, "id": _event_id(), "timestamp": go_time(now),
                        "server": self._server_info(), "client": client,
                        "pending_bytes": info.get("pending_bytes", 0),
                        "max_pending": self.ctx.options.max_pending, "reason": reason}
            self._publish(f"$SYS.SERVER.{self.ctx.server_id}.CLIENT.SLOW_CONSUMER",
                          _json_body(advisory, indent=False), self.account)
        self._publish(f"$SYS.ACCOUNT.{acc}.DISCONNECT", _json_body(event, indent=False), self.account)
        if known is not None:
            self._account_changed(acc)  # a failed login never counted in its account

    def _account_changed(self, acc: str) -> None:
        self._dirty.add(acc)
        if self._conns_timer is None:
            self._conns_timer = gevent.spawn_later(CONNS_DELAY, self._tell_self, ("conns_flush",))

    def _tell_self(self, message) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass

    def _conns_event(self, acc: str) -> dict:
        now = time.time()
        event = {"type": CONNS_TYPE, "id": _event_id(), "timestamp": go_time(now),
                 "server": self._server_info()}
        event.update(self.endpoints.account_statz(acc))
        return event

    def _send_conns(self, accounts: list) -> None:
        for acc in accounts:
            event = self._conns_event(acc)
            self._send(f"$SYS.SERVER.ACCOUNT.{acc}.CONNS", event, self.account)
            event = dict(event, server=self._server_info())
            self._send(f"$SYS.ACCOUNT.{acc}.SERVER.CONNS", event, self.account)
