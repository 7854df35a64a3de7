"""JetStream on one server: the supervisor of everything JetStream, and the API actor.

    /server/jetstream (one_for_one)
    ├── <account>   (JsAccount, one_for_one) one per account with JetStream enabled
    │   └── <stream>    (Stream, a supervisor of its consumers; see actors/stream.py)
    └── api         (JsApi) answers $JS.API.> in every account

Start order: the account supervisors first (they recover the streams found on disk), then the
API actor, which only then starts answering. A stream's `StreamHolder` (config, creation time,
open store) lives in `ctx.js_holders[account][name]`, outside every actor, so a restarted Stream,
JsAccount or JetStream finds its memory streams again and file streams are reopened from disk.
Only the API actor adds or removes holders (it is the one place that creates and deletes
streams, so subject overlaps and account limits are decided in one place); a Stream updates its
holder's config when the API actor asks it to apply an update.

The API actor owns account-wide answers (INFO, stream NAMES/LIST, create/update/delete and their
limits and overlap checks, consumer create/delete/names/list routing) and forwards stream-level
requests by asking the Stream. It never answers `CONSUMER.MSG.NEXT` or `DIRECT.GET` (consumers
and streams subscribe to those themselves). When JetStream is off server-wide nothing here runs,
so clients get no-responders, as from the reference.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import tempfile
import time

import pykka

from .. import NATS_VERSION
from ..config.jetstream import friendly_bytes
from ..protocol import jserrors as E
from ..store.base import StreamStore
from .internal import InternalClient
from .runtime import Actor, registry
from .stream import (Stream, StreamHolder, file_store_dir, go_json, limits_of, rfc3339,
                     subject_match, subjects_overlap)
from .supervisor import ONE_FOR_ONE, ChildSpec, StartChild, StopChild, Supervisor

log = logging.getLogger("actor_nats")

API_LEVEL = 5  # the reference's JetStream API level for NATS_VERSION
API_PREFIX = "$JS.API."
# What the API actor subscribes to (under $JS.API. and $JS.<domain>.API.): not `>`, so that a
# pull request to a consumer or a direct get from a stream that does not exist (or does not
# allow direct gets) finds no responders, as with the reference.
API_SUBSCRIPTIONS = ("INFO", "STREAM.>", "CONSUMER.CREATE.>", "CONSUMER.DURABLE.>",
                     "CONSUMER.DELETE.>", "CONSUMER.INFO.>", "CONSUMER.NAMES.>", "CONSUMER.LIST.>",
                     "CONSUMER.PAUSE.>", "CONSUMER.UNPIN.>", "CONSUMER.LEADER.>", "ACCOUNT.>",
                     "META.>", "SERVER.>")
ASK_TIMEOUT = 5.0
GLOBAL_ACCOUNT = "$G"

try:  # the pure API layer, when it has landed
    from ..protocol import jsapi as _jsapi  # type: ignore
except ImportError:  # pragma: no cover
    _jsapi = None

if _jsapi is not None and hasattr(_jsapi, "API_LEVEL"):
    API_LEVEL = _jsapi.API_LEVEL


def _go_duration(seconds: float) -> str:
    """Go's Duration.String() for sub-minute values ("1.152605ms", "2.5s")."""
    ns = int(seconds * 1e9)
    for unit, size in (("s", 10**9), ("ms", 10**6), ("µs", 10**3)):
        if ns >= size:
            return f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    return f"{ns}ns"


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
            log.info("Took %s to start JetStream", _go_duration(time.monotonic() - t0))

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

def _resp(kind: str, body: dict | None = None, err: E.ApiError | None = None, after_error: dict | None = None) -> bytes:
    out = {"type": f"io.nats.jetstream.api.v1.{kind}"}
    if err is not None:
        out["error"] = err.to_json()
        if after_error:
            out.update(after_error)
        return go_json(out)
    if body:
        out.update(body)
    return go_json(out)


