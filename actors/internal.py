"""Internal clients: how an actor inside the server subscribes and publishes like a connection.

JetStream (the API, streams, consumers) and the system account's events and requests are NATS
traffic handled by actors, not by sockets. An actor mixes in `InternalClient` and then:

    self.internal_init(ctx)                       # in __init__; takes a client id
    sid = self.isubscribe("$JS.API.>", self._on_api, account="$G")    # in started()
    self.ipublish(reply, b'{"type": ...}', account="$G")             # anywhere in the actor
    self.iunsubscribe(sid)

and lets `internal_handle(message)` take the router's messages first in its `handle`:

    def handle(self, message):
        if self.internal_handle(message):
            return None
        ...

Callbacks run on the actor's own greenlet, one per delivered message, as
`callback(subject: str, reply: str | None, hdr: bytes, data: bytes)`: `hdr` is the raw header
block (b"" when the message has none) and `data` the body. While a callback runs,
`self.publisher` is the client id of the message's publisher (negative for an internal one):
the JetStream API names the requesting client in its audit advisories with it.

Deliveries arrive as the shards send them to clients: one ("msgs", parts, count, limited, publisher)
message per routed batch, five parts per message (head, sid, mid, payload, CRLF); see
actors/shard.py. Publishes go to this publisher's one shard as ("pub", pubinfo, batch, None),
exactly as a Client's, so its messages are routed in publish order and subscribers cannot tell an internal
publisher from a connection. A restarted shard asks every internal client to register its
subscriptions again (`ctx.internals`), as it asks the clients.
"""

from __future__ import annotations

import itertools

import pykka

from ..protocol.parser import HPUB, PUB
from ..protocol.subjects import subject_bytes, subject_text
from .router import Subscription

GLOBAL_ACCOUNT = "$G"


class InternalClient:
    """Mixin for an `Actor`: subscriptions and publishes inside the server."""

    def internal_init(self, ctx) -> None:
        self.ctx = ctx
        self.icid = next(ctx.internal_ids)
        self.publisher = 0
        self._isubs: dict[bytes, tuple[Subscription, object]] = {}
        self._isids = itertools.count(1)

    # -- subscriptions -----------------------------------------------------------------------

    def isubscribe(self, subject: str, callback, queue: str | None = None,
                   account: str = GLOBAL_ACCOUNT, replies: bool = False) -> bytes:
        """Subscribe in `account`; returns the sid (bytes) to unsubscribe with. With `replies`,
        a single message may arrive with its reply subject's one subscriber resolved (the sixth
        element of "msgs", see actors/router.py): the actor may answer there directly."""
        self.ctx.internals[self.icid] = self.actor_ref
        sid = str(next(self._isids)).encode()
        sub = Subscription(subject.encode(), queue.encode() if queue else None, sid,
                           self.actor_ref, self.icid, True, account=account, replies=replies)
        self._isubs[sid] = (sub, callback)
        self._itell_shards([(True, sub)])
        return sid

    def iunsubscribe(self, sid: bytes) -> None:
        entry = self._isubs.pop(sid, None)
        if entry is not None:
            self._itell_shards([(False, entry[0])])

    def iunsubscribe_all(self) -> None:
        ops = [(False, sub) for sub, _ in self._isubs.values()]
        self._isubs.clear()
        self.ctx.internals.pop(self.icid, None)
        if ops:
            self._itell_shards(ops)

    def _itell_shards(self, ops: list, only: int | None = None) -> None:
        shards = self.ctx.shards
        shards.interest_generation += 1
        for idx in shards.all if only is None else (only,):
            _tell(shards.refs[idx], ("subs", ops))

    # -- publishing --------------------------------------------------------------------------

    def ipublish(self, subject: str, data: bytes = b"", reply: str | None = None,
                 hdr: bytes = b"", account: str = GLOBAL_ACCOUNT, no_responders: bool = False) -> None:
        """Publish one message in `account` (hdr: a raw `NATS/1.0\\r\\n...\\r\\n\\r\\n` block).
        With `no_responders`, a request nobody is subscribed to comes back to
        `on_no_responders(subject, reply)`."""
        self.ipublish_many([(subject, reply, hdr, data)], account, no_responders)

    def ipublish_many(self, msgs, account: str = GLOBAL_ACCOUNT, no_responders: bool = False) -> None:
        """Publish (subject, reply, hdr, data) messages in order, in one tell to our shard."""
        shards = self.ctx.shards
        info = (self.icid, self.actor_ref, True, no_responders, -1, account)
        batch = []
        for subject, reply, hdr, data in msgs:
            subj = subject_bytes(subject) if isinstance(subject, str) else subject
            rep = subject_bytes(reply) if isinstance(reply, str) else reply
            if hdr:
                payload = hdr + data
                ev = (HPUB, subj, rep or None, len(hdr), str(len(payload)).encode(), payload)
            else:
                ev = (PUB, subj, rep or None, str(len(data)).encode(), data)
            batch.append(ev)
        if batch:
            _tell(shards.refs[shards.shard_for(self.icid)], ("pub", info, batch, None))

    # -- the router's messages ---------------------------------------------------------------

    def internal_handle(self, message) -> bool:
        """Take the messages the router sends a subscriber; True if `message` was one."""
        kind = message[0]
        if kind == "msgs":
            self.publisher = message[4]  # the client id of who published these (see below)
            self._ideliver(message[1])
            return True
        if kind == "reregister":
            ops = [(True, sub) for sub, _ in self._isubs.values()]
            if ops:
                self._itell_shards(ops, only=message[1])
            return True
        if kind == "noresp":
            self.on_no_responders(subject_text(message[1]), subject_text(message[2]))
            return True
        return kind in ("no_interest", "barrier")

    def on_no_responders(self, subject: str, reply: str) -> None:
        """A request published with `no_responders` found no subscriber."""

    def _ideliver(self, parts: list) -> None:
        subs = self._isubs
        for i in range(0, len(parts), 5):
            head = parts[i]
            if not head:
                continue
            entry = subs.get(parts[i + 1])
            if entry is None:
                continue  # unsubscribed while the batch was in flight
            payload = parts[i + 3]
            toks = parts[i + 2].split()
            if head[0] == 77:  # b"MSG <subject> ": mid is b" [reply] <size>\r\n"
                entry[1](subject_text(head[4:-1]), subject_text(toks[0]) if len(toks) == 2 else None, b"",
                         payload)
            else:  # b"HMSG <subject> ": mid is b" [reply] <hdr size> <size>\r\n"
                n = int(toks[-2])
                entry[1](subject_text(head[5:-1]), subject_text(toks[0]) if len(toks) == 3 else None,
                         payload[:n], payload[n:])


def _tell(ref, message) -> None:
    if ref is None:
        return
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass
