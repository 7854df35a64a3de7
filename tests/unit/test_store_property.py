"""Property: any sequence of operations gives the same state and messages on MemoryStore and
FileStore (plain and encrypted, tiny blocks so compaction and rewrites happen, reopened at random
points so recovery is exercised)."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_nats.store.base import StoreError, StreamLimits
from actor_nats.store.file import FileStore
from actor_nats.store.memory import MemoryStore

SUBJECTS = ["a", "a.b", "a.c", "b.x.y", "c"]
FILTERS = ["", ">", "a", "a.*", "a.>", "b.>", "*", "*.x.*", "zz"]

ops = st.one_of(
    st.tuples(st.just("store"), st.sampled_from(SUBJECTS), st.booleans(), st.binary(max_size=40),
              st.sampled_from([0, 0, 0, 5, -1])),
    st.tuples(st.just("remove"), st.integers(0, 60), st.booleans()),
    st.tuples(st.just("purge"), st.sampled_from(FILTERS), st.sampled_from([0, 0, 3, 10, 70]),
              st.sampled_from([0, 0, 1, 2])),
    st.tuples(st.just("compact"), st.integers(0, 70)),
    st.tuples(st.just("skip")),
    st.tuples(st.just("expire"), st.integers(0, 30)),
    st.tuples(st.just("limits"), st.sampled_from([-1, 3, 8]), st.sampled_from([-1, 1, 2]),
              st.sampled_from([0, 10])),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("flush")),
)


def observe(s):
    stt = s.state(deleted_details=True)
    msgs = []
    m = s.load_next_msg(">", 0)
    while m is not None:
        msgs.append(m)
        m = s.load_next_msg(">", m.seq + 1)
    assert stt.bytes == sum(s.msg_size(m.subject, m.hdr, m.data) for m in msgs)
    stt.bytes = 0
    views = {f: (s.filtered_state(f, 3), s.load_last_msg(f), s.load_next_msg(f, 4),
                 s.num_pending(2, f, True)) for f in FILTERS}
    subs = {k: (v.msgs, v.first, v.last) for k, v in s.subjects_state().items()}
    return stt, msgs, views, subs, s.next_expiry()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=60), st.sampled_from([None, "chachapoly", "aes"]),
       st.sampled_from([256, 1024, 1 << 20]))
def test_memory_and_file_agree(oplist, cipher, block_size):
    d = tempfile.mkdtemp()
    limits = StreamLimits()
    key = b"k" if cipher else None

    def open_file():
        return FileStore(d + "/S", limits, cipher=cipher, key=key, block_size=block_size)

    mem, fs = MemoryStore(limits), open_file()
    now = 0
    try:
        for op in oplist:
            kind = op[0]
            if kind == "store":
                now += 1
                _, subj, with_hdr, data, ttl = op
                hdr = b"NATS/1.0\r\nK: v\r\n\r\n" if with_hdr else b""
                assert mem.store_msg(subj, hdr, data, ts=now, ttl=ttl) == fs.store_msg(subj, hdr, data, ts=now, ttl=ttl)
            elif kind == "remove":
                assert mem.remove_msg(op[1], op[2]) == fs.remove_msg(op[1], op[2])
            elif kind == "purge":
                assert mem.purge(op[1], op[2], op[3]) == fs.purge(op[1], op[2], op[3])
            elif kind == "compact":
                assert mem.compact(op[1]) == fs.compact(op[1])
            elif kind == "skip":
                assert mem.skip_msg() == fs.skip_msg()
            elif kind == "expire":
                now += op[1]
                assert mem.expire(now) == fs.expire(now)
            elif kind == "limits":
                limits = StreamLimits(max_msgs=op[1], max_msgs_per_subject=op[2], max_age=op[3])
                mem.update_limits(limits)
                fs.update_limits(limits)
            elif kind == "reopen":
                fs.close()
                fs = open_file()
                assert fs.problems() == []
            elif kind == "flush":
                fs.flush()
            assert observe(mem) == observe(fs), op
        fs.close()
        fs = open_file()
        assert fs.problems() == []
        assert observe(mem) == observe(fs)
    except StoreError:
        raise
    finally:
        fs.close()
        shutil.rmtree(d, ignore_errors=True)
