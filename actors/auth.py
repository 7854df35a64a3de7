"""Static authentication at CONNECT: who the client is, and which permissions it gets.

Owns: `authenticate(auth, connect, nonce)` (the reference's processClientOrLeafAuthentication for
static config: nkey users, users with passwords, no_auth_user, a single user/password and a
token, with bcrypt for stored secrets that look like bcrypt), the compiled-permissions cache
per user, and `Responses`, the allow_responses bookkeeping of one connection.

Called by the Client actor in its own greenlet; it holds no state of its own besides caches of
immutable values, so it is a module, not an actor. DESIGN.md has an Accounts actor for this; it
arrives with accounts and JWTs (issue 4, part 2), and these functions move behind it then.
"""

from __future__ import annotations

import base64
import hmac
import time

from ..config.auth import AuthOptions, User, is_bcrypt
from ..protocol.permissions import Permissions


class Identity:
    """The result of a successful authentication."""

    __slots__ = ("user", "permissions", "responses", "label", "kind")

    def __init__(self, user: User | None, label: str = ""):
        self.user = user
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


def compare_secret(stored: str, given) -> bool:
    """The reference's comparePasswords: bcrypt when the stored secret looks like bcrypt,
    otherwise a constant-time comparison."""
    if not isinstance(given, str):
        given = "" if given is None else str(given)
    if is_bcrypt(stored):
        try:
            import bcrypt

            return bcrypt.checkpw(given.encode(), stored.encode())
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


__all__ = ["Identity", "Responses", "authenticate", "compare_secret", "verify_nonce"]
