"""`actor-nats passwd` and `actor-nats jwt ...`: the operator-mode tooling a user needs without
nsc or the nats CLI.

    actor-nats passwd [--password X] [--cost 11]
    actor-nats jwt init [--store DIR] [--name OPERATOR] [--sys-account SYS] [--sys-user sys]
    actor-nats jwt add account NAME [--js-mem-storage N] [--js-disk-storage N] [--js-streams N]
                                    [--js-consumer N] [--js-enable] [--conn N] [--subs N] ...
    actor-nats jwt add user NAME --account ACC [--allow-pub S]... [--allow-sub S]...
                                 [--deny-pub S]... [--deny-sub S]... [--bearer] [--expiry 1h]
    actor-nats jwt add export --account ACC --subject S [--service] [--private]
                              [--response-type singleton|stream|chunked] [--name N]
    actor-nats jwt add import --account ACC --src-account ACC2 --remote-subject S
                              [--local-subject L] [--service] [--token FILE] [--name N]
    actor-nats jwt generate activation --account ACC --subject S --target-account ACC2
                                       [--service] [--expiry 30d] [-o FILE]
    actor-nats jwt generate creds --account ACC --name USER [-o FILE]
    actor-nats jwt generate config [--resolver-dir DIR] [-o FILE]
    actor-nats jwt push (--account ACC | --all) [-s URL]
    actor-nats jwt describe (JWT | FILE)
    actor-nats jwt list

Owns the store layout (`--store DIR`, default `./nsc`, or $ACTOR_NATS_JWT_STORE):

    DIR/operator.nk, DIR/operator.jwt                operator seed and JWT
    DIR/accounts/NAME/account.nk, account.jwt        one directory per account
    DIR/accounts/NAME/users/USER.nk, .jwt, .creds    its users (the .creds is what clients load)

Seeds are written with mode 0600. `init` creates the operator, the system account (`SYS`) and a
system user (`sys`, whose creds `push` uses), like `nsc init`; `generate config` writes what
`nsc generate config --nats-resolver` writes (operator, system_account, a full nats resolver and
the system account preloaded) to be `include`d in a server config. `add export`/`add import`
re-sign the account JWT in the store (push it to update a running server); `generate
activation` is what the exporter hands to an importer of a private (`token_req`) export.

Only this module does I/O for the tooling; claims, signing and creds text are protocol/jwt.py
and protocol/creds.py. `push` talks to a running server with nats-py (asyncio, no gevent).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import secrets
import string
import sys
import time
from pathlib import Path

from .protocol import creds as ncreds
from .protocol import jwt as njwt

DEFAULT_STORE = "./nsc"
BCRYPT_COST = 11
CLAIMS_UPDATE = "$SYS.REQ.CLAIMS.UPDATE"


class ToolError(Exception):
    """A tooling failure for the user: printed as `actor-nats: <message>`, exit 1."""


# -- passwd ---------------------------------------------------------------------------------

def bcrypt_hash(password: str, cost: int = BCRYPT_COST) -> str:
    """`$2a$<cost>$...` as nats server passwd / mkpasswd produce it."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost, prefix=b"2a")).decode()


def generate_password(length: int = 22) -> str:
    alphabet = string.ascii_letters + string.digits + "#$%&()*+,-./:;<=>?@[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def passwd_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="actor-nats passwd",
                                description="Print the bcrypt hash of a password for a config.")
    p.add_argument("--password", "--pass", "-p", dest="password",
                   help="the password (else prompted for twice)")
    p.add_argument("--generate", "-g", action="store_true",
                   help="generate a random password (printed to stderr)")
    p.add_argument("--cost", type=int, default=BCRYPT_COST, help="bcrypt cost (default 11)")
    args = p.parse_args(argv)
    if args.generate:
        password = generate_password()
        print(f"password: {password}", file=sys.stderr)
    elif args.password is not None:
        password = args.password
    else:
        password = getpass.getpass("Enter password: ")
        again = getpass.getpass("Reenter password: ")
        if password != again:
            print("actor-nats: entered passwords do not match", file=sys.stderr)
            return 1
    if not password:
        print("actor-nats: the password cannot be empty", file=sys.stderr)
        return 1
    if not 4 <= args.cost <= 31:
        print(f"actor-nats: invalid bcrypt cost {args.cost}", file=sys.stderr)
        return 1
    print(bcrypt_hash(password, args.cost))
    return 0


# -- the store ------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_\-.]*")


def _check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise ToolError(f"invalid {kind} name {name!r} (letters, digits, '_', '-', '.')")
    return name


def _write(path: Path, text: str, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Store:
    """Keys and JWTs on disk (layout in the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # paths
    def account_dir(self, name: str) -> Path:
        return self.root / "accounts" / name

    def user_path(self, account: str, user: str, ext: str) -> Path:
        return self.account_dir(account) / "users" / f"{user}.{ext}"

    # operator
    def has_operator(self) -> bool:
        return (self.root / "operator.jwt").exists()

    def operator(self) -> tuple[str, njwt.Claims]:
        if not self.has_operator():
            raise ToolError(f"no operator in {self.root} (run `actor-nats jwt init --store {self.root}`)")
        seed = (self.root / "operator.nk").read_text().strip()
        return seed, njwt.decode_as((self.root / "operator.jwt").read_text().strip(), njwt.OPERATOR)

    def save_operator(self, seed: str, token: str) -> None:
        _write(self.root / "operator.nk", seed + "\n", secret=True)
        _write(self.root / "operator.jwt", token + "\n")

    # accounts
    def accounts(self) -> list[str]:
        base = self.root / "accounts"
        return sorted(p.name for p in base.iterdir() if (p / "account.jwt").exists()) if base.is_dir() else []

    def account(self, name: str) -> tuple[str, njwt.Claims]:
        d = self.account_dir(name)
        if not (d / "account.jwt").exists():
            known = ", ".join(self.accounts()) or "none"
            raise ToolError(f"account {name!r} not found in {self.root} (accounts: {known})")
        seed = (d / "account.nk").read_text().strip()
        return seed, njwt.decode_as((d / "account.jwt").read_text().strip(), njwt.ACCOUNT)

    def save_account(self, name: str, seed: str, token: str) -> None:
        d = self.account_dir(name)
        _write(d / "account.nk", seed + "\n", secret=True)
        _write(d / "account.jwt", token + "\n")

    # users
    def users(self, account: str) -> list[str]:
        d = self.account_dir(account) / "users"
        return sorted(p.stem for p in d.glob("*.jwt")) if d.is_dir() else []

    def user(self, account: str, name: str) -> tuple[str, str]:
        path = self.user_path(account, name, "jwt")
        if not path.exists():
            raise ToolError(f"user {name!r} not found in account {account!r}")
        return self.user_path(account, name, "nk").read_text().strip(), path.read_text().strip()

    def save_user(self, account: str, name: str, seed: str, token: str) -> Path:
        _write(self.user_path(account, name, "nk"), seed + "\n", secret=True)
        _write(self.user_path(account, name, "jwt"), token + "\n")
        creds = self.user_path(account, name, "creds")
        _write(creds, ncreds.format_user_creds(token, seed), secret=True)
        return creds

    def system_account_name(self) -> str:
        _, op = self.operator()
        for name in self.accounts():
            if self.account(name)[1].subject == op.system_account:
                return name
        raise ToolError("the operator has no system account in this store")


# -- operations (also used by tests) --------------------------------------------------------

def init(store: Store, name: str = "O", sys_account: str = "SYS", sys_user: str = "sys",
         now: float | None = None) -> dict:
    """Operator + system account + system user, as `nsc init` makes them."""
    _check_name("operator", name)
    if store.has_operator():
        raise ToolError(f"an operator already exists in {store.root}")
    op_seed = njwt.create_seed(njwt.OPERATOR)
    sys_seed = njwt.create_seed(njwt.ACCOUNT)
    sys_pub = njwt.public_key(sys_seed)
    op_token = njwt.encode(njwt.operator_claims(njwt.public_key(op_seed), name,
                                                system_account=sys_pub), op_seed, now)
    store.save_operator(op_seed, op_token)
    add_account(store, sys_account, seed=sys_seed, exports=njwt.system_account_exports(), now=now)
    creds = add_user(store, sys_account, sys_user, now=now)
    return {"operator": njwt.public_key(op_seed), "system_account": sys_pub, "sys_creds": str(creds)}


def add_account(store: Store, name: str, *, seed: str | None = None, limits: dict | None = None,
                exports=(), imports=(), now: float | None = None) -> njwt.Claims:
    _check_name("account", name)
    op_seed, _ = store.operator()
    if name in store.accounts():
        raise ToolError(f"account {name!r} already exists")
    seed = seed or njwt.create_seed(njwt.ACCOUNT)
    claims = njwt.account_claims(njwt.public_key(seed), name,
                                 limits=njwt.account_limits(**(limits or {})),
                                 exports=exports, imports=imports)
    token = njwt.encode(claims, op_seed, now)
    store.save_account(name, seed, token)
    return njwt.decode(token)


def add_user(store: Store, account: str, name: str, *, pub_allow=(), pub_deny=(), sub_allow=(),
             sub_deny=(), resp=None, bearer: bool = False, expires: int = 0,
             limits: dict | None = None, now: float | None = None) -> Path:
    _check_name("user", name)
    acc_seed, _ = store.account(account)
    if name in store.users(account):
        raise ToolError(f"user {name!r} already exists in account {account!r}")
    seed = njwt.create_seed(njwt.USER)
    claims = njwt.user_claims(njwt.public_key(seed), name, pub_allow=pub_allow, pub_deny=pub_deny,
                              sub_allow=sub_allow, sub_deny=sub_deny, resp=resp,
                              bearer_token=bearer, expires=expires, **(limits or {}))
    token = njwt.encode(claims, acc_seed, now)
    return store.save_user(account, name, seed, token)


# the Go account claims' field order (type and version go last in protocol/jwt.py)
_ACCOUNT_NATS_ORDER = ("imports", "exports", "limits", "signing_keys", "revocations",
                       "default_permissions", "mappings", "authorization", "trace",
                       "cluster_traffic", "description", "info_url")


def resign_account(store: Store, name: str, now: float | None = None, **nats_changes) -> njwt.Claims:
    """Re-sign account `name` with the operator's key, its `nats` claims updated."""
    op_seed, _ = store.operator()
    seed, claims = store.account(name)
    nats_claims = dict(claims.nats)
    nats_claims.update(nats_changes)
    for key in ("imports", "exports"):
        if nats_claims.get(key):
            nats_claims[key] = sorted(nats_claims[key], key=lambda e: e.get("subject", ""))
        else:
            nats_claims.pop(key, None)
    order = {k: i for i, k in enumerate(_ACCOUNT_NATS_ORDER)}
    nats_claims = dict(sorted(nats_claims.items(), key=lambda kv: order.get(kv[0], len(order))))
    body = {"sub": claims.subject, "name": claims.name, "nats": nats_claims}
    for key, value in (("exp", claims.expires), ("nbf", claims.not_before), ("aud", claims.audience)):
        if value:
            body[key] = value
    token = njwt.encode(body, op_seed, now)
    store.save_account(name, seed, token)
    return njwt.decode(token)


def resolve_account(store: Store, ref: str) -> tuple[str, str]:
    """(store name or "", public key) of an account given by name in the store or by key."""
    if njwt.is_public_key(ref, njwt.ACCOUNT):
        for name in store.accounts():
            if store.account(name)[1].subject == ref:
                return name, ref
        return "", ref
    return ref, store.account(ref)[1].subject


def add_export(store: Store, account: str, subject: str, *, service: bool = False,
               private: bool = False, response_type: str = "", name: str = "",
               account_token_position: int = 0, now: float | None = None) -> njwt.Claims:
    """`nsc add export`: a stream (or service) export of `subject`, public unless `private`
    (then importers need an activation token)."""
    _, claims = store.account(account)
    if not subject or any(njwt._subject_issues(subject)):  # noqa: SLF001
        raise ToolError(f"invalid export subject {subject!r}")
    if response_type:
        rt = {"singleton": "Singleton", "stream": "Stream", "chunked": "Chunked"}.get(response_type.lower())
        if rt is None:
            raise ToolError(f"invalid response type {response_type!r} (singleton, stream, chunked)")
        if not service:
            raise ToolError("--response-type is only for service exports")
        response_type = rt
    elif service:
        response_type = "Singleton"
    exports = [e for e in claims.nats.get("exports") or () if isinstance(e, dict)]
    kind = njwt.SERVICE if service else njwt.STREAM
    if any(e.get("subject") == subject and (e.get("type") or njwt.STREAM) == kind for e in exports):
        raise ToolError(f"account {account!r} already exports {kind} {subject!r}")
    exports.append(njwt.export_claim(subject, service=service, name=name, token_req=private,
                                     response_type=response_type,
                                     account_token_position=account_token_position))
    return resign_account(store, account, now, exports=exports)


def generate_activation(store: Store, account: str, subject: str, target: str, *,
                        service: bool | None = None, expires: int = 0,
                        now: float | None = None) -> str:
    """`nsc generate activation`: a token letting account `target` (name in the store or
    public key) import `subject` (an export of `account`, or a part of one)."""
    seed, claims = store.account(account)
    _, target_pub = resolve_account(store, target)
    kinds = [(e.get("type") or njwt.STREAM) for e in claims.nats.get("exports") or ()
             if isinstance(e, dict) and e.get("subject")
             and njwt.subject_contained_in(subject, e["subject"])]
    if service is None:
        if not kinds:
            raise ToolError(f"account {account!r} has no export containing {subject!r}")
        kind = kinds[0]
    else:
        kind = njwt.SERVICE if service else njwt.STREAM
        if kind not in kinds:
            raise ToolError(f"account {account!r} has no {kind} export containing {subject!r}")
    act = njwt.activation_claims(target_pub, subject, kind, expires=expires)
    return njwt.encode(act, seed, now)


def add_import(store: Store, account: str, src_account: str, remote_subject: str, *,
               local_subject: str = "", service: bool = False, token: str = "", name: str = "",
               now: float | None = None) -> njwt.Claims:
    """`nsc add import`: account `account` imports `remote_subject` of `src_account` (name in
    the store or public key), as `local_subject` if given; `token` = the activation JWT a
    private export needs (checked here as the server will check it)."""
    _, claims = store.account(account)
    src_name, src_pub = resolve_account(store, src_account)
    if src_pub == claims.subject:
        raise ToolError("an account cannot import from itself")
    kind = njwt.SERVICE if service else njwt.STREAM
    imp = njwt.import_claim(src_pub, remote_subject, service=service, name=name,
                            local_subject=local_subject, token=token.strip())
    issues = njwt.import_issues(imp, claims.subject)
    if issues:
        raise ToolError("; ".join(issues))
    if src_name:
        exporter = store.account(src_name)[1]
        export, _ = njwt.find_export(exporter, remote_subject, kind)
        if export is None:
            raise ToolError(f"account {src_name!r} has no {kind} export containing {remote_subject!r}")
        if export.get("token_req") and not token:
            raise ToolError(f"the {kind} export {export['subject']!r} of {src_name!r} is private: "
                            f"pass --token (made by `actor-nats jwt generate activation`)")
        reason, _ = njwt.check_import(exporter, claims.subject, imp, now)
        if reason:
            raise ToolError(reason)
    imports = [i for i in claims.nats.get("imports") or () if isinstance(i, dict)
               and not (i.get("account") == src_pub and i.get("subject") == remote_subject
                        and i.get("type") == kind)]
    imports.append(imp)
    return resign_account(store, account, now, imports=imports)


RESOLVER_TEMPLATE = """\
# Operator named {op_name}
operator: {op_jwt}
# System Account named {sys_name}
system_account: {sys_pub}

# configuration of the nats based resolver
resolver {{
    type: full
    # Directory in which the account JWTs will be stored
    dir: '{dir}'
    # In order to support JWT deletion, set to true
    # If the resolver type is full, delete renames the JWT (suffix .delete)
    allow_delete: false
    # Interval at which a server compares its JWTs with a random other nats based resolver
    interval: "2m"
    # Timeout for lookup requests in case an account does not exist locally
    timeout: "1.9s"
}}

# Preload the nats based resolver with the system account JWT.
# Other accounts are pushed with: actor-nats jwt push --all
resolver_preload: {{
    {sys_pub}: {sys_jwt},
}}
"""


def resolver_config(store: Store, resolver_dir: str = "./jwt") -> str:
    _, op = store.operator()
    sys_name = store.system_account_name()
    _, sys_acc = store.account(sys_name)
    return RESOLVER_TEMPLATE.format(op_name=op.name, op_jwt=op.token, sys_name=sys_name,
                                    sys_pub=sys_acc.subject, sys_jwt=sys_acc.token,
                                    dir=resolver_dir.replace("'", "\\'"))


async def _push_async(url: str, creds_path: str, tokens: list[str], timeout: float) -> list[dict]:
    import nats

    nc = await nats.connect(url, user_credentials=creds_path, connect_timeout=timeout,
                            allow_reconnect=False, max_reconnect_attempts=0)
    replies = []
    try:
        for token in tokens:
            msg = await nc.request(CLAIMS_UPDATE, token.encode(), timeout=timeout)
            replies.append(json.loads(msg.data))
    finally:
        await nc.close()
    return replies


def push(store: Store, accounts: list[str], url: str, timeout: float = 5.0) -> list[dict]:
    """Publish account JWTs to `$SYS.REQ.CLAIMS.UPDATE` as the system user; the replies."""
    import asyncio

    sys_name = store.system_account_name()
    users = store.users(sys_name)
    if not users:
        raise ToolError(f"the system account {sys_name!r} has no user to push with")
    creds = str(store.user_path(sys_name, users[0], "creds"))
    tokens = [store.account(a)[1].token for a in accounts]
    return asyncio.run(_push_async(url, creds, tokens, timeout))


# -- command line ---------------------------------------------------------------------------

_SIZE = re.compile(r"(-?\d+)\s*([KMGT]?)(I?B?)?", re.I)


def parse_size(text: str) -> int:
    """`-1`, `1024`, `512M`, `1G`, `1GiB` (binary units, as nsc's)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}")
    n = int(m.group(1))
    return n * (1024 ** " KMGT".index(m.group(2).upper() or " "))


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+)([smhdwy])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 30m, 12h, 7d)")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[m.group(2)]
    return int(m.group(1)) * unit


def _parser() -> argparse.ArgumentParser:
    store_env = os.environ.get("ACTOR_NATS_JWT_STORE", DEFAULT_STORE)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=store_env,
                        help=f"key and JWT directory (default {DEFAULT_STORE}, $ACTOR_NATS_JWT_STORE)")
    p = argparse.ArgumentParser(prog="actor-nats jwt",
                                description="Operator-mode JWTs, keys and creds (what nsc does).")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("init", parents=[common], help="create an operator, SYS account and sys user")
    s.add_argument("--name", "-n", default="O", help="operator name (default O)")
    s.add_argument("--sys-account", default="SYS")
    s.add_argument("--sys-user", default="sys")

    add = sub.add_parser("add", help="add an account or a user").add_subparsers(dest="what", required=True)
    a = add.add_parser("account", parents=[common], help="add an account signed by the operator")
    a.add_argument("name")
    for flag, key in (("--js-mem-storage", "mem_storage"), ("--js-disk-storage", "disk_storage"),
                      ("--js-streams", "streams"), ("--js-consumer", "consumer"),
                      ("--js-max-ack-pending", "max_ack_pending"),
                      ("--js-max-mem-stream", "mem_max_stream_bytes"),
                      ("--js-max-disk-stream", "disk_max_stream_bytes")):
        a.add_argument(flag, dest=key, type=parse_size, help="JetStream limit (-1 = unlimited)")
    a.add_argument("--js-enable", action="store_true",
                   help="JetStream unlimited (mem, disk, streams, consumers = -1) unless set above")
    for flag, key in (("--conn", "conn"), ("--leaf-conn", "leaf"), ("--subscriptions", "subs"),
                      ("--data", "data"), ("--payload", "payload"), ("--imports", "imports"),
                      ("--exports", "exports")):
        a.add_argument(flag, dest=key, type=parse_size, help="account limit (-1 = unlimited)")

    u = add.add_parser("user", parents=[common], help="add a user signed by its account")
    u.add_argument("name")
    u.add_argument("--account", "-a", required=True)
    for flag, dest in (("--allow-pub", "pub_allow"), ("--allow-sub", "sub_allow"),
                       ("--deny-pub", "pub_deny"), ("--deny-sub", "sub_deny")):
        u.add_argument(flag, dest=dest, action="append", default=[],
                       help="subject (repeatable; comma separated lists accepted)")
    u.add_argument("--allow-pubsub", action="append", default=[], help="--allow-pub and --allow-sub")
    u.add_argument("--deny-pubsub", action="append", default=[], help="--deny-pub and --deny-sub")
    u.add_argument("--response-ttl", type=parse_duration, default=None,
                   help="allow responses to requests received, for this long")
    u.add_argument("--max-responses", type=int, default=None)
    u.add_argument("--bearer", action="store_true", help="no nonce signature needed")
    u.add_argument("--expiry", type=parse_duration, default=None, help="valid for (30m, 12h, 7d)")
    u.add_argument("--subscriptions", dest="subs", type=parse_size, default=-1)
    u.add_argument("--data", type=parse_size, default=-1)
    u.add_argument("--payload", type=parse_size, default=-1)

    e = add.add_parser("export", parents=[common], help="export a stream or service of an account")
    e.add_argument("--account", "-a", required=True)
    e.add_argument("--subject", "-s", required=True)
    e.add_argument("--service", action="store_true", help="a service (default: a stream)")
    e.add_argument("--private", action="store_true",
                   help="importers need an activation token (token_req)")
    e.add_argument("--response-type", choices=("singleton", "stream", "chunked"), default="",
                   type=str.lower, help="service response type (default singleton)")
    e.add_argument("--name", "-n", default="")
    e.add_argument("--account-token-position", type=int, default=0,
                   help="token of the subject that must be the importing account's key")

    i = add.add_parser("import", parents=[common], help="import another account's export")
    i.add_argument("--account", "-a", required=True, help="the importing account")
    i.add_argument("--src-account", required=True, help="the exporting account (name or key)")
    i.add_argument("--remote-subject", required=True, help="the subject as exported")
    i.add_argument("--local-subject", default="", help="the subject in the importing account")
    i.add_argument("--service", action="store_true")
    i.add_argument("--token", default="", help="activation token file (or the JWT itself)")
    i.add_argument("--name", "-n", default="")

    gen = sub.add_parser("generate", help="creds or resolver config").add_subparsers(dest="what", required=True)
    c = gen.add_parser("creds", parents=[common], help="print (or write) a user's .creds")
    c.add_argument("--account", "-a", required=True)
    c.add_argument("--name", "-n", required=True, help="user name")
    c.add_argument("--output-file", "-o")
    ga = gen.add_parser("activation", parents=[common],
                        help="an activation token for a private export")
    ga.add_argument("--account", "-a", required=True, help="the exporting account")
    ga.add_argument("--subject", "-s", required=True, help="the export's subject (or a part)")
    ga.add_argument("--target-account", "-t", required=True, help="the importer (name or key)")
    ga.add_argument("--service", action="store_true", default=None,
                    help="(the export's kind is found from the subject otherwise)")
    ga.add_argument("--expiry", type=parse_duration, default=None, help="valid for (30m, 12h, 7d)")
    ga.add_argument("--output-file", "-o")
    g = gen.add_parser("config", parents=[common], help="resolver config to include in a server config")
    g.add_argument("--nats-resolver", action="store_true", help="(the default and only kind)")
    g.add_argument("--resolver-dir", default="./jwt", help="resolver dir (default ./jwt)")
    g.add_argument("--output-file", "-o")

    ps = sub.add_parser("push", parents=[common], help="send account JWTs to a running server")
    grp = ps.add_mutually_exclusive_group(required=True)
    grp.add_argument("--account", "-a", action="append")
    grp.add_argument("--all", "-A", action="store_true")
    ps.add_argument("--server", "-s", default="nats://127.0.0.1:4222")
    ps.add_argument("--timeout", type=float, default=5.0)

    d = sub.add_parser("describe", help="decode a JWT (or a file holding one) and print its claims")
    d.add_argument("what")
    d.add_argument("--json", action="store_true", help="claims only, as JSON")

    sub.add_parser("list", parents=[common], help="operator, accounts and users in the store")
    return p


def _split(values: list[str]) -> list[str]:
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _describe(text: str, as_json: bool) -> str:
    path = Path(text)
    if len(text) < 4096 and path.exists():
        text = path.read_text()
    token = ncreds.parse_jwt(text)
    claims = njwt.decode(token)
    payload = json.loads(njwt._b64(token.split(".")[1]))  # noqa: SLF001
    if as_json:
        return json.dumps(payload, indent=2)
    issues = njwt.validate(claims)
    lines = [f"{claims.type.capitalize()} {claims.name!r}",
             f"  subject:  {claims.subject}", f"  issuer:   {claims.issuer}",
             f"  issued:   {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(claims.issued_at))}",
             f"  expires:  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(claims.expires)) if claims.expires else 'never'}",
             f"  valid:    {'yes' if not issues else '; '.join(issues)}",
             "  nats:     " + json.dumps(dict(claims.nats), indent=2).replace("\n", "\n            ")]
    return "\n".join(lines)


def jwt_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ToolError, njwt.JWTError, ncreds.CredsError, OSError) as e:
        print(f"actor-nats: {e}", file=sys.stderr)
        return 1


def _run(args) -> int:
    if args.cmd == "describe":
        print(_describe(args.what, args.json))
        return 0
    store = Store(args.store)
    if args.cmd == "init":
        info = init(store, args.name, args.sys_account, args.sys_user)
        print(f"operator {args.name!r} {info['operator']} in {store.root}")
        print(f"system account {args.sys_account!r} {info['system_account']}")
        print(f"system user creds: {info['sys_creds']}")
        return 0
    if args.cmd == "add" and args.what == "account":
        limits = {k: getattr(args, k) for k in njwt.ACCOUNT_LIMIT_KEYS
                  if getattr(args, k, None) is not None}
        if args.js_enable:
            for key in ("mem_storage", "disk_storage", "streams", "consumer"):
                limits.setdefault(key, njwt.NO_LIMIT)
        claims = add_account(store, args.name, limits=limits)
        print(f"account {args.name!r} {claims.subject}")
        print(f"limits: {json.dumps(claims.nats['limits'])}")
        return 0
    if args.cmd == "add" and args.what == "user":
        resp = None
        if args.response_ttl is not None or args.max_responses is not None:
            resp = (args.max_responses or 1, args.response_ttl or 0)
        now = time.time()
        creds = add_user(store, args.account, args.name,
                         pub_allow=_split(args.pub_allow + args.allow_pubsub),
                         sub_allow=_split(args.sub_allow + args.allow_pubsub),
                         pub_deny=_split(args.pub_deny + args.deny_pubsub),
                         sub_deny=_split(args.sub_deny + args.deny_pubsub), resp=resp,
                         bearer=args.bearer,
                         expires=int(now + args.expiry) if args.expiry else 0,
                         limits={"subs": args.subs, "data": args.data, "payload": args.payload},
                         now=now)
        print(f"user {args.name!r} in account {args.account!r}")
        print(f"creds: {creds}")
        return 0
    if args.cmd == "add" and args.what == "export":
        claims = add_export(store, args.account, args.subject, service=args.service,
                            private=args.private, response_type=args.response_type,
                            name=args.name, account_token_position=args.account_token_position)
        kind = "service" if args.service else "stream"
        print(f"added {'private' if args.private else 'public'} {kind} export {args.subject!r} "
              f"to account {args.account!r} {claims.subject}")
        return 0
    if args.cmd == "add" and args.what == "import":
        token = args.token
        if token and len(token) < 4096 and Path(token).exists():
            token = Path(token).read_text()
        if token:
            token = ncreds.parse_jwt(token)
        add_import(store, args.account, args.src_account, args.remote_subject,
                   local_subject=args.local_subject, service=args.service, token=token,
                   name=args.name)
        kind = "service" if args.service else "stream"
        print(f"added {kind} import {args.remote_subject!r} from {args.src_account!r} "
              f"to account {args.account!r}")
        return 0
    if args.cmd == "generate" and args.what == "activation":
        expires = int(time.time() + args.expiry) if args.expiry else 0
        token = generate_activation(store, args.account, args.subject, args.target_account,
                                    service=args.service, expires=expires)
        if args.output_file:
            _write(Path(args.output_file), token + "\n")
        else:
            print(token)
        return 0
    if args.cmd == "generate" and args.what == "creds":
        seed, token = store.user(args.account, args.name)
        text = ncreds.format_user_creds(token, seed)
        if args.output_file:
            _write(Path(args.output_file), text, secret=True)
        else:
            sys.stdout.write(text)
        return 0
    if args.cmd == "generate" and args.what == "config":
        text = resolver_config(store, args.resolver_dir)
        if args.output_file:
            _write(Path(args.output_file), text)
        else:
            sys.stdout.write(text)
        return 0
    if args.cmd == "push":
        accounts = store.accounts() if args.all else args.account
        try:
            replies = push(store, accounts, args.server, args.timeout)
        except ToolError:
            raise
        except Exception as e:  # connection refused, auth violation, timeout: say which
            raise ToolError(f"push to {args.server} failed: {type(e).__name__}: {e}") from None
        failed = 0
        for name, reply in zip(accounts, replies):
            print(f"{name}: {json.dumps(reply)}")
            failed += "error" in reply
        return 1 if failed else 0
    if args.cmd == "list":
        _, op = store.operator()
        print(f"operator {op.name} {op.subject}")
        for acc in store.accounts():
            claims = store.account(acc)[1]
            mark = " (system)" if claims.subject == op.system_account else ""
            print(f"  account {acc} {claims.subject}{mark}")
            for user in store.users(acc):
                print(f"    user {user} {njwt.decode(store.user(acc, user)[1]).subject}")
        return 0
    raise ToolError(f"unknown command {args.cmd}")


def main(argv: list[str]) -> int:
    """`argv` starts with `passwd` or `jwt`."""
    if argv[0] == "passwd":
        return passwd_main(argv[1:])
    return jwt_main(argv[1:])
