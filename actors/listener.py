"""Listener: the accept loop at the edge. It owns nothing but the loop; the listening socket is
bound at boot (so a port in use fails before the server says it is ready) and kept in the
context, so a restarted Listener accepts on the same socket. Each accepted connection becomes
one message to the Clients supervisor, which starts its Client actor.
"""

from __future__ import annotations

import logging

import gevent

from .runtime import Actor, tell

log = logging.getLogger("actor_nats")


class Listener(Actor):
    kind = "listener"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.ctx = ctx
        self._loop = None

    def describe(self) -> dict:
        try:
            host, port = self.ctx.listen_sock.getsockname()[:2]
        except OSError:  # closed: lame duck mode or shutdown
            return {"listen": "closed"}
        return {"listen": f"{host}:{port}"}

    def started(self) -> None:
        if not self.ctx.lame_duck:
            self._loop = gevent.spawn(self._accept_loop)

    def handle(self, message):
        if message[0] == "stop_accepting":
            if self._loop is not None:
                self._loop.kill(block=False)
                self._loop = None
            return None
        return super().handle(message)

    def cleanup(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)

    def _accept_loop(self) -> None:
        lsock = self.ctx.listen_sock
        while True:
            try:
                sock, addr = lsock.accept()
            except OSError as e:
                if self.ctx.shutting_down or self.ctx.lame_duck:
                    return  # the socket was closed on purpose
                log.error("Error accepting client connection: %s", e)
                gevent.sleep(0.01)
                continue
            if not tell("/server/clients", ("accept", sock, addr)):
                sock.close()
