"""Sublist: trie matching, queue grouping, pruning, the result cache, and a brute-force oracle."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actor_nats.protocol.subjects import is_literal, subject_matches
from actor_nats.protocol.sublist import (
    CACHE_MAX,
    EMPTY_RESULT,
    Sublist,
    SublistResult,
    _matching_keys,
    _pattern_regex,
)


class Sub:
    """Stand-in for the server's Subscription: identity-hashed, subject + queue."""

    __slots__ = ("subject", "queue", "name")

    def __init__(self, subject: bytes, queue: bytes | None = None, name: str = "") -> None:
        self.subject = subject
        self.queue = queue
        self.name = name

    def __repr__(self) -> str:
        return f"Sub({self.subject!r}, {self.queue!r}{', ' + self.name if self.name else ''})"


def psubs(r: SublistResult) -> set:
    return set(r.psubs)


def qgroups(r: SublistResult) -> dict[bytes, set]:
    out: dict[bytes, set] = {}
    for g in r.qsubs:
        assert g, "empty queue group in result"
        q = g[0].queue
        assert q not in out, f"queue {q!r} appears as two groups"
        assert all(s.queue == q for s in g)
        assert len(set(g)) == len(g)
        out[q] = set(g)
    return out


def oracle(subs, subject: bytes) -> tuple[set, dict[bytes, set]]:
    plain: set = set()
    groups: dict[bytes, set] = {}
    for s in subs:
        if subject_matches(s.subject, subject):
            if s.queue:
                groups.setdefault(s.queue, set()).add(s)
            else:
                plain.add(s)
    return plain, groups


def check(sl: Sublist, subs, subject: bytes) -> None:
    r = sl.match(subject)
    assert len(set(r.psubs)) == len(r.psubs), "plain sub listed twice"
    assert (psubs(r), qgroups(r)) == oracle(subs, subject), subject


# ---------------------------------------------------------------------------- unit cases


def test_empty():
    sl = Sublist()
    assert sl.match(b"foo") is EMPTY_RESULT
    assert sl.count == 0 and len(sl) == 0
    assert list(sl) == []


def test_plain_literal():
    sl = Sublist()
    a, b = Sub(b"foo.bar"), Sub(b"foo.baz")
    sl.insert(a)
    sl.insert(b)
    assert sl.match(b"foo.bar").psubs == (a,)
    assert sl.match(b"foo.baz").psubs == (b,)
    assert sl.match(b"foo").psubs == ()
    assert sl.match(b"foo.bar.baz") == EMPTY_RESULT
    assert sl.count == 2


def test_pwc():
    sl = Sublist()
    a, b, c = Sub(b"foo.*"), Sub(b"*.bar"), Sub(b"*")
    for s in (a, b, c):
        sl.insert(s)
    assert psubs(sl.match(b"foo.bar")) == {a, b}
    assert psubs(sl.match(b"foo.baz")) == {a}
    assert psubs(sl.match(b"x.bar")) == {b}
    assert psubs(sl.match(b"foo")) == {c}
    assert psubs(sl.match(b"foo.bar.baz")) == set()


def test_fwc():
    sl = Sublist()
    a, b, c = Sub(b"foo.>"), Sub(b">"), Sub(b"foo.*.>")
    for s in (a, b, c):
        sl.insert(s)
    assert psubs(sl.match(b"foo")) == {b}
    assert psubs(sl.match(b"foo.bar")) == {a, b}
    assert psubs(sl.match(b"foo.bar.baz")) == {a, b, c}
    assert psubs(sl.match(b"bar.baz")) == {b}


def test_mixed_and_same_subject_twice():
    sl = Sublist()
    patterns = [b"a.b.c", b"a.b.c", b"a.*.c", b"a.>", b"*.b.>", b"*.*.*", b"a.b"]
    subs = [Sub(p) for p in patterns]
    for s in subs:
        sl.insert(s)
    for subject in (b"a.b.c", b"a.b", b"a.x.c", b"x.b.c", b"a.b.c.d", b"a", b"x.y.z"):
        check(sl, subs, subject)
    # two distinct subscriptions on one subject are two deliveries
    assert len([s for s in sl.match(b"a.b.c").psubs if s.subject == b"a.b.c"]) == 2


