"""The `authorization` block and `no_auth_user`: typed, validated, with the reference's messages.

Owns: `AuthOptions` (single user/password, token, users list with nkey users, timeout,
no_auth_user), `User`, `PermissionSpec` (publish/subscribe allow/deny lists, allow_responses),
and converting a parsed config map into them with the reference's errors (nested keys carry
their own `file:line:col`, as the reference reports them). Also the start-time checks
(`no_auth_user` must name a configured user).

Pure: strings in, frozen values out. Subject syntax is checked here with the same rule as
protocol/subjects.py (config does not import protocol); matching lives in protocol/permissions.py.
No accounts yet: every user is in the global account.

Secrets: `AuthOptions` holds passwords and tokens. A deep copy of it (`dataclasses.asdict`, which
/configz uses) yields a redacted summary instead, so the running options never show them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from .where import go_type as _go_type, item_pos as _item_pos, pos as _pos


CONNECTION_TYPES = ("STANDARD", "WEBSOCKET", "MQTT", "MQTT_WS", "LEAFNODE", "LEAFNODE_WS", "IN_PROCESS")
DEFAULT_AUTH_TIMEOUT = 2.0
DEFAULT_RESPONSE_EXPIRES = 120.0  # allow_responses: true = 1 response within 2m

_TOKEN = r"[^. \t\r\n\f]+"
_VALID_SUBJECT = re.compile(r"(?:(?!>\.)" + _TOKEN + r"\.)*" + _TOKEN).fullmatch


class AuthConfigError(Exception):
    """A bad authorization block; str() is the message, already prefixed with its position."""


@dataclass(frozen=True)
class ResponsePermission:
    max_msgs: int = 1
    expires: float = DEFAULT_RESPONSE_EXPIRES


@dataclass(frozen=True)
class PermissionSpec:
    """Lists as written in the config; None means "no list" (not the same as an empty one).
    Subscribe entries may carry a queue: "subject queue"."""

    pub_allow: tuple | None = None
    pub_deny: tuple | None = None
    sub_allow: tuple | None = None
    sub_deny: tuple | None = None
    responses: ResponsePermission | None = None


@dataclass(frozen=True)
class User:
    username: str = ""
    password: str = ""
    nkey: str = ""
    permissions: PermissionSpec | None = None
    connection_types: tuple = ()
    account: str = ""  # "" = the global account $G (or the account block that declared it)

    def __repr__(self) -> str:
        return f"User({self.nkey or self.username!r})"


class AuthOptions:
    """Immutable. Not a dataclass on purpose: `dataclasses.asdict(options)` must not recurse into
    it (it deep-copies it instead, and a deep copy is the redacted `summary()`)."""

    _FIELDS = ("username", "password", "token", "users", "default_permissions", "timeout",
               "no_auth_user")
    __slots__ = _FIELDS

    def __init__(self, username: str = "", password: str = "", token: str = "", users: tuple = (),
                 default_permissions: PermissionSpec | None = None,
                 timeout: float = DEFAULT_AUTH_TIMEOUT, no_auth_user: str = ""):
        for name, value in zip(self._FIELDS, (username, password, token, tuple(users),
                                              default_permissions, timeout, no_auth_user)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("AuthOptions is immutable")

    def _values(self) -> tuple:
        return tuple(getattr(self, n) for n in self._FIELDS)

    def __eq__(self, other) -> bool:
        return isinstance(other, AuthOptions) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def with_(self, **changes) -> "AuthOptions":
        values = dict(zip(self._FIELDS, self._values()))
        values.update(changes)
        return AuthOptions(**values)

    @property
    def required(self) -> bool:
        """The reference's AuthRequired: users, nkeys, a username or a token."""
        return bool(self.users or self.username or self.token)

    @property
    def has_nkeys(self) -> bool:
        return any(u.nkey for u in self.users)

    def __repr__(self) -> str:
        return f"AuthOptions({self.summary()})"

    __str__ = __repr__

    def summary(self) -> dict:
        return {"auth_required": self.required, "user": self.username,
                "token": "[REDACTED]" if self.token else "",
                "users": [u.nkey or u.username for u in self.users],
                "timeout": self.timeout, "no_auth_user": self.no_auth_user}

    def __deepcopy__(self, memo):
        return self.summary()


# -- parsing --------------------------------------------------------------------------------------


def _str(m, key, value) -> str:
    if not isinstance(value, str):
        raise AuthConfigError(_pos(m, key) + f"interface conversion: interface {{}} is "
                              f"{_go_type(value)}, not string")
    return value


