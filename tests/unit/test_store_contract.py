"""The StreamStore contract: every test runs against every store (memory, file, encrypted file).

Expectations were checked against nats-server v2.15.1 through STREAM.INFO / STREAM.PURGE /
STREAM.MSG.DELETE (both storage types) where the API shows them: fresh stream 0/0, first_seq
N -> N/N-1, purge keep keeps the last N *messages* of the filter, purge seq beyond the end moves
first to seq and last to seq-1, deleting the last message leaves first = last + 1.
"""

from __future__ import annotations

import pytest

from actor_nats.store.base import ConsumerState, StoreError, StreamLimits
from actor_nats.store.memory import MemoryStore

try:
    from actor_nats.store.file import FileStore
except ImportError:  # pragma: no cover - the file store lands after the memory store
    FileStore = None

SEC = 1_000_000_000


def _file(cipher=None):
    def make(tmp_path, limits, first_seq=1):
        key = b"secret key" if cipher else None
        return FileStore(str(tmp_path / "S"), limits, first_seq=first_seq, cipher=cipher, key=key,
                         block_size=4096)
    return make


FACTORIES = {"memory": lambda tmp_path, limits, first_seq=1: MemoryStore(limits, first_seq)}
if FileStore is not None:
    FACTORIES["file"] = _file()
    FACTORIES["file-chachapoly"] = _file("chachapoly")
    FACTORIES["file-aes"] = _file("aes")


def snapshot(s):
    st = s.state(deleted_details=s.state().num_deleted < 100_000)
    msgs = []
    m = s.load_next_msg(">", 0)
    while m is not None:
        msgs.append(m)
        m = s.load_next_msg(">", m.seq + 1)
    return st, msgs, {k: (v.msgs, v.first, v.last) for k, v in s.subjects_state().items()}


@pytest.fixture(params=list(FACTORIES))
def make(request, tmp_path):
    made = []

    def mk(limits=None, first_seq=1):
        limits = limits or StreamLimits()
        s = FACTORIES[request.param](tmp_path, limits, first_seq)
        made.append((s, limits, first_seq))
        return s

    yield mk
    for s, limits, first_seq in made:
        deleted = getattr(s, "_dir", None) and not (tmp_path / "S").exists()
        if request.param.startswith("file") and not deleted:
            # every contract test doubles as a recovery test: what was flushed comes back
            before = snapshot(s)
            s.close()
            again = FACTORIES[request.param](tmp_path, s._limits, first_seq)
            try:
                after = snapshot(again)
                assert after == before, "state after reopen differs"
                assert again.problems() == []
            finally:
                again.close()
        else:
            s.close()


def fill(s, n, subj=lambda i: "foo", ts0=None):
    out = []
    for i in range(n):
        ts = None if ts0 is None else ts0 + i
        out.append(s.store_msg(subj(i), b"", b"x%d" % i, ts=ts)[0])
    return out


def msz(s, subject, hdr=b"", data=b""):
    """The store's accounting size of one message (memory 16 bytes overhead, file more)."""
    return s.msg_size(subject, hdr, data)


# ---- basics --------------------------------------------------------------------------------

def test_fresh_state(make):
    st = make().state()
    assert (st.msgs, st.bytes, st.first_seq, st.last_seq, st.first_ts, st.num_deleted) == (0, 0, 0, 0, 0, 0)


def test_first_seq(make):
    s = make(first_seq=5)
    st = s.state()
    assert (st.first_seq, st.last_seq) == (5, 4)
    assert s.store_msg("a", b"", b"1")[0] == 5
    st = s.state()
    assert (st.first_seq, st.last_seq, st.msgs) == (5, 5, 1)


def test_store_and_load(make):
    s = make()
    seq, ts = s.store_msg("foo.bar", b"NATS/1.0\r\nA: b\r\n\r\n", b"hello", ts=123)
    assert (seq, ts) == (1, 123)
    seq2, ts2 = s.store_msg("foo.baz", b"", b"world")
    assert seq2 == 2 and ts2 > 0
    m = s.load_msg(1)
    assert (m.subject, m.seq, m.ts, m.hdr, m.data) == ("foo.bar", 1, 123, b"NATS/1.0\r\nA: b\r\n\r\n", b"hello")
    assert s.load_msg(2).data == b"world"
    assert s.load_msg(3) is None and s.load_msg(0) is None
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq, st.first_ts, st.last_ts) == (2, 1, 2, 123, ts2)
    assert st.bytes == msz(s, "foo.bar", b"NATS/1.0\r\nA: b\r\n\r\n", b"hello") + msz(s, "foo.baz", b"", b"world")
    assert st.num_subjects == 2


