"""The in-memory index and the stream rules shared by every StreamStore (memory and file).

Owns: the sequence -> entry map, first/last sequence bookkeeping, the per-subject index
(subject -> ascending live sequences, with count/first/last in O(1)), subject-filter matching on
`str` subjects, and the limits the store enforces itself (max_msgs, max_bytes, max_age,
max_msgs_per_subject with discard old, per-message TTL), purge/compact as STREAM.PURGE does.

A concrete store says where message bodies live through five hooks: `_append` (store a new
message, return its entry: anything with `.subject`, `.ts` and `.size`), `_read` (entry ->
StoredMsg), `_forget` (a message was removed), `_forget_all` (every message was removed; the
stream's first sequence is now `first`), and `_skip` (a sequence reserved with no message).

Rules of this file:
- `self._msgs` holds only live messages; sequences are never reused, so "is seq live" is always
  `seq in self._msgs` (the per-subject lists are cleaned lazily with that test).
- When the stream has messages, `_first` is the lowest live sequence; when it has none,
  `_first == _last + 1` (a fresh stream with the default first_seq reports 0/0 in `state()`).
- Timestamps are ns; nothing here reads a clock except store_msg when no `ts` is given.
"""

from __future__ import annotations

import heapq
import time
from abc import abstractmethod
from bisect import bisect_left, bisect_right
from functools import lru_cache

from .base import SimpleState, StoreError, StoredMsg, StreamLimits, StreamState, StreamStore

# A per-message TTL of -1 ("never") exempts the message from max_age and TTL expiry.
TTL_NEVER = -1

# Wildcard filters matching at most this many subjects are served from the per-subject lists;
# beyond it, a walk over the sequences is cheaper.
_FEW_SUBJECTS = 64


@lru_cache(maxsize=1024)
def subject_matcher(filter: str):
    """A function str -> bool for `filter`, or None when it matches everything ("" or ">")."""
    if filter == "" or filter == ">":
        return None
    toks = filter.split(".")
    if "*" not in toks and ">" not in toks:
        return filter.__eq__
    if toks[-1] == ">" and "*" not in toks:
        prefix = filter[:-1]
        n = len(prefix)
        return lambda s: len(s) > n and s.startswith(prefix)
    full = toks[-1] == ">"
    ntok = len(toks)
    pairs = [(i, t) for i, t in enumerate(toks) if t != "*" and t != ">"]

    def match(s: str) -> bool:
        st = s.split(".")
        if full:
            if len(st) < ntok:
                return False
        elif len(st) != ntok:
            return False
        for i, t in pairs:
            if st[i] != t:
                return False
        return True

    return match


@lru_cache(maxsize=1024)
def is_literal(filter: str) -> bool:
    """True for a filter naming exactly one subject (no wildcard token, not empty)."""
    toks = filter.split(".")
    return filter != "" and "*" not in toks and ">" not in toks


class _Subj:
    """Live sequences of one subject, ascending. Dead entries are dropped lazily."""

    __slots__ = ("seqs", "head", "count")

    def __init__(self, seq: int):
        self.seqs = [seq]
        self.head = 0
        self.count = 1

    def first(self) -> int:
        return self.seqs[self.head]

    def last(self) -> int:
        return self.seqs[-1]


