"""Bad input from a client, and exactly what the server answers: which -ERR text, and whether it
closes the connection. Parser errors (`Unknown Protocol Operation`, then close), argument errors
in PUB/SUB/UNSUB (close with no -ERR at all), subject errors (`Invalid Subject`, `Invalid Publish
Subject`: the connection stays open), server-only ops sent by a client, and binary garbage.

Size limits from the config (max_payload, max_control_line, ...) are in test_limits.py.
Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

import random

import pytest

from tests.wire.proto import client, err_line, msg, pub, raw_client

UNKNOWN = "Unknown Protocol Operation"


def assert_still_serving(server) -> None:
    """A fresh connection gets full service (the bad client affected nobody else)."""
    w = client(server)
    assert w.roundtrip(b"SUB ok 1\r\n" + pub("ok", b"fine")) == [msg("ok", "1", b"fine")]


# --- parser errors: -ERR 'Unknown Protocol Operation' and close ----------------------------------

@pytest.mark.parametrize("line", [
    b"FOO bar\r\n",
    b"PUBX foo 1\r\n",
    b"SUBSCRIBE foo 1\r\n",
    b"P\r\n",
    b"X\r\n",
    b"\r\n",              # an empty line
    b" PING\r\n",         # leading whitespace
    b"\tSUB foo 1\r\n",
    b"PUB\r\n",           # a verb with no arguments at all
    b"SUB\r\n",
    b"UNSUB\r\n",
], ids=lambda b: repr(b)[2:-1])
def test_unknown_protocol_operation(server, line):
    w = client(server)
    w.send(line)
    w.expect_err_and_close(UNKNOWN)


def test_unknown_operation_before_connect(server):
    w = raw_client(server)
    w.send(b"HELLO\r\n")
    w.expect_err_and_close(UNKNOWN)


def test_ops_before_the_error_are_served(server):
    w = client(server)
    w.send(b"SUB foo 1\r\n" + pub("foo", b"first") + b"BOGUS\r\n")
    assert w.ops_until_closed() == [msg("foo", "1", b"first"), err_line(UNKNOWN)]


@pytest.mark.parametrize("op", [
    b"MSG foo 1 1\r\nx\r\n",
    b"HMSG foo 1 12 12\r\n",
    b"RMSG $G foo 1\r\nx\r\n",
    b"LMSG foo 1\r\nx\r\n",
    b"RS+ $G foo\r\n",
    b"RS- $G foo\r\n",
    b"LS+ foo\r\n",
    b"LS- foo\r\n",
    b"A+ foo\r\n",
    b"A- foo\r\n",
], ids=lambda b: b.split()[0].decode())
def test_server_only_ops_from_a_client_are_parse_errors(server, op):
    w = client(server)
    w.send(op)
    w.expect_err_and_close(UNKNOWN)


def test_bad_byte_after_payload(server):
    w = client(server)
    w.send(b"SUB foo 1\r\nPUB foo 1\r\ncX\r\n")
    w.expect_err_and_close(UNKNOWN)


def test_payload_without_trailing_crlf(server):
    # The next op starts straight after the payload: no CRLF where one is required.
    w = client(server)
    w.send(b"SUB foo 1\r\nPUB foo 1\r\ncPING\r\n")
    w.expect_err_and_close(UNKNOWN)


def test_payload_followed_by_bare_lf(server):
    # Control lines may end in a bare LF, but a payload must end in CRLF.
    w = client(server)
    w.send(b"SUB foo 1\r\nPUB foo 1\r\nc\n")
    w.expect_err_and_close(UNKNOWN)


def test_payload_longer_than_declared(server):
    w = client(server)
    w.send(b"SUB foo 1\r\nPUB foo 1\r\ncde\r\n")
    w.expect_err_and_close(UNKNOWN)


def test_payload_shorter_than_declared(server):
    # Size 2 but only "x" before CRLF: the CR becomes payload, then LF is not a CRLF.
    w = client(server)
    w.send(b"PUB foo 2\r\nx\r\n")
    w.expect_err_and_close(UNKNOWN)


def test_bad_message_is_not_delivered(server):
    sub = client(server)
    assert sub.roundtrip(b"SUB foo 1\r\n") == []
    w = client(server)
    w.send(b"PUB foo 1\r\ncX\r\n")
    w.expect_err_and_close(UNKNOWN)
    assert sub.sync() == []


# --- bad arguments: closed without any -ERR ----------------------------------------------------

@pytest.mark.parametrize("line", [
    b"PUB foo abc\r\n",
    b"PUB foo -1\r\n",
    b"PUB foo +1\r\n",
    b"PUB foo 1x\r\n",
    b"PUB foo 99999999999999999999\r\n",
    b"PUB foo\r\n",
    b"PUB \r\n",        # the space after the verb makes it an (empty) argument error
    b"PUB a b c 1\r\n",
    b"SUB foo\r\n",
    b"SUB foo  \r\n",
    b"SUB a b c d\r\n",
    b"UNSUB 1 2 3\r\n",
], ids=lambda b: repr(b)[2:-5])
def test_bad_arguments_close_without_err(server, line):
    w = client(server)
    w.send(line)
    w.expect_silent_close()


def test_bad_arguments_in_verbose_mode_close_without_err(server):
    w = client(server, verbose=True)
    w.send(b"PUB foo abc\r\n")
    w.expect_silent_close()


def test_client_err_closes_without_reply(server):
    w = client(server)
    w.send(b"-ERR 'something'\r\n")
    w.expect_silent_close()


def test_client_ok_and_info_are_ignored(server):
    w = client(server)
    assert w.roundtrip(b"+OK\r\nINFO {}\r\n" + b'INFO {"server_id":"x"}\r\n') == []
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"x")) == [msg("foo", "1", b"x")]


# --- lenient corners of the parser (observed, kept) ---------------------------------------------

def test_ping_with_trailing_text_still_pongs(server):
    w = client(server)
    w.send(b"PING x\r\n")
    assert w.read_op(pings=True).verb == "PONG"
    w.send(b"PINGX\r\n")
    assert w.read_op(pings=True).verb == "PONG"


def test_pong_with_trailing_text_is_ignored(server):
    w = client(server)
    assert w.roundtrip(b"PONG x\r\nPONGX\r\n") == []


def test_unsub_with_non_numeric_sid_is_an_unknown_sid(server):
    w = client(server)
    assert w.roundtrip(b"UNSUB x\r\n") == []


def test_unsub_with_bad_max_removes_at_once(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\nUNSUB 1 x\r\n" + pub("foo", b"a")) == []
    assert w.roundtrip(b"SUB foo 2\r\nUNSUB 2 -1\r\n" + pub("foo", b"b")) == []


def test_leading_zeros_in_size(server):
    # (The reference copies the size token verbatim into the MSG: `MSG foo 1 0003`.)
    w = client(server)
    [op] = w.roundtrip(b"SUB foo 1\r\nPUB foo 0003\r\nabc\r\n")
    assert op.args[:2] == [b"foo", b"1"] and int(op.args[2]) == 3 and op.payload == b"abc"


def test_three_arg_sub_is_queue_sub(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo bar baz\r\n" + pub("foo", b"x")) == [msg("foo", "baz", b"x")]


def test_subjects_are_bytes_not_checked_for_encoding(server):
    w = client(server)
    subj = "f\u00e9.\u65e5\u672c"
    assert w.roundtrip(f"SUB {subj} 1\r\n".encode() + pub(subj, b"x")) == [msg(subj, "1", b"x")]


# --- Invalid Subject (SUB): -ERR, connection stays open ------------------------------------------

@pytest.mark.parametrize("subject", [
    "foo..bar", ".foo", "foo.", ".", "foo.>.bar", ">.foo", "foo.>.>", "a..",
])
def test_invalid_subscribe_subject(server, subject):
    w = client(server)
    ops = w.roundtrip(f"SUB {subject} 1\r\n".encode())
    assert ops == [err_line("Invalid Subject")]
    # Still open and serving; the sid was not taken.
    assert w.roundtrip(b"SUB ok 1\r\n" + pub("ok", b"x")) == [msg("ok", "1", b"x")]


def test_invalid_subject_with_queue_group(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo.. q 1\r\n") == [err_line("Invalid Subject")]
    assert w.sync() == []


def test_invalid_subject_in_verbose_mode_gets_no_ok(server):
    w = client(server, verbose=True)
    assert w.roundtrip(b"SUB foo..bar 1\r\nSUB ok 2\r\n") == [err_line("Invalid Subject"), b"+OK\r\n"]


def test_invalid_subject_before_connect(server):
    w = raw_client(server)
    assert w.roundtrip(b"SUB foo..bar 1\r\n") == [err_line("Invalid Subject")]


# --- Invalid Publish Subject (pedantic): -ERR, connection stays open ----------------------------

@pytest.mark.parametrize("subject", ["foo.*", "foo.>", "*", ">", "*.foo", "foo.>.bar", ">.foo"])
def test_pedantic_wildcard_publish_is_flagged_but_delivered(server, subject):
    w = client(server, pedantic=True)
    ops = w.roundtrip(b"SUB > 1\r\n" + pub(subject, b"x"))
    # The message is still processed: '*' and '>' tokens are matched like any other token.
    assert ops == [err_line("Invalid Publish Subject"), msg(subject, "1", b"x")]
    assert w.sync() == []


def test_pedantic_wildcard_publish_matches_literal_wildcard_subscription(server):
    w = client(server, pedantic=True)
    ops = w.roundtrip(b"SUB foo.* 2\r\n" + pub("foo.*", b"x") + pub("foo.>", b"y"))
    assert ops == [err_line("Invalid Publish Subject"), msg("foo.*", "2", b"x"),
                   err_line("Invalid Publish Subject"), msg("foo.>", "2", b"y")]


@pytest.mark.parametrize("subject", ["foo..bar", ".foo", "foo.", "."])
def test_pedantic_malformed_publish_is_flagged_and_dropped(server, subject):
    w = client(server, pedantic=True)
    assert w.roundtrip(b"SUB > 1\r\n" + pub(subject, b"x")) == [err_line("Invalid Publish Subject")]
    assert w.roundtrip(pub("ok", b"y")) == [msg("ok", "1", b"y")]


def test_pedantic_error_then_ok_in_verbose_mode(server):
    w = client(server, pedantic=True, verbose=True)
    assert w.roundtrip(pub("foo.*", b"")) == [err_line("Invalid Publish Subject"), b"+OK\r\n"]


def test_pedantic_error_reaches_other_subscribers_too(server):
    sub = client(server)
    assert sub.roundtrip(b"SUB foo.* 1\r\n") == []
    w = client(server, pedantic=True)
    assert w.roundtrip(pub("foo.*", b"x")) == [err_line("Invalid Publish Subject")]
    assert sub.read_op() == msg("foo.*", "1", b"x")


def test_pedantic_does_not_check_reply_subject(server):
    w = client(server, pedantic=True)
    ops = w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"x", reply="bar.*") + pub("foo", b"y", reply="a..b"))
    assert ops == [msg("foo", "1", b"x", reply="bar.*"), msg("foo", "1", b"y", reply="a..b")]


def test_not_pedantic_malformed_publish_is_silently_dropped(server):
    w = client(server, pedantic=False)
    assert w.roundtrip(b"SUB > 1\r\n" + pub("foo..bar", b"x") + pub(".foo", b"y")) == []


def test_literal_wildcard_chars_inside_tokens_are_valid_publish_subjects(server):
    w = client(server, pedantic=True)
    assert w.roundtrip(b"SUB > 1\r\n" + pub("foo.bar*", b"x")) == [msg("foo.bar*", "1", b"x")]


# --- garbage ---------------------------------------------------------------------------------

VERB_STARTS = set(b"CcPpSsUuHhIi+-")


def garbage(seed: int, n: int = 256) -> bytes:
    """Seeded random bytes whose first byte cannot start any client op."""
    rnd = random.Random(seed)
    first = rnd.choice([b for b in range(256) if b not in VERB_STARTS])
    return bytes([first]) + bytes(rnd.randrange(256) for _ in range(n - 1))


@pytest.mark.parametrize("seed", range(5))
def test_random_binary_is_parse_error(server, seed):
    bystander = client(server)
    assert bystander.roundtrip(b"SUB b 1\r\n") == []
    w = client(server)
    w.send(garbage(seed))
    w.expect_err_and_close(UNKNOWN)
    # The other connection is untouched.
    assert bystander.roundtrip(pub("b", b"still here")) == [msg("b", "1", b"still here")]
    assert_still_serving(server)


def test_random_binary_before_connect(server):
    w = raw_client(server)
    w.send(garbage(99))
    w.expect_err_and_close(UNKNOWN)
    assert_still_serving(server)


def test_many_garbage_connections_leave_server_serving(server):
    for seed in range(20):
        w = raw_client(server)
        w.send(garbage(1000 + seed, 64))
        w.expect_err_and_close(UNKNOWN)
    assert_still_serving(server)
