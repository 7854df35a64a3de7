"""A Shard: one partition of the subscription index, and the place where messages are routed.

It owns, per account, a Sublist of every subscription, and routes the messages of the
publishers pinned to it (see actors/router.py). Accounts are separate
subject spaces: a publish is matched only in its publisher's account (the sixth element of the
publisher info); crossing accounts is the Accounts actor's work (exports and imports). It receives one mailbox message per
publisher read batch, matches each message, formats MSG/HMSG frames once per message, groups
them by destination client and sends **one** tell per destination per batch.

An internal publisher (a JetStream consumer) may send PUB_AS/HPUB_AS events: a PUB/HPUB with
one more element, the subject to show in the MSG/HMSG line when it differs from the subject
routed on (a delivery to an inbox carries the stored message's subject). They take the slow
path; the fast path only ever sees plain PUB, so it pays nothing for them.

Its state is derived from the clients' subscriptions: when it is restarted it asks every client
to register again (`Reregister`), so it is serving again within one round trip.

Messages in: ("pub", pubinfo, batch, barrier) · ("subs", [(add, sub), ...]) ·
("subsz", [account]) and ("subcount", account|None) (asks; for monitoring) ·
("interest", account, subject, reply_ref|None, token). Messages out: to clients ("msgs", parts,
count, limited, publisher cid[, reply route]) (a batch comes from one publisher; the reply route
only to a `replies` subscriber, see actors/router.py), ("noresp", subject, reply), ("barrier", shard_index, token), ("reregister",
shard_index), ("has_interest", token, bool).
"""

from __future__ import annotations

from itertools import cycle
from random import random

import gevent
import pykka

from ..protocol.parser import PUB
from ..protocol.sublist import Sublist
from .runtime import Actor, registry

CRLF = b"\r\n"
PUB_AS, HPUB_AS = 100, 101  # PUB/HPUB events with the subject to show appended (see above)


