"""The INFO a client gets on connect, and how CONNECT's fields (and their absence) change what
the server does: verbose, pedantic, echo, protocol, headers/no_responders, bad CONNECTs.

Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

import json

from tests.wire.proto import client, err_line, msg, open_wire, pub, raw_client


# --- INFO ------------------------------------------------------------------------------------

def test_info_is_first_line_with_reference_framing(server):
    w = open_wire(server)
    line = w.read_line() + b"\r\n"
    # The reference writes `INFO <compact json> \r\n`: one space before the CRLF.
    assert line.startswith(b"INFO {")
    assert line.endswith(b"} \r\n")
    assert b"\n" not in line[:-1]
    info = json.loads(line[5:])
    assert isinstance(info, dict)


def test_info_fields_clients_read(server):
    w = raw_client(server)
    info = w.info
    sid = info["server_id"]
    assert isinstance(sid, str) and len(sid) == 56 and sid.startswith("N") and sid.isalnum()
    assert sid == sid.upper()
    assert isinstance(info["server_name"], str) and info["server_name"]
    assert isinstance(info["version"], str) and info["version"].count(".") >= 2
    assert info["proto"] == 1
    assert info["headers"] is True
    assert info["max_payload"] == 1024 * 1024
    assert isinstance(info["client_id"], int) and not isinstance(info["client_id"], bool)
    assert info["client_id"] > 0
    assert info["client_ip"] == "127.0.0.1"
    assert info["host"] == server.host
    assert info["port"] == server.port
    # No auth configured: nothing claims it is required.
    assert not info.get("auth_required", False)
    assert not info.get("tls_required", False)
    assert "connect_info" not in info
    assert "ldm" not in info


def test_server_name_defaults_to_server_id(server):
    info = raw_client(server).info
    assert info["server_name"] == info["server_id"]


def test_server_name_from_config(impl, start_server):
    srv = start_server(impl, config='server_name: "wire-test-1"\n')
    info = raw_client(srv).info
    assert info["server_name"] == "wire-test-1"
    assert info["server_id"] != "wire-test-1"


def test_max_payload_from_config(impl, start_server):
    srv = start_server(impl, config="max_payload: 100\n")
    assert raw_client(srv).info["max_payload"] == 100


def test_client_ids_are_distinct_and_server_id_stable(server):
    a, b, c = raw_client(server), raw_client(server), raw_client(server)
    ids = [a.info["client_id"], b.info["client_id"], c.info["client_id"]]
    assert len(set(ids)) == 3
    assert a.info["server_id"] == b.info["server_id"] == c.info["server_id"]


# --- the connect_info INFO (2.12+) ---------------------------------------------------------

def test_protocol_1_gets_connect_info_after_first_pong(server):
    w = raw_client(server)
    ops = w.roundtrip(b'CONNECT {"verbose":false,"protocol":1}\r\n')
    assert ops == []
    info = w.expect_op("INFO").info
    assert info["connect_info"] is True
    assert info["remote_account"] == "$G"
    assert info["server_id"] == w.info["server_id"]
    assert info["client_id"] == w.info["client_id"]
    # Only once: the next PING is answered by a bare PONG.
    assert w.sync() == []


def test_connect_info_follows_pong_not_connect(server):
    # Ops between CONNECT and the first PING are served before the INFO.
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"protocol":1}\r\nSUB foo 1\r\n' + pub("foo", b"x"))
    assert w.read_op() == msg("foo", "1", b"x")
    w.send(b"PING\r\n")
    assert w.read_op().verb == "PONG"
    assert w.read_op().info["connect_info"] is True
    assert w.sync() == []


def test_connect_info_after_first_pong_following_connect(server):
    # A PING answered before CONNECT does not use up the connect_info INFO.
    w = raw_client(server)
    assert w.roundtrip(b"") == []
    w.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    assert w.read_op().verb == "PONG"
    assert w.read_op().info["connect_info"] is True
    assert w.sync() == []


def test_connect_info_with_verbose(server):
    w = raw_client(server)
    w.send(b'CONNECT {"protocol":1}\r\nPING\r\n')
    assert [w.read_op().verb for _ in range(3)] == ["+OK", "PONG", "INFO"]
    assert w.sync() == []


def test_connect_info_only_once_even_after_second_connect(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    assert w.read_op().verb == "PONG"
    assert w.read_op().info["connect_info"] is True
    assert w.roundtrip(b'CONNECT {"verbose":false,"protocol":1}\r\n') == []
    assert w.sync() == []


def test_no_connect_info_for_protocol_0(server):
    w = raw_client(server)
    assert w.roundtrip(b'CONNECT {"verbose":false,"protocol":0}\r\n') == []
    assert w.sync() == []


def test_no_connect_info_when_protocol_absent(server):
    w = raw_client(server)
    assert w.roundtrip(b'CONNECT {"verbose":false}\r\n') == []
    assert w.sync() == []


def test_no_connect_info_when_first_connect_was_protocol_0(server):
    # The first PONG after CONNECT is the only chance, and protocol was 0 then.
    w = raw_client(server)
    assert w.roundtrip(b'CONNECT {"verbose":false,"protocol":0}\r\n') == []
    assert w.roundtrip(b'CONNECT {"verbose":false,"protocol":1}\r\n') == []
    assert w.sync() == []


# --- verbose ---------------------------------------------------------------------------------

def test_ops_before_connect_are_accepted_and_verbose(server):
    w = raw_client(server)
    ops = w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"hi") + b"UNSUB 1\r\n" + pub("foo", b"no"))
    assert ops == [b"+OK\r\n", b"+OK\r\n", msg("foo", "1", b"hi"), b"+OK\r\n", b"+OK\r\n"]


def test_ping_and_pong_get_no_ok(server):
    w = raw_client(server)
    w.send(b"PING\r\n")
    w.expect(b"PONG\r\n")
    assert w.roundtrip(b"PONG\r\n") == []


def test_verbose_defaults_true_when_connect_omits_it(server):
    w = raw_client(server)
    ops = w.roundtrip(b"CONNECT {}\r\nSUB foo 1\r\n" + pub("foo", b"x"))
    assert ops == [b"+OK\r\n", b"+OK\r\n", b"+OK\r\n", msg("foo", "1", b"x")]


def test_verbose_ok_after_every_op(server):
    w = raw_client(server)
    hdr = b"NATS/1.0\r\n\r\n"
    ops = w.roundtrip(b'CONNECT {"verbose":true,"headers":true}\r\n'
                      b"SUB foo 1\r\n"
                      + pub("foo", b"a")
                      + b"HPUB foo 12 12\r\n" + hdr + b"\r\n"
                      + b"UNSUB 1\r\n"
                      + b"UNSUB 77\r\n"
                      + b"PONG\r\n")
    assert ops == [b"+OK\r\n",                      # CONNECT
                   b"+OK\r\n",                      # SUB
                   b"+OK\r\n", msg("foo", "1", b"a"),
                   b"+OK\r\n", b"HMSG foo 1 12 12\r\n" + hdr + b"\r\n",
                   b"+OK\r\n",                      # UNSUB
                   b"+OK\r\n"]                      # UNSUB of an unknown sid


def test_verbose_false_sends_no_ok(server):
    w = raw_client(server)
    ops = w.roundtrip(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\n' + pub("foo", b"x") + b"UNSUB 1\r\n")
    assert ops == [msg("foo", "1", b"x")]


def test_second_connect_can_turn_verbose_on(server):
    w = client(server)
    assert w.roundtrip(b'CONNECT {"verbose":true}\r\nSUB foo 1\r\n') == [b"+OK\r\n", b"+OK\r\n"]


# --- pedantic --------------------------------------------------------------------------------

def test_pedantic_defaults_true_before_connect(server):
    w = raw_client(server)
    ops = w.roundtrip(pub("foo.*", b"x"))
    assert ops == [err_line("Invalid Publish Subject"), b"+OK\r\n"]


def test_pedantic_defaults_true_when_connect_omits_it(server):
    w = raw_client(server)
    ops = w.roundtrip(b'CONNECT {"verbose":false}\r\n' + pub("foo.>", b"x"))
    assert ops == [err_line("Invalid Publish Subject")]


def test_pedantic_false_allows_wildcard_publish(server):
    w = client(server, pedantic=False)
    ops = w.roundtrip(b"SUB foo.* 1\r\n" + pub("foo.*", b"x"))
    # Without pedantic a wildcard publish subject is not checked; it matches literally.
    assert ops == [msg("foo.*", "1", b"x")]


# --- echo ------------------------------------------------------------------------------------

def test_echo_on_by_default(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"me")) == [msg("foo", "1", b"me")]


def test_echo_false_hides_own_messages_only(server):
    me = client(server, echo=False)
    other = client(server)
    assert me.roundtrip(b"SUB foo 1\r\n") == []
    assert other.roundtrip(b"SUB foo 9\r\n") == []
    assert me.roundtrip(pub("foo", b"mine")) == []
    assert other.read_op() == msg("foo", "9", b"mine")
    assert other.roundtrip(pub("foo", b"theirs")) == [msg("foo", "9", b"theirs")]
    assert me.read_op() == msg("foo", "1", b"theirs")


# --- protocol / headers / no_responders -----------------------------------------------------

def test_protocol_2_is_rejected(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"protocol":2}\r\n')
    w.expect_err_and_close("invalid client protocol")


def test_negative_protocol_is_rejected(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"protocol":-1}\r\n')
    w.expect_err_and_close("invalid client protocol")


def test_protocol_as_string_closes_without_err(server):
    # A JSON type mismatch is a CONNECT that fails to parse: closed, nothing sent.
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"protocol":"1"}\r\n')
    w.expect_silent_close()


def test_no_responders_requires_headers(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"no_responders":true}\r\n')
    w.expect_err_and_close("no responders requires headers support")


def test_no_responders_with_explicit_headers_false(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false,"headers":false,"no_responders":true}\r\n')
    w.expect_err_and_close("no responders requires headers support")


def test_no_responders_with_headers_is_accepted(server):
    w = client(server, headers=True, no_responders=True)
    assert w.sync() == []


def test_unknown_connect_fields_are_ignored(server):
    w = raw_client(server)
    ops = w.roundtrip(b'CONNECT {"verbose":false,"whatever":[1,{"a":2}],"lang":"python",'
                      b'"version":"0.0.0","name":"wire"}\r\n')
    assert ops == []


# --- malformed CONNECT -----------------------------------------------------------------------

def test_connect_with_bad_json_closes_without_err(server):
    w = raw_client(server)
    w.send(b"CONNECT {bad json\r\n")
    w.expect_silent_close()


def test_connect_without_json_closes_without_err(server):
    w = raw_client(server)
    w.send(b"CONNECT\r\n")
    w.expect_silent_close()


def test_connect_with_trailing_garbage_closes_without_err(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false} extra\r\n')
    w.expect_silent_close()
