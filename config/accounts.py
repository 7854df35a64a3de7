"""The `accounts` block, `system_account` and `no_system_account`: typed, validated as the reference.

    accounts {
      A: {
        users: [{user: a, password: a}]
        exports: [{stream: "events.>"}, {service: "req.>", response_type: stream, accounts: [B]}]
        jetstream: enabled            # or {max_mem, max_file, max_streams, max_consumers}
      }
      B: {
        users: [{user: b, password: b}]
        imports: [{stream: {account: A, subject: "events.>"}, prefix: "a"},
                  {service: {account: A, subject: "req.x"}, to: "ask"}]
      }
    }

Owns the frozen option types (`AccountSpec`, `Export`, `Import`, `AccountsOptions`) and their
parsing with the reference's error texts and positions, plus the cross-account checks the
reference makes while loading (an import names a defined account, an export allows it, no two
service imports share a local subject). Users declared in an account are returned with their
`account` set; options.py merges them into the authorization users, where duplicates across
blocks are refused (`Duplicate user "a" detected`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..protocol.subjects import subject_matches, valid_subject
from .auth import AuthConfigError, _go_type, _item_pos, _parse_user, _pos, _str, parse_permissions
from .mappings import parse_mappings
from .mappings import summary as mapping_summary

GLOBAL_ACCOUNT = "$G"
DEFAULT_SYSTEM_ACCOUNT = "$SYS"
RESPONSE_TYPES = {"singleton": "Singleton", "stream": "Stream", "chunked": "Chunked"}


@dataclass(frozen=True)
class Export:
    subject: str
    service: bool
    accounts: tuple = ()  # empty: public
    response_type: str = "Singleton"

    def allows(self, account: str) -> bool:
        return not self.accounts or account in self.accounts


@dataclass(frozen=True)
class Import:
    account: str  # the exporting account
    subject: str  # the subject in the exporting account
    service: bool
    to: str = ""  # the local subject (service) or remap (stream)
    prefix: str = ""  # stream imports only


@dataclass(frozen=True)
class AccountSpec:
    name: str
    users: tuple = ()
    exports: tuple = ()
    imports: tuple = ()
    jetstream: dict | None = None  # None: not enabled; {} enabled without limits
    default_permissions: object = None
    mappings: tuple = ()  # MappingSpecs (config/mappings.py)

    def __hash__(self) -> int:
        return hash((self.name, self.users, self.exports, self.imports, self.mappings,
                     tuple(sorted((self.jetstream or {}).items())) if self.jetstream is not None else None))


class AccountsOptions:
    """Immutable. Not a dataclass, for the reason AuthOptions is not: `dataclasses.asdict` of
    the options (for /configz) must get the redacted `summary()`, never the users' secrets."""

    __slots__ = ("accounts", "system_account", "no_system_account", "mappings")

    def __init__(self, accounts: tuple = (), system_account: str = "",
                 no_system_account: bool = False, mappings: tuple = ()):
        object.__setattr__(self, "accounts", tuple(accounts))
        object.__setattr__(self, "system_account", system_account)  # "" = the default $SYS
        object.__setattr__(self, "no_system_account", no_system_account)
        # the top-level mappings block: the global account's MappingSpecs (config/mappings.py)
        object.__setattr__(self, "mappings", tuple(mappings))

    def __setattr__(self, name, value):
        raise AttributeError("AccountsOptions is immutable")

    def _values(self) -> tuple:
        return (self.accounts, self.system_account, self.no_system_account, self.mappings)

    def __eq__(self, other) -> bool:
        return isinstance(other, AccountsOptions) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def with_(self, **changes) -> "AccountsOptions":
        values = dict(zip(self.__slots__, self._values()))
        values.update(changes)
        return AccountsOptions(**values)

    def get(self, name: str) -> AccountSpec | None:
        return next((a for a in self.accounts if a.name == name), None)

    def names(self) -> list[str]:
        return [a.name for a in self.accounts]

    def users(self) -> tuple:
        return tuple(u for a in self.accounts for u in a.users)

    def summary(self) -> dict:
        return {"accounts": {a.name: {"users": [u.nkey or u.username for u in a.users],
                                      "exports": [e.subject for e in a.exports],
                                      "imports": [f"{i.account}:{i.subject}" for i in a.imports],
                                      "jetstream": a.jetstream,
                                      "mappings": mapping_summary(a.mappings)}
                             for a in self.accounts},
                "system_account": self.system_account or DEFAULT_SYSTEM_ACCOUNT,
                "no_system_account": self.no_system_account,
                "mappings": mapping_summary(self.mappings)}

    def mappings_of(self, account: str) -> tuple:
        """The MappingSpecs of an account (the top-level block is the global account's)."""
        if account == GLOBAL_ACCOUNT:
            return self.mappings
        spec = self.get(account)
        return spec.mappings if spec is not None else ()

    def __repr__(self) -> str:
        return f"AccountsOptions({self.summary()})"

    def __deepcopy__(self, memo):
        return self.summary()