class Shard(Actor):
    kind = "shard"

    def __init__(self, path, parent, child_id, ctx, index: int, restarted: bool):
        super().__init__(path, parent, child_id)
        self.ctx = ctx
        self.index = index
        self.restarted = restarted
        self.spaces: dict[str, _Space] = {}  # account -> its subscriptions here
        self.msgs_routed = 0

    def started(self) -> None:
        self.ctx.shards.refs[self.index] = self.actor_ref
        self.ctx.shards.interest_generation += 1
        # internal clients may have subscribed before this shard first started (start order
        # is not synchronous): they register again too, then and after every restart
        refs = list(self.ctx.internals.values())
        if self.restarted:
            refs += [entry.ref for entry in registry.children("/server/clients")]
        if refs:
            for ref in refs:
                try:
                    ref.tell(("reregister", self.index))
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
            if self.actor_inbox.qsize():  # (with an empty mailbox, the wait for the next yields)
                gevent.sleep(0)  # yield after each batch: one busy publisher must not starve others
            return None
        if kind == "subs":
            spaces = self.spaces
            for add, sub in message[1]:
                space = spaces.get(sub.account)
                if space is None:
                    if not add:
                        continue
                    space = spaces[sub.account] = _Space()
                if add:
                    space.sublist.insert(sub)
                else:
                    space.sublist.remove(sub)
            return None
        if kind == "barrier":
            _tell(message[1], ("barrier", self.index, message[2]))
            return None
        if kind == "interest":
            # ("interest", account, subject, reply_ref, token): does anyone subscribe to the
            # subject in the account here? Told back as ("has_interest", token, bool), or the
            # answer of an ask when reply_ref is None (JetStream push consumers watch their
            # deliver subject with it). Every shard holds every subscription.
            space = self.spaces.get(message[1])
            has = False
            if space is not None:
                psubs, qsubs = space.sublist.match(message[2])
                has = bool(psubs or qsubs)
            if message[3] is None:
                return has
            _tell(message[3], ("has_interest", message[4], has))
            return None
        if kind == "subcount":  # every shard holds every subscription
            account = message[1]
            return sum(len(sp.sublist) for acc, sp in self.spaces.items()
                       if account is None or acc == account)
        if kind == "subsz":
            account = message[1] if len(message) > 1 else None
            spaces = [sp for acc, sp in self.spaces.items() if account is None or acc == account]
            return {"stats": _merged_stats([sp.sublist.stats() for sp in spaces]),
                    "subs": [sub for sp in spaces for sub in sp.sublist]}
        return super().handle(message)

    @staticmethod
    def _routes_for(space: "_Space", subject: bytes):
        """(plain subs, queue groups, b"MSG <subject> ") for a subject, cached until the
        subscriptions change."""
        if space.sublist.generation != space.generation:
            space.routes.clear()
            space.generation = space.sublist.generation
        elif len(space.routes) > 4096:
            space.routes.clear()
        psubs, qsubs = space.sublist.match(subject)
        entry = (psubs, qsubs, b"MSG " + subject + b" ")
        if space.sublist.cached(subject):  # not the one-off subjects the sublist does not cache
            space.routes[subject] = entry  # (unique `$JS.ACK...` replies): they would evict the rest
        return entry

    def _bind(self, space, subject: bytes, pub_cid: int, echo: bool, dests: dict, clients: dict,
              by_subs: dict):
        """Resolve a subject's subscriptions to this batch's per-client parts lists:
        (single (parts, sid) if exactly one subscriber, plain [(parts, sid)], queue groups (a
        picker per group), head or None if nobody is interested), or False when the slow
        path must handle it (a subscription with an UNSUB max, whose deliveries are counted).
        Subjects with the same plain subscribers and no queue group share one resolution per
        batch (`by_subs`): a burst of acks, each its own `$JS.ACK...` subject, is resolved once."""
        r = space.routes.get(subject)
        if r is None:
            r = self._routes_for(space, subject)
        psubs, qsubs, head = r
        if not qsubs:
            b = by_subs.get(psubs)
            if b is not None:
                return b and (b[0], b[1], b[2], head if b[1] else None)
        b = self._resolve(psubs, qsubs, pub_cid, echo, dests, clients)
        if not qsubs:
            by_subs[psubs] = b
        return b and (b[0], b[1], b[2], head if (b[1] or b[2]) else None)

    def _resolve(self, psubs, qsubs, pub_cid: int, echo: bool, dests: dict, clients: dict):
        plain = []
        for sub in psubs:
            if sub.limited:
                return False
            if not echo and sub.cid == pub_cid:
                continue
            plain.append((self._parts_for(sub, dests, clients), sub.sid))
        groups = []
        for group in qsubs:
            members = []
            for sub in group:
                if sub.limited:
                    return False
                if not echo and sub.cid == pub_cid:
                    continue
                members.append((self._parts_for(sub, dests, clients), sub.sid))
            if members:
                # one member per message: round robin from a random start, per batch
                start = int(random() * len(members))
                groups.append(cycle(members[start:] + members[:start]).__next__)
        single = plain[0] if len(plain) == 1 and not groups else None
        return single, plain, groups

    @staticmethod
    def _parts_for(sub, dests: dict, clients: dict) -> list:
        parts = dests.get(sub.cid)
        if parts is None:
            parts = dests[sub.cid] = []
            clients[sub.cid] = sub.client
        return parts

    def _route_one(self, space, pubinfo, ev) -> bool:
        """A batch of one plain PUB to exactly one plain subscriber (a request, a PubAck, a
        synchronous publish): delivered without the batch bookkeeping. False for anything else,
        which the general path below handles."""
        subject = ev[1]
        r = space.routes.get(subject)
        if r is None:
            r = self._routes_for(space, subject)
        psubs, qsubs, head = r
        if qsubs or len(psubs) != 1:
            return False
        sub = psubs[0]
        if sub.limited or (not pubinfo[2] and sub.cid == pubinfo[0]):
            return False
        reply = ev[2]
        mid = b" " + ev[3] + CRLF if reply is None else b" " + reply + b" " + ev[3] + CRLF
        self.msgs_routed += 1
        if sub.replies and reply is not None:
            # a synchronous JetStream publish: resolve who gets the PubAck now, so the Stream
            # can answer there without another pass through a shard (one plain subscriber
            # only; anything else, the Stream publishes its answer as usual)
            rr = space.routes.get(reply)
            if rr is None:
                rr = self._routes_for(space, reply)
            if len(rr[0]) == 1 and not rr[1] and not rr[0][0].limited:
                rsub = rr[0][0]
                _tell(sub.client, ("msgs", [head, sub.sid, mid, ev[4], CRLF], 1, None, pubinfo[0],
                                   (rsub.client, rsub.sid, rr[2])))
                return True
        _tell(sub.client, ("msgs", [head, sub.sid, mid, ev[4], CRLF], 1, None, pubinfo[0]))
        return True

    def _route(self, pubinfo, batch) -> None:
        """Route one publisher's batch. Each delivered message is five parts in its client's
        list: (head, sid, mid, payload, CRLF), joined once by the client. Subjects found
        without interest are reported back to the publisher (see ShardTable)."""
        pub_cid, pub_ref, echo, no_responders, generation, account = pubinfo
        space = self.spaces.get(account)
        if space is None:
            space = self.spaces[account] = _Space()
        elif space.sublist.generation != space.generation:
            space.routes.clear()
            space.generation = space.sublist.generation
        routes = space.routes
        if len(batch) == 1 and batch[0][0] == PUB and self._route_one(space, pubinfo, batch[0]):
            return
        dests: dict = {}  # cid -> parts
        clients: dict = {}  # cid -> client ref
        limited: dict = {}  # cid -> [(index of head in parts, sid)]
        noresp = None
        uninterested = None
        bound: dict = {}  # subject -> its destinations resolved for this batch (fast path)
        by_subs: dict = {}  # plain subscribers -> their destinations (see _bind)
        mids: dict = {}  # size token -> b" <size>\r\n"
        as_heads: dict = {}  # a PUB_AS's subject to show -> its b"MSG <subject> "
        for ev in batch:
            subject = ev[1]
            op = ev[0]
            if op == PUB or op == PUB_AS:
                # Fast path: the subject's subscriptions resolved once per batch to
                # (parts list, sid) pairs; per message only the frame parts are appended.
                # (A PUB_AS, a JetStream delivery, shows its stored subject in the head.)
                b = bound.get(subject)
                if b is None:
                    b = bound[subject] = self._bind(space, subject, pub_cid, echo, dests, clients, by_subs)
                if b is not False:
                    single, plain, groups, head = b
                    reply = ev[2]
                    if op == PUB_AS and head is not None:
                        head = as_heads.get(ev[5])
                        if head is None:
                            head = as_heads[ev[5]] = b"MSG " + ev[5] + b" "
                    if single is not None:  # the common case: one subscriber
                        if reply is None:
                            mid = mids.get(ev[3])
                            if mid is None:
                                mid = mids[ev[3]] = b" " + ev[3] + CRLF
                        else:
                            mid = b" " + reply + b" " + ev[3] + CRLF
                        single[0].extend((head, single[1], mid, ev[4], CRLF))
                        continue
                    if head is None:  # no interest
                        if no_responders and reply is not None:
                            if noresp is None:
                                noresp = []
                            noresp.append((subject, reply))
                        elif uninterested is None:
                            uninterested = [subject]
                        else:
                            uninterested.append(subject)
                        continue
                    if reply is None:
                        mid = mids.get(ev[3])
                        if mid is None:
                            mid = mids[ev[3]] = b" " + ev[3] + CRLF
                    else:
                        mid = b" " + reply + b" " + ev[3] + CRLF
                    payload = ev[4]
                    for parts, sid in plain:
                        parts += (head, sid, mid, payload, CRLF)
                    for pick in groups:
                        parts, sid = pick()
                        parts += (head, sid, mid, payload, CRLF)
                    continue
            r = routes.get(subject)
            if r is None:
                r = self._routes_for(space, subject)
            psubs, qsubs, head = r
            reply = ev[2]
            if not psubs and not qsubs:
                if no_responders and reply is not None:
                    if noresp is None:
                        noresp = []
                    noresp.append((subject, reply))
                continue
            # Slow path: headers (HMSG, or MSG for clients without headers) or a counted sub.
            op = ev[0]
            if op == PUB or op == PUB_AS:
                if reply is None:
                    mid = b" " + ev[3] + CRLF
                else:
                    mid = b" " + reply + b" " + ev[3] + CRLF
                payload = ev[4]
                head_p = None
                if op == PUB_AS:  # delivered as another subject (a JetStream delivery)
                    head = b"MSG " + ev[5] + b" "
            else:
                hdr, size_b, payload = ev[3], ev[4], ev[5]
                shown = ev[6] if op == HPUB_AS else subject
                pre = b" " if reply is None else b" " + reply + b" "
                mid = pre + str(hdr).encode() + b" " + size_b + CRLF
                head_p = b"MSG " + shown + b" "
                mid_p = pre + str(len(payload) - hdr).encode() + CRLF
                head = b"HMSG " + shown + b" "
            chosen = [sub for sub in psubs if echo or sub.cid != pub_cid]
            for group in qsubs:
                if not echo:
                    group = [s for s in group if s.cid != pub_cid]
                if group:
                    chosen.append(group[int(random() * len(group))])
            for sub in chosen:
                parts = self._parts_for(sub, dests, clients)
                if sub.limited:
                    limited.setdefault(sub.cid, []).append((len(parts), sub.sid))
                if head_p is None or sub.headers:
                    parts += (head, sub.sid, mid, payload, CRLF)
                else:
                    parts += (head_p, sub.sid, mid_p, payload[hdr:], CRLF)
            delivered = bool(chosen)
            if not delivered and no_responders and reply is not None:
                if noresp is None:  # only the publisher's own subscriptions, with echo off
                    noresp = []
                noresp.append((subject, reply))
        for cid, parts in dests.items():
            if not parts:
                continue  # a queue member that no message of this batch picked
            count = len(parts) // 5
            self.msgs_routed += count
            _tell(clients[cid], ("msgs", parts, count, limited.get(cid), pub_cid))
        if noresp:
            for subject, reply in noresp:
                _tell(pub_ref, ("noresp", subject, reply))
        if uninterested:
            _tell(pub_ref, ("no_interest", generation, uninterested))


class _Space:
    """One account's subscriptions in this shard, and its per-subject route cache."""

    __slots__ = ("sublist", "routes", "generation")

    def __init__(self):
        self.sublist = Sublist()
        self.routes: dict = {}  # subject -> (psubs, qsubs, head)
        self.generation = -1


def _merged_stats(stats: list[dict]) -> dict:
    if not stats:
        return Sublist().stats()
    if len(stats) == 1:
        return stats[0]
    out = {k: sum(s[k] for s in stats) for k in stats[0]}
    out["max_fanout"] = max(s["max_fanout"] for s in stats)
    matches = out["num_matches"]
    out["cache_hit_rate"] = (sum(s["cache_hit_rate"] * s["num_matches"] for s in stats) / matches
                             if matches else 0.0)
    caches = out["num_cache"]
    out["avg_fanout"] = (sum(s["avg_fanout"] * s["num_cache"] for s in stats) / caches
                         if caches else 0.0)
    return out


def _tell(ref, message) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass  # the client is gone; its subscriptions are being removed
