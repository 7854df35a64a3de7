"""Subject syntax: validation, literal checks and a reference wildcard matcher.

Owns the rules of NATS.md §1.6: a subject is tokens separated by `.`; tokens are non-empty and
hold no whitespace (space, \\t, \\r, \\n, \\f); `*` (one token) and `>` (one or more trailing
tokens) are wildcards only as whole tokens, and `>` only as the last token.

Subjects are bytes throughout (they are sliced straight out of the read buffer). Everything here
is pure and cheap: the validators are one precompiled regex scan, no splitting. `subject_matches`
is the brute-force matcher that the Sublist trie is tested against; it is not the routing path.
"""

from __future__ import annotations

import re

__all__ = [
    "valid_subject",
    "valid_literal_subject",
    "is_literal",
    "subject_matches",
    "first_token",
]

PWC = b"*"
FWC = b">"

# One token: no dot, no whitespace. A token may not be the bare `>` when a dot follows it.
_TOKEN = rb"[^. \t\r\n\f]+"
_VALID = re.compile(rb"(?:(?!>\.)" + _TOKEN + rb"\.)*" + _TOKEN).fullmatch
# A token that is not a bare wildcard (`*` or `>` followed by a dot or the end).
_LITERAL_TOKEN = rb"(?![*>](?:\.|\Z))" + _TOKEN
_VALID_LITERAL = re.compile(rb"(?:" + _LITERAL_TOKEN + rb"\.)*" + _LITERAL_TOKEN).fullmatch
# Finds a whole-token wildcard anywhere.
_WILDCARD_TOKEN = re.compile(rb"(?:\A|\.)[*>](?:\.|\Z)").search


def valid_subject(s: bytes) -> bool:
    """True if `s` is acceptable as a SUB subject (wildcards allowed)."""
    return _VALID(s) is not None


def valid_literal_subject(s: bytes) -> bool:
    """True if `s` is a valid subject with no wildcard tokens (pedantic PUB check)."""
    return _VALID_LITERAL(s) is not None


def is_literal(s: bytes) -> bool:
    """True if no token of `s` is a bare `*` or `>` (does not check the rest of the syntax)."""
    if b"*" not in s and b">" not in s:
        return True
    return _WILDCARD_TOKEN(s) is None


def subject_matches(pattern: bytes, literal: bytes) -> bool:
    """Brute-force: does the (valid) `pattern` match the published subject `literal`?

    A `*` or `>` token inside `literal` is an ordinary token here, as in the Sublist: pattern
    wildcards match it, a literal pattern token does not. A `literal` with an empty token (the
    Sublist never matches those) matches nothing.
    """
    if b"*" not in pattern and b">" not in pattern:
        return pattern == literal
    ptoks = pattern.split(b".")
    ltoks = literal.split(b".")
    if b"" in ltoks:
        return False
    n = len(ltoks)
    for i, p in enumerate(ptoks):
        if p == FWC:
            return n > i
        if i >= n:
            return False
        if p != PWC and p != ltoks[i]:
            return False
    return len(ptoks) == n


def first_token(s: bytes) -> bytes:
    """The subject's first token (the whole subject if it has no dot)."""
    i = s.find(b".")
    return s if i < 0 else s[:i]


def subject_text(raw: bytes) -> str:
    """A subject from the wire as text, byte for byte: subjects are bytes, and bytes that are
    not UTF-8 survive the round trip (surrogateescape) instead of failing to decode."""
    return raw.decode("utf-8", "surrogateescape")


def subject_bytes(text: str) -> bytes:
    """The inverse of subject_text."""
    return text.encode("utf-8", "surrogateescape")
