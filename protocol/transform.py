"""Subject transforms and subject mappings, as the reference builds and applies them
(nats-server's subject_transform.go, and accounts.go AddWeightedMappings/selectMappedSubject).

Owns:
- `SubjectTransform(src, dest)`: a source subject (`*`, `>`; "" = `>`) mapped to a destination
  made of literal tokens, `>`, `$N` and the mapping functions `{{wildcard(n)}}`,
  `{{partition(buckets[, n...])}}`, `{{split(n, delim)}}`, `{{splitfromleft(n, pos)}}`,
  `{{splitfromright(n, pos)}}`, `{{slicefromleft(n, size)}}`, `{{slicefromright(n, size)}}`,
  `{{left(n, len)}}`, `{{right(n, len)}}`, `{{random(n)}}` (names matched as the reference's
  regular expressions do). The constructor refuses what the reference refuses, raising
  `TransformError` with its text; `apply(subject)` maps a subject (None: it does not match).
  Used by streams (subject_transform, republish, source transforms) and by mappings. A
  destination of "" is the subject unchanged.
- `validate_mapping(src, dest)`: the reference's ValidateMapping (what a mapping destination
  may look like) with its error texts.
- `MapDest`, `MappingSpec`: a mapping as configured (frozen, comparable: reload diffs them).
- `Mapping`: one source's weighted destinations (cumulative weights, the source itself added
  for the rest when the weights total less than 100, unless it is listed: then the rest is
  dropped). Cluster-scoped destinations are kept for display only: this server is in no
  cluster, and the reference uses them only on a server whose cluster name matches.
- `SubjectMapper`: an account's mappings, immutable. `resolve(subject)` says what a published
  subject becomes, in a form a caller can cache per subject: None (no mapping), the mapped
  subject (bytes), or a `Choice` (weighted or random destinations) whose `pick()` is called
  per message (b"" = dropped). A literal source is looked up first, then the wildcard sources
  in the order given (the reference tries its mappings in Go map order, which is random).

Subjects are tokens of bytes on the wire; the mapper works on them as latin-1 text, so lengths
and positions (`left`, `slicefromright`, ...) count bytes as the reference does. Pure: no I/O,
no clocks; `random` is the only source of randomness (`Choice.pick`, `{{random(n)}}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from random import random as _random
from typing import Iterable

from .subjects import valid_subject

__all__ = ["TransformError", "SubjectTransform", "validate_mapping", "tokenize_wildcards",
           "MapDest", "MappingSpec", "Mapping", "SubjectMapper", "Choice"]

# -- errors, with the reference's texts (errors.go) -------------------------------------------

BAD_SUBJECT = "invalid subject"
_DEST = "invalid mapping destination"
INVALID_TRANSFORM = _DEST + ": invalid transform"
NOT_USING_ALL_WILDCARDS = _DEST + ": not using all of the token wildcard(s)"
UNKNOWN_FUNCTION = _DEST + ": unknown function"
INDEX_OUT_OF_RANGE = _DEST + ": wildcard index out of range"
NOT_ENOUGH_ARGS = _DEST + ": not enough arguments passed to the function"
INVALID_ARG = _DEST + ": function argument is invalid or in the wrong format"
TOO_MANY_ARGS = _DEST + ": too many arguments passed to the function"
ONLY_WILDCARD_FOR_IMPORT = (_DEST + ": the only mapping function allowed for import transforms "
                            "is {{Wildcard()}}")


class TransformError(ValueError):
    """A source/destination pair the reference refuses; str() is its error text."""


def _dest_error(token: str, err: str) -> TransformError:
    return TransformError(f"{err} in {token}" if token else err)


# -- the mapping functions --------------------------------------------------------------------

NONE, PARTITION, WILDCARD, SPLIT_FROM_LEFT, SPLIT_FROM_RIGHT, SLICE_FROM_LEFT, SLICE_FROM_RIGHT, \
    SPLIT, LEFT, RIGHT, RANDOM = range(11)

_S = "[\t\n\f\r ]*"  # Go's \s


def _fn(name: str):
    letters = "".join(f"[{c.lower()}{c.upper()}]" if c.isupper() or i == 0 else c
                      for i, c in enumerate(name))
    return re.compile(r"\{\{" + _S + letters + _S + r"\((.*)\)" + _S + r"\}\}").search


# the reference's regular expressions (first letter and the capitals in either case), unanchored
_PARTITION = _fn("Partition")
_WILDCARD = _fn("Wildcard")
_SPLIT_FROM_LEFT = _fn("SplitFromLeft")
_SPLIT_FROM_RIGHT = _fn("SplitFromRight")
_SLICE_FROM_LEFT = _fn("SliceFromLeft")
_SLICE_FROM_RIGHT = _fn("SliceFromRight")
_SPLIT = _fn("Split")
_LEFT = _fn("Left")
_RIGHT = _fn("Right")
_RANDOM = _fn("Random")
_COMMA = re.compile(",[\t\n\f\r ]*")
_INT = re.compile(r"[+-]?[0-9]+").fullmatch
MAX_INT32 = 2**31 - 1


def _atoi(text: str, bits: int = 64) -> int:
    """Go's strconv.Atoi / ParseInt(text, 10, bits): ValueError for anything else."""
    if not _INT(text):
        raise ValueError(text)
    n = int(text)
    if not -(2 ** (bits - 1)) <= n < 2 ** (bits - 1):
        raise ValueError(text)
    return n


