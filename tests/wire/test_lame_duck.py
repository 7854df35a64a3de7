"""Lame duck mode (SIGUSR2): the server stops accepting, tells protocol>=1 clients with an INFO
carrying `ldm:true`, keeps serving through the grace period, then closes every client (no -ERR)
over lame_duck_duration and exits by itself.

The reference's minimum lame_duck_duration is 30s; with few clients it closes them about a
second apart after the grace period, so these tests take a few seconds, not thirty.
Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

import signal
import socket

import pytest

from tests.wire.proto import client, msg, pub

CONFIG = 'lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\n'


def test_lame_duck_informs_closes_and_exits(impl, start_server):
    srv = start_server(impl, config=CONFIG)
    modern = [client(srv, protocol=1) for _ in range(2)]
    legacy = client(srv, protocol=0)
    srv.signal(signal.SIGUSR2)

    for w in modern:
        info = w.expect_op("INFO", timeout=15).info
        assert info["ldm"] is True
        assert info["server_id"] == w.info["server_id"]
        assert info["client_id"] == w.info["client_id"]
        assert "connect_info" not in info
    # Every client is closed, without an -ERR; protocol 0 clients never hear about it.
    for w in modern + [legacy]:
        assert w.ops_until_closed(timeout=45) == []
    assert srv.wait(timeout=45) == 0


def test_lame_duck_refuses_new_connections(impl, start_server):
    srv = start_server(impl, config=CONFIG)
    w = client(srv, protocol=1)
    srv.signal(signal.SIGUSR2)
    assert w.expect_op("INFO", timeout=15).info["ldm"] is True
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((srv.host, srv.port), timeout=5).close()
    assert w.ops_until_closed(timeout=45) == []
    assert srv.wait(timeout=45) == 0


def test_lame_duck_keeps_serving_during_grace_period(impl, start_server):
    srv = start_server(impl, config='lame_duck_duration: "30s"\nlame_duck_grace_period: "3s"\n')
    sub = client(srv, protocol=1)
    p = client(srv, protocol=1)
    assert sub.roundtrip(b"SUB foo 1\r\n") == []
    srv.signal(signal.SIGUSR2)
    assert sub.expect_op("INFO", timeout=15).info["ldm"] is True
    assert p.expect_op("INFO", timeout=15).info["ldm"] is True
    # Well inside the 3s grace period: existing clients are still served.
    assert p.roundtrip(pub("foo", b"still")) == []
    assert sub.read_op() == msg("foo", "1", b"still")
    for w in (sub, p):
        assert w.ops_until_closed(timeout=45) == []
    assert srv.wait(timeout=45) == 0


def test_lame_duck_with_no_clients_exits(impl, start_server):
    srv = start_server(impl, config=CONFIG)
    srv.signal(signal.SIGUSR2)
    assert srv.wait(timeout=45) == 0
