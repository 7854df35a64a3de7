"""A Stream: one JetStream stream, its store, and the supervisor of its consumers.

It owns the stream's publish rules (the Nats-* publish headers, dedupe within duplicate_window,
discard new, sealed, rollups, per-message TTL, interest and workqueue retention), its message
store (held in a `StreamHolder` that outlives the actor, so a restarted Stream recovers from the
same store: the very object for memory storage, the files reopened for file storage), the
stream-level API operations the API actor forwards to it (info, update, purge, msg get/delete,
delete, consumer create/delete/names, snapshot), DIRECT.GET in all its ADR-31 forms (single,
batch, multi_last; it subscribes itself when allow_direct), the
expiry timer and the fsync interval (run in gevent's threadpool, off the network greenlet).
It must not answer account-wide questions (stream names, overlaps, limits): the API actor
(actors/jetstream.py) owns those.

Publishes arrive as the shards deliver them to an internal client: one mailbox message per
routed batch. The whole batch is stored, then `flush()`ed, and only then are the PubAcks
published and the consumers told: an acked message is in the store.

The Stream <-> Consumer contract
--------------------------------
Consumers are dynamic children: child id = consumer name, path = `<stream path>/<name>`, started
by a ChildSpec whose factory calls

    Consumer.start(path, parent, child_id, ctx, restarted, account=<account>, stream=<name>,
                   stream_config=<stream config dict>, config=<normalized consumer config>,
                   cstore=<store.consumer_store(name)>, stream_path=<this stream's path>,
                   created=<ns>)

The Stream persists the consumer config before starting it with
`cstore.save_config({**config, "_created": ns})` and, when it (re)starts, starts one consumer
per `store.consumer_names()` whose saved config is not None (the `_created` key is removed
from `config` and passed as `created`).

Stream -> Consumer, tell only (a Stream never asks a Consumer):
    ("appended", [StoredMsg, ...])           after each stored and flushed batch
    ("purged", first_seq_after, filter)     after a purge ("" = whole stream)
    ("msg_removed", seq)                    after MSG.DELETE, expiry, or a retention removal
    ("stream_config", config)               after an update
    ("consumer_delete",)                    delete your store and stop
Consumer -> Stream (ask allowed):
    ("load_next", filters, start_seq, max_msgs, max_bytes) -> list[StoredMsg]
        (messages with seq >= start_seq matching any filter, [] / [""] = all; at most
        max_msgs and, when max_bytes > 0, at most max_bytes of StoredMsg.size, but always
        at least one if any matches)
    ("num_pending", filters, start_seq, last_per_subject) -> int
    ("state",) -> StreamState
    ("load_msg", seq) -> StoredMsg | None
and tell ("acked", consumer_name, [stream seqs]): under workqueue retention the messages are
removed; under interest retention a message is removed once every consumer whose filter matches
its subject has acked it (a message no consumer matches is removed as soon as it is stored).
A consumer with ack policy none should tell "acked" for what it delivers.

API actor -> Stream (ask): ("info", opts) -> dict, ("config",), ("update", config) -> dict |
ApiError, ("purge", request) -> int | ApiError, ("msg_get", request) -> dict | ApiError,
("msg_delete", seq, no_erase) -> True | ApiError, ("delete",) -> True,
("snapshot", with_consumers) -> (archive bytes, info) (the format: "snapshots" below),
("consumer_create", config, action, name, account_max_consumers) -> consumer path |
ApiError, ("consumer_delete", name) ->
True | ApiError, ("consumer_names",) -> [(name, path)], ("consumer_pause", name, until_ns,
until) -> config | ApiError (the consumer is told ("update_config", config) then ("pause",
until_ns); it must not deliver before until_ns, 0 = resume now). The API actor may then ask a Consumer
("info",). Ask order: API -> Stream, API -> Consumer -> Stream; never the other way.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import struct
import tarfile
import time
from dataclasses import dataclass, field

import gevent
import pykka

from ..protocol import jsapi
from ..protocol import jserrors as E
from ..protocol.ids import server_id
from ..protocol.subjects import subject_bytes, subject_matches
from ..store.base import StoredMsg, StoreError, StreamLimits, StreamStore
from .internal import InternalClient
from .jsusage import usage
from .runtime import registry
from .supervisor import ONE_FOR_ONE, TRANSIENT, ChildSpec, Supervisor

log = logging.getLogger("actor_nats")

EXPIRY_TICK = 0.25  # seconds between expiry checks when something can expire


# -- encodings shared with the API actor ------------------------------------------------------

go_json = jsapi.go_json


def rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC; 0 (never set) is Go's zero time, as the reference shows it."""
    return jsapi.format_time(ns or None)


_INCR = re.compile(r"[+-]?[0-9]+")  # a Nats-Incr value: a decimal integer
# Python converts at most 4300 digits between text and int (sys.int_info): longer increments are
# refused as invalid, where the reference's big.Int would take them (a total stays printable)
_INCR_DIGITS = 4000
_NOT_WITH_INCR = ("Nats-Rollup", "Nats-Expected-Stream", "Nats-Expected-Last-Msg-Id",
                  "Nats-Expected-Last-Subject-Sequence-Subject", "Nats-Expected-Last-Sequence",
                  "Nats-Expected-Last-Subject-Sequence")


def _counter_value(body: bytes) -> int | None:
    """The total of a counter message (`{"val":"123"}`), or None if it is not one."""
    try:
        val = json.loads(body).get("val")
        return int(val) if isinstance(val, str) and _INCR.fullmatch(val) else None
    except (ValueError, AttributeError):
        return None


def parse_headers(hdr: bytes) -> dict[str, str]:
    """The first value of each header of a `NATS/1.0` block (keys as sent)."""
    out: dict[str, str] = {}
    if not hdr:
        return out
    for line in hdr.split(b"\r\n")[1:]:
        if not line:
            continue
        k, sep, v = line.partition(b":")
        if sep:
            key = k.decode(errors="replace").strip()
            if key not in out:
                out[key] = v.decode(errors="replace").strip()
    return out


def subject_match(filter: str, subject: str) -> bool:
    """Does the literal `subject` match `filter` ("" matches everything)?"""
    return not filter or subject_matches(filter.encode(), subject.encode())


def subjects_overlap(a: str, b: str) -> bool:
    """True if some literal subject matches both a and b."""
    return jsapi._subjects_collide(a, b)


def action_advisory(what: str, stream: str, action: str, consumer: str = "",
                    domain: str = "") -> tuple[str, bytes]:
    """(subject, body) of a stream_action or consumer_action advisory, as the reference's:
    `$JS.EVENT.ADVISORY.<STREAM|CONSUMER>.<what>.<stream>[.<consumer>]`."""
    kind = "consumer_action" if consumer else "stream_action"
    adv = {"type": f"io.nats.jetstream.advisory.v1.{kind}", "id": server_id()[:22],
           "timestamp": rfc3339(time.time_ns()), "stream": stream}
    subject = f"$JS.EVENT.ADVISORY.{what}.{stream}"
    if consumer:
        adv["consumer"] = consumer
        subject += "." + consumer
    adv["action"] = action
    if domain:
        adv["domain"] = domain
    return subject, go_json(adv)


def limits_of(config: dict) -> StreamLimits:
    discard_new = config.get("discard") == "new"
    return StreamLimits(
        max_msgs=config.get("max_msgs", -1), max_bytes=config.get("max_bytes", -1),
        max_age=config.get("max_age", 0), max_msgs_per_subject=config.get("max_msgs_per_subject", -1),
        max_msg_size=config.get("max_msg_size", -1), discard_new=discard_new)


# -- what outlives a Stream actor ---------------------------------------------------------------

@dataclass
class StreamHolder:
    """A stream's config, creation time and open store, kept by the factory of its ChildSpec so
    that a restarted Stream actor finds them (as the listening sockets live in the context)."""

    account: str
    name: str
    config: dict
    created: int
    store: StreamStore
    directory: str = ""  # file storage: <store_dir>/jetstream/<account>/streams/<name>
    opener: object = None  # callable(holder) -> StreamStore, to reopen files after a crash
    deleted: bool = False
    extra: dict = field(default_factory=dict)


