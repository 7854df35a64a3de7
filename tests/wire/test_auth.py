"""Static authentication and permissions over raw sockets, on both servers: every auth -ERR,
whether it closes, the INFO fields (auth_required, nonce), and permission violations (the
connection stays open). Each expectation was observed on the reference nats-server."""

from __future__ import annotations

import base64
import json

import nkeys
import pytest

from tests.wire.proto import client, err_line, msg, pub, raw_client

AUTH = "Authorization Violation"
SEED = b"SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4PA"
NKEY = nkeys.from_seed(SEED).public_key.decode()

USERS = """authorization {
  users: [
    {user: a, password: pa, permissions: {publish: {allow: ["foo.>", "req"], deny: "foo.bar"},
                                          subscribe: {allow: ["foo.*", "q.> grp"], deny: "foo.secret"}}}
    {user: b, password: pb, permissions: {publish: "nothing", subscribe: ">", allow_responses: {max: 2}}}
    {user: c, password: pc, permissions: {subscribe: {deny: ["foo.secret", "bar.>"]}}}
    {user: d, password: pd}
    {nkey: %s, permissions: {publish: "nk.>"}}
  ]
}
""" % NKEY


@pytest.fixture
def users(impl, start_server):
    return start_server(impl, config=USERS)


def connect_line(**opts) -> bytes:
    o = {"verbose": False, "pedantic": False}
    o.update(opts)
    return b"CONNECT " + json.dumps(o).encode() + b"\r\n"


def login(server, user, password, **opts):
    return client(server, user=user, **{"pass": password}, **opts)


@pytest.mark.parametrize("first", [b"PING\r\n", b"SUB foo 1\r\n", b"PUB foo 0\r\n\r\n", b"FOO\r\n"])
def test_op_before_connect(impl, start_server, first):
    srv = start_server(impl, config="authorization { token: abc }")
    w = raw_client(srv)
    assert w.info["auth_required"] is True and "nonce" not in w.info
    w.send(first)
    w.expect_err_and_close(AUTH)


@pytest.mark.parametrize("creds", [{}, {"auth_token": "x"}, {"user": "abc", "pass": "abc"},
                                   {"auth_token": "abc", "account": "A"}])
def test_token_refused(impl, start_server, creds):
    srv = start_server(impl, config="authorization { token: abc }")
    w = raw_client(srv)
    w.send(connect_line(**creds) + b"PING\r\n")
    w.expect_err_and_close(AUTH)


def test_token_accepted_then_second_connect_refused(impl, start_server):
    srv = start_server(impl, config="authorization { token: abc }")
    w = client(srv, auth_token="abc")
    w.send(connect_line(auth_token="nope") + b"PING\r\n")
    w.expect_err_and_close(AUTH)


def test_authentication_timeout(impl, start_server):
    srv = start_server(impl, config='authorization { token: abc, timeout: "500ms" }')
    w = raw_client(srv)
    w.expect_err_and_close("Authentication Timeout", timeout=5)


def test_flags(impl, start_server):
    srv = start_server(impl, config="authorization { user: a, password: b }", args=["--user", "x"])
    login(srv, "x", "b").roundtrip(b"PING\r\n")
    w = raw_client(srv)
    w.send(connect_line(user="a", **{"pass": "b"}) + b"PING\r\n")
    w.expect_err_and_close(AUTH)
    tok = start_server(impl, args=["--auth", "t0k"])
    client(tok, auth_token="t0k")


def test_bcrypt_password(impl, start_server):
    import bcrypt

    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
    srv = start_server(impl, config='authorization { user: h, password: "%s" }' % hashed)
    login(srv, "h", "secret")
    w = raw_client(srv)
    w.send(connect_line(user="h", **{"pass": hashed}) + b"PING\r\n")
    w.expect_err_and_close(AUTH)


@pytest.mark.parametrize("creds", [{"user": "a", "pass": "x"}, {"user": "zz", "pass": "x"}, {}])
def test_users_refused(users, creds):
    w = raw_client(users)
    assert w.info["auth_required"] is True and len(w.info["nonce"]) == 15
    w.send(connect_line(**creds) + b"PING\r\n")
    w.expect_err_and_close(AUTH)


