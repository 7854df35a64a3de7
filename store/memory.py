"""The memory store: a stream's messages held in a dict (storage: memory).

Owns nothing beyond IndexedStore (store/indexed.py), which has every rule: this module only
says that a message's entry *is* its StoredMsg, and keeps consumers' state in memory
(MemoryConsumerStore). Nothing survives the process.
"""

from __future__ import annotations

import copy

from .base import ConsumerState, ConsumerStore, StoredMsg, StreamLimits
from .indexed import IndexedStore


class MemoryStore(IndexedStore):
    def __init__(self, limits: StreamLimits, first_seq: int = 1):
        super().__init__(limits, first_seq)
        self._consumers: dict[str, MemoryConsumerStore] = {}

    def _append(self, seq, subject, hdr, data, ts, ttl):
        return StoredMsg(subject, seq, ts, hdr, data)

    def _read(self, seq, entry):
        return entry

    def consumer_store(self, name: str) -> "MemoryConsumerStore":
        cs = self._consumers.get(name)
        if cs is None:
            cs = self._consumers[name] = MemoryConsumerStore(self, name)
        return cs

    def consumer_names(self) -> list[str]:
        return sorted(self._consumers)

    def delete(self) -> None:
        self._clear(self._last + 1)
        self._consumers.clear()


class MemoryConsumerStore(ConsumerStore):
    def __init__(self, stream: MemoryStore, name: str):
        self._stream = stream
        self._name = name
        self._config: dict | None = None
        self._state = ConsumerState()

    def save_config(self, config: dict) -> None:
        self._config = copy.deepcopy(config)

    def load_config(self) -> dict | None:
        return copy.deepcopy(self._config)

    def update(self, state: ConsumerState) -> None:
        self._state = copy.deepcopy(state)

    def load(self) -> ConsumerState:
        return copy.deepcopy(self._state)

    def delete(self) -> None:
        if self._stream._consumers.get(self._name) is self:
            del self._stream._consumers[self._name]
