"""JetStream on one server: the supervisor of everything JetStream, and the API actor.

    /server/jetstream (one_for_one)
    ├── <account>   (JsAccount, one_for_one) one per account with JetStream enabled
    │   └── <stream>    (Stream, a supervisor of its consumers; see actors/stream.py)
    └── api         (JsApi) answers $JS.API.> in every account

Messages the API actor takes besides its subscriptions: ("account_enabled", account) (tell)
when an account appears or gains JetStream at runtime (the JWT resolver sends it): it
subscribes that account's API subjects, once; the account's stream supervisor starts on its
first request. ("api_stats",) (ask): request counters, for /jsz.

Start order: the account supervisors first (they recover the streams found on disk), then the
API actor, which only then starts answering. A stream's `StreamHolder` (config, creation time,
open store) lives in `ctx.js_holders[account][name]`, outside every actor, so a restarted Stream,
JsAccount or JetStream finds its memory streams again and file streams are reopened from disk.
Only the API actor adds or removes holders (it is the one place that creates and deletes
streams, so subject overlaps and account limits are decided in one place); a Stream updates its
holder's config when the API actor asks it to apply an update.

The API actor owns account-wide answers (INFO, stream NAMES/LIST, create/update/delete and their
limits and overlap checks, consumer create/delete/names/list routing) and forwards stream-level
requests by asking the Stream. STREAM.SNAPSHOT and STREAM.RESTORE speak the reference's chunked
protocol from here (see "snapshot and restore" below; the archive is the Stream's, see
actors/stream.py). It never answers `CONSUMER.MSG.NEXT` or `DIRECT.GET` (consumers
and streams subscribe to those themselves). When JetStream is off server-wide nothing here runs,
so clients get no-responders, as from the reference. On one server the leader stepdowns and
STREAM.PEER.REMOVE answer 10010 (clustering required), META.LEADER.STEPDOWN and SERVER.REMOVE
are not answered, and ACCOUNT.PURGE.<account> is answered in the system account only; all as
the reference. CONSUMER.PAUSE is saved by the Stream (see actors/stream.py); CONSUMER.UNPIN
tells the consumer ("unpin", group) after the checks.

Request decoding, config defaults and validation, update rules, error texts and response shapes
come from protocol/jsapi.py and protocol/jserrors.py only (one source of truth, checked against
the reference by tests/wire/test_js_api_reference.py); this module adds the checks that need
state (which streams and consumers exist, account limits, overlaps), in the reference's order,
and the stream/consumer action advisories on `$JS.EVENT.ADVISORY.`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time

import gevent
import gevent.queue
import pykka

from ..config.jetstream import friendly_bytes
from ..protocol import jsapi
from ..protocol import jserrors as E
from ..protocol.ids import server_id
from ..store.base import StreamStore
from .internal import InternalClient
from .runtime import Actor, registry
from .system import client_info
from .stream import (Stream, StreamHolder, action_advisory, file_store_dir, limits_of,
                     load_snapshot, read_snapshot_meta, rfc3339, subjects_overlap)
from .supervisor import ONE_FOR_ONE, ChildSpec, StartChild, StopChild, Supervisor

log = logging.getLogger("actor_nats")

API_LEVEL = jsapi.JS_API_LEVEL  # the reference's JetStream API level for NATS_VERSION
API_PREFIX = jsapi.API_PREFIX
# What the API actor subscribes to (under $JS.API. and $JS.<domain>.API.): not `>`, so that a
# pull request to a consumer or a direct get from a stream that does not exist (or does not
# allow direct gets) finds no responders, as with the reference.
API_SUBSCRIPTIONS = ("INFO", "STREAM.>", "CONSUMER.CREATE.>", "CONSUMER.DURABLE.>",
                     "CONSUMER.DELETE.>", "CONSUMER.INFO.>", "CONSUMER.NAMES.>", "CONSUMER.LIST.>",
                     "CONSUMER.PAUSE.>", "CONSUMER.UNPIN.>", "CONSUMER.LEADER.>", "ACCOUNT.>",
                     "META.>", "SERVER.>")
ASK_TIMEOUT = 5.0
GLOBAL_ACCOUNT = "$G"



# -- options computed at start ------------------------------------------------------------------

def store_root(ctx) -> str:
    """The directory holding `jetstream/` (-sd, or the reference's default under the temp dir)."""
    sd = ctx.options.jetstream.store_dir
    return sd if sd else os.path.join(tempfile.gettempdir(), "nats")


def server_limits(ctx) -> tuple[int, int]:
    js = ctx.options.jetstream
    mem, disk = js.max_memory_store, js.max_file_store
    if mem < 0:
        try:
            mem = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.75)
        except (ValueError, OSError):
            mem = 1 << 30
    if disk < 0:
        root = store_root(ctx)
        probe = root
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
        try:
            st = os.statvfs(probe or "/")
            disk = int(st.f_bavail * st.f_frsize * 0.75)
        except OSError:
            disk = 1 << 40
    return mem, disk


def enabled_accounts(ctx) -> list[str]:
    accounts = getattr(ctx, "accounts", None)
    if accounts is None:
        return [GLOBAL_ACCOUNT]
    return [a for a in accounts.names() if accounts.jetstream_limits(a) is not None]


def all_accounts(ctx) -> list[str]:
    accounts = getattr(ctx, "accounts", None)
    if accounts is None:
        return [GLOBAL_ACCOUNT]
    return list(accounts.names())


def account_limits(ctx, account: str) -> dict | None:
    accounts = getattr(ctx, "accounts", None)
    if accounts is None:
        return {} if account == GLOBAL_ACCOUNT else None
    return accounts.jetstream_limits(account)


def holders(ctx) -> dict:
    h = getattr(ctx, "js_holders", None)
    if h is None:
        h = ctx.js_holders = {}
    return h


# -- stores ---------------------------------------------------------------------------------------

def open_store(ctx, holder: StreamHolder) -> StreamStore:
    cfg = holder.config
    limits = limits_of(cfg)
    first = cfg.get("first_seq") or 1
    if cfg.get("storage") == "memory":
        from ..store.memory import MemoryStore

        return MemoryStore(limits, first)
    from ..store.file import FileStore  # noqa: lands with the file store

    js = ctx.options.jetstream
    kwargs = {"sync_always": js.sync_always}
    if js.cipher and js.key:
        kwargs.update(cipher=js.cipher, key=js.key)
    return FileStore(holder.directory, limits, first, **kwargs)


def save_meta(holder: StreamHolder) -> None:
    """meta.inf: the stream's config and creation time as JSON (file storage only)."""
    if not holder.directory:
        return
    os.makedirs(holder.directory, exist_ok=True)
    tmp = os.path.join(holder.directory, "meta.inf.tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps({"config": holder.config, "created": holder.created,
                            "account": holder.account}).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(holder.directory, "meta.inf"))


def new_holder(ctx, account: str, config: dict, created: int) -> StreamHolder:
    name = config["name"]
    directory = ""
    if config.get("storage") != "memory":
        directory = file_store_dir(store_root(ctx), account, name)
    holder = StreamHolder(account, name, config, created, None, directory)  # type: ignore[arg-type]
    holder.opener = lambda h: open_store(ctx, h)
    holder.extra["save_meta"] = save_meta
    holder.store = open_store(ctx, holder)
    return holder