def test_publish_violations_keep_the_connection(users):
    w = login(users, "a", "pa")
    ops = w.roundtrip(b"SUB foo.x 1\r\n" + pub("foo.bar", b"hi") + pub("baz", b"x") + pub("foo.x", b"ok"))
    assert ops == [err_line('Permissions Violation for Publish to "foo.bar"'),
                   err_line('Permissions Violation for Publish to "baz"'), msg("foo.x", "1", b"ok")]


def test_denied_publish_gets_no_ok(users):
    w = login(users, "a", "pa", verbose=True)
    assert w.roundtrip(pub("foo.bar", b"hi")) == [err_line('Permissions Violation for Publish to "foo.bar"')]


def test_subscribe_violations(users):
    w = login(users, "a", "pa")
    ops = w.roundtrip(b"SUB bar 1\r\nSUB foo.secret 2\r\nSUB foo.> 3\r\nSUB q.x 4\r\n"
                      b"SUB q.x grp 5\r\nSUB q.x other 6\r\n")
    assert ops == [err_line('Permissions Violation for Subscription to "bar"'),
                   err_line('Permissions Violation for Subscription to "foo.secret"'),
                   err_line('Permissions Violation for Subscription to "q.x"'),
                   err_line('Permissions Violation for Subscription to "q.x" using queue "other"')]


def test_subscribe_deny_filters_wildcard_delivery(users):
    w = login(users, "c", "pc")
    assert w.roundtrip(b"SUB bar.* 1\r\nSUB bar 2\r\n") == [
        err_line('Permissions Violation for Subscription to "bar.*"')]
    ops = w.roundtrip(b"SUB foo.* 3\r\n" + pub("foo.secret", b"x") + pub("foo.ok", b"y"))
    assert ops == [msg("foo.ok", "3", b"y")]


def test_allow_responses(users):
    svc = login(users, "b", "pb")
    svc.roundtrip(b"SUB svc 1\r\n")
    req = login(users, "d", "pd")
    req.roundtrip(b"SUB inbox.> 9\r\n" + pub("svc", b"q", reply="inbox.1"))
    assert svc.read_op() == msg("svc", "1", b"q", reply="inbox.1")
    ops = svc.roundtrip(pub("inbox.1", b"r1") + pub("inbox.1", b"r2") + pub("inbox.1", b"r3")
                        + pub("inbox.2", b"r4"))
    assert ops == [err_line('Permissions Violation for Publish to "inbox.1"'),
                   err_line('Permissions Violation for Publish to "inbox.2"')]
    assert req.roundtrip(b"") == [msg("inbox.1", "9", b"r1"), msg("inbox.1", "9", b"r2")]


@pytest.mark.parametrize("encode", [lambda s: base64.urlsafe_b64encode(s).decode().rstrip("="),
                                    lambda s: base64.b64encode(s).decode()], ids=["rawurl", "std"])
def test_nkey_login(users, encode):
    kp = nkeys.from_seed(SEED)
    w = raw_client(users)
    sig = encode(kp.sign(w.info["nonce"].encode()))
    w.send(connect_line(nkey=NKEY, sig=sig))
    assert w.roundtrip(pub("nk.x", b"x") + pub("zz", b"x")) == [
        err_line('Permissions Violation for Publish to "zz"')]


@pytest.mark.parametrize("sig", ["", "!!!", "bad"])
def test_nkey_bad_signature(users, sig):
    kp = nkeys.from_seed(SEED)
    w = raw_client(users)
    if sig == "bad":
        sig = base64.b64encode(kp.sign(b"not the nonce")).decode()
    w.send(connect_line(nkey=NKEY, sig=sig) + b"PING\r\n")
    w.expect_err_and_close(AUTH)


def test_no_auth_user(impl, start_server):
    srv = start_server(impl, config='authorization { default_permissions: {publish: "dflt.>"}, '
                                    'users: [{user: a, password: pa}] }\nno_auth_user: a')
    w = raw_client(srv)
    assert "auth_required" not in w.info
    assert w.roundtrip(b"") == []  # an op (PING) before CONNECT is fine here
    w.send(connect_line())
    assert w.roundtrip(pub("dflt.x", b"x") + pub("other", b"y")) == [
        err_line('Permissions Violation for Publish to "other"')]
    bad = raw_client(srv)
    bad.send(connect_line(user="a", **{"pass": "zz"}) + b"PING\r\n")
    bad.expect_err_and_close(AUTH)
