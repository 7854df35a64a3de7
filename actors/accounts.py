"""Accounts: the table of accounts a server runs, and the actor that carries traffic across them.

Every connection lives in one account (`$G` unless its user belongs to an account block); the
shards keep one subject space per account, so accounts are isolated by construction. The only
ways across are an account's exports imported by another, and they are this actor's work:

- **stream import** (B imports A's stream `events.>` with `prefix: p` or `to: x.>`): the actor
  subscribes to `events.>` in A; each message it gets is published again in B under the mapped
  subject (`p.events.1`, or `to` with the wildcard tokens carried over in order).
- **service import** (B imports A's service `req.x` as `ask`): the actor subscribes to `ask` in
  B; a request is published in A on `req.x` (mapped by A's subject mappings, as the reference
  does) with a fresh reply subject `_R_.<id>.<n>`, which the
  actor subscribes to in A first (so the answer cannot overtake it); the answer is published in
  B to the requester's own reply. Singleton responses end the mapping after the first answer;
  stream and chunked ones keep it until RESPONSE_TTL passes.

`AccountsTable` is immutable data built from the options (a reload builds a new one and the
Config actor swaps it into the context): account names, the system account, and which accounts
have JetStream with which limits. Readers take it from `ctx.accounts`.

In operator mode (decentralized JWT auth) the accounts are the account JWTs the Resolver
(actors/resolver.py) holds: each is named by its public key, its exports/imports and JetStream
limits come from its claims (an import only when its exporter authorizes it: a public export,
the importer's key at the export's `account_token_position`, or a `token_req` export with a
valid activation token in the import, protocol/jwt.py `check_import`; an activation's expiry
drops the import at that time), and `claims(name)` gives the decoded JWT (limits, revocations,
signing keys) to authentication and to the Clients. A pushed update makes the Resolver build a
new table (`AccountsTable(options, jwt_claims)`), swap it in and tell this actor ("options",)
so the imports are rebuilt. The JWT's `mappings` become the account's subject mappings;
Clients take the new table at their next read.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time

import gevent

from ..config.accounts import (DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT, RESPONSE_TYPES, AccountSpec,
                               Export, Import, response_type)
from ..protocol import jwt as njwt
from ..protocol.transform import MapDest, MappingSpec, SubjectMapper
from .internal import InternalClient
from .runtime import Actor

log = logging.getLogger("actor_nats")

RESPONSE_TTL = 120.0  # seconds a stream/chunked service response mapping lives (the reference's 2m)


class AccountsTable:
    """Which accounts exist, which is the system account, JetStream per account, and each
    account's subject mappings (an immutable SubjectMapper, protocol/transform.py)."""

    def __init__(self, options, jwt_claims: dict | None = None):
        acc = options.accounts
        op = getattr(options, "operator", None)
        self.operator_mode = bool(op is not None and op.enabled)
        self._claims: dict = {}
        self._mappers: dict = {}  # account -> SubjectMapper, for the accounts that have mappings
        if self.operator_mode:
            self._claims = dict(jwt_claims or {})
            self.trusted_keys = frozenset(op.all_trusted_keys())
            self.no_system_account = False
            self.system_account = op.system_account or acc.system_account
            # (account, Import) -> when its activation token expires: the Accounts actor
            # drops the import then, as the reference's activation expiry timer does
            self.activation_expiry: dict = {}
            specs = jwt_specs(self._claims, expiries=self.activation_expiry)
            self.specs = {a.name: a for a in specs}
            for name, claims in self._claims.items():
                mapper = SubjectMapper(jwt_mappings(claims))
                if mapper:
                    self._mappers[name] = mapper
            self._js = {a.name: a.jetstream for a in specs
                        if a.jetstream is not None and a.name != self.system_account}
            return
        self.trusted_keys = frozenset()
        self.activation_expiry = {}
        self.specs = {a.name: a for a in acc.accounts}
        for name, specs in [(GLOBAL_ACCOUNT, getattr(acc, "mappings", ()))] + \
                [(a.name, a.mappings) for a in acc.accounts]:
            mapper = SubjectMapper(specs) if specs else None
            if mapper:
                self._mappers[name] = mapper
        self.no_system_account = acc.no_system_account
        self.system_account = "" if acc.no_system_account else (acc.system_account or DEFAULT_SYSTEM_ACCOUNT)
        explicit_js = any(a.jetstream is not None for a in acc.accounts)
        self._js = {a.name: a.jetstream for a in acc.accounts
                    if a.jetstream is not None and a.name != self.system_account}
        if not explicit_js:
            self._js[GLOBAL_ACCOUNT] = {}  # JetStream on: the global account gets it

    def mapper(self, name: str):
        """The account's SubjectMapper, or None when it has no mappings."""
        return self._mappers.get(name)

    def claims(self, name: str):
        """The account JWT's decoded claims (operator mode), else None."""
        return self._claims.get(name)

    def all_claims(self) -> dict:
        return dict(self._claims)

    def names(self) -> list[str]:
        out = [GLOBAL_ACCOUNT] + [n for n in self.specs if n != GLOBAL_ACCOUNT]
        if self.system_account and self.system_account not in out:
            out.append(self.system_account)
        return out

    def exists(self, name: str) -> bool:
        return name == GLOBAL_ACCOUNT or name in self.specs or name == self.system_account

    def jetstream_limits(self, name: str) -> dict | None:
        """None: JetStream is not enabled for the account (10039); {} enabled without limits."""
        return self._js.get(name)


