"""Supervision, OTP style: children declared as data, restart strategies, restart budgets.

A `Supervisor` is an actor that starts its `ChildSpec`s in order, and when a child reports that
it failed (`ChildFailed`) or exited (`ChildExited`) applies the child's restart type:
- permanent: always restarted; transient: restarted only after a failure; temporary: never.
and the supervisor's strategy:
- one_for_one: restart only that child;
- one_for_all: stop all children, start all again;
- rest_for_one: stop the children started after it, restart it and them (start order matters:
  later children depend on earlier ones).
The restart budget is `intensity` restarts within `period` seconds; past it the supervisor gives
up and fails itself, so its own supervisor decides (escalation). The root's failure ends the
process with a clear message (see actors/server.py).

Dynamic children (clients) are added with `StartChild`; they are usually temporary.
A supervisor never touches a child's state; it only starts and stops actors.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import gevent
import pykka

from .runtime import Actor, ChildExited, ChildFailed, registry

log = logging.getLogger("actor_nats")

START_TIMEOUT = 120.0  # seconds a supervisor waits for one static child to finish starting

PERMANENT, TRANSIENT, TEMPORARY = "permanent", "transient", "temporary"
ONE_FOR_ONE, ONE_FOR_ALL, REST_FOR_ONE = "one_for_one", "one_for_all", "rest_for_one"


@dataclass(frozen=True)
class ChildSpec:
    """`factory(path, parent_path, child_id, restarted: bool)` returns a started ActorRef."""
    id: str
    factory: Callable
    restart: str = PERMANENT
    shutdown: float = 5.0
    kind: str = "actor"


@dataclass(frozen=True)
class StartChild:
    spec: ChildSpec


@dataclass(frozen=True)
class StopChild:
    child_id: str


@dataclass(frozen=True)
class WhichChildren:
    pass


class EscalatedFailure(Exception):
    """A supervisor exceeded its restart budget and fails so its parent can act."""


@dataclass
class _Child:
    spec: ChildSpec
    ref: object = None
    urn: str | None = None
    restarts: deque = field(default_factory=deque)


class Supervisor(Actor):
    kind = "supervisor"
    strategy = ONE_FOR_ONE
    intensity = 10
    period = 5.0
    start_in_order = True  # False: static children start all at once (independent peers)

    def __init__(self, path, parent=None, child_id=None, specs=(), restarted=False):
        super().__init__(path, parent, child_id)
        self.specs = list(specs)
        self.children: dict[str, _Child] = {}
        self.order: list[str] = []
        self.restart_times: deque = deque()
        self.restarted = restarted
        self._stopping_urns: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------

    def started(self) -> None:
        for spec in self.child_specs():
            self._add(spec)
            if self.restarted:  # a restarted supervisor's children are restarted too
                registry.note_restart(self.child_path(spec.id))
            ref = self._start(spec.id, restarted=self.restarted)
            if self.start_in_order:
                self._await_started(spec.id, ref)

    def _await_started(self, child_id: str, ref) -> None:
        """Static children start in order, each once the one before has finished starting (as
        OTP's start_link): a child may rely on its elder siblings, and the root's `started()`
        returns only when the whole static tree is up (e.g. JetStream has recovered its streams
        and subscribed to its API before the listener accepts). A child that dies starting is
        reported to this supervisor as usual; waiting stops then."""
        path = self.child_path(child_id)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            entry = registry.get(path)
            if entry is not None and entry.ref is ref and entry.ready:
                return
            if not ref.is_alive():
                return
            registry.ready_signal.wait(0.05)  # set whenever any actor finishes starting
        log.warning("%s: child %s still starting after %ss", self.path, child_id, START_TIMEOUT)

    def child_specs(self):
        """The static children, in start order (subclasses may compute them)."""
        return self.specs

    def cleanup(self) -> None:
        for cid in reversed(list(self.order)):
            self._stop_child(cid)

    # -- messages ---------------------------------------------------------------------------

    def handle(self, message):
        if isinstance(message, ChildFailed):
            return self._on_child_down(message.child_id, message.actor_urn, message.error, failed=True)
        if isinstance(message, ChildExited):
            return self._on_child_down(message.child_id, message.actor_urn, None, failed=False)
        if isinstance(message, StartChild):
            self._add(message.spec)
            return self._start(message.spec.id, restarted=False)
        if isinstance(message, StopChild):
            child = self.children.get(message.child_id)
            if child is not None:
                self._stop_child(message.child_id)
                self._remove(message.child_id)
            return None
        if isinstance(message, WhichChildren):
            return [(c.spec.id, c.spec.kind, c.spec.restart) for c in self.children.values()]
        return self.handle_other(message)

    def handle_other(self, message):
        return super().handle(message)

    # -- internals --------------------------------------------------------------------------

    def child_path(self, child_id: str) -> str:
        return f"{self.path}/{child_id}"

    def _add(self, spec: ChildSpec) -> None:
        if spec.id in self.children:
            self._stop_child(spec.id)
            self.order.remove(spec.id)
        self.children[spec.id] = _Child(spec)
        self.order.append(spec.id)

    def _remove(self, child_id: str) -> None:
        self.children.pop(child_id, None)
        if child_id in self.order:
            self.order.remove(child_id)
        registry.forget(self.child_path(child_id))

    def _start(self, child_id: str, restarted: bool):
        child = self.children[child_id]
        ref = child.spec.factory(self.child_path(child_id), self.path, child_id, restarted)
        child.ref = ref
        child.urn = ref.actor_urn
        return ref

    def _stop_child(self, child_id: str) -> None:
        child = self.children.get(child_id)
        if child is None or child.ref is None:
            return
        ref, child.ref = child.ref, None
        self._stopping_urns.add(ref.actor_urn)
        try:
            ref.stop(block=True, timeout=child.spec.shutdown)
        except pykka.Timeout:
            log.warning("%s: child %s did not stop within %ss", self.path, child_id, child.spec.shutdown)
        except pykka.ActorDeadError:
            pass

    def _on_child_down(self, child_id: str, urn: str, error: str | None, failed: bool):
        if urn in self._stopping_urns:
            self._stopping_urns.discard(urn)
            return None
        child = self.children.get(child_id)
        if child is None or child.urn != urn:
            return None  # a previous incarnation; already replaced
        child.ref = None
        restart = child.spec.restart
        if restart == TEMPORARY or (restart == TRANSIENT and not failed):
            self._remove(child_id)
            return None
        if failed:
            log.error("%s: child %s crashed: %s", self.path, child_id, error)
        self._charge_budget()
        self._restart(child_id)
        return None

    def _charge_budget(self) -> None:
        now = time.monotonic()
        self.restart_times.append(now)
        while self.restart_times and now - self.restart_times[0] > self.period:
            self.restart_times.popleft()
        if len(self.restart_times) > self.intensity:
            raise EscalatedFailure(
                f"{self.path}: more than {self.intensity} restarts in {self.period}s; giving up")

    def _restart(self, child_id: str) -> None:
        if self.strategy == ONE_FOR_ONE:
            group = [child_id]
        elif self.strategy == ONE_FOR_ALL:
            group = list(self.order)
        else:
            group = self.order[self.order.index(child_id):]
        for cid in reversed(group):
            if cid != child_id:
                self._stop_child(cid)
        for cid in group:
            registry.note_restart(self.child_path(cid))
            self._start(cid, restarted=True)
