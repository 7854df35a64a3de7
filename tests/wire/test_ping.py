"""PING and PONG in both directions: the server answers a client's PING; with a short
ping_interval it pings the client, keeps a client that answers, and after ping_max unanswered
PINGs sends `-ERR 'Stale Connection'` and closes.

Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

import time

from tests.wire.proto import client, err_line, msg, pub, raw_client

FAST_PINGS = 'ping_interval: "200ms"\nping_max: 2\n'


def test_ping_pong(server):
    w = client(server)
    w.send(b"PING\r\n")
    w.expect(b"PONG\r\n")


def test_ping_before_connect(server):
    w = raw_client(server)
    w.send(b"PING\r\n")
    w.expect(b"PONG\r\n")


def test_each_ping_gets_a_pong(server):
    w = client(server)
    w.send(b"PING\r\n" * 5)
    assert [w.read_op().verb for _ in range(5)] == ["PONG"] * 5
    assert w.sync() == []


def test_pong_comes_after_earlier_deliveries(server):
    # A PONG means the server has processed everything sent before the PING.
    w = client(server)
    w.send(b"SUB foo 1\r\n" + pub("foo", b"1") + b"PING\r\n" + pub("foo", b"2") + b"PING\r\n")
    assert [w.read_op().raw for _ in range(4)] == [msg("foo", "1", b"1"), b"PONG\r\n",
                                                   msg("foo", "1", b"2"), b"PONG\r\n"]


def test_unsolicited_pong_is_ignored(server):
    w = client(server)
    assert w.roundtrip(b"PONG\r\nPONG\r\n") == []


def test_server_pings_and_client_that_answers_stays(impl, start_server):
    srv = start_server(impl, config=FAST_PINGS)
    w = client(srv)
    # Answer more PINGs than ping_max would allow to go unanswered.
    for _ in range(5):
        op = w.read_op(pings=True)
        assert op.verb == "PING", op
        w.send(b"PONG\r\n")
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"alive")) == [msg("foo", "1", b"alive")]


def test_silent_client_gets_stale_connection(impl, start_server):
    srv = start_server(impl, config=FAST_PINGS)
    w = client(srv)
    ops = w.ops_until_closed(timeout=15, pings=True)
    # ping_max (2) PINGs go unanswered, then the error and the close.
    assert ops == [b"PING\r\n", b"PING\r\n", err_line("Stale Connection")]


def test_stale_client_before_connect(impl, start_server):
    srv = start_server(impl, config=FAST_PINGS)
    w = raw_client(srv)
    ops = w.ops_until_closed(timeout=15, pings=True)
    assert ops == [b"PING\r\n", b"PING\r\n", err_line("Stale Connection")]


def test_stale_client_does_not_affect_others(impl, start_server):
    srv = start_server(impl, config=FAST_PINGS)
    silent = client(srv)
    alive = client(srv)
    assert alive.roundtrip(b"SUB foo 1\r\n") == []
    # Wait for `silent` to be dropped while `alive` keeps answering its own PINGs.
    seen = []
    deadline = time.monotonic() + 15
    while True:
        assert time.monotonic() < deadline, f"silent client never dropped; saw {seen!r}"
        try:
            seen.append(silent.read_op(timeout=0.05, pings=True))
        except ConnectionError:
            break
        except TimeoutError:
            pass
        try:
            seen.append(alive.read_op(timeout=0.05))   # answers PINGs; nothing else expected
        except TimeoutError:
            pass
    assert seen[-1] == err_line("Stale Connection")
    assert alive.roundtrip(pub("foo", b"x")) == [msg("foo", "1", b"x")]
