"""The actor runtime: pykka actors on gevent greenlets, counted mailboxes, and the
registry that addresses every actor by a stable path such as `/server/router/shard-3`.

What it owns:
- `patch()`: gevent's monkey patching, which must run before anything imports socket/threading.
  After it, pykka's ThreadingActor runs each actor on a greenlet (no OS threads).
- `Inbox` and `Future`: a mailbox and an ask's reply made for greenlets of one hub (a deque
  with one waiting reader; a gevent AsyncResult) instead of pykka's own (gevent's Queue, a
  Condition-based future): measured 1.0 us per queue hop against 2.5, 7 us per ask against 13.
- `Actor`: our base class. It registers itself under its path, counts what it processes, turns
  a `Crash` message into a real fault (for `actor-nats kill` and chaos tests), and reports its
  own failure or exit to its supervisor **as a mailbox message** (pykka tells nobody).
- `Registry`: path -> entry (ref, kind, start time, restarts). A restarted actor is a new actor
  with a new ref; callers look refs up by path instead of keeping one from before a restart.

It must not know any NATS concept: the NATS actors live in their own modules.
"""

from __future__ import annotations

import itertools
import logging
import queue
import sys
import time
from collections import deque
from dataclasses import dataclass, field

_patched = False


def patch() -> None:
    """Monkey-patch the standard library for gevent (idempotent). Call before other imports."""
    global _patched
    if not _patched:
        from gevent import monkey

        monkey.patch_all()
        _patched = True


import gevent  # noqa: E402  (imported after the patch helper is defined; patch() runs first)
import gevent.event  # noqa: E402
import gevent.queue  # noqa: E402
import pykka  # noqa: E402

log = logging.getLogger("actor_nats")


class Crash(Exception):
    """Raised inside an actor on purpose (`kill`): it fails exactly as a real fault would."""


@dataclass(frozen=True)
class CrashRequest:
    reason: str = "killed on purpose"


@dataclass(frozen=True)
class ChildFailed:
    """Sent by a child to its supervisor when it dies of an exception."""
    child_id: str
    path: str
    error: str
    actor_urn: str


@dataclass(frozen=True)
class ChildExited:
    """Sent by a child to its supervisor when it stops normally."""
    child_id: str
    path: str
    actor_urn: str


class Inbox:
    """An actor's mailbox: a deque, one waiting reader (the actor's greenlet), and a counter
    (depth is visible in monitoring).

    Single-reader by construction: only the actor's own loop calls `get`. A `put` that finds
    the reader waiting schedules one hub callback that switches to it; that is all a hop
    costs. (gevent's Queue, built for many readers and timeouts, allocates a Waiter and an
    unlock callback per hop: measured 2.5 us per hop against 1.0 here, and a publish through
    JetStream crosses five mailboxes.) Used only from the hub's thread, as every actor is.
    """

    __slots__ = ("_d", "_reader", "_hub", "received")

    def __init__(self):
        self._d = deque()
        self._reader = None  # the greenlet blocked in get(), while it is
        self._hub = gevent.get_hub()
        self.received = 0

    def put(self, envelope, /) -> None:
        self.received += 1
        self._d.append(envelope)
        reader = self._reader
        if reader is not None:
            self._reader = None
            self._hub.loop.run_callback(self._wake, reader)

    @staticmethod
    def _wake(reader) -> None:
        if not reader.dead:
            reader.switch()

    def get(self):
        d = self._d
        while not d:
            self._reader = gevent.getcurrent()
            try:
                self._hub.switch()
            finally:
                self._reader = None
        return d.popleft()

    def empty(self) -> bool:
        return not self._d

    def qsize(self) -> int:
        return len(self._d)