def _args(search, token: str) -> list | None:
    m = search(token)
    return _COMMA.split(m.group(1)) if m else None


def _index_int_args(token: str, args: list, kind: int) -> tuple:
    if len(args) < 2:
        raise _dest_error(token, NOT_ENOUGH_ARGS)
    if len(args) > 2:
        raise _dest_error(token, TOO_MANY_ARGS)
    try:
        index = _atoi(args[0].strip(" "))
        n = _atoi(args[1].strip(" "), 32)
    except ValueError:
        raise _dest_error(token, INVALID_ARG) from None
    return kind, [index], n, ""


def _placeholder(token: str) -> tuple:
    """(kind, wildcard indexes, int argument, string argument) of one destination token: the
    reference's indexPlaceHolders."""
    n = len(token)
    if n > 1:
        if token[0] == "$":  # the old $1 form; other tokens starting with $ are literal
            try:
                return WILDCARD, [_atoi(token[1:])], -1, ""
            except ValueError:
                return NONE, [-1], -1, ""
        if n > 4 and token[:2] == "{{" and token[-2:] == "}}":
            args = _args(_WILDCARD, token)
            if args is not None:
                if len(args) == 1 and args[0] == "":
                    raise _dest_error(token, NOT_ENOUGH_ARGS)
                if len(args) > 1:
                    raise _dest_error(token, TOO_MANY_ARGS)
                try:
                    return WILDCARD, [_atoi(args[0].strip(" "))], -1, ""
                except ValueError:
                    raise _dest_error(token, INVALID_ARG) from None
            args = _args(_PARTITION, token)
            if args is not None:
                try:
                    buckets = _atoi(args[0].strip(" "))
                    if buckets > MAX_INT32:
                        raise ValueError(args[0])
                    indexes = [_atoi(a.strip(" ")) for a in args[1:]]
                except ValueError:
                    raise _dest_error(token, INVALID_ARG) from None
                return PARTITION, indexes, buckets, ""
            for search, kind in ((_SPLIT_FROM_LEFT, SPLIT_FROM_LEFT), (_SPLIT_FROM_RIGHT, SPLIT_FROM_RIGHT),
                                 (_SLICE_FROM_LEFT, SLICE_FROM_LEFT), (_SLICE_FROM_RIGHT, SLICE_FROM_RIGHT),
                                 (_RIGHT, RIGHT), (_LEFT, LEFT)):
                args = _args(search, token)
                if args is not None:
                    return _index_int_args(token, args, kind)
            args = _args(_SPLIT, token)
            if args is not None:
                if len(args) < 2:
                    raise _dest_error(token, NOT_ENOUGH_ARGS)
                if len(args) > 2:
                    raise _dest_error(token, TOO_MANY_ARGS)
                try:
                    index = _atoi(args[0].strip(" "))
                except ValueError:
                    raise _dest_error(token, INVALID_ARG) from None
                if " " in args[1] or "." in args[1]:
                    raise _dest_error(token, INVALID_ARG)
                return SPLIT, [index], -1, args[1]
            args = _args(_RANDOM, token)
            if args is not None:
                if len(args) != 1:
                    raise _dest_error(token, NOT_ENOUGH_ARGS)
                try:
                    ceiling = _atoi(args[0].strip(" "))
                    if ceiling > MAX_INT32:
                        raise ValueError(args[0])
                except ValueError:
                    raise _dest_error(token, INVALID_ARG) from None
                return RANDOM, [], ceiling, ""
            raise _dest_error(token, UNKNOWN_FUNCTION)
    return NONE, [-1], -1, ""


