"""Sublist: the subscription index, a trie of subject tokens with a bounded result cache.

Owns: inserting and removing subscriptions, and answering "who is interested in this published
subject" as a `SublistResult` (plain subscribers, and queue subscribers grouped by queue name
across every matching subject). Each trie node has literal children keyed by token (bytes) and
separate `*` (pwc) and `>` (fwc) children; plain and queue subscribers are kept apart. A result
cache (subject -> result, bounded, evicted a chunk at a time) is patched, not cleared, when the
index changes. A subject matched through a wildcard is cached the second time it misses, not the
first (an admission filter): unique subjects (`$JS.ACK...` and `_INBOX...` replies) then never
evict the ones that repeat (a stream's `orders.1` under `orders.>`), which are cached at once. Also, and `generation` is bumped on every change so that callers can keep caches of
their own.

A subscription is any hashable object (identity hash) with `.subject: bytes` and
`.queue: bytes | None` (None or b"" means a plain subscription); both must stay unchanged
while it is inserted. Pure and single-threaded: no sockets, actors, clocks or locks; the
owning actor serialises access.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any, Iterable, Iterator, NamedTuple

from .subjects import valid_subject

__all__ = ["Sublist", "SublistResult", "EMPTY_RESULT", "CACHE_MAX", "CACHE_SWEEP"]

CACHE_MAX = 1024  # cached results kept at most
CACHE_SWEEP = 256  # how many of the oldest are evicted when the cache is full

_PWC = b"*"
_FWC = b">"


class SublistResult(NamedTuple):
    """What a published subject matched. Immutable; shared between callers and the cache."""

    psubs: tuple  # plain subscriptions, each once
    qsubs: tuple  # tuple[tuple[sub, ...], ...]: one inner tuple per queue name


EMPTY_RESULT = SublistResult((), ())


class _Node:
    """One trie node: the subs whose subject ends here, and the next level's children."""

    __slots__ = ("children", "pwc", "fwc", "psubs", "qsubs", "res")

    def __init__(self) -> None:
        self.children: dict[bytes, _Node] = {}
        self.pwc: _Node | None = None
        self.fwc: _Node | None = None
        self.psubs: dict[Any, None] = {}  # insertion-ordered set
        self.qsubs: dict[bytes, dict[Any, None]] = {}  # queue name -> ordered set
        self.res: SublistResult | None = None  # this node's own subs as a result, once asked

    def result(self) -> SublistResult:
        r = self.res
        if r is None:
            if self.psubs or self.qsubs:
                r = SublistResult(tuple(self.psubs), tuple(tuple(m) for m in self.qsubs.values()))
            else:
                r = EMPTY_RESULT
            self.res = r
        return r

    def is_empty(self) -> bool:
        return not (self.psubs or self.qsubs or self.children or self.pwc is not None or self.fwc is not None)


