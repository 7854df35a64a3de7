"""The JetStream usage ledger: bytes stored, per stream, per account and per server, by storage.

Every Stream actor owns one slot, (account, stream) -> (memory?, bytes), and writes only that
slot (`report`), after each publish batch and each other message that changed its bytes; a
deleted stream drops its slot. The totals are kept as the slots change. At the start of a batch
a stream asks for its `room` (bytes it may store before a limit needs a closer look), counts it
down per message, and calls `check` only when it runs out: the reference's rules, as it applies
them before it stores a message:

- the server: with more bytes than `max_memory_store` / `max_file_store` already stored, a
  publish is refused with 10023 "insufficient resources";
- the account: when the message would take its usage past `max_memory` / `max_storage`, with
  10002 "resource limits exceeded for account".

It lives in the server's context like the ShardTable: registry data that streams report into,
not the state of any one actor. A restarted Stream writes its slot again (idempotent).
"""

from __future__ import annotations

import logging
import time

from ..protocol import jserrors as E

log = logging.getLogger("actor_nats")

_LOG_EVERY = 10.0  # seconds between "resource limits exceeded" log lines, as the reference


class JsUsage:
    def __init__(self):
        self._slots: dict[tuple[str, str], tuple[bool, int]] = {}
        self.server = [0, 0]  # [file bytes, memory bytes]
        self._accounts: dict[str, list[int]] = {}  # account -> [file bytes, memory bytes]
        self._server_max = (0, 0)
        self._server_key = None
        self._options = None  # the options the limits below were read from
        self._accounts_table = None
        self._account_max: dict[str, tuple[int, int]] = {}  # account -> (file, memory) limit
        self._logged = 0.0

    def room(self, ctx, account: str, memory: bool) -> int:
        """How many more bytes may be stored before a limit needs a closer look."""
        server = self._server_limit(ctx, memory) - self.server[memory]
        limit = self._account_limit(ctx, account)[memory]
        if limit < 0:
            return server
        return min(server, limit - self.used(account, memory))

    def check(self, ctx, account: str, memory: bool, size: int, grown: int = 0) -> E.ApiError | None:
        """Would storing `size` more bytes break a limit (`grown`: bytes stored and not yet
        reported)? The error to answer with, or None. The limits are re-read only when the
        options or the accounts table are replaced, as a reload or a JWT update does; both are
        immutable."""
        if self.server[memory] + grown > self._server_limit(ctx, memory):
            now = time.monotonic()
            if now - self._logged > _LOG_EVERY:
                self._logged = now
                log.error("JetStream %s resource limits exceeded for server",
                          "memory" if memory else "storage")
            return E.JSInsufficientResourcesError()
        limit = self._account_limit(ctx, account)[memory]
        if limit >= 0 and self.used(account, memory) + grown + size > limit:
            return E.JSAccountResourcesExceededError()
        return None

    def _server_limit(self, ctx, memory: bool) -> int:
        if ctx.options is not self._options:
            self._read_server_limits(ctx)
        return self._server_max[memory]

    def _account_limit(self, ctx, account: str) -> tuple[int, int]:
        """(file, memory) limit of `account`, -1 for none."""
        accounts = getattr(ctx, "accounts", None)
        if accounts is not self._accounts_table:
            self._accounts_table = accounts
            self._account_max.clear()
        limit = self._account_max.get(account)
        if limit is None:
            limits = (accounts.jetstream_limits(account) if accounts is not None else None) or {}
            limit = self._account_max[account] = (_limit(limits.get("max_storage")),
                                                  _limit(limits.get("max_memory")))
        return limit

    def _read_server_limits(self, ctx) -> None:
        self._options = ctx.options
        js = ctx.options.jetstream
        key = (js.max_file_store, js.max_memory_store)
        if key != self._server_key:  # (reloadable; unset ones are measured once, as the reference)
            from .jetstream import server_limits

            mem, disk = server_limits(ctx)
            self._server_max = (disk, mem)
            self._server_key = key

    def report(self, account: str, stream: str, memory: bool, used: int) -> None:
        key = (account, stream)
        old = self._slots.get(key)
        if old == (memory, used):
            return
        if old is not None:
            self._move(account, old[0], -old[1])
        self._slots[key] = (memory, used)
        self._move(account, memory, used)

    def drop(self, account: str, stream: str) -> None:
        old = self._slots.pop((account, stream), None)
        if old is not None:
            self._move(account, old[0], -old[1])

    def used(self, account: str, memory: bool) -> int:
        acc = self._accounts.get(account)
        return acc[memory] if acc is not None else 0

    def _move(self, account: str, memory: bool, delta: int) -> None:
        self.server[memory] += delta
        acc = self._accounts.get(account)
        if acc is None:
            acc = self._accounts[account] = [0, 0]
        acc[memory] += delta


def _limit(v) -> int:
    return v if isinstance(v, int) and v >= 0 else -1


def usage(ctx) -> JsUsage:
    u = getattr(ctx, "js_usage", None)
    if u is None:
        u = ctx.js_usage = JsUsage()
    return u