def _subject_info(subject: str) -> tuple:
    """(valid, tokens, number of `*`, has `>`): the reference's subjectInfo."""
    if not subject:
        return False, [], 0, False
    tokens = subject.split(".")
    pwcs, fwc = 0, False
    for t in tokens:
        if not t or fwc:
            return False, [], 0, False
        if t == ">":
            fwc = True
        elif t == "*":
            pwcs += 1
    return True, tokens, pwcs, fwc


def subset_match(tokens: list, src_tokens: list) -> bool:
    """Do the published subject's `tokens` fall under the source `src_tokens`? (The
    reference's isSubsetMatchTokenized: a published `*` token matches only a `*`.)"""
    n = len(tokens)
    for i, t2 in enumerate(src_tokens):
        if i >= n or not t2:
            return False
        if t2 == ">":
            return True
        t1 = tokens[i]
        if not t1 or t1 == ">":
            return False
        if t1 == "*":
            if t2 != "*":
                return False
            continue
        if t2 != "*" and t1 != t2:
            return False
    return n == len(src_tokens)


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for c in data:
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


class SubjectTransform:
    """`src` -> `dest` (see the module docstring). Raises TransformError as the reference's
    NewSubjectTransform (strict: an import's transform, only `$N`/`{{wildcard(n)}}`, every
    wildcard used). `encoding` is how a partition key becomes bytes: "utf-8" for text, "latin-1"
    when the subjects are wire bytes decoded as latin-1 (SubjectMapper)."""

    __slots__ = ("src", "dest", "src_tokens", "dest_tokens", "ops", "random", "fwc", "encoding",
                 "uses_tokens")

    def __init__(self, src: str, dest: str, strict: bool = False, encoding: str = "utf-8"):
        self.src = src or ">"
        self.dest = dest
        self.encoding = encoding
        self.ops: list[tuple] = []  # (kind, token, source token indexes, int arg, str arg)
        self.random = False  # a {{random(n)}}: not the same subject each time
        self.src_tokens = self.src.split(".")
        self.dest_tokens = dest.split(".") if dest else []
        self.fwc = bool(self.dest_tokens) and self.dest_tokens[-1] == ">"
        if not dest:
            self.uses_tokens = False
            return
        sv, stokens, npwcs, has_fwc = _subject_info(self.src)
        dv, dtokens, dnpwcs, dhas_fwc = _subject_info(dest)
        if not sv or not dv or dnpwcs > 0 or has_fwc != dhas_fwc:
            raise TransformError(BAD_SUBJECT)
        ops = self.ops
        if npwcs > 0 or has_fwc:
            sti = {}  # wildcard number (from 1) -> source token index
            for i, tok in enumerate(stokens):
                if tok == "*":
                    sti[len(sti) + 1] = i
            placeholders = 0
            for token in dtokens:
                kind, indexes, iarg, sarg = _placeholder(token)
                if strict and kind not in (NONE, WILDCARD):
                    raise _dest_error(token, ONLY_WILDCARD_FOR_IMPORT)
                if kind == NONE or kind == RANDOM:
                    ops.append((kind, token, (), iarg, ""))
                    continue
                placeholders += len(indexes)
                positions = []
                for index in indexes:
                    if index > npwcs:
                        raise _dest_error(f"{token}: [{index}]", INDEX_OUT_OF_RANGE)
                    positions.append(sti.get(index, 0))  # $0, {{wildcard(-1)}}: the first token
                ops.append((kind, token, tuple(positions), iarg, sarg))
            if strict and placeholders < npwcs:
                raise _dest_error(dest, NOT_USING_ALL_WILDCARDS)
        else:  # a literal source: only random and partition (of the whole subject) make sense
            for token in dtokens:
                kind, _, iarg, _ = _placeholder(token)
                if kind in (NONE, RANDOM, PARTITION):
                    ops.append((kind, token, (), iarg, ""))
                else:
                    raise _dest_error(token, INDEX_OUT_OF_RANGE)
        self.random = any(op[0] == RANDOM for op in ops)
        self.uses_tokens = self.fwc or any(op[0] not in (NONE, RANDOM) for op in ops)

    def __repr__(self) -> str:
        return f"SubjectTransform({self.src!r}, {self.dest!r})"

    def matches(self, tokens: list) -> bool:
        return self.src == ">" or subset_match(tokens, self.src_tokens)

    def apply(self, subject: str) -> str | None:
        """The mapped subject, or None when `subject` does not match the source."""
        tokens = subject.split(".")
        if not self.matches(tokens):
            return None
        if not self.dest:
            return subject
        return self.transform_tokens(tokens)

    def transform_tokens(self, tokens: list) -> str:
        """The destination for a subject already known to match (the reference's
        TransformTokenizedSubject)."""
        out: list[str] = []
        write = out.append
        last = len(self.ops) - 1
        for i, (kind, token, pos, iarg, sarg) in enumerate(self.ops):
            if kind == NONE:
                if token == ">":
                    break
                write(token)
            elif kind == WILDCARD:
                if pos and len(tokens) > pos[0]:
                    write(tokens[pos[0]])
            elif kind == PARTITION:
                key = "".join(tokens[p] for p in pos) if pos else ".".join(tokens)
                buckets = iarg & 0xFFFFFFFF  # Go's uint32(n)
                write(str(_fnv32a(key.encode(self.encoding)) % buckets) if buckets else "0")
            elif kind == RANDOM:
                write(str(int(_random() * abs(iarg))) if iarg else "0")
            else:
                tok = tokens[pos[0]]
                size = len(tok)
                if kind == SPLIT:
                    parts = tok.split(sarg) if sarg else list(tok)  # Go splits "" into characters
                    for j, part in enumerate(parts):
                        if part:
                            write(part)
                        if j < len(parts) - 1 and parts[j + 1] and not (j == 0 and not part):
                            write(".")
                elif not 0 < iarg < size:  # too short to split, slice or cut: as it is
                    write(tok)
                elif kind == SPLIT_FROM_LEFT:
                    write(tok[:iarg] + "." + tok[iarg:])
                elif kind == SPLIT_FROM_RIGHT:
                    write(tok[:size - iarg] + "." + tok[size - iarg:])
                elif kind == SLICE_FROM_LEFT:
                    write(".".join(tok[j:j + iarg] for j in range(0, size, iarg)))
                elif kind == SLICE_FROM_RIGHT:
                    head = size % iarg
                    chunks = [tok[j:j + iarg] for j in range(head, size, iarg)]
                    write(".".join([tok[:head]] + chunks if head else chunks))
                elif kind == LEFT:
                    write(tok[:iarg])
                elif kind == RIGHT:
                    write(tok[size - iarg:])
            if i < last:
                write(".")
        if self.fwc:
            write(".".join(tokens[len(self.src_tokens) - 1:]))
        return "".join(out)


