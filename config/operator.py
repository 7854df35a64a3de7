"""Operator mode (decentralized JWT auth) config keys, parsed and checked as the reference does.

Owns `OperatorOptions` / `ResolverOptions` and:
- `parse_operator_options(conf) -> (OperatorOptions, errors)`: the keys in `OPERATOR_KEYS`
  (`operator` and its aliases, `resolver` and aliases, `resolver_preload`,
  `resolver_pinned_accounts`, `trusted`/`trusted_keys`) with the reference's `-t` messages,
  each `file:line:col: ...` as the reference positions them. Operator JWTs (inline, or files,
  decorated or not) are decoded and signature-checked with protocol/jwt.py.
- `check_operator_options(op, ...) -> errors`: what the reference checks when the server starts
  (not with `-t`): resolver required, no static users/accounts, trusted keys vs operators,
  `system_account in config and operator JWT must be identical`, the system account needed by a
  nats based resolver, `assert_server_version`.

How config/options.py should call it (options.py is not edited here):
    from .operator import OPERATOR_KEYS, parse_operator_options, check_operator_options
    # in from_map: treat every key in OPERATOR_KEYS as handled (drop them from NOT_YET, except
    # resolver_tls, which stays refused), then once per file:
    op, errs = parse_operator_options(conf)      # errs are already positioned strings
    errors.extend(errs); values["operator"] = op  # Options.operator: OperatorOptions
    # and at start (validate(), not for -t):
    errs = check_operator_options(op, system_account=opts.system_account,
                                  has_users=bool(opts.auth.users or opts.auth.username),
                                  has_accounts=bool(<accounts configured>))
A `URL(...)` resolver (explicit, or implied by the operator's `account_server_url`) is refused:
actor-nats does not implement the HTTP account resolver yet.

Reads operator JWT files (as the reference does while parsing); otherwise pure. Imports only the
public API of protocol/jwt.py and protocol/creds.py (no actors).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from ..protocol import creds as _creds
from ..protocol import jwt as _jwt
from .where import go_type as _go_type, pos as _pos

OPERATOR_KEYS = ("operator", "operators", "root", "roots", "root_operator", "root_operators",
                 "resolver", "account_resolver", "accounts_resolver", "resolver_preload",
                 "resolver_pinned_accounts", "trusted", "trusted_keys")
_OPERATOR_ALIASES = OPERATOR_KEYS[:6]
_RESOLVER_ALIASES = ("resolver", "account_resolver", "accounts_resolver")

SERVER_VERSION = (2, 15, 1)  # the reference version actor-nats answers for
DEFAULT_FETCH_TIMEOUT = 1.9  # seconds, the reference's account fetch timeout
_JWT_PREFIX = "eyJ"


@dataclass(frozen=True)
class ResolverOptions:
    """`type` is MEMORY, URL, FULL or CACHE. 0 means the reference's default for interval,
    ttl and limit."""

    type: str = "MEMORY"
    url: str = ""
    dir: str = ""
    allow_delete: bool = False
    interval: float = 0.0  # FULL: seconds between syncs with another nats based resolver
    ttl: float = 0.0  # CACHE: seconds a cached JWT lives
    timeout: float = DEFAULT_FETCH_TIMEOUT  # lookup request timeout
    limit: int = 0  # max JWTs kept

    @property
    def nats_based(self) -> bool:
        return self.type in ("FULL", "CACHE")


@dataclass(frozen=True)
class OperatorOptions:
    operators: tuple = ()  # protocol.jwt.Claims of each trusted operator
    resolver: ResolverOptions | None = None
    preload: tuple = ()  # ((account public key, account JWT), ...) in file order
    pinned_accounts: tuple = ()
    trusted_keys: tuple = ()  # `trusted` / `trusted_keys` as configured
    system_account: str = ""  # from the config, else from the (single) operator JWT
    resolver_set: bool = False  # an explicit resolver key (the operator's URL is only a default)

    @property
    def enabled(self) -> bool:
        return bool(self.operators or self.trusted_keys)

    @property
    def operator_jwts(self) -> tuple:
        return tuple(o.token for o in self.operators)

    def all_trusted_keys(self) -> tuple:
        """The keys an account JWT may be signed by: configured trusted keys, then each
        operator's key (unless strict_signing_key_usage) and signing keys."""
        keys = list(self.trusted_keys)
        for op in self.operators:
            if not op.get("strict_signing_key_usage"):
                keys.append(op.subject)
            keys.extend(op.signing_keys)
        return tuple(keys)

    def summary(self) -> dict:
        """For /varz-like views: keys, not JWTs."""
        return {"operators": [o.subject for o in self.operators],
                "system_account": self.system_account,
                "resolver": self.resolver.type if self.resolver else "",
                "preload": [k for k, _ in self.preload]}


# -- helpers -------------------------------------------------------------------------------------

def _os_error(op: str, path: str, e: OSError) -> str:
    text = (e.strerror or str(e)).lower()
    return f"{op} {path}: {text}"


