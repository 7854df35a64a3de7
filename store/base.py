"""The StreamStore interface: what a Stream actor asks of the place its messages live.

Owns the contract every store implements (memory.py, file.py, with or without encryption):
appending messages with sequence numbers and timestamps, the stream limits that the store
itself enforces (max_msgs, max_bytes, max_age, max_msgs_per_subject, with discard *old*),
lookups by sequence and by subject, deletes and purges, per-subject state, and the consumers'
persisted state (ConsumerStore). Discard *new*, dedupe, expected-sequence headers and the other
publish rules are the Stream actor's: it asks the store for state and refuses before storing.

Sequences start at 1 (or the stream's first_seq). Timestamps are integer nanoseconds since the
epoch. Subjects are `str`; headers and payloads are `bytes` (hdr is the raw `NATS/1.0\\r\\n...`
block or b"" when the message has none).

Pure: no actors, no gevent, no clocks except where a caller passes `now` (ns); a file store
does blocking file I/O, which the Stream actor batches (store many, then `flush()`), and runs
`sync()` (fsync) off the network greenlet.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class StoreError(Exception):
    """A request the store refuses (e.g. a message larger than max_msg_size)."""


class StoreCorruption(StoreError):
    """Raised nowhere on load: damage found at load is *reported* in `StreamState.lost` and by
    `problems()`, and the damaged messages are skipped. Raised only when a caller asks for a
    record that exists but fails its checksum at read time."""


@dataclass(frozen=True)
class StoredMsg:
    subject: str
    seq: int
    ts: int  # ns since the epoch
    hdr: bytes  # b"" when none
    data: bytes

    @property
    def size(self) -> int:
        """The reference's accounting size of a stored message (subject + hdr + data + 16 bytes
        of overhead), used for max_bytes and `state.bytes`."""
        return len(self.subject) + len(self.hdr) + len(self.data) + 16


@dataclass
class StreamLimits:
    """The limits a store enforces itself; -1 (or 0 for max_age) means unlimited."""

    max_msgs: int = -1
    max_bytes: int = -1
    max_age: int = 0  # ns
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard_new: bool = False  # when set the store never drops old messages for max_msgs/bytes


@dataclass
class StreamState:
    msgs: int = 0
    bytes: int = 0
    first_seq: int = 0
    first_ts: int = 0  # ns; 0 when empty
    last_seq: int = 0
    last_ts: int = 0
    num_subjects: int = 0
    num_deleted: int = 0  # interior gaps between first_seq and last_seq
    deleted: list[int] = field(default_factory=list)  # only filled when asked (deleted_details)
    lost: list[int] = field(default_factory=list)  # sequences found damaged at load and skipped


@dataclass
class SimpleState:
    """Per-subject-filter state: count of messages, first and last sequence."""

    msgs: int = 0
    first: int = 0
    last: int = 0


class StreamStore(ABC):
    """One stream's messages. Every method is synchronous and does not yield."""

    @abstractmethod
    def store_msg(self, subject: str, hdr: bytes, data: bytes, ts: int | None = None,
                  ttl: int = 0) -> tuple[int, int]:
        """Append; returns (seq, ts). Enforces max_msg_size (StoreError "message size exceeds
        maximum allowed"), then the limits with discard old (drops the oldest messages over
        max_msgs / max_bytes, and over max_msgs_per_subject on that subject). `ttl` (ns, 0 =
        none) is a per-message expiry (Nats-TTL); -1 = "never": exempt from max_age too.
        A message with a TTL expires by its TTL only, not by max_age."""
        ...

    @abstractmethod
    def skip_msg(self, seq: int | None = None) -> int:
        """Reserve a sequence with no message (as after a purge with seq, or a mirror gap)."""
        ...

    @abstractmethod
    def load_msg(self, seq: int) -> StoredMsg | None:
        ...

    @abstractmethod
    def load_next_msg(self, filter: str, start_seq: int) -> StoredMsg | None:
        """First message with seq >= start_seq whose subject matches `filter` (a subject with
        wildcards; "" or ">" = all)."""
        ...

    @abstractmethod
    def load_msgs(self, start_seq: int, max_msgs: int, max_bytes: int = 0) -> list[StoredMsg]:
        """The messages with seq >= start_seq, any subject, in order: at most max_msgs and,
        when max_bytes > 0, at most max_bytes of `StoredMsg.size` (but at least one if any)."""
        ...

    @abstractmethod
    def load_last_msg(self, filter: str) -> StoredMsg | None:
        """The last message matching `filter` (last_by_subj)."""
        ...

    @abstractmethod
    def remove_msg(self, seq: int, erase: bool = False) -> bool:
        """Delete one message (erase overwrites its bytes); False if absent."""
        ...

    @abstractmethod
    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        """The STREAM.PURGE semantics: all messages, or only `subject` (wildcards allowed), up
        to but not including `seq` when set, keeping the last `keep` when set. Returns the
        number purged. A full purge moves first_seq past last_seq."""
        ...

    @abstractmethod
    def compact(self, seq: int) -> int:
        """Remove every message below `seq`; returns the number removed."""
        ...

    @abstractmethod
    def expire(self, now: int) -> list[int]:
        """Drop messages older than max_age and past their per-message TTL; returns the
        removed sequences. The Stream actor calls it from a timer."""
        ...

    @abstractmethod
    def expiring(self, now: int) -> list[int]:
        """The sequences expire(now) would drop (past max_age or their TTL), ascending,
        dropping nothing (the Stream places subject delete markers first)."""
        ...

    @abstractmethod
    def next_expiry(self) -> int:
        """ns timestamp of the next message that will expire, or 0."""
        ...

    @abstractmethod
    def update_limits(self, limits: StreamLimits) -> None:
        """New limits (a stream update); applies them at once (may drop messages)."""
        ...

    @abstractmethod
    def state(self, deleted_details: bool = False) -> StreamState:
        ...

    @abstractmethod
    def filtered_state(self, filter: str, start_seq: int = 0) -> SimpleState:
        """Messages matching `filter` with seq >= start_seq."""
        ...

    @abstractmethod
    def subjects_state(self, filter: str = ">") -> dict[str, SimpleState]:
        """Per-subject state for the subjects matching filter (STREAM.INFO subjects_filter)."""
        ...

    @abstractmethod
    def num_pending(self, start_seq: int, filter: str = "", last_per_subject: bool = False) -> int:
        """Messages from start_seq on matching filter (only the last per subject when asked)."""
        ...

    @abstractmethod
    def last_seq_for_subject(self, subject: str) -> int:
        """Sequence of the last message on exactly `subject`, or 0 (expected-last-subject-seq)."""
        ...

    @abstractmethod
    def consumer_store(self, name: str) -> "ConsumerStore":
        """The persisted state of one consumer of this stream (created if absent)."""
        ...

    @abstractmethod
    def consumer_names(self) -> list[str]:
        """Consumers with persisted state (for recovery at start)."""
        ...

    def problems(self) -> list[str]:
        """Human-readable reports of damage found at load (bad checksums, truncated blocks)."""
        return []

    def used_bytes(self) -> int:
        """state().bytes, cheaply (the usage ledger asks after every change)."""
        return self.state().bytes

    def msg_size(self, subject: str, hdr: bytes, data: bytes) -> int:
        """This store's accounting size of a message, as counted in `state().bytes` and against
        max_bytes (for the Stream actor's discard-new check). Memory: StoredMsg.size; the file
        store follows the reference's file store (subject + hdr + data + 30, +4 with headers)."""
        return len(subject) + len(hdr) + len(data) + 16

    def flush(self) -> None:
        """Make every stored message durable against a process kill (write() to the OS)."""

    def sync(self) -> None:
        """fsync; called on the sync interval, off the network greenlet."""

    @abstractmethod
    def delete(self) -> None:
        """Remove the stream's data entirely (STREAM.DELETE)."""
        ...

    def close(self) -> None:
        """Flush and release files."""


@dataclass
class ConsumerState:
    delivered_consumer: int = 0  # last consumer sequence delivered
    delivered_stream: int = 0  # stream sequence of that delivery
    ack_floor_consumer: int = 0
    ack_floor_stream: int = 0
    # stream seq -> (consumer seq, delivery timestamp ns) for messages delivered, not yet acked
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)
    redelivered: dict[int, int] = field(default_factory=dict)  # stream seq -> delivery count (>1)


class ConsumerStore(ABC):
    """A consumer's config and delivery/ack state. `update` replaces the whole state (the
    consumer actor owns it and writes it after each change batch); `load` returns the last
    written one (or a fresh ConsumerState)."""

    @abstractmethod
    def save_config(self, config: dict) -> None:
        ...

    @abstractmethod
    def load_config(self) -> dict | None:
        ...

    @abstractmethod
    def update(self, state: ConsumerState) -> None:
        ...

    @abstractmethod
    def load(self) -> ConsumerState:
        ...

    @abstractmethod
    def delete(self) -> None:
        ...