class IndexedStore(StreamStore):
    """All of StreamStore except where the bytes live (see the module docstring)."""

    def __init__(self, limits: StreamLimits, first_seq: int = 1):
        self._limits = limits
        self._first_seq_cfg = max(first_seq, 1)
        self._msgs: dict = {}
        self._first = self._first_seq_cfg
        self._last = self._first_seq_cfg - 1
        self._last_ts = 0
        self._bytes = 0
        self._subj: dict[str, _Subj] = {}
        self._subj_gen = 0
        self._match_cache: dict[str, tuple[int, list[str]]] = {}
        self._ttl: dict[int, int] = {}  # seq -> ttl (ns, or TTL_NEVER) for messages with one
        self._ttl_heap: list[tuple[int, int]] = []  # (expires at, seq)
        self._lost: list[int] = []

    def used_bytes(self) -> int:
        return self._bytes

    def msg_size(self, subject: str, hdr: bytes, data: bytes) -> int:
        """This store's accounting size of a message (state.bytes, max_bytes): the memory
        store's is StoredMsg.size; the file store's follows the reference's file store."""
        return len(subject) + len(hdr) + len(data) + 16

    # ---- hooks ---------------------------------------------------------------------------

    @abstractmethod
    def _append(self, seq: int, subject: str, hdr: bytes, data: bytes, ts: int, ttl: int):
        """Keep one new message (memory: in a dict; file: in the write buffer)."""

    @abstractmethod
    def _read(self, seq: int, entry) -> StoredMsg:
        """The message at `seq`, from the index entry `_append` left."""

    def _forget(self, seq: int, entry, erase: bool) -> None:
        pass

    def _forget_all(self, first: int) -> None:
        pass

    def _skip(self, seq: int) -> None:
        pass

    # ---- index maintenance ---------------------------------------------------------------

    def _index_add(self, seq: int, entry, ttl: int) -> None:
        """Account a live message (used by store_msg and by recovery)."""
        if not self._msgs:
            self._first = seq
        self._msgs[seq] = entry
        if seq > self._last:
            self._last = seq
        self._bytes += entry.size
        subj = entry.subject
        si = self._subj.get(subj)
        if si is None:
            self._subj[subj] = _Subj(seq)
            self._subj_gen += 1
        else:
            si.seqs.append(seq)
            si.count += 1
        if ttl:
            self._ttl[seq] = ttl
            if ttl > 0:
                heapq.heappush(self._ttl_heap, (entry.ts + ttl, seq))

    def _remove(self, seq: int, erase: bool = False) -> bool:
        entry = self._msgs.pop(seq, None)
        if entry is None:
            return False
        self._bytes -= entry.size
        if self._ttl:
            self._ttl.pop(seq, None)
        subj = entry.subject
        si = self._subj[subj]
        si.count -= 1
        if si.count == 0:
            del self._subj[subj]
            self._subj_gen += 1
        else:
            msgs = self._msgs
            seqs = si.seqs
            if seq == seqs[si.head]:
                h = si.head + 1
                while seqs[h] not in msgs:
                    h += 1
                si.head = h
                if h > 32 and h * 2 > len(seqs):
                    del seqs[:h]
                    si.head = 0
            elif seq == seqs[-1]:
                seqs.pop()
                while seqs[-1] not in msgs:
                    seqs.pop()
            elif len(seqs) - si.head > 2 * si.count + 32:
                si.seqs = [s for s in seqs[si.head:] if s in msgs]
                si.head = 0
        self._forget(seq, entry, erase)
        if seq == self._first:
            if not self._msgs:
                self._first = self._last + 1
            else:
                self._first = self._next_live(seq + 1)
        return True

    def _next_live(self, s: int) -> int:
        """The lowest live seq >= s (there is one): a short walk, or a scan past a big gap."""
        msgs = self._msgs
        for _ in range(64):
            if s in msgs:
                return s
            s += 1
        return min(q for q in msgs if q >= s)

    def _clear(self, first: int) -> int:
        """Drop every message; the stream's first sequence becomes `first` (last at least first-1)."""
        n = len(self._msgs)
        self._msgs = {}
        self._bytes = 0
        if self._subj:
            self._subj_gen += 1
        self._subj = {}
        self._ttl = {}
        self._ttl_heap = []
        self._first = first
        if self._last < first - 1:
            self._last = first - 1
        self._forget_all(first)
        return n

    def _live_seqs(self, si: _Subj, start: int = 0, end: int | None = None) -> list[int]:
        seqs = si.seqs
        i = si.head if start <= seqs[si.head] else bisect_left(seqs, start, si.head)
        j = len(seqs) if end is None else bisect_right(seqs, end, i)
        msgs = self._msgs
        if j - i == si.count:
            return seqs[i:j]
        return [s for s in seqs[i:j] if s in msgs]

    def _matching_subjects(self, filter: str) -> list[str]:
        m = subject_matcher(filter)
        if m is None:
            return list(self._subj)
        if is_literal(filter):
            return [filter] if filter in self._subj else []
        hit = self._match_cache.get(filter)
        if hit is not None and hit[0] == self._subj_gen:
            return hit[1]
        subs = [s for s in self._subj if m(s)]
        if len(self._match_cache) > 256:
            self._match_cache.clear()
        self._match_cache[filter] = (self._subj_gen, subs)
        return subs

    def _walk(self, start: int):
        """Live sequences from start upward."""
        msgs = self._msgs
        s = max(start, self._first)
        last = self._last
        miss = 0
        while s <= last:
            if s in msgs:
                yield s
                miss = 0
            else:
                miss += 1
                if miss > 64:  # a big gap (skips, purges): jump to the next live seq
                    later = [q for q in msgs if q > s]
                    if not later:
                        return
                    s = min(later)
                    miss = 0
                    continue
            s += 1

    def _matching_seqs(self, filter: str, start: int = 0, end: int | None = None) -> list[int]:
        """Live sequences matching filter in [start, end], ascending."""
        m = subject_matcher(filter)
        if end is None:
            end = self._last
        if m is None or (not is_literal(filter) and len(self._subj) > _FEW_SUBJECTS
                         and len(self._matching_subjects(filter)) > _FEW_SUBJECTS):
            start = max(start, self._first)
            msgs = self._msgs
            if end - start + 1 > 2 * len(msgs):
                cand = sorted(s for s in msgs if start <= s <= end)
            else:
                cand = [s for s in range(start, end + 1) if s in msgs]
            if m is None:
                return cand
            return [s for s in cand if m(msgs[s].subject)]
        out: list[int] = []
        for subj in self._matching_subjects(filter):
            si = self._subj.get(subj)
            if si is not None:
                out.extend(self._live_seqs(si, start, end))
        if len(self._matching_subjects(filter)) > 1:
            out.sort()
        return out

    # ---- StreamStore ---------------------------------------------------------------------

    def store_msg(self, subject: str, hdr: bytes, data: bytes, ts: int | None = None,
                  ttl: int = 0) -> tuple[int, int]:
        lim = self._limits
        if lim.max_msg_size > 0 and len(hdr) + len(data) > lim.max_msg_size:
            raise StoreError("message size exceeds maximum allowed")
        if ts is None:
            ts = time.time_ns()
        seq = self._last + 1
        entry = self._append(seq, subject, hdr, data, ts, ttl)
        self._index_add(seq, entry, ttl)
        self._last_ts = ts
        if lim.max_msgs_per_subject > 0:
            si = self._subj[subject]
            while si.count > lim.max_msgs_per_subject:
                self._remove(si.seqs[si.head])
        if not lim.discard_new:
            if lim.max_msgs > 0:
                while len(self._msgs) > lim.max_msgs:
                    self._remove(self._first)
            if lim.max_bytes > 0:
                while self._bytes > lim.max_bytes:
                    self._remove(self._first)
        return seq, ts

    def skip_msg(self, seq: int | None = None) -> int:
        if seq is None:
            seq = self._last + 1
        elif seq <= self._last:
            raise StoreError("sequence mismatch")
        self._last = seq
        if not self._msgs:
            self._first = seq + 1
        self._skip(seq)
        return seq

    def load_msg(self, seq: int) -> StoredMsg | None:
        entry = self._msgs.get(seq)
        if entry is None:
            return None
        return self._read(seq, entry)

    def load_msgs(self, start_seq: int, max_msgs: int, max_bytes: int = 0) -> list[StoredMsg]:
        out: list[StoredMsg] = []
        msgs, read = self._msgs, self._read
        size = 0
        for seq in self._walk(start_seq):
            if len(out) >= max_msgs:
                break
            m = read(seq, msgs[seq])
            if max_bytes > 0:
                size += m.size
                if out and size > max_bytes:
                    break
            out.append(m)
        return out

    def load_next_msg(self, filter: str, start_seq: int) -> StoredMsg | None:
        if not filter or filter == ">":
            e = self._msgs.get(start_seq)
            if e is not None:  # the common case: an unfiltered read with no gap at start
                return self._read(start_seq, e)
        start = max(start_seq, self._first)
        if start > self._last or not self._msgs:
            return None
        m = subject_matcher(filter)
        msgs = self._msgs
        if m is None:
            e = msgs.get(start)
            if e is not None:  # the common case: no gap at start
                return self._read(start, e)
            for s in self._walk(start):
                return self._read(s, msgs[s])
            return None
        if is_literal(filter):
            si = self._subj.get(filter)
            if si is None or si.last() < start:
                return None
            seqs = si.seqs
            i = si.head if start <= seqs[si.head] else bisect_left(seqs, start, si.head)
            while seqs[i] not in msgs:
                i += 1
            return self._read(seqs[i], msgs[seqs[i]])
        subs = self._matching_subjects(filter)
        if len(subs) <= _FEW_SUBJECTS:
            best = 0
            for subj in subs:
                si = self._subj[subj]
                seqs = si.seqs
                if seqs[-1] < start:
                    continue
                i = si.head if start <= seqs[si.head] else bisect_left(seqs, start, si.head)
                while seqs[i] not in msgs:
                    i += 1
                if best == 0 or seqs[i] < best:
                    best = seqs[i]
            return self._read(best, msgs[best]) if best else None
        for s in self._walk(start):
            e = msgs[s]
            if m(e.subject):
                return self._read(s, e)
        return None

    def load_last_msg(self, filter: str) -> StoredMsg | None:
        if not self._msgs:
            return None
        m = subject_matcher(filter)
        msgs = self._msgs
        if m is None:
            s = self._last_live()
            return self._read(s, msgs[s])
        best = 0
        for subj in self._matching_subjects(filter):
            si = self._subj.get(subj)
            if si is not None and si.last() > best:
                best = si.last()
        return self._read(best, msgs[best]) if best else None

    def remove_msg(self, seq: int, erase: bool = False) -> bool:
        return self._remove(seq, erase)

    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        m = subject_matcher(subject)
        if m is None:
            if keep <= 0 and seq <= 0:
                return self._clear(self._last + 1)
            if seq > 1:
                return self.compact(seq)
        ss = self.filtered_state(subject)
        if ss.msgs == 0:
            return 0
        todo = ss.msgs
        if keep > 0:
            if keep >= ss.msgs:
                return 0
            todo -= keep
        last = seq - 1 if seq > 1 else ss.last
        purged = 0
        for s in self._matching_seqs(subject, ss.first, last):
            if self._remove(s):
                purged += 1
                if purged >= todo:
                    break
        return purged

    def compact(self, seq: int) -> int:
        if seq <= self._first:
            return 0
        if seq > self._last:
            return self._clear(seq)
        msgs = self._msgs
        if seq - self._first > 2 * len(msgs):
            doomed = sorted(s for s in msgs if s < seq)
        else:
            doomed = [s for s in range(self._first, seq) if s in msgs]
        for s in doomed:
            self._remove(s)
        return len(doomed)

    def expire(self, now: int) -> list[int]:
        removed: list[int] = []
        max_age = self._limits.max_age
        if max_age > 0 and self._msgs:
            cutoff = now - max_age
            msgs = self._msgs
            ttl = self._ttl
            doomed = []
            for s in self._walk(self._first):
                if s in ttl:
                    continue
                if msgs[s].ts > cutoff:
                    break
                doomed.append(s)
            for s in doomed:
                if self._remove(s):
                    removed.append(s)
        heap = self._ttl_heap
        while heap and heap[0][0] <= now:
            _, s = heapq.heappop(heap)
            if s in self._msgs and self._remove(s):
                removed.append(s)
        if removed:
            removed.sort()
        return removed

    def expiring(self, now: int) -> list[int]:
        due: set[int] = set()
        max_age = self._limits.max_age
        if max_age > 0 and self._msgs:
            cutoff = now - max_age
            for s in self._walk(self._first):
                if s in self._ttl:
                    continue
                if self._msgs[s].ts > cutoff:
                    break
                due.add(s)
        for at, s in self._ttl_heap:
            if at <= now and s in self._msgs:
                due.add(s)
        return sorted(due)

    def next_expiry(self) -> int:
        best = 0
        heap = self._ttl_heap
        while heap and heap[0][1] not in self._msgs:
            heapq.heappop(heap)
        if heap:
            best = heap[0][0]
        max_age = self._limits.max_age
        if max_age > 0 and self._msgs:
            ttl = self._ttl
            for s in self._walk(self._first):
                if s in ttl:
                    continue
                t = self._msgs[s].ts + max_age
                if best == 0 or t < best:
                    best = t
                break
        return best

    def update_limits(self, limits: StreamLimits) -> None:
        self._limits = limits
        if limits.max_msgs_per_subject > 0:
            for subj in [s for s, si in self._subj.items() if si.count > limits.max_msgs_per_subject]:
                si = self._subj[subj]
                for s in self._live_seqs(si)[: si.count - limits.max_msgs_per_subject]:
                    self._remove(s)
        if not limits.discard_new:
            if limits.max_msgs > 0:
                while len(self._msgs) > limits.max_msgs:
                    self._remove(self._first)
            if limits.max_bytes > 0:
                while self._bytes > limits.max_bytes:
                    self._remove(self._first)

    def state(self, deleted_details: bool = False) -> StreamState:
        n = len(self._msgs)
        first, last = self._first, self._last
        if last == 0 and n == 0 and self._first_seq_cfg <= 1:
            first = 0
        st = StreamState(
            msgs=n,
            bytes=self._bytes,
            first_seq=first,
            first_ts=self._msgs[first].ts if n else 0,
            last_seq=last,
            last_ts=self._last_ts,
            num_subjects=len(self._subj),
            num_deleted=max(0, last - first + 1 - n) if n else 0,
            lost=list(self._lost),
        )
        if deleted_details and st.num_deleted:
            msgs = self._msgs
            st.deleted = [s for s in range(first, last + 1) if s not in msgs]
        return st

    def filtered_state(self, filter: str, start_seq: int = 0) -> SimpleState:
        """Count, first and last of the live messages matching filter from start_seq on:
        arithmetic when every subject matches and there are no interior deletes, else
        O(matching subjects) over the per-subject lists, or a walk of the sequences from
        start_seq when that range is the shorter."""
        msgs = self._msgs
        if not msgs:
            return SimpleState()
        first, last = self._first, self._last
        if start_seq > last:
            return SimpleState()
        m = subject_matcher(filter)
        if m is None:
            if start_seq <= first:
                return SimpleState(len(msgs), first, self._last_live())
            if len(msgs) == last - first + 1:  # no interior deletes
                return SimpleState(last - start_seq + 1, start_seq, last)
            if last - start_seq < len(self._subj):
                return self._walk_state(start_seq, None)
            return self._subjects_state(self._subj.values(), start_seq)
        if is_literal(filter):
            si = self._subj.get(filter)
            return self._subjects_state((si,) if si is not None else (), start_seq)
        subs = self._matching_subjects(filter)
        if last - max(start_seq, first) < len(subs):
            return self._walk_state(start_seq, m)
        table = self._subj
        return self._subjects_state([table[x] for x in subs], start_seq)

    def _walk_state(self, start: int, m) -> SimpleState:
        """filtered_state by a walk over the sequences from start (a short range)."""
        msgs = self._msgs
        out = SimpleState()
        n = f = la = 0
        for s in range(max(start, self._first), self._last + 1):
            e = msgs.get(s)
            if e is not None and (m is None or m(e.subject)):
                n += 1
                if not f:
                    f = s
                la = s
        out.msgs, out.first, out.last = n, f, la
        return out

    def _subjects_state(self, subjects, start: int) -> SimpleState:
        """filtered_state summed over per-subject indexes (`_Subj`s)."""
        out = SimpleState()
        n = f = la = 0
        for si in subjects:
            seqs = si.seqs
            sl = seqs[-1]  # always live (see _remove)
            if sl < start:
                continue
            head = si.head
            if start <= seqs[head]:
                cnt, sf = si.count, seqs[head]
            else:
                cnt, sf = self._subj_from(si, start)
            n += cnt
            if not f or sf < f:
                f = sf
            if sl > la:
                la = sl
        out.msgs, out.first, out.last = n, f, la
        return out

    def _subj_from(self, si: _Subj, start: int) -> tuple[int, int]:
        """(count, first) of one subject's live sequences >= start, when start falls inside
        its range (seqs[head] < start <= seqs[-1])."""
        seqs, head = si.seqs, si.head
        i = bisect_left(seqs, start, head)
        if len(seqs) - head == si.count:  # no dead entries kept
            return len(seqs) - i, seqs[i]
        msgs = self._msgs
        j = i
        while seqs[j] not in msgs:  # ends: the last entry is live
            j += 1
        if i - head < len(seqs) - i:
            before = sum(1 for x in seqs[head:i] if x in msgs)
            return si.count - before, seqs[j]
        return sum(1 for x in seqs[j:] if x in msgs), seqs[j]

    def _last_live(self) -> int:
        s = self._last
        msgs = self._msgs
        for _ in range(64):
            if s in msgs:
                return s
            s -= 1
        return max(msgs)

    def subjects_state(self, filter: str = ">") -> dict[str, SimpleState]:
        out = {}
        for subj in self._matching_subjects(filter):
            si = self._subj.get(subj)
            if si is not None:
                out[subj] = SimpleState(si.count, si.first(), si.last())
        return out

    def num_pending(self, start_seq: int, filter: str = "", last_per_subject: bool = False) -> int:
        if last_per_subject:
            n = 0
            for subj in self._matching_subjects(filter):
                si = self._subj.get(subj)
                if si is not None and si.last() >= start_seq:
                    n += 1
            return n
        return self.filtered_state(filter, start_seq).msgs

    def last_seq_for_subject(self, subject: str) -> int:
        si = self._subj.get(subject)
        return si.last() if si is not None else 0
