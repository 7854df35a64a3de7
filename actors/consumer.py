"""A JetStream Consumer: one actor per consumer, a dynamic child of its Stream.

Owns one consumer's delivery state and everything that changes it: which stream sequence is
next, the consumer sequence, the pending (delivered, not yet acked) messages with their
delivery counts, the redelivery queue, the ack floor, the waiting pull requests, push flow
control and heartbeats, and the persisted copy of that state in its ConsumerStore (written
once per mailbox message that changed it, so a restart resumes where the acks left off).

It subscribes itself (an internal client in its account) to its pull subject
`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`, its ack subject `$JS.ACK.<stream>.<consumer>.>`
and, for flow control, `$JS.FC.<stream>.<consumer>.*`, and publishes deliveries with the
9-token reply `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`.

Waiting pull requests take one message each in turn, as the reference's; with priority groups
(ADR-42) the next request is chosen by the policy: pinned_client (one pinned client at a time,
its Nats-Pin-Id on every message, the pin dropped after priority_timeout without a request or
by CONSUMER.UNPIN), overflow (a request only once num_pending or num_ack_pending reach its
min_pending / min_ack_pending), prioritized (lower priority numbers first).

A push consumer delivers only while its deliver subject has interest, as the reference does
(push_bound in INFO): it asks its shard (every shard has every subscription) at start, after a
config update and for INFO (when subscriptions changed since it last asked), probes it with a tell on timer
ticks (heartbeat, inactivity) while bound, and while unbound polls the router's interest
generation (0.25 ms doubling to 250 ms), probing only when it moved. A delivery that still finds
no subscriber (the last one left while it was in flight) comes back as a no-responder notice:
the deliveries from it on are undone and the consumer is unbound.

Messages in (tells unless marked):
  from its Stream: ("appended", [StoredMsg]), ("purged", first_seq_after, filter),
  ("msg_removed", seq), ("stream_config", config), ("consumer_delete",);
  from the API actor: ("info",) (ask) -> ConsumerInfo dict (without "type"),
  ("update_config", config), ("unpin", group), ("pause", until_ns);
  from shards: ("msgs", ...) (its subscriptions), ("noresp", subject, reply),
  ("has_interest", token, bool);
  its own timer: ("tick",); itself: ("kick",) (deliver after an INFO found interest).
Messages out: asks to its Stream (looked up by path each time): ("load_next", filters,
start_seq, max_msgs, max_bytes), ("num_pending", filters, start_seq, last_per_subject),
("state",), ("load_msg", seq); tells ("acked", name, [seqs]) for interest/workqueue retention
and ("consumer_inactive", name) when an ephemeral passed its inactive_threshold; to its shard
about deliver_subject ("interest", account, subject, ref|None, token) (an ask when ref is None).

It never asks the API actor, and the Stream never asks it, so no ask cycle exists (a shard
asks nobody). Time: one
gevent timer per consumer (re-armed for the earliest deadline: ack_wait redeliveries, pull
request expiry and heartbeats, push heartbeats, rate limits, inactivity), never one greenlet
per message.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque

import gevent
import gevent.event
import pykka

from ..protocol.ids import server_id as _random_id
from ..protocol.jsapi import (ZERO_TIME, PullRequestError, check_pull_request, format_time as rfc3339, parse_ack, parse_ack_reply, parse_pull_request,
                              parse_time_ns as parse_rfc3339)
from ..protocol.parser import HPUB, PUB
from .shard import HPUB_AS, PUB_AS
from ..protocol.subjects import subject_bytes, subject_matches
from ..store.base import ConsumerState, StoredMsg
from ..store.file import FileConsumerStore
from .internal import GLOBAL_ACCOUNT, InternalClient
from .runtime import Actor, registry

log = logging.getLogger("actor_nats")

ACK_PREFIX = "$JS.ACK"
NEXT_PREFIX = "$JS.API.CONSUMER.MSG.NEXT"
FC_PREFIX = "$JS.FC"
ADVISORY_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER"

DEFAULT_ACK_WAIT = 30_000_000_000
DEFAULT_MAX_WAITING = 512
LOAD_BATCH = 256  # messages per load_next ask
BUFFER_MAX = 4096  # appended messages kept ahead of delivery before falling back to loads
FC_BYTES = 1 << 20  # push flow control: a request after this many bytes ...
FC_STALL_BYTES = 2 << 20  # ... and no more deliveries past this many without a response
ASK_TIMEOUT = 10.0
PLOG_MAX = 8192  # push deliveries remembered, to undo those that found no subscriber
POLL_MIN = 250_000  # push without interest: ns between looks at the interest generation, ...
POLL_MAX = 250_000_000  # ... doubling up to this
PROBE_LOST = 1_000_000_000  # a probe not answered by then is sent again (its shard restarted)

_ST_NO_MESSAGES = b"NATS/1.0 404 No Messages\r\n\r\n"
_ST_FC = b"NATS/1.0 100 FlowControl Request\r\n\r\n"


def _status(code: int, text: str, headers: dict | None = None) -> bytes:
    out = f"NATS/1.0 {code} {text}\r\n"
    if headers:
        out += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (out + "\r\n").encode()


class PullRequest:
    __slots__ = ("reply", "reply_b", "batch", "max_bytes", "expires", "no_wait", "hb", "hb_next",
                 "delivered", "received", "grouped", "min_pending", "min_ack_pending", "pin",
                 "priority")

    def __init__(self, reply, batch, max_bytes, expires, no_wait, hb, now, pr=None):
        self.reply = reply
        self.reply_b = None  # reply as bytes, once needed
        self.batch = batch  # messages still wanted
        self.max_bytes = max_bytes  # bytes still allowed (0 = no limit)
        self.expires = expires  # ns deadline, 0 = never
        self.no_wait = no_wait
        self.hb = hb
        self.hb_next = now + hb if hb else 0
        self.delivered = 0
        self.received = now
        # priority groups (a JSON request): overflow limits, the pin id it holds, its priority
        self.grouped = pr is not None and pr.is_json
        self.min_pending = pr.min_pending if self.grouped else 0
        self.min_ack_pending = pr.min_ack_pending if self.grouped else 0
        self.pin = pr.id if self.grouped else ""
        self.priority = pr.priority if self.grouped else 0


class Consumer(InternalClient, Actor):
    kind = "consumer"

    def __init__(self, path, parent, child_id, ctx, restarted=False, *, account=GLOBAL_ACCOUNT,
                 stream: str, stream_config: dict, config: dict, cstore, stream_path: str,
                 created: int | None = None):
        super().__init__(path, parent, child_id)
        self.internal_init(ctx)
        self.account = account or GLOBAL_ACCOUNT
        self.stream = stream
        self.stream_config = dict(stream_config or {})
        self.cstore = cstore
        self.stream_path = stream_path
        self.restarted = restarted
        self.created = created or time.time_ns()
        self.name = config.get("name") or config.get("durable_name") or child_id
        self._ackp = f"{ACK_PREFIX}.{stream}.{self.name}."  # of every reply subject it sends
        self._ackpb = self._ackp.encode()
        self._ack_sid = None
        self._apply_config(config)
        # delivery state
        self.sseq = 1  # next stream sequence to consider
        self.dseq = 1  # next consumer sequence
        self.adflr = 0
        self.asflr = 0
        self.pending: dict[int, tuple] = {}  # sseq -> (dseq of first delivery, last delivery ts)
        self._pq: deque = deque()  # pending's keys in the order added (ascending), some gone
        self.rdc: dict[int, int] = {}  # sseq -> deliveries so far (kept while > 1 or pending)
        self.rdq: deque = deque()  # sseqs waiting for redelivery
        self.rdq_set: set[int] = set()
        self.lss: deque = deque()  # last_per_subject start: the sequences still to deliver
        self.buf: deque = deque()  # loaded/appended messages with seq >= sseq, in order
        self.caught_up = False  # buf holds every matching message from sseq on
        self.covered = 0  # highest stream seq the buffer has seen
        self.waiting: deque = deque()
        self.pin_id = ""  # pinned_client: the current pin (Nats-Pin-Id), its time and expiry
        self.pin_ts = 0
        self.pin_expires = 0
        self.last_delivered_sseq = 0
        self.last_active = 0
        self.ack_last_active = 0
        self.push_active = False  # push: someone subscribes to deliver_subject (push_bound)
        self.inactive_since = time.time_ns()
        # push flow control and heartbeats
        self.pbytes = 0
        self.fc_out: tuple | None = None  # (reply subject, bytes covered)
        self.fc_ids = 0
        self.hb_next = 0
        self.not_before = 0  # replay original / rate limit: ns before which nothing goes out
        self.held: tuple | None = None  # (msg, dc) waiting for not_before
        self._plog: deque = deque(maxlen=PLOG_MAX)  # push: (dseq, sseq, dc, from lss)
        # push interest: our shard answers ("interest", ...) probes;
        # one is sent only when the router's interest generation moved since the last answer
        self._igen = None  # interest generation the last probe was sent at (None: unknown)
        self._probe_token = None  # that of the probe in flight
        self._probe_at = 0  # when it was sent
        self._poll_at = 0  # without interest: when to look at the generation again
        self._poll_backoff = POLL_MIN
        # last_per_subject start: (num_pending, len(lss)) counted by the stream; while nothing
        # is appended or removed, each lss delivery takes one subject out of the count
        self._np_cache: tuple | None = None
        # num_pending while not caught up: counted once from the stream (a baseline), then
        # kept by hand: -1 per new delivery, +1 per matching appended message past _np_last
        self._np: int | None = None
        self._np_last = 0  # highest stream sequence the count covers
        # timer
        self._timer = None
        self._timer_at = 0
        self._dirty = False
        self._acked_out: list[int] = []
        self._out: list = []  # (subject, reply, hdr, data, display) to publish, or a PUB_AS event
        self._subjects_b: dict[str, bytes] = {}  # stored subjects encoded, for _pull_fast
        self._sizes_b: dict[int, bytes] = {}  # payload sizes as their digits
        self._deleted = False
        self._sids: list[bytes] = []
        self._ackq: list = []  # (subject, reply, data) of acks from this mailbox message
        self._replies: list[str] = []  # double-ack confirmations, sent once the state is saved
        # the state writer: a file store's write (with its fsync) runs in gevent's threadpool,
        # off the network greenlet; one write at a time, always of the latest state
        # state writes go to a thread only when each one is fsynced (sync: always); else they
        # are a short os.write, done here like the stream's
        self._async_store = isinstance(cstore, FileConsumerStore) and cstore.syncs_each_write
        self._writer = None
        self._wevent = gevent.event.Event()
        self._wstop = False
        self._wwaiters: list[str] = []

    # -- configuration ---------------------------------------------------------------------

    def _apply_config(self, config: dict) -> None:
        self.config = dict(config)
        c = self.config
        self.deliver_subject = c.get("deliver_subject") or ""
        self.deliver_group = c.get("deliver_group") or None
        self.ack_policy = c.get("ack_policy") or "explicit"
        self.ack_wait = int(c.get("ack_wait") or DEFAULT_ACK_WAIT)
        self.backoff = [int(b) for b in (c.get("backoff") or [])]
        md = c.get("max_deliver")
        self.max_deliver = int(md) if md not in (None, 0) else -1
        fs = c.get("filter_subjects") or []
        if not fs and c.get("filter_subject"):
            fs = [c["filter_subject"]]
        self.filters = [f for f in fs if f and f != ">"]
        self._fbytes = [f.encode() for f in self.filters]
        self.replay_original = c.get("replay_policy") == "original"
        self.rate_limit = int(c.get("rate_limit_bps") or 0)
        mw = c.get("max_waiting")
        self.max_waiting = int(mw) if mw else DEFAULT_MAX_WAITING
        self.max_ack_pending = int(c.get("max_ack_pending") or -1)
        self.flow_control = bool(c.get("flow_control"))
        self.headers_only = bool(c.get("headers_only"))
        self.max_batch = int(c.get("max_batch") or 0)
        self.max_expires = int(c.get("max_expires") or 0)
        self.max_req_bytes = int(c.get("max_bytes") or 0)
        self.idle_heartbeat = int(c.get("idle_heartbeat") or 0)
        self.inactive_threshold = int(c.get("inactive_threshold") or 0)
        self.durable = bool(c.get("durable_name"))
        pu = c.get("pause_until")
        try:
            self.pause_until = parse_rfc3339(pu) if pu else 0  # ns; nothing delivered before
        except (ValueError, TypeError):
            self.pause_until = 0
        # priority groups (ADR-42): one group; overflow, pinned_client or prioritized
        self.priority_policy = c.get("priority_policy") or "none"
        self.priority_groups = list(c.get("priority_groups") or [])
        self.pinned_ttl = int(c.get("priority_timeout") or 0)
        if self.priority_policy != "pinned_client" and getattr(self, "pin_id", ""):
            self.pin_id, self.pin_ts, self.pin_expires = "", 0, 0
        # pull deliveries may take _pull_fast (nothing per message but the message itself)
        self._fast_ok = not self.headers_only and self.rate_limit <= 0 and not self.replay_original \
            and self.priority_policy == "none"

    def _matches(self, subject: str) -> bool:
        if not self._fbytes:
            return True
        s = subject_bytes(subject)
        for f in self._fbytes:
            if subject_matches(f, s):
                return True
        return False

    # -- lifecycle ---------------------------------------------------------------------------

    def started(self) -> None:
        # The Stream saved the config (with its `_created`) before starting us. A consumer
        # started again with a new config (CONSUMER.CREATE as an update) keeps its state.
        if self.restarted or _has_state(self.cstore.load()):
            self._recover()
        else:
            self._select_start()
            # the start position, written by the writer like any change (a file store's
            # fsync stays off the create request's path)
            self._dirty = True
        acc = self.account
        self._ack_sid = self.isubscribe(f"{ACK_PREFIX}.{self.stream}.{self.name}.>", self._on_ack, account=acc)
        self._sids.append(self._ack_sid)
        self._sids.append(self.isubscribe(f"{NEXT_PREFIX}.{self.stream}.{self.name}", self._on_next, account=acc))
        if self.flow_control:
            self._sids.append(self.isubscribe(f"{FC_PREFIX}.{self.stream}.{self.name}.*", self._on_fc, account=acc))
        now = time.time_ns()
        if self.deliver_subject:
            self._interest_now()
            if self.idle_heartbeat:
                self.hb_next = now + self.idle_heartbeat
        if self.pending:
            self._arm(min(p[1] for p in self.pending.values()) + self.ack_wait)
        self._arm_later(now)
        self._kick()
        self._flush_out()

    def describe(self) -> dict:
        return {"stream": self.stream, "consumer": self.name}

    def cleanup(self) -> None:
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None
        # a write in flight finishes before a restarted consumer reads the state; a crash
        # loses what was not written yet (redelivered later), a normal stop writes it
        self._stop_writer()
        if not self._failed and not self._deleted:
            try:
                self._persist_now()
            except Exception as e:
                log.warning("%s: saving consumer state failed: %s", self.path, e)
            if self._wwaiters or self._replies:
                self._send_replies(self._wwaiters + self._replies)
                self._wwaiters, self._replies = [], []
        try:
            self.iunsubscribe_all()
        except Exception:  # the router may be gone at shutdown
            pass

    def _recover(self) -> None:
        st = self.cstore.load()
        self.dseq = st.delivered_consumer + 1
        self.sseq = st.delivered_stream + 1
        self.adflr = st.ack_floor_consumer
        self.asflr = st.ack_floor_stream
        # in stream sequence order: the first key is the lowest pending (see _low)
        self.pending = {s: (d, ts) for s, (d, ts) in sorted(st.pending.items())}
        self._pq = deque(self.pending)
        self.rdc = dict(st.redelivered)
        self.last_delivered_sseq = st.delivered_stream
        if self.ack_policy == "none":
            self.pending.clear()

    def _select_start(self) -> None:
        c = self.config
        policy = c.get("deliver_policy") or "all"
        state = self._ask("state")
        first = getattr(state, "first_seq", 0) or 1
        last = getattr(state, "last_seq", 0) or 0
        if policy == "all":
            self.sseq = first
        elif policy == "new":
            self.sseq = last + 1
        elif policy == "by_start_sequence":
            self.sseq = max(int(c.get("opt_start_seq") or 1), 1)
        elif policy == "by_start_time":
            self.sseq = self._seq_for_time(parse_rfc3339(c["opt_start_time"]), first, last)
        elif policy == "last":
            self.sseq = self._last_matching(first, last) or last + 1
        elif policy == "last_per_subject":
            self.lss = deque(self._last_per_subject(first, last))
            self.sseq = self.lss[0] if self.lss else last + 1
        else:
            self.sseq = first
        self.dseq = 1
        self.adflr = 0
        self.asflr = self.sseq - 1
        self.last_delivered_sseq = self.sseq - 1

    def _seq_for_time(self, ts: int, first: int, last: int) -> int:
        """First stream sequence stored at or after `ts` (binary search over sequences)."""
        lo, hi = first, last + 1
        while lo < hi:
            mid = (lo + hi) // 2
            msgs = self._ask("load_next", [], mid, 1, 0) or []
            if not msgs:
                hi = mid
                continue
            m = msgs[0]
            if m.ts >= ts:
                hi = mid
            else:
                lo = m.seq + 1
        return lo

    def _last_matching(self, first: int, last: int) -> int:
        if last < first:
            return 0
        if not self.filters:
            return last
        if not self._ask("num_pending", self.filters, first, False):
            return 0
        lo, hi = first, last  # the largest s with num_pending(s) >= 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._ask("num_pending", self.filters, mid, False):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _last_per_subject(self, first: int, last: int) -> list[int]:
        lasts: dict[str, int] = {}
        seq = first
        while seq <= last:
            msgs = self._ask("load_next", self.filters, seq, 1024, 0) or []
            for m in msgs:
                if m.seq > last:
                    break
                lasts[m.subject] = m.seq
            if len(msgs) < 1024:
                break
            seq = msgs[-1].seq + 1
        return sorted(lasts.values())

    # -- talking to the stream ---------------------------------------------------------------

    def _ask(self, *message):
        ref = registry.ref(self.stream_path)
        if ref is None:
            return None
        try:
            return ref.ask(message, timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return None

    def _tell_stream(self, *message) -> None:
        ref = registry.ref(self.stream_path)
        if ref is not None:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                pass

    # -- the mailbox -------------------------------------------------------------------------

    def handle(self, message):
        kind = message[0]
        if kind == "noresp":
            self._on_noresp(message[1], message[2])
        elif kind == "has_interest":
            self._on_interest(message[1], message[2])
        elif kind == "kick":
            pass
        elif kind == "pause":  # CONSUMER.PAUSE, after its ("update_config", config)
            self.pause_until = message[1]
            self._arm_later(time.time_ns())
        elif kind == "msgs":
            self._on_msgs(message[1])
            if self._ackq:
                self._process_acks()
        elif self.internal_handle(message):
            if self._ackq:
                self._process_acks()
        elif kind == "appended":
            self._on_appended(message[1])
        elif kind == "tick":
            self._timer = None
            self._timer_at = 0
            self._on_tick()
        elif kind == "info":
            if self.waiting:
                self._prune_waiting()
            return self._info()
        elif kind == "purged":
            self._on_purged(message[1], message[2] if len(message) > 2 else "")
        elif kind == "msg_removed":
            self._on_removed(message[1])
        elif kind == "stream_config":
            self.stream_config = dict(message[1])
        elif kind == "update_config":
            self._update_config(message[1])
        elif kind == "unpin":  # CONSUMER.UNPIN (the API actor checked the group); the
            self._unpin(message[1], "admin")  # reference advises even when nobody was pinned
        elif kind == "consumer_delete":
            self._delete()
            return None
        else:
            return super().handle(message)
        if self._deleted:
            return None
        self._kick()
        self._flush_out()
        return None

    def _flush_out(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self._publish(out)
        if self._acked_out:
            seqs, self._acked_out = self._acked_out, []
            if self.stream_config.get("retention") in ("interest", "workqueue"):
                self._tell_stream("acked", self.name, seqs)
        if self._dirty or (self._replies and self._writer is not None):
            self._persist()  # (a write may be in flight: confirm after the next one)
        elif self._replies:
            replies, self._replies = self._replies, []
            self._send_replies(replies)

    def _send_replies(self, replies: list[str]) -> None:
        self.ipublish_many([(r, None, b"", b"") for r in replies], self.account)

    # -- persistence -------------------------------------------------------------------------

    def _persist(self) -> None:
        """Save the state once for this mailbox message: at once for a memory store, else by
        the writer greenlet (the double-ack confirmations go out after that write)."""
        self._dirty = False
        if self._deleted:
            return
        if not self._async_store:
            self._persist_now()
            if self._replies:
                replies, self._replies = self._replies, []
                self._send_replies(replies)
            return
        if self._replies:
            self._wwaiters.extend(self._replies)
            self._replies = []
        if self._writer is None and not self._wstop:
            self._writer = gevent.spawn(self._write_loop)
        self._wevent.set()

    def _write_loop(self) -> None:
        pool = gevent.get_hub().threadpool
        while True:
            self._wevent.wait()
            if self._wstop:
                return
            self._wevent.clear()
            st = self._snapshot()  # no yield while it is built: a consistent copy
            waiters, self._wwaiters = self._wwaiters, []
            try:
                pool.apply(self.cstore.update, (st,))
            except Exception as e:
                log.warning("%s: saving consumer state failed: %s", self.path, e)
            if waiters:
                self._send_replies(waiters)

    def _stop_writer(self) -> None:
        """Stop the writer after the write in flight (if any) is done."""
        self._wstop = True
        w, self._writer = self._writer, None
        if w is not None:
            self._wevent.set()
            w.join(timeout=ASK_TIMEOUT)
            if not w.dead:
                w.kill(block=False)

    def _persist_now(self) -> None:
        self._dirty = False
        if self._deleted:
            return
        self.cstore.update(self._snapshot())

    def _snapshot(self) -> ConsumerState:
        st = ConsumerState(
            delivered_consumer=self.dseq - 1,
            delivered_stream=self.last_delivered_sseq if not self.lss else self.sseq - 1,
            ack_floor_consumer=self.adflr,
            ack_floor_stream=self.asflr,
            pending=dict(self.pending),  # (dseq, ts) tuples: nothing to copy inside
            redelivered={s: n for s, n in self.rdc.items() if n > 1},
        )
        st.delivered_stream = max(st.delivered_stream, self.sseq - 1)
        return st

    def _publish(self, msgs) -> None:
        """Publish (subject, reply, hdr, data, display) tuples in order; with a reply they
        ask for no-responder notices, which is how a push consumer learns it lost its
        subscriber. `display` is the subject the receiver sees (the stored message's own
        subject), carried as an extra element of a PUB_AS/HPUB_AS event (see actors/shard.py)."""
        shards = self.ctx.shards
        info = (self.icid, self.actor_ref, True, True, -1, self.account)
        batch: list = []
        known: dict[str, bytes] = {}  # subject -> bytes, for this call
        enc: dict[str, bytes] = {}  # displayed subject -> bytes
        sizes: dict[int, bytes] = {}  # payload size -> its digits
        for item in msgs:
            if item[0].__class__ is int:  # already an event (_pull_fast makes them)
                batch.append(item)
                continue
            subject, reply, hdr, data, display = item
            subj = known.get(subject)
            if subj is None:
                subj = known[subject] = subject_bytes(subject)
            rep = subject_bytes(reply) if reply else None
            disp = None
            if display and display != subject:
                disp = enc.get(display)
                if disp is None:
                    disp = enc[display] = subject_bytes(display)
            if hdr:
                payload = hdr + data
                n = len(payload)
                size = sizes.get(n)
                if size is None:
                    size = sizes[n] = str(n).encode()
                if disp is None:
                    batch.append((HPUB, subj, rep, len(hdr), size, payload))
                else:
                    batch.append((HPUB_AS, subj, rep, len(hdr), size, payload, disp))
            else:
                n = len(data)
                size = sizes.get(n)
                if size is None:
                    size = sizes[n] = str(n).encode()
                if disp is None:
                    batch.append((PUB, subj, rep, size, data))
                else:
                    batch.append((PUB_AS, subj, rep, size, data, disp))
        ref = shards.refs[shards.shard_for(self.icid)]  # one shard: delivered in this order
        if ref is None or not batch:
            return
        try:
            ref.tell(("pub", info, batch, None))
        except pykka.ActorDeadError:
            pass

    # -- timer -------------------------------------------------------------------------------

    def _arm(self, at: int) -> None:
        """Make sure the timer fires no later than `at` (ns, wall clock)."""
        if at <= 0:
            return
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.kill(block=False)
        delay = max(0.0, (at - time.time_ns()) / 1e9) + 0.001  # gevent may fire a little early
        self._timer_at = at
        ref = self.actor_ref
        self._timer = gevent.spawn_later(delay, _tick, ref)

    def _arm_later(self, now: int) -> None:
        """Arm for the non-ack deadlines (pull expiry and heartbeats, push heartbeat,
        inactivity, a held message)."""
        for r in self.waiting:
            if r.expires:
                self._arm(r.expires)
            if r.hb_next:
                self._arm(r.hb_next)
        if self.hb_next:
            self._arm(self.hb_next)
        if self.held is not None or self.not_before > now:
            self._arm(self.not_before)
        if self.pause_until > now:
            self._arm(self.pause_until)
        if self.pin_expires:
            self._arm(self.pin_expires)
        if self.inactive_threshold and not self.durable:
            # inactive: when the threshold is reached; active: look again after a threshold
            self._arm(self.inactive_since + self.inactive_threshold if self._inactive()
                      else now + self.inactive_threshold)
        if self.deliver_subject:
            if self._probe_token is not None:
                self._arm(self._probe_at + PROBE_LOST)
            elif not self.push_active:
                self._arm(max(self._poll_at, now))

    def _on_tick(self) -> None:
        now = time.time_ns()
        # ack_wait: pending messages due for redelivery
        if self.pending and self.ack_policy != "none":
            earliest = 0
            due = []
            for sseq, (dseq, ts) in self.pending.items():
                at = ts + self._wait_for(self.rdc.get(sseq, 1))
                if at <= now:
                    if sseq not in self.rdq_set:
                        due.append(sseq)
                elif not earliest or at < earliest:
                    earliest = at
            for sseq in sorted(due):
                self._queue_redelivery(sseq)
            if earliest:
                self._arm(earliest)
        # pull requests: expiry and heartbeats
        if self.waiting:
            keep = deque()
            for r in self.waiting:
                if r.expires and r.expires <= now:
                    self._out.append((r.reply, None, _status(408, "Request Timeout", {
                        "Nats-Pending-Messages": r.batch, "Nats-Pending-Bytes": r.max_bytes}), b"", None))
                    continue
                if r.hb_next and r.hb_next <= now:
                    self._out.append((r.reply, None, self._heartbeat_hdr(), b"", None))
                    r.hb_next = now + r.hb
                keep.append(r)
            if len(keep) != len(self.waiting):
                self.waiting = keep
                if not keep:
                    self.inactive_since = now
        # pinned_client: the pinned client stopped asking for longer than priority_timeout
        if self.pin_id and self.pin_expires and self.pin_expires <= now:
            self._unpin(self.priority_groups[0] if self.priority_groups else "", "timeout")
        # push interest: without it, look for a subscriber when the poll is due; with it, make
        # sure it is still there (a tick is a heartbeat or an inactivity check)
        if self._probe_token is not None and now - self._probe_at >= PROBE_LOST:
            self._probe_token = None
            self._igen = None  # ask again
        if self.deliver_subject and self._probe_token is None:
            if not self.push_active:
                if now >= self._poll_at:
                    if not self._probe():
                        self._poll_at = now + self._poll_backoff
                        self._poll_backoff = min(self._poll_backoff * 2, POLL_MAX)
            else:
                self._probe()
        # push idle heartbeat
        if self.hb_next and self.hb_next <= now:
            if self.push_active:
                self._out.append((self.deliver_subject, None, self._heartbeat_hdr(stalled=True), b"", None))
            self.hb_next = now + self.idle_heartbeat
        # ephemeral inactivity
        if self.inactive_threshold and not self.durable and self._inactive():
            if now - self.inactive_since >= self.inactive_threshold:
                self._tell_stream("consumer_inactive", self.name)
                self.inactive_since = now  # ask again after another threshold if still here
        self._arm_later(now)

    def _inactive(self) -> bool:
        if self.deliver_subject:
            return not self.push_active
        return not self.waiting

    def _heartbeat_hdr(self, stalled: bool = False) -> bytes:
        h = {"Nats-Last-Consumer": self.dseq - 1, "Nats-Last-Stream": self.last_delivered_sseq}
        if stalled and self.fc_out is not None and self.pbytes >= FC_STALL_BYTES:
            h["Nats-Consumer-Stalled"] = self.fc_out[0]
        return _status(100, "Idle Heartbeat", h)

    def _wait_for(self, deliveries: int) -> int:
        if self.backoff:
            return self.backoff[min(max(deliveries, 1) - 1, len(self.backoff) - 1)]
        return self.ack_wait

    # -- stream events -----------------------------------------------------------------------

    def _on_appended(self, msgs) -> None:
        self._np_cache = None
        if self._np is not None and not self.caught_up:
            last = self._np_last
            for m in msgs:
                if m.seq > last:
                    last = m.seq
                    if self._matches(m.subject):
                        self._np += 1
            self._np_last = last
        if not self.caught_up or self.lss:
            return
        for m in msgs:
            if m.seq <= self.covered:
                continue
            self.covered = m.seq
            if m.seq >= self.sseq and self._matches(m.subject):
                if len(self.buf) >= BUFFER_MAX:
                    self.caught_up = False
                    self._np = None
                    return
                self.buf.append(m)

    def _on_purged(self, first: int, subject: str) -> None:
        self._np_cache = None
        self.buf.clear()
        self.caught_up = False
        self.covered = 0
        self._np = None
        if not subject:
            if first > self.sseq:
                self.sseq = first
                self.last_delivered_sseq = max(self.last_delivered_sseq, first - 1)
            gone = [s for s in self.pending if s < first]
            for s in gone:
                self._drop_pending(s)
            while self.lss and self.lss[0] < first:
                self.lss.popleft()
            if not self.pending and self.asflr < self.sseq - 1:
                self.asflr = self.sseq - 1
                self.adflr = self.dseq - 1
        self._dirty = True

    def _on_removed(self, seq: int) -> None:
        self._np_cache = None
        if seq >= self.sseq:
            self._np = None
        if self.buf:
            self.buf = deque(m for m in self.buf if m.seq != seq)
        if seq in self.lss:
            self.lss.remove(seq)
        if seq in self.pending:
            self._drop_pending(seq)
            self._dirty = True

    def _drop_pending(self, sseq: int) -> None:
        """A pending message that no longer exists: forget it as if acked."""
        p = self.pending.pop(sseq, None)
        self.rdc.pop(sseq, None)
        if sseq in self.rdq_set:
            self.rdq_set.discard(sseq)
            try:
                self.rdq.remove(sseq)
            except ValueError:
                pass
        if p is not None:
            self._advance_floor(sseq, p[0])

    def _update_config(self, config: dict) -> None:
        old_filters = self.filters
        had_fc = self.flow_control
        self._apply_config(config)
        if self.filters != old_filters:
            self.buf.clear()
            self.caught_up = False
            self.covered = 0
            self._np = None
            self._np_cache = None
        if self.flow_control and not had_fc:
            self._sids.append(self.isubscribe(f"{FC_PREFIX}.{self.stream}.{self.name}.*", self._on_fc,
                                              account=self.account))
        now = time.time_ns()
        if self.deliver_subject and self.idle_heartbeat:
            self.hb_next = now + self.idle_heartbeat
        else:
            self.hb_next = 0
        if not self.deliver_subject:
            self.push_active = False
        else:
            self._igen = None
            self._interest_now()
        self._arm_later(now)

    def _delete(self) -> None:
        if self._deleted:
            return
        for r in self.waiting:
            self._out.append((r.reply, None, _status(409, "Consumer Deleted"), b"", None))
        self.waiting.clear()
        if self._out:
            out, self._out = self._out, []
            self._publish(out)
        self._deleted = True
        self._stop_writer()
        if self._wwaiters or self._replies:
            self._send_replies(self._wwaiters + self._replies)
            self._wwaiters, self._replies = [], []
        try:
            self.cstore.delete()
        except Exception as e:  # a store that fails to delete must not keep the actor alive
            log.warning("%s: deleting consumer state failed: %s", self.path, e)
        self.stop()

    # -- acks --------------------------------------------------------------------------------

    def _on_msgs(self, parts: list) -> None:
        """A routed batch (five parts per message, see actors/internal.py): the acks (MSG
        frames on the ack subscription) are queued here without decoding, the rest go
        through the internal client's callbacks."""
        ack_sid = self._ack_sid
        ackq = self._ackq
        rest = None
        for i in range(0, len(parts), 5):
            head = parts[i]
            if not head:
                continue
            if parts[i + 1] == ack_sid and head[0] == 77:  # b"MSG <subject> "
                toks = parts[i + 2].split()
                ackq.append((head[4:-1], toks[0] if len(toks) == 2 else None, parts[i + 3]))
            else:
                if rest is None:
                    rest = []
                rest += parts[i:i + 5]
        if rest:
            self._ideliver(rest)

    def _on_ack(self, subject: str, reply, hdr: bytes, data: bytes) -> None:
        # collected, then handled together once the whole delivery batch is read
        self._ackq.append((subject_bytes(subject), reply, data))

    def _process_acks(self) -> None:
        q, self._ackq = self._ackq, []
        now = time.time_ns()
        replies = self._replies
        prefix = self._ackpb
        plen = len(prefix)
        explicit = self.ack_policy == "explicit"
        pending, rdc, rdq_set, acked = self.pending, self.rdc, self.rdq_set, self._acked_out
        pq = self._pq
        for subject, reply, data in q:  # subject: bytes; reply: bytes, str or None
            # the reply subjects this consumer made: <prefix><dc>.<sseq>.<dseq>.<ts>.<pending>
            t = subject[plen:].split(b".") if subject.startswith(prefix) else ()
            if len(subject) > 256 + plen:  # no reply of ours is that long: not a number we made
                continue
            if explicit and len(t) == 5 and (not data or data == b"+ACK") and t[1].isdigit():
                # an explicit +ACK, the common case: _ack_one and _advance_floor, inline
                sseq = int(t[1])
                p = pending.pop(sseq, None) if sseq > 0 else None
                if p is not None:
                    if rdc:
                        rdc.pop(sseq, None)
                    if sseq in rdq_set:
                        rdq_set.discard(sseq)
                        self.rdq.remove(sseq)
                    acked.append(sseq)
                    if pending:
                        while pq and pq[0] not in pending:
                            pq.popleft()
                        if pq:
                            low = pq[0]
                        else:
                            low = self._low()
                            pq = self._pq
                        if p[0] == self.adflr + 1 or sseq <= self.asflr + 1 or sseq < low:
                            if low - 1 > self.asflr:
                                self.asflr = low - 1
                            d = pending[low][0] - 1
                            if d > self.adflr:
                                self.adflr = d
                    else:
                        self._advance_floor(sseq, p[0])
                    self._dirty = True
                if sseq > 0:
                    self.ack_last_active = now
                    if reply:
                        replies.append(reply)
                continue
            if len(t) == 5 and t[0].isdigit() and t[1].isdigit() and t[2].isdigit():  # ASCII
                dc, sseq, dseq = int(t[0]), int(t[1]), int(t[2])
            else:
                ar = parse_ack_reply(subject.decode(errors="replace"))
                if ar is None:
                    continue
                dc, sseq, dseq = ar.delivered, ar.stream_seq, ar.consumer_seq
            if sseq <= 0:
                continue
            if not data or data == b"+ACK":
                if explicit:
                    self._ack_one(sseq, now)
                else:
                    self._ack(sseq, dseq, now)
                if reply:
                    replies.append(reply)
                continue
            ack = parse_ack(data)
            kind = ack.kind
            if kind == "ack":
                self._ack(sseq, dseq, now)
            elif kind == "nak":
                self._nak(sseq, dseq, dc, ack.delay or 0, now)
            elif kind == "progress":
                p = self.pending.get(sseq)
                if p is not None:
                    self.pending[sseq] = (p[0], now)  # resets ack_wait
                    self._arm(now + self._wait_for(self.rdc.get(sseq, 1)))
            elif kind == "next":
                self._ack(sseq, dseq, now)
                if reply:
                    if isinstance(reply, bytes):
                        reply = reply.decode()
                    self._on_next("", reply, b"", ack.next_request)
                continue
            elif kind == "term":
                if sseq in self.pending:
                    self._advisory("MSG_TERMINATED", {
                        "type": "io.nats.jetstream.advisory.v1.terminated",
                        "consumer_seq": dseq, "stream_seq": sseq, "deliveries": dc,
                        "reason": ack.reason})
                self._ack(sseq, dseq, now)
            else:
                continue
            if reply:
                replies.append(reply)

    def _ack(self, sseq: int, dseq: int, now: int) -> None:
        self.ack_last_active = now
        if self.ack_policy == "none":
            return
        if self.ack_policy == "all":
            if sseq <= self.asflr:
                return
            acked = []
            for s in self.pending:  # in stream sequence order
                if s > sseq:
                    break
                acked.append(s)
            for s in acked:
                del self.pending[s]
                self.rdc.pop(s, None)
                if s in self.rdq_set:
                    self.rdq_set.discard(s)
                    self.rdq.remove(s)
            self._acked_out.extend(acked)
            self.adflr, self.asflr = max(self.adflr, dseq), max(self.asflr, sseq)
            if not self.pending:
                self.adflr, self.asflr = self.dseq - 1, max(self.asflr, self.sseq - 1)
            self._dirty = True
            return
        self._ack_one(sseq, now)

    def _ack_one(self, sseq: int, now: int) -> None:
        """An explicit ack of one message."""
        self.ack_last_active = now
        p = self.pending.pop(sseq, None)
        if p is None:
            return
        if self.rdc:
            self.rdc.pop(sseq, None)
        if sseq in self.rdq_set:
            self.rdq_set.discard(sseq)
            self.rdq.remove(sseq)
        self._acked_out.append(sseq)
        self._advance_floor(sseq, p[0])
        self._dirty = True

    def _advance_floor(self, sseq: int, dseq: int) -> None:
        if not self.pending:
            self.adflr = self.dseq - 1
            self.asflr = self.sseq - 1 if not self.lss else max(self.asflr, sseq)
            return
        low = self._low()
        if dseq == self.adflr + 1 or sseq <= self.asflr + 1 or sseq < low:
            self.asflr = max(self.asflr, low - 1)
            self.adflr = max(self.adflr, self.pending[low][0] - 1)

    def _low(self) -> int:
        """The lowest pending stream sequence: the first key, as `pending` gains keys in
        stream sequence order (new deliveries go up; a restart loads them sorted). Read from
        _pq, cleaned lazily: the first key of a dict whose front was deleted one key at a
        time is found by scanning every deleted slot."""
        pending, pq = self.pending, self._pq
        while pq and pq[0] not in pending:
            pq.popleft()
        if not pq or len(pq) > 2 * len(pending) + 64:
            pq = self._pq = deque(pending)
        return pq[0]

    def _nak(self, sseq: int, dseq: int, dc: int, delay: int, now: int) -> None:
        p = self.pending.get(sseq)
        if p is None or self.ack_policy == "none":
            return
        self._advisory("MSG_NAKED", {
            "type": "io.nats.jetstream.advisory.v1.nak",
            "consumer_seq": dseq, "stream_seq": sseq, "deliveries": dc})
        if delay > 0:
            # due when ts + wait == now + delay
            self.pending[sseq] = (p[0], now + delay - self._wait_for(self.rdc.get(sseq, 1)))
            self._arm(now + delay)
        else:
            self._queue_redelivery(sseq)
        self._dirty = True

    def _queue_redelivery(self, sseq: int) -> None:
        if sseq in self.rdq_set or sseq not in self.pending:
            return
        self.rdq.append(sseq)
        self.rdq_set.add(sseq)

    def _max_delivered(self, sseq: int, dc: int) -> None:
        """Its turn to be redelivered came after its last allowed delivery: as the reference,
        it leaves pending without moving the ack floor (its redelivery count stays), and the
        MAX_DELIVERIES advisory says so."""
        self.pending.pop(sseq, None)
        self._advisory("MAX_DELIVERIES", {
            "type": "io.nats.jetstream.advisory.v1.max_deliver",
            "stream_seq": sseq, "deliveries": dc})
        self._dirty = True

    def _advisory(self, kind: str, body: dict) -> None:
        adv = {"type": body.pop("type"), "id": _random_id()[:22], "timestamp": rfc3339(time.time_ns()),
               "stream": self.stream, "consumer": self.name}
        adv.update(body)
        self._out.append((f"{ADVISORY_PREFIX}.{kind}.{self.stream}.{self.name}", None, b"",
                          json.dumps(adv, separators=(",", ":")).encode(), None))

    # -- flow control and push interest ------------------------------------------------------

    def _on_fc(self, subject: str, reply, hdr: bytes, data: bytes) -> None:
        if self.fc_out is not None and subject == self.fc_out[0]:
            self.pbytes = max(0, self.pbytes - self.fc_out[1])
            self.fc_out = None
            self.push_active = True

    def _interest_now(self) -> None:
        """Ask our shard (each has every subscription) whether anyone subscribes to
        deliver_subject (at start,
        after a config update and for INFO's push_bound: exact at that moment)."""
        shards = self.ctx.shards
        subj = self.deliver_subject.encode()
        ref = shards.refs[shards.shard_for(self.icid)]
        gen = shards.interest_generation
        has = False
        if ref is not None:
            try:
                has = bool(ref.ask(("interest", self.account, subj, None, None), timeout=ASK_TIMEOUT))
            except (pykka.ActorDeadError, pykka.Timeout):
                gen = None
        self._probe_token = None
        self._set_interest(has, gen)

    def _probe(self) -> bool:
        """Tell our shard to say whether deliver_subject has interest, if subscriptions
        changed since the last answer; False if nothing changed (no probe sent)."""
        shards = self.ctx.shards
        gen = shards.interest_generation
        if gen == self._igen:
            return False
        subj = self.deliver_subject.encode()
        ref = shards.refs[shards.shard_for(self.icid)]
        if ref is None:
            return False
        self._probe_token = gen
        self._probe_at = time.time_ns()
        try:
            ref.tell(("interest", self.account, subj, self.actor_ref, gen))
        except pykka.ActorDeadError:
            self._probe_token = None
            return False
        return True

    def _on_interest(self, token, has: bool) -> None:
        if token is None or token != self._probe_token:
            return  # an answer overtaken by a later probe or ask
        self._probe_token = None
        self._set_interest(has, token)
        self._arm_later(time.time_ns())

    def _set_interest(self, has: bool, gen) -> None:
        """Deliver while someone subscribes to deliver_subject, as the reference: without
        interest nothing is pushed (push_bound false) and the generation is polled (with
        backoff) for a subscriber to come."""
        self._igen = gen
        now = time.time_ns()
        if has:
            if not self.push_active:
                self.push_active = True
                self._poll_backoff = POLL_MIN
        else:
            if self.push_active:
                self.push_active = False
                self.inactive_since = now
                self._poll_backoff = POLL_MIN
            self._poll_at = now + self._poll_backoff
            self._poll_backoff = min(self._poll_backoff * 2, POLL_MAX)
            self._arm(self._poll_at)

    def _on_noresp(self, subject, reply) -> None:
        """A delivery found no subscriber. Push: the last one left while deliveries were in
        flight; every delivery from that one on is undone, as if never made, and pushing
        stops until a probe finds interest again. Pull: the requester is gone (nats.js
        stops a consume() and leaves its request): see _unserved."""
        if isinstance(subject, bytes):
            subject = subject.decode()
        if isinstance(reply, bytes):
            reply = reply.decode()
        if not reply or not reply.startswith(ACK_PREFIX):
            return
        toks = reply.split(".")
        if not self.deliver_subject:
            if len(toks) >= 9:
                self._unserved(subject, toks)
            return
        if subject != self.deliver_subject or len(toks) < 9:
            return
        try:
            dseq = int(toks[-3])
        except ValueError:
            return
        self._probe_token = None
        self._set_interest(False, None)  # None: probe at the next poll whatever the generation
        if dseq < self.dseq:
            self._rollback(dseq)

    def _unserved(self, inbox: str, toks: list) -> None:
        """A pull delivery to `inbox` reached nobody. As the reference, which checks a
        request's interest before each delivery: the requests waiting on that inbox are
        dropped, and the message goes to the next request as if it had not been sent (its
        delivery count given back), unless it was acked or sent again meanwhile."""
        gone = [r for r in self.waiting if r.reply == inbox]
        for r in gone:
            self.waiting.remove(r)
        if gone and not self.waiting:
            self.inactive_since = time.time_ns()
        try:
            dc, sseq, dseq = int(toks[-5]), int(toks[-4]), int(toks[-3])
        except ValueError:
            return
        p = self.pending.get(sseq)
        if p is None or p[0] != dseq or sseq in self.rdq_set:
            return
        if dc == 1 and dseq == self.dseq - 1 and sseq == self.sseq - 1 and not self.lss:
            # the newest delivery: undone, its stream and consumer sequences given back
            del self.pending[sseq]
            self.rdc.pop(sseq, None)
            self.sseq, self.dseq = sseq, dseq
            self.last_delivered_sseq = min(self.last_delivered_sseq, sseq - 1)
            self.buf.clear()
            self.caught_up = False
            self._np_cache = None
            self._np = None
            if not self.pending:
                self.adflr = min(self.adflr, dseq - 1)
                self.asflr = min(self.asflr, sseq - 1)
        else:  # sent again as a redelivery, with this delivery's count given back
            self.rdc[sseq] = dc - 1
            self.rdq.appendleft(sseq)
            self.rdq_set.add(sseq)
        self._dirty = True

    def _prune_waiting(self) -> None:
        """Drop the waiting requests whose inbox nobody subscribes to any more (asked of our
        shard, which holds every subscription), as the reference does before it reports
        num_waiting."""
        shards = self.ctx.shards
        ref = shards.refs[shards.shard_for(self.icid)]
        if ref is None:
            return
        for inbox in {r.reply for r in self.waiting}:
            try:
                has = ref.ask(("interest", self.account, subject_bytes(inbox), None, None),
                              timeout=ASK_TIMEOUT)
            except (pykka.ActorDeadError, pykka.Timeout):
                return
            if not has:
                for r in [r for r in self.waiting if r.reply == inbox]:
                    self.waiting.remove(r)
        if not self.waiting:
            self.inactive_since = time.time_ns()

    def _rollback(self, dseq: int) -> None:
        """Undo the push deliveries with consumer sequence >= dseq (newest first)."""
        log_ = self._plog
        while log_ and log_[-1][0] >= dseq:
            d, sseq, dc, from_lss = log_.pop()
            if dc == 1:
                self.pending.pop(sseq, None)
                if sseq < self.sseq:
                    self.sseq = sseq
                if from_lss:
                    self.lss.appendleft(sseq)
            else:
                n = dc - 1
                if sseq in self.pending:
                    if n > 1:
                        self.rdc[sseq] = n
                    else:
                        self.rdc.pop(sseq, None)
                    if sseq not in self.rdq_set:
                        self.rdq.appendleft(sseq)
                        self.rdq_set.add(sseq)
        self.dseq = min(self.dseq, dseq)
        self.last_delivered_sseq = min(self.last_delivered_sseq, self.sseq - 1)
        self.buf.clear()
        self.caught_up = False
        self.covered = 0
        self._np_cache = None
        self._np = None
        if self.ack_policy == "none" or not self.pending:
            self.adflr = min(self.adflr, self.dseq - 1)
            self.asflr = min(self.asflr, self.sseq - 1)
        self._dirty = True

    # -- pull requests -----------------------------------------------------------------------

    def _on_next(self, subject: str, reply, hdr: bytes, data: bytes) -> None:
        if not reply:
            return
        now = time.time_ns()
        if self.deliver_subject:
            self._out.append((reply, None, _status(409, "Consumer is push based"), b"", None))
            return
        try:
            pr = parse_pull_request(data)
            check_pull_request(pr, self.config)
        except PullRequestError as e:
            self._out.append((reply, None, e.header(), b"", None))
            return
        err = self._check_priority(pr, now) if pr.is_json else None
        if err is not None:
            self._out.append((reply, None, err, b"", None))
            return
        batch, max_bytes, expires, no_wait, hb = (max(pr.batch, 1), pr.max_bytes, pr.expires,
                                                  pr.no_wait, pr.idle_heartbeat)
        if len(self.waiting) >= self.max_waiting:
            self._out.append((reply, None, _status(409, "Exceeded MaxWaiting"), b"", None))
            return
        r = PullRequest(reply, batch, max_bytes, now + expires if expires else 0, no_wait, hb, now, pr)
        self.inactive_since = now
        if no_wait and self.priority_policy == "none":
            # deliver what there is now, then say there is no more
            self.waiting.appendleft(r)
            self._kick()
            if r in self.waiting:
                self.waiting.remove(r)
                if r.delivered == 0 or not expires:
                    self._out.append((reply, None, _ST_NO_MESSAGES, b"", None))
                else:
                    self._out.append((reply, None, _status(408, "Request Timeout", {
                        "Nats-Pending-Messages": r.batch, "Nats-Pending-Bytes": r.max_bytes}), b"", None))
                if not self.waiting:
                    self.inactive_since = now
            return
        if no_wait:  # with priority groups: in turn like the others, answered once served
            self._enqueue(r)
            self._kick()
            if r in self.waiting:
                self.waiting.remove(r)
                self._out.append((reply, None, _ST_NO_MESSAGES if r.delivered == 0 or not expires else
                                  _status(408, "Request Timeout", {"Nats-Pending-Messages": r.batch,
                                                                   "Nats-Pending-Bytes": r.max_bytes}),
                                  b"", None))
            return
        self._enqueue(r)
        self._arm_later(now)

    def _enqueue(self, r: PullRequest) -> None:
        """Wait in turn; under `prioritized`, after every request of the same or a lower
        priority number (lower is served first)."""
        if self.priority_policy != "prioritized":
            self.waiting.append(r)
            return
        at = len(self.waiting)
        for i, other in enumerate(self.waiting):
            if other.priority > r.priority:
                at = i
                break
        self.waiting.insert(at, r)

    # -- priority groups (ADR-42) -------------------------------------------------------------

    def _check_priority(self, pr, now: int) -> bytes | None:
        """A JSON pull request's priority-group fields against this consumer, as the reference
        checks them: the status header to answer with, or None to queue it."""
        policy = self.priority_policy
        if (pr.min_pending or pr.min_ack_pending) and policy != "overflow":
            return _status(400, "Bad Request - Not a Overflow Priority consumer")
        if pr.id and policy != "pinned_client":
            return _status(400, "Bad Request - Not a Pinned Client Priority consumer")
        if not 0 <= pr.priority <= 9:
            return _status(400, "Bad Request - Priority must be between 0 and 9")
        if policy == "none":
            return None
        if not pr.group:
            return _status(400, "Bad Request - Priority Group missing")
        if pr.group not in self.priority_groups:
            return _status(400, "Bad Request - Invalid Priority Group")
        if self.pin_id:
            if pr.id == self.pin_id:
                self._pin_refresh(now)
            elif pr.id:
                return _status(423, "Nats-Pin-Id mismatch")
        return None

    def _pin_refresh(self, now: int) -> None:
        self.pin_expires = now + self.pinned_ttl if self.pinned_ttl > 0 else 0
        if self.pin_expires:
            self._arm(self.pin_expires)

    def _pin(self, r: PullRequest, now: int) -> None:
        self.pin_id = _random_id()[:22]
        self.pin_ts = now
        r.pin = self.pin_id
        self._pin_refresh(now)
        group = self.priority_groups[0] if self.priority_groups else ""
        self._group_advisory("PINNED", "io.nats.jetstream.advisory.v1.consumer_group_pinned",
                             group, pinned_id=self.pin_id)

    def _unpin(self, group: str, reason: str) -> None:
        self.pin_id, self.pin_ts, self.pin_expires = "", 0, 0
        self._group_advisory("UNPINNED", "io.nats.jetstream.advisory.v1.consumer_group_unpinned",
                             group, reason=reason)

    def _group_advisory(self, kind: str, type_: str, group: str, **extra) -> None:
        adv = {"type": type_, "id": _random_id()[:22], "timestamp": rfc3339(time.time_ns()),
               "account": self.account, "stream": self.stream, "consumer": self.name}
        domain = self.ctx.options.jetstream.domain
        if domain:
            adv["domain"] = domain
        adv["group"] = group
        adv.update(extra)
        self._out.append((f"{ADVISORY_PREFIX}.{kind}.{self.stream}.{self.name}", None, b"",
                          json.dumps(adv, separators=(",", ":")).encode(), None))

    def _wrong_pin(self, r: PullRequest) -> None:
        self.waiting.remove(r)
        self._out.append((r.reply, None, _status(423, "Nats-Wrong-Pin-Id", {
            "Nats-Pending-Messages": r.batch, "Nats-Pending-Bytes": r.max_bytes}), b"", None))

    def _select(self, size: int):
        """The waiting request the next message goes to under a priority policy (the head of
        the queue otherwise), or None when none may take it now. Pins a request when nobody
        holds the pin; answers 423 to requests holding an old pin; passes over unpinned
        requests while someone holds it, and overflow requests whose thresholds are not met.
        Returns (request, pinned now)."""
        waiting = self.waiting
        policy = self.priority_policy
        need_pin = policy == "pinned_client" and not self.pin_id
        cycled = 0
        while waiting:
            r = waiting[0]
            pinned_now = False
            if policy == "pinned_client":
                if need_pin:
                    if not r.pin:
                        if r.grouped:
                            self._pin(r, time.time_ns())
                            pinned_now = True
                    else:
                        self._wrong_pin(r)
                        continue
                elif self.pin_id:
                    if r.pin != self.pin_id:
                        if r.pin:
                            self._wrong_pin(r)
                            continue
                        waiting.rotate(-1)
                        cycled += 1
                        if cycled >= len(waiting):
                            return None, False
                        continue
            elif policy == "overflow" and (r.min_pending > 0 or r.min_ack_pending > 0):
                if not ((r.min_pending > 0 and r.min_pending <= self._num_pending())
                        or (r.min_ack_pending > 0 and r.min_ack_pending <= len(self.pending))):
                    waiting.rotate(-1)
                    cycled += 1
                    if cycled >= len(waiting):
                        return None, False
                    continue
            return r, pinned_now
        return None, False

    # -- delivery ----------------------------------------------------------------------------

    def _can_deliver(self) -> bool:
        if self.pause_until:
            if time.time_ns() < self.pause_until:
                return False
            self.pause_until = 0
        if self.deliver_subject:
            if not self.push_active:
                return False
            if self.flow_control and self.fc_out is not None and self.pbytes >= FC_STALL_BYTES:
                return False
            return True
        return bool(self.waiting)

    def _kick(self) -> None:
        """Deliver while there is someone to deliver to and something to deliver."""
        if self._deleted:
            return
        now = 0
        sent = 0
        while True:
            if self._fast_ok and self.buf and self.waiting and not self.deliver_subject and self.held is None \
                    and not self.rdq and not self.lss and not self.not_before and not self.pause_until:
                sent += self._pull_fast(1024 - sent)
                if sent >= 1024:
                    self.actor_ref.tell(("tick",))
                    break
            if not self._can_deliver():
                break
            item = self.held
            if item is None:
                item = self._next_msg()
                if item is None:
                    break
            msg, dc = item
            if self.not_before:
                now = time.time_ns()
                if now < self.not_before:
                    self.held = item
                    self._arm(self.not_before)
                    break
            self.held = None
            if not self._deliver(msg, dc):
                self.held = item
                break
            sent += 1
            if sent >= 1024:
                # let other actors run; continue with a fresh mailbox message
                self.actor_ref.tell(("tick",))
                break

    def _pull_fast(self, limit: int) -> int:
        """_next_msg + _deliver for the common case, in one loop: new messages already in
        the buffer, to plain pull requests (no headers_only, pacing, redeliveries or
        last_per_subject start). Stops where the general path has something to decide (an
        empty buffer, max_bytes, max_ack_pending); returns how many it sent."""
        buf, waiting, pending, pq, out = self.buf, self.waiting, self.pending, self._pq, self._out
        ackp = self._ackp
        ackpb = self._ackpb
        subjects, sizes = self._subjects_b, self._sizes_b
        track = self.ack_policy != "none"
        max_ap = self.max_ack_pending if track else 0
        caught_up = self.caught_up
        np_, np_last = self._np, self._np_last
        if not caught_up and np_ is None:
            self._count_pending()
            np_, np_last = self._np, self._np_last
            if np_ is None:
                return 0
        now = time.time_ns()
        sseq, dseq = self.sseq, self.dseq
        sent = 0
        while buf and waiting and sent < limit:
            r = waiting[0]
            if r.batch <= 0:
                waiting.popleft()
                if not waiting:
                    self.inactive_since = now
                continue
            if max_ap > 0 and len(pending) >= max_ap:
                break
            m = buf[0]
            seq = m.seq
            if seq < sseq:
                buf.popleft()
                continue
            hdr, data = m.hdr, m.data
            size = len(m.subject) + len(hdr) + len(data)
            if r.max_bytes and size > r.max_bytes:
                break  # something for the general path to decide
            buf.popleft()
            sseq = seq + 1
            if caught_up:
                npend = len(buf)
            else:
                if seq <= np_last:
                    np_ -= 1
                else:
                    np_last = seq
                npend = np_ if np_ > 0 else 0
            if not hdr:  # the final PUB_AS event at once (see _publish), bytes throughout
                reply = b"%b1.%d.%d.%d.%d" % (ackpb, seq, dseq, m.ts, npend)  # ack_reply_subject's form
            else:
                reply = f"{ackp}1.{seq}.{dseq}.{m.ts}.{npend}"
            if track:
                p = pending.get(seq)
                if p is None:
                    pending[seq] = (dseq, now)
                    pq.append(seq)
                else:
                    pending[seq] = (p[0], now)
            else:
                self.adflr, self.asflr = dseq, max(self.asflr, seq)
                self._acked_out.append(seq)
            dseq += 1
            if hdr:
                out.append((r.reply, reply, hdr, data, m.subject))
            else:
                subj = subjects.get(m.subject)
                if subj is None:
                    if len(subjects) >= 4096:
                        subjects.clear()
                    subj = subjects[m.subject] = subject_bytes(m.subject)
                n = len(data)
                size_b = sizes.get(n)
                if size_b is None:
                    if len(sizes) >= 4096:
                        sizes.clear()
                    size_b = sizes[n] = str(n).encode()
                if r.reply_b is None:
                    r.reply_b = subject_bytes(r.reply)
                out.append((PUB_AS, r.reply_b, reply, size_b, data, subj))
            sent += 1
            r.batch -= 1
            r.delivered += 1
            if r.max_bytes:
                r.max_bytes -= size
            if r.hb:
                r.hb_next = now + r.hb
            if r.batch <= 0:
                waiting.popleft()
                if not waiting:
                    self.inactive_since = now
            elif len(waiting) > 1:
                waiting.rotate(-1)  # one message per waiting request in turn, as the reference
        if sent:
            self.sseq, self.dseq = sseq, dseq
            self.last_delivered_sseq = sseq - 1
            if not caught_up:
                self._np, self._np_last = np_, np_last
            if track:
                at = now + (self._wait_for(1) if self.backoff else self.ack_wait)
                if self._timer is None or self._timer_at > at:
                    self._arm(at)
            self._dirty = True
            self.last_active = now
        return sent

    def _ack_pending_full(self) -> bool:
        return (self.ack_policy != "none" and self.max_ack_pending > 0
                and len(self.pending) >= self.max_ack_pending)

    def _next_msg(self):
        """(StoredMsg, delivery count) of the next message to send, or None."""
        while self.rdq:
            sseq = self.rdq[0]
            m = self._load(sseq)
            self.rdq.popleft()
            self.rdq_set.discard(sseq)
            if m is None or sseq not in self.pending:
                self._drop_pending(sseq)
                self._dirty = True
                continue
            dc = self.rdc.get(sseq, 1)
            if self.max_deliver > 0 and dc >= self.max_deliver:
                self._max_delivered(sseq, dc)
                continue
            return m, dc + 1
        if self._ack_pending_full():
            return None
        while self.lss:
            sseq = self.lss[0]
            m = self._load(sseq)
            if m is None:
                self.lss.popleft()
                continue
            return m, 1
        while True:
            if not self.buf:
                if self.caught_up:
                    return None
                msgs = self._ask("load_next", self.filters, self.sseq, LOAD_BATCH, 0)
                if msgs is None:
                    return None
                self._np = None  # counted again from the stream when next needed
                for m in msgs:
                    if m.seq >= self.sseq:
                        self.buf.append(m)
                if msgs:
                    self.covered = max(self.covered, msgs[-1].seq)
                if len(msgs) < LOAD_BATCH:
                    self.caught_up = True
                if not self.buf:
                    return None
            m = self.buf[0]
            if m.seq < self.sseq:
                self.buf.popleft()
                continue
            return m, 1

    def _load(self, seq: int):
        for m in self.buf:
            if m.seq == seq:
                return m
            if m.seq > seq:
                break
        return self._ask("load_msg", seq)

    def _num_pending(self) -> int:
        """Matching messages from sseq on not delivered yet: with a last_per_subject start
        the stream counts; caught up, the buffer holds them all; else a count from the
        stream kept up to date by hand (_np)."""
        if self.lss:
            n = self._ask("num_pending", self.filters, self.sseq, True)
            return n or 0
        if self.caught_up:
            buf = self.buf
            while buf and buf[0].seq < self.sseq:
                buf.popleft()
            return len(buf)
        if self._np is None:
            self._count_pending()
        return max(self._np or 0, 0)

    def _count_pending(self) -> None:
        """The baseline of _np: the stream's count and the last sequence it covers (the
        appended messages after it are added as they are told). Asked between two looks at
        the stream's last sequence, so a publish in between is noticed and the count taken
        again."""
        for _ in range(5):
            before = self._ask("state")
            if before is not None and not self.filters and not before.num_deleted:
                # no filter, no gaps: the count is arithmetic (the stream's own count of
                # "everything from sseq on" walks the sequences)
                self._np_last = before.last_seq
                self._np = max(0, before.last_seq - max(self.sseq, before.first_seq) + 1) \
                    if before.msgs else 0
                return
            n = self._ask("num_pending", self.filters, self.sseq, False)
            after = self._ask("state")
            if before is None or n is None or after is None:
                self._np = None
                return
            self._np, self._np_last = n, after.last_seq
            if before.last_seq == after.last_seq:
                return

    def _deliver(self, msg: StoredMsg, dc: int) -> bool:
        """Send one message (new when dc == 1); False if the current pull request cannot take
        it (it was answered and removed; try again with the next)."""
        hdr, data = msg.hdr, msg.data
        if self.headers_only:
            size_h = f"Nats-Msg-Size: {len(data)}\r\n".encode()
            hdr = (hdr[:-2] + size_h + b"\r\n") if hdr else b"NATS/1.0\r\n" + size_h + b"\r\n"
            data = b""
        size = len(msg.subject) + len(hdr) + len(data)
        r = None
        if not self.deliver_subject:
            if self.priority_policy == "none":
                r, pinned_now = self.waiting[0], False
            else:
                r, pinned_now = self._select(size)
                if r is None:
                    return False
            if r.max_bytes and size > r.max_bytes:
                self.waiting.remove(r)
                self._out.append((r.reply, None, _status(409, "Message Size Exceeds MaxBytes"), b"", None))
                if pinned_now:
                    self.pin_id, self.pin_ts, self.pin_expires = "", 0, 0
                if not self.waiting:
                    self.inactive_since = time.time_ns()
                return False
            if self.priority_policy == "pinned_client":
                pin = f"Nats-Pin-Id: {self.pin_id}\r\n".encode()
                hdr = (hdr[:-2] + pin + b"\r\n") if hdr else b"NATS/1.0\r\n" + pin + b"\r\n"
        now = time.time_ns()
        new = dc == 1 and msg.seq >= self.sseq
        from_lss = bool(self.lss) and self.lss[0] == msg.seq
        if new:
            self.sseq = msg.seq + 1
            self.last_delivered_sseq = msg.seq
            if self.lss and self.lss[0] == msg.seq:
                self.lss.popleft()
            if self.buf and self.buf[0].seq == msg.seq:
                self.buf.popleft()
            if self._np is not None:
                if msg.seq <= self._np_last:
                    self._np -= 1
                else:
                    self._np_last = msg.seq  # stored after the count: was never in it
        np_ = self._np
        if np_ is not None and not self.lss and not self.caught_up:
            npend = np_ if np_ > 0 else 0  # _np_after's common case, inline
        else:
            npend = self._np_after()
        dseq = self.dseq
        self.dseq += 1
        reply = f"{self._ackp}{dc}.{msg.seq}.{dseq}.{msg.ts}.{npend}"  # ack_reply_subject's form
        if self.ack_policy == "none":
            self.adflr, self.asflr = dseq, max(self.asflr, msg.seq)
            if new:
                self._acked_out.append(msg.seq)
        else:
            p = self.pending.get(msg.seq)
            if p is None:
                self.pending[msg.seq] = (dseq, now)
                self._pq.append(msg.seq)
            else:
                self.pending[msg.seq] = (p[0], now)
            if dc > 1:
                self.rdc[msg.seq] = dc
            at = now + (self._wait_for(dc) if self.backoff else self.ack_wait)
            if self._timer is None or self._timer_at > at:
                self._arm(at)
        self._dirty = True
        self.last_active = now
        if r is not None:
            self._out.append((r.reply, reply, hdr, data, msg.subject))
            r.batch -= 1
            r.delivered += 1
            if r.max_bytes:
                r.max_bytes -= size
            if r.hb:
                r.hb_next = now + r.hb
            if r.batch <= 0:
                self.waiting.remove(r)
                if not self.waiting:
                    self.inactive_since = now
            elif len(self.waiting) > 1:
                self.waiting.remove(r)  # behind the others (of its priority), in turn
                self._enqueue(r)
        else:
            self._plog.append((dseq, msg.seq, dc, from_lss))
            self._out.append((self.deliver_subject, reply, hdr, data, msg.subject))
            if self.idle_heartbeat:
                self.hb_next = now + self.idle_heartbeat
            if self.flow_control:
                self.pbytes += size
                if self.fc_out is None and self.pbytes >= FC_BYTES:
                    self.fc_ids += 1
                    fc = f"{FC_PREFIX}.{self.stream}.{self.name}.{self.fc_ids}"
                    self.fc_out = (fc, self.pbytes)
                    self._out.append((self.deliver_subject, fc, _ST_FC, b"", None))
        # pacing
        if self.rate_limit > 0:
            self.not_before = now + int(size * 8 * 1e9 / self.rate_limit)
        elif self.replay_original and new:
            nxt = self._peek_next_new()
            self.not_before = now + max(0, nxt.ts - msg.ts) if nxt is not None else 0
        return True

    def _np_after(self) -> int:
        """num_pending as the reply subject shows it: what is left after this delivery."""
        if not self.lss:
            return self._num_pending()
        c = self._np_cache
        if c is None:
            c = self._np_cache = (self._num_pending(), len(self.lss))
            return c[0]
        return max(0, c[0] - (c[1] - len(self.lss)))

    def _peek_next_new(self):
        if self.buf:
            return self.buf[0]
        if self.caught_up:
            return None
        msgs = self._ask("load_next", self.filters, self.sseq, 1, 0) or []
        return msgs[0] if msgs else None

    # -- info --------------------------------------------------------------------------------

    def _info(self) -> dict:
        if self.deliver_subject and self._igen != self.ctx.shards.interest_generation:
            was = self.push_active
            self._interest_now()
            if self.push_active and not was:
                self.actor_ref.tell(("kick",))  # deliver after this answer
        now = time.time_ns()
        delivered = {"consumer_seq": self.dseq - 1, "stream_seq": max(self.sseq - 1, 0)
                     if not self.lss else self.last_delivered_sseq}
        if self.last_active:
            delivered["last_active"] = rfc3339(self.last_active)
        floor = {"consumer_seq": self.adflr, "stream_seq": self.asflr}
        if self.ack_last_active:
            floor["last_active"] = rfc3339(self.ack_last_active)
        info = {
            "stream_name": self.stream,
            "name": self.name,
            "created": rfc3339(self.created),
            "config": self.config,
            "delivered": delivered,
            "ack_floor": floor,
            "num_ack_pending": len(self.pending),
            "num_redelivered": sum(1 for n in self.rdc.values() if n > 1),
            "num_waiting": len(self.waiting),
            "num_pending": self._num_pending(),
        }
        if self.deliver_subject and self.push_active:
            info["push_bound"] = True
        if self.priority_groups:
            state = {"group": self.priority_groups[0]}
            if self.pin_id:
                state["pinned_client_id"] = self.pin_id
            state["pinned_ts"] = rfc3339(self.pin_ts) if self.pin_id else ZERO_TIME  # (as the reference)
            info["priority_groups"] = [state]
        info["ts"] = rfc3339(now)
        return info


def _has_state(st: ConsumerState) -> bool:
    return bool(st.delivered_consumer or st.delivered_stream or st.ack_floor_stream or st.pending)


def _tick(ref) -> None:
    try:
        ref.tell(("tick",))
    except pykka.ActorDeadError:
        pass
