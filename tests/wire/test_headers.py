"""HPUB and HMSG: headers delivered intact to clients that negotiated them, stripped for those
that did not, refused from clients that did not; and the no-responders 503 status message.

Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

from tests.wire.proto import client, hmsg, hpub, msg, pub, raw_client

HDR = b"NATS/1.0\r\nFoo: Bar\r\nMulti: a\r\nMulti: b\r\n\r\n"


def no_responders_hmsg(reply: str, sid: str, subject: str) -> bytes:
    """The exact 503 the reference sends (status line plus a Nats-Subject header, no payload)."""
    block = b"NATS/1.0 503\r\nNats-Subject: " + subject.encode() + b"\r\n\r\n"
    assert len(block) == 32 + len(subject)
    return f"HMSG {reply} {sid} {len(block)} {len(block)}\r\n".encode() + block + b"\r\n"


# --- delivery --------------------------------------------------------------------------------

def test_hpub_delivers_hmsg_intact(server):
    w = client(server, headers=True)
    ops = w.roundtrip(b"SUB foo 1\r\n" + hpub("foo", HDR, b"hello"))
    assert ops == [hmsg("foo", "1", HDR, b"hello")]
    assert ops[0].headers == HDR and ops[0].payload == b"hello"


def test_hpub_with_reply(server):
    w = client(server, headers=True)
    ops = w.roundtrip(b"SUB foo 1\r\n" + hpub("foo", HDR, b"hello", reply="rep"))
    assert ops == [hmsg("foo", "1", HDR, b"hello", reply="rep")]
    assert ops[0].reply == b"rep"


def test_minimal_header_block_and_empty_payload(server):
    w = client(server, headers=True)
    ops = w.roundtrip(b"SUB foo 1\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")
    assert ops == [b"HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n"]


def test_header_with_status_and_description(server):
    w = client(server, headers=True)
    block = b"NATS/1.0 408 Request Timeout\r\nX: y\r\n\r\n"
    assert w.roundtrip(b"SUB foo 1\r\n" + hpub("foo", block, b"p")) == [hmsg("foo", "1", block, b"p")]


def test_headers_to_another_connection(server):
    sub = client(server, headers=True)
    p = client(server, headers=True)
    assert sub.roundtrip(b"SUB foo.* 5\r\n") == []
    assert p.roundtrip(hpub("foo.bar", HDR, b"\r\nbinary\x00\xff")) == []
    assert sub.read_op() == hmsg("foo.bar", "5", HDR, b"\r\nbinary\x00\xff")


def test_plain_pub_reaches_header_client_as_msg(server):
    sub = client(server, headers=True)
    assert sub.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"plain")) == [msg("foo", "1", b"plain")]


def test_header_block_is_not_validated(server):
    # The server does not parse what it relays: any bytes count as the header block.
    w = client(server, headers=True)
    ops = w.roundtrip(b"SUB foo 1\r\n" + hpub("foo", b"hello world!", b"")
                      + hpub("foo", b"NATS/1.0\r\n", b"\r\n"))
    assert ops == [hmsg("foo", "1", b"hello world!", b""), hmsg("foo", "1", b"NATS/1.0\r\n", b"\r\n")]


def test_zero_length_header_block_is_delivered_as_msg(server):
    # HPUB with a header size of 0 carries no headers, so subscribers get a plain MSG.
    w = client(server, headers=True)
    assert w.roundtrip(b"SUB foo 1\r\nHPUB foo 0 5\r\nhello\r\n") == [msg("foo", "1", b"hello")]


def test_hpub_is_case_insensitive(server):
    w = client(server, headers=True)
    assert w.roundtrip(b"SUB foo 1\r\nhpub foo 12 12\r\nNATS/1.0\r\n\r\n\r\n") \
        == [b"HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n"]


def test_queue_group_gets_hmsg(server):
    w = client(server, headers=True)
    ops = w.roundtrip(b"SUB foo q 1\r\nSUB foo q 2\r\n" + hpub("foo", HDR, b"x"))
    assert len(ops) == 1 and ops[0].sid in (b"1", b"2")
    assert ops[0].headers == HDR and ops[0].payload == b"x"


# --- stripping for clients without headers ----------------------------------------------------

def test_headers_stripped_for_client_without_headers(server):
    plain = client(server)
    hdrs = client(server, headers=True)
    assert plain.roundtrip(b"SUB foo 2\r\n") == []
    assert hdrs.roundtrip(b"SUB foo 3\r\n") == []
    p = client(server, headers=True)
    assert p.roundtrip(hpub("foo", HDR, b"hello", reply="r")) == []
    assert plain.read_op() == msg("foo", "2", b"hello", reply="r")
    assert hdrs.read_op() == hmsg("foo", "3", HDR, b"hello", reply="r")


def test_stripped_header_only_message_is_empty_msg(server):
    plain = client(server, headers=False)
    assert plain.roundtrip(b"SUB foo 1\r\n") == []
    p = client(server, headers=True)
    assert p.roundtrip(hpub("foo", HDR, b"")) == []
    assert plain.read_op() == b"MSG foo 1 0\r\n\r\n"


def test_stripping_uses_declared_header_size(server):
    # The header size is trusted as given: the first 3 bytes are dropped for a plain client.
    plain = client(server)
    assert plain.roundtrip(b"SUB foo 1\r\n") == []
    p = client(server, headers=True)
    assert p.roundtrip(b"HPUB foo 3 5\r\nhello\r\n") == []
    assert plain.read_op() == msg("foo", "1", b"lo")


# --- HPUB refused without headers ------------------------------------------------------------

def test_hpub_without_headers_closes_silently(server):
    w = client(server)
    w.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")
    w.expect_silent_close()


def test_hpub_with_headers_false_closes_silently(server):
    w = client(server, headers=False)
    w.send(b"HPUB foo 12 12\r\n")
    w.expect_silent_close()


def test_hpub_before_connect_closes_silently(server):
    w = raw_client(server)
    w.send(b"SUB foo 1\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")
    # Before CONNECT verbose is on, so the SUB is acknowledged; the HPUB is not.
    assert w.ops_until_closed() == [b"+OK\r\n"]


# --- bad HPUB sizes and arguments -------------------------------------------------------------

def test_hpub_header_size_larger_than_total_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo 13 12\r\n")
    w.expect_silent_close()


def test_hpub_bad_header_size_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo x 12\r\n")
    w.expect_silent_close()


def test_hpub_negative_header_size_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo -1 12\r\n")
    w.expect_silent_close()


def test_hpub_bad_total_size_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo 12 x\r\n")
    w.expect_silent_close()


def test_hpub_one_size_only_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo 12\r\n")
    w.expect_silent_close()


def test_hpub_too_many_args_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo a b 12 12\r\n")
    w.expect_silent_close()


def test_hpub_subject_only_closes_silently(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo\r\n")
    w.expect_silent_close()


def test_hpub_without_args_is_parse_error(server):
    w = client(server, headers=True)
    w.send(b"HPUB\r\n")
    w.expect_err_and_close("Unknown Protocol Operation")


def test_hpub_payload_longer_than_total_is_parse_error(server):
    w = client(server, headers=True)
    w.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\nX\r\n")
    w.expect_err_and_close("Unknown Protocol Operation")


# --- no responders ---------------------------------------------------------------------------

def test_no_responders_exact_bytes(server):
    w = client(server, headers=True, no_responders=True)
    ops = w.roundtrip(b"SUB inbox 1\r\n" + pub("nobody", b"hi", reply="inbox"))
    assert ops == [no_responders_hmsg("inbox", "1", "nobody")]
    assert ops[0] == (b"HMSG inbox 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n")


def test_no_responders_for_hpub(server):
    # The request's own headers and payload are not echoed back.
    w = client(server, headers=True, no_responders=True)
    ops = w.roundtrip(b"SUB inbox 1\r\n" + hpub("nobody", HDR, b"hi", reply="inbox"))
    assert ops == [no_responders_hmsg("inbox", "1", "nobody")]


def test_no_responders_via_wildcard_reply_subscription(server):
    w = client(server, headers=True, no_responders=True)
    ops = w.roundtrip(b"SUB _INBOX.abc.* 4\r\n" + pub("svc.down", b"", reply="_INBOX.abc.1"))
    assert ops == [no_responders_hmsg("_INBOX.abc.1", "4", "svc.down")]


def test_no_responders_goes_to_one_reply_subscription(server):
    w = client(server, headers=True, no_responders=True)
    ops = w.roundtrip(b"SUB inbox 1\r\nSUB inbox 2\r\n" + pub("nobody", b"hi", reply="inbox"))
    assert len(ops) == 1
    assert ops[0] in (no_responders_hmsg("inbox", "1", "nobody"),
                      no_responders_hmsg("inbox", "2", "nobody"))


def test_no_503_when_someone_receives(server):
    svc = client(server)
    assert svc.roundtrip(b"SUB svc 1\r\n") == []
    w = client(server, headers=True, no_responders=True)
    assert w.roundtrip(b"SUB inbox 1\r\n" + pub("svc", b"req", reply="inbox")) == []
    assert svc.read_op() == msg("svc", "1", b"req", reply="inbox")


def test_no_503_without_reply(server):
    w = client(server, headers=True, no_responders=True)
    assert w.roundtrip(b"SUB inbox 1\r\n" + pub("nobody", b"hi")) == []


def test_no_503_without_no_responders_option(server):
    w = client(server, headers=True)
    assert w.roundtrip(b"SUB inbox 1\r\n" + pub("nobody", b"hi", reply="inbox")) == []


def test_no_503_when_publisher_has_no_reply_subscription(server):
    # The 503 only goes to the requester's own subscription; another client listening on the
    # reply subject gets nothing.
    other = client(server, headers=True)
    assert other.roundtrip(b"SUB inbox 9\r\n") == []
    w = client(server, headers=True, no_responders=True)
    assert w.roundtrip(pub("nobody", b"hi", reply="inbox")) == []
    assert other.sync() == []


def test_no_503_to_queue_reply_subscription(server):
    w = client(server, headers=True, no_responders=True)
    assert w.roundtrip(b"SUB inbox q 1\r\n" + pub("nobody", b"hi", reply="inbox")) == []


def test_own_subscription_counts_as_responder(server):
    w = client(server, headers=True, no_responders=True)
    ops = w.roundtrip(b"SUB inbox 1\r\nSUB svc 2\r\n" + pub("svc", b"hi", reply="inbox"))
    assert ops == [msg("svc", "2", b"hi", reply="inbox")]


def test_echo_false_own_subscription_is_no_responder(server):
    # With echo off the requester's own subscription does not receive, so nobody did: 503.
    w = client(server, headers=True, no_responders=True, echo=False)
    ops = w.roundtrip(b"SUB inbox 1\r\nSUB svc 2\r\n" + pub("svc", b"hi", reply="inbox"))
    assert ops == [no_responders_hmsg("inbox", "1", "svc")]