class _Reply(Exception):
    """Raised inside a handler to answer with an error (and optional extra fields)."""

    def __init__(self, err: E.ApiError, extra: dict | None = None):
        self.err = err
        self.extra = extra


STREAM_ORDER = ("name", "description", "subjects", "subject_transform", "retention", "max_consumers",
                "max_msgs", "max_bytes", "max_age", "max_msgs_per_subject", "max_msg_size", "discard",
                "storage", "num_replicas", "no_ack", "template_owner", "duplicate_window", "placement",
                "mirror", "sources", "compression", "first_seq", "allow_direct", "mirror_direct",
                "republish", "discard_new_per_subject", "sealed", "deny_delete", "deny_purge",
                "allow_rollup_hdrs", "consumer_limits", "allow_msg_ttl", "subject_delete_marker_ttl",
                "allow_msg_counter", "allow_atomic", "allow_msg_schedules", "persist_mode", "metadata")
_OMIT_EMPTY = {"description", "subject_transform", "no_ack", "template_owner", "placement", "mirror",
               "sources", "first_seq", "republish", "discard_new_per_subject",
               "subject_delete_marker_ttl", "allow_msg_counter", "allow_atomic",
               "allow_msg_schedules", "persist_mode"}
_UNSUPPORTED = ("mirror", "sources", "republish", "subject_transform")


def normalize_stream(req: dict, name: str) -> dict:
    """A StreamConfig with the reference's defaults, in its JSON order; raises _Reply."""
    if _jsapi is not None and hasattr(_jsapi, "normalize_stream_config"):
        try:
            cfg = _jsapi.normalize_stream_config(req)
        except E.ApiError as e:
            raise _Reply(e) from None
        return _finish(cfg)
    cfg = dict(req)
    cfg.pop("pedantic", None)
    n = cfg.get("name") or ""
    if not n or any(c in n for c in " \t\r\n.*>/\\") or len(n) > 255:
        raise _Reply(E.JSStreamInvalidConfigError(err="invalid stream name"))
    for k in ("max_consumers", "max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size"):
        v = cfg.get(k) or 0
        cfg[k] = -1 if v == 0 else v
    cfg.setdefault("retention", "limits")
    cfg.setdefault("discard", "old")
    cfg.setdefault("storage", "file")
    for key, allowed in (("retention", ("limits", "interest", "workqueue")), ("storage", ("file", "memory")),
                         ("discard", ("old", "new"))):
        if cfg[key] not in allowed:
            raw = json.dumps(cfg[key])
            quoted = '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
            raise _Reply(E.JSInvalidJSONError(err=f"can not unmarshal {quoted}"))
    cfg["max_age"] = cfg.get("max_age") or 0
    if cfg["max_age"] < 0:
        raise _Reply(E.JSStreamInvalidConfigError(err="max age can not be negative"))
    reps = cfg.get("num_replicas") or 1
    if reps > 1:
        raise _Reply(E.JSStreamReplicasNotSupportedError())
    if reps < 0:
        raise _Reply(E.JSReplicasCountCannotBeNegativeError())
    cfg["num_replicas"] = reps
    dw = cfg.get("duplicate_window") or 0
    if dw < 0:
        raise _Reply(E.JSStreamInvalidConfigError(err="duplicates window must be zero or a positive value"))
    if dw == 0:
        dw = 120_000_000_000
        if cfg["max_age"] and cfg["max_age"] < dw:
            dw = cfg["max_age"]
    elif cfg["max_age"] and dw > cfg["max_age"]:
        raise _Reply(E.JSStreamInvalidConfigError(err="duplicates window can not be larger then max age"))
    cfg["duplicate_window"] = dw
    if not cfg.get("subjects") and not cfg.get("mirror") and not cfg.get("sources"):
        cfg["subjects"] = [n]
    cfg.setdefault("compression", "none")
    if cfg["compression"] == "":
        cfg["compression"] = "none"
    for k in ("allow_direct", "mirror_direct", "sealed", "deny_delete", "deny_purge",
              "allow_rollup_hdrs", "allow_msg_ttl"):
        cfg[k] = bool(cfg.get(k, False))
    cfg["consumer_limits"] = cfg.get("consumer_limits") or {}
    if cfg.get("discard_new_per_subject"):
        if cfg["discard"] != "new":
            raise _Reply(E.JSStreamInvalidConfigError(err="discard new per subject requires discard new policy to be set"))
        if cfg["max_msgs_per_subject"] <= 0:
            raise _Reply(E.JSStreamInvalidConfigError(err="discard new per subject requires max msgs per subject > 0"))
    if cfg.get("subject_delete_marker_ttl") and not cfg.get("allow_msg_ttl"):
        raise _Reply(E.JSStreamInvalidConfigError(err="subject marker delete cannot be set if message TTLs are disabled"))
    return _finish(cfg)