def test_max_msg_size(make):
    s = make(StreamLimits(max_msg_size=10))
    s.store_msg("a", b"", b"x" * 10)
    with pytest.raises(StoreError, match="message size exceeds maximum allowed"):
        s.store_msg("a", b"12345", b"x" * 6)
    assert s.state().msgs == 1 and s.state().last_seq == 1


def test_remove_interior_and_first_and_last(make):
    s = make()
    fill(s, 10)
    assert s.remove_msg(9)
    assert not s.remove_msg(9)
    assert not s.remove_msg(42)
    st = s.state(deleted_details=True)
    assert (st.msgs, st.first_seq, st.last_seq, st.num_deleted, st.deleted) == (9, 1, 10, 1, [9])
    assert s.state().deleted == []
    s.remove_msg(1)
    s.remove_msg(2)
    st = s.state()
    assert (st.first_seq, st.num_deleted) == (3, 1)
    s.remove_msg(10)
    st = s.state(True)
    assert (st.last_seq, st.num_deleted, st.deleted) == (10, 2, [9, 10])
    for q in range(3, 9):
        s.remove_msg(q)
    st = s.state()
    assert (st.msgs, st.bytes, st.first_seq, st.last_seq, st.num_deleted, st.first_ts) == (0, 0, 11, 10, 0, 0)


def test_erase(make):
    s = make()
    fill(s, 3)
    assert s.remove_msg(2, erase=True)
    assert s.load_msg(2) is None
    assert s.load_msg(3).data == b"x2"


def test_skip_msg(make):
    s = make()
    assert s.skip_msg() == 1
    st = s.state()
    assert (st.first_seq, st.last_seq, st.msgs) == (2, 1, 0)
    s.store_msg("a", b"", b"")
    assert s.skip_msg() == 3
    assert s.skip_msg(5) == 5
    st = s.state(True)
    assert (st.first_seq, st.last_seq, st.msgs, st.deleted) == (2, 5, 1, [3, 4, 5])
    with pytest.raises(StoreError):
        s.skip_msg(4)
    assert s.store_msg("a", b"", b"")[0] == 6


# ---- lookups -------------------------------------------------------------------------------

def test_load_next_and_last(make):
    s = make()
    subjects = ["a.1", "b.1", "a.2", "a.1", "c", "b.2"]
    for i, subj in enumerate(subjects):
        s.store_msg(subj, b"", b"%d" % i)
    assert s.load_next_msg("a.1", 1).seq == 1
    assert s.load_next_msg("a.1", 2).seq == 4
    assert s.load_next_msg("a.1", 5) is None
    assert s.load_next_msg("a.*", 2).seq == 3
    assert s.load_next_msg("b.>", 3).seq == 6
    assert s.load_next_msg("", 5).seq == 5
    assert s.load_next_msg(">", 0).seq == 1
    assert s.load_next_msg("*", 1).seq == 5
    assert s.load_next_msg("zzz", 1) is None
    assert s.load_last_msg("a.1").seq == 4
    assert s.load_last_msg("a.*").seq == 4
    assert s.load_last_msg(">").seq == 6
    assert s.load_last_msg("").seq == 6
    assert s.load_last_msg("nope") is None
    s.remove_msg(4)
    assert s.load_last_msg("a.1").seq == 1
    assert s.load_next_msg("a.1", 2) is None
    s.remove_msg(6)
    assert s.load_last_msg(">").seq == 5
    assert s.last_seq_for_subject("b.2") == 0
    assert s.last_seq_for_subject("a.2") == 3
    assert s.last_seq_for_subject("a.*") == 0


def test_many_subjects_wildcard(make):
    s = make()
    for i in range(300):
        s.store_msg(f"k.{i}", b"", b"")
        s.store_msg(f"o.{i}", b"", b"")
    assert s.load_next_msg("k.*", 2).seq == 3
    assert s.load_next_msg("o.>", 500).seq == 500
    assert s.filtered_state("k.*").msgs == 300
    fs = s.filtered_state("k.*", 301)
    assert (fs.msgs, fs.first, fs.last) == (150, 301, 599)
    assert s.num_pending(1, "o.*") == 300
    assert s.load_last_msg("k.*").seq == 599
    assert s.purge("k.*", keep=10) == 290
    assert s.state().msgs == 310


def test_filtered_and_subjects_state(make):
    s = make()
    for subj in ["a.1", "b.1", "a.2", "a.1", "c"]:
        s.store_msg(subj, b"", b"")
    fs = s.filtered_state("a.*")
    assert (fs.msgs, fs.first, fs.last) == (3, 1, 4)
    fs = s.filtered_state("a.*", 2)
    assert (fs.msgs, fs.first, fs.last) == (2, 3, 4)
    fs = s.filtered_state(">", 2)
    assert (fs.msgs, fs.first, fs.last) == (4, 2, 5)
    fs = s.filtered_state("", 0)
    assert (fs.msgs, fs.first, fs.last) == (5, 1, 5)
    assert s.filtered_state("x").msgs == 0
    ss = s.subjects_state("a.*")
    assert {k: (v.msgs, v.first, v.last) for k, v in ss.items()} == {"a.1": (2, 1, 4), "a.2": (1, 3, 3)}
    assert set(s.subjects_state()) == {"a.1", "a.2", "b.1", "c"}
    assert s.num_pending(1) == 5
    assert s.num_pending(3, "a.*") == 2
    assert s.num_pending(1, "a.*", last_per_subject=True) == 2
    assert s.num_pending(4, ">", last_per_subject=True) == 2


# ---- purge / compact -----------------------------------------------------------------------

def test_purge_all(make):
    s = make()
    fill(s, 10)
    assert s.purge() == 10
    st = s.state()
    assert (st.msgs, st.bytes, st.first_seq, st.last_seq, st.num_subjects) == (0, 0, 11, 10, 0)
    assert s.store_msg("a", b"", b"")[0] == 11


def test_purge_keep_all_subjects(make):
    # nats-server: 10 msgs, 9 deleted, keep=3 -> purged 6, first 7
    s = make()
    fill(s, 10, subj=lambda i: "S.a" if i % 2 == 0 else "S.b")
    s.remove_msg(9)
    assert s.purge(keep=3) == 6
    st = s.state(True)
    assert (st.msgs, st.first_seq, st.last_seq, st.deleted) == (3, 7, 10, [9])
    assert s.purge(keep=5) == 0


def test_purge_seq_beyond_end(make):
    s = make()
    fill(s, 10)
    assert s.purge(seq=100) == 10
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (0, 100, 99)
    assert s.store_msg("a", b"", b"")[0] == 100


def test_purge_seq(make):
    s = make()
    fill(s, 10)
    assert s.purge(seq=4) == 3
    st = s.state()
    assert (st.msgs, st.first_seq) == (7, 4)
    s.remove_msg(6)
    assert s.purge(seq=6) == 2
    assert s.state().first_seq == 7


def test_purge_filtered(make):
    # nats-server: 6 msgs a,b alternate as i%3 -> b at 1,4; purge a keep 1 -> purged 3, deleted [2,3,5]
    s = make(first_seq=1)
    fill(s, 6, subj=lambda i: "G.a" if i % 3 else "G.b")
    assert s.purge("G.a", keep=1) == 3
    st = s.state(True)
    assert (st.msgs, st.first_seq, st.last_seq, st.deleted) == (3, 1, 6, [2, 3, 5])
    assert s.purge("G.b") == 2
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq, st.num_subjects) == (1, 6, 6, 1)
    s.remove_msg(6)
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (0, 7, 6)


def test_purge_filtered_seq(make):
    s = make()
    fill(s, 10, subj=lambda i: "a" if i % 2 else "b")  # b at odd seqs
    assert s.purge("a", seq=7) == 3  # 2, 4, 6
    assert s.filtered_state("a").first == 8
    assert s.purge("x.>") == 0
    assert s.purge("*", keep=2) == 5


def test_compact(make):
    s = make()
    fill(s, 10)
    assert s.compact(1) == 0
    assert s.compact(5) == 4
    assert s.state().first_seq == 5
    assert s.compact(3) == 0
    assert s.compact(11) == 6
    st = s.state()
    assert (st.first_seq, st.last_seq, st.msgs) == (11, 10, 0)
    assert s.compact(20) == 0
    st = s.state()
    assert (st.first_seq, st.last_seq) == (20, 19)


# ---- limits --------------------------------------------------------------------------------

def test_max_msgs(make):
    s = make(StreamLimits(max_msgs=3))
    fill(s, 10)
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (3, 8, 10)


def test_max_bytes(make):
    s = make()
    one = msz(s, "foo", b"", b"x0")
    s.update_limits(StreamLimits(max_bytes=3 * one))
    fill(s, 8)
    st = s.state()
    assert (st.msgs, st.first_seq, st.bytes) == (3, 6, 3 * one)


def test_discard_new_never_drops(make):
    s = make(StreamLimits(max_msgs=3, discard_new=True))
    fill(s, 5)
    assert s.state().msgs == 5


def test_max_msgs_per_subject(make):
    s = make(StreamLimits(max_msgs_per_subject=2))
    for subj in ["a", "b", "a", "a", "b", "a"]:
        s.store_msg(subj, b"", b"")
    assert {k: (v.msgs, v.first, v.last) for k, v in s.subjects_state().items()} == {"a": (2, 4, 6), "b": (2, 2, 5)}
    st = s.state()
    assert (st.msgs, st.first_seq) == (4, 2)
    s.update_limits(StreamLimits(max_msgs_per_subject=1))
    assert s.state().msgs == 2
    assert s.load_next_msg(">", 0).seq == 5


