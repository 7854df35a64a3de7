"""The file store: a stream's messages in append-only block files (storage: file).

Owns the on-disk layout of one stream directory (`<store_dir>/jetstream/<acc>/streams/<stream>`):

    msgs/<n>.blk        message blocks, records appended in order (n = 1, 2, ...)
    obs/<consumer>/     meta.inf (config JSON) and o.dat (state JSON), each replaced atomically,
                        and o.log (state changes since o.dat, appended; see FileConsumerStore)

and recovery from them. The index and every stream rule are IndexedStore's (store/indexed.py);
this module keeps, per live message, where its record is, and the bytes of the latest ones.

Record (little-endian): `len u32` (bytes after this field) · `type u8` · `seq u64` · payload ·
`crc32 u32` over everything before it. The payload of a message is `ts i64 · ttl i64 ·
subj_len u16 · hdr_len u32 · subject · hdr · data`; with encryption it is `nonce · AEAD(that)`
with the first 13 bytes as associated data (type has bit 0x80). Other record types carry no
payload of interest: DEL (a tombstone for seq), ERASED (a message overwritten in place; ts kept),
SKIP (seq reserved, no message), FLOOR (every seq below is gone), META (first record of each
block: floor = seq, last seq = ts, last ts = ttl; so removing older blocks never loses them).

Durability: store_msg appends to a buffer; `flush()` os.write()s it (a kill -9 after flush loses
nothing); `sync()` fsyncs what was flushed (and may run in another thread); sync_always does both
on every store. Compaction runs in flush():
a non-current block with no live message is unlinked (its tombstones for still-existing blocks
are carried into the current block first); one mostly dead is rewritten (temp file + replace).

Recovery never raises on damage: each record's checksum is verified; a bad record is skipped
(by its length when the next record then parses, else by scanning for the next good record), a
torn tail is ignored, its sequence goes to `state().lost` and a line to `problems()`. Appends
after damage go to a fresh block. `bytes` accounting follows the reference's file store:
subject + hdr + data + 30 (+4 with headers).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from bisect import bisect_right

from ..protocol.subjects import subject_bytes, subject_text
from .base import ConsumerState, ConsumerStore, StoreCorruption, StoredMsg, StreamLimits
from .crypto import DecryptError, Sealer
from .indexed import IndexedStore

PRE = struct.Struct("<IBQ")  # len, type, seq
BODY = struct.Struct("<qqHI")  # ts, ttl, subj_len, hdr_len
CRC = struct.Struct("<I")
PRE_LEN = PRE.size  # 13
REC_OVERHEAD = PRE_LEN + BODY.size + CRC.size  # 39 for a plain message

T_MSG, T_DEL, T_ERASED, T_SKIP, T_FLOOR, T_META = 1, 2, 3, 4, 5, 6
ENCRYPTED = 0x80
_TYPES = {T_MSG, T_DEL, T_ERASED, T_SKIP, T_FLOOR, T_META}
_MAX_REC = 1 << 30

DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
_CACHE_BYTES = 8 * 1024 * 1024
_MAX_BUF = 1 << 20
_MAX_READ_FDS = 64
_READ_AHEAD = 65536  # bytes read at once when records are read in order from disk
_PLAUSIBLE = 1 << 20  # a damaged record's seq is believed when this close to its neighbours


def _record(rtype: int, seq: int, payload: bytes) -> bytes:
    head = PRE.pack(PRE_LEN - 4 + len(payload) + 4, rtype, seq)
    body = head + payload
    return body + CRC.pack(zlib.crc32(body))


def _control(rtype: int, seq: int, ts: int = 0, ttl: int = 0) -> bytes:
    return _record(rtype, seq, BODY.pack(ts, ttl, 0, 0))


class _Block:
    __slots__ = ("n", "path", "size", "flushed", "live", "live_bytes", "first_msg", "last_msg",
                 "tombs", "damaged", "wfd")

    def __init__(self, n: int, path: str):
        self.n = n
        self.path = path
        self.size = 0  # bytes including the unflushed buffer (current block only)
        self.flushed = 0  # bytes on disk
        self.live = 0
        self.live_bytes = 0
        self.first_msg = 0
        self.last_msg = 0
        self.tombs: list[int] = []
        self.damaged = False
        self.wfd = -1


class _Ent:
    """Where a live message's record is, and what the index needs without reading it."""

    __slots__ = ("subject", "ts", "size", "blk", "off", "rlen")

    def __init__(self, subject, ts, size, blk, off, rlen):
        self.subject = subject
        self.ts = ts
        self.size = size
        self.blk = blk
        self.off = off
        self.rlen = rlen


