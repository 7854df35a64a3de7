"""Configured limits and what a client sees when it crosses them: max_payload, max_control_line,
max_connections, max_subscriptions; and a connection with 10,000 subscriptions.

Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

import time

from tests.wire.proto import client, err_line, hpub, msg, pub, raw_client

# --- max_payload -------------------------------------------------------------------------------


def test_default_max_payload_violation(server):
    w = client(server)
    assert w.info["max_payload"] == 1048576
    w.send(b"PUB foo 1048577\r\n")
    w.expect_err_and_close("Maximum Payload Violation")


def test_max_payload_boundary(impl, start_server):
    srv = start_server(impl, config="max_payload: 100\n")
    sub = client(srv)
    assert sub.info["max_payload"] == 100
    assert sub.roundtrip(b"SUB foo 1\r\n") == []
    w = client(srv)
    assert w.roundtrip(pub("foo", b"x" * 100)) == []
    assert sub.read_op() == msg("foo", "1", b"x" * 100)
    # Checked on the control line: the payload is never read.
    w.send(b"PUB foo 101\r\n")
    w.expect_err_and_close("Maximum Payload Violation")
    assert sub.sync() == []


def test_max_payload_violation_with_payload_sent(impl, start_server):
    srv = start_server(impl, config="max_payload: 100\n")
    w = client(srv)
    w.send(pub("foo", b"x" * 101))
    w.expect_err_and_close("Maximum Payload Violation")


def test_max_payload_counts_headers(impl, start_server):
    srv = start_server(impl, config="max_payload: 100\n")
    w = client(srv, headers=True)
    block = b"NATS/1.0\r\n\r\n"
    assert w.roundtrip(b"SUB foo 1\r\n" + hpub("foo", block, b"y" * 88)) \
        == [b"HMSG foo 1 12 100\r\n" + block + b"y" * 88 + b"\r\n"]
    w.send(b"HPUB foo 12 101\r\n")
    w.expect_err_and_close("Maximum Payload Violation")


def test_max_payload_violation_before_connect(impl, start_server):
    srv = start_server(impl, config="max_payload: 100\n")
    w = raw_client(srv)
    w.send(b"PUB foo 200\r\n")
    w.expect_err_and_close("Maximum Payload Violation")


# --- max_control_line ---------------------------------------------------------------------------
# The limit applies to the arguments: what follows the verb and its separating whitespace, up to
# the CR/LF. With max_control_line 64 an argument string of 64 bytes passes and 65 fails.

MCL = "max_control_line: 64\n"


def test_sub_line_at_limit_passes(impl, start_server):
    srv = start_server(impl, config=MCL)
    w = client(srv)
    subject = "a" * 62                       # "aaa...a 1" is 64 bytes
    assert w.roundtrip(f"SUB {subject} 1\r\n".encode() + pub(subject, b"x")) == [msg(subject, "1", b"x")]


def test_sub_line_over_limit(impl, start_server):
    srv = start_server(impl, config=MCL)
    w = client(srv)
    w.send(f"SUB {'a' * 63} 1\r\n".encode())
    w.expect_err_and_close("maximum control line exceeded")


def test_pub_line_at_limit_passes(impl, start_server):
    srv = start_server(impl, config=MCL)
    w = client(srv)
    assert w.roundtrip(pub("b" * 62, b"x")) == []


def test_pub_line_over_limit(impl, start_server):
    srv = start_server(impl, config=MCL)
    w = client(srv)
    w.send(f"PUB {'b' * 63} 1\r\n".encode())
    w.expect_err_and_close("maximum control line exceeded")


def test_unsub_line_over_limit(impl, start_server):
    srv = start_server(impl, config=MCL)
    w = client(srv)
    w.send(b"UNSUB " + b"1" * 70 + b"\r\n")
    w.expect_err_and_close("maximum control line exceeded")


def test_connect_line_is_limited_too(impl, start_server):
    srv = start_server(impl, config=MCL)
    head = b'{"verbose":false,"pedantic":false,"name":"'
    at_limit = head + b"x" * (64 - len(head) - 2) + b'"}'
    assert len(at_limit) == 64
    w = raw_client(srv)
    assert w.roundtrip(b"CONNECT " + at_limit + b"\r\n") == []
    w = raw_client(srv)
    w.send(b"CONNECT " + at_limit[:-2] + b'x"}\r\n')
    w.expect_err_and_close("maximum control line exceeded")


def test_control_line_split_across_writes(impl, start_server):
    srv = start_server(impl, config=MCL)
    w = client(srv)
    w.send(b"SUB " + b"a" * 30)
    time.sleep(0.05)  # let the first half arrive on its own (not a timing assertion)
    w.send(b"a" * 33 + b" 1\r\n")
    w.expect_err_and_close("maximum control line exceeded")


def test_unterminated_long_line_is_cut_off(impl, start_server):
    # The limit is enforced while the line is still being built: no CRLF is ever sent.
    srv = start_server(impl, config=MCL)
    w = client(srv)
    w.send(b"SUB " + b"a" * 200)
    w.expect_err_and_close("maximum control line exceeded")


def test_default_max_control_line_is_4096(server):
    w = client(server)
    subject = "s" * 4094                        # 4094 + " 1" = 4096
    assert w.roundtrip(f"SUB {subject} 1\r\n".encode() + pub(subject, b"x")) == [msg(subject, "1", b"x")]
    w.send(f"SUB {'s' * 4095} 1\r\n".encode())
    w.expect_err_and_close("maximum control line exceeded")


# --- max_connections ---------------------------------------------------------------------------

def test_max_connections(impl, start_server):
    srv = start_server(impl, config="max_connections: 1\n")
    first = client(srv)
    # The refused connection still gets INFO first, then the -ERR, then the close.
    extra = raw_client(srv)
    assert extra.info["server_id"] == first.info["server_id"]
    extra.expect_err_and_close("maximum connections exceeded")
    # The admitted client is unaffected.
    assert first.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"x")) == [msg("foo", "1", b"x")]


def test_max_connections_zero_refuses_everyone(impl, start_server):
    # In a config file 0 means "refuse all", not "unlimited".
    srv = start_server(impl, config="max_connections: 0\n")
    for _ in range(2):
        raw_client(srv).expect_err_and_close("maximum connections exceeded")


def test_max_connections_slot_is_freed_on_close(impl, start_server):
    srv = start_server(impl, config="max_connections: 1\n")
    client(srv).close()
    # The server notices the close asynchronously: retry until admitted (generous deadline).
    deadline = time.monotonic() + 10
    while True:
        w = raw_client(srv)
        w.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
        try:
            op = w.read_op()
        except ConnectionError:
            op = None                       # refused, and the -ERR was lost to the reset
        if op is not None and op.verb == "PONG":
            break
        assert op is None or op == err_line("maximum connections exceeded"), op
        assert time.monotonic() < deadline, "the closed client's slot was never freed"
        w.close()
        time.sleep(0.05)
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"x")) == [msg("foo", "1", b"x")]


# --- max_subscriptions --------------------------------------------------------------------------

MAX_SUBS = "max_subscriptions: 2\n"


def test_max_subscriptions_rejects_and_stays_open(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    w = client(srv)
    ops = w.roundtrip(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n" + pub("c", b"x") + pub("a", b"y"))
    # The third SUB is dropped; the first two still work.
    assert ops == [err_line("maximum subscriptions exceeded"), msg("a", "1", b"y")]
    assert w.roundtrip(pub("b", b"z")) == [msg("b", "2", b"z")]


def test_max_subscriptions_counts_queue_subs(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    w = client(srv)
    ops = w.roundtrip(b"SUB a q 1\r\nSUB b q 2\r\nSUB c q 3\r\n")
    assert ops == [err_line("maximum subscriptions exceeded")]


def test_max_subscriptions_frees_on_unsub(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    w = client(srv)
    ops = w.roundtrip(b"SUB a 1\r\nSUB b 2\r\nUNSUB 1\r\nSUB c 3\r\n" + pub("c", b"x"))
    assert ops == [msg("c", "3", b"x")]


def test_max_subscriptions_frees_on_auto_unsubscribe(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    w = client(srv)
    ops = w.roundtrip(b"SUB a 1\r\nUNSUB 1 1\r\nSUB b 2\r\n" + pub("a", b"x")
                      + b"SUB c 3\r\n" + pub("c", b"y"))
    assert ops == [msg("a", "1", b"x"), msg("c", "3", b"y")]


def test_max_subscriptions_is_per_connection(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    a = client(srv)
    b = client(srv)
    assert a.roundtrip(b"SUB x 1\r\nSUB y 2\r\n") == []
    assert b.roundtrip(b"SUB x 1\r\nSUB y 2\r\n") == []


def test_max_subscriptions_duplicate_sid_at_limit_is_rejected(impl, start_server):
    # At the limit, even a SUB reusing an existing sid (otherwise a no-op) gets the -ERR.
    srv = start_server(impl, config=MAX_SUBS)
    w = client(srv)
    ops = w.roundtrip(b"SUB a 1\r\nSUB b 2\r\nSUB a 1\r\n" + pub("a", b"x"))
    assert ops == [err_line("maximum subscriptions exceeded"), msg("a", "1", b"x")]


def test_max_subscriptions_zero_means_unlimited(impl, start_server):
    srv = start_server(impl, config="max_subscriptions: 0\n")
    w = client(srv)
    assert w.roundtrip(b"".join(b"SUB s.%d %d\r\n" % (i, i) for i in range(100))) == []
    assert w.roundtrip(pub("s.99", b"x")) == [msg("s.99", "99", b"x")]


def test_max_subscriptions_verbose_gets_no_ok(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    w = client(srv, verbose=True)
    ops = w.roundtrip(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n")
    assert ops == [b"+OK\r\n", b"+OK\r\n", err_line("maximum subscriptions exceeded")]


def test_max_subscriptions_before_connect(impl, start_server):
    srv = start_server(impl, config=MAX_SUBS)
    w = raw_client(srv)
    ops = w.roundtrip(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n")
    assert ops == [b"+OK\r\n", b"+OK\r\n", err_line("maximum subscriptions exceeded")]


# --- many subscriptions ------------------------------------------------------------------------

def test_ten_thousand_subscriptions_on_one_connection(server):
    w = client(server)
    n = 10_000
    assert w.roundtrip(b"".join(b"SUB many.%d %d\r\n" % (i, i) for i in range(n)), timeout=60) == []
    assert w.roundtrip(pub("many.4242", b"hit")) == [msg("many.4242", "4242", b"hit")]
    assert w.roundtrip(pub("many.x", b"miss")) == []
    # Another client's publish reaches exactly the one matching subscription.
    p = client(server)
    assert p.roundtrip(pub("many.9999", b"last")) == []
    assert w.read_op() == msg("many.9999", "9999", b"last")
    # And removing them all works too.
    assert w.roundtrip(b"".join(b"UNSUB %d\r\n" % i for i in range(n)), timeout=60) == []
    assert w.roundtrip(pub("many.4242", b"gone")) == []