def _finish(cfg: dict) -> dict:
    for k in _UNSUPPORTED:
        if cfg.get(k):
            raise _Reply(E.JSStreamInvalidConfigError(err=f"{k} is not supported by actor-nats yet"))
    if cfg.get("sealed"):
        cfg["discard"] = "new"
    meta = {k: v for k, v in (cfg.get("metadata") or {}).items() if not k.startswith("_nats.")}
    level = 1 if (cfg.get("allow_msg_ttl") or cfg.get("subject_delete_marker_ttl")) else 0
    meta["_nats.req.level"] = str(level)
    cfg["metadata"] = dict(sorted(meta.items()))
    out = {}
    for k in STREAM_ORDER:
        if k in cfg:
            v = cfg[k]
            if k in _OMIT_EMPTY and not v:
                continue
            out[k] = v
    for k, v in cfg.items():
        if k not in out and k not in _OMIT_EMPTY and k != "pedantic":
            out[k] = v
    return out


def with_dynamic_metadata(cfg: dict) -> dict:
    meta = dict(cfg.get("metadata") or {})
    meta["_nats.level"] = str(API_LEVEL)
    meta["_nats.ver"] = NATS_VERSION
    out = dict(cfg)
    out["metadata"] = dict(sorted(meta.items()))
    return out


def _same_config(a: dict, b: dict) -> bool:
    strip = lambda c: {k: v for k, v in c.items() if k != "metadata"}  # noqa: E731
    return strip(a) == strip(b) and {k: v for k, v in (a.get("metadata") or {}).items() if not k.startswith("_nats.")} \
        == {k: v for k, v in (b.get("metadata") or {}).items() if not k.startswith("_nats.")}


