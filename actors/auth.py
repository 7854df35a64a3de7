"""Static authentication at CONNECT: who the client is, and which permissions it gets.

Owns: `authenticate(auth, connect, nonce)` (the reference's processClientOrLeafAuthentication for
static config: nkey users, users with passwords, no_auth_user, a single user/password and a
token, with bcrypt for stored secrets that look like bcrypt), the compiled-permissions cache
per user, and `Responses`, the allow_responses bookkeeping of one connection.

Operator mode (decentralized JWT auth): `authenticate_jwt(table, connect, nonce, host, now)`
walks the reference's chain for a CONNECT with `jwt`: the user JWT decodes and validates, its
issuer account (`issuer_account` when a signing key signed it) is in the AccountsTable (else the
caller fetches it through the Resolver and asks again), the account JWT is signed by a trusted
operator key and not expired, the user's issuer is the account or one of its signing keys,
bearer tokens are allowed by the account, the nonce signature verifies with the user's nkey,
the user is not revoked, and `src`/`times` allow the connection now. The Identity carries the
user's permissions (or the account's default permissions) and its claims (limits, expiry).

Called by the Client actor in its own greenlet; it holds no state of its own besides caches of
immutable values, so it is a module, not an actor. DESIGN.md has an Accounts actor for this; it
arrives with accounts and JWTs (issue 4, part 2), and these functions move behind it then.
"""

from __future__ import annotations

import base64
import hmac
import time

from ..config.auth import AuthOptions, PermissionSpec, ResponsePermission, User, is_bcrypt
from ..protocol import jwt as njwt
from ..protocol.permissions import Permissions


class Identity:
    """The result of a successful authentication."""

    __slots__ = ("user", "permissions", "responses", "label", "kind", "jwt", "account_claims")

    def __init__(self, user: User | None, label: str = "", jwt=None, account_claims=None):
        self.user = user
        self.jwt = jwt  # the user's JWT claims (operator mode), else None
        self.account_claims = account_claims
        self.label = label  # the reference's log tag: "user:a", "nkey:U...", "token"
        spec = user.permissions if user is not None else None
        self.permissions = compile_permissions(spec) if spec is not None else None
        self.responses = spec.responses if spec is not None else None


_compiled: dict = {}


def compile_permissions(spec) -> Permissions | None:
    """Compile once per distinct spec (PermissionSpec is frozen and hashable)."""
    perms = _compiled.get(spec)
    if perms is None:
        perms = Permissions(spec.pub_allow, spec.pub_deny, spec.sub_allow, spec.sub_deny)
        if len(_compiled) > 1024:
            _compiled.clear()
        _compiled[spec] = perms
    return perms


def _off_hub(fn, *args):
    try:
        import gevent

        return gevent.get_hub().threadpool.apply(fn, args)
    except ImportError:  # not running under gevent (pure tests)
        return fn(*args)


def compare_secret(stored: str, given) -> bool:
    """The reference's comparePasswords: bcrypt when the stored secret looks like bcrypt,
    otherwise a constant-time comparison."""
    if not isinstance(given, str):
        given = "" if given is None else str(given)
    if is_bcrypt(stored):
        try:
            import bcrypt

            # bcrypt takes tens of milliseconds by design: run it on a real thread so the hub
            # (every other connection) keeps being served while this login waits
            return _off_hub(bcrypt.checkpw, given.encode(), stored.encode())
        except (ValueError, TypeError):
            return False
    return hmac.compare_digest(stored.encode(), given.encode())


def _decode_sig(sig: str) -> bytes | None:
    sig = sig.strip()
    try:
        return base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (ValueError, TypeError):
        pass
    try:
        return base64.b64decode(sig + "=" * (-len(sig) % 4), validate=True)
    except (ValueError, TypeError):
        return None


def verify_nonce(public_key: str, nonce: str, sig) -> bool:
    if not isinstance(sig, str) or not sig or not nonce:
        return False
    raw = _decode_sig(sig)
    if raw is None:
        return False
    try:
        import nacl.exceptions
        import nacl.signing
        import nkeys

        full = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
        if len(full) != 35 or full[0] != nkeys.PREFIX_BYTE_USER \
                or nkeys.crc16_checksum(full[:-2]) != full[-2:]:
            return False
        nacl.signing.VerifyKey(full[1:33]).verify(nonce.encode(), raw)
        return True
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError):
        return False


def _str(connect: dict, key: str) -> str:
    v = connect.get(key)
    return v if isinstance(v, str) else ""


