"""Which options reload and which need a restart, and how a reload is described: the table, the
typed diff, and the reference's wording. Pure: the Config actor applies what this decides.

The table is the source of truth for docs/reload.md (`python -m actor_nats.config.reload`
writes it; a unit test checks the file is current). For each option: whether a running server
can change it, the reference's Go field name (used in its refusal message
`config reload not supported for <Field>: old=<v>, new=<v>`), and the config key used in its
`Reloaded: <key> = <value>` log lines. Values print as the reference prints them: durations
as Go durations (`1m0s`), sizes as bytes, booleans in lower case.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .options import Options


@dataclass(frozen=True)
class Rule:
    reloadable: bool
    go_name: str
    key: str
    duration: bool = False
    note: str = ""
    verb: str = "Reloaded"  # the reference logs client_advertise as "Reload: ..."


RULES: dict[str, Rule] = {
    "host": Rule(False, "Host", "host", note="the listen socket is bound at start"),
    "port": Rule(False, "Port", "port", note="the listen socket is bound at start"),
    "server_name": Rule(False, "ServerName", "server_name", note="the server's identity"),
    "client_advertise": Rule(True, "ClientAdvertise", "client_advertise",
                             note="new connections get the new connect_urls", verb="Reload"),
    "http_host": Rule(False, "HTTPHost", "http_host", note="the monitoring socket is bound at start"),
    "http_port": Rule(False, "HTTPPort", "http_port", note="the monitoring socket is bound at start"),
    "max_connections": Rule(True, "MaxConn", "max_connections",
                            note="applies to new connections"),
    "max_subscriptions": Rule(False, "MaxSubs", "max_subscriptions"),
    "max_payload": Rule(True, "MaxPayload", "max_payload",
                        note="existing connections apply it to their next PUB; new ones see it in INFO"),
    "max_pending": Rule(False, "MaxPending", "max_pending"),
    "max_control_line": Rule(True, "MaxControlLine", "max_control_line"),
    "ping_interval": Rule(True, "PingInterval", "ping_interval", duration=True,
                          note="new connections; existing ones keep their timer"),
    "ping_max": Rule(True, "MaxPingsOut", "ping_max"),
    "write_deadline": Rule(True, "WriteDeadline", "write_deadline", duration=True,
                           note="applies to the next blocked write"),
    "lame_duck_duration": Rule(False, "LameDuckDuration", "lame_duck_duration", duration=True),
    "lame_duck_grace_period": Rule(False, "LameDuckGracePeriod", "lame_duck_grace_period",
                                   duration=True),
    "pid_file": Rule(True, "PidFile", "pid_file", note="the new file is written"),
    "ports_file_dir": Rule(True, "PortsFileDir", "ports_file_dir", note="the new file is written"),
    "log_file": Rule(True, "LogFile", "log_file"),
    "debug": Rule(True, "Debug", "debug"),
    "trace": Rule(True, "Trace", "trace"),
    "logtime": Rule(True, "Logtime", "logtime"),
    "logtime_utc": Rule(True, "LogtimeUTC", "logtime_utc"),
    "no_header_support": Rule(False, "NoHeaderSupport", "no_header_support"),
    "allow_kill": Rule(True, "AllowKill", "debug.allow_kill", note="actor-nats only"),
    "auth": Rule(True, "Authorization", "authorization",
                 note="the authorization block and --user/--pass/--auth (flags still win): each "
                      "connection re-checks its own credentials; revoked ones get -ERR "
                      "'Authorization Violation' (a user no longer listed is closed without one), "
                      "the others take the new permissions and lose subscriptions now denied. "
                      "`no_auth_user` can only be dropped together with its user (as the reference)"),
    "jetstream": Rule(True, "JetStream", "jetstream",
                      note="max_memory_store and max_file_store reload (new streams and their limits "
                           "are checked against them); a new store_dir, domain or sync_interval is "
                           "refused as by the reference; turning JetStream on or off needs a restart "
                           "(the reference does that live)"),
    "accounts": Rule(True, "Accounts", "accounts",
                     note="accounts, their users, exports, imports and subject mappings (the "
                          "top-level `mappings` block too): imports are rebuilt and each "
                          "connection re-checks its credentials; a connection whose account changed "
                          "is closed so its client reconnects into the new account; connected "
                          "clients map their next publish with the new mappings (the reference "
                          "logs no line of its own for them). Removing the top-level `mappings` "
                          "block removes the global account's mappings (the reference keeps them "
                          "until a restart). Changing system_account needs a restart"),
    "operator": Rule(True, "TrustedOperators", "operator",
                     note="operator mode: a change of the trusted operators (or trusted keys) is "
                          "refused, as moving to or from an account resolver; resolver settings "
                          "and resolver_preload changes are accepted and take effect at the next "
                          "start (pushes update accounts at runtime)"),
}

_NOT_OPTIONS = {"config_file", "explicit"}


def go_duration(seconds: float) -> str:
    """Go's time.Duration String(): 1m0s, 1h30m0s, 500ms, 2s, 0s."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    s = _trim(rem / 1e9)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"