class _Errors(AuthConfigError):
    def __init__(self, messages):
        super().__init__("\n".join(messages))
        self.messages = list(messages)


def parse_accounts(value, where: str = "") -> tuple:
    """The `accounts` block → AccountSpecs (users carry their account). Every error in the
    block is reported, as the reference does."""
    if not isinstance(value, dict):
        if isinstance(value, list):  # the old list form: [A, B]
            return tuple(AccountSpec(name=str(n)) for n in value)
        raise AuthConfigError(where + "Expected map entries for accounts")
    errors: list[str] = []
    specs: list[AccountSpec] = []
    for name, body in value.items():
        if not isinstance(body, dict):
            errors.append(_pos(value, name) + "Expected map entries for accounts")
            continue
        users: tuple = ()
        exports: list = []
        imports: list = []
        jetstream = None
        default_perms = None
        mappings: tuple = ()
        for key, v in body.items():
            lk = key.lower()
            try:
                if lk == "users":
                    if not isinstance(v, list):
                        raise AuthConfigError(_pos(body, key) + f"Expected users field to be an array, got {v}")
                    users = tuple(_parse_user(item, _item_pos(v, i)) for i, item in enumerate(v))
                elif lk == "exports":
                    exports.extend(_entries(v, body, key, _parse_export, errors))
                elif lk == "imports":
                    imports.extend(_entries(v, body, key, _parse_import, errors))
                elif lk in ("jetstream", "js"):
                    jetstream = _parse_jetstream(v, body, key)
                elif lk == "default_permissions":
                    default_perms = parse_permissions(v, body, key)
                elif lk in ("mappings", "maps"):
                    mappings, problems = parse_mappings(v, body, key)
                    errors.extend(problems)
                elif lk in ("limits", "nkey", "msg_trace", "trace_dest"):
                    raise AuthConfigError(_pos(body, key) + f'"{key}" is not supported by actor-nats yet')
                else:
                    raise AuthConfigError(_pos(body, key) + f'unknown field "{key}"')
            except _Errors as e:
                errors.extend(e.messages)
            except AuthConfigError as e:
                errors.append(str(e))
        if default_perms is not None:
            users = tuple(u if u.permissions is not None else replace(u, permissions=default_perms)
                          for u in users)
        users = tuple(replace(u, account=name) for u in users)
        specs.append(AccountSpec(name=name, users=users, exports=tuple(exports), imports=tuple(imports),
                                 jetstream=jetstream, default_permissions=default_perms,
                                 mappings=mappings))
    if errors:
        raise _Errors(errors)
    return tuple(specs)


def _entries(v, parent, key, parse, errors):
    if not isinstance(v, list):
        raise AuthConfigError(_pos(parent, key) + f"Exports should be an array, got {_go_type(v)}"
                              if key.lower() == "exports" else
                              _pos(parent, key) + f"Imports should be an array, got {_go_type(v)}")
    out = []
    for i, item in enumerate(v):
        try:
            out.append(parse(item, _item_pos(v, i)))
        except AuthConfigError as e:
            errors.append(str(e))
    return out


def _parse_export(item, where: str) -> Export:
    if not isinstance(item, dict):
        raise AuthConfigError(where + f"Export Items should be a map with type entry, got {_go_type(item)}")
    subject = None
    service = False
    accounts: tuple = ()
    response_type = "Singleton"
    for key, v in item.items():
        lk = key.lower()
        if lk in ("stream", "service"):
            subject = _str(item, key, v)
            service = lk == "service"
            if not valid_subject(subject.encode()):
                raise AuthConfigError(_pos(item, key) + f'invalid subject "{subject}"')
        elif lk == "accounts":
            if not isinstance(v, list):
                raise AuthConfigError(_pos(item, key) + f"Expected accounts field to be an array, got {v}")
            accounts = tuple(str(a) for a in v)
        elif lk in ("response", "response_type"):
            rt = _str(item, key, v)
            if rt.lower() not in RESPONSE_TYPES:
                raise AuthConfigError(_pos(item, key) + f'Unknown response type: "{rt}"')
            response_type = RESPONSE_TYPES[rt.lower()]
        elif lk in ("threshold", "response_threshold", "latency", "account_token_position",
                    "advertise", "allow_trace"):
            raise AuthConfigError(_pos(item, key) + f'"{key}" is not supported by actor-nats yet')
        else:
            raise AuthConfigError(_pos(item, key) + f'unknown field "{key}"')
    if subject is None:
        raise AuthConfigError(where + "Export Items should be a map with type entry")
    return Export(subject=subject, service=service, accounts=accounts, response_type=response_type)


