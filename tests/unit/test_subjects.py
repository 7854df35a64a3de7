"""Subject syntax (NATS.md §1.6): validation tables, literal checks, the reference matcher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actor_nats.protocol.subjects import (
    first_token,
    is_literal,
    subject_matches,
    valid_literal_subject,
    valid_subject,
)

VALID_LITERAL = [
    b"foo",
    b"foo.bar",
    b"foo.bar.baz",
    b"foo*",
    b"*foo",
    b"foo.b*r",
    b"foo>",
    b">foo",
    b"foo.>>",
    b"foo.**",
    b"$SYS.REQ.SERVER.PING",
    b"_INBOX.abc123.9",
    b"a-b_c:d/e",
    b"\xc3\xa9t\xc3\xa9.caf\xc3\xa9",
    b"foo.*x.>y",
]

VALID_WILDCARD = [
    b"*",
    b">",
    b"foo.*",
    b"*.foo",
    b"foo.>",
    b"foo.*.>",
    b"*.*.*",
    b"*.>",
    b"foo.*.bar",
]

INVALID = [
    b"",
    b".",
    b"..",
    b".foo",
    b"foo.",
    b"foo..bar",
    b"foo.bar.",
    b"foo bar",
    b"foo\tbar",
    b"foo\rbar",
    b"foo\nbar",
    b"foo\fbar",
    b" foo",
    b"foo ",
    b"foo. .bar",
    b"foo.\t",
    b" ",
    b">.foo",
    b"foo.>.bar",
    b"foo.>.>",
    b">.>",
    b"foo.>.",
    b"*.",
    b".*",
    b".>",
]


@pytest.mark.parametrize("s", VALID_LITERAL + VALID_WILDCARD)
def test_valid_subject(s):
    assert valid_subject(s)


@pytest.mark.parametrize("s", INVALID)
def test_invalid_subject(s):
    assert not valid_subject(s)
    assert not valid_literal_subject(s)


@pytest.mark.parametrize("s", VALID_LITERAL)
def test_literal(s):
    assert valid_literal_subject(s)
    assert is_literal(s)


@pytest.mark.parametrize("s", VALID_WILDCARD)
def test_wildcard_is_not_literal(s):
    assert not valid_literal_subject(s)
    assert not is_literal(s)


def test_vertical_tab_is_not_whitespace_here():
    # The reference only rejects space, \t, \r, \n and \f.
    assert valid_subject(b"foo\x0bbar")


@pytest.mark.parametrize(
    "pattern, literal, expected",
    [
        (b"foo", b"foo", True),
        (b"foo", b"bar", False),
        (b"foo", b"foo.bar", False),
        (b"foo.bar", b"foo", False),
        (b"*", b"foo", True),
        (b"*", b"foo.bar", False),
        (b"foo.*", b"foo.bar", True),
        (b"foo.*", b"foo", False),
        (b"foo.*", b"foo.bar.baz", False),
        (b"*.bar", b"foo.bar", True),
        (b"*.bar", b"foo.baz", False),
        (b">", b"foo", True),
        (b">", b"foo.bar.baz", True),
        (b"foo.>", b"foo", False),
        (b"foo.>", b"foo.bar", True),
        (b"foo.>", b"foo.bar.baz", True),
        (b"foo.>", b"bar.baz", False),
        (b"foo.*.>", b"foo.bar", False),
        (b"foo.*.>", b"foo.bar.baz", True),
        (b"*.*", b"a.b", True),
        (b"*.*", b"a.b.c", False),
        (b"foo*", b"foo*", True),
        (b"foo*", b"foox", False),
        (b"foo.*", b"foo.*", True),  # a published `*` is an ordinary token
        (b"foo.bar", b"foo.*", False),
        (b"foo.>", b"foo.>", True),
        (b"foo.*", b"foo.", False),  # empty tokens never match
        (b">", b"foo..bar", False),
    ],
)
def test_subject_matches(pattern, literal, expected):
    assert subject_matches(pattern, literal) is expected


@pytest.mark.parametrize(
    "s, tok",
    [(b"foo", b"foo"), (b"foo.bar", b"foo"), (b"*.bar", b"*"), (b">", b">"), (b"a.b.c", b"a")],
)
def test_first_token(s, tok):
    assert first_token(s) == tok


# Reference implementations by splitting, for property tests.
_WS = set(b" \t\r\n\f")


def _ref_valid(s: bytes) -> bool:
    toks = s.split(b".")
    for i, t in enumerate(toks):
        if not t or any(c in _WS for c in t):
            return False
        if t == b">" and i != len(toks) - 1:
            return False
    return True


def _ref_literal(s: bytes) -> bool:
    return all(t not in (b"*", b">") for t in s.split(b"."))


SUBJECT_PIECES = [b"a", b"b", b".", b"*", b">", b" ", b"\t", b"\n", b"xy"]
subject_bytes = st.lists(st.sampled_from(SUBJECT_PIECES), max_size=8).map(b"".join)


@given(subject_bytes)
def test_validators_agree_with_reference(s):
    assert valid_subject(s) == _ref_valid(s)
    assert is_literal(s) == _ref_literal(s)
    assert valid_literal_subject(s) == (_ref_valid(s) and _ref_literal(s))
    assert first_token(s) == s.split(b".")[0]


@given(st.binary(max_size=12))
def test_validators_never_fail_on_any_bytes(s):
    assert valid_subject(s) == _ref_valid(s)
    assert valid_literal_subject(s) == (_ref_valid(s) and _ref_literal(s))