# -- accounts from JWT claims ------------------------------------------------------------------

_JS_LIMITS = (("mem_storage", "max_memory"), ("disk_storage", "max_storage"),
              ("streams", "max_streams"), ("consumer", "max_consumers"),
              ("max_ack_pending", "max_ack_pending"),
              ("mem_max_stream_bytes", "memory_max_stream_bytes"),
              ("disk_max_stream_bytes", "storage_max_stream_bytes"))


def jwt_jetstream_limits(claims) -> dict | None:
    """JetStream limits of an account JWT: None when it has none (memory and disk storage
    both 0, no tiers), as the reference's IsJSEnabled decides."""
    limits = claims.get("limits") or {}
    tiered = limits.get("tiered_limits") or {}
    if tiered:
        limits = next(iter(tiered.values())) or {}
    if not (limits.get("mem_storage") or limits.get("disk_storage")):
        return None
    out = {name: int(limits.get(key, 0) or 0) for key, name in _JS_LIMITS}
    out["max_bytes_required"] = bool(limits.get("max_bytes_required", False))
    return out


def _jwt_import(i: dict) -> Import | None:
    """An Import from one entry of an account JWT's `imports` (None if it names nothing)."""
    if not isinstance(i, dict) or not i.get("subject") or not i.get("account"):
        return None
    local = i.get("local_subject") or ""
    to = i.get("to") or ""
    if i.get("type") == "service":
        return Import(account=i["account"], subject=i["subject"], service=True, to=local or to)
    return Import(account=i["account"], subject=i["subject"], service=False,
                  to=local, prefix="" if local else to)


def jwt_spec(claims) -> AccountSpec:
    """An AccountSpec (exports, imports, JetStream) from an account JWT's claims; the imports
    as written, not yet checked against the exporters (`jwt_specs` does that)."""
    exports = []
    for e in claims.get("exports") or ():
        if not isinstance(e, dict) or not e.get("subject"):
            continue
        rt = RESPONSE_TYPES.get(str(e.get("response_type", "Singleton")).lower(), "Singleton")
        exports.append(Export(subject=e["subject"], service=e.get("type") == "service", response_type=rt))
    imports = tuple(imp for imp in map(_jwt_import, claims.get("imports") or ()) if imp is not None)
    return AccountSpec(name=claims.subject, exports=tuple(exports), imports=imports,
                       jetstream=jwt_jetstream_limits(claims))


