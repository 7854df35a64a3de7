"""A Shard: one partition of the subscription index, and the place where messages are routed.

It owns a Sublist of the subscriptions whose first token hashes to it (plus every subscription
whose first token is a wildcard; see actors/router.py). It receives one mailbox message per
publisher read batch, matches each message, formats MSG/HMSG frames once per message, groups
them by destination client and sends **one** tell per destination per batch.

Its state is derived from the clients' subscriptions: when it is restarted it asks every client
to register again (`Reregister`), so it is serving again within one round trip.

Messages in: ("pub", pubinfo, batch, barrier) · ("subs", [(add, sub), ...]) ·
("subsz",) (ask; for monitoring). Messages out: to clients ("msgs", parts, count, limited),
("noresp", subject, reply), ("barrier", shard_index, token), ("reregister", shard_index).
"""

from __future__ import annotations

import random

import gevent
import pykka

from ..protocol.parser import PUB
from ..protocol.sublist import Sublist
from .runtime import Actor, registry


class Shard(Actor):
    kind = "shard"

    def __init__(self, path, parent, child_id, ctx, index: int, restarted: bool):
        super().__init__(path, parent, child_id)
        self.ctx = ctx
        self.index = index
        self.restarted = restarted
        self.sublist = Sublist()
        self.msgs_routed = 0

    def started(self) -> None:
        self.ctx.shards.refs[self.index] = self.actor_ref
        if self.restarted:
            for entry in registry.children("/server/clients"):
                try:
                    entry.ref.tell(("reregister", self.index))
                except pykka.ActorDeadError:
                    pass

    def describe(self) -> dict:
        return {"index": self.index}

    def handle(self, message):
        kind = message[0]
        if kind == "pub":
            self._route(message[1], message[2])
            if message[3] is not None:
                _tell(message[1][1], ("barrier", self.index, message[3]))
            gevent.sleep(0)  # yield after each batch: one busy publisher must not starve others
            return None
        if kind == "subs":
            insert, remove = self.sublist.insert, self.sublist.remove
            for add, sub in message[1]:
                if add:
                    insert(sub)
                else:
                    remove(sub)
            return None
        if kind == "barrier":
            _tell(message[1], ("barrier", self.index, message[2]))
            return None
        if kind == "subsz":
            return {"stats": self.sublist.stats(), "subs": list(self.sublist)}
        return super().handle(message)

    def _route(self, pubinfo, batch) -> None:
        pub_cid, pub_ref, echo, no_responders = pubinfo
        match = self.sublist.match
        dests: dict = {}
        noresp = None
        routed = 0
        for ev in batch:
            subject = ev[1]
            psubs, qsubs = match(subject)
            reply = ev[2]
            if not psubs and not qsubs:
                if no_responders and reply is not None:
                    if noresp is None:
                        noresp = []
                    noresp.append((subject, reply))
                continue
            before = routed
            if ev[0] == PUB:
                head = b"MSG " + subject + b" "
                if reply is None:
                    tail = b" " + ev[3] + b"\r\n" + ev[4] + b"\r\n"
                else:
                    tail = b" " + reply + b" " + ev[3] + b"\r\n" + ev[4] + b"\r\n"
                head_p = tail_p = None
            else:
                hdr, size_b, payload = ev[3], ev[4], ev[5]
                mid = b" " if reply is None else b" " + reply + b" "
                head = b"HMSG " + subject + b" "
                tail = mid + str(hdr).encode() + b" " + size_b + b"\r\n" + payload + b"\r\n"
                head_p = b"MSG " + subject + b" "
                tail_p = mid + str(len(payload) - hdr).encode() + b"\r\n" + payload[hdr:] + b"\r\n"
            for sub in psubs:
                cid = sub.cid
                if cid == pub_cid and not echo:
                    continue
                d = dests.get(cid)
                if d is None:
                    d = dests[cid] = [sub.client, [], 0, None]
                parts = d[1]
                if sub.limited:
                    if d[3] is None:
                        d[3] = []
                    d[3].append((len(parts), sub.sid))
                if head_p is None or sub.headers:
                    parts += (head, sub.sid, tail)
                else:
                    parts += (head_p, sub.sid, tail_p)
                d[2] += 1
                routed += 1
            for group in qsubs:
                sub = group[int(random.random() * len(group))] if len(group) > 1 else group[0]
                if sub.cid == pub_cid and not echo:
                    others = [s for s in group if s.cid != pub_cid]
                    if not others:
                        continue
                    sub = random.choice(others)
                cid = sub.cid
                d = dests.get(cid)
                if d is None:
                    d = dests[cid] = [sub.client, [], 0, None]
                parts = d[1]
                if sub.limited:
                    if d[3] is None:
                        d[3] = []
                    d[3].append((len(parts), sub.sid))
                if head_p is None or sub.headers:
                    parts += (head, sub.sid, tail)
                else:
                    parts += (head_p, sub.sid, tail_p)
                d[2] += 1
                routed += 1
            if routed == before and no_responders and reply is not None:
                if noresp is None:  # only the publisher's own subscriptions, with echo off
                    noresp = []
                noresp.append((subject, reply))
        self.msgs_routed += routed
        for ref, parts, count, limited in dests.values():
            _tell(ref, ("msgs", parts, count, limited))
        if noresp:
            for subject, reply in noresp:
                _tell(pub_ref, ("noresp", subject, reply))


def _tell(ref, message) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass  # the client is gone; its subscriptions are being removed
