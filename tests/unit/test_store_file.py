"""FileStore specifics: recovery after kill, damage detection, compaction, encryption, consumers.

The StreamStore semantics themselves are in test_store_contract.py (which also reopens every
file store it made and checks nothing changed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from actor_nats.store.base import ConsumerState, StoreCorruption, StreamLimits
from actor_nats.store.file import FileStore

CIPHERS = [None, "chachapoly", "aes"]


def open_store(path, cipher=None, key=b"k1", **kw):
    kw.setdefault("block_size", 64 * 1024)
    return FileStore(str(path), StreamLimits(), cipher=cipher, key=key if cipher else None, **kw)


def abandon(s: FileStore) -> None:
    """Drop a store's file descriptors without flushing anything (as a killed process)."""
    s._buf = bytearray()
    s._closed = True
    for fd in s._rfds.values():
        os.close(fd)
    for b in s._blocks:
        if b.wfd >= 0:
            os.close(b.wfd)


def blocks(path):
    d = os.path.join(str(path), "msgs")
    return sorted((os.path.join(d, f) for f in os.listdir(d) if f.endswith(".blk")),
                  key=lambda p: int(os.path.basename(p)[:-4]))


def record_offsets(path_blk):
    """(offset, length, seq) of each record in a block file."""
    import struct
    data = open(path_blk, "rb").read()
    out, off = [], 0
    while off < len(data):
        ln, typ, seq = struct.unpack_from("<IBQ", data, off)
        out.append((off, ln + 4, seq, typ & 0x7F))
        off += ln + 4
    return out


def all_msgs(s):
    out = []
    m = s.load_next_msg(">", 0)
    while m is not None:
        out.append(m)
        m = s.load_next_msg(">", m.seq + 1)
    return out


@pytest.mark.parametrize("cipher", CIPHERS)
def test_reopen_after_flush_without_close(tmp_path, cipher):
    s = open_store(tmp_path / "S", cipher)
    for i in range(500):
        s.store_msg(f"a.{i % 7}", b"NATS/1.0\r\nX: 1\r\n\r\n" if i % 3 == 0 else b"", b"m%d" % i, ts=1000 + i)
    s.remove_msg(10)
    s.remove_msg(1)
    s.skip_msg()
    s.flush()
    before = (s.state(True), all_msgs(s))
    s.store_msg("unflushed", b"", b"gone")  # never written: a kill loses it
    abandon(s)
    s2 = open_store(tmp_path / "S", cipher)
    assert s2.problems() == []
    assert (s2.state(True), all_msgs(s2)) == before
    assert s2.last_seq_for_subject("a.3") == before[1][-1].seq if before[1][-1].subject == "a.3" else True
    assert s2.store_msg("x", b"", b"")[0] == 502
    s2.close()


