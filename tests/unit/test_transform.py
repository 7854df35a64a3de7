"""protocol/transform.py: subject transforms (the mapping functions and the reference's refusals),
weighted mappings and the account mapping table. Expected values were observed on nats-server
2.15.1 (see tests/wire/test_mappings.py, which checks the same against both servers)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actor_nats.protocol import jsapi
from actor_nats.protocol.transform import (Choice, MapDest, Mapping, MappingSpec, SubjectMapper,
                                           SubjectTransform, TransformError, tokenize_wildcards,
                                           validate_mapping)


@pytest.mark.parametrize("src, dest, subject, out", [
    ("foo", "bar", "foo", "bar"),
    ("a.*.*", "b.$2.$1", "a.x.y", "b.y.x"),
    ("a.*.*", "b.$1", "a.x.y", "b.x"),  # not every wildcard needs to be used
    ("a.*", "b.{{wildcard(1)}}", "a.x", "b.x"),
    ("a.*", "b.{{ Wildcard( 1 ) }}", "a.x", "b.x"),
    ("a.*.>", "b.$1.>", "a.x.y.z", "b.x.y.z"),
    ("a.>", "b.>", "a.x", "b.x"),
    ("", "p.>", "x.y", "p.x.y"),  # no source: `>`
    ("a.*.*", "o.{{partition(10,1,2)}}.{{partition(3)}}", "a.k1.k2", "o.2.0"),
    ("a.*.*", "o.{{partition(10,1,2)}}.{{partition(3)}}", "a.a.b", "o.6.0"),
    ("a.*", "o.{{partition(0,1)}}", "a.x", "o.0"),
    ("a.*", "o.{{split(1,-)}}", "a.-ab--cd-", "o.ab.cd"),
    ("a.*", "o.{{split(1, )}}", "a.abc", "o.a.b.c"),  # an empty delimiter splits characters
    ("a.*", "o.{{splitfromleft(1,2)}}", "a.abcde", "o.ab.cde"),
    ("a.*", "o.{{splitfromleft(1,2)}}", "a.ab", "o.ab"),
    ("a.*", "o.{{SplitFromRight(1,2)}}", "a.abcde", "o.abc.de"),
    ("a.*", "o.{{slicefromleft(1,3)}}", "a.abcdefgh", "o.abc.def.gh"),
    ("a.*", "o.{{slicefromleft(1,3)}}", "a.abcdef", "o.abc.def"),
    ("a.*", "o.{{SliceFromRight(1,3)}}", "a.abcdefgh", "o.ab.cde.fgh"),
    ("a.*", "o.{{SliceFromRight(1,3)}}", "a.abc", "o.abc"),
    ("a.*", "o.{{left(1,2)}}", "a.abcde", "o.ab"),
    ("a.*", "o.{{left(1,0)}}", "a.abcde", "o.abcde"),
    ("a.*", "o.{{right(1,2)}}", "a.abcde", "o.de"),
    ("a.*", "o.$0.{{wildcard(-1)}}.$x.{{}}", "a.q", "o.a.a.$x.{{}}"),
    ("a.*", "o.{{random(0)}}", "a.q", "o.0"),
])
def test_transform(src, dest, subject, out):
    validate_mapping(src, dest)
    assert SubjectTransform(src, dest).apply(subject) == out


def test_transform_does_not_apply_to_other_subjects():
    tr = SubjectTransform("a.*", "b.$1")
    assert tr.apply("a") is None and tr.apply("a.b.c") is None and tr.apply("x.y") is None
    assert tr.apply("a.*") == "b.*"  # a published `*` token matches only a `*`


def test_empty_destination_is_the_subject_when_it_matches():
    tr = SubjectTransform("a.>", "")
    assert tr.apply("a.b") == "a.b" and tr.apply("b") is None


def test_random_stays_below_its_bound():
    tr = SubjectTransform("a", "r.{{random(4)}}")
    assert tr.random
    assert {tr.apply("a") for _ in range(500)} == {f"r.{i}" for i in range(4)}


@pytest.mark.parametrize("src, dest, error", [
    ("foo.*", "bar.$2", "invalid mapping destination: wildcard index out of range in $2: [2]"),
    ("foo", "bar.*", "invalid subject"),
    ("foo.>", "bar", "invalid subject"),
    ("foo", "bar.>", "invalid subject"),
    ("foo", "bar.$1", "invalid mapping destination: wildcard index out of range in $1"),
    ("foo", "b.{{wildcard(1)}}", "invalid mapping destination: wildcard index out of range in {{wildcard(1)}}"),
    ("a.*", "b.{{bogus(1)}}", "invalid mapping destination: unknown function in {{bogus(1)}}"),
    ("a.*", "b.{{ }}", "invalid mapping destination: unknown function in {{ }}"),
    ("a.*", "b.{{wildcard()}}", "invalid mapping destination: not enough arguments passed to the function "
                                "in {{wildcard()}}"),
    ("a.*", "b.{{wildcard(1,2)}}", "invalid mapping destination: too many arguments passed to the function "
                                   "in {{wildcard(1,2)}}"),
    ("a.*", "b.{{wildcard(x)}}", "invalid mapping destination: function argument is invalid or in the wrong "
                                 "format in {{wildcard(x)}}"),
    ("a.*", "b.{{partition(3,2)}}", "invalid mapping destination: wildcard index out of range in "
                                    "{{partition(3,2)}}: [2]"),
    ("a.*", "b.{{partition(99999999999)}}", "invalid mapping destination: function argument is invalid or "
                                            "in the wrong format in {{partition(99999999999)}}"),
    ("a.*", "b.{{split(1)}}", "invalid mapping destination: not enough arguments passed to the function "
                              "in {{split(1)}}"),
    ("a.*", "b.{{split(1,x y)}}", "invalid mapping destination: function argument is invalid or in the "
                                  "wrong format in {{split(1,x y)}}"),
    ("a.*", "b.{{left(1,99999999999)}}", "invalid mapping destination: function argument is invalid or in "
                                         "the wrong format in {{left(1,99999999999)}}"),
    ("a.*", "b.{{random(1,2)}}", "invalid mapping destination: not enough arguments passed to the function "
                                 "in {{random(1,2)}}"),
    ("a.*", "b..c", "invalid mapping destination: invalid transform"),
    ("a.>", "b.>.c", "invalid mapping destination: invalid transform in c"),
    ("a.*", "b.$1 x", "invalid mapping destination: invalid transform"),
])
def test_refused_as_the_reference(src, dest, error):
    with pytest.raises(TransformError) as e:
        validate_mapping(src, dest)
    assert str(e.value) == error


def test_strict_transforms_allow_only_wildcards_and_use_them_all():
    with pytest.raises(TransformError, match=r"only mapping function allowed for import transforms "
                                             r"is \{\{Wildcard\(\)\}\} in \{\{left\(1,2\)\}\}"):
        SubjectTransform("a.*", "b.{{left(1,2)}}", strict=True)
    with pytest.raises(TransformError, match=r"not using all of the token wildcard\(s\) in b\.\$1"):
        SubjectTransform("a.*.*", "b.$1", strict=True)
    assert SubjectTransform("a.*.*", "b.$2.$1", strict=True).apply("a.x.y") == "b.y.x"


def test_streams_use_the_same_transform():
    assert jsapi.SubjectTransform is SubjectTransform
    assert not jsapi._valid_transform("a.*", "b.{{wildcard(x)}}")  # refused, not a crash later
    assert jsapi._valid_transform("a.*", "b.{{wildcard(1)}}")


@given(st.lists(st.text("abcxyz-_0123456789", min_size=1, max_size=6), min_size=2, max_size=6))
def test_tokenized_wildcards_map_a_subject_onto_itself(tokens):
    src = "p.*.>"
    subject = "p." + ".".join(tokens)
    assert SubjectTransform(src, tokenize_wildcards(src)).apply(subject) == subject


# --- weighted mappings -------------------------------------------------------------------------

def weights(m: Mapping) -> list:
    return [(d["subject"], d["weight"], d.get("cluster", "")) for d in m.display()]


def test_weights_are_cumulative_lightest_first():
    m = Mapping("w", [MapDest("a", 60), MapDest("b", 40)])
    assert weights(m) == [("b", 40, ""), ("a", 100, "")]


def test_the_rest_keeps_the_subject_unless_the_source_is_listed():
    assert weights(Mapping("r", [MapDest("r1", 30)])) == [("r1", 30, ""), ("r", 100, "")]
    assert weights(Mapping("w.*", [MapDest("w.$1.a", 30)])) == [("w.$1.a", 30, ""), ("w.$1", 100, "")]
    assert weights(Mapping("l", [MapDest("l", 30), MapDest("o", 20)])) == [("o", 20, ""), ("l", 50, "")]
    assert weights(Mapping("e", [])) == [("e", 100, "")]


def test_cluster_scoped_destinations_are_only_shown():
    m = Mapping("c", [MapDest("c1", 100, "east"), MapDest("all", 40)])
    assert weights(m) == [("all", 40, ""), ("c", 100, ""), ("c1", 100, "east")]
    assert {SubjectMapper([MappingSpec("c", (MapDest("c1", 100, "east"),))]).select(b"c")} == {b"c"}


@pytest.mark.parametrize("dests, error", [
    ([MapDest("a", 50), MapDest("a", 10)], 'duplicate entry for "a"'),
    ([MapDest("a", 60), MapDest("b", 50)], "total weight needs to be <= 100"),
    ([MapDest("a", 101)], "individual weights need to be <= 100"),
    ([MapDest("a.*", 100)], "invalid subject"),
])
def test_mapping_refusals(dests, error):
    with pytest.raises(TransformError) as e:
        Mapping("src", dests)
    assert str(e.value) == error


def test_weights_add_up_per_cluster():
    Mapping("s", [MapDest("a", 60, "east"), MapDest("b", 60, "west")])


# --- the account table -------------------------------------------------------------------------

def mapper(*pairs) -> SubjectMapper:
    return SubjectMapper([MappingSpec(src, tuple(d if isinstance(d, MapDest) else MapDest(d, 100)
                                                  for d in dests)) for src, dests in pairs])


def test_literal_first_then_wildcards_in_order():
    m = mapper(("foo.>", ["gt.>"]), ("foo.bar", ["lit"]), ("foo.*", ["star.$1"]))
    assert m.select(b"foo.bar") == b"lit"
    assert m.select(b"foo.x") == b"gt.x"
    assert m.select(b"other") is None


def test_resolve_is_a_subject_when_always_the_same_else_a_choice():
    m = mapper(("a", ["b"]), ("r", ["x.{{random(3)}}"]), ("w", [MapDest("w1", 50), MapDest("w2", 50)]))
    assert m.resolve(b"a") == b"b"
    assert isinstance(m.resolve(b"r"), Choice) and isinstance(m.resolve(b"w"), Choice)
    assert m.resolve(b"zzz") is None


def test_weighted_choice_draws_each_destination():
    random.seed(7)
    choice = mapper(("w", [MapDest("w1", 50), MapDest("w2", 50)])).resolve(b"w")
    got = Counter(choice.pick() for _ in range(1000))
    assert set(got) == {b"w1", b"w2"} and 400 < got[b"w1"] < 600


def test_listed_source_below_100_drops_the_rest():
    random.seed(7)
    got = Counter(mapper(("l", [MapDest("l", 30)])).select(b"l") for _ in range(1000))
    assert set(got) == {b"l", b""} and got[b""] > 500


def test_literal_partition_hashes_the_empty_key_and_wildcards_the_subject():
    m = mapper(("lit", ["o.{{partition(3)}}"]), ("w.*", ["o.{{partition(3)}}"]))
    assert m.select(b"lit") == b"o.1"  # FNV-1a of "" mod 3, as the reference's literal path
    assert m.select(b"w.x") == SubjectTransform("w.*", "o.{{partition(3)}}").apply("w.x").encode()


def test_lengths_count_bytes():
    m = mapper(("l.*", ["o.{{left(1,2)}}"]), ("r.*", ["o.{{right(1,1)}}"]))
    assert m.select("l.\u00e9x".encode()) == "o.\u00e9".encode()  # two bytes: one character
    assert m.select("r.x\u00e9".encode()) == b"o.\xa9"


def test_empty_destination_keeps_the_subject():
    assert mapper(("e", [""]), ("e.*", [""])).select(b"e") == b"e"
    assert mapper(("e.*", [""])).select(b"e.x") == b"e.x"


def test_a_mapper_without_mappings_is_false():
    assert not SubjectMapper([]) and mapper(("a", ["b"]))
    assert mapper(("a", ["b"])).display() == {"a": [{"subject": "b", "weight": 100}]}