def recover_holders(ctx, account: str) -> dict[str, StreamHolder]:
    """The file streams of `account` found under the store directory."""
    out: dict[str, StreamHolder] = {}
    base = os.path.join(store_root(ctx), "jetstream", account, "streams")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names:
        meta = os.path.join(base, name, "meta.inf")
        try:
            with open(meta, "rb") as f:
                doc = json.loads(f.read())
            holder = new_holder(ctx, account, doc["config"], doc.get("created") or time.time_ns())
        except Exception as e:
            log.error("JetStream: could not recover stream '%s > %s': %s", account, name, e)
            continue
        out[name] = holder
    return out


# -- supervisors ----------------------------------------------------------------------------------

class JetStream(Supervisor):
    kind = "jetstream"
    strategy = ONE_FOR_ONE
    intensity = 10
    period = 5.0

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        self.ctx = ctx
        super().__init__(path, parent, child_id, restarted=restarted)

    def started(self) -> None:
        t0 = time.monotonic()
        super().started()
        if not self.restarted:
            log.info("Took %s to start JetStream", jsapi.format_duration(int((time.monotonic() - t0) * 1e9)))

    def child_specs(self):
        ctx = self.ctx
        specs = []
        for account in enabled_accounts(ctx):
            specs.append(account_spec(ctx, account))
        specs.append(ChildSpec("api", lambda p, par, cid, r: JsApi.start(p, par, cid, ctx, r), kind="jsapi"))
        return specs

    def handle_other(self, message):
        if message[0] == "ensure_account":  # the API actor, for an account enabled later
            account = message[1]
            if account not in self.children:
                self._add(account_spec(self.ctx, account))
                self._start(account, restarted=False)
            return True
        return super().handle_other(message)


def account_spec(ctx, account: str) -> ChildSpec:
    def start(path, parent, child_id, restarted):
        return JsAccount.start(path, parent, child_id, ctx, account, restarted)
    return ChildSpec(account, start, kind="jsaccount")


class JsAccount(Supervisor):
    """The streams of one account (one_for_one: streams are independent)."""

    kind = "jsaccount"
    strategy = ONE_FOR_ONE
    intensity = 20
    period = 5.0

    def __init__(self, path, parent, child_id, ctx, account, restarted=False):
        self.ctx = ctx
        self.account = account
        super().__init__(path, parent, child_id, restarted=restarted)

    def child_specs(self):
        hs = holders(self.ctx)
        mine = hs.get(self.account)
        if mine is None:
            mine = hs[self.account] = recover_holders(self.ctx, self.account)
        return [stream_spec(self.ctx, h) for h in mine.values()]


def stream_spec(ctx, holder: StreamHolder) -> ChildSpec:
    def start(path, parent, child_id, restarted):
        return Stream.start(path, parent, child_id, ctx, restarted, holder=holder)
    return ChildSpec(holder.name, start, kind="stream", shutdown=10.0)


def log_startup(ctx) -> None:
    mem, disk = server_limits(ctx)
    js = ctx.options.jetstream
    log.info("Starting JetStream")
    for line in ("    _ ___ _____ ___ _____ ___ ___   _   __  __",
                 " _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |",
                 "| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |",
                 " \\__/|___| |_| |___/ |_| |_|_\\___/_/ \\_\\_|  |_|",
                 "",
                 "         https://docs.nats.io/jetstream",
                 "",
                 "---------------- JETSTREAM ----------------"):
        log.info("%s", line)
    log.info("  Strict:          %s", "true" if js.strict else "false")
    log.info("  Max Memory:      %s", friendly_bytes(mem))
    log.info("  Max Storage:     %s", friendly_bytes(disk))
    log.info('  Store Directory: "%s"', os.path.join(store_root(ctx), "jetstream"))
    if js.domain:
        log.info("  Domain:          %s", js.domain)
    if js.cipher and js.key:
        log.info("  Encryption:      %s", "ChaCha20-Poly1305" if js.cipher == "chachapoly" else "AES-GCM")
    log.info("  API Level:       %d", API_LEVEL)
    log.info("-------------------------------------------")


# -- the API actor --------------------------------------------------------------------------------
#
# Every config rule (defaults, validation, update rules, request decoding, error texts) is in
# protocol/jsapi.py; this actor only adds what needs state: which streams and consumers exist,
# account limits, subject overlaps with the other streams, and the order the reference checks
# those in between the pure checks.

# The bodies of the requests protocol/jsapi.py has no decoder for, as Go types (decoded strictly,
# as the reference does, by jsapi.decode_request).
_PAGED = {"offset": "int"}
REQUEST_SPECS = {
    "stream_names_response": ("JSApiStreamNamesRequest", dict(_PAGED, subject="string")),
    "stream_list_response": ("JSApiStreamListRequest", dict(_PAGED, subject="string")),
    "stream_info_response": ("JSApiStreamInfoRequest", dict(_PAGED, deleted_details="bool",
                                                            subjects_filter="string")),
    "stream_purge_response": ("JSApiStreamPurgeRequest", {"filter": "string", "seq": "uint64",
                                                           "keep": "uint64"}),
    "stream_msg_get_response": ("JSApiMsgGetRequest", {
        "seq": "uint64", "last_by_subj": "string", "next_by_subj": "string", "batch": "int",
        "max_bytes": "int", "start_time": "*time.Time", "multi_last": ("[]", "string"),
        "up_to_seq": "uint64", "up_to_time": "*time.Time", "no_hdr": "bool"}),
    "stream_msg_delete_response": ("JSApiMsgDeleteRequest", {"seq": "uint64", "no_erase": "bool"}),
    "consumer_names_response": ("JSApiConsumersRequest", _PAGED),
    "consumer_list_response": ("JSApiConsumersRequest", _PAGED),
    "consumer_pause_response": ("JSApiConsumerPauseRequest", {"pause_until": "*time.Time"}),
}
# Requests the reference wants empty (10038 otherwise).
EMPTY_REQUESTS = {"stream_delete_response", "consumer_info_response", "consumer_delete_response"}
# Requests whose body the reference decodes only when it starts (after JSON whitespace) with
# `{` or `[` (its isJSONObjectOrArray); any other body is ignored.
OPTIONAL_BODY = {"stream_names_response", "stream_list_response", "stream_info_response",
                 "stream_purge_response", "consumer_names_response", "consumer_list_response",
                 "consumer_pause_response"}