def _trim(x: float) -> str:
    text = f"{x:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def show(name: str, value) -> str:
    rule = RULES.get(name)
    if rule is not None and rule.duration:
        return go_duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Change:
    name: str
    old: object
    new: object

    @property
    def rule(self) -> Rule:
        return RULES[self.name]

    def refusal(self) -> str:
        special = (self.auth_refusal() or self.system_account_refusal() or self.jetstream_refusal()
                   or self.operator_refusal())
        if special is not None:
            return special
        return (f"config reload not supported for {self.rule.go_name}: "
                f"old={show(self.name, self.old)}, new={show(self.name, self.new)}")

    def applied(self) -> str:
        return f"{self.rule.verb}: {self.rule.key} = {show(self.name, self.new)}"

    def applied_lines(self) -> list[str]:
        """The log lines of an applied change: one, except for `auth`, which the reference
        logs per field (users lists are covered by the lines of `always_lines`), and accounts,
        covered by them entirely."""
        if self.name in ("accounts", "operator"):
            return []
        if self.name == "jetstream":
            from .jetstream import friendly_bytes

            out = []
            for field, key in (("max_memory_store", "max_mem_store"), ("max_file_store", "max_file_store")):
                if getattr(self.old, field) != getattr(self.new, field):
                    out.append(f"Reloaded: JetStream {key} = {friendly_bytes(getattr(self.new, field))}")
            return out
        if self.name != "auth":
            return [self.applied()]
        old, new = self.old, self.new
        out = [f"Reloaded: authorization {what}"
               for what, field in (("username", "username"), ("password", "password"),
                                   ("token", "token"))
               if getattr(old, field) != getattr(new, field)]
        if old.timeout != new.timeout:
            out.append(f"Reloaded: authorization timeout = {new.timeout:g}")
        return out

    def jetstream_refusal(self) -> str | None:
        if self.name != "jetstream":
            return None
        old, new = self.old, self.new
        if old.enabled != new.enabled:
            return ("config reload not supported for JetStream: turning it on or off needs a "
                    "restart of actor-nats")
        if old.store_dir != new.store_dir:
            return "config reload not supported for jetstream storage directory"
        if old.domain != new.domain:
            return f"config reload not supported for JetStreamDomain: old={old.domain}, new={new.domain}"
        if (old.sync_interval, old.sync_always) != (new.sync_interval, new.sync_always):
            return (f"config reload not supported for SyncInterval: old={go_duration(old.sync_interval)}, "
                    f"new={go_duration(new.sync_interval)}")
        limits = ("max_memory_store", "max_file_store")
        if any(getattr(old, f.name) != getattr(new, f.name) for f in fields(old) if f.name not in limits):
            return "config reload not supported for JetStream: only its memory and storage limits reload"
        return None

    def system_account_refusal(self) -> str | None:
        if self.name != "accounts" or (self.old.system_account == self.new.system_account
                                       and self.old.no_system_account == self.new.no_system_account):
            return None
        return (f"config reload not supported for SystemAccount: old={self.old.system_account}, "
                f"new={self.new.system_account}")

    def operator_refusal(self) -> str | None:
        """The reference refuses a change of trusted operators or keys, and moving to or from a
        resolver; other operator-mode changes pass."""
        if self.name != "operator":
            return None
        old, new = self.old, self.new
        if old.operator_jwts != new.operator_jwts:
            subjects = lambda op: "[" + " ".join(o.subject for o in op.operators) + "]"  # noqa: E731
            return f"config reload not supported for TrustedOperators: old={subjects(old)}, new={subjects(new)}"
        if old.trusted_keys != new.trusted_keys:
            return (f"config reload not supported for TrustedKeys: old=[{' '.join(old.trusted_keys)}], "
                    f"new=[{' '.join(new.trusted_keys)}]")
        if (old.resolver is None) != (new.resolver is None):
            return "config reload does not support moving to or from an account resolver"
        return None

    def auth_refusal(self) -> str | None:
        """The reference refuses a no_auth_user change, except dropping it together with the
        user it named."""
        if self.name != "auth" or self.old.no_auth_user == self.new.no_auth_user:
            return None
        old_name, new_name = self.old.no_auth_user, self.new.no_auth_user
        if old_name and not new_name and not any(
                (u.nkey or u.username) == old_name for u in self.new.users):
            return None
        return f"config reload not supported for NoAuthUser: old={old_name}, new={new_name}"


def diff(old: Options, new: Options) -> list[Change]:
    out = []
    for f in fields(old):
        if f.name in _NOT_OPTIONS:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            out.append(Change(f.name, a, b))
    return out


def refused(changes: list[Change]) -> Change | None:
    for change in changes:
        if not change.rule.reloadable or change.auth_refusal() is not None \
                or change.system_account_refusal() is not None or change.operator_refusal() is not None \
                or change.jetstream_refusal() is not None:
            return change
    return None


def always_lines(old: Options, new: Options) -> list[str]:
    """What the reference logs on every successful reload, before the changes: nkey users
    when either configuration has some, then users and accounts."""
    out = []
    if old.auth.has_nkeys or new.auth.has_nkeys:
        out.append("Reloaded: authorization nkey users")
    return out + ["Reloaded: authorization users", "Reloaded: accounts"]


def table_markdown() -> str:
    lines = ["# Reloading the configuration",
             "",
             "Generated from `config/reload.py` (`python -m actor_nats.config.reload > docs/reload.md`).",
             "",
             "Send SIGHUP or run `actor-nats --signal reload[=<pid or pid file>]`. The server reads its",
             "config file again (flags given at start still win), and either applies every change or,",
             "if any option below needs a restart, refuses the whole reload with the reference's message",
             "and keeps running on the old configuration. The log names each applied change",
             "(`Reloaded: max_payload = 2097152`). `GET /configz` on the monitoring port shows the",
             "running options.",
             "",
             "| option | reloads | reference field | notes |",
             "|---|---|---|---|"]
    for name, rule in RULES.items():
        lines.append(f"| `{rule.key}` | {'yes' if rule.reloadable else 'restart'} | "
                     f"`{rule.go_name}` | {rule.note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table_markdown(), end="")