def jwt_mappings(claims) -> tuple:
    """An account JWT's `mappings` ({subject: [{subject, weight, cluster}]}) as MappingSpecs; a
    weight of 0 (or none) is 100, as the jwt library's GetWeight. What does not build is left
    out (SubjectMapper), as the reference ignores a mapping it cannot add."""
    raw = claims.get("mappings") if hasattr(claims, "get") else None
    out = []
    for src, dests in (raw or {}).items() if isinstance(raw, dict) else ():
        if not isinstance(src, str) or not isinstance(dests, list):
            continue
        out.append(MappingSpec(src, tuple(
            MapDest(str(d.get("subject", "")), int(d.get("weight") or 100), str(d.get("cluster") or ""))
            for d in dests if isinstance(d, dict) and isinstance(d.get("weight", 0), int))))
    return tuple(out)


def jwt_specs(claims_by_name: dict, now: float | None = None,
              expiries: dict | None = None) -> list:
    """Specs of every account JWT, with only the imports the exporter authorizes (the
    reference leaves the others out and logs `Error adding stream import to account [...]:
    stream import not authorized` at debug level): the exporter must be known and have a
    matching export, and a private one (`token_req`) needs a valid, unrevoked activation token
    for the importer (protocol/jwt.py `check_import`). `expiries`, if given, receives
    (account, Import) -> activation expiry (unix seconds) for the imports that expire."""
    out = []
    for name, claims in claims_by_name.items():
        spec = jwt_spec(claims)
        keep = []
        for raw in claims.get("imports") or ():
            imp = _jwt_import(raw)
            if imp is None:
                continue
            exporter = claims_by_name.get(imp.account)
            if exporter is None:
                log.debug("Can't locate account [%s] for import of [%s] %s", imp.account,
                          imp.subject, "service" if imp.service else "stream")
                continue
            reason, expires = njwt.check_import(exporter, name, raw, now)
            if reason:
                what = "service" if imp.service else "stream"
                log.debug("Error adding %s import to account [%s/%s]: %s import not authorized",
                          what, name, claims.name, what)
                log.debug("  (%s import of %s from %s: %s)", what, imp.subject, imp.account, reason)
                continue
            if expires and expiries is not None:
                expiries[(name, imp)] = expires
            keep.append(imp)
        out.append(AccountSpec(name=spec.name, exports=spec.exports, imports=tuple(keep),
                               jetstream=spec.jetstream))
    return out


def map_subject(subject: str, pattern: str, to: str) -> str:
    """`to` with `pattern`'s wildcard tokens of `subject` carried over in order (a `>` takes
    the rest); a literal `to` replaces the subject."""
    if "*" not in to and ">" not in to:
        return to
    stoks = subject.split(".")
    ptoks = pattern.split(".")
    captured: list[str] = []
    rest: list[str] = []
    for i, p in enumerate(ptoks):
        if p == "*":
            captured.append(stoks[i])
        elif p == ">":
            rest = stoks[i:]
    out = []
    it = iter(captured)
    for t in to.split("."):
        if t == "*":
            out.append(next(it, "*"))
        elif t == ">":
            out.extend(rest or [">"])
        else:
            out.append(t)
    return ".".join(out)