# Requests refused as a bad request (10003) when empty, before anything else.
NON_EMPTY_REQUESTS = {"stream_msg_get_response", "stream_msg_delete_response"}
# What an error response carries after the error, per response type.
_ERROR_EXTRA = {
    "stream_info_response": {"total": 0, "offset": 0, "limit": 0},
    "stream_purge_response": {"purged": 0},
    "stream_names_response": {"total": 0, "offset": 0, "limit": 0, "streams": None},
    "stream_list_response": {"total": 0, "offset": 0, "limit": 0, "streams": []},
    "consumer_names_response": {"total": 0, "offset": 0, "limit": 0, "consumers": []},
    "consumer_list_response": {"total": 0, "offset": 0, "limit": 0, "consumers": []},
    "consumer_pause_response": {"paused": False, "pause_until": jsapi.ZERO_TIME},
    "stream_restore_response": {"deliver_subject": ""},
}
NAMES_LIMIT, LIST_LIMIT = 1024, 256
# Stream features the Stream actor does not implement yet: refused at create/update.
_UNSUPPORTED = ("allow_atomic", "allow_batched", "allow_msg_schedules")


def _resp(kind: str, body: dict | None = None, err: E.ApiError | None = None, after_error: dict | None = None) -> bytes:
    out = jsapi.api_response(kind, body=after_error if err is not None else body, error=err)
    return jsapi.go_json(out)


def _is_empty_request(data: bytes) -> bool:
    """No bytes at all, or a JSON object with no fields (the reference's isEmptyRequest:
    whitespace alone is not empty)."""
    if not data or data == b"{}":
        return True
    try:
        v = jsapi.loads(data)
    except ValueError:
        return False
    return isinstance(v, dict) and not v


def _is_json_object_or_array(data: bytes) -> bool:
    """Does the body start, after JSON whitespace, with `{` or `[`?"""
    body = data.lstrip(b" \t\r\n")
    return body[:1] in (b"{", b"[")


def _check_supported(cfg: dict) -> None:
    for k in _UNSUPPORTED:
        if cfg.get(k):
            raise E.JSStreamInvalidConfigError(err=f"{k} is not supported by actor-nats yet")
    if cfg.get("allow_msg_counter") and (cfg.get("sources") or cfg.get("mirror")):
        raise E.JSStreamInvalidConfigError(
            err="counters aggregated from sources are not supported by actor-nats yet")
    # sources and mirrors are read within this server and account only
    for src in ([cfg["mirror"]] if cfg.get("mirror") else []) + list(cfg.get("sources") or []):
        if src.get("external") or src.get("domain"):
            raise E.JSStreamInvalidConfigError(
                err="sources and mirrors in another account or domain are not supported by actor-nats yet")


def _random_token() -> str:
    """A unique token for snapshot ack and restore subjects (the reference uses a NUID)."""
    return server_id()[-22:]


def _ephemeral_name() -> str:
    """A generated consumer name: 8 characters, as the reference's."""
    return server_id()[-8:]


AUDIT_SUBJECT = "$JS.EVENT.ADVISORY.API"


