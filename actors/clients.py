"""Clients: the supervisor of every client connection (temporary children, one per socket).

It hands out client ids (cid, from 1 as in the reference), enforces max_connections (the
rejected client still gets INFO, then `-ERR 'maximum connections exceeded'`), and keeps the
ring of recently closed connections with their close reasons for monitoring. A crashed Client
is not restarted: its connection is gone and the client library reconnects.
"""

from __future__ import annotations

from collections import deque

from .client import Client
from .supervisor import ONE_FOR_ONE, TEMPORARY, ChildSpec, StartChild, Supervisor

MAX_CLOSED = 10000


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
        self.accepting = True

    def handle_other(self, message):
        kind = message[0]
        if kind == "accept":
            _, sock, addr = message
            cid = next(self.cids)
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
            self.closed.append(message[1])
            return None
        if kind == "refs":
            return [c.ref for c in self.children.values() if c.ref is not None]
        if kind == "closed_list":
            return list(self.closed)
        return super().handle_other(message)
