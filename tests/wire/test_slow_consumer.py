"""Slow consumers: a subscriber that stops reading while others publish is disconnected once its
outbound buffer passes max_pending, without any -ERR, and the publisher carries on unaffected.

The reference refuses max_payload > max_pending, so max_payload is lowered with max_pending.
The subscriber pins a small SO_RCVBUF so the kernel cannot soak up the backlog on its behalf.
Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

from tests.wire.proto import client, msg, pub

CONFIG = 'max_pending: 100000\nmax_payload: 65536\nwrite_deadline: "2s"\n'
PAYLOAD = b"x" * 10_000
COUNT = 1200                     # 12 MB: far more than max_pending plus any socket buffers


def flood(server, subject: str = "flood"):
    """Publish COUNT messages from a fresh client; return it once the server has read them all."""
    p = client(server)
    p.send(pub(subject, PAYLOAD) * COUNT)
    assert p.sync(timeout=60) == []
    return p


def test_slow_consumer_is_closed_without_err(impl, start_server):
    srv = start_server(impl, config=CONFIG)
    slow = client(srv, rcvbuf=65536)
    assert slow.roundtrip(b"SUB flood 1\r\n") == []
    flood(srv)
    data = slow.expect_closed(timeout=30)
    # No -ERR at all (the payload is all 'x', so any "-ERR" would be a protocol line)...
    assert b"-ERR" not in data
    # ...and it was cut off before getting everything.
    assert data.count(b"MSG flood 1 10000\r\n") < COUNT


def test_publisher_is_unaffected_by_slow_consumer(impl, start_server):
    srv = start_server(impl, config=CONFIG)
    slow = client(srv, rcvbuf=65536)
    assert slow.roundtrip(b"SUB flood 1\r\n") == []
    p = flood(srv)
    slow.expect_closed(timeout=30)
    # The publisher's connection is intact and still delivers to healthy subscribers.
    fresh = client(srv)
    assert fresh.roundtrip(b"SUB flood 7\r\n") == []
    assert p.roundtrip(pub("flood", b"after")) == []
    assert fresh.read_op() == msg("flood", "7", b"after")
    assert p.roundtrip(b"SUB own 1\r\n" + pub("own", b"echo")) == [msg("own", "1", b"echo")]


def test_other_clients_keep_their_connections(impl, start_server):
    srv = start_server(impl, config=CONFIG)
    slow = client(srv, rcvbuf=65536)
    assert slow.roundtrip(b"SUB flood 1\r\n") == []
    other = client(srv)
    assert other.roundtrip(b"SUB other 2\r\n") == []
    flood(srv)
    slow.expect_closed(timeout=30)
    p = client(srv)
    assert p.roundtrip(pub("other", b"hi")) == []
    assert other.read_op() == msg("other", "2", b"hi")
