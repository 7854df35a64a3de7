"""Typed server options: the reference's defaults, conversion from a parsed config map, and the
rule that a key we do not implement yet is refused with a clear error, never ignored.

Pure: takes the map that config/parser.py produced (or a plain dict) and returns `Options`.
Command-line flags are applied on top by the CLI (flags override the file, as in the reference).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace

from .accounts import AccountsOptions, check_accounts, parse_accounts
from .auth import AuthConfigError, AuthOptions, parse_authorization
from .auth import check as check_auth
from .jetstream import JetStreamConfigError, JetStreamOptions, parse_jetstream
from .mappings import parse_mappings
from .operator import OPERATOR_KEYS, OperatorOptions, check_operator_options, parse_operator_options
from .where import go_type as _go_type

KB = 1024
MB = 1024 * 1024


class OptionsError(Exception):
    """A config value is wrong or a key is not supported; str() is the message for the user
    (one line per error: the reference reports every error in a file, not only the first)."""

    def __init__(self, *messages: str, key: str | None = None):
        super().__init__("\n".join(messages))
        self.messages = list(messages)
        self.key = key


@dataclass(frozen=True)
class Options:
    host: str = "0.0.0.0"
    port: int = 4222
    server_name: str = ""
    client_advertise: str = ""
    http_host: str = ""
    http_port: int = 0
    max_connections: int = 64 * KB
    max_subscriptions: int = 0
    max_payload: int = 1 * MB
    max_pending: int = 64 * MB
    max_control_line: int = 4096
    ping_interval: float = 120.0
    ping_max: int = 2
    write_deadline: float = 10.0
    lame_duck_duration: float = 120.0
    lame_duck_grace_period: float = 10.0
    pid_file: str = ""
    ports_file_dir: str = ""
    log_file: str = ""
    debug: bool = False
    trace: bool = False
    logtime: bool = True
    logtime_utc: bool = False
    no_header_support: bool = False
    config_file: str = ""
    # actor-nats' own block: `debug { allow_kill: true }` lets `actor-nats kill` crash actors.
    allow_kill: bool = False
    # the authorization block, no_auth_user and --user/--pass/--auth (config/auth.py)
    auth: AuthOptions = field(default_factory=AuthOptions)
    # the accounts block, system_account, no_system_account (config/accounts.py); the users of
    # accounts are also in auth.users, with their account set
    accounts: AccountsOptions = field(default_factory=AccountsOptions)
    # the jetstream block, top-level store_dir, -js/-sd (config/jetstream.py)
    jetstream: JetStreamOptions = field(default_factory=JetStreamOptions)
    # operator mode: operator, resolver, resolver_preload, trusted keys (config/operator.py)
    operator: OperatorOptions = field(default_factory=OperatorOptions)
    # keys seen in the file, for reload diffs and error messages
    explicit: frozenset = field(default_factory=frozenset)

    def with_(self, **changes) -> "Options":
        """A copy with `changes`; `username`, `password` and `authorization` (the flags --user,
        --pass, --auth, named as the reference's fields) go into `auth`, overriding the file."""
        js_flags = {k: changes.pop(k) for k in ("js_enabled", "js_store_dir") if k in changes}
        if js_flags:  # -js and -sd/--store_dir: on top of the file's jetstream block
            js = changes.get("jetstream", self.jetstream)
            if "js_enabled" in js_flags:
                js = js.with_(enabled=js_flags["js_enabled"])
            if "js_store_dir" in js_flags:
                js = js.with_(store_dir=js_flags["js_store_dir"])
            changes["jetstream"] = js
        flags = {k: changes.pop(k) for k in ("username", "password", "authorization") if k in changes}
        if flags:
            auth = changes.get("auth", self.auth)
            if "authorization" in flags:
                flags["token"] = flags.pop("authorization")
            changes["auth"] = auth.with_(**flags)
        return replace(self, **changes)


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_UNIT = re.compile(r"[^0-9.]*")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds ("1h30m", "500ms", "-1.5s"), with Go's errors."""
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {_go_quote(text)}")
    total = 0.0
    while s:
        m = _NUMBER.match(s)
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {_go_quote(text)}")
        value = float(f"{whole or '0'}.{frac or '0'}")
        s = s[m.end():]
        unit = _UNIT.match(s).group(0)
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(text)}")
        total += value * _DURATION_UNITS[unit]
        s = s[len(unit):]
    return sign * total


def _conversion(value, want: str) -> OptionsError:
    """The reference's message for a value of the wrong type (a Go interface conversion)."""
    return OptionsError(f"interface conversion: interface {{}} is {_go_type(value)}, not {want}")