def _duration(value) -> float:
    from .options import parse_duration  # options imports this module; import late

    if not isinstance(value, str):
        raise ValueError(f"interface conversion: interface {{}} is {_go_type(value)}, not string")
    return parse_duration(value)


def read_operator_jwt(value: str) -> _jwt.Claims:
    """An operator JWT from a file (decorated or not) or inline; the reference's errors."""
    try:
        with open(value, encoding="utf-8", errors="replace") as f:
            contents = f.read()
    except OSError as e:
        if not value.startswith(_JWT_PREFIX):
            raise _jwt.JWTError(_os_error("open" if not os.path.isdir(value) else "read", value, e)) from None
        contents = value
    token = _creds.parse_jwt(contents)
    return _jwt.decode_as(token, _jwt.OPERATOR)


# -- parsing -------------------------------------------------------------------------------------

_MEM = re.compile(r"(?i)(MEM|MEMORY)\s*")
_URL = re.compile(r"""(?i)URL(?:\(\s*"?([^\s"]*)"?\s*\))?\s*""")


def parse_operator_options(conf) -> tuple[OperatorOptions, list[str]]:
    """OperatorOptions from a parsed config map, and the reference's `-t` errors."""
    errors: list[str] = []
    operators: list = []
    resolver = None
    resolver_set = False
    preload: list = []
    pinned: list = []
    trusted: list = []
    for key, value in conf.items():
        lk = key.lower()
        where = _pos(conf, key)
        if lk in _OPERATOR_ALIASES:
            operators = _parse_operators(value, where, errors)
        elif lk in _RESOLVER_ALIASES:
            resolver_set = True
            resolver = _parse_resolver(value, where, errors)
        elif lk == "resolver_preload":
            preload = _parse_preload(value, where, errors)
        elif lk == "resolver_pinned_accounts":
            pinned, _ = _parse_string_list(value, where, errors, "resolver_pinned_accounts")
        elif lk in ("trusted", "trusted_keys"):
            trusted, where = _parse_string_list(value, where, errors, "trusted")
            for k in trusted:  # the reference reports these at the array's last item
                if not _jwt.is_public_key(k, _jwt.OPERATOR):
                    errors.append(where + f'trust key "{k}" required to be a valid public operator nkey')
    system_account = ""
    for key, value in conf.items():
        if key.lower() in ("system_account", "system") and isinstance(value, str):
            system_account = value
    if len(operators) == 1:
        if resolver is None and not resolver_set:
            url = operators[0].get("account_server_url", "") or ""
            resolver = ResolverOptions(type="URL", url=url.rstrip("/") + "/accounts")
        if not system_account:
            system_account = operators[0].system_account
    return OperatorOptions(operators=tuple(operators), resolver=resolver, preload=tuple(preload),
                           pinned_accounts=tuple(pinned), trusted_keys=tuple(trusted),
                           system_account=system_account, resolver_set=resolver_set), errors


def _parse_operators(value, where: str, errors: list) -> list:
    if isinstance(value, str):
        files = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        files = list(value)
    else:
        errors.append(where + f"error parsing operators: unsupported type {_go_type(value)}")
        return []
    out = []
    for name in files:
        try:
            out.append(read_operator_jwt(name))
        except (_jwt.JWTError, _creds.CredsError) as e:
            errors.append(where + f"error parsing operator JWT: {e}")
    return out


_RESOLVER_HELP = ('error parsing account resolver, should be MEM or  URL("url") or a map containing '
                  "dir and type state=[FULL|CACHE])")


def _parse_resolver(value, where: str, errors: list) -> ResolverOptions | None:
    if isinstance(value, str):
        if _MEM.search(value):
            return ResolverOptions(type="MEMORY")
        m = _URL.search(value)
        if m:
            errors.append(where + f"resolver {value} is not supported by actor-nats yet "
                          "(use MEMORY or a nats based resolver: { type: full, dir: ... })")
            return None
        errors.append(where + _RESOLVER_HELP)
        return None
    if not isinstance(value, dict):
        errors.append(where + f"error parsing operator resolver, wrong type {_go_type(value)}")
        return None
    values = {k.lower(): v for k, v in value.items()}
    kind = str(values.get("type", "")).upper()
    directory = values.get("dir", "")
    allow_delete = values.get("allow_delete", False)
    limit = values.get("limit", 0)
    for name, v, want in (("dir", directory, str), ("type", values.get("type", ""), str),
                          ("allow_delete", allow_delete, bool), ("limit", limit, int)):
        if not isinstance(v, want) or (want is int and isinstance(v, bool)):
            go_want = {str: "string", bool: "bool", int: "int64"}[want]
            errors.append(where + f"interface conversion: interface {{}} is {_go_type(v)}, not {go_want}")
            return None
    ttl = interval = 0.0
    timeout = DEFAULT_FETCH_TIMEOUT
    try:
        if "ttl" in values:
            ttl = _duration(values["ttl"])
        if "interval" in values:
            interval = _duration(values["interval"])
        if "timeout" in values:
            timeout = _duration(values["timeout"])
    except ValueError as e:
        errors.append(where + str(e))
        return None
    n_before = len(errors)
    if directory == "":
        errors.append(where + "dir has no value and needs to point to a directory")
    else:
        try:
            st = os.stat(directory)
        except OSError:
            st = None
        if st is not None and (not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o200):
            errors.append(where + "dir needs to point to an accessible directory")
    if kind == "CACHE":
        if interval:
            errors.append(where + "CACHE does not accept sync")
        if allow_delete:
            errors.append(where + "CACHE does not accept allow_delete")
    elif kind == "FULL":
        if ttl:
            errors.append(where + "FULL does not accept ttl")
    else:
        errors.append(where + _RESOLVER_HELP)
        return None
    if len(errors) > n_before:
        # the reference still tries to create the directory and reports that failure too
        if directory == "":
            errors.append(where + "mkdir : no such file or directory")
        elif os.path.exists(directory) and not os.path.isdir(directory):
            errors.append(where + f"mkdir {directory}: not a directory")
        return None
    return ResolverOptions(type=kind, dir=directory, allow_delete=allow_delete, interval=interval,
                           ttl=ttl, timeout=timeout, limit=limit)


