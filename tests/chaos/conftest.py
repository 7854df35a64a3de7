"""Fixtures for chaos tests: actor-nats (only) with a monitoring port, killing enabled."""

from __future__ import annotations

import pytest

from tests.chaos.helpers import KILL_CONFIG, Chaos
from tests.servers import free_port


@pytest.fixture
def chaos(start_server):
    """`chaos(config=..., args=...)` starts actor-nats with `-m <free port>` (and, by default,
    `debug { allow_kill: true }`); stopped at teardown by `start_server`."""

    def start(config: str = KILL_CONFIG, args=()) -> Chaos:
        http_port = free_port()
        server = start_server("actor", config=config, args=["-m", str(http_port), *args])
        return Chaos(server, http_port)

    return start