def _duration(key: str, value) -> float:
    """A Go duration string ("2m", "500ms"). A bare number is refused, as the reference does
    for ping_interval and write_deadline ("should be converted to a duration")."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as e:
            raise OptionsError(f"error parsing {key}: {e}") from None
    if key in _NUMBER_MEANS_SECONDS_REFUSED:
        # the reference takes a number as (deprecated) seconds and warns: a warning fails `-t`,
        # is printed at start, and is silent on reload
        warning = f'invalid use of field "{key}": {key} should be converted to a duration'
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionsError(warning, str(_conversion(value, "int64")))
        raise _Warning(warning, value=float(value))
    raise _conversion(value, "string")


class _Warning(OptionsError):
    """What the reference only warns about; `value` is what it then uses."""

    def __init__(self, *messages: str, value=None):
        super().__init__(*messages)
        self.value = value


_NUMBER_MEANS_SECONDS_REFUSED = {"ping_interval", "write_deadline"}


def _int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _conversion(value, "int64")
    return value


def _str(key: str, value) -> str:
    if not isinstance(value, str):
        raise _conversion(value, "string")
    return value


def _bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise _conversion(value, "bool")
    return value


def split_host_port(value, key: str = "listen") -> tuple[str, int]:
    """`listen`/`http` values: "host:port", ":port", "[::1]:port" or a bare port number, split
    as Go's net.SplitHostPort splits them, with the reference's messages."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "", value
    if not isinstance(value, str):
        raise OptionsError(f"expected port or host:port, got {_go_type(value)}")
    text = value
    bad = OptionsError(f"could not parse address string {_go_quote(text)}")
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise bad
        host, port = text[1:end], text[end + 2:]
        if "[" in host or "]" in port or "[" in port:
            raise bad
    else:
        if text.count(":") != 1:
            raise bad  # missing port, or too many colons
        host, port = text.split(":")
    try:
        if not port.lstrip("+-").isdigit():
            raise ValueError(port)
        return host, int(port)
    except ValueError:
        raise OptionsError(f"could not parse port {_go_quote(port)}") from None


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _set_listen(values: dict, value) -> None:
    host, port = split_host_port(value)
    if host:
        values["host"] = host
    values["port"] = port


def _set_http(values: dict, value) -> None:
    host, port = split_host_port(value, "http")
    if host:
        values["http_host"] = host
    values["http_port"] = port


def _set_debug_block(values: dict, value) -> None:
    if not isinstance(value, dict):
        values["debug"] = _bool("debug", value)
        return
    for k, v in value.items():
        if k.lower() == "allow_kill":
            values["allow_kill"] = _bool("debug.allow_kill", v)
        else:
            raise OptionsError(f'unknown field "{k}" in debug block')


# key (lower case) -> how to store it
_SIMPLE = {
    "host": ("host", _str), "net": ("host", _str),
    "port": ("port", _int),
    "server_name": ("server_name", _str),
    "client_advertise": ("client_advertise", _str),
    "http_port": ("http_port", _int), "monitor_port": ("http_port", _int),
    "max_connections": ("max_connections", _int), "max_conn": ("max_connections", _int),
    "max_subscriptions": ("max_subscriptions", _int), "max_subs": ("max_subscriptions", _int),
    "max_payload": ("max_payload", _int),
    "max_pending": ("max_pending", _int),
    "max_control_line": ("max_control_line", _int),
    "ping_interval": ("ping_interval", _duration),
    "ping_max": ("ping_max", _int),
    "write_deadline": ("write_deadline", _duration),
    "lame_duck_duration": ("lame_duck_duration", _duration),
    "lame_duck_grace_period": ("lame_duck_grace_period", _duration),
    "pidfile": ("pid_file", _str), "pid_file": ("pid_file", _str),
    "ports_file_dir": ("ports_file_dir", _str),
    "logfile": ("log_file", _str), "log_file": ("log_file", _str),
    "trace": ("trace", _bool),
    "logtime": ("logtime", _bool),
    "logtime_utc": ("logtime_utc", _bool),
    "no_header_support": ("no_header_support", _bool),
}

def _set_authorization(values: dict, value, where: str = "") -> None:
    auth = parse_authorization(value, where)
    values["auth"] = auth.with_(no_auth_user=values.get("auth", AuthOptions()).no_auth_user)


def _set_no_auth_user(values: dict, value) -> None:
    values["auth"] = values.get("auth", AuthOptions()).with_(no_auth_user=_str("no_auth_user", value))


def _set_accounts(values: dict, value, where: str = "") -> None:
    values["accounts"] = values.get("accounts", AccountsOptions()).with_(
        accounts=parse_accounts(value, where))


def _set_system_account(values: dict, value, where: str = "") -> None:
    values["accounts"] = values.get("accounts", AccountsOptions()).with_(
        system_account=_str("system_account", value))


