"""The Resolver: the account JWTs of operator mode (decentralized auth), as an actor.

/server/resolver exists when the config names an operator. It owns the account JWTs the server
knows and is the only writer of them:

- MEMORY: the JWTs of `resolver_preload`; an update on the claims subjects replaces a known
  account's JWT (`jwt update skipped` for an unknown one), as the reference's accountClaimUpdate.
- FULL (the "nats resolver"): `resolver_preload` and the `<pubkey>.jwt` files of `dir`; pushes
  are validated and written there (newer JWTs only replace older ones); `allow_delete` renames
  a deleted account's file to `<pubkey>.jwt.deleted`. As an internal client of the system
  account it answers `$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE`, the old
  `$SYS.ACCOUNT.<acc>.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP`,
  `$SYS.REQ.CLAIMS.LIST` and `$SYS.REQ.CLAIMS.DELETE`, with the reference's JSON replies.

Whenever its JWTs change it builds a new `AccountsTable` (actors/accounts.py) from them, swaps
it into `ctx.accounts` (readers never see a half-built table), tells the Accounts actor to
rebuild imports, and tells each connection of a changed account to re-apply its account's
claims (revocations, limits; connections past a lowered `conn` limit are told to close, newest
first, as the reference keeps the oldest).

A Client whose user names an account the table lacks asks ("fetch", account, client ref): the
Resolver publishes a lookup request in the system account (other servers, or anything in the
system account, may answer with the JWT) and answers the client ("account_fetched", account,
error) when an answer comes or `resolver.timeout` passes. The wait is a timer, never a sleep:
the Resolver keeps serving meanwhile. Must not: block, or trust a JWT it did not verify.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time

import gevent
import pykka

from ..config.reload import go_duration
from ..protocol import jwt as njwt
from .accounts import AccountsTable
from .internal import InternalClient
from .runtime import Actor, registry, tell

log = logging.getLogger("actor_nats")

UPDATE_OLD = "$SYS.ACCOUNT.*.CLAIMS.UPDATE"
UPDATE_NEW = "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE"
CLAIMS_UPDATE = "$SYS.REQ.CLAIMS.UPDATE"
LOOKUP = "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP"
LIST = "$SYS.REQ.CLAIMS.LIST"
DELETE = "$SYS.REQ.CLAIMS.DELETE"


def account_clients(ctx) -> dict:
    """account -> {cid: client ref} of the connections bound to JWT accounts (kept by the
    Clients themselves as they log in and close)."""
    table = getattr(ctx, "account_clients", None)
    if table is None:
        table = ctx.account_clients = {}
    return table


def rfc3339(t: float) -> str:
    ns = int(t * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}".rstrip("0") + "Z"


class Resolver(Actor, InternalClient):
    kind = "resolver"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.internal_init(ctx)
        self.op = ctx.options.operator
        self.res = self.op.resolver
        self.tokens: dict[str, str] = {}
        self.claims: dict[str, njwt.Claims] = {}
        self._fetches: dict[str, dict] = {}  # account -> {waiters, timer, sid, start}
        self._inbox = "$SYS._INBOX." + secrets.token_hex(8)
        self._seq = 0

    def describe(self) -> dict:
        return {"type": self.res.type if self.res else "", "accounts": len(getattr(self, "tokens", {}))}

    # -- lifecycle -----------------------------------------------------------------------------

    def started(self) -> None:
        full = self.res is not None and self.res.type == "FULL"
        if full:
            os.makedirs(self.res.dir, exist_ok=True)
            for name in sorted(os.listdir(self.res.dir)):
                if not name.endswith(".jwt"):
                    continue
                try:
                    with open(os.path.join(self.res.dir, name), encoding="utf-8") as f:
                        token = f.read().strip()
                    self._remember(name[:-4], token)
                except (OSError, njwt.JWTError) as e:
                    log.error("DirResolver - could not load %s: %s", name, e)
        for pub, token in self.op.preload:
            try:
                if full:
                    self._save_if_newer(pub, token)
                else:
                    self._remember(pub, token)
            except (OSError, njwt.JWTError) as e:
                log.error("Preloaded account [%s] not valid: %s", pub, e)
                continue
            claims = self.claims.get(pub)
            if claims is not None:
                issues = njwt.validate(claims)
                if issues:
                    log.warning("Account [%s] has validation issues:", pub)
                    for issue in issues:
                        log.warning("  - %s", issue)
        self._publish_table(changed=())
        sys_acc = self.ctx.accounts.system_account
        if not sys_acc:
            return
        for subject in (UPDATE_OLD, UPDATE_NEW):
            self.isubscribe(subject, self._on_update, account=sys_acc)
        if self.res is not None and self.res.nats_based:
            self.isubscribe(CLAIMS_UPDATE, self._on_claims_update, account=sys_acc)
            self.isubscribe(LOOKUP, self._on_lookup, account=sys_acc)
            self.isubscribe(LIST, self._on_list, account=sys_acc)
            self.isubscribe(DELETE, self._on_delete, account=sys_acc)
            self.isubscribe(self._inbox + ".*", self._on_lookup_reply, account=sys_acc)

    def cleanup(self) -> None:
        for f in self._fetches.values():
            if f.get("timer") is not None:
                f["timer"].kill(block=False)
        try:
            self.iunsubscribe_all()
        except Exception:
            pass

    def handle(self, message):
        if self.internal_handle(message):
            return None
        kind = message[0]
        if kind == "fetch":
            self._fetch(message[1], message[2])
            return None
        if kind == "fetch_timeout":
            self._fetch_done(message[1], "fetching jwt timed out")
            return None
        if kind == "jwts":
            return dict(self.tokens)
            return None
        return super().handle(message)

    # -- the store -----------------------------------------------------------------------------

    def _remember(self, pub: str, token: str) -> njwt.Claims:
        claims = njwt.decode_as(token, njwt.ACCOUNT)
        self.tokens[pub] = token
        self.claims[pub] = claims
        return claims

    def _path(self, pub: str) -> str:
        return os.path.join(self.res.dir, pub + ".jwt")

    def _save(self, pub: str, token: str) -> bool:
        """Store (FULL: write the file); True when something changed."""
        if self.tokens.get(pub) == token:
            return False
        if self.res is not None and self.res.type == "FULL":
            path = self._path(pub)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(token)
            os.replace(tmp, path)
        self._remember(pub, token)
        return True

    def _save_if_newer(self, pub: str, token: str) -> bool:
        new = njwt.decode(token)
        old = self.claims.get(pub)
        if old is not None:
            if old.jti == new.jti or old.issued_at > new.issued_at:
                return False
            if new.subject != pub:
                raise njwt.JWTError("jwt subject nkey and provided nkey do not match")
        return self._save(pub, token)

    def _publish_table(self, changed) -> None:
        """Swap a new AccountsTable in, rebuild imports, tell the changed accounts' clients."""
        old = self.ctx.accounts
        table = AccountsTable(self.ctx.options, self.claims)
        self.ctx.accounts = table
        tell("/server/accounts", ("options", self.ctx.options))
        new_names = set(table.names()) - set(old.names())
        if new_names and self.ctx.options.jetstream.enabled:
            for name in sorted(new_names):  # the JetStream API subscribes each new account's API
                tell("/server/jetstream/api", ("account_enabled", name))
        clients = account_clients(self.ctx)
        for pub in changed:
            conns = clients.get(pub) or {}
            claims = table.claims(pub)
            limit = int((claims.get("limits") or {}).get("conn", 0)) if claims is not None else -1
            for n, cid in enumerate(sorted(conns)):
                ref = conns[cid]
                if claims is None:
                    msg = ("account_expired",)
                else:
                    msg = ("account_kick",) if 0 <= limit <= n else ("account_update", pub)
                try:
                    ref.tell(msg)
                except pykka.ActorDeadError:
                    pass

    # -- replies -------------------------------------------------------------------------------

    def _server_info(self) -> dict:
        self._seq += 1
        ctx = self.ctx
        return {"name": ctx.server_name, "host": ctx.options.host, "id": ctx.server_id,
                "ver": ctx.info_base.get("version", ""),
                "feature_flags": {"js_ack_fc_v2": False, "js_api_reply_v2": False,
                                  "js_raft_delete_range": True, "js_snapshot_sources": False},
                "jetstream": bool(ctx.options.jetstream.enabled), "flags": 0, "seq": self._seq,
                "time": rfc3339(time.time())}

    def _respond(self, reply, account: str, message: str, err: str | None = None) -> None:
        """The reference's respondToUpdate: log, then {"server", "data"|"error"}."""
        if err is None:
            log.debug("%s - %s" if account else "%s", *((message, account) if account else (message,)))
        elif account:
            log.error("%s - %s - %s", message, account, err)
        else:
            log.error("%s - %s", message, err)
        if not reply:
            return
        body: dict = {"server": self._server_info()}
        if err is None:
            data = {}
            if account:
                data["account"] = account
            data["code"] = 200
            data["message"] = message
            body["data"] = data
        else:
            error = {}
            if account:
                error["account"] = account
            error["code"] = 500
            error["description"] = f"{message} - {err}"
            body["error"] = error
        self.ipublish(reply, json.dumps(body, separators=(",", ":")).encode(),
                      account=self.ctx.accounts.system_account)

    def _validate(self, claims: njwt.Claims) -> str | None:
        issues = njwt.validate(claims)
        return f"validation errors: [{' '.join(issues)}]" if issues else None

    def _strict_issuer(self, claims: njwt.Claims) -> bool:
        return any(o.get("strict_signing_key_usage") and claims.issuer == o.subject for o in self.op.operators)

    # -- handlers ------------------------------------------------------------------------------

    def _on_update(self, subject, reply, hdr, data) -> None:
        """$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE and the old $SYS.ACCOUNT.<acc>.CLAIMS.UPDATE."""
        toks = subject.split(".")
        pub = toks[3] if len(toks) == 6 else toks[2] if len(toks) == 5 else ""
        if not pub:
            return
        token = data.decode(errors="replace").strip()
        nats_based = self.res is not None and self.res.nats_based
        if not nats_based and not data:
            self._respond(reply, pub, "jwt update error", "request body is empty")
            return
        try:
            claims = njwt.decode_as(token, njwt.ACCOUNT)
        except njwt.JWTError as e:
            self._respond(reply, "n/a" if nats_based else pub, "jwt update resulted in error", str(e))
            return
        if nats_based:
            err = self._validate(claims)
            if err:
                self._respond(reply, claims.subject, "jwt validation failed", err)
                return
        if claims.subject != pub:
            self._respond(reply, pub, "jwt update resulted in error", "subject does not match jwt content")
            return
        if not nats_based and pub not in self.tokens:
            self._respond(reply, pub, "jwt update skipped")
            return
        self._store_update(reply, claims, token)

    def _on_claims_update(self, subject, reply, hdr, data) -> None:
        token = data.decode(errors="replace").strip()
        try:
            claims = njwt.decode_as(token, njwt.ACCOUNT)
        except njwt.JWTError as e:
            self._respond(reply, "n/a", "jwt update resulted in error", str(e))
            return
        if self._strict_issuer(claims):
            self._respond(reply, claims.subject, "jwt update resulted in error",
                          "operator requires issuer to be a signing key")
            return
        err = self._validate(claims)
        if err:
            self._respond(reply, claims.subject, "jwt validation failed", err)
            return
        self._store_update(reply, claims, token)

    def _store_update(self, reply, claims: njwt.Claims, token: str) -> None:
        pub = claims.subject
        if self._strict_issuer(claims):
            self._respond(reply, pub, "jwt update resulted in error",
                          "operator requires issuer to be a signing key")
            return
        try:
            changed = self._save(pub, token)
        except OSError as e:
            self._respond(reply, pub, "jwt update resulted in error", str(e))
            return
        if changed:
            log.debug("Updating account claims: %s/%s", pub, claims.name)
            self._publish_table(changed=(pub,))
        self._respond(reply, pub, "jwt updated")

    def _on_lookup(self, subject, reply, hdr, data) -> None:
        if not reply:
            return
        toks = subject.split(".")
        if len(toks) != 6:
            return
        token = self.tokens.get(toks[3])
        if token is None:
            log.debug('DirResolver - Could not find account "%s"', toks[3])
            if not self._fetches.get(toks[3]):  # our own lookup: let it wait for others
                self.ipublish(reply, b"", account=self.ctx.accounts.system_account)
            return
        self.ipublish(reply, token.encode(), account=self.ctx.accounts.system_account)

    def _on_list(self, subject, reply, hdr, data) -> None:
        if not reply:
            return
        ids = sorted(self.tokens)
        log.debug("list request responded with %d account ids", len(ids))
        body = {"server": self._server_info(), "data": ids}
        self.ipublish(reply, json.dumps(body, separators=(",", ":")).encode(),
                      account=self.ctx.accounts.system_account)

    def _on_delete(self, subject, reply, hdr, data) -> None:
        subj = ""
        err = None
        ids: list = []
        try:
            gk = njwt.decode(data.decode(errors="replace").strip())
            subj = gk.subject
        except njwt.JWTError as e:
            err = str(e)
            gk = None
        if gk is not None:
            op_keys = set(self.op.all_trusted_keys())
            if not self.res.allow_delete:
                err = "delete must be enabled in server config"
            elif subj != gk.issuer:
                err = "not self signed"
            elif gk.issuer not in op_keys:
                err = "not trusted"
            else:
                payload = json.loads(njwt._b64(gk.token.split(".")[1]))  # noqa: SLF001
                accounts = (payload.get("nats") or {}).get("data", payload.get("data", {}))
                accounts = accounts.get("accounts") if isinstance(accounts, dict) else None
                if not isinstance(accounts, list):
                    err = "malformed request"
                else:
                    ids = accounts
                    for acc in ids:
                        if not isinstance(acc, str) or not njwt.is_public_key(acc, njwt.ACCOUNT):
                            err = "malformed request"
                            break
                        if acc == self.ctx.accounts.system_account:
                            err = "not allowed to delete system account"
                            break
        if err is not None:
            self._respond(reply, "", f"delete accounts request by {subj} failed", err)
            return
        deleted = []
        errs = []
        for acc in ids:
            try:
                path = self._path(acc)
                if os.path.exists(path):
                    os.replace(path, path + ".deleted")
                if acc in self.tokens:
                    deleted.append(acc)
                self.tokens.pop(acc, None)
                self.claims.pop(acc, None)
            except OSError as e:
                errs.append(str(e))
        if deleted:
            for acc in deleted:
                log.debug("Disable account %s due to remove", acc)
            self._publish_table(changed=tuple(deleted))
        if errs:
            self._respond(reply, "", f"deleted {len(ids) - len(errs)} accounts, failed for {len(errs)}",
                          "\n".join(errs))
        else:
            self._respond(reply, "", f"deleted {len(ids)} accounts")

    # -- fetching an account this server does not have ------------------------------------------

    def _fetch(self, account: str, client_ref) -> None:
        if account in self.tokens:
            self._answer(client_ref, account, None)
            return
        if self.res is None or not self.res.nats_based or not self.ctx.accounts.system_account:
            log.warning("Account fetch failed: account missing")
            self._answer(client_ref, account, "account missing")
            return
        pending = self._fetches.get(account)
        if pending is not None:
            pending["waiters"].append(client_ref)
            return
        n = secrets.token_hex(4)
        pending = {"waiters": [client_ref], "start": time.monotonic(), "reply": f"{self._inbox}.{n}",
                   "timer": gevent.spawn_later(self.res.timeout, self._tell_self, ("fetch_timeout", account))}
        self._fetches[account] = pending
        self.ipublish(f"$SYS.REQ.ACCOUNT.{account}.CLAIMS.LOOKUP", b"", pending["reply"],
                      account=self.ctx.accounts.system_account)

    def _on_lookup_reply(self, subject, reply, hdr, data) -> None:
        account = next((a for a, p in self._fetches.items() if p["reply"] == subject), None)
        if account is None:
            return
        if not data:
            return  # another server does not have it either: wait for the rest or the timeout
        token = data.decode(errors="replace").strip()
        try:
            claims = njwt.decode_as(token, njwt.ACCOUNT)
            if claims.subject != account:
                raise njwt.JWTError("jwt subject nkey and provided nkey do not match")
            if self._save_if_newer(account, token):
                self._publish_table(changed=(account,))
        except (njwt.JWTError, OSError) as e:
            self._fetch_done(account, str(e))
            return
        self._fetch_done(account, None)

    def _fetch_done(self, account: str, err: str | None) -> None:
        pending = self._fetches.pop(account, None)
        if pending is None:
            return
        pending["timer"].kill(block=False)
        took = time.monotonic() - pending["start"]
        if took > 1.0:
            log.warning("Account [%s] fetch took %s", account, go_duration(took))
        else:
            log.debug("Account [%s] fetch took %s", account, go_duration(took))
        if err is not None:
            log.warning("Account fetch failed: %s", err)
        for ref in pending["waiters"]:
            self._answer(ref, account, err)

    def _answer(self, ref, account: str, err: str | None) -> None:
        try:
            ref.tell(("account_fetched", account, err))
        except pykka.ActorDeadError:
            pass

    def _tell_self(self, message) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass



def log_operators(options) -> None:
    """The reference's startup lines for operator mode."""
    op = options.operator
    if op.operators:
        log.info("Trusted Operators")
    for o in op.operators:
        log.info('  System  : "%s"', o.audience)
        log.info('  Operator: "%s"', o.name)
        log.info("  Issued  : %s", _go_time(o.issued_at))
        log.info("  Expires : %s", _go_time(o.expires) if o.expires else "Never")
    if op.operators and not op.system_account:
        log.warning("Trusted Operators should utilize a System Account")
    if op.resolver is not None and op.resolver.type == "FULL":
        log.info("Managing all jwt in exclusive directory %s", op.resolver.dir)


def _go_time(t: int) -> str:
    """Go's time.Time String() for a Unix time, in local time: `2026-11-27 18:22:39 +0000 UTC`."""
    lt = time.localtime(t)
    off = lt.tm_gmtoff
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return time.strftime("%Y-%m-%d %H:%M:%S", lt) + f" {sign}{off // 3600:02d}{off % 3600 // 60:02d} {lt.tm_zone}"


__all__ = ["Resolver", "account_clients", "log_operators"]