class JsApi(InternalClient, Actor):
    kind = "jsapi"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.internal_init(ctx)
        self.api_total = 0
        self.api_errors = 0
        self.api_by_account: dict[str, dict] = {}  # account -> {"total", "errors"} (/jsz)
        self._api_accounts: set[str] = set()  # accounts whose API subjects are subscribed
        self._restores: dict[str, dict] = {}  # restore deliver subject -> its session
        self._cur_reply = ""
        self._cur_subject = ""
        self._cur_request = b""
        self._audit_interest: dict[str, tuple] = {}  # account -> (interest generation, anyone?)

    def started(self) -> None:
        for account in all_accounts(self.ctx):
            self._subscribe_account(account)

    def _subscribe_account(self, account: str) -> None:
        """The API subscriptions in `account` (once per account)."""
        if account in self._api_accounts:
            return
        self._api_accounts.add(account)
        domain = self.ctx.options.jetstream.domain
        prefixes = [API_PREFIX] + ([f"$JS.{domain}.API."] if domain else [])
        for prefix in prefixes:
            for pattern in API_SUBSCRIPTIONS:
                self.isubscribe(prefix + pattern, self._on_api(account), account=account)

    def cleanup(self) -> None:
        try:
            self.iunsubscribe_all()
        except Exception:
            pass

    def handle(self, message):
        if self.internal_handle(message):
            return None
        if message[0] == "account_enabled":
            # ("account_enabled", account), tell: an account added (or given JetStream) at
            # runtime, e.g. by the JWT resolver; subscribes its API subjects (idempotent)
            self._subscribe_account(message[1])
            return None
        if message[0] == "api_stats":  # for /jsz and /varz (the Monitor asks)
            return {"total": self.api_total, "errors": self.api_errors,
                    "accounts": {a: dict(v) for a, v in self.api_by_account.items()}}
        return super().handle(message)

    # -- dispatch ----------------------------------------------------------------------------

    def _on_api(self, account: str):
        def on(subject, reply, hdr, data):
            self._dispatch(account, subject, reply, data)
        return on

    def _dispatch(self, account, subject, reply, data):
        if not reply:
            return
        api = jsapi.parse_api_subject(subject)
        if api is None:
            return
        if api.op == "ACCOUNT.PURGE":
            return self._account_purge(account, api.stream, reply)
        route = self._route(api)
        if route is None:
            return  # not answered here (or not at all, as by the reference)
        kind, fn, args = route
        self._cur_account = account
        self._cur_reply = reply
        self._cur_subject = subject
        self._cur_request = data
        try:
            self._serve(account, kind, fn, args, reply, subject, data)
        finally:
            self.api_total += 1  # counted after: INFO shows the requests before it
            self._account_stats(account)["total"] += 1

    def _serve(self, account, kind, fn, args, reply, subject, data):
        extra = _ERROR_EXTRA.get(kind)
        if account_limits(self.ctx, account) is None:
            return self._answer(reply, kind, E.JSNotEnabledForAccountError())
        try:
            if kind in EMPTY_REQUESTS:
                if not _is_empty_request(data):
                    raise E.JSNotEmptyRequestError()
                req = {}
            elif kind in REQUEST_SPECS:
                if kind in NON_EMPTY_REQUESTS and _is_empty_request(data):
                    raise E.JSBadRequestError()
                root, spec = REQUEST_SPECS[kind]
                if kind in OPTIONAL_BODY and not _is_json_object_or_array(data):
                    req = {}
                else:
                    req = jsapi.decode_request(data, spec, root)
            else:
                req = None  # the handler decodes (stream and consumer create/update) or ignores
            body = fn(account, req if req is not None else data, *args, subject=subject)
        except E.ApiError as e:
            return self._answer(reply, kind, e, extra)
        except pykka.Timeout:
            return self._answer(reply, kind, E.JSClusterNotAvailError(), extra)
        if body is None:
            return None  # answered elsewhere
        response = _resp(kind, body)
        self.ipublish(reply, response, account=account)
        self._audit(account, subject, data, response)

    def _account_stats(self, account) -> dict:
        st = self.api_by_account.get(account)
        if st is None:
            st = self.api_by_account[account] = {"total": 0, "errors": 0}
        return st

    def _answer(self, reply, kind, err, extra=None):
        self.api_errors += 1
        self._account_stats(self._cur_account)["errors"] += 1
        response = _resp(kind, err=err, after_error=extra)
        self.ipublish(reply, response, account=self._cur_account)
        self._audit(self._cur_account, self._cur_subject, self._cur_request, response)

    # -- the API audit advisory ----------------------------------------------------------------

    def _audit(self, account: str, subject: str, request: bytes, response: bytes) -> None:
        """$JS.EVENT.ADVISORY.API, as the reference: each answered request with who sent it,
        published only when someone in the account listens (asked of our shard again only when
        subscriptions changed)."""
        if not self._audit_wanted(account):
            return
        adv = {"type": "io.nats.jetstream.advisory.v1.api_audit", "id": server_id()[:22],
               "timestamp": jsapi.format_time(time.time_ns()), "server": self.ctx.server_name,
               "client": self._client_info(self.publisher), "subject": subject}
        if request:
            adv["request"] = request.decode(errors="replace")
        adv["response"] = response.decode(errors="replace")
        domain = self.ctx.options.jetstream.domain
        if domain:
            adv["domain"] = domain
        self.ipublish(AUDIT_SUBJECT, jsapi.go_json(adv), account=account)

    def _audit_wanted(self, account: str) -> bool:
        shards = self.ctx.shards
        gen = shards.interest_generation
        known = self._audit_interest.get(account)
        if known is not None and known[0] == gen:
            return known[1]
        ref = shards.refs[shards.shard_for(self.icid)]
        try:
            has = bool(ref.ask(("interest", account, AUDIT_SUBJECT.encode(), None, None), timeout=1.0))
        except Exception:
            return False
        self._audit_interest[account] = (gen, has)
        return has

    def _client_info(self, cid: int) -> dict:
        """The requester as the reference's ClientInfo (start, host, id, acc, name, lang, ver,
        rtt, server, kind, client_type), asked of its Client actor."""
        info = {}
        ref = registry.ref(f"/server/clients/cid-{cid}") if cid > 0 else None
        if ref is not None:
            try:
                info = ref.ask(("connz", False), timeout=1.0) or {}
            except Exception:
                info = {}
        if not info:
            return {"acc": self._cur_account, "server": self.ctx.server_name,
                    "kind": "Client" if cid > 0 else "JetStream", "client_type": "nats"}
        return client_info(info, rtt=True, server=self.ctx.server_name)

    _cur_account = GLOBAL_ACCOUNT

    _ROUTES = {
        "INFO": "api_info", "STREAM.CREATE": "api_stream_create", "STREAM.UPDATE": "api_stream_update",
        "STREAM.DELETE": "api_stream_delete", "STREAM.INFO": "api_stream_info",
        "STREAM.PURGE": "api_stream_purge", "STREAM.NAMES": "api_stream_names",
        "STREAM.LIST": "api_stream_list", "STREAM.MSG.GET": "api_msg_get",
        "STREAM.MSG.DELETE": "api_msg_delete", "STREAM.SNAPSHOT": "api_stream_snapshot",
        "STREAM.RESTORE": "api_stream_restore", "CONSUMER.CREATE": "api_consumer_create",
        "CONSUMER.DURABLE.CREATE": "api_consumer_create", "CONSUMER.DELETE": "api_consumer_delete",
        "CONSUMER.INFO": "api_consumer_info", "CONSUMER.NAMES": "api_consumer_names",
        "CONSUMER.LIST": "api_consumer_list", "CONSUMER.PAUSE": "api_consumer_pause",
        "CONSUMER.UNPIN": "api_consumer_unpin",
        # on one server the reference answers these with 10010 (whatever the stream, consumer
        # or body); META.LEADER.STEPDOWN and SERVER.REMOVE it does not answer at all
        "STREAM.LEADER.STEPDOWN": "api_cluster_required", "STREAM.PEER.REMOVE": "api_cluster_required",
        "CONSUMER.LEADER.STEPDOWN": "api_cluster_required",
    }

    def _route(self, api: jsapi.ApiSubject):
        name = self._ROUTES.get(api.op)
        if name is None:
            return None
        args = tuple(a for a in (api.stream, api.consumer) if a) if api.op not in (
            "CONSUMER.CREATE", "CONSUMER.DURABLE.CREATE") else ()
        return jsapi.RESPONSE_TYPES[api.op], getattr(self, name), args

    # -- helpers -----------------------------------------------------------------------------

    def _holders(self, account) -> dict[str, StreamHolder]:
        hs = holders(self.ctx)
        if account not in hs:
            registry_ref = registry.ref(f"/server/jetstream/{account}")
            if registry_ref is None:
                jsref = registry.ref("/server/jetstream")
                if jsref is not None:
                    jsref.ask(("ensure_account", account), timeout=ASK_TIMEOUT)
        return hs.setdefault(account, {})

    def _stream_path(self, account, name) -> str:
        return f"/server/jetstream/{account}/{name}"

    def _ask_stream(self, account, name, message):
        ref = registry.ref(self._stream_path(account, name))
        if ref is None:
            # mid-restart: wait briefly for the supervisor to start it again
            for _ in range(50):
                gevent.sleep(0.02)
                ref = registry.ref(self._stream_path(account, name))
                if ref is not None:
                    break
            if ref is None:
                raise E.JSStreamOfflineError()
        return ref.ask(message, timeout=ASK_TIMEOUT)

    def _need_stream(self, account, name) -> StreamHolder:
        h = self._holders(account).get(name)
        if h is None:
            raise E.JSStreamNotFoundError()
        return h

    def _stream_limits(self, account, req: dict) -> dict:
        """The account's limits that normalize_stream_config applies."""
        lim = account_limits(self.ctx, account) or {}
        per_key = "memory_max_stream_bytes" if req.get("storage") == "memory" else "storage_max_stream_bytes"
        per = lim.get(per_key, -1)
        return {"max_bytes_required": bool(lim.get("max_bytes_required")),
                "max_stream_bytes": per if per and per > 0 else 0}

    # -- account info --------------------------------------------------------------------------

    def _usage(self, account):
        mem = store = consumers = 0
        hs = self._holders(account)
        for name, h in list(hs.items()):
            try:
                info = self._ask_stream(account, name, ("info", {}))
            except Exception:
                continue
            b = info["state"]["bytes"]
            consumers += info["state"]["consumer_count"]
            if h.config.get("storage") == "memory":
                mem += b
            else:
                store += b
        return mem, store, len(hs), consumers

    def api_info(self, account, req, subject=""):
        mem, store, streams, consumers = self._usage(account)
        lim = account_limits(self.ctx, account) or {}
        limits = {"max_memory": lim.get("max_memory", -1), "max_storage": lim.get("max_storage", -1),
                  "max_streams": lim.get("max_streams", -1), "max_consumers": lim.get("max_consumers", -1),
                  "max_ack_pending": lim.get("max_ack_pending", -1),
                  "memory_max_stream_bytes": lim.get("memory_max_stream_bytes", -1),
                  "storage_max_stream_bytes": lim.get("storage_max_stream_bytes", -1),
                  "max_bytes_required": bool(lim.get("max_bytes_required", False))}
        body = {"memory": mem, "storage": store, "reserved_memory": 0, "reserved_storage": 0,
                "streams": streams, "consumers": consumers, "limits": limits}
        if self.ctx.options.jetstream.domain:
            body["domain"] = self.ctx.options.jetstream.domain
        st = self._account_stats(account)  # the reference counts per account
        body["api"] = {"level": API_LEVEL, "total": st["total"], "errors": st["errors"]}
        return body

    # -- streams -------------------------------------------------------------------------------

    def api_stream_create(self, account, data, name, subject=""):
        req = jsapi.decode_stream_request(data)
        jsapi.check_stream_create_request(name, req)
        hs = self._holders(account)
        others = {n: h.config for n, h in hs.items() if n != name}
        cfg = jsapi.normalize_stream_config(req, streams=others, **self._stream_limits(account, req))
        _check_supported(cfg)
        existing = hs.get(name)
        if existing is not None:
            if not jsapi.stream_configs_equal(existing.config, cfg):
                raise E.JSStreamNameExistError()
            info = self._ask_stream(account, name, ("info", {}))
            return _create_body(info, did_create=True)
        self._check_limits(account, cfg, hs)
        self._check_overlap(cfg, hs, name)
        for src in ([cfg["mirror"]] if cfg.get("mirror") else []) + list(cfg.get("sources") or []):
            if src.get("opt_start_time") and not jsapi.go_marshals_time(src["opt_start_time"]):
                raise E.JSStreamCreateError(err="error creating store for stream")  # as the reference
        created = time.time_ns()
        try:
            holder = new_holder(self.ctx, account, cfg, created)
            save_meta(holder)
        except Exception as e:
            raise E.JSStreamCreateError(err=str(e)) from None
        info = self._start_stream(account, name, holder, hs)
        self._advisory("STREAM.CREATED", name, "create")
        return _create_body(info, did_create=True)

    def _start_stream(self, account, name, holder, hs) -> dict:
        """Register a new stream's holder and start its Stream actor under the account's
        supervisor; returns its INFO."""
        hs[name] = holder
        acc_ref = registry.ref(f"/server/jetstream/{account}")
        if acc_ref is None:
            hs.pop(name, None)
            raise E.JSNotEnabledForAccountError()
        acc_ref.ask(StartChild(stream_spec(self.ctx, holder)), timeout=ASK_TIMEOUT)
        return self._ask_stream(account, name, ("info", {}))

    def _check_limits(self, account, cfg, hs):
        """Account and server resources for a new stream (max streams, memory/storage)."""
        lim = account_limits(self.ctx, account) or {}
        ms = lim.get("max_streams", -1)
        if ms is not None and ms > 0 and len(hs) >= ms:
            raise E.JSMaximumStreamsLimitError()
        mem, disk = server_limits(self.ctx)
        mb = cfg.get("max_bytes", -1)
        memory = cfg.get("storage") == "memory"
        if mb > (mem if memory else disk):
            raise E.JSMemoryResourcesExceededError() if memory else E.JSStorageResourcesExceededError()
        acc = lim.get("max_memory" if memory else "max_storage", -1)
        if acc is not None and acc > 0 and mb > acc:
            raise E.JSMemoryResourcesExceededError() if memory else E.JSStorageResourcesExceededError()

    def _check_overlap(self, cfg, hs, name):
        mine = cfg.get("subjects") or []
        for other_name, h in hs.items():
            if other_name == name:
                continue
            for a in mine:
                for b in h.config.get("subjects") or []:
                    if subjects_overlap(a, b):
                        raise E.JSStreamSubjectOverlapError()

    def api_stream_update(self, account, data, name, subject=""):
        """STREAM.UPDATE in the reference's order: the request, the config's own checks, the
        name in the subject (10056), the stream (10059), then what an update may change."""
        req = jsapi.decode_stream_request(data)
        hs = self._holders(account)
        others = {n: h.config for n, h in hs.items() if n != name}
        jsapi.normalize_stream_config(req, clustered=True, streams=others,
                                      **self._stream_limits(account, req))
        if req.get("name", "") != name:
            raise E.JSStreamMismatchError()
        holder = self._need_stream(account, name)
        cfg = jsapi.stream_config_update_check(holder.config, req, streams=others,
                                               **self._stream_limits(account, req))
        _check_supported(cfg)
        self._check_overlap(cfg, hs, name)
        info = self._ask_stream(account, name, ("update", cfg))
        if isinstance(info, E.ApiError):
            raise info
        self._advisory("STREAM.UPDATED", name, "modify")
        return {"config": jsapi.with_dynamic_metadata(info["config"]), "created": info["created"],
                "state": info["state"], **_origins(info), "ts": rfc3339(time.time_ns())}

    def api_stream_delete(self, account, req, name, subject=""):
        holder = self._need_stream(account, name)
        try:
            self._ask_stream(account, name, ("delete",))
        except E.ApiError:
            pass
        holder.deleted = True
        self._holders(account).pop(name, None)
        acc_ref = registry.ref(f"/server/jetstream/{account}")
        if acc_ref is not None:
            acc_ref.ask(StopChild(name), timeout=ASK_TIMEOUT)
        if holder.directory:
            shutil.rmtree(holder.directory, ignore_errors=True)
        self._advisory("STREAM.DELETED", name, "delete")
        return {"success": True}

    def api_stream_info(self, account, req, name, subject=""):
        if name not in self._holders(account):
            raise E.JSStreamNotFoundError()
        info = self._ask_stream(account, name, ("info", req))
        subjects = info["state"].get("subjects")
        total, limit = 0, 0
        if req.get("subjects_filter"):
            total = len(subjects or {})
            limit = 100000
            offset = max(req.get("offset") or 0, 0)
            if subjects and offset:
                keys = list(subjects)[offset:offset + limit]
                info["state"]["subjects"] = {k: subjects[k] for k in keys}
        return {"total": total, "offset": max(req.get("offset") or 0, 0), "limit": limit,
                "config": jsapi.with_dynamic_metadata(info["config"]), "created": info["created"],
                "state": info["state"], "cluster": {"leader": self.ctx.server_name},
                **_origins(info), "ts": rfc3339(time.time_ns())}

    def api_stream_purge(self, account, req, name, subject=""):
        if (req.get("seq") or 0) > 0 and (req.get("keep") or 0) > 0:  # before the stream, as the reference
            raise E.JSBadRequestError()
        if name not in self._holders(account):
            raise E.JSStreamNotFoundError()
        n = self._ask_stream(account, name, ("purge", req))
        if isinstance(n, E.ApiError):
            raise n
        return {"success": True, "purged": n}

    def _names(self, account, req):
        hs = self._holders(account)
        subj = req.get("subject") or ""
        names = sorted(hs)
        if subj:
            names = [n for n in names if any(subjects_overlap(subj, s) for s in hs[n].config.get("subjects") or [])]
        return names

    def api_stream_names(self, account, req, subject=""):
        names = self._names(account, req)
        offset = min(max(req.get("offset") or 0, 0), len(names))
        page = names[offset:offset + NAMES_LIMIT]
        return {"total": len(names), "offset": offset, "limit": NAMES_LIMIT, "streams": page or None}

    def api_stream_list(self, account, req, subject=""):
        names = self._names(account, req)
        offset = min(max(req.get("offset") or 0, 0), len(names))
        out = []
        for n in names[offset:offset + LIST_LIMIT]:
            try:
                info = self._ask_stream(account, n, ("info", {}))
            except E.ApiError:
                continue
            out.append({"config": info["config"], "created": info["created"], "state": info["state"],
                        **_origins(info), "ts": rfc3339(time.time_ns())})
        return {"total": len(names), "offset": offset, "limit": LIST_LIMIT, "streams": out}

    def api_msg_get(self, account, req, name, subject=""):
        jsapi.check_msg_get_request(req)
        self._need_stream(account, name)
        m = self._ask_stream(account, name, ("msg_get", req))
        if isinstance(m, E.ApiError):
            raise m
        return {"message": m}

    def api_msg_delete(self, account, req, name, subject=""):
        self._need_stream(account, name)
        seq = req.get("seq") or 0
        r = self._ask_stream(account, name, ("msg_delete", seq, bool(req.get("no_erase"))))
        if isinstance(r, E.ApiError):
            raise r
        return {"success": True}

    # -- snapshot and restore ------------------------------------------------------------------
    #
    # The chunked protocol of the reference (what nats.go and the `nats` CLI speak; the archive
    # inside is actor-nats' own, see actors/stream.py). SNAPSHOT: the Stream builds the archive,
    # the response {config, state} goes out, then a greenlet of this actor publishes chunks to
    # deliver_subject with reply `$JS.SNAPSHOT.ACK.<stream>.<id>.<size>.<index>`, at most
    # window_size / chunk_size unacked; the last (short) chunk has no reply, then an empty
    # message ends it (header `NATS/1.0 204` once a full chunk went out; `408 No Flow Response`
    # when no ack came for 5 s). RESTORE: the checks of a create, then `{deliver_subject:
    # $JS.SNAPSHOT.RESTORE.<stream>.<id>}`; each chunk is acked with an empty message, an empty
    # chunk ends the transfer, the stream (and its consumers) is created from the archive and
    # the answer to that last chunk is a stream create response. A restore idle for 5 s is
    # dropped, as by the reference.

    SNAPSHOT_ACK_TIMEOUT = 5.0
    RESTORE_IDLE = 5.0

    def api_stream_snapshot(self, account, data, name, subject=""):
        if _is_empty_request(data):
            raise E.JSBadRequestError()
        self._need_stream(account, name)
        req = jsapi.decode_request(data, {"deliver_subject": "string", "no_consumers": "bool",
                                          "chunk_size": "int", "window_size": "int", "jsck": "bool"},
                                   "JSApiStreamSnapshotRequest")
        deliver = req.get("deliver_subject") or ""
        if not deliver or not jsapi.valid_subject(deliver) or any(
                t in ("*", ">") for t in deliver.split(".")):
            raise E.JSSnapshotDeliverSubjectInvalidError()
        try:
            archive, info = self._ask_stream(account, name, ("snapshot", not req.get("no_consumers")))
        except E.ApiError:
            raise
        except Exception as e:
            raise E.JSStreamSnapshotError(err=str(e)) from None
        chunk = min(max(1024, req.get("chunk_size") or 128 * 1024), 1024 * 1024)
        window = min(max(1024, req.get("window_size") or 8 * 1024 * 1024), 32 * 1024 * 1024)
        window = max(window, chunk)
        body = {"config": info["config"], "state": info["state"]}
        start = time.time_ns()
        response = _resp("stream_snapshot_response", body)
        self.ipublish(self._cur_reply, response, account=account)
        self._audit(account, subject, data, response)
        client = self._client_info(self.publisher)
        self._stream_advisory(account, "SNAPSHOT_CREATE", name, {
            "type": "io.nats.jetstream.advisory.v1.snapshot_create", "stream": name,
            "state": info["state"], "client": client})
        log.info("Starting snapshot for stream '%s > %s'", account, name)
        gevent.spawn(self._send_snapshot, account, name, deliver, archive, chunk, window // chunk,
                     client, start)
        return None  # answered

    def _stream_advisory(self, account: str, kind: str, name: str, body: dict) -> None:
        """$JS.EVENT.ADVISORY.STREAM.<kind>.<stream>: type, id, timestamp, then `body`."""
        adv = {"type": body.pop("type"), "id": server_id()[:22], "timestamp": jsapi.format_time(time.time_ns())}
        adv.update(body)
        domain = self.ctx.options.jetstream.domain
        if domain:
            adv["domain"] = domain
        self.ipublish(f"$JS.EVENT.ADVISORY.STREAM.{kind}.{name}", jsapi.go_json(adv), account=account)

    def _send_snapshot(self, account, name, deliver, archive, chunk, max_inflight, client, start) -> None:
        """The chunk stream of one snapshot (a greenlet of this actor), then its
        SNAPSHOT_COMPLETE advisory."""
        error = ""
        ack_subj = f"$JS.SNAPSHOT.ACK.{name}.{_random_token()}"
        slots = gevent.queue.Queue()
        for _ in range(max_inflight):
            slots.put(None)
        sid = self.isubscribe(ack_subj + ".>", lambda s, r, h, d: slots.put(None), account=account)
        hdr = b""
        try:
            pos, index = 0, 1
            while True:
                try:
                    slots.get(timeout=self.SNAPSHOT_ACK_TIMEOUT)
                except gevent.queue.Empty:
                    hdr = b"NATS/1.0 408 No Flow Response\r\n\r\n"
                    error = "no flow response"
                    log.warning("Snapshot for stream '%s > %s' failed: no flow response", account, name)
                    break
                piece = archive[pos:pos + chunk]
                pos += len(piece)
                if len(piece) < chunk:  # the end: the short chunk goes out without a reply
                    if piece:
                        self.ipublish(deliver, piece, account=account)
                    break
                if not hdr:
                    hdr = b"NATS/1.0 204\r\n\r\n"
                self.ipublish(deliver, piece, reply=f"{ack_subj}.{len(piece)}.{index}", account=account)
                index += 1
            self.ipublish(deliver, b"", hdr=hdr, account=account)
            log.info("Completed snapshot of %s for stream '%s > %s'", friendly_bytes(len(archive)),
                     account, name)
        finally:
            self.iunsubscribe(sid)
            body = {"type": "io.nats.jetstream.advisory.v1.snapshot_complete", "stream": name,
                    "start": jsapi.format_time(start), "end": jsapi.format_time(time.time_ns()),
                    "client": client}
            if error:
                body["error"] = error
            self._stream_advisory(account, "SNAPSHOT_COMPLETE", name, body)

    def api_stream_restore(self, account, data, name, subject=""):
        if _is_empty_request(data):
            raise E.JSBadRequestError()
        req = jsapi.decode_request(data, jsapi.RESTORE_REQUEST, "JSApiStreamRestoreRequest")
        config = dict(req.get("config") or {})
        if not config.get("name"):
            config["name"] = name
        if config.get("name") != name:
            raise E.JSStreamMismatchError()
        if "/" in name or "\\" in name:
            raise E.JSStreamNameContainsPathSeparatorsError()
        hs = self._holders(account)
        others = {n: h.config for n, h in hs.items() if n != name}
        cfg = jsapi.normalize_stream_config(config, pedantic=False, streams=others,
                                            **self._stream_limits(account, config))
        _check_supported(cfg)
        self._check_limits(account, cfg, hs)
        if name in hs or name in self._restores_by_name():
            raise E.JSStreamNameExistRestoreFailedError()
        deliver = f"$JS.SNAPSHOT.RESTORE.{name}.{_random_token()}"
        log.info("Starting restore for stream '%s > %s'", account, name)
        client = self._client_info(self.publisher)
        start = time.time_ns()
        self._stream_advisory(account, "RESTORE_CREATE", name, {
            "type": "io.nats.jetstream.advisory.v1.restore_create", "stream": name, "client": client})
        sess = {"account": account, "name": name, "config": cfg, "buf": bytearray(),
                "last": time.monotonic(), "deliver": deliver, "client": client, "start": start}
        sess["sid"] = self.isubscribe(deliver, lambda s, r, h, d: self._restore_chunk(sess, r, d),
                                      account=account)
        self._restores[deliver] = sess
        sess["watch"] = gevent.spawn(self._restore_watch, sess)
        return {"deliver_subject": deliver}

    def _restores_by_name(self) -> set:
        return {(s["name"]) for s in self._restores.values() if s["account"] == self._cur_account}

    def _restore_watch(self, sess) -> None:
        while sess["deliver"] in self._restores:
            gevent.sleep(1.0)
            if time.monotonic() - sess["last"] > self.RESTORE_IDLE:
                log.warning("Restore for stream '%s > %s' is stalled", sess["account"], sess["name"])
                self._restore_end(sess)
                return

    def _restore_end(self, sess) -> None:
        self._restores.pop(sess["deliver"], None)
        self.iunsubscribe(sess["sid"])

    def _restore_chunk(self, sess, reply, data) -> None:
        account = sess["account"]
        if not reply:
            log.warning("Restore for stream '%s > %s' requires reply subject for each chunk",
                        account, sess["name"])
            return self._restore_end(sess)
        sess["last"] = time.monotonic()
        if data:
            sess["buf"] += data
            self.ipublish(reply, b"", account=account)
            return None
        self._restore_end(sess)
        self._cur_account = account
        try:
            body = self._restore_finish(sess)
            out = _resp("stream_create_response", body)
        except E.ApiError as e:
            out = _resp("stream_create_response", err=e)
        self._stream_advisory(account, "RESTORE_COMPLETE", sess["name"], {
            "type": "io.nats.jetstream.advisory.v1.restore_complete", "stream": sess["name"],
            "start": jsapi.format_time(sess["start"]), "end": jsapi.format_time(time.time_ns()),
            "bytes": len(sess["buf"]), "client": sess["client"]})
        self.ipublish(reply, out, account=account)
        return None

    def _restore_finish(self, sess) -> dict:
        account, name, cfg = sess["account"], sess["name"], sess["config"]
        hs = self._holders(account)
        if name in hs:
            raise E.JSStreamNameExistRestoreFailedError()
        try:
            self._check_overlap(cfg, hs, name)  # streams made while the chunks came in
        except E.ApiError as e:
            raise E.JSStreamRestoreError(err=e.description) from None
        try:
            meta = read_snapshot_meta(bytes(sess["buf"]))
        except ValueError as e:
            raise E.JSStreamRestoreError(err=str(e)) from None
        created = meta.get("created") or time.time_ns()
        holder = None
        try:
            holder = new_holder(self.ctx, account, cfg, created)
            load_snapshot(bytes(sess["buf"]), holder.store)
            save_meta(holder)
        except Exception as e:
            if holder is not None:
                try:
                    holder.store.delete()
                except Exception:
                    pass
                if holder.directory:
                    shutil.rmtree(holder.directory, ignore_errors=True)
            raise E.JSStreamRestoreError(err=str(e)) from None
        info = self._start_stream(account, name, holder, hs)
        log.info("Completed restore of %s for stream '%s > %s'", friendly_bytes(len(sess["buf"])),
                 account, name)
        return {"config": jsapi.with_dynamic_metadata(info["config"]), "created": info["created"],
                "state": info["state"], "ts": rfc3339(time.time_ns())}

    # -- consumers -----------------------------------------------------------------------------

    def api_consumer_create(self, account, data, subject=""):
        """CONSUMER.CREATE in its three subject forms and DURABLE.CREATE: the request's own
        checks (parse_consumer_create), the stream (10059), the config (normalize_consumer_
        config); the Stream then checks an existing consumer, max consumers, workqueue rules
        and the name, in the reference's order."""
        cc = jsapi.parse_consumer_create(subject, data)
        holder = self._holders(account).get(cc.stream)
        if holder is None:
            raise E.JSStreamNotFoundError()
        lim = account_limits(self.ctx, account) or {}
        acc_map = lim.get("max_ack_pending", -1)
        cfg = jsapi.normalize_consumer_config(holder.config, cc.config, pedantic=cc.pedantic,
                                              account_max_ack_pending=acc_map if acc_map and acc_map > 0 else 0)
        name = cc.name or _ephemeral_name()
        acc_mc = lim.get("max_consumers", -1)
        existed = name in dict(self._ask_stream(account, cc.stream, ("consumer_names",)))
        if not existed:
            try:
                jsapi.check_consumer_storable(cfg)
            except E.ApiError:
                jsapi.check_consumer_name(cfg, name)  # the reference checks the name before its store
                raise
        path = self._ask_stream(account, cc.stream, ("consumer_create", cfg, cc.action, name,
                                                     acc_mc if acc_mc and acc_mc > 0 else 0))
        if isinstance(path, E.ApiError):
            raise path
        info = self._consumer_info(path)
        if not existed:
            self._advisory("CONSUMER.CREATED", cc.stream, "create", consumer=name)
            until = info["config"].get("pause_until")
            if until and until != jsapi.ZERO_TIME:
                self._pause_advisory(cc.stream, name, bool(info.get("paused")), until)
        return info

    def _consumer_info(self, path, dynamic_metadata=True):
        info = _ask_path(path, ("info",))
        if isinstance(info, E.ApiError):
            raise info
        info = dict(info)
        info.pop("type", None)
        if "paused" not in info:
            info = _with_pause(info)
        if dynamic_metadata:
            info["config"] = jsapi.with_dynamic_metadata(info["config"])
        return info

    def api_consumer_delete(self, account, req, stream, cname, subject=""):
        self._need_stream(account, stream)
        r = self._ask_stream(account, stream, ("consumer_delete", cname))
        if isinstance(r, E.ApiError):
            raise r
        self._advisory("CONSUMER.DELETED", stream, "delete", consumer=cname)
        return {"success": True}

    def api_consumer_info(self, account, req, stream, cname, subject=""):
        self._need_stream(account, stream)
        names = dict(self._ask_stream(account, stream, ("consumer_names",)))
        if cname not in names:
            raise E.JSConsumerNotFoundError()
        return self._consumer_info(names[cname])

    def api_consumer_names(self, account, req, stream, subject=""):
        self._need_stream(account, stream)
        names = [n for n, _ in self._ask_stream(account, stream, ("consumer_names",))]
        offset = min(max(req.get("offset") or 0, 0), len(names))
        return {"total": len(names), "offset": offset, "limit": NAMES_LIMIT,
                "consumers": names[offset:offset + NAMES_LIMIT]}

    def api_consumer_list(self, account, req, stream, subject=""):
        self._need_stream(account, stream)
        names = self._ask_stream(account, stream, ("consumer_names",))
        offset = min(max(req.get("offset") or 0, 0), len(names))
        out = []
        for _, path in names[offset:offset + LIST_LIMIT]:
            try:
                # the reference lists the stored configs, without the dynamic metadata
                out.append(self._consumer_info(path, dynamic_metadata=False))
            except E.ApiError:
                continue
        return {"total": len(names), "offset": offset, "limit": LIST_LIMIT, "consumers": out}

    def api_consumer_pause(self, account, req, stream, cname, subject=""):
        """CONSUMER.PAUSE: `{pause_until}` (absent, null or zero time = resume). The Stream
        saves the consumer's config with the new pause_until and tells the consumer
        ("update_config", config) and ("pause", until_ns)."""
        self._need_stream(account, stream)
        until = req.get("pause_until") or ""
        until_ns = jsapi.parse_time_ns(until) if until else 0
        shown = jsapi.format_time(until_ns) if until and until != jsapi.ZERO_TIME else jsapi.ZERO_TIME
        if shown == jsapi.ZERO_TIME:
            until_ns = 0
        if not jsapi.go_marshals_time(shown):  # a year outside 0..9999 in UTC: not storable
            if cname not in dict(self._ask_stream(account, stream, ("consumer_names",))):
                raise E.JSConsumerNotFoundError()
            raise E.JSConsumerStoreFailedError(
                err="json: error calling MarshalJSON for type *time.Time: year outside of range [0,9999]")
        r = self._ask_stream(account, stream, ("consumer_pause", cname, until_ns, shown))
        if isinstance(r, E.ApiError):
            raise r
        now = time.time_ns()
        body = {"paused": until_ns > now, "pause_until": shown}
        if until_ns > now:
            body["pause_remaining"] = until_ns - now
        self._pause_advisory(stream, cname, until_ns > now, shown)
        return body

    def api_consumer_unpin(self, account, data, stream, cname, subject=""):
        """CONSUMER.UNPIN: `{group}`. Checked as the reference (group given, group name,
        stream, consumer, a group of the consumer); the consumer is told ("unpin", group)."""
        # the reference decodes this one with json.Unmarshal (one value; texts without offsets)
        req = jsapi.decode_request(data, {"group": "string"}, "JSApiConsumerUnpinRequest", strict=False,
                                   single=True)
        group = req.get("group") or ""
        if not group:
            raise E.JSInvalidJSONError(err="consumer group not specified")
        if not jsapi._VALID_GROUP.match(group):
            raise E.JSConsumerInvalidGroupNameError()
        self._need_stream(account, stream)
        names = dict(self._ask_stream(account, stream, ("consumer_names",)))
        if cname not in names:
            raise E.JSConsumerNotFoundError()
        info = self._consumer_info(names[cname], dynamic_metadata=False)
        if group not in (info["config"].get("priority_groups") or []):
            raise E.JSConsumerInvalidPriorityGroupError()
        ref = registry.ref(names[cname])
        if ref is not None:
            ref.tell(("unpin", group))
        return {}

    def api_cluster_required(self, account, data, *names, subject=""):
        raise E.JSClusterRequiredError()

    def _account_purge(self, account, target, reply) -> None:
        """ACCOUNT.PURGE.<account>, answered in the system account only (elsewhere, as by the
        reference, not at all): `{"initiated": true}`, then every stream of <account> is
        deleted with its consumers (their DELETED advisories in <account>)."""
        accounts = getattr(self.ctx, "accounts", None)
        if accounts is None or not accounts.system_account or account != accounts.system_account:
            return None
        self.api_total += 1
        self._account_stats(account)["total"] += 1
        self.ipublish(reply, _resp("account_purge_response", {"initiated": True}), account=account)
        if account_limits(self.ctx, target) is None or not holders(self.ctx).get(target):
            return None
        self._cur_account = target
        for name in sorted(holders(self.ctx).get(target) or {}):
            try:
                for cname, _ in self._ask_stream(target, name, ("consumer_names",)):
                    self._advisory("CONSUMER.DELETED", name, "delete", consumer=cname)
                self.api_stream_delete(target, {}, name)
            except (E.ApiError, pykka.Timeout):
                log.warning("JetStream: purging account %s: stream %s not deleted", target, name)
        return None

    # -- advisories ----------------------------------------------------------------------------

    def _pause_advisory(self, stream: str, consumer: str, paused: bool, until: str) -> None:
        adv = {"type": "io.nats.jetstream.advisory.v1.consumer_pause", "id": server_id()[:22],
               "timestamp": rfc3339(time.time_ns()), "stream": stream, "consumer": consumer,
               "paused": paused, "pause_until": until}
        if self.ctx.options.jetstream.domain:
            adv["domain"] = self.ctx.options.jetstream.domain
        self.ipublish(f"$JS.EVENT.ADVISORY.CONSUMER.PAUSE.{stream}.{consumer}", jsapi.go_json(adv),
                      account=self._cur_account)

    def _advisory(self, what: str, stream: str, action: str, consumer: str = "") -> None:
        """A stream_action or consumer_action advisory in the requester's account."""
        subject, body = action_advisory(what, stream, action, consumer, self.ctx.options.jetstream.domain)
        self.ipublish(subject, body, account=self._cur_account)