def test_update_limits_drops(make):
    s = make()
    fill(s, 10)
    s.update_limits(StreamLimits(max_msgs=4))
    assert s.state().first_seq == 7


def test_max_age(make):
    s = make(StreamLimits(max_age=10 * SEC))
    for i in range(5):
        s.store_msg("a", b"", b"", ts=i * SEC)
    assert s.next_expiry() == 10 * SEC
    assert s.expire(9 * SEC) == []
    assert s.expire(12 * SEC) == [1, 2, 3]
    assert s.state().first_seq == 4
    assert s.next_expiry() == 13 * SEC
    assert s.expire(100 * SEC) == [4, 5]
    assert s.next_expiry() == 0
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (0, 6, 5)


def test_ttl(make):
    s = make()
    s.store_msg("a", b"", b"", ts=0, ttl=5 * SEC)
    s.store_msg("a", b"", b"", ts=0)
    s.store_msg("a", b"", b"", ts=1 * SEC, ttl=2 * SEC)
    assert s.next_expiry() == 3 * SEC
    assert s.expire(3 * SEC) == [3]
    assert s.next_expiry() == 5 * SEC
    assert s.expire(10 * SEC) == [1]
    assert s.next_expiry() == 0
    assert s.state().msgs == 1


def test_ttl_never_exempt_from_max_age(make):
    s = make(StreamLimits(max_age=10 * SEC))
    s.store_msg("a", b"", b"", ts=0, ttl=-1)
    s.store_msg("a", b"", b"", ts=0)
    assert s.expire(20 * SEC) == [2]
    assert s.state().msgs == 1
    assert s.next_expiry() == 0


def test_load_msgs(make):
    """A run of messages from a sequence on, across gaps, bounded by count and bytes."""
    s = make()
    fill(s, 10)
    s.remove_msg(3)
    s.remove_msg(4)
    assert [m.seq for m in s.load_msgs(1, 4)] == [1, 2, 5, 6]
    assert [m.seq for m in s.load_msgs(3, 100)] == [5, 6, 7, 8, 9, 10]
    assert s.load_msgs(11, 5) == []
    one = s.load_msgs(1, 1)[0].size
    assert [m.seq for m in s.load_msgs(1, 100, 2 * one)] == [1, 2]
    assert [m.seq for m in s.load_msgs(1, 100, 1)] == [1]  # at least one
    assert [m.data for m in s.load_msgs(5, 2)] == [s.load_msg(5).data, s.load_msg(6).data]


# ---- consumers -----------------------------------------------------------------------------

def test_consumer_store(make):
    s = make()
    assert s.consumer_names() == []
    c = s.consumer_store("dur")
    assert c.load() == ConsumerState()
    assert c.load_config() is None
    c.save_config({"durable_name": "dur", "ack_policy": "explicit"})
    st = ConsumerState(delivered_consumer=5, delivered_stream=7, ack_floor_consumer=3, ack_floor_stream=4,
                       pending={5: (4, 1000), 7: (5, 2000)}, redelivered={5: 2})
    c.update(st)
    st.pending.clear()  # the store keeps its own copy
    got = s.consumer_store("dur").load()
    assert got.pending == {5: (4, 1000), 7: (5, 2000)} and got.redelivered == {5: 2}
    assert (got.delivered_consumer, got.delivered_stream, got.ack_floor_consumer, got.ack_floor_stream) == (5, 7, 3, 4)
    assert s.consumer_store("dur").load_config() == {"durable_name": "dur", "ack_policy": "explicit"}
    assert s.consumer_names() == ["dur"]
    s.consumer_store("other")
    assert s.consumer_names() == ["dur", "other"]
    c.delete()
    assert s.consumer_names() == ["other"]


def test_delete(make):
    s = make()
    fill(s, 5)
    s.consumer_store("c").update(ConsumerState(delivered_consumer=1))
    s.delete()
    assert s.state().msgs == 0
    assert s.consumer_names() == []


def test_big_gaps_are_cheap(make):
    s = make()
    s.store_msg("a", b"", b"1")
    s.skip_msg(10_000_000_000)
    s.store_msg("a", b"", b"2")
    s.store_msg("b", b"", b"3")
    s.skip_msg(20_000_000_000)
    assert s.load_last_msg(">").data == b"3"
    assert s.load_next_msg(">", 2).data == b"2"
    assert s.filtered_state(">").last == 10_000_000_002
    assert s.remove_msg(1)
    assert s.state().first_seq == 10_000_000_001
    assert s.filtered_state(">", 10_000_000_002).msgs == 1
    assert s.num_pending(5) == 2