def test_queue_groups_merge_across_subjects():
    sl = Sublist()
    q1 = Sub(b"foo.bar", b"q")
    q2 = Sub(b"foo.*", b"q")
    q3 = Sub(b"foo.>", b"q")
    r1 = Sub(b"foo.bar", b"r")
    p = Sub(b"foo.bar")
    for s in (q1, q2, q3, r1, p):
        sl.insert(s)
    r = sl.match(b"foo.bar")
    assert r.psubs == (p,)
    assert qgroups(r) == {b"q": {q1, q2, q3}, b"r": {r1}}
    assert len(r.qsubs) == 2
    r = sl.match(b"foo.bar.baz")
    assert qgroups(r) == {b"q": {q3}}
    assert r.psubs == ()


def test_queue_and_plain_on_same_subject_are_separate():
    sl = Sublist()
    p, q = Sub(b"foo"), Sub(b"foo", b"g")
    sl.insert(p)
    sl.insert(q)
    r = sl.match(b"foo")
    assert r.psubs == (p,)
    assert r.qsubs == ((q,),)
    assert sl.remove(q)
    assert sl.match(b"foo") == SublistResult((p,), ())


def test_empty_queue_name_is_plain():
    sl = Sublist()
    s = Sub(b"foo", b"")
    sl.insert(s)
    assert sl.match(b"foo") == SublistResult((s,), ())


def test_duplicate_insert_is_a_noop():
    sl = Sublist()
    s, q = Sub(b"foo.*"), Sub(b"foo.*", b"g")
    for _ in range(3):
        sl.insert(s)
        sl.insert(q)
    assert sl.count == 2
    gen = sl.generation
    sl.insert(s)
    assert sl.generation == gen
    r = sl.match(b"foo.x")
    assert r.psubs == (s,) and r.qsubs == ((q,),)
    assert sl.remove(s) and sl.remove(q)
    assert sl.count == 0
    assert sl.match(b"foo.x") == EMPTY_RESULT
    assert not sl.remove(s)


def test_remove_missing_returns_false():
    sl = Sublist()
    a = Sub(b"foo.bar")
    assert not sl.remove(a)
    sl.insert(a)
    assert not sl.remove(Sub(b"foo.bar"))  # same subject, different object
    assert not sl.remove(Sub(b"foo.bar", b"q"))
    assert not sl.remove(Sub(b"foo.*"))
    assert not sl.remove(Sub(b"foo..bar"))
    assert sl.remove(a)
    assert not sl.remove(a)
    assert sl.count == 0


def test_remove_prunes_empty_nodes():
    sl = Sublist()
    subs = [Sub(b"a.b.c.d"), Sub(b"a.*.c"), Sub(b"a.>"), Sub(b"x.y", b"q"), Sub(b"*.*.>")]
    for s in subs:
        sl.insert(s)
    for s in subs:
        assert sl.remove(s)
    root = sl._root
    assert root.children == {} and root.pwc is None and root.fwc is None
    assert root.is_empty()


def test_remove_prunes_only_empty_branch():
    sl = Sublist()
    keep, drop = Sub(b"a.b"), Sub(b"a.b.c.d")
    sl.insert(keep)
    sl.insert(drop)
    sl.remove(drop)
    node_b = sl._root.children[b"a"].children[b"b"]
    assert node_b.children == {}
    assert sl.match(b"a.b").psubs == (keep,)


def test_insert_rejects_invalid_subject():
    sl = Sublist()
    for bad in (b"", b"foo.", b"foo..bar", b"foo.>.bar", b"foo bar"):
        with pytest.raises(ValueError):
            sl.insert(Sub(bad))
    assert sl.count == 0 and sl.generation == 0


def test_invalid_publish_subjects_match_nothing():
    sl = Sublist()
    sl.insert(Sub(b">"))
    sl.insert(Sub(b"foo.*"))
    for bad in (b"", b".", b"foo.", b".foo", b"foo..bar"):
        assert sl.match(bad) is EMPTY_RESULT
    assert sl.stats()["num_cache"] == 0


def test_wildcard_tokens_in_published_subject_are_ordinary_tokens():
    sl = Sublist()
    star, lit, fwc = Sub(b"foo.*"), Sub(b"foo.bar"), Sub(b"foo.>")
    for s in (star, lit, fwc):
        sl.insert(s)
    assert psubs(sl.match(b"foo.*")) == {star, fwc}
    assert psubs(sl.match(b"foo.>")) == {star, fwc}