def _ask_path(path: str, message):
    ref = registry.ref(path)
    for _ in range(50):
        if ref is not None:
            break
        gevent.sleep(0.02)
        ref = registry.ref(path)
    if ref is None:
        return E.JSConsumerNotFoundError()
    try:
        return ref.ask(message, timeout=ASK_TIMEOUT)
    except pykka.ActorDeadError:
        return E.JSConsumerNotFoundError()


def _with_pause(info: dict) -> dict:
    """`paused` and `pause_remaining` (before `ts`) while config.pause_until is ahead, for a
    consumer whose own info does not say."""
    until = (info.get("config") or {}).get("pause_until")
    if not until or until == jsapi.ZERO_TIME:
        return info
    remaining = jsapi.parse_time_ns(until) - time.time_ns()
    if remaining <= 0:
        return info
    out = {k: v for k, v in info.items() if k != "ts"}
    out["paused"] = True
    out["pause_remaining"] = remaining
    if "ts" in info:
        out["ts"] = info["ts"]
    return out


def _origins(info: dict) -> dict:
    """A StreamInfo's `mirror` or `sources` entry (as the Stream reports them)."""
    return {k: info[k] for k in ("mirror", "sources") if k in info}


def _create_body(info: dict, did_create: bool) -> dict:
    body = {"config": jsapi.with_dynamic_metadata(info["config"]), "created": info["created"],
            "state": info["state"], **_origins(info), "ts": rfc3339(time.time_ns())}
    if did_create:
        body["did_create"] = True
    return body