def validate_mapping(src: str, dest: str) -> None:
    """What a mapping destination may look like (the reference's ValidateMapping), then
    whether a transform can be built from it; raises TransformError."""
    if dest == "":
        return
    fwc = False
    for t in dest.split("."):
        n = len(t)
        if n == 0 or fwc:
            raise _dest_error(t, INVALID_TRANSFORM)
        if n > 4 and t[:2] == "{{" and t[-2:] == "}}":
            if not any(f(t) for f in (_PARTITION, _WILDCARD, _SPLIT_FROM_LEFT, _SPLIT_FROM_RIGHT,
                                      _SLICE_FROM_LEFT, _SLICE_FROM_RIGHT, _SPLIT, _LEFT, _RIGHT,
                                      _RANDOM)):
                raise _dest_error(t, UNKNOWN_FUNCTION)
            continue
        if t == ">":
            fwc = True
        elif any(c in t for c in "\t\n\f\r "):
            raise TransformError(INVALID_TRANSFORM)
    SubjectTransform(src, dest)


def tokenize_wildcards(subject: str) -> str:
    """`foo.*.*` -> `foo.$1.$2`: the destination that maps a wildcard source onto itself."""
    out, n = [], 0
    for t in subject.split("."):
        if t == "*":
            n += 1
            out.append(f"${n}")
        else:
            out.append(t)
    return ".".join(out)


