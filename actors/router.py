"""The Router: the supervisor of the subject Shards, and the rules that say which shard owns what.

The shards split the **publishers**, not the subjects: every shard holds the whole subscription
index, and each publisher (a client connection, or an internal client) sends all its messages to
one shard, `cid % N`. One publisher's messages are therefore routed by one actor, in the order
they were published, whatever their subjects, and reach each subscriber in that order, as on the
reference, which processes a connection sequentially. Each shard holds every subscription that
can match, so queue groups, no-responders and fan-out are decided in one place without
cross-shard coordination. A subscription change is told to every shard (the price: N inserts per
SUB); a shard killed stops only the publishers pinned to it until it is back.

(An earlier design partitioned by a subject's first token; it let one publisher's `a.1` and
`b.1` reach a `>` subscriber in either order, because two shards run in either order.)

`ShardTable` is the address book of the current shard refs (replaced when a shard restarts);
clients read it to send their batches. It is registry data, not shard state.

`Subscription` is the immutable record a client hands to its shards: the shard indexes it and
addresses deliveries to `client` (an actor ref) with `sid`; `cid` lets the shard honour
echo:false; `headers` says whether the client can take HMSG; `limited` marks subscriptions with
an UNSUB max, whose deliveries the client counts; `account` is the subject space it lives in;
`replies` marks an internal subscriber that answers each message's reply itself (a Stream's
PubAck): a shard routing it a single message whose reply subject has exactly one plain
subscriber hands it that subscriber too, and the answer goes straight there (see
actors/shard.py `_route_one`).
"""

from __future__ import annotations

from .supervisor import ONE_FOR_ONE, ChildSpec, Supervisor

DEFAULT_SHARDS = 4


class Subscription:
    __slots__ = ("subject", "queue", "sid", "client", "cid", "headers", "limited", "account",
                 "replies")

    def __init__(self, subject: bytes, queue, sid: bytes, client, cid: int, headers: bool,
                 limited: bool = False, account: str = "$G", replies: bool = False):
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.client = client
        self.cid = cid
        self.headers = headers
        self.limited = limited
        self.account = account
        self.replies = replies

    def with_limit(self) -> "Subscription":
        return Subscription(self.subject, self.queue, self.sid, self.client, self.cid, self.headers, True,
                            self.account, self.replies)

    def __repr__(self) -> str:
        return f"Subscription({self.subject!r}, queue={self.queue!r}, sid={self.sid!r}, cid={self.cid})"


class ShardTable:
    """Current shard refs by index; `shard_for(cid)` is the shard a publisher sends to.

    `interest_generation` changes whenever a subscription change is *sent* to a shard (or a
    shard starts). A shard that routed a batch finding no interest in some subjects tells the
    publisher so, stamped with the generation the publisher read when it sent the batch; while
    the generation is unchanged the publisher may drop further messages on those subjects
    itself (nats-server's per-client cache, checked against its sublist's generation). Bumping
    at send time keeps `SUB; PING/PONG` then another client's publish exact: the publisher sees
    the new generation, and the shard's mailbox has the SUB ahead of the message."""

    def __init__(self, n: int = DEFAULT_SHARDS):
        self.n = n
        self.refs: list = [None] * n
        self.interest_generation = 0
        self.paths = [f"/server/router/shard-{i}" for i in range(n)]
        self.all = range(n)  # where a subscription goes: every shard

    def shard_for(self, cid: int) -> int:
        """The shard publisher `cid` sends all its messages to (internal cids are negative)."""
        return cid % self.n


class Router(Supervisor):
    """one_for_one over the shards: a shard's state is derived, so it restarts alone."""

    kind = "router"
    strategy = ONE_FOR_ONE
    intensity = 20
    period = 5.0
    start_in_order = False  # shards are peers: all at once, so a router restart is short

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        self.ctx = ctx
        super().__init__(path, parent, child_id, restarted=restarted)

    def child_specs(self):
        from .shard import Shard

        router_restarted = self.restarted

        def factory(index):
            def start(path, parent, child_id, restarted):
                # shards of a restarted router are new too: they ask the clients to re-register
                return Shard.start(path, parent, child_id, self.ctx, index, restarted or router_restarted)
            return start

        return [ChildSpec(f"shard-{i}", factory(i), kind="shard") for i in range(self.ctx.shards.n)]