class Accounts(Actor, InternalClient):
    """/server/accounts: the exports and imports between accounts (see module docstring)."""

    kind = "accounts"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.internal_init(ctx)
        self._responses: dict[bytes, tuple] = {}  # reply sid -> (deadline, singleton)
        self._requests: dict[str, tuple] = {}  # mapped reply -> (importer, reply, local subject, sid)
        self._reply_ids = itertools.count(1)
        self._prefix = "_R_." + secrets.token_hex(3)
        self._sweeper = None
        self._expiry_timer = None  # re-subscribes when the next activation token expires

    def started(self) -> None:
        self._subscribe_imports()
        self._sweeper = gevent.spawn(self._sweep)

    def cleanup(self) -> None:
        if self._sweeper is not None:
            self._sweeper.kill(block=False)
        if self._expiry_timer is not None:
            self._expiry_timer.kill(block=False)
        self.iunsubscribe_all()

    def describe(self) -> dict:
        return {"accounts": len(self.ctx.accounts.names())}

    def handle(self, message):
        if self.internal_handle(message):
            return None
        kind = message[0]
        if kind in ("options", "activation_expired"):  # a reload, or an activation ran out
            self.iunsubscribe_all()
            self._responses.clear()
            self._requests.clear()
            self._subscribe_imports()
            return None
        if kind == "sweep":
            now = time.monotonic()
            for sid, (deadline, _) in list(self._responses.items()):
                if deadline < now:
                    self._responses.pop(sid, None)
                    self.iunsubscribe(sid)
            for mapped, entry in list(self._requests.items()):
                if entry[3] not in self._responses:
                    del self._requests[mapped]
            return None
        return super().handle(message)

    def _subscribe_imports(self) -> None:
        specs = tuple(self.ctx.accounts.specs.values())
        expiry = getattr(self.ctx.accounts, "activation_expiry", None) or {}
        now = time.time()
        next_expiry = 0
        for spec in specs:
            for imp in spec.imports:
                expires = expiry.get((spec.name, imp), 0)
                if expires:
                    if expires <= now:
                        log.debug("Activation for %s import of %s by %s expired",
                                  "service" if imp.service else "stream", imp.subject, spec.name)
                        continue
                    next_expiry = min(next_expiry or expires, expires)
                if imp.service:
                    local = imp.to or imp.subject
                    rtype = response_type(specs, imp)
                    self.isubscribe(local, self._service_forwarder(spec.name, imp, local, rtype),
                                    account=spec.name)
                else:
                    self.isubscribe(imp.subject, self._stream_forwarder(spec.name, imp),
                                    account=imp.account)
        if self._expiry_timer is not None:
            self._expiry_timer.kill(block=False)
            self._expiry_timer = None
        if next_expiry:
            self._expiry_timer = gevent.spawn_later(max(0.0, next_expiry - now) + 0.05,
                                                    self._tell_expired)

    def _tell_expired(self) -> None:
        try:
            self.actor_ref.tell(("activation_expired",))
        except Exception:
            pass

    def _stream_forwarder(self, importer: str, imp):
        def forward(subject, reply, hdr, data):
            if imp.prefix:
                target = imp.prefix + "." + subject
            elif imp.to:
                target = map_subject(subject, imp.subject, imp.to)
            else:
                target = subject
            self.ipublish(target, data, reply, hdr, account=importer)
        return forward

    def _service_forwarder(self, importer: str, imp, local: str, rtype: str):
        def forward(subject, reply, hdr, data):
            target = map_subject(subject, local, imp.subject) if ("*" in imp.subject or ">" in imp.subject) \
                else imp.subject
            mapped = None
            if reply:
                mapped = f"{self._prefix}.{next(self._reply_ids)}"
                singleton = rtype == "Singleton"
                sid = None

                def answer(_s, r, h, d):
                    self.ipublish(reply, d, r, h, account=importer)
                    self._requests.pop(mapped, None)
                    if singleton and sid is not None:
                        self._responses.pop(sid, None)
                        self.iunsubscribe(sid)

                sid = self.isubscribe(mapped, answer, account=imp.account)
                self._responses[sid] = (time.monotonic() + RESPONSE_TTL, singleton)
                if len(self._requests) > 10000:
                    self._requests.clear()
                self._requests[mapped] = (importer, reply, subject, sid)
            mapper = self.ctx.accounts.mapper(imp.account)  # the exporter's mappings apply
            if mapper is not None:
                chosen = mapper.select(target.encode())
                if chosen is not None:
                    if not chosen:
                        return  # a weighted mapping dropped it
                    target = chosen
            self.ipublish(target, data, mapped, hdr, account=imp.account, no_responders=bool(reply))
        return forward

    def on_no_responders(self, subject: str, reply: str) -> None:
        """Nobody in the exporting account serves the request: the requester gets the 503
        status it would get for a subject without subscribers in its own account."""
        entry = self._requests.pop(reply, None)
        if entry is None:
            return
        importer, original, local, sid = entry
        self._responses.pop(sid, None)
        self.iunsubscribe(sid)
        hdr = b"NATS/1.0 503\r\nNats-Subject: " + local.encode() + b"\r\n\r\n"
        self.ipublish(original, b"", None, hdr, account=importer)

    def _sweep(self) -> None:
        while True:
            gevent.sleep(10.0)
            try:
                self.actor_ref.tell(("sweep",))
            except Exception:
                return


__all__ = ["Accounts", "AccountsTable", "jwt_jetstream_limits", "jwt_spec", "map_subject"]