# -- mappings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapDest:
    """One configured destination: a subject (transform destination), its weight (0-100), and
    the cluster it is scoped to ("" = every server)."""

    subject: str
    weight: int = 100
    cluster: str = ""


@dataclass(frozen=True)
class MappingSpec:
    """A configured mapping: the source subject and its destinations, as written."""

    src: str
    dests: tuple = ()


def _is_wildcard(subject: str) -> bool:
    return any(t in ("*", ">") for t in subject.split("."))


def _latin1(text: str) -> str:
    """Config text as the wire sees it: its UTF-8 bytes, one character per byte."""
    return text.encode("utf-8").decode("latin-1")


class Mapping:
    """One source's destinations, weighted (the reference's AddWeightedMappings). Raises
    TransformError with the reference's texts. `dests` is [(cumulative weight, transform)],
    lightest first; `cluster_dests` {cluster: same} is for display only (see module docstring)."""

    __slots__ = ("src", "wildcard", "dests", "cluster_dests", "_src_tokens")

    def __init__(self, src: str, dests: Iterable[MapDest]):
        if not valid_subject(src.encode("utf-8", "surrogateescape")):
            raise TransformError(BAD_SUBJECT)
        self.src = src
        self.wildcard = _is_wildcard(src)
        self._src_tokens = _latin1(src).split(".")
        seen: set[str] = set()
        totals: dict[str, int] = {}
        plain: list = []
        scoped: dict[str, list] = {}
        for d in dests:
            if d.subject in seen:
                raise TransformError(f"duplicate entry for {_go_quote(d.subject)}")
            seen.add(d.subject)
            if d.weight > 100:
                raise TransformError("individual weights need to be <= 100")
            totals[d.cluster] = totals.get(d.cluster, 0) + d.weight
            if totals[d.cluster] > 100:
                raise TransformError("total weight needs to be <= 100")
            validate_mapping(src, d.subject)
            # "" (accepted by the reference, which then crashes on a publish): the subject as it is
            dest = d.subject or (tokenize_wildcards(src) if self.wildcard else src)
            tr = SubjectTransform(_latin1(src), _latin1(dest), encoding="latin-1")
            (scoped.setdefault(d.cluster, []) if d.cluster else plain).append((d.weight, tr, d.subject))
        self.dests = self._cumulate(plain, src in seen)
        self.cluster_dests = {c: self._cumulate(ds, src in seen) for c, ds in scoped.items()}

    def _cumulate(self, dests: list, listed: bool) -> list:
        total = sum(w for w, _, _ in dests)
        if total != 100 and not listed:  # the rest keeps its subject
            dest = tokenize_wildcards(self.src) if self.wildcard else self.src
            dests = dests + [(100 - total if dests else 100,
                              SubjectTransform(_latin1(self.src), _latin1(dest), encoding="latin-1"),
                              dest)]
        out, cum = [], 0
        for w, tr, dest in sorted(dests, key=lambda d: d[0]):
            cum += w
            out.append((cum, tr, dest))
        return out

    def matches(self, tokens: list) -> bool:
        return subset_match(tokens, self._src_tokens)

    def resolve(self, tokens: list):
        """What a subject (its tokens; [] for a literal source, as the reference) maps to:
        bytes when that is always the same, else a Choice."""
        dests = self.dests
        if len(dests) == 1 and dests[0][0] == 100 and not dests[0][1].random:
            return dests[0][1].transform_tokens(tokens).encode("latin-1")
        return Choice([(cum, tr, tokens) for cum, tr, _ in dests])

    def display(self) -> list[dict]:
        """The destinations as /accountz shows them (cumulative weights, then the
        cluster-scoped ones)."""
        out = [{"subject": dest, "weight": cum} for cum, _, dest in self.dests]
        for cluster, dests in self.cluster_dests.items():
            out.extend({"subject": dest, "weight": cum, "cluster": cluster} for cum, _, dest in dests)
        return out