def test_kill_9_after_flush_loses_nothing(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from actor_nats.store.file import FileStore
        from actor_nats.store.base import StreamLimits
        s = FileStore({str(tmp_path / "S")!r}, StreamLimits(), block_size=32 * 1024)
        for i in range(2000):
            s.store_msg("k.%d" % (i % 10), b"", b"payload-%d" % i)
            if i % 100 == 99:
                s.flush()
        print("flushed", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "flushed"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(10)
        p.stdout.close()
    s = open_store(tmp_path / "S")
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq, st.lost) == (2000, 1, 2000, [])
    assert s.load_msg(1234).data == b"payload-1233"
    assert s.problems() == []
    s.close()


@pytest.mark.parametrize("cipher", CIPHERS)
def test_partial_record_at_tail(tmp_path, cipher):
    s = open_store(tmp_path / "S", cipher)
    for i in range(20):
        s.store_msg("foo", b"", b"x" * 50)
    s.flush()
    abandon(s)
    blk = blocks(tmp_path / "S")[-1]
    # a kill in the middle of a write: the next record's first bytes only
    recs = record_offsets(blk)
    off, ln, _, _ = recs[-1]
    tail = open(blk, "rb").read()[off:off + ln]
    with open(blk, "ab") as f:
        f.write(tail[:ln // 2].replace(b"\x14\x00\x00\x00\x00\x00\x00\x00", b"\x15\x00\x00\x00\x00\x00\x00\x00", 1))
    s2 = open_store(tmp_path / "S", cipher)
    st = s2.state()
    # the torn record's seq is reported lost and never reused (it may have been acknowledged)
    assert (st.msgs, st.last_seq, st.lost) == (20, 21, [21])
    assert len(s2.problems()) == 1 and "tail" in s2.problems()[0]
    assert s2.load_msg(20).data == b"x" * 50
    # appends go on in a fresh block; the next open sees the same damage and the new messages
    assert s2.store_msg("foo", b"", b"new")[0] == 22
    s2.close()
    s3 = open_store(tmp_path / "S", cipher)
    assert s3.state().msgs == 21 and s3.load_msg(22).data == b"new"
    s3.close()


@pytest.mark.parametrize("cipher", CIPHERS)
def test_truncated_mid_record(tmp_path, cipher):
    s = open_store(tmp_path / "S", cipher)
    for i in range(10):
        s.store_msg("foo", b"", b"y" * 100)
    s.close()
    blk = blocks(tmp_path / "S")[-1]
    off, ln, seq, _ = record_offsets(blk)[-1]
    assert seq == 10
    os.truncate(blk, off + ln - 7)
    s2 = open_store(tmp_path / "S", cipher)
    st = s2.state()
    assert (st.msgs, st.first_seq, st.last_seq, st.lost) == (9, 1, 10, [10])
    assert s2.load_msg(10) is None and s2.load_msg(9).data == b"y" * 100
    assert "truncated" in s2.problems()[0] and blk in s2.problems()[0]
    s2.close()


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("where", ["payload", "seq", "length"])
def test_flipped_bit(tmp_path, cipher, where):
    s = open_store(tmp_path / "S", cipher)
    for i in range(10):
        s.store_msg("foo.%d" % i, b"", b"z" * 64)
    s.close()
    blk = blocks(tmp_path / "S")[0]
    recs = {seq: (off, ln) for off, ln, seq, typ in record_offsets(blk) if typ == 1}
    off, ln = recs[5]
    pos = {"payload": off + ln - 10, "seq": off + 6, "length": off + 1}[where]
    data = bytearray(open(blk, "rb").read())
    data[pos] ^= 0x08
    open(blk, "wb").write(data)
    s2 = open_store(tmp_path / "S", cipher)
    st = s2.state()
    assert st.msgs == 9 and st.lost == [5], s2.problems()
    assert s2.load_msg(5) is None
    assert [m.seq for m in all_msgs(s2)] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert s2.load_last_msg("foo.9").data == b"z" * 64
    probs = s2.problems()
    assert len(probs) == 1 and blk in probs[0] and f"offset {off}" in probs[0]
    s2.close()


def test_corruption_found_at_read(tmp_path):
    s = open_store(tmp_path / "S")
    for i in range(5):
        s.store_msg("foo", b"", b"q" * 64)
    s.flush()
    s._cache.clear()
    blk = blocks(tmp_path / "S")[0]
    off, ln, seq, _ = [r for r in record_offsets(blk) if r[2] == 3 and r[3] == 1][0]
    with open(blk, "r+b") as f:
        f.seek(off + ln - 10)
        f.write(b"!")
    with pytest.raises(StoreCorruption):
        s.load_msg(3)
    assert s.load_msg(4).data == b"q" * 64
    s.close()


@pytest.mark.parametrize("cipher", ["chachapoly", "aes"])
def test_wrong_key(tmp_path, cipher):
    s = open_store(tmp_path / "S", cipher, key=b"right")
    for i in range(20):
        s.store_msg("secret", b"", b"top secret %d" % i)
    s.consumer_store("c").update(ConsumerState(delivered_consumer=3))
    s.close()
    raw = b"".join(open(p, "rb").read() for p in blocks(tmp_path / "S"))
    assert b"top secret" not in raw and b"secret" not in raw
    s2 = open_store(tmp_path / "S", cipher, key=b"wrong")
    st = s2.state()
    assert st.msgs == 0 and st.lost == list(range(1, 21)) and st.last_seq == 20
    assert any("wrong" in p for p in s2.problems())
    assert s2.consumer_store("c").load() == ConsumerState()
    assert s2.store_msg("x", b"", b"")[0] == 21
    s2.close()
    assert len(blocks(tmp_path / "S")) == 2  # nothing unreadable was compacted away
    s3 = open_store(tmp_path / "S", None)  # no key at all
    assert s3.state().msgs == 0 and s3.state().lost == list(range(1, 22))
    s3.close()
    s4 = open_store(tmp_path / "S", cipher, key=b"right")  # the right key still reads 1..20
    assert s4.state().msgs == 20 and s4.state().lost == [21]
    assert s4.load_msg(20).data == b"top secret 19"
    s4.close()
    s3.close()


def test_compaction_reclaims_space(tmp_path):
    s = open_store(tmp_path / "S", block_size=16 * 1024)
    for i in range(2000):
        s.store_msg("a" if i % 2 else "b", b"", b"p" * 100)
    s.flush()
    n_blocks = len(blocks(tmp_path / "S"))
    size0 = sum(os.path.getsize(p) for p in blocks(tmp_path / "S"))
    assert n_blocks > 10
    s.purge("a")  # half the messages, interleaved: blocks are rewritten
    s.compact(1500)  # whole blocks go
    s.flush()
    size1 = sum(os.path.getsize(p) for p in blocks(tmp_path / "S"))
    assert size1 < size0 * 0.4
    assert len(blocks(tmp_path / "S")) < n_blocks
    before = (s.state(True), all_msgs(s))
    assert before[0].msgs == 250
    s.close()
    s2 = open_store(tmp_path / "S", block_size=16 * 1024)
    assert (s2.state(True), all_msgs(s2)) == before
    assert s2.problems() == []
    s2.close()


def test_block_emptied_while_current_is_removed_later(tmp_path):
    s = open_store(tmp_path / "S", block_size=4096)
    for i in range(58):  # two full blocks; the second is still the current one
        s.store_msg("a", b"", b"v" * 100)
    n = len(blocks(tmp_path / "S"))
    assert n == 2
    s.purge("a")  # a filtered purge: tombstones, and the current block emptied too
    s.flush()
    assert f"{n}.blk" in [os.path.basename(p) for p in blocks(tmp_path / "S")]
    for i in range(60):
        s.store_msg("b", b"", b"w" * 100)  # new blocks: the emptied ones are no longer current
    s.flush()
    names = [os.path.basename(p) for p in blocks(tmp_path / "S")]
    assert "1.blk" not in names and f"{n}.blk" not in names
    s.close()


def test_tombstones_survive_block_removal(tmp_path):
    # deletes recorded in a block that later goes away must not bring messages back
    s = open_store(tmp_path / "S", block_size=4096)
    for i in range(40):
        s.store_msg("old", b"", b"o" * 100)  # blocks 1..
    for seq in range(5, 40, 3):
        s.remove_msg(seq)  # tombstones land in the current block
    for i in range(40):
        s.store_msg("new", b"", b"n" * 100)
    s.purge("new")  # blocks holding only 'new' (and the tombstones) become empty
    s.store_msg("new", b"", b"n")
    s.flush()
    before = (s.state(True), all_msgs(s))
    s.close()
    s2 = open_store(tmp_path / "S", block_size=4096)
    assert (s2.state(True), all_msgs(s2)) == before
    s2.close()


def test_full_purge_and_compact_beyond_end_persist(tmp_path):
    s = open_store(tmp_path / "S")
    for i in range(10):
        s.store_msg("a", b"", b"")
    s.purge()
    s.close()
    s = open_store(tmp_path / "S")
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (0, 11, 10)
    s.purge(seq=100)
    s.close()
    s = open_store(tmp_path / "S")
    st = s.state()
    assert (st.first_seq, st.last_seq) == (100, 99)
    assert s.store_msg("a", b"", b"")[0] == 100
    s.close()


def test_erase_overwrites_bytes(tmp_path):
    s = open_store(tmp_path / "S")
    s.store_msg("a", b"", b"SECRET-ONE")
    s.store_msg("a", b"", b"keep")
    s.flush()
    s.store_msg("a", b"", b"SECRET-TWO")  # still in the buffer
    s.remove_msg(1, erase=True)
    s.remove_msg(3, erase=True)
    s.close()
    raw = open(blocks(tmp_path / "S")[0], "rb").read()
    assert b"SECRET" not in raw
    s = open_store(tmp_path / "S")
    assert [m.data for m in all_msgs(s)] == [b"keep"] and s.problems() == []
    s.close()


@pytest.mark.parametrize("cipher", CIPHERS)
def test_consumer_state_survives_reopen(tmp_path, cipher):
    s = open_store(tmp_path / "S", cipher)
    c = s.consumer_store("dur")
    c.save_config({"durable_name": "dur", "filter_subject": "a.>"})
    st = ConsumerState(10, 12, 8, 9, {10: (9, 111), 12: (10, 222)}, {10: 3})
    c.update(st)
    s.consumer_store("eph")
    s.close()
    assert sorted(os.listdir(tmp_path / "S" / "obs")) == ["dur", "eph"]
    s2 = open_store(tmp_path / "S", cipher)
    assert s2.consumer_names() == ["dur", "eph"]
    c2 = s2.consumer_store("dur")
    assert c2.load() == st
    assert c2.load_config() == {"durable_name": "dur", "filter_subject": "a.>"}
    c2.delete()
    assert s2.consumer_names() == ["eph"]
    assert not any(f.endswith(".tmp") for f in os.listdir(tmp_path / "S" / "obs" / "eph"))
    s2.close()


def test_sync_always(tmp_path):
    s = open_store(tmp_path / "S", sync_always=True)
    s.store_msg("a", b"", b"1")
    s.remove_msg(1)
    s.store_msg("a", b"", b"2")
    abandon(s)  # nothing buffered: every call wrote and fsynced
    s2 = open_store(tmp_path / "S")
    st = s2.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (1, 2, 2)
    s2.close()


@pytest.mark.parametrize("cipher", [None, "aes"])
def test_ten_megabytes(tmp_path, cipher):
    s = open_store(tmp_path / "S", cipher, block_size=1024 * 1024)
    payload = os.urandom(1000)
    n = 10_500
    for i in range(n):
        s.store_msg(f"big.{i % 50}", b"", payload)
        if i % 500 == 0:
            s.flush()
    s.close()
    assert len(blocks(tmp_path / "S")) >= 10
    s2 = open_store(tmp_path / "S", cipher, block_size=1024 * 1024)
    st = s2.state()
    assert (st.msgs, st.last_seq, st.num_subjects) == (n, n, 50)
    assert s2.load_msg(1).data == payload and s2.load_msg(n // 2).data == payload
    assert s2.load_last_msg("big.7").seq == n - 42
    assert s2.filtered_state("big.1").msgs == n // 50
    s2.close()


def test_delete_removes_directory(tmp_path):
    s = open_store(tmp_path / "S")
    s.store_msg("a", b"", b"")
    s.consumer_store("c").update(ConsumerState())
    s.delete()
    assert not (tmp_path / "S").exists()


def test_sync_after_flush(tmp_path):
    s = open_store(tmp_path / "S", block_size=1024)
    for i in range(100):
        s.store_msg("a", b"", b"s" * 50)
    s.flush()
    s.sync()
    assert s._unsynced == set()
    s.purge("a", keep=3)
    s.flush()
    s.sync()  # blocks removed by compaction are skipped
    s.close()
    s.sync()  # after close: a no-op