def authenticate(auth: AuthOptions, connect: dict, nonce: str = "") -> tuple[Identity | None, str]:
    """(identity, "") on success, (None, what-to-log) on failure. Only for a server that
    requires auth or has a no_auth_user; the caller checks that first."""
    username = _str(connect, "user")
    password = _str(connect, "pass")
    token = _str(connect, "auth_token")
    nkey = _str(connect, "nkey")
    users = auth.users
    user = None
    if nkey and auth.has_nkeys:
        user = next((u for u in users if u.nkey == nkey), None)
        if user is None or not _type_ok(user):
            return None, f'Nkey "{nkey}"'
        if not verify_nonce(nkey, nonce, connect.get("sig")):
            return None, f'Nkey "{nkey}"'
        return Identity(user, f"nkey:{nkey}"), ""
    if users:
        if not username and auth.no_auth_user and not nkey and not token and not password:
            user = next((u for u in users if (u.nkey or u.username) == auth.no_auth_user), None)
            if user is not None:
                return Identity(user, f"{'nkey' if user.nkey else 'user'}:{auth.no_auth_user}"), ""
        if username:
            user = next((u for u in users if not u.nkey and u.username == username), None)
            if user is None or not _type_ok(user):
                return None, f'User "{username}"'
            if not compare_secret(user.password, password):
                return None, f'User "{username}"'
            return Identity(user, f"user:{username}"), ""
    if auth.token:
        if compare_secret(auth.token, token):
            return Identity(None, "token"), ""
        return None, 'Token "[REDACTED]"' if token else ""
    if auth.username:
        if username != auth.username or not compare_secret(auth.password, password):
            return None, f'User "{username}"' if username else ""
        return Identity(None, f"user:{username}"), ""
    return None, ""


# -- operator mode --------------------------------------------------------------------------

FETCH = object()  # authenticate_jwt: the issuer account is not known here; fetch it first


def jwt_permissions(nats, default=None) -> PermissionSpec | None:
    """A PermissionSpec from user claims' pub/sub/resp (or an account's default_permissions)."""
    nats = nats or {}
    pub, sub, resp = nats.get("pub") or {}, nats.get("sub") or {}, nats.get("resp")
    lists = [tuple(x.get(k) or ()) or None for x in (pub, sub) for k in ("allow", "deny")]
    if not any(lists) and not resp:
        return default
    responses = None
    if isinstance(resp, dict) and (resp.get("max") or resp.get("ttl")):
        responses = ResponsePermission(max_msgs=int(resp.get("max") or 0),
                                       expires=float(resp.get("ttl") or 0) / 1e9)
    pub_allow, pub_deny, sub_allow, sub_deny = lists
    if responses is not None and pub_allow is None:
        pub_allow = ()
    return PermissionSpec(pub_allow, pub_deny, sub_allow, sub_deny, responses)


def user_revoked(account, user) -> bool:
    """The account revokes this user JWT (by its key, or all, issued at or before the time)."""
    revocations = account.get("revocations") or {}
    for key in (user.subject, "*"):
        at = revocations.get(key)
        if at is not None and user.issued_at <= int(at):
            return True
    return False