class Choice:
    """Weighted (or random) destinations of one published subject: `pick()` per message."""

    __slots__ = ("entries",)

    def __init__(self, dests: list):
        entries = []
        for cum, tr, tokens in dests:
            if tr.random:
                entries.append((cum, tr, tokens))
            else:
                entries.append((cum, tr.transform_tokens(tokens).encode("latin-1"), None))
        self.entries = entries

    def pick(self) -> bytes:
        """A destination subject; b"" when the draw falls past the listed weights (the
        reference drops the message then)."""
        entries = self.entries
        if len(entries) == 1 and entries[0][0] == 100:
            w = 0
        else:
            w = int(_random() * 100)
        for cum, out, tokens in entries:
            if w < cum:
                return out if tokens is None else out.transform_tokens(tokens).encode("latin-1")
        return b""


class SubjectMapper:
    """An account's mappings (immutable). Built from MappingSpecs already validated by the
    config (a spec that does not build is left out)."""

    __slots__ = ("literal", "wildcards", "mappings")

    def __init__(self, specs: Iterable[MappingSpec]):
        self.literal: dict[bytes, Mapping] = {}
        self.wildcards: list[Mapping] = []
        self.mappings: dict[str, Mapping] = {}
        for spec in specs:
            try:
                m = Mapping(spec.src, spec.dests)
            except TransformError:
                continue
            self.mappings[spec.src] = m  # a source given again replaces the first
        for m in self.mappings.values():
            if m.wildcard:
                self.wildcards.append(m)
            else:
                self.literal[m.src.encode("utf-8", "surrogateescape")] = m

    def __bool__(self) -> bool:
        return bool(self.mappings)

    def resolve(self, subject: bytes):
        """None (no mapping applies), the mapped subject (bytes), or a Choice."""
        m = self.literal.get(subject)
        if m is not None:
            return m.resolve([])
        tokens = subject.decode("latin-1").split(".")
        for m in self.wildcards:
            if m.matches(tokens):
                return m.resolve(tokens)
        return None

    def select(self, subject: bytes) -> bytes | None:
        """One message's subject: None if no mapping applies, b"" if it is dropped."""
        r = self.resolve(subject)
        if r is None or r.__class__ is bytes:
            return r
        return r.pick()

    def display(self) -> dict:
        """{source: destinations} as /accountz shows them (sorted by source, as Go's JSON)."""
        return {src: self.mappings[src].display() for src in sorted(self.mappings)}


def _go_quote(text: str) -> str:
    from .trace import go_quote

    return go_quote(text.encode("utf-8", "surrogateescape"))