def _set_no_system_account(values: dict, value, where: str = "") -> None:
    values["accounts"] = values.get("accounts", AccountsOptions()).with_(
        no_system_account=_bool("no_system_account", value))


def _merge_account_users(values: dict, where: str) -> None:
    """Users of account blocks join the authorization users (the reference keeps one users
    map); the same name twice is refused."""
    accounts = values.get("accounts")
    if accounts is None or not accounts.users():
        return
    auth = values.get("auth", AuthOptions())
    seen = {u.nkey or u.username for u in auth.users}
    for u in accounts.users():
        name = u.nkey or u.username
        if name in seen:
            raise OptionsError(where + f'Duplicate user "{name}" detected')
        seen.add(name)
    values["auth"] = auth.with_(users=auth.users + accounts.users())


_ACCOUNT_KEYS = {"accounts": _set_accounts, "system_account": _set_system_account,
                 "system": _set_system_account, "no_system_account": _set_no_system_account,
                 "no_system": _set_no_system_account, "no_sys_acc": _set_no_system_account}

_SPECIAL = {"listen": _set_listen, "http": _set_http, "debug": _set_debug_block,
            "no_auth_user": _set_no_auth_user}

# Keys the reference knows that actor-nats does not implement yet: refused by name.
NOT_YET = (
    "operator", "operators", "root", "roots", "root_operator",
    "root_operators", "trusted", "trusted_keys", "resolver", "account_resolver",
    "accounts_resolver", "resolver_tls", "resolver_preload", "resolver_pinned_accounts", "tls",
    "allow_non_tls", "ocsp", "ocsp_cache", "cluster", "gateway", "leafnodes", "leaf",
    "default_js_domain", "websocket", "ws", "mqtt",
    "https", "https_port", "http_base_path", "server_tags", "server_metadata",
    "max_sub_tokens", "max_subscription_tokens", "write_timeout", "syslog", "remote_syslog",
    "trace_verbose", "trace_headers", "logfile_size_limit", "log_size_limit", "logfile_max_num",
    "log_max_num", "max_traced_msg_len", "prof_port", "prof_block_rate", "proxy_protocol",
    "proxies", "default_sentinel", "disable_sublist_cache", "no_sublist_cache",
    "no_fast_producer_stall", "max_closed_clients", "connect_error_reports",
    "reconnect_error_reports",
)


def from_map(conf: dict, config_file: str = "", check_only: bool = False,
             warnings: list | None = None) -> Options:
    """Build Options from a parsed config map; refuse unknown and not-yet-supported keys.

    Errors read as the reference's: `file:line:col: message`. What the reference only warns
    about is an error with `check_only` (`-t`), else appended to `warnings` (if given)."""
    values: dict = {"config_file": config_file}
    used_as_variable = getattr(conf, "used_as_variable", set())
    explicit = set()
    errors: list[str] = []
    unsupported: list[str] = []
    for key, value in conf.items():
        lk = key.lower()
        try:
            if lk in _SIMPLE:
                name, conv = _SIMPLE[lk]
                try:
                    values[name] = conv(lk, value)
                except _Warning as w:
                    values[name] = w.value
                    if check_only:
                        raise
                    if warnings is not None:
                        warnings.extend(_where(conf, key) + m for m in w.messages)
                explicit.add(name)
            elif lk == "authorization":
                try:
                    _set_authorization(values, value, _where(conf, key))
                except AuthConfigError as e:
                    raise _Positioned(str(e)) from None
                explicit.add(lk)
            elif lk in _ACCOUNT_KEYS:
                try:
                    _ACCOUNT_KEYS[lk](values, value, _where(conf, key))
                except AuthConfigError as e:
                    raise _Positioned(*getattr(e, "messages", [str(e)])) from None
                explicit.add("accounts")
            elif lk in _SPECIAL:
                _SPECIAL[lk](values, value)
                explicit.add(lk)
            elif lk in ("jetstream", "store_dir", "storedir"):
                js = values.get("jetstream", JetStreamOptions())
                try:
                    if lk == "jetstream":
                        values["jetstream"] = parse_jetstream(value, js)
                    else:
                        values["jetstream"] = js.with_(store_dir=_str(lk, value))
                except JetStreamConfigError as e:
                    inner = _where(value, e.key) if e.key is not None and isinstance(value, dict) else ""
                    raise _Positioned((inner or _where(conf, key)) + str(e)) from None
                explicit.add("jetstream")
            elif lk in ("mappings", "maps"):  # the global account's; the last block wins
                specs, problems = parse_mappings(value, conf, key)
                if problems:
                    raise _Positioned(*problems)
                values["accounts"] = values.get("accounts", AccountsOptions()).with_(mappings=specs)
                explicit.add("accounts")
            elif lk in OPERATOR_KEYS:
                explicit.add("operator")
                continue  # parsed together below (parse_operator_options)
            elif lk in NOT_YET:
                if _configures_something(lk, value):  # `tls {}`, `jetstream: false`: nothing
                    unsupported.append(_where(conf, key) + f'"{key}" is not supported by actor-nats yet')
                continue
            elif key in used_as_variable:
                continue
            else:
                raise OptionsError(f'unknown field "{key}"')
        except _Positioned as e:
            errors.extend(e.messages)
        except OptionsError as e:
            errors.extend(_where(conf, key) + m for m in e.messages)
    if not errors and "accounts" in values:
        where = _where(conf, next((k for k in conf if k.lower() in _ACCOUNT_KEYS), None))
        try:
            _merge_account_users(values, "")
            check_accounts(values["accounts"].accounts, where.split(" ")[0].rsplit(":", 3)[0] + ":1:0: "
                           if where else "")
        except AuthConfigError as e:
            errors.extend(getattr(e, "messages", [str(e)]))
        except OptionsError as e:
            errors.extend(e.messages)
    if "operator" in explicit:
        op, op_errors = parse_operator_options(conf)
        errors.extend(op_errors)
        values["operator"] = op
    if errors:  # the reference's own errors first, as it reports them
        raise OptionsError(*errors)
    if unsupported:
        raise OptionsError(unsupported[0])
    values["explicit"] = frozenset(explicit)
    opts = Options(**values)
    try:
        check(opts)
    except OptionsError as e:
        raise OptionsError(*(_where(conf, _conf_key(conf, e.key)) + m for m in e.messages)) from None
    return opts