def _src_ok(user, host: str) -> bool:
    import ipaddress

    src = user.get("src") or ()
    if isinstance(src, str):
        src = [s for s in src.split(",") if s]
    if not src:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    for cidr in src:
        try:
            if ip in ipaddress.ip_network(cidr.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _times_ok(user, now: float) -> bool:
    times = user.get("times") or ()
    if not times:
        return True
    lt = time.localtime(now)
    if user.get("times_location"):
        try:
            import zoneinfo
            from datetime import datetime

            lt = datetime.fromtimestamp(now, zoneinfo.ZoneInfo(user.get("times_location"))).timetuple()
        except Exception:
            return False
    cur = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec
    for t in times:
        try:
            start = sum(int(x) * m for x, m in zip(t["start"].split(":"), (3600, 60, 1)))
            end = sum(int(x) * m for x, m in zip(t["end"].split(":"), (3600, 60, 1)))
        except (KeyError, ValueError, AttributeError):
            continue
        if (start <= cur <= end) if start <= end else (cur >= start or cur <= end):
            return True
    return False


def issuer_account_of(token: str) -> str | None:
    """The account a user JWT belongs to, without checking anything (None if it does not decode)."""
    try:
        claims = njwt.decode_as(token, njwt.USER)
    except njwt.JWTError:
        return None
    return claims.issuer_account or claims.issuer


def authenticate_jwt(table, connect: dict, nonce: str, host: str = "", now: float | None = None,
                     fetched: dict | None = None):
    """(Identity, "") on success; (None, debug text) on failure; (FETCH, account) when the
    issuer account must be fetched first. `fetched` maps accounts already fetched to the fetch
    error (None = fetched fine), so a failed fetch is not retried for the same CONNECT."""
    now = time.time() if now is None else now
    token = connect.get("jwt")
    if not isinstance(token, str) or not token:
        return None, "Authentication requires a user JWT"
    try:
        user = njwt.decode_as(token, njwt.USER)
    except njwt.JWTError as e:
        return None, f"User JWT not valid: {e}"
    issues = njwt.validate(user, now)
    if issues:
        return None, f"User JWT no longer valid: {{Issues:{issues}}}"
    issuer = user.issuer_account or user.issuer
    account = table.claims(issuer)
    if account is None:
        if fetched is not None and issuer in fetched:
            err = fetched[issuer] or "account missing"
            return None, f"Account JWT lookup error: {err}"
        return FETCH, issuer
    if account.issuer not in table.trusted_keys:
        return None, "Account JWT not signed by trusted operator"
    if user.issuer != account.subject and user.issuer not in account.signing_keys:
        return None, "User JWT issuer is not known"
    if account.expires and now > account.expires:
        return None, "Account JWT has expired"
    limits = account.get("limits") or {}
    if user.get("bearer_token") and limits.get("disallow_bearer"):
        return None, "Account does not allow bearer tokens"
    types = user.get("allowed_connection_types") or ()
    if types and "STANDARD" not in types:
        return None, "Connection type not allowed"
    if not user.get("bearer_token"):
        sig = connect.get("sig")
        if not isinstance(sig, str) or not sig:
            return None, "Signature missing"
        raw = _decode_sig(sig)
        if raw is None:
            return None, "Signature not valid base64"
        if not verify_nonce(user.subject, nonce, sig):
            return None, "Signature not verified"
    if user_revoked(account, user):
        return None, "User authentication revoked"
    if not _src_ok(user, host):
        return None, f"!Bad src Ip {host}"
    if not _times_ok(user, now):
        return None, "!Outside connect times"
    defaults = jwt_permissions(account.get("default_permissions"))
    spec = jwt_permissions(user.nats, defaults)
    scoped = next((k for k in account.get("signing_keys") or () if isinstance(k, dict)
                   and k.get("key") == user.issuer and k.get("kind") == "user_scope"), None)
    if scoped is not None:
        spec = jwt_permissions(scoped.get("template") or {}, None)
    u = User(nkey=user.subject, permissions=spec, account=issuer,
             connection_types=tuple(types))
    return Identity(u, f"{account.name}/jwt:{user.subject}", jwt=user, account_claims=account), ""


def user_limits(identity) -> tuple[int, int]:
    """(max subscriptions, max payload) from the user (or its scoped signing key's template) and
    account claims; -1 = no limit from claims."""
    user, account = identity.jwt, identity.account_claims
    subs = int(user.get("subs", -1) if user.get("subs") is not None else -1)
    payload = int(user.get("payload", -1) if user.get("payload") is not None else -1)
    for k in account.get("signing_keys") or ():
        if isinstance(k, dict) and k.get("key") == user.issuer and k.get("kind") == "user_scope":
            tmpl = k.get("template") or {}
            subs = int(tmpl.get("subs", -1))
            payload = int(tmpl.get("payload", -1))
    limits = account.get("limits") or {}

    def least(a, b):
        if a == -1:
            return b
        if b == -1:
            return a
        return min(a, b)

    return least(subs, int(limits.get("subs", 0))), least(payload, int(limits.get("payload", 0)))


def _type_ok(user: User) -> bool:
    return not user.connection_types or "STANDARD" in user.connection_types


class Responses:
    """allow_responses for one connection: reply subjects of requests it received, each good
    for `max_msgs` publishes within `expires` seconds (the reference's c.replies)."""

    __slots__ = ("max_msgs", "expires", "replies")

    def __init__(self, spec):
        self.max_msgs = spec.max_msgs
        self.expires = spec.expires
        self.replies: dict[bytes, list] = {}

    def track(self, reply: bytes, now: float | None = None) -> None:
        if len(self.replies) > 10000:
            self.prune(now)
        self.replies[reply] = [now if now is not None else time.monotonic(), 0]

    def allow(self, subject: bytes, now: float | None = None) -> bool:
        entry = self.replies.get(subject)
        if entry is None:
            return False
        now = now if now is not None else time.monotonic()
        entry[1] += 1
        if (self.max_msgs > 0 and entry[1] > self.max_msgs) or \
                (self.expires > 0 and now - entry[0] > self.expires):
            del self.replies[subject]
            return False
        return True

    def prune(self, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        for k in [k for k, (t, n) in self.replies.items()
                  if (self.expires > 0 and now - t > self.expires) or (self.max_msgs > 0 and n >= self.max_msgs)]:
            del self.replies[k]


__all__ = ["FETCH", "Identity", "Responses", "authenticate", "authenticate_jwt", "compare_secret",
           "issuer_account_of", "jwt_permissions", "user_limits", "user_revoked", "verify_nonce"]