class Future(pykka.Future):
    """What an `ask` returns: pykka's Future on a gevent AsyncResult.

    pykka's ThreadingFuture waits on a threading.Condition, which under gevent's patching is
    Python-level locks: an ask cost 13 us. Every actor here is a greenlet of one hub, so an
    AsyncResult is all a reply needs. `pykka.Timeout` on timeout, as pykka's own."""

    def __init__(self) -> None:
        super().__init__()
        self._result = gevent.event.AsyncResult()

    def get(self, *, timeout: float | None = None):
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        try:
            return self._result.get(timeout=timeout)
        except gevent.Timeout:
            raise pykka.Timeout(f"{timeout} seconds") from None

    def set(self, value=None) -> None:
        if self._result.ready() or self._get_hook is not None:
            raise queue.Full
        self._result.set(value)

    def set_exception(self, exc_info=None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._result.ready() or self._get_hook is not None:
            raise queue.Full
        value = exc_info[1] if exc_info[1] is not None else exc_info[0]()
        self._result.set_exception(value, exc_info=exc_info)

    def set_get_hook(self, func) -> None:
        if self._result.ready():
            raise queue.Full
        super().set_get_hook(func)


@dataclass
class Entry:
    path: str
    kind: str
    ref: pykka.ActorRef
    parent: str | None
    started: float = field(default_factory=time.time)
    restarts: int = 0
    info: dict = field(default_factory=dict)
    ready: bool = False  # its `started()` has returned


class Registry:
    """Every live actor by path. Supervisors carry restart counts across incarnations."""

    def __init__(self):
        self._entries: dict[str, Entry] = {}
        self._restarts: dict[str, int] = {}
        self.ready_signal = gevent.event.Event()  # pulsed when an actor finishes starting

    def mark_ready(self, entry: Entry) -> None:
        entry.ready = True
        self.ready_signal.set()
        self.ready_signal.clear()

    def register(self, path: str, kind: str, ref, parent: str | None, info=None) -> Entry:
        entry = Entry(path, kind, ref, parent, restarts=self._restarts.get(path, 0), info=info or {})
        self._entries[path] = entry
        return entry

    def unregister(self, path: str, ref=None) -> None:
        entry = self._entries.get(path)
        if entry is not None and (ref is None or entry.ref is ref):
            del self._entries[path]

    def note_restart(self, path: str) -> int:
        n = self._restarts.get(path, 0) + 1
        self._restarts[path] = n
        return n

    def forget(self, path: str) -> None:
        self._restarts.pop(path, None)

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def ref(self, path: str):
        entry = self._entries.get(path)
        return entry.ref if entry is not None else None

    def children(self, path: str) -> list[Entry]:
        return [e for e in self._entries.values() if e.parent == path]

    def entries(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: e.path)


registry = Registry()
_urns = itertools.count(1)


class Actor(pykka.ThreadingActor):
    """Base of every actor-nats actor. Subclasses implement `handle(message)`.

    `path` is the stable address; `parent` the supervisor's path (None for the root);
    `child_id` the id in the parent's child specs.
    """

    use_daemon_thread = True
    kind = "actor"

    def __init__(self, path: str, parent: str | None = None, child_id: str | None = None):
        super().__init__()
        self.path = path
        self.parent = parent
        self.child_id = child_id or path.rsplit("/", 1)[-1]
        self.processed = 0
        self._failed = False

    @staticmethod
    def _create_actor_inbox():
        return Inbox()

    @staticmethod
    def _create_future():
        return Future()

    # -- pykka hooks -------------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            entry = registry.register(self.path, self.kind, self.actor_ref, self.parent, self.describe())
            self.started()
            registry.mark_ready(entry)
        except Exception:
            # pykka stops an actor whose on_start raises without calling on_failure: report it
            # to the supervisor like any other crash, then let pykka stop it
            self.on_failure(*sys.exc_info())
            raise

    def _actor_loop_running(self) -> None:
        """pykka's loop, with the dispatch of our own messages (tuples, never one of pykka's
        control messages or a CrashRequest) inlined: on the publish path every message crosses
        three or four mailboxes, and the four isinstance checks and two calls per message that
        this skips were a measurable part of each hop. Anything else goes through pykka's
        `_handle_receive` as before; failures are handled exactly as pykka handles them."""
        stopped = self.actor_stopped
        get = self.actor_inbox.get
        while not stopped.is_set():
            envelope = get()
            message = envelope.message
            try:
                if type(message) is tuple:
                    self.processed += 1
                    response = self.handle(message)
                else:
                    response = self._handle_receive(message)
                if envelope.reply_to is not None:
                    envelope.reply_to.set(response)
            except Exception:
                if envelope.reply_to is not None:
                    log.info("Exception returned from %s to caller:", self, exc_info=sys.exc_info())
                    envelope.reply_to.set_exception()
                else:
                    self._handle_failure(*sys.exc_info())
                    try:
                        self.on_failure(*sys.exc_info())
                    except Exception:
                        self._handle_failure(*sys.exc_info())
            except BaseException:
                log.debug("%r in %s. Stopping all actors.", sys.exc_info()[1], self)
                self._stop()
                pykka.ActorRegistry.stop_all()

    def on_receive(self, message):
        self.processed += 1
        if isinstance(message, CrashRequest):
            raise Crash(message.reason)
        return self.handle(message)

    def on_failure(self, exc_type, exc_value, tb) -> None:
        self._failed = True
        registry.unregister(self.path, self.actor_ref)
        try:
            self.cleanup()
        finally:
            self._notify_parent(ChildFailed(self.child_id, self.path, f"{exc_type.__name__}: {exc_value}",
                                            self.actor_urn))

    def on_stop(self) -> None:
        registry.unregister(self.path, self.actor_ref)
        try:
            self.cleanup()
        finally:
            self._notify_parent(ChildExited(self.child_id, self.path, self.actor_urn))

    def _notify_parent(self, message) -> None:
        if self.parent is None:
            self.root_down(message)
            return
        ref = registry.ref(self.parent)
        if ref is not None:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                pass

    # -- for subclasses ----------------------------------------------------------------------

    def started(self) -> None:
        """Runs on the actor's greenlet before its first message (pykka's on_start)."""

    def handle(self, message):
        log.warning("%s: unexpected message %r", self.path, message)

    def cleanup(self) -> None:
        """Release what the actor holds (sockets, greenlets), on a normal stop or a crash."""

    def describe(self) -> dict:
        """Extra facts shown in the tree (e.g. a client's address and name)."""
        return {}

    def root_down(self, message) -> None:
        """The root actor stopped or failed; only the root overrides this."""

    def mailbox_depth(self) -> int:
        return self.actor_inbox.qsize()


def tell(path: str, message) -> bool:
    """Send to whatever actor is at `path` now; False if none is (e.g. mid-restart)."""
    ref = registry.ref(path)
    if ref is None:
        return False
    try:
        ref.tell(message)
        return True
    except pykka.ActorDeadError:
        return False


def spawn(fn, *args):
    """A helper greenlet owned by an actor (reader, writer, timer); the actor kills it on stop."""
    return gevent.spawn(fn, *args)