class JsApi(InternalClient, Actor):
    kind = "jsapi"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.internal_init(ctx)
        self.api_total = 0
        self.api_errors = 0

    def started(self) -> None:
        domain = self.ctx.options.jetstream.domain
        for account in all_accounts(self.ctx):
            prefixes = [(API_PREFIX, "")] + ([(f"$JS.{domain}.API.", domain)] if domain else [])
            for prefix, dom in prefixes:
                for pattern in API_SUBSCRIPTIONS:
                    self.isubscribe(prefix + pattern, self._on_api(account, dom), account=account)

    def cleanup(self) -> None:
        try:
            self.iunsubscribe_all()
        except Exception:
            pass

    def handle(self, message):
        if self.internal_handle(message):
            return None
        return super().handle(message)

    # -- dispatch ----------------------------------------------------------------------------

    def _on_api(self, account: str, domain: str):
        prefix_len = len(f"$JS.{domain}.API.") if domain else len(API_PREFIX)

        def on(subject, reply, hdr, data):
            self._dispatch(account, subject[prefix_len:], reply, hdr, data)
        return on

    def _dispatch(self, account, rest, reply, hdr, data):
        toks = rest.split(".")
        if not reply:
            return
        if toks[0] == "DIRECT" or toks[:3] == ["CONSUMER", "MSG", "NEXT"]:
            return
        route = self._route(toks)
        if route is None:
            return  # not an API subject: the reference does not answer either
        kind, fn, args = route
        self._cur_account = account
        try:
            self._serve(account, kind, fn, args, reply, data)
        finally:
            self.api_total += 1  # counted after: INFO shows the requests before it

    def _serve(self, account, kind, fn, args, reply, data):
        if account_limits(self.ctx, account) is None:
            return self._answer(reply, kind, err=E.JSNotEnabledForAccountError())
        try:
            req = json.loads(data) if data.strip() else {}
            if not isinstance(req, dict):
                raise ValueError("json: cannot unmarshal into Go value of type object")
        except ValueError as e:
            return self._answer(reply, kind, err=E.JSInvalidJSONError(err=_json_error(data, e)),
                                extra=_ERROR_EXTRA.get(kind))
        try:
            body = fn(account, req, *args)
        except _Reply as r:
            return self._answer(reply, kind, err=r.err, extra=r.extra if r.extra is not None
                                else _ERROR_EXTRA.get(kind))
        except pykka.Timeout:
            return self._answer(reply, kind, err=E.JSClusterNotAvailError(), extra=_ERROR_EXTRA.get(kind))
        if body is None:
            return None  # answered elsewhere
        self.ipublish(reply, _resp(kind, body), account=account)

    def _answer(self, reply, kind, err, extra=None):
        self.api_errors += 1
        self.ipublish(reply, _resp(kind, err=err, after_error=extra), account=self._cur_account)

    _cur_account = GLOBAL_ACCOUNT

    def _route(self, t):
        n = len(t)
        if t == ["INFO"]:
            return "account_info_response", self.api_info, ()
        if t[0] == "STREAM" and n >= 2:
            op = t[1]
            if op == "CREATE" and n == 3:
                return "stream_create_response", self.api_stream_create, (t[2],)
            if op == "UPDATE" and n == 3:
                return "stream_update_response", self.api_stream_update, (t[2],)
            if op == "DELETE" and n == 3:
                return "stream_delete_response", self.api_stream_delete, (t[2],)
            if op == "INFO" and n == 3:
                return "stream_info_response", self.api_stream_info, (t[2],)
            if op == "PURGE" and n == 3:
                return "stream_purge_response", self.api_stream_purge, (t[2],)
            if op == "NAMES" and n == 2:
                return "stream_names_response", self.api_stream_names, ()
            if op == "LIST" and n == 2:
                return "stream_list_response", self.api_stream_list, ()
            if op == "MSG" and n == 4 and t[2] == "GET":
                return "stream_msg_get_response", self.api_msg_get, (t[3],)
            if op == "MSG" and n == 4 and t[2] == "DELETE":
                return "stream_msg_delete_response", self.api_msg_delete, (t[3],)
            if op == "SNAPSHOT" and n == 3:
                return "stream_snapshot_response", self.api_unsupported_snapshot, (t[2],)
            if op == "RESTORE" and n == 3:
                return "stream_restore_response", self.api_unsupported_restore, (t[2],)
            return None
        if t[0] == "CONSUMER" and n >= 3:
            op = t[1]
            if op == "CREATE" and n >= 3:
                return "consumer_create_response", self.api_consumer_create, (t[2], t[3] if n > 3 else "",
                                                                               ".".join(t[4:]), False)
            if op == "DURABLE" and n == 5 and t[2] == "CREATE":
                return "consumer_create_response", self.api_consumer_create, (t[3], t[4], "", True)
            if op == "DELETE" and n == 4:
                return "consumer_delete_response", self.api_consumer_delete, (t[2], t[3])
            if op == "INFO" and n == 4:
                return "consumer_info_response", self.api_consumer_info, (t[2], t[3])
            if op == "NAMES" and n == 3:
                return "consumer_names_response", self.api_consumer_names, (t[2],)
            if op == "LIST" and n == 3:
                return "consumer_list_response", self.api_consumer_list, (t[2],)
        return None

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
                import gevent

                gevent.sleep(0.02)
                ref = registry.ref(self._stream_path(account, name))
                if ref is not None:
                    break
            if ref is None:
                raise _Reply(E.JSStreamOfflineError())
        return ref.ask(message, timeout=ASK_TIMEOUT)

    def _need_stream(self, account, name) -> StreamHolder:
        h = self._holders(account).get(name)
        if h is None:
            raise _Reply(E.JSStreamNotFoundError())
        return h

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

    def api_info(self, account, req):
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
        body["api"] = {"level": API_LEVEL, "total": self.api_total, "errors": self.api_errors}
        return body

    # -- streams -------------------------------------------------------------------------------

    def api_stream_create(self, account, req, name):
        if req.get("name", "") != name:
            raise _Reply(E.JSStreamMismatchError())
        cfg = normalize_stream(req, name)
        hs = self._holders(account)
        existing = hs.get(name)
        if existing is not None:
            if not _same_config(existing.config, cfg):
                raise _Reply(E.JSStreamNameExistError())
            info = self._ask_stream(account, name, ("info", {}))
            return _create_body(info, did_create=True)
        self._check_limits(account, cfg, hs, name)
        self._check_overlap(account, cfg, hs, name)
        created = time.time_ns()
        try:
            holder = new_holder(self.ctx, account, cfg, created)
            save_meta(holder)
        except Exception as e:
            raise _Reply(E.JSStreamCreateError(err=str(e))) from None
        hs[name] = holder
        acc_ref = registry.ref(f"/server/jetstream/{account}")
        if acc_ref is None:
            hs.pop(name, None)
            raise _Reply(E.JSNotEnabledForAccountError())
        acc_ref.ask(StartChild(stream_spec(self.ctx, holder)), timeout=ASK_TIMEOUT)
        info = self._ask_stream(account, name, ("info", {}))
        return _create_body(info, did_create=True)

    def _check_limits(self, account, cfg, hs, name):
        lim = account_limits(self.ctx, account) or {}
        ms = lim.get("max_streams", -1)
        if ms is not None and ms > 0 and len(hs) >= ms:
            raise _Reply(E.JSMaximumStreamsLimitError())
        mem, disk = server_limits(self.ctx)
        mb = cfg.get("max_bytes", -1)
        if cfg.get("storage") == "memory":
            if mb > mem:
                raise _Reply(E.JSMemoryResourcesExceededError())
            per = lim.get("memory_max_stream_bytes", -1)
            acc = lim.get("max_memory", -1)
        else:
            if mb > disk:
                raise _Reply(E.JSStorageResourcesExceededError())
            per = lim.get("storage_max_stream_bytes", -1)
            acc = lim.get("max_storage", -1)
        if lim.get("max_bytes_required") and mb <= 0:
            raise _Reply(E.JSStreamMaxBytesRequiredError())
        if per is not None and per > 0 and (mb <= 0 or mb > per):
            if mb > per:
                raise _Reply(E.JSStreamMaxStreamBytesExceededError())
        if acc is not None and acc > 0 and mb > acc:
            raise _Reply(E.JSMemoryResourcesExceededError() if cfg.get("storage") == "memory"
                         else E.JSStorageResourcesExceededError())

    def _check_overlap(self, account, cfg, hs, name):
        mine = cfg.get("subjects") or []
        for other_name, h in hs.items():
            if other_name == name:
                continue
            for a in mine:
                for b in h.config.get("subjects") or []:
                    if subjects_overlap(a, b):
                        raise _Reply(E.JSStreamSubjectOverlapError())

    def api_stream_update(self, account, req, name):
        if req.get("name", "") != name:
            raise _Reply(E.JSStreamMismatchError())
        holder = self._need_stream(account, name)
        cfg = normalize_stream(req, name)
        old = holder.config
        err = _update_error(old, cfg)
        if err:
            raise _Reply(E.JSStreamInvalidConfigError(err=err))
        self._check_overlap(account, cfg, self._holders(account), name)
        info = self._ask_stream(account, name, ("update", cfg))
        if isinstance(info, E.ApiError):
            raise _Reply(info)
        body = {"config": with_dynamic_metadata(info["config"]), "created": info["created"],
                "state": info["state"], "ts": rfc3339(time.time_ns())}
        return body

    def api_stream_delete(self, account, req, name):
        holder = self._need_stream(account, name)
        try:
            self._ask_stream(account, name, ("delete",))
        except _Reply:
            pass
        holder.deleted = True
        self._holders(account).pop(name, None)
        acc_ref = registry.ref(f"/server/jetstream/{account}")
        if acc_ref is not None:
            acc_ref.ask(StopChild(name), timeout=ASK_TIMEOUT)
        if holder.directory:
            shutil.rmtree(holder.directory, ignore_errors=True)
        return {"success": True}

    def api_stream_info(self, account, req, name):
        if name not in self._holders(account):
            raise _Reply(E.JSStreamNotFoundError(), {"total": 0, "offset": 0, "limit": 0})
        info = self._ask_stream(account, name, ("info", req))
        subjects = info["state"].get("subjects")
        total, limit = 0, 0
        if req.get("subjects_filter"):
            total = len(subjects or {})
            limit = 100000
            offset = req.get("offset") or 0
            if subjects and offset:
                keys = list(subjects)[offset:offset + limit]
                info["state"]["subjects"] = {k: subjects[k] for k in keys}
        body = {"total": total, "offset": req.get("offset") or 0, "limit": limit,
                "config": with_dynamic_metadata(info["config"]), "created": info["created"],
                "state": info["state"], "cluster": {"leader": self.ctx.server_name},
                "ts": rfc3339(time.time_ns())}
        return body

    def api_stream_purge(self, account, req, name):
        if name not in self._holders(account):
            raise _Reply(E.JSStreamNotFoundError(), {"purged": 0})
        n = self._ask_stream(account, name, ("purge", req))
        if isinstance(n, E.ApiError):
            raise _Reply(n, {"purged": 0})
        return {"success": True, "purged": n}

    def _names(self, account, req):
        hs = self._holders(account)
        subj = req.get("subject") or ""
        names = sorted(hs)
        if subj:
            names = [n for n in names if any(subjects_overlap(subj, s) for s in hs[n].config.get("subjects") or [])]
        return names

    def api_stream_names(self, account, req):
        names = self._names(account, req)
        offset = req.get("offset") or 0
        page = names[offset:offset + 1024]
        return {"total": len(names), "offset": offset, "limit": 1024, "streams": page or None}

    def api_stream_list(self, account, req):
        names = self._names(account, req)
        offset = req.get("offset") or 0
        out = []
        for n in names[offset:offset + 256]:
            try:
                info = self._ask_stream(account, n, ("info", {}))
            except _Reply:
                continue
            out.append({"config": info["config"], "created": info["created"], "state": info["state"],
                        "ts": rfc3339(time.time_ns())})
        return {"total": len(names), "offset": offset, "limit": 256, "streams": out}

    def api_msg_get(self, account, req, name):
        self._need_stream(account, name)
        m = self._ask_stream(account, name, ("msg_get", req))
        if isinstance(m, E.ApiError):
            raise _Reply(m)
        return {"message": m}

    def api_msg_delete(self, account, req, name):
        self._need_stream(account, name)
        seq = req.get("seq") or 0
        if not seq:
            raise _Reply(E.JSBadRequestError())
        r = self._ask_stream(account, name, ("msg_delete", seq, bool(req.get("no_erase"))))
        if isinstance(r, E.ApiError):
            raise _Reply(r)
        return {"success": True}

    def api_unsupported_snapshot(self, account, req, name):
        self._need_stream(account, name)
        raise _Reply(E.JSStreamSnapshotError(err="snapshots are not supported by actor-nats yet"))

    def api_unsupported_restore(self, account, req, name):
        raise _Reply(E.JSStreamRestoreError(err="restore is not supported by actor-nats yet"))

    # -- consumers -----------------------------------------------------------------------------

    def api_consumer_create(self, account, req, stream, cname, filt, durable_api):
        holder = self._holders(account).get(stream)
        if holder is None:
            raise _Reply(E.JSStreamNotFoundError())
        if req.get("stream_name", stream) != stream:
            raise _Reply(E.JSStreamMismatchError())
        cfg = dict(req.get("config") or {})
        action = req.get("action", "")
        try:
            if _jsapi is not None and hasattr(_jsapi, "normalize_consumer_config"):
                cfg = _normalize_consumer(cfg, holder.config, cname, filt, durable_api, req)
            else:
                cfg = _fallback_consumer_config(cfg, cname, filt, durable_api)
        except E.ApiError as e:
            raise _Reply(e) from None
        lim = account_limits(self.ctx, account) or {}
        mc = lim.get("max_consumers", -1)
        if mc and mc > 0:
            _, _, _, consumers = self._usage(account)
            if consumers >= mc:
                raise _Reply(E.JSMaximumConsumersLimitError())
        path = self._ask_stream(account, stream, ("consumer_create", cfg, action))
        if isinstance(path, E.ApiError):
            raise _Reply(path)
        info = _ask_path(path, ("info",))
        if isinstance(info, E.ApiError):
            raise _Reply(info)
        return info

    def api_consumer_delete(self, account, req, stream, cname):
        self._need_stream(account, stream)
        r = self._ask_stream(account, stream, ("consumer_delete", cname))
        if isinstance(r, E.ApiError):
            raise _Reply(r)
        return {"success": True}

    def api_consumer_info(self, account, req, stream, cname):
        self._need_stream(account, stream)
        names = dict(self._ask_stream(account, stream, ("consumer_names",)))
        if cname not in names:
            raise _Reply(E.JSConsumerNotFoundError())
        info = _ask_path(names[cname], ("info",))
        if isinstance(info, E.ApiError):
            raise _Reply(info)
        return info

    def api_consumer_names(self, account, req, stream):
        self._need_stream(account, stream)
        names = [n for n, _ in self._ask_stream(account, stream, ("consumer_names",))]
        offset = req.get("offset") or 0
        page = names[offset:offset + 1024]
        return {"total": len(names), "offset": offset, "limit": 1024, "consumers": page or None}

    def api_consumer_list(self, account, req, stream):
        self._need_stream(account, stream)
        names = self._ask_stream(account, stream, ("consumer_names",))
        offset = req.get("offset") or 0
        out = []
        for _, path in names[offset:offset + 256]:
            info = _ask_path(path, ("info",))
            if isinstance(info, dict):
                info = dict(info)
                info.pop("type", None)
                out.append(info)
        return {"total": len(names), "offset": offset, "limit": 256, "consumers": out}


