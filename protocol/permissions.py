"""Publish and subscribe permissions: compiled allow/deny lists and the reference's decisions.

Owns: `Permissions.compile(...)` from plain lists of strings (as config/auth.py keeps them;
subscribe entries may be "subject queue"), and the three questions a connection asks:
`can_publish(subject)`, `can_subscribe(subject, queue)` and `deny_delivery(subject)`.
Matching goes through the Sublist, so a subject with wildcard tokens is matched as the
reference matches it: its `*`/`>` tokens are ordinary tokens that list wildcards match (a
subscription to `foo.>` is allowed by an allow entry `foo.*`, and denied by a deny `foo.*`).

Rules (nats-server client.go canSubscribe / pubAllowed): no allow list = everything allowed;
deny wins; a queue subscription is judged against queue entries when any match. Pure: no clocks
(allow_responses bookkeeping, which has one, lives with the connection).
"""

from __future__ import annotations

from .sublist import Sublist
from .subjects import subject_matches


class _Entry:
    __slots__ = ("subject", "queue")

    def __init__(self, subject: bytes, queue: bytes | None):
        self.subject = subject
        self.queue = queue


def _sublist(entries) -> Sublist | None:
    if entries is None:
        return None
    sl = Sublist()
    for text in entries:
        parts = text.split()
        subject = parts[0].encode() if parts else text.encode()
        queue = parts[1].encode() if len(parts) > 1 else None
        sl.insert(_Entry(subject, queue))
    return sl


def _queue_matches(queue: bytes, qsubs) -> bool:
    for group in qsubs:
        name = group[0].queue
        if queue == name or ((b"*" in name or b">" in name) and subject_matches(name, queue)):
            return True
    return False


class Permissions:
    """One user's compiled permissions. `pub_*` lists are None when absent (no check)."""

    __slots__ = ("pub_allow", "pub_deny", "sub_allow", "sub_deny", "has_pub", "has_sub_deny")

    def __init__(self, pub_allow=None, pub_deny=None, sub_allow=None, sub_deny=None):
        self.pub_allow = _sublist(pub_allow)
        self.pub_deny = _sublist(pub_deny)
        self.sub_allow = _sublist(sub_allow)
        self.sub_deny = _sublist(sub_deny)
        self.has_pub = self.pub_allow is not None or self.pub_deny is not None
        self.has_sub_deny = self.sub_deny is not None and len(self.sub_deny) > 0

    def can_publish(self, subject: bytes) -> bool:
        if self.pub_allow is not None and not self.pub_allow.match(subject).psubs:
            return False
        if self.pub_deny is not None and self.pub_deny.match(subject).psubs:
            return False
        return True

    def can_subscribe(self, subject: bytes, queue: bytes | None = None) -> bool:
        allowed = True
        if self.sub_allow is not None:
            r = self.sub_allow.match(subject)
            allowed = len(r.psubs) > 0
            if queue and r.qsubs:
                allowed = _queue_matches(queue, r.qsubs)
        if allowed and self.sub_deny is not None:
            r = self.sub_deny.match(subject)
            allowed = len(r.psubs) == 0
            if queue and r.qsubs:
                allowed = not _queue_matches(queue, r.qsubs)
        return allowed

    def deny_delivery(self, subject: bytes) -> bool:
        """A message on `subject` must not reach this connection's (wildcard) subscriptions."""
        return self.sub_deny is not None and len(self.sub_deny.match(subject).psubs) > 0


__all__ = ["Permissions"]