def parse_authorization(value, where: str = "") -> AuthOptions:
    """The top-level `authorization` block. `where` is the block's own position prefix."""
    if not isinstance(value, dict):
        raise AuthConfigError(where + f"interface conversion: interface {{}} is {_go_type(value)}, "
                              "not map[string]interface {}")
    username = password = token = ""
    users: tuple = ()
    default_perms = None
    timeout = DEFAULT_AUTH_TIMEOUT
    for key, v in value.items():
        lk = key.lower()
        if lk in ("user", "username"):
            username = _str(value, key, v)
        elif lk in ("pass", "password"):
            password = _str(value, key, v)
        elif lk == "token":
            token = _str(value, key, v)
        elif lk == "timeout":
            timeout = _timeout(value, key, v)
        elif lk == "users":
            if not isinstance(v, list):
                raise AuthConfigError(_pos(value, key) + f"Expected users field to be an array, got {v}")
            users = tuple(_parse_user(item, _item_pos(v, i)) for i, item in enumerate(v))
        elif lk in ("default_permissions", "permissions"):
            default_perms = parse_permissions(v, value, key)
        else:
            raise AuthConfigError(_pos(value, key) + f'unknown field "{key}"')
    if (username or password) and token:
        raise AuthConfigError(where + "Cannot have a user/pass and token")
    if users and (username or password):
        raise AuthConfigError(where + "Can not have a single user/pass and a users array")
    if users and token:
        raise AuthConfigError(where + "Can not have a token and a users array")
    seen = set()
    for u in users:
        name = u.nkey or u.username
        if u.username and name in seen:
            raise AuthConfigError(where + f'Duplicate user "{name}" detected')
        seen.add(name)
    if default_perms is not None:
        users = tuple(u if u.permissions is not None else replace(u, permissions=default_perms)
                      for u in users)
    return AuthOptions(username=username, password=password, token=token, users=users,
                       default_permissions=default_perms, timeout=timeout)


def _timeout(m, key, v) -> float:
    if isinstance(v, bool):
        raise AuthConfigError(_pos(m, key) + "interface conversion: interface {} is bool, not float64")
    if isinstance(v, (int, float)):
        secs = float(v)
    elif isinstance(v, str):
        from .options import parse_duration

        try:
            secs = parse_duration(v)
        except ValueError as e:
            raise AuthConfigError(_pos(m, key) + f"error parsing timeout: {e}") from None
    else:
        raise AuthConfigError(_pos(m, key) + f"interface conversion: interface {{}} is {_go_type(v)}, "
                              "not float64")
    if secs > 60:
        shown = int(secs) if secs == int(secs) else secs
        raise AuthConfigError(
            _pos(m, key) + f'invalid use of field "{key}": timeout of {shown} ({secs:f} seconds) is high, '
            "consider keeping it under 60 seconds. possibly caused by unquoted duration; use '1m' "
            "instead of 1m, for example")
    return secs


def _parse_user(item, where: str) -> User:
    if not isinstance(item, dict):
        raise AuthConfigError(where + f"interface conversion: interface {{}} is {_go_type(item)}, "
                              "not map[string]interface {}")
    username = password = nkey = ""
    perms = None
    types: tuple = ()
    for key, v in item.items():
        lk = key.lower()
        if lk in ("user", "username"):
            username = _str(item, key, v)
        elif lk in ("pass", "password"):
            password = _str(item, key, v)
        elif lk == "nkey":
            nkey = _str(item, key, v)
            if not _valid_user_nkey(nkey):
                raise AuthConfigError(_pos(item, key) + "Not a valid public nkey for a user")
        elif lk == "permissions":
            perms = parse_permissions(v, item, key)
        elif lk in ("allowed_connection_types", "connection_types", "clients"):
            vals = v if isinstance(v, list) else [v]
            bad = [t for t in vals if not isinstance(t, str) or t.upper() not in CONNECTION_TYPES]
            if bad:
                shown = "[" + " ".join(f'"{t}"' for t in bad) + "]"
                raise AuthConfigError(_pos(item, key) + f"invalid connection types {shown}")
            types = tuple(t.upper() for t in vals)
        elif lk == "proxy_required":
            raise AuthConfigError(_pos(item, key) + f'"{key}" is not supported by actor-nats yet')
        else:
            raise AuthConfigError(_pos(item, key) + f'unknown field "{key}"')
    if nkey and (username or password):
        last = list(item.keys())[-1]
        raise AuthConfigError(_pos(item, last) + "Nkey users do not take usernames or passwords")
    if not nkey and not username:
        first = next(iter(item.keys()), None)
        raise AuthConfigError((_pos(item, first) if first else where) + "User entry requires a user")
    return User(username=username, password=password, nkey=nkey, permissions=perms,
                connection_types=types)


def _valid_user_nkey(key: str) -> bool:
    try:
        import nkeys

        raw = __import__("base64").b32decode(key + "=" * (-len(key) % 8))
        if len(raw) != 35 or raw[0] != nkeys.PREFIX_BYTE_USER:
            return False
        return nkeys.crc16_checksum(raw[:-2]) == raw[-2:]
    except Exception:
        return False