def _parse_import(item, where: str) -> Import:
    if not isinstance(item, dict):
        raise AuthConfigError(where + f"Import Items should be a map with type entry, got {_go_type(item)}")
    kind = None
    account = subject = to = prefix = ""
    for key, v in item.items():
        lk = key.lower()
        if lk in ("stream", "service"):
            kind = lk
            if not isinstance(v, dict):
                raise AuthConfigError(_pos(item, key) + f"{lk.capitalize()} entry should be an account map, "
                                      f"got {_go_type(v)}")
            for k2, v2 in v.items():
                l2 = k2.lower()
                if l2 == "account":
                    account = _str(v, k2, v2)
                elif l2 == "subject":
                    subject = _str(v, k2, v2)
                else:
                    raise AuthConfigError(_pos(v, k2) + f'unknown field "{k2}"')
        elif lk == "to":
            to = _str(item, key, v)
        elif lk == "prefix":
            prefix = _str(item, key, v)
        elif lk in ("share", "allow_trace"):
            raise AuthConfigError(_pos(item, key) + f'"{key}" is not supported by actor-nats yet')
        else:
            raise AuthConfigError(_pos(item, key) + f'unknown field "{key}"')
    if kind is None:
        raise AuthConfigError(where + "Import Items should be a map with type entry")
    if not account:
        raise AuthConfigError(where + f"Expect an account name and a subject, got {account!r}")
    return Import(account=account, subject=subject, service=kind == "service", to=to, prefix=prefix)


def _parse_jetstream(v, parent, key) -> dict | None:
    if isinstance(v, bool):
        return {} if v else None
    if isinstance(v, str):
        if v.lower() in ("enabled", "enable", "true", "yes", "on"):
            return {}
        if v.lower() in ("disabled", "disable", "false", "no", "off"):
            return None
        raise AuthConfigError(_pos(parent, key) + f"Expected 'enabled' or 'disabled' for string value, got '{v}'")
    if isinstance(v, dict):
        limits = {}
        names = {"max_mem": "max_memory", "max_memory": "max_memory", "max_file": "max_storage",
                 "max_store": "max_storage", "max_disk": "max_storage", "max_streams": "max_streams",
                 "max_consumers": "max_consumers", "max_bytes_required": "max_bytes_required",
                 "max_ack_pending": "max_ack_pending", "mem_max_stream_bytes": "memory_max_stream_bytes",
                 "disk_max_stream_bytes": "storage_max_stream_bytes",
                 "store_max_stream_bytes": "storage_max_stream_bytes"}
        for k, val in v.items():
            name = names.get(k.lower())
            if name is None:
                raise AuthConfigError(_pos(v, k) + f'unknown field "{k}"')
            if name == "max_bytes_required":
                limits[name] = bool(val)
            elif not isinstance(val, int) or isinstance(val, bool):
                raise AuthConfigError(_pos(v, k) + f"Expected a parseable size for {k!r}, got {val}")
            else:
                limits[name] = val
        return limits
    raise AuthConfigError(_pos(parent, key) + f"Expected map, bool or string, got {_go_type(v)}")


def check_accounts(specs: tuple, where: str = "") -> None:
    """The reference's cross-account checks at load, with its texts."""
    names = {a.name for a in specs} | {GLOBAL_ACCOUNT}
    errors: list[str] = []
    by_name = {a.name: a for a in specs}
    for a in specs:
        for e in a.exports:
            for acc in e.accounts:
                if acc not in names:
                    kind = "service export" if e.service else "stream export"
                    errors.append(where + f'"{acc}" account not defined for {kind}')
    if errors:
        raise _Errors(errors)
    for a in specs:
        seen_service: dict = {}
        for imp in a.imports:
            kind = "service" if imp.service else "stream"
            if imp.account not in names:
                errors.append(where + f'"{imp.account}" account not defined for {kind} import')
                continue
            exporter = by_name.get(imp.account)
            exports = exporter.exports if exporter is not None else ()
            if not any(e.service == imp.service and e.allows(a.name) and
                       subject_matches(e.subject.encode(), imp.subject.encode()) for e in exports):
                errors.append(where + f'Error adding {kind} import "{imp.subject}": {kind} import not authorized')
                continue
            if imp.service:
                local = imp.to or imp.subject
                prev = seen_service.get(local)
                if prev is not None:
                    errors.append(where + f'Duplicate service import subject "{local}", previously used in '
                                  f'import for account "{prev.account}", subject "{prev.subject}"')
                seen_service[local] = imp
    if errors:
        raise _Errors(errors)


def response_type(specs: tuple, imp: Import) -> str:
    """The response type of the export a service import uses."""
    exporter = next((a for a in specs if a.name == imp.account), None)
    for e in exporter.exports if exporter is not None else ():
        if e.service and subject_matches(e.subject.encode(), imp.subject.encode()):
            return e.response_type
    return "Singleton"


__all__ = ["AccountSpec", "AccountsOptions", "Export", "Import", "parse_accounts", "check_accounts",
           "response_type", "GLOBAL_ACCOUNT", "DEFAULT_SYSTEM_ACCOUNT"]