class Stream(InternalClient, Supervisor):
    kind = "stream"
    strategy = ONE_FOR_ONE
    intensity = 10
    period = 5.0

    def __init__(self, path, parent, child_id, ctx, restarted=False, *, holder: StreamHolder):
        Supervisor.__init__(self, path, parent, child_id, restarted=restarted)
        self.internal_init(ctx)
        self.holder = holder
        self.account = holder.account
        self.name = holder.name
        self.config = holder.config
        self.store = holder.store
        self._acks: list = []  # (reply, None, hdr, body) to publish after this batch's flush
        self._appended: list = []  # StoredMsgs to tell the consumers about (when there are any)
        self._stored = False  # something was stored in this batch: flush before acking
        self._dedupe: dict[str, tuple[int, int]] = {}  # msg id -> (seq, ts), in insertion order
        self._last_msg_id = ""
        self._cons: dict[str, dict] = {}  # consumer name -> {"filters": [...], "acked": set()}
        self._timers: list = []
        self._sync_running = False
        self._watchers: set[str] = set()  # paths of streams sourcing/mirroring this one
        self._sources: dict[str, _Source] = {}  # what this stream sources (or mirrors)
        self._usage = usage(ctx)  # the ledger of bytes stored (see actors/jsusage.py)
        self._reported = -1  # what this stream last told it
        self._room = 0  # bytes this batch may still store before the limits are checked exactly
        self._apply_config()

    def _apply_config(self) -> None:
        """What the publish path precomputes from the config: the PubAck prefix, the size
        limit, and whether a message without headers may take the fast path."""
        cfg = self.config
        self._ack_prefix = b'{"stream":' + go_json(self.name) + b',"seq":'
        mms = cfg.get("max_msg_size", -1)
        self._max_size = mms if mms >= 0 else self.ctx.options.max_payload
        st = cfg.get("subject_transform")
        self._transform = jsapi.SubjectTransform(st.get("src", ""), st.get("dest", "")) \
            if st and st.get("dest") else None
        rp = cfg.get("republish")
        self._republish = jsapi.SubjectTransform(rp.get("src", ""), rp.get("dest", "")) if rp else None
        self._rp_headers_only = bool(rp and rp.get("headers_only"))
        self._no_ack = bool(cfg.get("no_ack"))  # no PubAck, not even an error, as the reference
        self._memory = cfg.get("storage") == "memory"
        self._sdm_ttl = int(cfg.get("subject_delete_marker_ttl") or 0)  # ns; 0 = no markers
        self._counter = bool(cfg.get("allow_msg_counter"))
        self._fast = not (cfg.get("sealed") or cfg.get("discard") == "new" or self._counter
                          or cfg.get("retention", "limits") == "interest"
                          or self._transform is not None or self._republish is not None)

    def describe(self) -> dict:
        return {"stream": self.name, "account": self.account}

    # -- lifecycle ---------------------------------------------------------------------------

    def started(self) -> None:
        if self.restarted and self.holder.opener is not None and self.config.get("storage") == "file":
            try:
                self.holder.store.close()
            except Exception:
                pass
            self.holder.store = self.holder.opener(self.holder)
            self.store = self.holder.store
        self._report_damage()
        self._report_usage()
        self._rebuild_dedupe()
        Supervisor.started(self)  # the consumers, from the store
        self._subscribe()
        self._setup_sources()
        self._timers.append(gevent.spawn(self._ticker))

    def _report_damage(self) -> None:
        """Damage the store found when it loaded (bad checksums, torn or truncated blocks, a
        wrong key): the damaged messages were skipped and the rest loaded. Said in the log and
        in an advisory (actor-nats' own: the reference has none), and in STREAM.INFO and /jsz
        as state.lost."""
        problems = self.store.problems()
        if not problems:
            return
        lost = self.store.state().lost
        for p in problems:
            log.error("JetStream stream '%s > %s' store damaged: %s", self.account, self.name, p)
        log.error("JetStream stream '%s > %s': %d damaged messages skipped, the rest loaded",
                  self.account, self.name, len(lost))
        adv = {"type": "io.actor-nats.jetstream.advisory.v1.store_damaged", "id": server_id()[:22],
               "timestamp": rfc3339(time.time_ns()), "stream": self.name, "account": self.account,
               "problems": list(problems), "lost": list(lost)}
        self.ipublish(f"$JS.EVENT.ADVISORY.STREAM.STORE_DAMAGED.{self.name}", go_json(adv),
                      account=self.account)

    def cleanup(self) -> None:
        for g in self._timers:
            g.kill(block=False)
        self._timers.clear()
        try:
            self.iunsubscribe_all()
        except Exception:
            pass
        Supervisor.cleanup(self)
        if not self.holder.deleted:
            try:
                self.store.flush()
            except Exception:
                pass

    def child_specs(self):
        specs = []
        for name in self.store.consumer_names():
            cfg = self.store.consumer_store(name).load_config()
            if cfg is None:
                continue
            created = cfg.pop("_created", 0)
            self._cons[name] = {"filters": jsapi.consumer_filters(cfg), "acked": set()}
            specs.append(self._consumer_spec(name, cfg, created))
        return specs

    def _consumer_spec(self, name: str, config: dict, created: int) -> ChildSpec:
        holder, ctx, account = self.holder, self.ctx, self.account

        def start(path, parent, child_id, restarted):
            from .consumer import Consumer

            return Consumer.start(path, parent, child_id, ctx, restarted, account=account,
                                  stream=holder.name, stream_config=holder.config, config=config,
                                  cstore=holder.store.consumer_store(name), stream_path=parent,
                                  created=created)

        return ChildSpec(name, start, restart=TRANSIENT, kind="consumer")

    def _subscribe(self) -> None:
        for subj in self.config.get("subjects") or []:
            self.isubscribe(subj, self._on_publish, account=self.account, replies=True)
        if self.config.get("allow_direct"):
            self.isubscribe(f"$JS.API.DIRECT.GET.{self.name}", self._on_direct_get, account=self.account)
            self.isubscribe(f"$JS.API.DIRECT.GET.{self.name}.>", self._on_direct_get, account=self.account)

    def _ticker(self) -> None:
        last_sync = time.monotonic()
        js = self.ctx.options.jetstream
        interval = js.sync_interval if js.sync_interval > 0 else 120.0
        while True:
            gevent.sleep(EXPIRY_TICK)
            if self.config.get("max_age") or self.config.get("allow_msg_ttl"):
                self._tell_self(("expire",))
            if self._sources:
                self._tell_self(("source_poll",))
            if self.config.get("storage") == "file" and time.monotonic() - last_sync >= interval:
                last_sync = time.monotonic()
                self._tell_self(("sync",))

    def _tell_self(self, message) -> None:
        try:
            self.actor_ref.tell(message)
        except Exception:
            pass

    def _rebuild_dedupe(self) -> None:
        window = self.config.get("duplicate_window", 0)
        st = self.store.state()
        if not st.msgs:
            return
        cutoff = time.time_ns() - window
        found = []
        seq = st.last_seq
        while seq >= st.first_seq:
            m = self.store.load_msg(seq)
            seq -= 1
            if m is None:
                continue
            mid = parse_headers(m.hdr).get("Nats-Msg-Id", "") if m.hdr else ""
            if m.seq == st.last_seq:
                self._last_msg_id = mid
            if m.ts < cutoff:
                break
            if mid:
                found.append((mid, m.seq, m.ts))
        for mid, s, ts in reversed(found):
            self._dedupe[mid] = (s, ts)

    # -- messages ----------------------------------------------------------------------------

    def handle(self, message):
        # the publish path first, before the supervisor's own message types
        if type(message) is tuple and message[0] == "msgs":
            self._room = self._usage.room(self.ctx, self.account, self._memory)
            self._ideliver(message[1])
            self._commit(message[5] if len(message) > 5 else None)
            return None
        try:
            return Supervisor.handle(self, message)
        finally:
            self._report_usage()  # purges, deletes, expiry, acks under interest/workqueue

    def _room_for(self, subject: str, hdr: bytes, data: bytes) -> E.ApiError | None:
        """The exact limits check for one message (the usage ledger, plus what this batch has
        stored and not yet reported), and the room left after it; the fast path only counts
        down `_room` until it runs out (it is measured at the start of each batch)."""
        size = self.store.msg_size(subject, hdr, data)
        grown = self.store.used_bytes() - max(self._reported, 0)
        err = self._usage.check(self.ctx, self.account, self._memory, size, grown)
        if err is None:
            self._room = self._usage.room(self.ctx, self.account, self._memory) - grown - size
        return err

    def _report_usage(self) -> None:
        used = self.store.used_bytes()
        if used != self._reported and not self.holder.deleted:
            self._reported = used
            self._usage.report(self.account, self.name, self._memory, used)

    def handle_other(self, message):
        kind = message[0]
        if self.internal_handle(message):
            return None
        fn = getattr(self, "_m_" + kind, None)
        if fn is None:
            return super().handle_other(message)
        return fn(*message[1:])

    def _commit(self, reply_route=None) -> None:
        """After a batch: one flush (the data is in the OS, not waiting for a timer or the sync
        interval), then at once one ipublish_many of the PubAcks, then one tell per consumer.
        A single publish may come with its reply subject's one subscriber resolved by the
        shard (`reply_route`, see actors/router.py): its PubAck is told to that subscriber
        directly, as the shard would deliver it (not with republish on, whose message must
        go first)."""
        stored = self._stored
        if stored:
            self._stored = False
            try:
                self.store.flush()
            except Exception:
                log.exception("%s: flush failed", self.path)
                raise
        if self._acks:
            acks, self._acks = self._acks, []
            if reply_route is not None and len(acks) == 1 and self._republish is None:
                client, sid, head = reply_route
                body = acks[0][3]
                try:
                    client.tell(("msgs", [head, sid, b" %d\r\n" % len(body), body, b"\r\n"], 1, None,
                                 self.icid))
                except pykka.ActorDeadError:
                    pass
            else:
                self.ipublish_many(acks, self.account)
        if stored:
            self._report_usage()
            if self._watchers:
                self._notify_watchers()
        if self._appended:
            msgs, self._appended = self._appended, []
            self._tell_consumers(("appended", msgs))

    def _tell_consumers(self, message) -> None:
        for name in self._cons:
            ref = registry.ref(self.child_path(name))
            if ref is not None:
                try:
                    ref.tell(message)
                except Exception:
                    pass

    # -- publishing --------------------------------------------------------------------------

    def _pub_error(self, reply, err: E.ApiError) -> None:
        if reply:
            body = go_json({"error": err.to_json(), "stream": self.name, "seq": 0})
            self._acks.append((reply, None, b"", body))

    def _on_publish(self, subject: str, reply, hdr: bytes, data: bytes) -> None:
        """The common case (no headers, no rule that looks at the stream's state first) here;
        everything else in _publish."""
        if self._no_ack:
            reply = None
        if hdr or not self._fast:
            return self._publish(subject, reply, hdr, data)
        if len(data) > self._max_size:
            return self._pub_error(reply, E.JSStreamMessageExceedsMaximumError())
        room = self._room - len(subject) * 4 - len(data) - 64  # (a bound on its stored size)
        if room >= 0:
            self._room = room
        else:
            err = self._room_for(subject, b"", data)
            if err is not None:
                return self._pub_error(reply, err)
        try:
            seq, ts = self.store.store_msg(subject, b"", data)
        except StoreError as e:
            return self._pub_error(reply, E.JSStreamStoreFailedError(err=str(e)))
        self._stored = True
        self._last_msg_id = ""
        if reply:
            self._acks.append((reply, None, b"", self._ack_prefix + str(seq).encode() + b"}"))
        if self._cons:
            self._appended.append(StoredMsg(subject, seq, ts, b"", data))
        return None

    def _publish(self, subject: str, reply, hdr: bytes, data: bytes) -> None:
        cfg = self.config
        if self._transform is not None:
            subject = self._transform.apply(subject) or subject
        if cfg.get("sealed"):
            return self._pub_error(reply, E.JSStreamSealedError())
        ttl = 0
        rollup = ""
        msg_id = ""
        incr = None
        if hdr:
            h = parse_headers(hdr)
            if "Nats-Incr" in h:
                incr, err = self._check_incr(h, data)
                if err is not None:
                    return self._pub_error(reply, err)
            msg_id = h.get("Nats-Msg-Id", "")
            if msg_id:
                d = self._dedupe.get(msg_id)
                if d is not None and time.time_ns() - d[1] < cfg.get("duplicate_window", 0):
                    if reply:
                        body = self._ack_prefix + str(d[0]).encode() + b',"duplicate": true}'
                        self._acks.append((reply, None, b"", body))
                    return None
            exp = h.get("Nats-Expected-Stream")
            if exp and exp != self.name:
                return self._pub_error(reply, E.JSStreamNotMatchError())
            if "Nats-TTL" in h:
                if not cfg.get("allow_msg_ttl"):
                    return self._pub_error(reply, E.JSMessageTTLDisabledError())
                ttl = _parse_ttl(h["Nats-TTL"])
                if ttl is None:
                    return self._pub_error(reply, E.JSMessageTTLInvalidError())
                sdm = self._sdm_ttl
                if 0 < ttl < sdm and cfg.get("max_msgs_per_subject", -1) != 1:
                    # at least the marker TTL, or a marker could be missed (as the reference)
                    ttl = sdm
                    hdr = _without_header(hdr, "Nats-TTL")[:-2] + b"Nats-TTL: %d\r\n\r\n" % (sdm // 10**9)
            if "Nats-Expected-Last-Subject-Sequence" in h:
                try:
                    want = int(h["Nats-Expected-Last-Subject-Sequence"])
                except ValueError:
                    want = -1
                subj = h.get("Nats-Expected-Last-Subject-Sequence-Subject") or subject
                have = self.store.last_seq_for_subject(subj)
                if want != have:
                    return self._pub_error(reply, E.JSStreamWrongLastSequenceError(seq=have))
            if "Nats-Expected-Last-Sequence" in h:
                try:
                    want = int(h["Nats-Expected-Last-Sequence"])
                except ValueError:
                    want = -1
                have = self.store.state().last_seq
                if want != have:
                    return self._pub_error(reply, E.JSStreamWrongLastSequenceError(seq=have))
            if "Nats-Expected-Last-Msg-Id" in h:
                if h["Nats-Expected-Last-Msg-Id"] != self._last_msg_id:
                    return self._pub_error(reply, E.JSStreamWrongLastMsgIDError(id=self._last_msg_id))
            rollup = h.get("Nats-Rollup", "")
        if self._counter:
            if incr is None:
                return self._pub_error(reply, E.JSMessageIncrMissingError())
            last = self.store.load_last_msg(subject)
            total = 0
            if last is not None:
                total = _counter_value(last.data)
                if total is None:
                    return self._pub_error(reply, E.JSMessageCounterBrokenError())
            data = b'{"val":"%d"}' % (total + incr)
            if len(hdr) + len(data) > self.ctx.options.max_payload:
                return self._pub_error(reply, E.JSStreamMessageExceedsMaximumError())
        max_size = cfg.get("max_msg_size", -1)
        if max_size >= 0 and len(hdr) + len(data) > max_size:
            return self._pub_error(reply, E.JSStreamMessageExceedsMaximumError())
        if max_size < 0 and len(hdr) + len(data) > self.ctx.options.max_payload:
            return self._pub_error(reply, E.JSStreamMessageExceedsMaximumError())
        if rollup:
            if not cfg.get("allow_rollup_hdrs"):
                return self._pub_error(reply, E.JSStreamRollupFailedError(err="rollup not permitted"))
            if rollup not in ("sub", "all"):
                return self._pub_error(reply, E.JSStreamRollupFailedError(
                    err=f'rollup value invalid: "{rollup}"'))
        if cfg.get("discard") == "new" and not rollup:
            err = self._discard_new_check(subject, hdr, data)
            if err is not None:
                return self._pub_error(reply, err)
        err = self._room_for(subject, hdr, data)
        if err is not None:
            return self._pub_error(reply, err)
        rp_dest = self._republish.apply(subject) if self._republish is not None else None
        if rp_dest is not None:
            last_for_subject = self.store.last_seq_for_subject(subject)
        try:
            seq, ts = self.store.store_msg(subject, hdr, data, ttl=ttl)
        except StoreError as e:
            return self._pub_error(reply, E.JSStreamStoreFailedError(err=str(e)))
        self._stored = True
        if rp_dest is not None:
            self._republish_msg(rp_dest, subject, seq, ts, last_for_subject, hdr, data)
        self._last_msg_id = msg_id  # of the last stored message, "" when it had none
        if msg_id:
            self._dedupe[msg_id] = (seq, ts)
            self._trim_dedupe(ts)
        if rollup == "sub":
            self.store.purge(subject=subject, seq=seq)
        elif rollup == "all":
            self.store.purge(seq=seq)
        if reply:
            tail = b',"val":"%d"}' % (total + incr) if self._counter else b"}"
            self._acks.append((reply, None, b"", self._ack_prefix + str(seq).encode() + tail))
        retention = cfg.get("retention", "limits")
        if retention == "interest" and not self._interested(subject):
            self.store.remove_msg(seq)
            return None
        self._appended.append(StoredMsg(subject, seq, ts, hdr, data))
        return None

    def _check_incr(self, h: dict, data: bytes):
        """A `Nats-Incr` publish (counter streams, ADR-49): (the increment, None) or (None, the
        error), checked in the reference's order."""
        raw = h["Nats-Incr"]
        if not _INCR.fullmatch(raw) or len(raw) > _INCR_DIGITS:
            return None, E.JSMessageIncrInvalidError()
        if not self._counter:
            return None, E.JSMessageIncrDisabledError()
        if data:
            return None, E.JSMessageIncrPayloadError()
        if any(k in h for k in _NOT_WITH_INCR):
            return None, E.JSMessageIncrInvalidError()
        return int(raw), None

    def _republish_msg(self, dest: str, subject: str, seq: int, ts: int, last: int, hdr: bytes,
                       data: bytes) -> None:
        """The stored message again on `dest`, with the message's own headers and the
        reference's Nats-Stream, -Subject, -Sequence, -Time-Stamp, -Last-Sequence (the previous
        sequence on the subject, 0 if none) and, for headers_only, -Msg-Size and no body; sent
        with this batch's PubAcks, after the flush."""
        base = hdr[:-2] if hdr.endswith(b"\r\n\r\n") else b"NATS/1.0\r\n"
        out = (base + b"Nats-Stream: " + self.name.encode() + b"\r\nNats-Subject: " + subject_bytes(subject)
               + b"\r\nNats-Sequence: " + str(seq).encode() + b"\r\nNats-Time-Stamp: "
               + rfc3339(ts).encode() + b"\r\nNats-Last-Sequence: " + str(last).encode() + b"\r\n")
        if self._rp_headers_only:
            out += b"Nats-Msg-Size: " + str(len(data)).encode() + b"\r\n"
            data = b""
        self._acks.append((dest, None, out + b"\r\n", data))

    def _discard_new_check(self, subject, hdr, data):
        cfg = self.config
        st = self.store.state()
        mm = cfg.get("max_msgs", -1)
        if mm > 0 and st.msgs >= mm:
            return E.JSStreamStoreFailedError(err="maximum messages exceeded")
        mb = cfg.get("max_bytes", -1)
        overhead = getattr(self.store, "MSG_OVERHEAD", 16)  # the store's own accounting
        if mb > 0 and st.bytes + len(subject) + len(hdr) + len(data) + overhead > mb:
            return E.JSStreamStoreFailedError(err="maximum bytes exceeded")
        mps = cfg.get("max_msgs_per_subject", -1)
        if cfg.get("discard_new_per_subject") and mps > 0:
            if self.store.filtered_state(subject).msgs >= mps:
                return E.JSStreamStoreFailedError(err="maximum messages per subject exceeded")
        return None

    def _trim_dedupe(self, now: int) -> None:
        window = self.config.get("duplicate_window", 0)
        if len(self._dedupe) < 64:
            return
        cutoff = now - window
        for k in list(self._dedupe):
            if self._dedupe[k][1] >= cutoff:
                break
            del self._dedupe[k]

    def _interested(self, subject: str) -> bool:
        for c in self._cons.values():
            fs = c["filters"]
            if not fs or any(subject_match(f, subject) for f in fs):
                return True
        return False

    # -- sources and mirror ------------------------------------------------------------------
    #
    # Within one account of this server. Only tells (streams may source each other): the
    # sourcing stream D tells the origin O ("source_read", D's path, key, filters, start_seq,
    # start_time, max), O answers ("source_data", key, msgs, next_seq, lag) and remembers D
    # as a watcher, which it tells ("source_ready", O's name) after each stored batch. D also
    # polls on its ticker (an origin that restarted or did not exist yet). Progress (the next
    # origin sequence per source) is kept in the holder across actor restarts and recovered
    # from the Nats-Stream-Source headers (sources) or the last sequence (mirror) at start.

    def _setup_sources(self) -> None:
        cfg = self.config
        kept = self.holder.extra.setdefault("source_next", {})
        olds = self._sources
        self._sources = {}
        specs = []
        if cfg.get("mirror"):
            specs.append(cfg["mirror"])
        specs.extend(cfg.get("sources") or [])
        if not specs:
            return
        sid = self.holder.extra.setdefault("source_id", _random_id(8))
        mirror = bool(cfg.get("mirror"))
        for spec in specs:
            src = _Source(spec, mirror, sid)
            prev = olds.get(src.key)
            if prev is not None:
                src.next_seq, src.active, src.lag, src.last = prev.next_seq, prev.active, prev.lag, prev.last
            elif src.key in kept:
                src.next_seq = kept[src.key]
                src.last = src.next_seq - 1
            self._sources[src.key] = src
        missing = [k for k, v in self._sources.items() if not v.next_seq]
        if missing:
            self._recover_source_progress(missing)
        # the first read is on the next tick: as the reference, a create or update answers
        # before anything is sourced

    def _recover_source_progress(self, keys: list[str]) -> None:
        st = self.store.state()
        if not st.msgs:
            return
        if self.config.get("mirror"):
            self._sources[keys[0]].next_seq = st.last_seq + 1
            return
        by_hdr = {}
        for k in keys:
            for hk in self._sources[k].header_keys:
                by_hdr[hk] = k
        want = set(keys)
        seq = st.last_seq
        while seq >= st.first_seq and want:
            m = self.store.load_msg(seq)
            seq -= 1
            if m is None or not m.hdr:
                continue
            v = parse_headers(m.hdr).get("Nats-Stream-Source")
            if not v:
                continue
            f = v.split(" ")
            if len(f) < 4 or not f[1].isdigit():
                continue
            k = by_hdr.get((f[0], f[2], f[3]))
            if k in want:
                self._sources[k].next_seq = int(f[1]) + 1
                self._sources[k].last = int(f[1])
                want.discard(k)

    def _source_read(self, src: "_Source") -> None:
        if src.inflight and time.monotonic() - src.asked < 2.0:
            return
        ref = registry.ref(f"{self.path.rsplit('/', 1)[0]}/{src.name}")
        if ref is None:
            return
        src.inflight, src.asked = True, time.monotonic()
        try:
            ref.tell(("source_read", self.path, src.key, src.filters, src.next_seq, src.start_time,
                      SOURCE_BATCH))
        except Exception:
            src.inflight = False

    def _m_source_poll(self):
        for src in self._sources.values():
            self._source_read(src)

    def _m_source_ready(self, origin: str):
        for src in self._sources.values():
            if src.name == origin:
                self._source_read(src)

    def _m_source_read(self, path: str, key: str, filters, start_seq: int, start_time: int, max_msgs: int):
        """Origin side: the messages a sourcing or mirroring stream asks for, told back."""
        self._watchers.add(path)
        if start_seq <= 0:
            start_seq = self._seq_for_time(start_time) if start_time else 1
        msgs = self._m_load_next(filters, start_seq, max_msgs, SOURCE_MAX_BYTES)
        nxt = msgs[-1].seq + 1 if msgs else max(start_seq, 1)
        if not any(filters):  # (deleted messages counted: the count walks the sequences)
            lag = max(self.store.state().last_seq - nxt + 1, 0)
        else:
            lag = self._m_num_pending(filters, nxt)
        ref = registry.ref(path)
        if ref is None:
            self._watchers.discard(path)
            return None
        try:
            ref.tell(("source_data", key, msgs, nxt, lag))
        except Exception:
            self._watchers.discard(path)
        return None

    def _seq_for_time(self, ts: int) -> int:
        """The first sequence stored at or after `ts` (binary search: times only grow)."""
        st = self.store.state()
        lo, hi = max(st.first_seq, 1), st.last_seq + 1
        while lo < hi:
            mid = (lo + hi) // 2
            m = self.store.load_next_msg("", mid)
            if m is None:
                hi = mid
            elif m.ts >= ts:
                hi = mid
            else:
                lo = m.seq + 1
        return lo

    def _notify_watchers(self) -> None:
        for path in list(self._watchers):
            ref = registry.ref(path)
            if ref is None:
                self._watchers.discard(path)
                continue
            try:
                ref.tell(("source_ready", self.name))
            except Exception:
                self._watchers.discard(path)

    def _m_source_data(self, key: str, msgs, next_seq: int, lag: int):
        src = self._sources.get(key)
        if src is None:
            return None
        src.inflight = False
        src.active = time.time_ns()
        src.lag = lag
        for m in msgs:
            if m.seq < src.next_seq:
                continue  # an answer to an older request
            self._store_sourced(src, m)
            src.next_seq = m.seq + 1
            src.last = m.seq
        src.next_seq = max(src.next_seq, next_seq)
        self.holder.extra.setdefault("source_next", {})[key] = src.next_seq
        self._commit()
        if msgs and (len(msgs) >= SOURCE_BATCH or lag):
            self._source_read(src)
        return None

    def _store_sourced(self, src: "_Source", m: StoredMsg) -> None:
        subject, tr = src.map(m.subject)
        try:
            if src.mirror:
                last = self.store.state().last_seq
                if m.seq <= last:
                    return
                if m.seq > last + 1:
                    self.store.skip_msg(m.seq - 1)
                hdr, ts = m.hdr, m.ts
                seq, ts = self.store.store_msg(subject, hdr, m.data, ts=ts)
            else:
                base = m.hdr[:-2] if m.hdr.endswith(b"\r\n\r\n") else b"NATS/1.0\r\n"
                hdr = (base + b"Nats-Stream-Source: " + src.header(m.seq, tr, m.subject).encode()
                       + b"\r\n\r\n")
                seq, ts = self.store.store_msg(subject, hdr, m.data)
        except StoreError as e:
            log.warning("%s: sourced message %s > %d not stored: %s", self.path, src.name, m.seq, e)
            return
        self._stored = True
        if self.config.get("retention", "limits") == "interest" and not self._interested(subject):
            self.store.remove_msg(seq)
            return
        if self._cons:
            self._appended.append(StoredMsg(subject, seq, ts, hdr, m.data))

    def _sources_info(self) -> dict:
        if not self._sources:
            return {}
        now = time.time_ns()
        out = []
        for src in self._sources.values():
            e = {"name": src.name, "lag": src.lag}
            if not src.mirror and src.last:
                e["seq"] = src.last
            e["active"] = now - src.active if src.active else -1
            if src.spec.get("filter_subject"):
                e["filter_subject"] = src.spec["filter_subject"]
            if src.spec.get("subject_transforms"):
                e["subject_transforms"] = src.spec["subject_transforms"]
            out.append(e)
        return {"mirror": out[0]} if self.config.get("mirror") else {"sources": out}

    # -- DIRECT.GET --------------------------------------------------------------------------

    def _on_direct_get(self, subject: str, reply, hdr: bytes, data: bytes) -> None:
        """DIRECT.GET as the reference answers it (ADR-31): the request is checked here, then
        _direct_get / _direct_get_multi publish one message per result (after this batch's
        flush, with the PubAcks)."""
        if not reply:
            return
        if hdr and jsapi.required_api_level_refused(hdr):
            return self._status(reply, b"412 Required Api Level")
        prefix = f"$JS.API.DIRECT.GET.{self.name}"
        if len(subject) > len(prefix):  # DIRECT.GET.<stream>.<subject>: last for that subject
            req = None
            if data:
                try:
                    req = jsapi.parse_direct_get_request(data)
                except ValueError:
                    return self._status(reply, b"408 Malformed Request")
            key = subject[len(prefix) + 1:]
            if req is None:
                req = jsapi.parse_direct_get_request(b"{}")
            elif (req["last_by_subj"] or req["next_by_subj"] or req["multi_last"] or req["seq"]
                  or req["batch"] or req["start_time"] is not None or req["up_to_seq"]
                  or req["up_to_time"] is not None):
                return self._status(reply, b"408 Bad Request")
            if not key:
                return self._status(reply, b"408 Bad Request")
            req["last_by_subj"] = key
        else:
            if not data:
                return self._status(reply, b"408 Empty Request")
            try:
                req = jsapi.parse_direct_get_request(data)
            except ValueError:
                return self._status(reply, b"408 Malformed Request")
            if not (req["seq"] or req["last_by_subj"] or req["next_by_subj"] or req["multi_last"]
                    or req["start_time"] is not None):
                return self._status(reply, b"408 Empty Request")
            if jsapi.direct_get_conflict(req):
                return self._status(reply, b"408 Bad Request")
        if req["multi_last"]:
            return self._direct_get_multi(req, reply)
        return self._direct_get(req, reply)

    def _direct_headers(self, m: StoredMsg, batch: tuple[int, int] | None) -> bytes:
        """The reply's header block: the message's own headers (if any) followed by Nats-Stream,
        Nats-Subject, Nats-Sequence, Nats-Time-Stamp and, in batch mode (`batch` = (num
        pending, previous sequence sent)), Nats-Num-Pending and Nats-Last-Sequence."""
        base = m.hdr[:-2] if m.hdr.endswith(b"\r\n\r\n") else b"NATS/1.0\r\n"
        out = (base + b"Nats-Stream: " + self.name.encode() + b"\r\nNats-Subject: " + subject_bytes(m.subject)
               + b"\r\nNats-Sequence: " + str(m.seq).encode() + b"\r\nNats-Time-Stamp: "
               + rfc3339(m.ts).encode() + b"\r\n")
        if batch is not None:
            out += b"Nats-Num-Pending: %d\r\nNats-Last-Sequence: %d\r\n" % batch
        return out + b"\r\n"

    def _direct_get(self, req: dict, reply) -> None:
        """The single forms (seq, last_by_subj, next_by_subj) and the batch form (batch, with
        seq / start_time / next_by_subj as the start, max_bytes as a soft cap: the message
        crossing it is the last sent). A batch ends with `204 EOB` carrying the pending count
        and the last sequence sent; an empty first result is `404 Message Not Found`."""
        store = self.store
        seq = self._seq_for_time(req["start_time"]) if req["start_time"] is not None else req["seq"]
        nxt, last, no_hdr = req["next_by_subj"], req["last_by_subj"], req["no_hdr"]
        batch = req["batch"]
        is_batch = batch != 0
        np = 0
        if is_batch:
            np = store.num_pending(max(seq, 1), nxt)
        else:
            batch = 1
        mb = req["max_bytes"] or self.ctx.options.max_pending
        lseq = sent = 0
        i = 0
        while i < batch:
            if seq > 0 and not nxt:
                if i == 0 and not is_batch:
                    m = store.load_msg(seq)
                else:
                    m = store.load_next_msg("", seq)
                    if m is not None:
                        seq = m.seq
                seq += 1
            elif nxt:
                m = store.load_next_msg(nxt, max(seq, 1))
                if m is not None:
                    seq = m.seq
                seq += 1
            else:
                m = store.load_last_msg(last)
            if m is None:
                if batch > 1 and i > 0:
                    break
                return self._status(reply, b"404 Message Not Found")
            if no_hdr:
                hdr = b""
            elif is_batch:
                if np > 0:
                    np -= 1
                hdr = self._direct_headers(m, (np, lseq))
            else:
                hdr = self._direct_headers(m, None)
            lseq = m.seq
            self._acks.append((reply, None, hdr, m.data))
            sent += len(m.subject) + len(m.hdr) + len(m.data)
            if sent >= mb:
                break
            i += 1
        if is_batch:
            self._acks.append((reply, None, b"NATS/1.0 204 EOB\r\nNats-Num-Pending: %d\r\n"
                               b"Nats-Last-Sequence: %d\r\n\r\n" % (np, lseq), b""))

    def _multi_last_seqs(self, filters: list[str], up_to: int) -> list[int] | None:
        """The last sequence <= up_to of each subject matching any filter, ascending; None when
        more than DIRECT_GET_MAX_MULTI subjects answer."""
        seqs: set[int] = set()
        for f in filters:
            for subj, ss in self.store.subjects_state(f).items():
                if ss.last <= up_to:
                    seqs.add(ss.last)
                elif ss.msgs > 1 and ss.first <= up_to:
                    m = None
                    s = up_to
                    while s >= ss.first:
                        m = self.store.load_msg(s)
                        if m is not None and m.subject == subj:
                            seqs.add(s)
                            break
                        s -= 1
            if len(seqs) > jsapi.DIRECT_GET_MAX_MULTI:
                return None
        return sorted(seqs)

    def _direct_get_multi(self, req: dict, reply) -> None:
        """multi_last: the last message of each matching subject as of up_to_seq / up_to_time
        (skipping those below seq), at most `batch` of them and max_bytes (soft), then
        `204 EOB` with Nats-UpTo-Sequence; `404 No Results` when no subject answers."""
        st = self.store.state()
        up = req["up_to_seq"]
        if req["up_to_time"] is not None:
            up = self._seq_for_time(req["up_to_time"])
            if up <= st.first_seq:
                return self._status(reply, b"404 No Results")
            up -= 1
        if up == 0:
            up = st.last_seq
        seqs = self._multi_last_seqs(req["multi_last"], up) if st.msgs else []
        if seqs is None:
            return self._status(reply, b"413 Too Many Results")
        if not seqs:
            return self._status(reply, b"404 No Results")
        mb = req["max_bytes"] or self.ctx.options.max_pending
        np = len(seqs)
        lseq = sent = count = 0
        for seq in seqs:
            if np > 0:
                np -= 1
            if seq < req["seq"]:
                continue
            m = self.store.load_msg(seq)
            if m is None:
                return self._status(reply, b"404 Message Not Found")
            hdr = self._direct_headers(m, (np, lseq))  # no_hdr does not apply here (as the reference)
            lseq = m.seq
            self._acks.append((reply, None, hdr, m.data))
            sent += len(m.subject) + len(m.hdr) + len(m.data)
            if sent >= mb:
                break
            count += 1
            if req["batch"] > 0 and count >= req["batch"]:
                break
        self._acks.append((reply, None, b"NATS/1.0 204 EOB\r\nNats-Num-Pending: %d\r\n"
                           b"Nats-Last-Sequence: %d\r\nNats-UpTo-Sequence: %d\r\n\r\n" % (np, lseq, up), b""))

    def _status(self, reply, status: bytes) -> None:
        self._acks.append((reply, None, b"NATS/1.0 " + status + b"\r\n\r\n", b""))

    # -- API actor -> Stream -----------------------------------------------------------------

    def _m_config(self):
        return self.config

    def _m_info(self, opts=None):
        opts = opts or {}
        return self.info(deleted_details=bool(opts.get("deleted_details")),
                         subjects_filter=opts.get("subjects_filter") or "")

    def info(self, deleted_details=False, subjects_filter=""):
        st = self.store.state(deleted_details=deleted_details)
        state = {"messages": st.msgs, "bytes": st.bytes, "first_seq": st.first_seq,
                 "first_ts": rfc3339(st.first_ts), "last_seq": st.last_seq,
                 "last_ts": rfc3339(st.last_ts)}
        if st.num_subjects:
            state["num_subjects"] = st.num_subjects
        if subjects_filter:
            subs = self.store.subjects_state(subjects_filter)
            if subs:
                state["subjects"] = {k: v.msgs for k, v in subs.items()}
        if st.num_deleted:
            state["num_deleted"] = st.num_deleted
        if deleted_details and st.deleted:
            state["deleted"] = list(st.deleted)
        if st.lost:
            state["lost"] = {"msgs": list(st.lost), "bytes": 0}
        state["consumer_count"] = len(self._cons)
        out = {"config": self.config, "created": rfc3339(self.holder.created), "state": state}
        out.update(self._sources_info())
        return out

    def _m_update(self, config: dict):
        old = self.config
        self.config = self.holder.config = config
        self._apply_config()
        self.store.update_limits(limits_of(config))
        if self.holder.extra.get("save_meta"):
            self.holder.extra["save_meta"](self.holder)
        if old.get("subjects") != config.get("subjects") or old.get("allow_direct") != config.get("allow_direct"):
            self.iunsubscribe_all()
            self._subscribe()
        if old.get("sources") != config.get("sources") or old.get("mirror") != config.get("mirror"):
            self._setup_sources()
        self._tell_consumers(("stream_config", config))
        return self.info()

    def _m_purge(self, req: dict):
        subject = req.get("filter") or ""
        seq = req.get("seq") or 0
        keep = req.get("keep") or 0
        if seq and keep:
            return E.JSBadRequestError()
        if self.config.get("sealed"):  # before deny_purge, which a sealed stream also has
            return E.JSStreamSealedError()
        if self.config.get("deny_purge"):
            return E.JSStreamPurgeFailedError(err="stream purge not permitted")
        n = self.store.purge(subject=subject, seq=seq, keep=keep)
        st = self.store.state()
        if self.config.get("retention") == "interest":
            for c in self._cons.values():
                c["acked"] = {s for s in c["acked"] if s >= st.first_seq}
        self._tell_consumers(("purged", st.first_seq, subject))
        return n

    def _m_msg_get(self, req: dict):
        seq = req.get("seq") or 0
        last = req.get("last_by_subj") or ""
        nxt = req.get("next_by_subj") or ""
        if (seq and last) or (not seq and not last and not nxt) or (last and nxt):
            return E.JSBadRequestError()
        if last:
            m = self.store.load_last_msg(last)
        elif nxt:
            m = self.store.load_next_msg(nxt, max(seq, 1))
        else:
            m = self.store.load_msg(seq)
        if m is None:
            return E.JSNoMessageFoundError()
        out = {"subject": m.subject, "seq": m.seq}
        if m.hdr:
            out["hdrs"] = base64.b64encode(m.hdr).decode()
        if m.data:
            out["data"] = base64.b64encode(m.data).decode()
        out["time"] = rfc3339(m.ts)
        return out

    def _m_msg_delete(self, seq: int, no_erase: bool):
        if self.config.get("sealed"):  # before deny_delete, which a sealed stream also has
            return E.JSStreamSealedError()
        if self.config.get("deny_delete"):
            return E.JSStreamMsgDeleteFailedError(err="message delete not permitted")
        if not self._memory:
            # as the reference's file store: outside first..last (or an empty stream) there is
            # no block to look in, an error; a gap inside is "not found"
            st = self.store.state()
            if seq > st.last_seq:
                return E.JSStreamMsgDeleteFailedError(err="stream store EOF")
            if seq < max(st.first_seq, 1) or st.msgs == 0:
                return E.JSStreamMsgDeleteFailedError(err="no message found")
        if seq <= 0 or not self.store.remove_msg(seq, erase=not no_erase):
            return E.JSSequenceNotFoundError(seq=seq)
        self._forget_acked(seq)
        self._tell_consumers(("msg_removed", seq))
        return True

    def _m_delete(self):
        self.holder.deleted = True
        self._usage.drop(self.account, self.name)
        for name in list(self._cons):
            self._drop_consumer(name)
        self.iunsubscribe_all()
        try:
            self.store.delete()
        except Exception:
            log.exception("%s: deleting the store failed", self.path)
        return True

    def _m_expire(self):
        now = time.time_ns()
        if self._sdm_ttl:
            self._place_markers(now)
        removed = self.store.expire(now)
        for seq in removed:
            self._forget_acked(seq)
            self._tell_consumers(("msg_removed", seq))
        if self._stored:
            self._commit()  # the markers: flushed, and told to the consumers
        return None

    def _place_markers(self, now: int) -> None:
        """subject_delete_marker_ttl (ADR-48): the last message of a subject that expires
        (max_age or its TTL) is replaced by a delete marker, stored as a publish would be:
        no body, `Nats-Marker-Reason: MaxAge`, `Nats-TTL: <the marker TTL>` and a subject
        rollup (which removes what it replaces); an expiring marker leaves none."""
        store = self.store
        ttl = jsapi.format_duration(self._sdm_ttl // 10**9 * 10**9)
        hdr = (b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: " + ttl.encode()
               + b"\r\nNats-Rollup: sub\r\n\r\n")
        going: dict[str, int] = {}  # subject -> its messages already expiring in this pass
        for seq in store.expiring(now):
            msg = store.load_msg(seq)
            if msg is None:
                continue
            subject = msg.subject
            left = store.filtered_state(subject).msgs - going.get(subject, 0)
            if left == 1 and b"Nats-Marker-Reason:" not in msg.hdr:
                self._publish(subject, None, hdr, b"")  # its rollup removes what it replaces
            else:
                going[subject] = going.get(subject, 0) + 1

    def _m_sync(self):
        if self._sync_running:
            return None
        self._sync_running = True
        store = self.store

        def done(_):
            self._sync_running = False

        try:
            gevent.get_hub().threadpool.spawn(store.sync).rawlink(done)
        except Exception:
            self._sync_running = False
        return None

    # -- consumers ---------------------------------------------------------------------------

    def _m_consumer_names(self):
        return [(name, self.child_path(name)) for name in sorted(self._cons)]

    def _m_consumer_create(self, config: dict, action: str, name: str, account_max_consumers: int = 0):
        """Create or update consumer `name` with a config normalized by the API actor: an
        existing one (10148 for action create with another config, then the update rules),
        action update of a missing one (10149), max consumers of the stream or the account
        (10026), the workqueue rules, then the name (10102, 10103); as the reference orders
        them. Returns the consumer's path or an ApiError."""
        if name in self._cons:
            saved = self.store.consumer_store(name).load_config() or {}
            created = saved.pop("_created", 0)
            if saved == config:
                return self.child_path(name)
            if action == "create":
                return E.JSConsumerAlreadyExistsError()
            if self.config.get("retention") == "workqueue":
                err = self._check_workqueue({**config, "ack_policy": "explicit", "deliver_policy": "all"},
                                            name)
                if err is not None:
                    return err
            err = jsapi.consumer_update_check(saved, config)
            if err is not None:
                return err
            # an update: the consumer applies its new config and keeps its state
            self.store.consumer_store(name).save_config({**config, "_created": created})
            self._cons[name]["filters"] = jsapi.consumer_filters(config)
            ref = registry.ref(self.child_path(name))
            if ref is not None:
                ref.tell(("update_config", config))
            spec = self._consumer_spec(name, config, created)
            self.children[name].spec = spec  # restarts use the new config
            return self.child_path(name)
        if action == "update":
            return E.JSConsumerDoesNotExistError()
        mc = self.config.get("max_consumers", -1)
        if mc <= 0 or 0 < account_max_consumers < mc:
            mc = account_max_consumers
        if mc > 0 and len(self._cons) >= mc:
            return E.JSMaximumConsumersLimitError()
        if self.config.get("retention") == "workqueue":
            err = self._check_workqueue(config, name)
            if err is not None:
                return err
        try:
            jsapi.check_consumer_name(config, name)
        except E.ApiError as e:
            return e
        created = time.time_ns()
        try:
            cstore = self.store.consumer_store(name)
            cstore.save_config({**config, "_created": created})
        except OSError as e:  # e.g. a name longer than the file system allows
            log.warning("%s: creating the store of consumer %r failed: %s", self.path, name, e)
            try:
                self.store.consumer_store(name).delete()
            except Exception:
                pass
            return E.JSConsumerCreateError(err="error creating store for consumer")
        self._cons[name] = {"filters": jsapi.consumer_filters(config), "acked": set()}
        spec = self._consumer_spec(name, config, created)
        self._add(spec)
        try:
            self._start(name, restarted=False)
        except Exception as e:
            self._remove(name)
            self._cons.pop(name, None)
            return E.JSConsumerCreateError(err=str(e))
        return self.child_path(name)

    def _m_consumer_pause(self, name: str, until_ns: int, until: str):
        """CONSUMER.PAUSE: save the consumer's config with pause_until (`until`, UTC RFC3339;
        removed when resuming) and tell the consumer ("update_config", config) then
        ("pause", until_ns) (0 = resume). Returns the new config or an ApiError."""
        if name not in self._cons:
            return E.JSConsumerNotFoundError()
        cstore = self.store.consumer_store(name)
        saved = cstore.load_config() or {}
        created = saved.pop("_created", 0)
        config = {k: v for k, v in saved.items() if k != "pause_until"}
        if until_ns:
            config["pause_until"] = until
        meta = dict(config.get("metadata") or {})
        if meta.get(jsapi.REQ_LEVEL_KEY) in ("0", "1", None):
            grouped = config.get("priority_policy", "none") != "none" or config.get("priority_groups") \
                or config.get("priority_timeout")
            meta[jsapi.REQ_LEVEL_KEY] = "1" if until_ns or grouped else "0"
            config["metadata"] = meta
        config = jsapi.emit_consumer_config(config)
        cstore.save_config({**config, "_created": created})
        if name in self.children:
            self.children[name].spec = self._consumer_spec(name, config, created)
        ref = registry.ref(self.child_path(name))
        if ref is not None:
            ref.tell(("update_config", config))
            ref.tell(("pause", until_ns))
        return config

    def _check_workqueue(self, config: dict, name: str):
        others = [c["filters"] for n, c in self._cons.items() if n != name]
        try:
            jsapi.check_workqueue_consumer(config, others)
        except E.ApiError as e:
            return e
        return None

    def _m_consumer_delete(self, name: str):
        if name not in self._cons:
            return E.JSConsumerNotFoundError()
        self._drop_consumer(name)
        if self.config.get("retention") == "interest":
            self._recheck_interest()
        return True

    def _m_consumer_inactive(self, name: str):
        """An ephemeral consumer past its inactive_threshold asks to be deleted."""
        if name in self._cons:
            self._drop_consumer(name)
            subject, body = action_advisory("CONSUMER.DELETED", self.name, "delete", name,
                                            self.ctx.options.jetstream.domain)
            self.ipublish(subject, body, account=self.account)
            if self.config.get("retention") == "interest":
                self._recheck_interest()
        return None

    def _stop_consumer(self, name: str) -> None:
        if name in self.children:
            self._stop_child(name)
            self._remove(name)

    def _drop_consumer(self, name: str) -> None:
        """Tell the consumer to delete itself and forget it (its store is deleted too)."""
        ref = registry.ref(self.child_path(name))
        child = self.children.get(name)
        if child is not None and child.ref is not None:
            self._stopping_urns.add(child.ref.actor_urn)
            try:
                child.ref.tell(("consumer_delete",))
            except Exception:
                pass
        elif ref is not None:
            try:
                ref.tell(("consumer_delete",))
            except Exception:
                pass
        self._remove(name)
        self._cons.pop(name, None)
        try:
            self.store.consumer_store(name).delete()
        except Exception:
            pass

    # -- Consumer -> Stream ------------------------------------------------------------------

    def _m_load_next(self, filters, start_seq: int, max_msgs: int, max_bytes: int = 0):
        out: list[StoredMsg] = []
        size = 0
        filters = [f for f in (filters or []) if f and f != ">"] or [""]
        seq = max(start_seq, 1)
        if filters == [""]:
            return self.store.load_msgs(seq, max(max_msgs, 1), max_bytes)
        while len(out) < max(max_msgs, 1):
            best = None
            for f in filters:
                m = self.store.load_next_msg(f, seq)
                if m is not None and (best is None or m.seq < best.seq):
                    best = m
            if best is None:
                break
            if max_bytes > 0 and out and size + best.size > max_bytes:
                break
            out.append(best)
            size += best.size
            seq = best.seq + 1
        return out

    def _m_num_pending(self, filters, start_seq: int, last_per_subject: bool = False):
        filters = [f for f in (filters or []) if f] or [""]
        if len(filters) == 1:
            return self.store.num_pending(max(start_seq, 1), filters[0], last_per_subject)
        return sum(self.store.num_pending(max(start_seq, 1), f, last_per_subject) for f in filters)

    def _m_state(self):
        return self.store.state()

    def _m_snapshot(self, with_consumers: bool):
        """STREAM.SNAPSHOT (the API actor asks): (archive bytes, info) of this stream now, in
        the format of `write_snapshot`."""
        self.store.flush()
        info = self.info()
        data = write_snapshot(self.store, self.config, self.holder.created, info["state"],
                              with_consumers)
        return data, info

    def _m_load_msg(self, seq: int):
        return self.store.load_msg(seq)

    def _m_acked(self, name: str, seqs):
        retention = self.config.get("retention", "limits")
        if retention == "workqueue":
            for s in seqs:
                if self.store.remove_msg(s):
                    self._tell_consumers(("msg_removed", s))
        elif retention == "interest":
            c = self._cons.get(name)
            if c is None:
                return None
            c["acked"].update(seqs)
            for s in seqs:
                self._maybe_remove_interest(s)
        return None

    def _maybe_remove_interest(self, seq: int) -> None:
        m = self.store.load_msg(seq)
        if m is None:
            self._forget_acked(seq)
            return
        for c in self._cons.values():
            fs = c["filters"]
            if (not fs or any(subject_match(f, m.subject) for f in fs)) and seq not in c["acked"]:
                return
        if self.store.remove_msg(seq):
            self._tell_consumers(("msg_removed", seq))
        self._forget_acked(seq)

    def _recheck_interest(self) -> None:
        st = self.store.state()
        if not st.msgs:
            return
        seq = st.first_seq
        while True:
            m = self.store.load_next_msg("", seq)
            if m is None:
                break
            self._maybe_remove_interest(m.seq)
            seq = m.seq + 1

    def _forget_acked(self, seq: int) -> None:
        for c in self._cons.values():
            c["acked"].discard(seq)


# -- snapshots ----------------------------------------------------------------------------------
#
# The archive STREAM.SNAPSHOT streams and STREAM.RESTORE takes is actor-nats' own (the reference's
# is a tar of its file-store blocks; neither server restores the other's). It is a gzip-compressed
# tar with:
#   stream.json            {"format": SNAPSHOT_FORMAT, "config", "created" (ns), "state"}
#   msgs                   every message, ascending: a 28-byte big-endian record head (seq u64,
#                          ts i64, subject length u32, header length u32, data length u32), then
#                          subject, header block, data
#   consumers/<name>.json  {"config" (as saved, with "_created"), "state": ConsumerState with
#                          pending as [[stream seq, consumer seq, ts]] and redelivered as
#                          [[stream seq, count]]} (left out with no_consumers)
# Sequences are kept: the first sequence, interior gaps (deleted messages) and a deleted tail.
# Per-message TTLs are not kept (a restored message expires by max_age only).

SNAPSHOT_FORMAT = "actor-nats-snapshot/1"
_REC = struct.Struct(">QqIII")


def write_snapshot(store: StreamStore, config: dict, created: int, state: dict,
                   with_consumers: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = int(time.time())
            tar.addfile(ti, io.BytesIO(data))

        add("stream.json", json.dumps({"format": SNAPSHOT_FORMAT, "config": config,
                                       "created": created, "state": state}).encode())
        msgs = io.BytesIO()
        seq = 0
        while True:
            m = store.load_next_msg("", seq + 1)
            if m is None:
                break
            seq = m.seq
            subj = subject_bytes(m.subject)
            msgs.write(_REC.pack(m.seq, m.ts, len(subj), len(m.hdr), len(m.data)))
            msgs.write(subj)
            msgs.write(m.hdr)
            msgs.write(m.data)
        add("msgs", msgs.getvalue())
        if with_consumers:
            for name in store.consumer_names():
                cs = store.consumer_store(name)
                cfg = cs.load_config()
                if cfg is None:
                    continue
                st = cs.load()
                doc = {"config": cfg, "state": {
                    "delivered_consumer": st.delivered_consumer, "delivered_stream": st.delivered_stream,
                    "ack_floor_consumer": st.ack_floor_consumer, "ack_floor_stream": st.ack_floor_stream,
                    "pending": [[s, c, t] for s, (c, t) in st.pending.items()],
                    "redelivered": [[s, n] for s, n in st.redelivered.items()]}}
                add(f"consumers/{name}.json", json.dumps(doc).encode())
    return buf.getvalue()


def read_snapshot_meta(data: bytes) -> dict:
    """stream.json of an archive; raises ValueError when `data` is not one of ours."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            f = tar.extractfile("stream.json")
            meta = json.loads(f.read()) if f is not None else None
    except (tarfile.TarError, KeyError, OSError, EOFError, ValueError) as e:
        raise ValueError(f"not an actor-nats snapshot: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != SNAPSHOT_FORMAT:
        raise ValueError("not an actor-nats snapshot")
    return meta


def load_snapshot(data: bytes, store: StreamStore) -> dict:
    """Fill an empty `store` from an archive: its messages at their sequences, then its
    consumers (config and state). Returns stream.json. Raises ValueError on a bad archive."""
    meta = read_snapshot_meta(data)
    from ..store.base import ConsumerState

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        f = tar.extractfile("msgs")
        blob = f.read() if f is not None else b""
        state = meta.get("state") or {}
        first = state.get("first_seq") or 1
        if first > 1:
            store.compact(first)
        pos, last = 0, first - 1
        while pos < len(blob):
            seq, ts, ls, lh, ld = _REC.unpack_from(blob, pos)
            pos += _REC.size
            subj = blob[pos:pos + ls].decode()
            pos += ls
            hdr = blob[pos:pos + lh]
            pos += lh
            body = blob[pos:pos + ld]
            pos += ld
            if seq <= last:
                raise ValueError("snapshot messages out of order")
            if seq > last + 1:
                store.skip_msg(seq - 1)
            store.store_msg(subj, hdr, body, ts=ts)
            last = seq
        if state.get("last_seq", 0) > last:
            store.skip_msg(state["last_seq"])
        for ti in tar.getmembers():
            if not (ti.name.startswith("consumers/") and ti.name.endswith(".json")):
                continue
            name = ti.name[len("consumers/"):-len(".json")]
            doc = json.loads(tar.extractfile(ti).read())
            st = doc.get("state") or {}
            cs = store.consumer_store(name)
            cs.save_config(doc["config"])
            cs.update(ConsumerState(
                delivered_consumer=st.get("delivered_consumer", 0),
                delivered_stream=st.get("delivered_stream", 0),
                ack_floor_consumer=st.get("ack_floor_consumer", 0),
                ack_floor_stream=st.get("ack_floor_stream", 0),
                pending={s: (c, t) for s, c, t in st.get("pending") or []},
                redelivered={s: n for s, n in st.get("redelivered") or []}))
    store.flush()
    return meta


def _without_header(hdr: bytes, name: str) -> bytes:
    """A `NATS/1.0` header block without the lines of header `name`."""
    key = name.lower().encode() + b":"
    lines = hdr.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(key))


def _parse_ttl(text: str) -> int | None:
    """Nats-TTL: "never" (-1), a Go duration, or a number of seconds; None when invalid."""
    t = text.strip()
    if t.lower() == "never":
        return -1
    if t.isdigit():
        if not t.isascii() or len(t) > 19:  # other scripts' digits; beyond int64 (as ParseInt)
            return None
        n = int(t)
        return n * 1_000_000_000 if n > 0 else None
    try:
        ns = jsapi.parse_duration(t)
    except ValueError:
        return None
    if ns < 1_000_000_000:
        return None
    return ns


def file_store_dir(store_dir: str, account: str, name: str) -> str:
    return os.path.join(store_dir, "jetstream", account, "streams", name)


SOURCE_BATCH = 256  # messages per source read
SOURCE_MAX_BYTES = 8 << 20  # and at most this many bytes (but always one message)


class _Source:
    """One entry of `sources` (or the `mirror`) and how far it has been read."""

    def __init__(self, spec: dict, mirror: bool, source_id: str):
        self.spec = spec
        self.mirror = mirror
        self.name = spec["name"]
        self.source_id = source_id
        fs = spec.get("filter_subject") or ""
        trs = spec.get("subject_transforms") or []
        self.transforms = [(t.get("src") or ">", t.get("dest") or "",
                            jsapi.SubjectTransform(t.get("src") or "", t.get("dest") or "")) for t in trs]
        self.filters = [t[0] for t in self.transforms] if self.transforms else ([fs] if fs else [""])
        self.key = json.dumps([self.name, fs, [[t[0], t[1]] for t in self.transforms]])
        if self.transforms:
            self.header_keys = [(self.name, t[0], t[1] or ">") for t in self.transforms]
        else:
            self.header_keys = [(self.name, fs or ">", ">")]
        self.next_seq = spec.get("opt_start_seq") or 0
        st = spec.get("opt_start_time")
        self.start_time = jsapi.parse_time_ns(st) if st else 0
        self.inflight = False
        self.asked = 0.0
        self.active = 0
        self.lag = 0
        self.last = 0  # the last origin sequence stored

    def map(self, subject: str):
        """(stored subject, the transform used or None)."""
        for t in self.transforms:
            out = t[2].apply(subject)
            if out is not None:
                return out, t
        return subject, None

    def header(self, seq: int, tr, subject: str) -> str:
        """Nats-Stream-Source: `<origin> <seq> <filter> <dest> <subject> <id>`, as the reference."""
        if tr is not None:
            filt, dest = tr[0], tr[1] or ">"
        else:
            filt, dest = (self.filters[0] or ">"), ">"
        return f"{self.name} {seq} {filt} {dest} {subject} {self.source_id}"


def _random_id(n: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[b % 62] for b in os.urandom(n))