def _normalize_consumer(cfg, stream_config, cname, filt, durable_api, req):
    fn = _jsapi.normalize_consumer_config
    try:
        return fn(cfg, stream_config=stream_config, subject_name=cname, subject_filter=filt,
                  durable_api=durable_api, action=req.get("action", ""))
    except TypeError:
        return fn(cfg)


CONSUMER_ORDER = ("durable_name", "name", "description", "deliver_policy", "opt_start_seq",
                  "opt_start_time", "ack_policy", "ack_wait", "max_deliver", "backoff", "filter_subject",
                  "filter_subjects", "replay_policy", "rate_limit_bps", "sample_freq", "max_waiting",
                  "max_ack_pending", "flow_control", "headers_only", "max_batch", "max_expires",
                  "max_bytes", "idle_heartbeat", "deliver_subject", "deliver_group",
                  "inactive_threshold", "num_replicas", "mem_storage", "metadata")


def _fallback_consumer_config(cfg: dict, cname: str, filt: str, durable_api: bool) -> dict:
    """Defaults for a ConsumerConfig until protocol/jsapi.py's normalize_consumer_config is
    there (the common cases only; the subject forms' checks included)."""
    from ..protocol.ids import server_id

    if durable_api:
        if not cfg.get("durable_name"):
            raise E.JSConsumerDurableNameNotSetError()
        if cfg["durable_name"] != cname:
            raise E.JSConsumerDurableNameNotMatchSubjectError()
    if filt and cfg.get("filter_subject") != filt:
        raise E.JSConsumerCreateFilterSubjectMismatchError()
    c = dict(cfg)
    name = cname or c.get("name") or c.get("durable_name") or server_id()[-8:]
    if c.get("durable_name") and c["durable_name"] != name and not cname:
        name = c["durable_name"]
    c["name"] = name
    c.setdefault("deliver_policy", "all")
    c.setdefault("ack_policy", "none")
    if c["ack_policy"] != "none":
        c["ack_wait"] = c.get("ack_wait") or 30_000_000_000
        c["max_ack_pending"] = c.get("max_ack_pending") or 1000
    c["max_deliver"] = c.get("max_deliver") or -1
    c.setdefault("replay_policy", "instant")
    if not c.get("deliver_subject"):
        c["max_waiting"] = c.get("max_waiting") or 512
    if not c.get("durable_name"):
        c["inactive_threshold"] = c.get("inactive_threshold") or 5_000_000_000
    c["num_replicas"] = c.get("num_replicas") or 0
    meta = {k: v for k, v in (c.get("metadata") or {}).items() if not k.startswith("_nats.")}
    meta["_nats.req.level"] = "0"
    c["metadata"] = dict(sorted(meta.items()))
    out = {k: c[k] for k in CONSUMER_ORDER if k in c and (c[k] or k in (
        "max_deliver", "num_replicas", "deliver_policy", "ack_policy", "replay_policy", "metadata"))}
    return out


