"""Helpers for interop tests that drive a server with nats-py, the way applications do.

Owns: running one asyncio coroutine per sync test (`run`), connecting clients that are
always closed and whose asynchronous errors are recorded (`Clients`), waiting for a
condition with a generous timeout (`eventually`), and a `sync_point` barrier that proves
every message a publisher sent earlier has reached the given receivers.

Must not: patch anything (this process is plain asyncio; servers run as subprocesses),
assert on timing, or start servers (that is the `server` / `start_server` fixtures' job).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

# Generous: reached only when something is broken, never a performance expectation.
TIMEOUT = 10.0
TEST_TIMEOUT = 60.0

_unique = itertools.count()


def run(coro_fn: Callable[..., Awaitable], *args, timeout: float = TEST_TIMEOUT):
    """Run `coro_fn(*args)` in a fresh event loop, failing if it takes longer than `timeout`."""

    async def main():
        return await asyncio.wait_for(coro_fn(*args), timeout)

    return asyncio.run(main())


def unique(prefix: str = "t") -> str:
    """A subject token unique within this test process."""
    return f"{prefix}{next(_unique)}"


async def eventually(predicate: Callable[[], bool], timeout: float = TIMEOUT,
                     what: str = "condition") -> None:
    """Wait until `predicate()` is true; fail (not hang) after a generous timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_event(event: asyncio.Event, what: str, timeout: float = TIMEOUT) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def settle(nc: Client) -> None:
    """Wait until nats-py has handed every buffered command to its socket.

    nats-py 2.16's `flush()` (and the flush inside `drain()`) writes PING straight to the
    socket, ahead of SUB/PUB/UNSUB commands still sitting in its pending buffer, so the PONG
    can come back before the server has seen them. Waiting for the buffer to empty first
    restores the guarantee applications expect from `flush()`.
    """
    await eventually(lambda: nc.pending_data_size == 0 or not nc.is_connected,
                     what="nats-py to write its pending buffer")


async def flush(nc: Client, timeout: float = TIMEOUT) -> None:
    """`nc.flush()` that really covers everything sent before it (see `settle`)."""
    await settle(nc)
    await nc.flush(timeout=timeout)


async def next_msgs(sub, n: int, timeout: float = TIMEOUT) -> list[Msg]:
    """The next `n` messages of a callback-less subscription."""
    return [await sub.next_msg(timeout=timeout) for _ in range(n)]


async def sync_point(publisher: Client, *receivers: Client) -> None:
    """Return once every message `publisher` published before this call has been delivered
    to `receivers` (NATS keeps the order of one publisher's messages to one connection).

    Each receiver subscribes to a fresh subject, the publisher sends one marker to each, and
    we wait for every marker to arrive.
    """
    subs = []
    for rc in receivers:
        subject = unique("_SYNC.")
        subs.append((subject, await rc.subscribe(subject)))
        await flush(rc)
    for subject, _ in subs:
        await publisher.publish(subject, b"sync")
    for _, sub in subs:
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert msg.data == b"sync"
        await sub.unsubscribe()


class Clients:
    """Connects nats-py clients to one server and closes them all on exit.

    Asynchronous errors reported to `error_cb` are recorded per client; on a clean exit a
    client that was not connected with `expect_errors=True` must have reported none.
    """

    def __init__(self, url: str):
        self.url = url
        self._clients: list[tuple[Client, list, bool]] = []

    async def connect(self, url: str | None = None, expect_errors: bool = False,
                      **options) -> Client:
        errors: list[Exception] = []
        user_error_cb = options.pop("error_cb", None)

        async def error_cb(e: Exception) -> None:
            errors.append(e)
            if user_error_cb is not None:
                await user_error_cb(e)

        options.setdefault("allow_reconnect", False)
        options.setdefault("connect_timeout", 5)
        nc = await nats.connect(url or self.url, error_cb=error_cb, **options)
        self._clients.append((nc, errors, expect_errors))
        return nc

    def errors(self, nc: Client) -> list[Exception]:
        for client, errors, _ in self._clients:
            if client is nc:
                return errors
        raise KeyError(nc)

    async def __aenter__(self) -> "Clients":
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        for nc, _, _ in self._clients:
            if not nc.is_closed:
                try:
                    await asyncio.wait_for(nc.close(), TIMEOUT)
                except Exception:
                    if exc_type is None:
                        raise
        if exc_type is None:
            for nc, errors, expect_errors in self._clients:
                if not expect_errors:
                    assert errors == [], f"unexpected asynchronous errors: {errors!r}"