def test_generation_bumps_on_every_change():
    sl = Sublist()
    a, b = Sub(b"a"), Sub(b"b.*")
    g0 = sl.generation
    sl.insert(a)
    g1 = sl.generation
    sl.insert(b)
    g2 = sl.generation
    sl.remove(a)
    g3 = sl.generation
    assert g0 < g1 < g2 < g3
    sl.remove(a)  # absent: no change
    sl.match(b"b.x")
    assert sl.generation == g3
    sl.remove_batch([b])
    assert sl.generation > g3


def test_iteration_and_contains():
    sl = Sublist()
    subs = [Sub(b"a"), Sub(b"a.*"), Sub(b"a.>", b"q"), Sub(b"a.b", b"q"), Sub(b"a.b")]
    for s in subs:
        sl.insert(s)
    assert set(sl) == set(subs) == set(sl.all_subs())
    assert len(sl.all_subs()) == 5
    assert all(s in sl for s in subs)
    assert Sub(b"a") not in sl
    assert Sub(b"zzz.*") not in sl


def test_remove_batch():
    sl = Sublist()
    subs = [Sub(b"a.b"), Sub(b"a.*"), Sub(b"a.>", b"q"), Sub(b"c"), Sub(b"*.d")]
    for s in subs:
        sl.insert(s)
    for subj in (b"a.b", b"a.x", b"c", b"x.d", b"a.d"):
        sl.match(subj)
    stranger = Sub(b"a.b")
    assert sl.remove_batch([subs[0], subs[1], subs[2], stranger, subs[0]]) == 3
    rest = subs[3:]
    assert sl.count == 2
    for subj in (b"a.b", b"a.x", b"c", b"x.d", b"a.d"):
        check(sl, rest, subj)
    assert sl.remove_batch([]) == 0


# ---------------------------------------------------------------------------- cache


def test_cache_hit_returns_same_object():
    sl = Sublist()
    sl.insert(Sub(b"foo"))
    r1 = sl.match(b"foo")
    r2 = sl.match(b"foo")
    assert r1 is r2
    st_ = sl.stats()
    assert st_["num_matches"] == 2 and st_["cache_hit_rate"] == 0.5 and st_["num_cache"] == 1


def test_cache_updated_on_insert_and_remove():
    sl = Sublist()
    a = Sub(b"foo.bar")
    sl.insert(a)
    subjects = [b"foo.bar", b"foo.baz", b"foo.bar.baz", b"other", b"foo"]
    for s in subjects:
        sl.match(s)
    assert sl.stats()["num_cache"] == len(subjects)

    current = [a]
    for new in (Sub(b"foo.*"), Sub(b"foo.*", b"q"), Sub(b"foo.bar", b"q"), Sub(b">"), Sub(b"foo.>", b"r")):
        sl.insert(new)
        current.append(new)
        for s in subjects:
            check(sl, current, s)
    # Inserts update entries in place: nothing was dropped.
    assert sl.stats()["num_cache"] == len(subjects)
    for old in list(current):
        sl.remove(old)
        current.remove(old)
        for s in subjects:
            check(sl, current, s)


def test_cache_update_joins_existing_queue_group():
    sl = Sublist()
    q1, r1, s1 = Sub(b"foo.bar", b"q"), Sub(b"foo.bar", b"r"), Sub(b"foo.bar", b"s")
    for s in (q1, r1, s1):
        sl.insert(s)
    sl.match(b"foo.bar")
    current = [q1, r1, s1]
    for new in (Sub(b"foo.*", b"r"), Sub(b"foo.>", b"q"), Sub(b"foo.bar", b"s"), Sub(b"*.bar", b"t")):
        sl.insert(new)
        current.append(new)
        assert b"foo.bar" in sl._cache  # updated in place
        check(sl, current, b"foo.bar")
    assert len(sl.match(b"foo.bar").qsubs) == 4


def cached_match(sl: Sublist, subject: bytes):
    """Match twice: a subject matched through a wildcard is cached on its second miss."""
    sl.match(subject)
    return sl.match(subject)


def test_wildcard_matches_are_cached_on_the_second_miss():
    sl = Sublist()
    sl.insert(Sub(b"orders.>"))
    sl.insert(Sub(b"_INBOX.abc.*"))
    sl.match(b"orders.1")
    assert not sl.cached(b"orders.1")
    sl.match(b"orders.1")
    assert sl.cached(b"orders.1")
    for i in range(3 * CACHE_MAX):  # unique replies never enter the cache, so never evict
        assert sl.match(b"_INBOX.abc.%d" % i).psubs
    assert sl.cached(b"orders.1") and sl.stats()["num_cache"] == 1