class FileStore(IndexedStore):
    MSG_OVERHEAD = 30

    def __init__(self, directory: str, limits: StreamLimits, first_seq: int = 1,
                 cipher: str | None = None, key: bytes | str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE, sync_always: bool = False):
        super().__init__(limits, first_seq)
        self._dir = directory
        self._mdir = os.path.join(directory, "msgs")
        self._odir = os.path.join(directory, "obs")
        os.makedirs(self._mdir, exist_ok=True)
        self._sealer = Sealer(cipher, key or b"", os.path.basename(os.path.normpath(directory))) if cipher else None
        self._block_size = max(block_size, 256)
        self._sync_always = sync_always
        self._blocks: list[_Block] = []
        self._cur: _Block | None = None
        self._buf = bytearray()
        self._cache: dict[int, StoredMsg] = {}
        self._cache_bytes = 0
        self._rfds: dict[int, int] = {}  # block n -> read fd (LRU by insertion)
        # the last disk read: (block, offset, bytes); when a read starts where the previous
        # one ended, _READ_AHEAD bytes are read and the next records come from here
        self._ra: tuple | None = None
        self._ra_end: tuple | None = None  # (block, offset) where the last disk read ended
        self._dirty: set[_Block] = set()
        self._unsynced: set[str] = set()  # finished blocks not fsynced yet
        self._problems: list[str] = []
        self._no_tomb = False
        self._closed = False
        self._consumers: dict[str, FileConsumerStore] = {}
        self._recover()

    # ---- sizes ---------------------------------------------------------------------------

    def msg_size(self, subject: str, hdr: bytes, data: bytes) -> int:
        return len(subject) + len(hdr) + len(data) + 30 + (4 if hdr else 0)

    # ---- records -------------------------------------------------------------------------

    def _msg_record(self, seq, subject, hdr, data, ts, ttl) -> bytes:
        sb = subject_bytes(subject)  # (a subject need not be UTF-8)
        body = BODY.pack(ts, ttl, len(sb), len(hdr)) + sb + hdr + data
        if self._sealer is None:
            return _record(T_MSG, seq, body)
        sealed_len = len(body) + 12 + 16
        head = PRE.pack(PRE_LEN - 4 + sealed_len + 4, T_MSG | ENCRYPTED, seq)
        rec = head + self._sealer.seal(body, head)
        return rec + CRC.pack(zlib.crc32(rec))

    def _decode(self, rec, rtype: int, seq: int):
        """(ts, ttl, subject, hdr, data) of a checksum-verified message record."""
        if rtype & ENCRYPTED:
            if self._sealer is None:
                raise DecryptError("encrypted record but the store has no key")
            body = self._sealer.open(rec[PRE_LEN:-4], bytes(rec[:PRE_LEN]))
        else:
            body = rec[PRE_LEN:-4]
        ts, ttl, sl, hl = BODY.unpack_from(body, 0)
        p = BODY.size
        subject = subject_text(bytes(body[p:p + sl]))
        hdr = bytes(body[p + sl:p + sl + hl])
        data = bytes(body[p + sl + hl:])
        return ts, ttl, subject, hdr, data

    # ---- blocks --------------------------------------------------------------------------

    def _block_path(self, n: int) -> str:
        return os.path.join(self._mdir, f"{n}.blk")

    def _new_block(self) -> _Block:
        if self._cur is not None:
            self._write_buf()
            if self._cur.wfd >= 0:
                os.close(self._cur.wfd)
                self._cur.wfd = -1
            self._unsynced.add(self._cur.path)
        n = self._blocks[-1].n + 1 if self._blocks else 1
        blk = _Block(n, self._block_path(n))
        blk.wfd = os.open(blk.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._blocks.append(blk)
        self._cur = blk
        self._emit(_control(T_META, self._meta_floor(), self._last, self._last_ts))
        return blk

    def _meta_floor(self) -> int:
        # records found unreadable at open (wrong key, damage) stay above the floor: a later
        # open with the right key, or a repaired block, still finds them
        return min(self._first, self._lost[0]) if self._lost else self._first

    def _emit(self, rec: bytes) -> int:
        """Append a record to the current block's buffer; returns its offset in the block."""
        cur = self._cur
        off = cur.size
        self._buf += rec
        cur.size += len(rec)
        if len(self._buf) >= _MAX_BUF:
            self._write_buf()
        return off

    def _write_buf(self) -> None:
        cur = self._cur
        if cur is None or not self._buf:
            return
        if cur.wfd < 0:
            cur.wfd = os.open(cur.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        n = os.write(cur.wfd, self._buf)
        if n < len(self._buf):  # a short write (rare for a regular file): write the rest
            view = memoryview(self._buf)[n:]
            while view:
                n = os.write(cur.wfd, view)
                view = view[n:]
            view.release()
        cur.flushed += len(self._buf)
        self._buf = bytearray()

    def _rfd(self, blk: _Block) -> int:
        fd = self._rfds.pop(blk.n, None)
        if fd is None:
            if len(self._rfds) >= _MAX_READ_FDS:
                old = next(iter(self._rfds))
                os.close(self._rfds.pop(old))
            fd = os.open(blk.path, os.O_RDONLY)
        self._rfds[blk.n] = fd
        return fd

    def _drop_rfd(self, blk: _Block) -> None:
        self._forget_read_ahead(blk)
        fd = self._rfds.pop(blk.n, None)
        if fd is not None:
            os.close(fd)

    def _raw(self, blk: _Block, off: int, rlen: int) -> bytes:
        if blk is self._cur and off >= blk.flushed:
            p = off - blk.flushed
            return bytes(self._buf[p:p + rlen])
        ra = self._ra
        if ra is not None and ra[0] is blk:
            p = off - ra[1]
            if 0 <= p and p + rlen <= len(ra[2]):
                self._ra_end = (blk, off + rlen)
                return ra[2][p:p + rlen]
        end = self._ra_end
        self._ra_end = (blk, off + rlen)
        if end is None or end[0] is not blk or not 0 <= off - end[1] < 4096:
            return os.pread(self._rfd(blk), rlen, off)  # not in order: just this record
        data = os.pread(self._rfd(blk), max(rlen, _READ_AHEAD), off)
        self._ra = (blk, off, data)
        return data[:rlen]

    def _forget_read_ahead(self, blk: _Block) -> None:
        """A block's bytes changed or went (an erase, a rewrite, a removal)."""
        if self._ra is not None and self._ra[0] is blk:
            self._ra = None

    def _block_finder(self):
        """seq -> the block whose message records span it, or None (blocks hold ascending
        ranges); built once per compaction pass."""
        blocks = [b for b in self._blocks if b.first_msg]
        firsts = [b.first_msg for b in blocks]

        def find(seq: int) -> _Block | None:
            i = bisect_right(firsts, seq) - 1
            if i >= 0 and seq <= blocks[i].last_msg:
                return blocks[i]
            return None

        return find

    # ---- IndexedStore hooks ----------------------------------------------------------------

    def _append(self, seq, subject, hdr, data, ts, ttl):
        cur = self._cur
        if cur is None or cur.size >= self._block_size or cur.damaged:
            cur = self._new_block()
        rec = self._msg_record(seq, subject, hdr, data, ts, ttl)
        off = self._emit(rec)
        size = len(subject) + len(hdr) + len(data) + 30 + (4 if hdr else 0)
        ent = _Ent(subject, ts, size, cur, off, len(rec))
        cur.live += 1
        cur.live_bytes += len(rec)
        if not cur.first_msg:
            cur.first_msg = seq
        cur.last_msg = seq
        sm = StoredMsg(subject, seq, ts, hdr, data)
        self._cache[seq] = sm
        self._cache_bytes += ent.size
        if self._cache_bytes > _CACHE_BYTES:
            self._trim_cache()
        if self._sync_always:
            self._write_buf()
            os.fsync(cur.wfd)
        return ent

    def _trim_cache(self) -> None:
        """Keep the newest half (rebuilt at once: popping a dict's front one by one is slow)."""
        items = list(self._cache.items())
        total, cut = self._cache_bytes, 0
        while total > _CACHE_BYTES // 2 and cut < len(items):
            m = items[cut][1]
            total -= len(m.subject) + len(m.hdr) + len(m.data) + 30 + (4 if m.hdr else 0)
            cut += 1
        self._cache = dict(items[cut:])
        self._cache_bytes = total

    def _read(self, seq, ent):
        sm = self._cache.get(seq)
        if sm is not None:
            return sm
        rec = self._raw(ent.blk, ent.off, ent.rlen)
        if len(rec) != ent.rlen or CRC.unpack_from(rec, len(rec) - 4)[0] != zlib.crc32(memoryview(rec)[:-4]):
            raise StoreCorruption(f"{ent.blk.path}: offset {ent.off}: checksum mismatch reading seq {seq}")
        _, rtype, rseq = PRE.unpack_from(rec, 0)
        try:
            ts, _ttl, subject, hdr, data = self._decode(rec, rtype, rseq)
        except DecryptError as e:
            raise StoreCorruption(f"{ent.blk.path}: offset {ent.off}: seq {seq}: {e}") from None
        return StoredMsg(subject, seq, ts, hdr, data)

    def _uncache(self, seq):
        m = self._cache.pop(seq, None)
        if m is not None:
            self._cache_bytes -= len(m.subject) + len(m.hdr) + len(m.data) + 30 + (4 if m.hdr else 0)

    def _forget(self, seq, ent, erase):
        if self._cache:
            self._uncache(seq)
        blk = ent.blk
        blk.live -= 1
        blk.live_bytes -= ent.rlen
        self._dirty.add(blk)
        if erase:
            self._erase_in_place(ent, seq)
        elif self._no_tomb:
            pass
        elif seq == self._first:
            self._emit_control(_control(T_FLOOR, seq + 1))
        else:
            self._emit_control(_control(T_DEL, seq))
            self._cur.tombs.append(seq)
        if self._sync_always:
            self._write_buf()
            os.fsync(self._cur.wfd)

    def _emit_control(self, rec: bytes) -> None:
        if self._cur is None or self._cur.damaged:
            self._new_block()
        self._emit(rec)

    def _erase_in_place(self, ent: _Ent, seq: int) -> None:
        n = ent.rlen
        # keeps only the timestamp (last_ts survives erasing the last message)
        body = PRE.pack(n - 4, T_ERASED, seq) + BODY.pack(ent.ts, 0, 0, 0) + bytes(n - PRE_LEN - BODY.size - 4)
        rec = body + CRC.pack(zlib.crc32(body))
        blk = ent.blk
        if blk is self._cur and ent.off >= blk.flushed:
            p = ent.off - blk.flushed
            self._buf[p:p + n] = rec
        else:
            self._forget_read_ahead(blk)
            fd = os.open(blk.path, os.O_WRONLY)
            try:
                os.pwrite(fd, rec, ent.off)
            finally:
                os.close(fd)

    def _forget_all(self, first):
        self._lost = []
        self._cache.clear()
        self._cache_bytes = 0
        self._buf = bytearray()
        for blk in self._blocks:
            self._drop_rfd(blk)
            if blk.wfd >= 0:
                os.close(blk.wfd)
                blk.wfd = -1
            try:
                os.unlink(blk.path)
            except FileNotFoundError:
                pass
        self._blocks = []
        self._cur = None
        self._dirty.clear()
        if not self._closed:
            self._new_block()
            if self._sync_always:
                self._write_buf()
                os.fsync(self._cur.wfd)

    def _skip(self, seq):
        self._emit_control(_control(T_SKIP, seq))
        if self._sync_always:
            self._write_buf()
            os.fsync(self._cur.wfd)

    def compact(self, seq: int) -> int:
        if self._lost:
            self._lost = [q for q in self._lost if q >= seq]
        if self._first < seq <= self._last:
            self._emit_control(_control(T_FLOOR, seq))
            self._no_tomb = True
            try:
                return super().compact(seq)
            finally:
                self._no_tomb = False
        return super().compact(seq)

    # ---- durability ----------------------------------------------------------------------

    def flush(self) -> None:
        if self._closed:
            return
        self._write_buf()
        if self._dirty:
            self._compact_blocks()

    def sync(self) -> None:
        """fsync what flush() wrote: the current block, blocks finished since the last sync,
        and the msgs directory. It touches no buffer or index, so it may run in another thread
        (a gevent threadpool) while the owner keeps storing; call flush() first on the owner."""
        if self._closed:
            return
        paths, self._unsynced = self._unsynced, set()
        cur = self._cur
        if cur is not None:
            paths.add(cur.path)
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # removed by compaction meanwhile
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(self._mdir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        for cs in list(self._consumers.values()):
            cs.sync()

    def _compact_blocks(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if self._cur in dirty:
            self._dirty.add(self._cur)  # looked at again once it is no longer the current block
        # a damaged block is never removed or rewritten: what could not be read stays on disk
        dirty = {b for b in dirty if not b.damaged}
        doomed = [b for b in dirty if b is not self._cur and b.live == 0 and b in self._blocks]
        if doomed:
            gone = set(doomed)
            keep = [b for b in self._blocks if b not in gone]
            carried = []
            block_for = self._block_finder()
            for blk in doomed:
                for t in blk.tombs:
                    if t >= self._first:
                        tb = block_for(t)
                        if tb is not None and tb not in gone:
                            carried.append(t)
            for t in carried:
                self._emit_control(_control(T_DEL, t))
                self._cur.tombs.append(t)
            self._write_buf()
            if carried and self._sync_always:
                os.fsync(self._cur.wfd)
            for blk in doomed:
                self._drop_rfd(blk)
                try:
                    os.unlink(blk.path)
                except FileNotFoundError:
                    pass
            self._blocks = keep
        for blk in dirty:
            if (blk is not self._cur and blk in self._blocks and blk.live
                    and blk.size > 4096 and blk.live_bytes * 2 < blk.size):
                self._rewrite(blk)

    def _rewrite(self, blk: _Block) -> None:
        """Rewrite a block with only its live records (and tombstones still needed)."""
        ents = sorted(((s, e) for s, e in self._live_in(blk)), key=lambda x: x[0])
        out = bytearray(_control(T_META, self._meta_floor(), self._last, self._last_ts))
        new_off = {}
        for s, e in ents:
            rec = self._raw(blk, e.off, e.rlen)
            new_off[s] = len(out)
            out += rec
        tombs = []
        block_for = self._block_finder()
        for t in blk.tombs:
            if t >= self._first:
                tb = block_for(t)
                if tb is not None and tb is not blk:
                    tombs.append(t)
                    out += _control(T_DEL, t)
        tmp = blk.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, out)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._drop_rfd(blk)
        os.replace(tmp, blk.path)
        for s, e in ents:
            e.off = new_off[s]
        blk.size = blk.flushed = len(out)
        blk.tombs = tombs
        blk.live_bytes = sum(e.rlen for _, e in ents)

    def _live_in(self, blk: _Block):
        msgs = self._msgs
        if blk.last_msg - blk.first_msg + 1 <= 2 * len(msgs):
            for s in range(blk.first_msg, blk.last_msg + 1):
                e = msgs.get(s)
                if e is not None and e.blk is blk:
                    yield s, e
        else:
            for s, e in msgs.items():
                if e.blk is blk:
                    yield s, e

    # ---- recovery ------------------------------------------------------------------------

    def _recover(self) -> None:
        names = []
        for name in os.listdir(self._mdir):
            if name.endswith(".blk") and name[:-4].isdigit():
                names.append(int(name[:-4]))
            elif name.endswith(".tmp"):
                os.unlink(os.path.join(self._mdir, name))  # a rewrite that did not finish
        names.sort()
        floor = self._first_seq_cfg
        last = 0
        last_ts = 0
        found: dict[int, tuple] = {}  # seq -> (ent, ttl)
        deleted: set[int] = set()
        lost: dict[int, str] = {}
        undecryptable = 0
        for n in names:
            blk = _Block(n, self._block_path(n))
            with open(blk.path, "rb") as f:
                data = f.read()
            blk.size = blk.flushed = len(data)
            self._blocks.append(blk)
            ordered: list[int] = []  # seqs of good MSG/ERASED/SKIP records, ascending
            bads: list[tuple[int, int]] = []  # (len(ordered) then, seq read from the damage)
            for kind, off, rtype, seq, rec in self._scan(blk, data):
                if kind == "bad":
                    blk.damaged = True
                    self._problems.append(f"{blk.path}: offset {off}: {rec}")
                    bads.append((len(ordered), seq))
                    continue
                t = rtype & 0x7F
                if t == T_MSG:
                    try:
                        ts, ttl, subject, hdr, body = self._decode(rec, rtype, seq)
                    except (DecryptError, UnicodeDecodeError, struct.error) as e:
                        undecryptable += 1
                        if undecryptable <= 5:
                            self._problems.append(f"{blk.path}: offset {off}: seq {seq}: cannot read message: {e}")
                        lost.setdefault(seq, blk.path)
                        blk.damaged = True
                        last = max(last, seq)
                        ordered.append(seq)
                        continue
                    size = len(subject) + len(hdr) + len(body) + 30 + (4 if hdr else 0)
                    found[seq] = (_Ent(subject, ts, size, blk, off, len(rec)), ttl)
                    if not blk.first_msg:
                        blk.first_msg = seq
                    blk.last_msg = max(blk.last_msg, seq)
                    if seq >= last:
                        last, last_ts = seq, ts
                    ordered.append(seq)
                elif t in (T_DEL, T_ERASED):
                    deleted.add(seq)
                    if t == T_ERASED and seq >= last:
                        last, last_ts = seq, BODY.unpack_from(rec, PRE_LEN)[0]
                    if t == T_DEL:
                        blk.tombs.append(seq)
                    else:
                        ordered.append(seq)
                        if not blk.first_msg:
                            blk.first_msg = seq
                        blk.last_msg = max(blk.last_msg, seq)
                    last = max(last, seq)
                elif t == T_SKIP:
                    last = max(last, seq)
                    ordered.append(seq)
                elif t == T_FLOOR:
                    floor = max(floor, seq)
                    last = max(last, seq - 1)
                elif t == T_META:
                    ts, ttl, _, _ = BODY.unpack_from(rec, PRE_LEN)
                    floor = max(floor, seq)
                    if ts > last:
                        last, last_ts = ts, ttl
            for i, seq in bads:
                prev = ordered[i - 1] if i > 0 else 0
                nxt = ordered[i] if i < len(ordered) else 0
                if seq and seq > prev and (seq < nxt if nxt else seq - prev <= _PLAUSIBLE):
                    lost.setdefault(seq, blk.path)
                elif prev and nxt and 1 < nxt - prev <= _PLAUSIBLE:
                    for s in range(prev + 1, nxt):
                        lost.setdefault(s, blk.path)
        if undecryptable > 5:
            self._problems.append(f"{undecryptable} message records could not be read "
                                  f"(wrong encryption key or cipher?)")
        # a sequence that may have been acknowledged is never handed out again
        last = max([last, *(q for q in lost if q >= floor)])
        self._last = max(last, floor - 1)
        self._first = self._last + 1
        self._last_ts = last_ts
        for seq in sorted(found):
            ent, ttl = found[seq]
            if seq < floor or seq in deleted:
                continue
            ent.blk.live += 1
            ent.blk.live_bytes += ent.rlen
            self._index_add(seq, ent, ttl)
        if not self._msgs:
            self._first = self._last + 1
        self._lost = sorted(s for s in lost if s >= floor and s not in deleted and s not in found)
        for blk in self._blocks:
            if blk.live == 0 or blk.live_bytes * 2 < blk.size:
                self._dirty.add(blk)
        if self._blocks and not self._blocks[-1].damaged:
            self._cur = self._blocks[-1]
            self._cur.wfd = os.open(self._cur.path, os.O_WRONLY | os.O_APPEND)
        else:
            self._cur = None
        if self._cur is None:
            self._new_block()

    def _scan(self, blk: _Block, data: bytes):
        """Yield ("ok", off, type, seq, record) for each good record and ("bad", off, 0,
        seq-or-0, what) for damage, resynchronising after it."""
        n = len(data)
        mv = memoryview(data)
        off = 0
        while off < n:
            ok, rlen, rtype, seq = self._check(mv, off, n)
            if ok:
                yield "ok", off, rtype, seq, mv[off:off + rlen]
                off += rlen
                continue
            if rlen and off + rlen == n and rlen > 0 and off + 4 <= n:
                # the length is intact and the record ends exactly at the end of the block
                yield "bad", off, 0, seq, f"checksum mismatch (seq {seq}), record skipped"
                off += rlen
                continue
            if rlen and off + rlen < n and self._check(mv, off + rlen, n)[0]:
                yield "bad", off, 0, seq, f"checksum mismatch (seq {seq}), record skipped"
                off += rlen
                continue
            # length damaged or the tail is torn: find the next good record
            p = off + 1
            while p < n and not self._check(mv, p, n)[0]:
                p += 1
            if p >= n:
                what = (f"truncated or damaged tail ({n - off} bytes"
                        + (f", seq {seq}" if seq else "") + "), ignored")
            else:
                what = f"damaged bytes up to offset {p}" + (f" (seq {seq})" if seq else "") + ", skipped"
            yield "bad", off, 0, seq, what
            off = p

    @staticmethod
    def _check(mv, off: int, n: int):
        """(ok, record length or 0, type, plausible seq or 0) of the record at off."""
        if off + PRE_LEN > n:
            return False, 0, 0, 0
        ln, rtype, seq = PRE.unpack_from(mv, off)
        rlen = ln + 4
        if (rtype & 0x7F) not in _TYPES or ln < PRE_LEN - 4 + 4 or ln > _MAX_REC:
            return False, 0, 0, 0
        if off + rlen > n:
            return False, 0, 0, seq if rtype & 0x7F == T_MSG else 0
        if CRC.unpack_from(mv, off + rlen - 4)[0] != zlib.crc32(mv[off:off + rlen - 4]):
            return False, rlen, 0, seq if rtype & 0x7F == T_MSG else 0
        return True, rlen, rtype, seq

    def problems(self) -> list[str]:
        return list(self._problems)

    # ---- consumers, delete, close ------------------------------------------------------------

    def consumer_store(self, name: str) -> "FileConsumerStore":
        cs = self._consumers.get(name)
        if cs is None:
            cs = self._consumers[name] = FileConsumerStore(self, name)
        return cs

    def consumer_names(self) -> list[str]:
        try:
            return sorted(d for d in os.listdir(self._odir) if os.path.isdir(os.path.join(self._odir, d)))
        except FileNotFoundError:
            return []

    def delete(self) -> None:
        self._clear(self._last + 1)
        self.close()
        self._consumers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            for cs in self._consumers.values():
                cs.close()
            for fd in self._rfds.values():
                os.close(fd)
            self._rfds.clear()
            self._ra = self._ra_end = None
            for blk in self._blocks:
                if blk.wfd >= 0:
                    os.close(blk.wfd)
                    blk.wfd = -1


def _atomic_write(path: str, data: bytes, sync: bool = True) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class FileConsumerStore(ConsumerStore):
    """obs/<name>/meta.inf (config), o.dat (a state snapshot) and o.log (the changes since it),
    JSON, sealed when encrypted.

    `update` appends only what changed since the last write to o.log, as one record (`len u32 ·
    crc32 u32 · JSON`, the JSON sealed when encrypted); the first write of a process, and every
    one after _COMPACT_RECORDS records or _COMPACT_BYTES of log, is a compaction instead: a new
    snapshot replaces o.dat atomically, then o.log is truncated. Durability is the stream's: a
    written state survives kill -9 at once (it is in the OS), and an OS crash once `sync()` ran
    (the stream's sync_interval), or at once with `sync: always` (each write is fsynced). The snapshot carries an epoch that each log record repeats, so the records of
    an older snapshot (a crash between the replace and the truncate) are never applied to a
    newer one. `load` reads the snapshot and applies the records of its epoch in order,
    stopping at the first torn or damaged one (kill -9 during an append)."""

    _COMPACT_RECORDS = 1024
    _COMPACT_BYTES = 1 << 20

    def __init__(self, stream: FileStore, name: str):
        self._stream = stream
        self._name = name
        self._dir = os.path.join(stream._odir, name)
        os.makedirs(self._dir, exist_ok=True)
        self._last: ConsumerState | None = None  # what o.dat + o.log hold, once written here
        self._epoch = 0
        self._logfd = -1
        self._lognum = 0
        self._logbytes = 0

    def _write(self, fname: str, obj, sync: bool = True) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        if self._stream._sealer is not None:
            data = self._stream._sealer.seal(data, fname.encode())
        _atomic_write(os.path.join(self._dir, fname), data, sync)

    @property
    def syncs_each_write(self) -> bool:
        """Whether update() fsyncs (sync: always): then it is better off a thread."""
        return self._stream._sync_always

    def sync(self) -> None:
        """fsync the state written so far (the stream's sync(), in a threadpool: a file
        replaced or closed meanwhile is skipped)."""
        for path in (os.path.join(self._dir, "o.dat"), os.path.join(self._dir, "o.log")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _read(self, fname: str):
        path = os.path.join(self._dir, fname)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            if self._stream._sealer is not None:
                data = self._stream._sealer.open(data, fname.encode())
            return json.loads(data)
        except (DecryptError, ValueError) as e:
            self._problem(f"{path}: unreadable ({e})")
            return None

    def _problem(self, msg: str) -> None:
        if msg not in self._stream._problems:
            self._stream._problems.append(msg)

    def save_config(self, config: dict) -> None:
        self._write("meta.inf", config)

    def load_config(self) -> dict | None:
        return self._read("meta.inf")

    def update(self, state: ConsumerState) -> None:
        last = self._last
        if last is None or self._lognum >= self._COMPACT_RECORDS or self._logbytes >= self._COMPACT_BYTES:
            self._compact(state)
            return
        lp, np_ = last.pending, state.pending
        lr, nr = last.redelivered, state.redelivered
        delta: dict = {"e": self._epoch,
                       "d": [state.delivered_consumer, state.delivered_stream],
                       "a": [state.ack_floor_consumer, state.ack_floor_stream]}
        # set operations on the dict views run in C: (seq, value) pairs new or changed, and
        # the seqs gone (the values are tuples and ints, hashable)
        try:
            add = np_.items() - lp.items()
        except TypeError:  # an unhashable value (a list): compare one by one
            add = [(q, v) for q, v in np_.items() if lp.get(q) != tuple(v)]
        gone = lp.keys() - np_.keys()
        if add:
            delta["p"] = [[q, v[0], v[1]] for q, v in add]
        if gone:
            delta["x"] = list(gone)
        if nr or lr:
            radd = nr.items() - lr.items()
            rgone = lr.keys() - nr.keys()
            if radd:
                delta["r"] = [list(x) for x in radd]
            if rgone:
                delta["y"] = list(rgone)
        if len(delta) == 3 and delta["d"] == [last.delivered_consumer, last.delivered_stream] \
                and delta["a"] == [last.ack_floor_consumer, last.ack_floor_stream]:
            return  # nothing changed
        data = json.dumps(delta, separators=(",", ":")).encode()
        if self._stream._sealer is not None:
            data = self._stream._sealer.seal(data, b"o.log")
        rec = _LOGREC.pack(len(data), zlib.crc32(data)) + data
        view = memoryview(rec)
        while view:
            n = os.write(self._logfd, view)
            view = view[n:]
        if self._stream._sync_always:
            os.fdatasync(self._logfd)
        self._lognum += 1
        self._logbytes += len(rec)
        self._last = _copy_state(state)

    def _compact(self, state: ConsumerState) -> None:
        epoch = time.time_ns()
        if epoch <= self._epoch:
            epoch = self._epoch + 1
        self._write("o.dat", {
            "delivered": [state.delivered_consumer, state.delivered_stream],
            "ack_floor": [state.ack_floor_consumer, state.ack_floor_stream],
            "pending": [[q, c, t] for q, (c, t) in state.pending.items()],
            "redelivered": [[q, n] for q, n in state.redelivered.items()],
            "ts": time.time_ns(),
            "epoch": epoch,
        }, sync=self._stream._sync_always)
        self._epoch = epoch
        if self._logfd >= 0:
            os.ftruncate(self._logfd, 0)
        else:
            self._logfd = os.open(os.path.join(self._dir, "o.log"),
                                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._lognum = self._logbytes = 0
        self._last = _copy_state(state)

    def load(self) -> ConsumerState:
        d = self._read("o.dat")
        if not d:
            return ConsumerState()
        st = ConsumerState(
            delivered_consumer=d["delivered"][0], delivered_stream=d["delivered"][1],
            ack_floor_consumer=d["ack_floor"][0], ack_floor_stream=d["ack_floor"][1],
            pending={q: (c, t) for q, c, t in d["pending"]},
            redelivered={q: n for q, n in d["redelivered"]},
        )
        epoch = d.get("epoch")
        if epoch is not None:
            self._replay(st, epoch)
        return st

    def _replay(self, st: ConsumerState, epoch: int) -> None:
        path = os.path.join(self._dir, "o.log")
        try:
            with open(path, "rb") as f:
                log = f.read()
        except FileNotFoundError:
            return
        sealer = self._stream._sealer
        off = 0
        while off + _LOGREC.size <= len(log):
            n, crc = _LOGREC.unpack_from(log, off)
            data = log[off + _LOGREC.size:off + _LOGREC.size + n]
            if len(data) != n or zlib.crc32(data) != crc:
                break  # a torn tail (kill -9 while appending)
            off += _LOGREC.size + n
            try:
                if sealer is not None:
                    data = sealer.open(data, b"o.log")
                delta = json.loads(data)
            except (DecryptError, ValueError) as e:
                self._problem(f"{path}: unreadable record ({e})")
                break
            if delta.get("e") != epoch:
                continue  # written against an older snapshot
            st.delivered_consumer, st.delivered_stream = delta["d"]
            st.ack_floor_consumer, st.ack_floor_stream = delta["a"]
            pending, red = st.pending, st.redelivered
            for q in delta.get("x", ()):
                pending.pop(q, None)
            for q, c, t in delta.get("p", ()):
                pending[q] = (c, t)
            for q in delta.get("y", ()):
                red.pop(q, None)
            for q, k in delta.get("r", ()):
                red[q] = k

    def close(self) -> None:
        if self._logfd >= 0:
            os.close(self._logfd)
            self._logfd = -1
        self._last = None

    def delete(self) -> None:
        self.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._stream._consumers.get(self._name) is self:
            del self._stream._consumers[self._name]


_LOGREC = struct.Struct("<II")  # o.log record: len, crc32 of what follows


def _copy_state(st: ConsumerState) -> ConsumerState:
    pending = dict(st.pending)
    if pending and type(next(iter(pending.values()))) is not tuple:  # kept as tuples (see update)
        pending = {q: tuple(v) for q, v in pending.items()}
    return ConsumerState(st.delivered_consumer, st.delivered_stream, st.ack_floor_consumer,
                         st.ack_floor_stream, pending, dict(st.redelivered))