class Sublist:
    """Subscription trie with a bounded, incrementally maintained match cache."""

    def __init__(self, cache_size: int = CACHE_MAX) -> None:
        self._root = _Node()
        self._cache: dict[bytes, SublistResult] = {}
        self._cache_max = cache_size
        self._cache_sweep = max(1, min(CACHE_SWEEP, cache_size // 4)) if cache_size > 0 else 0
        self._seen: set[bytes] = set()  # wildcard-matched subjects that missed once (admission)
        # results decided by a subject's first tokens alone (see _match_miss), by those tokens
        self._prefixes: dict[bytes, SublistResult] = {}
        self._pdepths: tuple[int, ...] = ()  # the token counts of the keys above
        self._count = 0
        self.generation = 0
        self._inserts = 0
        self._removes = 0
        self._hits = 0
        self._misses = 0

    # ------------------------------------------------------------------ size and iteration

    @property
    def count(self) -> int:
        """Number of subscriptions."""
        return self._count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Any]:
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield from node.psubs
            for members in node.qsubs.values():
                yield from members
            stack.extend(node.children.values())
            if node.pwc is not None:
                stack.append(node.pwc)
            if node.fwc is not None:
                stack.append(node.fwc)

    def all_subs(self) -> list:
        return list(self)

    def __contains__(self, sub: Any) -> bool:
        node = self._find(sub.subject)
        if node is None:
            return False
        q = sub.queue
        if q:
            members = node.qsubs.get(q)
            return members is not None and sub in members
        return sub in node.psubs

    def _find(self, subject: bytes) -> _Node | None:
        node: _Node | None = self._root
        for tok in subject.split(b"."):
            if tok == _PWC:
                node = node.pwc
            elif tok == _FWC:
                node = node.fwc
            else:
                node = node.children.get(tok)
            if node is None:
                return None
        return node

    # ------------------------------------------------------------------ changes

    def insert(self, sub: Any) -> None:
        """Add `sub`. Inserting a sub that is already present is a no-op.

        Raises ValueError if `sub.subject` is not a valid subject.
        """
        subject = sub.subject
        if not valid_subject(subject):
            raise ValueError(f"invalid subject {subject!r}")
        node = self._root
        literal = True
        for tok in subject.split(b"."):
            if tok == _PWC:
                nxt = node.pwc
                if nxt is None:
                    nxt = node.pwc = _Node()
                literal = False
            elif tok == _FWC:
                nxt = node.fwc
                if nxt is None:
                    nxt = node.fwc = _Node()
                literal = False
            else:
                nxt = node.children.get(tok)
                if nxt is None:
                    nxt = node.children[tok] = _Node()
            node = nxt
        q = sub.queue
        if q:
            members = node.qsubs.get(q)
            if members is None:
                members = node.qsubs[q] = {}
            elif sub in members:
                return
            members[sub] = None
        else:
            if sub in node.psubs:
                return
            node.psubs[sub] = None
        node.res = None
        self._count += 1
        self._inserts += 1
        self._changed()

        cache = self._cache
        if not cache:
            return
        if literal:
            r = cache.get(subject)
            if r is not None:
                cache[subject] = _with_sub(r, sub)
        else:
            for key in _matching_keys(cache, subject):
                cache[key] = _with_sub(cache[key], sub)

    def remove(self, sub: Any) -> bool:
        """Remove `sub`; False if it was not present. Empty trie nodes are pruned."""
        literal = self._unlink(sub)
        if literal is None:
            return False
        self._count -= 1
        self._removes += 1
        self._changed()
        cache = self._cache
        if cache:
            subject = sub.subject
            if literal:
                cache.pop(subject, None)
            else:
                for key in _matching_keys(cache, subject):
                    del cache[key]
        return True

    def remove_batch(self, subs: Iterable[Any]) -> int:
        """Remove many subs (e.g. a closed connection's); returns how many were present.

        Cached entries are dropped once per distinct wildcard subject removed (all at once if a
        `>` went); `generation` is bumped once for the batch.
        """
        cache = self._cache
        patterns: set[bytes] = set()
        removed = 0
        for sub in subs:
            literal = self._unlink(sub)
            if literal is None:
                continue
            removed += 1
            if literal:
                cache.pop(sub.subject, None)
            else:
                patterns.add(sub.subject)
        if not removed:
            return 0
        self._count -= removed
        self._removes += removed
        self._changed()
        if patterns and cache:
            if _FWC in patterns:
                cache.clear()  # a removed `>` matched every cached subject
            else:
                doomed: set[bytes] = set()
                for pattern in patterns:
                    doomed.update(_matching_keys(cache, pattern))
                for key in doomed:
                    del cache[key]
        return removed

    def _changed(self) -> None:
        self.generation += 1
        if self._prefixes:
            self._prefixes.clear()
            self._pdepths = ()

    def _unlink(self, sub: Any) -> bool | None:
        """Take `sub` out of the trie and prune. None if absent, else whether it was literal."""
        node = self._root
        literal = True
        path: list[tuple[_Node, bytes, _Node]] = []
        for tok in sub.subject.split(b"."):
            if tok == _PWC:
                nxt = node.pwc
                literal = False
            elif tok == _FWC:
                nxt = node.fwc
                literal = False
            else:
                nxt = node.children.get(tok)
            if nxt is None:
                return None
            path.append((node, tok, nxt))
            node = nxt
        q = sub.queue
        if q:
            members = node.qsubs.get(q)
            if members is None or sub not in members:
                return None
            del members[sub]
            if not members:
                del node.qsubs[q]
        else:
            if sub not in node.psubs:
                return None
            del node.psubs[sub]
        node.res = None
        for parent, tok, child in reversed(path):
            if not child.is_empty():
                break
            if tok == _PWC:
                parent.pwc = None
            elif tok == _FWC:
                parent.fwc = None
            else:
                del parent.children[tok]
        return literal

    # ------------------------------------------------------------------ matching

    def match(self, subject: bytes) -> SublistResult:
        """All subscriptions interested in the published `subject`.

        A subject with an empty token (leading, trailing or double dot) matches nothing.
        """
        r = self._cache.get(subject)
        if r is not None:
            self._hits += 1
            return r
        if self._prefixes:
            for depth in self._pdepths:
                toks = subject.split(b".", depth)
                if len(toks) > depth:
                    tail = toks[depth]
                    r = self._prefixes.get(subject[:len(subject) - len(tail) - 1])
                    if r is not None and tail and tail[0] != 46 and tail[-1] != 46 and b".." not in tail:
                        self._misses += 1  # (46 is ".": the tail has no empty token)
                        return r
        return self._match_miss(subject)

    def cached(self, subject: bytes) -> bool:
        """Whether `subject`'s match is kept in the cache (one-off subjects are not)."""
        return subject in self._cache

    def _match_miss(self, subject: bytes) -> SublistResult:
        self._misses += 1
        toks = subject.split(b".")
        if b"" in toks:
            return EMPTY_RESULT
        # Fast path: no `*` node on the way, so the walk is one straight line down the literal
        # children, collecting the `>` nodes passed and the node reached.
        node = self._root
        hits: list = []
        for depth, tok in enumerate(toks, 1):
            if node.pwc is not None:
                return self._match_walk(subject, toks)
            if node.fwc is not None:
                hits.append(node.fwc)
            node = node.children.get(tok)
            if node is None:
                break
        else:
            hits.append(node)
        if len(hits) == 1:
            r = hits[0].result()  # kept on the node: no allocation per subject
        else:
            psubs: list = []
            groups: dict[bytes, list] = {}
            for h in hits:
                if h.psubs:
                    psubs.extend(h.psubs)
                if h.qsubs:
                    for q, members in h.qsubs.items():
                        g = groups.get(q)
                        if g is None:
                            groups[q] = list(members)
                        else:
                            g.extend(members)
            if psubs or groups:
                r = SublistResult(tuple(psubs), tuple(tuple(g) for g in groups.values()))
            else:
                r = EMPTY_RESULT
        if node is None and r is not EMPTY_RESULT:
            # Matched only by `>` subscriptions, with a tail no subscription names: many such
            # subjects never repeat (a `$JS.ACK.<stream>.<consumer>.<...>` reply is unique per
            # delivery), so they are admitted to the cache on their second miss. The walk
            # stopped after `depth` tokens, so every longer subject starting with those tokens
            # matches exactly this: kept by that prefix until the index changes, `match` finds
            # the next such subject without splitting it all and walking.
            if depth < len(toks):
                self._remember_prefix(b".".join(toks[:depth]), depth, r)
            self._admit(subject, r)
            return r
        self._cache_put(subject, r)
        return r

    def _remember_prefix(self, prefix: bytes, depth: int, r: SublistResult) -> None:
        prefixes = self._prefixes
        if self._cache_max <= 0:
            return
        if len(prefixes) >= self._cache_max:
            prefixes.clear()
            self._pdepths = ()
        if depth not in self._pdepths:
            if len(self._pdepths) >= 4:
                return
            self._pdepths += (depth,)
        prefixes[prefix] = r

    def _admit(self, subject: bytes, r: SublistResult) -> None:
        seen = self._seen
        if subject in seen:
            seen.discard(subject)
            self._cache_put(subject, r)
        else:
            if len(seen) >= self._cache_max:
                seen.clear()
            seen.add(subject)

    def _cache_put(self, subject: bytes, r: SublistResult) -> None:
        if self._cache_max > 0:
            cache = self._cache
            if len(cache) >= self._cache_max:
                for key in list(islice(cache, self._cache_sweep)):
                    del cache[key]
            cache[subject] = r

    def _match_walk(self, subject: bytes, toks: list) -> SublistResult:
        """The general walk: every `*` branch as well as the literal one."""
        n = len(toks)
        psubs: list = []
        groups: dict[bytes, list] = {}
        pending: list = []  # (node, index) branches still to walk, from `*` nodes
        node = self._root
        i = 0
        while True:
            if i == n:
                # Subs whose subject ends exactly here.
                if node.psubs:
                    psubs.extend(node.psubs)
                if node.qsubs:
                    for q, members in node.qsubs.items():
                        g = groups.get(q)
                        if g is None:
                            groups[q] = list(members)
                        else:
                            g.extend(members)
            else:
                fwc = node.fwc
                if fwc is not None:
                    # `>` here matches the remaining tokens (at least one is left).
                    if fwc.psubs:
                        psubs.extend(fwc.psubs)
                    if fwc.qsubs:
                        for q, members in fwc.qsubs.items():
                            g = groups.get(q)
                            if g is None:
                                groups[q] = list(members)
                            else:
                                g.extend(members)
                if node.pwc is not None:
                    pending.append((node.pwc, i + 1))
                nxt = node.children.get(toks[i])
                if nxt is not None:
                    node = nxt
                    i += 1
                    continue
            if not pending:
                break
            node, i = pending.pop()

        if psubs or groups:
            r = SublistResult(tuple(psubs), tuple(tuple(g) for g in groups.values()))
        else:
            r = EMPTY_RESULT
        self._admit(subject, r)  # through a `*`: `_INBOX.<id>.<n>` replies are unique
        return r

    # ------------------------------------------------------------------ monitoring

    def stats(self) -> dict:
        """Counters under the /subsz field names. Fanout is measured over the cached results."""
        cache = self._cache
        matches = self._hits + self._misses
        max_fanout = 0
        total = 0
        for r in cache.values():
            f = len(r.psubs) + len(r.qsubs)
            total += f
            if f > max_fanout:
                max_fanout = f
        return {
            "num_subscriptions": self._count,
            "num_cache": len(cache),
            "num_inserts": self._inserts,
            "num_removes": self._removes,
            "num_matches": matches,
            "cache_hit_rate": (self._hits / matches) if matches else 0.0,
            "max_fanout": max_fanout,
            "avg_fanout": (total / len(cache)) if cache else 0.0,
        }


def _with_sub(r: SublistResult, sub: Any) -> SublistResult:
    """`r` plus a newly inserted `sub` that matches its subject."""
    q = sub.queue
    if not q:
        return SublistResult(r.psubs + (sub,), r.qsubs)
    groups = r.qsubs
    for i, g in enumerate(groups):
        if g[0].queue == q:
            return SublistResult(r.psubs, groups[:i] + (g + (sub,),) + groups[i + 1 :])
    return SublistResult(r.psubs, groups + ((sub,),))


def _pattern_regex(pattern: bytes) -> bytes:
    """Regex source matching exactly the (cacheable) subjects that `pattern` matches.

    Cached subjects never contain empty tokens, so `*` is one or more non-dot bytes and a
    final `>` is one or more bytes.
    """
    parts = []
    for tok in pattern.split(b"."):
        if tok == _PWC:
            parts.append(rb"[^.]+")
        elif tok == _FWC:
            parts.append(rb".+")
        else:
            parts.append(re.escape(tok))
    return rb"\.".join(parts)


def _matching_keys(keys: Iterable[bytes], pattern: bytes) -> list[bytes]:
    """The cached subjects (`keys`) that the wildcard `pattern` matches.

    Called on every wildcard insert or remove while the cache is not empty, so it avoids a
    Python call per key where it can: a literal prefix up to the first wildcard token is
    screened with `startswith` first, a trailing `>` needs nothing more (cached subjects have no
    empty tokens), and the regex is compiled only when some key passes the screen.
    """
    if pattern == _FWC:
        return list(keys)
    i = 0  # length of the literal prefix, dot included
    for tok in pattern.split(b"."):
        if tok == _PWC or tok == _FWC:
            break
        i += len(tok) + 1
    if i:
        prefix = pattern[:i]
        keys = [k for k in keys if k.startswith(prefix)]
        if not keys or pattern[i:] == _FWC:
            return keys  # type: ignore[return-value]
    full = re.compile(_pattern_regex(pattern), re.DOTALL).fullmatch
    return [k for k in keys if full(k) is not None]