def _parse_preload(value, where: str, errors: list) -> list:
    if not isinstance(value, dict):
        errors.append(where + "preload should be a map of account_public_key:account_jwt")
        return []
    out = []
    for key, token in value.items():
        at = _pos(value, key) or where
        if not isinstance(token, str):
            errors.append(at + "preload map value should be a string JWT")
            continue
        try:
            _jwt.decode_as(token, _jwt.ACCOUNT)
        except _jwt.JWTError:
            errors.append(at + "invalid account JWT")
            continue
        out.append((key, token))
    return out


def _parse_string_list(value, where: str, errors: list, what: str) -> tuple[list, str]:
    """The strings of a string-or-array value, and the position of its last item."""
    if isinstance(value, str):
        return [value], where
    if isinstance(value, list):
        out = []
        positions = getattr(value, "positions", None)
        for i, item in enumerate(value):
            if positions and i < len(positions) and positions[i]:
                file, line, col = positions[i]
                where = f"{file}:{line}:{col}: " if file else f"{line}:{col}: "
            if isinstance(item, str):
                out.append(item)
            else:
                errors.append(where + f"error parsing {what}: unsupported type in array {_go_type(item)}")
        return out, where
    errors.append(where + f"error parsing {what}: unsupported type {_go_type(value)}")
    return [], where


# -- start-time checks ---------------------------------------------------------------------------

def check_operator_options(op: OperatorOptions, *, system_account: str = "",
                           has_users: bool = False, has_accounts: bool = False,
                           server_version: tuple = SERVER_VERSION) -> list[str]:
    """The reference's checks when the server starts (validateTrustedOperators); the first
    failure ends them, as there. `system_account` is the config's (empty if not set)."""
    if not op.operators:
        return _check_pinned(op)
    if op.resolver is None:
        return ["operators require an account resolver to be configured"]
    if has_accounts:
        return ["operators do not allow Accounts to be configured directly"]
    if has_users:
        return ["operators do not allow users to be configured directly"]
    if op.trusted_keys:
        return ["conflicting options for 'TrustedKeys' and 'TrustedOperators'"]
    system_account = system_account or op.system_account
    if system_account:
        found_nonempty = any(o.system_account for o in op.operators)
        if found_nonempty and not any(o.system_account == system_account for o in op.operators):
            return ["system_account in config and operator JWT must be identical"]
    elif op.resolver.nats_based:
        return ["using nats based account resolver - the system account needs to be specified "
                "in configuration or the operator jwt"]
    for o in op.operators:
        wanted = o.get("assert_server_version", "") or ""
        if not wanted:
            continue
        try:
            parts = tuple(int(p) for p in wanted.split("."))
            if len(parts) != 3:
                raise ValueError
        except ValueError:
            return [f"operator {o.subject} expects version {wanted} got error instead: "
                    f"version format is not semver (major.minor.patch)"]
        for level, want, have in zip(("major", "minor", "update"), parts, server_version):
            if want > have:
                return [f"operator {o.subject} expected {level} version {want} > server {level} version {have}"]
            if have > want:
                break
    if op.resolver.type == "URL":
        url = op.resolver.url
        if url == "/accounts":
            return [f'could not fetch <"{url}/">: Get "{url}/": unsupported protocol scheme ""']
        return [f"the URL account resolver ({url}) is not supported by actor-nats yet"]
    for key in op.all_trusted_keys():
        if not _jwt.is_public_key(key, _jwt.OPERATOR):
            return [f'trusted Keys "{key}" are required to be a valid public operator nkey']
    return _check_pinned(op)


def _check_pinned(op: OperatorOptions) -> list[str]:
    for key in op.pinned_accounts:
        if not _jwt.is_public_key(key, _jwt.ACCOUNT):
            return [f'pinned account key "{key}" is not a valid public account nkey']
    return []