def _conf_key(conf, option: str | None) -> str:
    """The key in the file that set an option (aliases and case included)."""
    if option is None:
        return ""
    for key in conf:
        lk = key.lower()
        if lk == option or _SIMPLE.get(lk, ("",))[0] == option:
            return key
    return ""


class _Positioned(OptionsError):
    """An error that already carries its position (or, as in the reference, none)."""


def _configures_something(key: str, value) -> bool:
    """An empty block configures nothing (the reference accepts `gateway {}`); a jetstream block
    or `jetstream: true|enabled` turns JetStream on even when empty."""
    if key == "jetstream":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value.lower() not in ("false", "disabled", "disable", "off", "no")
        return True
    if isinstance(value, (dict, list)):
        return len(value) > 0
    if isinstance(value, bool):
        return value
    return value not in ("", 0)


def _where(conf, key) -> str:
    positions = getattr(conf, "positions", None)
    if positions and key in positions:
        file, line, col = positions[key]
        return f"{file}:{line}:{col}: " if file else f"{line}:{col}: "
    return ""


def check(opts: Options) -> None:
    """What the reference checks when it reads a config file (`-t` included)."""
    if " " in opts.server_name:
        raise OptionsError("server name cannot contain spaces", key="server_name")
    if "lame_duck_duration" in opts.explicit and opts.lame_duck_duration < 30:
        raise OptionsError(f"invalid lame_duck_duration of {_go_duration(opts.lame_duck_duration)}, "
                           "minimum is 30 seconds", key="lame_duck_duration")


def _go_duration(seconds: float) -> str:
    if seconds == int(seconds):
        s = int(seconds)
        h, rem = divmod(s, 3600)
        m, sec = divmod(rem, 60)
        out = (f"{h}h" if h else "") + (f"{m}m" if (h or m) else "") + f"{sec}s"
        return out
    return f"{seconds}s"


def validate(opts: Options) -> None:
    """What the reference checks when the server starts (after flags are applied)."""
    try:
        check_auth(opts.auth)
    except AuthConfigError as e:
        raise OptionsError(str(e)) from None
    if opts.operator.enabled or opts.operator.pinned_accounts:
        errs = check_operator_options(opts.operator, system_account=opts.accounts.system_account,
                                      has_users=bool(opts.auth.users or opts.auth.username),
                                      has_accounts=bool(opts.accounts.accounts))
        if errs:
            raise OptionsError(*errs)
    if opts.max_payload > 64 * MB:
        raise OptionsError("max_payload (%d) cannot be higher than %d" % (opts.max_payload, 64 * MB))
    if opts.lame_duck_grace_period >= opts.lame_duck_duration:
        raise OptionsError(f"lame duck grace period ({_go_duration(opts.lame_duck_grace_period)}) should be "
                           f"strictly lower than lame duck duration ({_go_duration(opts.lame_duck_duration)})")
    if opts.max_pending and opts.max_payload > opts.max_pending:
        raise OptionsError("max_payload (%d) cannot be higher than max_pending (%d)"
                           % (opts.max_payload, opts.max_pending))


def option_names() -> list[str]:
    return [f.name for f in fields(Options)]