def parse_permissions(value, parent, pkey) -> PermissionSpec:
    if not isinstance(value, dict):
        raise AuthConfigError(_pos(parent, pkey) + "Expected permissions to be a map/struct, got "
                              f"{value}")
    spec: dict = {}
    for key, v in value.items():
        lk = key.lower()
        if lk in ("publish", "pub", "import"):
            spec["pub_allow"], spec["pub_deny"] = _subject_permission(v, value, key, queues=False)
        elif lk in ("subscribe", "sub", "export"):
            spec["sub_allow"], spec["sub_deny"] = _subject_permission(v, value, key, queues=True)
        elif lk in ("allow_responses", "allow_response", "publish_allow_responses"):
            spec["responses"] = _responses(v, value, key)
        else:
            raise AuthConfigError(_pos(value, key) + f'Unknown field "{key}" parsing permissions')
    if spec.get("responses") is not None and "pub_allow" not in spec:
        spec["pub_allow"] = ()  # responses only: nothing else may be published
    return PermissionSpec(**spec)


def _subject_list(v, queues: bool) -> tuple:
    vals = v if isinstance(v, list) else [v]
    out = []
    for s in vals:
        if not isinstance(s, str):
            raise AuthConfigError("Expected subject permissions to be a subject, or array of "
                                  f"subjects, got {_go_type(s)}")
        _check_subject(s, queues)
        out.append(s)
    return tuple(out)


def _check_subject(s: str, queues: bool) -> None:
    parts = s.split()
    ok = False
    if queues and len(parts) == 2:
        ok = bool(_VALID_SUBJECT(parts[0])) and bool(_VALID_SUBJECT(parts[1]))
    elif len(parts) == 1 and parts[0] == s:
        ok = bool(_VALID_SUBJECT(s))
    if not ok:
        raise AuthConfigError(f'subject "{s}" is not a valid subject')


def _subject_permission(v, parent, pkey, queues: bool):
    if isinstance(v, (str, list)):
        return _subject_list(v, queues), None
    if isinstance(v, dict):
        allow = deny = None
        for key, item in v.items():
            lk = key.lower()
            if lk == "allow":
                allow = _subject_list(item, queues)
            elif lk == "deny":
                deny = _subject_list(item, queues)
            else:
                raise AuthConfigError(_pos(v, key) + f'Unknown field name "{key}" parsing subject '
                                      "permissions, only 'allow' or 'deny' are permitted")
        return allow, deny
    raise AuthConfigError("Expected subject permissions to be a subject, or array of subjects, "
                          f"got {_go_type(v)}")


def _responses(v, parent, pkey) -> ResponsePermission | None:
    if isinstance(v, bool):
        return ResponsePermission() if v else None
    if not isinstance(v, dict):
        raise AuthConfigError(_pos(parent, pkey) + "error parsing response permissions, expected a "
                              "boolean or a map")
    max_msgs, expires = 1, DEFAULT_RESPONSE_EXPIRES
    for key, item in v.items():
        lk = key.lower()
        if lk in ("max", "max_msgs", "max_messages", "max_responses"):
            if isinstance(item, bool) or not isinstance(item, int):
                raise AuthConfigError(_pos(v, key) + f"interface conversion: interface {{}} is "
                                      f"{_go_type(item)}, not int64")
            max_msgs = item
        elif lk in ("expires", "expiration", "ttl"):
            from .options import parse_duration

            if not isinstance(item, str):
                raise AuthConfigError(_pos(v, key) + f"interface conversion: interface {{}} is "
                                      f"{_go_type(item)}, not string")
            try:
                expires = parse_duration(item)
            except ValueError as e:
                raise AuthConfigError(_pos(v, key) + str(e)) from None
        else:
            raise AuthConfigError(_pos(v, key) + f'Unknown field "{key}" parsing permissions')
    return ResponsePermission(max_msgs, expires)


# -- start-time checks ------------------------------------------------------------------------------


def check(auth: AuthOptions) -> None:
    """What the reference checks at start (not with -t)."""
    if auth.no_auth_user:
        if not auth.users:
            raise AuthConfigError(f'no_auth_user: "{auth.no_auth_user}" present, but users/nkeys '
                                  "are not defined")
        if not any((u.nkey or u.username) == auth.no_auth_user for u in auth.users):
            raise AuthConfigError(f'no_auth_user: "{auth.no_auth_user}" not present as user or nkey '
                                  "in authorization block or account configuration")


def plaintext_passwords(auth: AuthOptions) -> bool:
    """The reference warns "Plaintext passwords detected, use nkeys or bcrypt"."""
    pws = [auth.password] + [u.password for u in auth.users if not u.nkey]
    return any(not is_bcrypt(p) for p in pws if p) or any(
        not u.nkey and not u.password for u in auth.users)


_BCRYPT = re.compile(r"^\$2[abxy]\$\d{2}\$")


def is_bcrypt(secret: str) -> bool:
    return _BCRYPT.match(secret) is not None


__all__ = ["AuthOptions", "User", "PermissionSpec", "ResponsePermission", "AuthConfigError",
           "parse_authorization", "parse_permissions", "check", "is_bcrypt", "plaintext_passwords",
           "CONNECTION_TYPES"]