def _ask_path(path: str, message):
    ref = registry.ref(path)
    for _ in range(50):
        if ref is not None:
            break
        import gevent

        gevent.sleep(0.02)
        ref = registry.ref(path)
    if ref is None:
        return E.JSConsumerNotFoundError()
    try:
        return ref.ask(message, timeout=ASK_TIMEOUT)
    except pykka.ActorDeadError:
        return E.JSConsumerNotFoundError()


def _create_body(info: dict, did_create: bool) -> dict:
    body = {"config": with_dynamic_metadata(info["config"]), "created": info["created"],
            "state": info["state"], "ts": rfc3339(time.time_ns())}
    if did_create:
        body["did_create"] = True
    return body


_ERROR_EXTRA = {
    "stream_info_response": {"total": 0, "offset": 0, "limit": 0},
    "stream_purge_response": {"purged": 0},
    "stream_names_response": {"total": 0, "offset": 0, "limit": 0, "streams": None},
    "stream_list_response": {"total": 0, "offset": 0, "limit": 0, "streams": []},
}


def _update_error(old: dict, new: dict) -> str:
    if old.get("storage") != new.get("storage"):
        return "stream configuration update can not change storage type"
    if old.get("retention") != new.get("retention") and "workqueue" in (old.get("retention"), new.get("retention")):
        return "stream configuration update can not change retention policy to/from workqueue"
    if old.get("sealed") and not new.get("sealed"):
        return "stream configuration update can not unseal a sealed stream"
    if old.get("deny_delete") and not new.get("deny_delete"):
        return "stream configuration update can not cancel deny message deletes"
    if old.get("deny_purge") and not new.get("deny_purge"):
        return "stream configuration update can not cancel deny purge"
    if (old.get("first_seq") or 0) != (new.get("first_seq") or 0):
        return "stream configuration update can not change first sequence"
    return ""


def _json_error(data: bytes, e: Exception) -> str:
    """Go's encoding/json error text, approximately (the common case exactly)."""
    text = data.decode(errors="replace")
    if isinstance(e, json.JSONDecodeError):
        pos = e.pos
        ch = text[pos] if pos < len(text) else ""
        if not ch:
            return "unexpected end of JSON input"
        if e.msg.startswith("Expecting property name"):
            what = "looking for beginning of object key string"
        elif e.msg.startswith("Expecting value"):
            what = "looking for beginning of value"
        else:
            what = "after object key:value pair"
        return f"invalid character '{ch}' {what} at offset {pos + 1}"
    return str(e)
