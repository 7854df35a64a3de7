"""Clients: the supervisor of every client connection (temporary children, one per socket).

It hands out client ids (cid, from 1 as in the reference), counts every accepted connection
(`total_connections`, rejected ones included, as the reference counts them), enforces
max_connections (the rejected client still gets INFO, then `-ERR 'maximum connections
exceeded'`), and keeps, for monitoring, the ring of the last MAX_CLOSED closed connections
(each a Client's `conn_info` with `stop` and `reason`) and the message/byte totals of every
connection ever closed (the ring forgets, the totals do not). A crashed Client is not restarted:
its connection is gone and the client library reconnects.

Asks: ("refs",) -> the open clients' refs; ("closed_list",) -> the ring, oldest first;
("monitor_view",) -> {"refs", "closed", "totals"} in one answer, so that a connection that
closes while the Monitor gathers is counted either as open or as closed, never as both.
"""

from __future__ import annotations

from collections import deque

from .client import Client
from .supervisor import ONE_FOR_ONE, TEMPORARY, ChildSpec, StartChild, Supervisor

MAX_CLOSED = 10000  # the reference's max_closed_clients default
TOTALS = ("in_msgs", "out_msgs", "in_bytes", "out_bytes")


class Clients(Supervisor):
    kind = "clients"
    strategy = ONE_FOR_ONE
    intensity = 1_000_000  # temporary children never charge the budget
    period = 1.0

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id, restarted=restarted)
        self.ctx = ctx
        self.cids = ctx.cids
        self.closed: deque = deque(maxlen=MAX_CLOSED)
        self.closed_totals = dict.fromkeys(TOTALS, 0)
        self.accepting = True

    def handle_other(self, message):
        kind = message[0]
        if kind == "accept":
            _, sock, addr = message
            cid = next(self.cids)
            self.ctx.stats.total_connections += 1
            reject = None
            if len(self.children) >= self.ctx.options.max_connections:
                reject = "maximum connections exceeded"
            ctx = self.ctx

            def start(path, parent, child_id, restarted):
                return Client.start(path, parent, child_id, ctx, sock, addr, cid, reject)

            self.handle(StartChild(ChildSpec(f"cid-{cid}", start, restart=TEMPORARY, shutdown=2.0,
                                             kind="client")))
            return None
        if kind == "closed":
            info = message[1]
            self.closed.append(info)
            for k in TOTALS:
                self.closed_totals[k] += info.get(k, 0)
            return None
        if kind == "refs":
            return self._refs()
        if kind == "closed_list":
            return list(self.closed)
        if kind == "monitor_view":
            return {"refs": self._refs(), "closed": list(self.closed),
                    "totals": dict(self.closed_totals)}
        return super().handle_other(message)

    def _refs(self) -> list:
        return [c.ref for c in self.children.values() if c.ref is not None]
