"""Shared fixtures: servers of either implementation on free loopback ports.

`server` is parametrised over actor-nats and the reference binary (AN_IMPL=actor|reference|both
narrows it), so every wire expectation is checked against the reference too. `actor_server`
is actor-nats only; `start_server` starts as many more as a test needs, all stopped at teardown.
"""

from __future__ import annotations

import pytest

from tests.servers import Server, selected_impls


@pytest.fixture
def start_server():
    started: list[Server] = []

    def start(impl: str = "actor", args=(), config: str | None = None, **kw) -> Server:
        srv = Server(impl, args=args, config=config, **kw)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(params=selected_impls())
def impl(request) -> str:
    return request.param


@pytest.fixture
def server(impl, start_server) -> Server:
    return start_server(impl)


@pytest.fixture
def actor_server(start_server) -> Server:
    return start_server("actor")