def test_a_prefix_that_decides_the_match_answers_longer_subjects():
    """`$JS.ACK.S.C.>` decides every ack subject after five tokens: after one such subject
    missed, the next ones are answered from the prefix (same result object, nothing cached),
    except tails with an empty token, and nothing survives a change to the index."""
    sl = Sublist()
    ack = Sub(b"$JS.ACK.S.C.>")
    sl.insert(ack)
    first = sl.match(b"$JS.ACK.S.C.1.5.5.99.0")
    assert first.psubs == (ack,)
    assert sl.match(b"$JS.ACK.S.C.1.6.6.99.0") is first
    assert sl.match(b"$JS.ACK.S.C.1.7") is first
    for bad in (b"$JS.ACK.S.C.1..7", b"$JS.ACK.S.C.1.7.", b"$JS.ACK.S.C.1.", b"$JS.ACK.S.C..1"):
        assert sl.match(bad) == EMPTY_RESULT
    assert sl.stats()["num_cache"] == 0
    assert sl.match(b"$JS.ACK.S.D.1.2") == EMPTY_RESULT
    other = Sub(b"$JS.ACK.S.C.1.*")
    sl.insert(other)
    assert set(sl.match(b"$JS.ACK.S.C.1.8").psubs) == {ack, other}
    assert sl.match(b"$JS.ACK.S.C.1.8.9").psubs == (ack,)
    sl.remove(other)
    sl.remove(ack)
    assert sl.match(b"$JS.ACK.S.C.1.9.9") == EMPTY_RESULT


def test_literal_insert_touches_only_its_own_entry():
    sl = Sublist()
    sl.insert(Sub(b"x.*"))
    r_other = cached_match(sl, b"x.other")
    cached_match(sl, b"x.y")
    new = Sub(b"x.y")
    sl.insert(new)
    assert sl.match(b"x.other") is r_other
    assert new in sl.match(b"x.y").psubs


def test_remove_drops_only_matching_entries():
    sl = Sublist()
    keep, gone = Sub(b"a.*"), Sub(b"b.*")
    sl.insert(keep)
    sl.insert(gone)
    ra = cached_match(sl, b"a.1")
    cached_match(sl, b"b.1")
    sl.remove(gone)
    assert sl.stats()["num_cache"] == 1
    assert sl.match(b"a.1") is ra
    assert sl.match(b"b.1") == EMPTY_RESULT


def test_cache_is_bounded_and_evicts_a_chunk():
    sl = Sublist()
    sl.insert(Sub(b"s.*"))
    for i in range(CACHE_MAX):
        cached_match(sl, b"s.%d" % i)
    assert sl.stats()["num_cache"] == CACHE_MAX
    cached_match(sl, b"s.new")
    n = sl.stats()["num_cache"]
    assert CACHE_MAX // 2 < n < CACHE_MAX  # a chunk went, not everything
    # the newest entries survived
    assert b"s.new" in sl._cache and b"s.%d" % (CACHE_MAX - 1) in sl._cache
    for i in range(3 * CACHE_MAX):
        cached_match(sl, b"s.x%d" % i)
        assert sl.stats()["num_cache"] <= CACHE_MAX


def test_cache_disabled():
    sl = Sublist(cache_size=0)
    a = Sub(b"foo")
    sl.insert(a)
    assert sl.match(b"foo").psubs == (a,)
    assert sl.stats()["num_cache"] == 0


def test_stats_fields():
    sl = Sublist()
    subs = [Sub(b"a"), Sub(b"a", b"q"), Sub(b"a", b"q"), Sub(b"*"), Sub(b"b")]
    for s in subs:
        sl.insert(s)
    sl.remove(subs[-1])
    sl.match(b"a")  # matched through `*`: cached on the second miss, a hit the third time
    sl.match(b"a")
    sl.match(b"a")
    sl.match(b"c")
    sl.match(b"c")
    st_ = sl.stats()
    assert set(st_) == {
        "num_subscriptions",
        "num_cache",
        "num_inserts",
        "num_removes",
        "num_matches",
        "cache_hit_rate",
        "max_fanout",
        "avg_fanout",
    }
    assert st_["num_subscriptions"] == 4
    assert st_["num_inserts"] == 5 and st_["num_removes"] == 1
    assert st_["num_matches"] == 5
    assert st_["cache_hit_rate"] == pytest.approx(1 / 5)
    assert st_["num_cache"] == 2
    assert st_["max_fanout"] == 3  # a: two plain + one queue group
    assert st_["avg_fanout"] == pytest.approx((3 + 1) / 2)


# ---------------------------------------------------------------------------- properties

TOKENS = [b"a", b"b", b"c"]
pattern_tokens = st.sampled_from(TOKENS + [b"*"])
patterns = st.builds(
    lambda toks, fwc: b".".join(toks + ([b">"] if fwc else [])),
    st.lists(pattern_tokens, min_size=0, max_size=4),
    st.booleans(),
).filter(bool)
# Published subjects: mostly plain tokens, sometimes a wildcard character used as a token.
literals = st.lists(st.sampled_from(TOKENS * 3 + [b"*", b">"]), min_size=1, max_size=5).map(b".".join)
plain_literals = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5).map(b".".join)
queues = st.sampled_from([None, None, b"q", b"r"])


@given(patterns, literals)
def test_cache_key_matcher_agrees_with_subject_matches(pattern, literal):
    expected = subject_matches(pattern, literal)
    assert (re.fullmatch(_pattern_regex(pattern), literal, re.DOTALL) is not None) == expected
    if not is_literal(pattern):
        assert _matching_keys([literal, b"zz.top"], pattern) == [literal] * expected + [b"zz.top"] * (
            subject_matches(pattern, b"zz.top")
        )


class SublistMachine(RuleBasedStateMachine):
    """Random interleavings of insert / remove / remove_batch / match against a brute-force oracle."""

    @initialize(cache_size=st.sampled_from([0, 1, 4, CACHE_MAX]))
    def setup(self, cache_size):
        self.sl = Sublist(cache_size=cache_size)
        self.subs: list[Sub] = []

    @rule(pattern=patterns, queue=queues)
    def insert(self, pattern, queue):
        s = Sub(pattern, queue)
        self.sl.insert(s)
        self.subs.append(s)

    @precondition(lambda self: self.subs)
    @rule(data=st.data())
    def reinsert(self, data):
        s = data.draw(st.sampled_from(self.subs))
        gen = self.sl.generation
        self.sl.insert(s)
        assert self.sl.generation == gen

    @precondition(lambda self: self.subs)
    @rule(data=st.data())
    def remove(self, data):
        s = data.draw(st.sampled_from(self.subs))
        assert self.sl.remove(s)
        self.subs.remove(s)

    @rule(pattern=patterns, queue=queues)
    def remove_absent(self, pattern, queue):
        assert not self.sl.remove(Sub(pattern, queue))

    @precondition(lambda self: self.subs)
    @rule(data=st.data())
    def remove_batch(self, data):
        batch = data.draw(st.lists(st.sampled_from(self.subs), max_size=4))
        extra = [Sub(b"a.*")]
        expected = len(set(batch))
        assert self.sl.remove_batch(batch + extra) == expected
        for s in set(batch):
            self.subs.remove(s)

    @rule(subject=literals)
    def match(self, subject):
        check(self.sl, self.subs, subject)

    @rule(subject=plain_literals)
    def match_twice(self, subject):
        check(self.sl, self.subs, subject)
        check(self.sl, self.subs, subject)

    @invariant()
    def counts(self):
        if not hasattr(self, "sl"):
            return
        assert self.sl.count == len(self.subs)
        assert self.sl.stats()["num_subscriptions"] == len(self.subs)

    def teardown(self):
        if not hasattr(self, "sl"):
            return
        assert set(self.sl) == set(self.subs)
        # Every cached entry still equals a fresh walk of the trie.
        for subject in list(self.sl._cache):
            r = self.sl._cache[subject]
            assert (psubs(r), qgroups(r)) == oracle(self.subs, subject)
        for s in list(self.subs):
            self.sl.remove(s)
        assert self.sl._root.is_empty()


TestSublistMachine = SublistMachine.TestCase
TestSublistMachine.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(patterns, queues), max_size=12),
    st.lists(literals, min_size=1, max_size=8),
)
def test_match_equals_oracle(entries, subjects):
    sl = Sublist()
    subs = [Sub(p, q) for p, q in entries]
    for s in subs:
        sl.insert(s)
    for subject in subjects:
        check(sl, subs, subject)  # miss
        check(sl, subs, subject)  # hit
