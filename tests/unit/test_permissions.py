"""Permission lists (protocol/permissions.py) and the authorization block (config/auth.py):
the reference's allow/deny decisions, queue entries, wildcard subjects matched the Sublist way,
and config errors with the reference's wording. Every expectation was observed on nats-server."""

from __future__ import annotations

import pytest

from actor_nats.config.auth import AuthConfigError, is_bcrypt, parse_authorization
from actor_nats.config.options import OptionsError, from_map
from actor_nats.config.parser import parse
from actor_nats.protocol.permissions import Permissions


def test_no_lists_allow_everything():
    p = Permissions()
    assert p.can_publish(b"a.b") and p.can_subscribe(b">") and not p.deny_delivery(b"x")
    assert not p.has_pub and not p.has_sub_deny


def test_publish_allow_and_deny_wins():
    p = Permissions(pub_allow=["foo.>", "req"], pub_deny=["foo.bar"])
    assert p.can_publish(b"foo.x") and p.can_publish(b"req")
    assert not p.can_publish(b"foo.bar")
    assert not p.can_publish(b"baz")


def test_empty_allow_list_denies_everything():
    assert not Permissions(pub_allow=[]).can_publish(b"any")


def test_deny_only():
    p = Permissions(pub_deny=[">"])
    assert not p.can_publish(b"a")
    assert p.has_pub


def test_subscribe_wildcard_subjects_are_matched_as_tokens():
    # a subscription to foo.> passes an allow entry foo.* (the `>` is one token there)
    p = Permissions(sub_allow=["foo.*"], sub_deny=["foo.secret"])
    assert p.can_subscribe(b"foo.>")
    assert p.can_subscribe(b"foo.x")
    assert not p.can_subscribe(b"foo.secret")
    assert not p.can_subscribe(b"bar")
    d = Permissions(sub_deny=["foo.secret", "bar.>"])
    assert not d.can_subscribe(b"bar.*") and not d.can_subscribe(b"bar.>")
    assert d.can_subscribe(b"bar")


def test_queue_entries():
    p = Permissions(sub_allow=["foo.*", "q.> grp"])
    assert not p.can_subscribe(b"q.x")  # the entry is for the queue only
    assert p.can_subscribe(b"q.x", b"grp")
    assert not p.can_subscribe(b"q.x", b"other")
    assert p.can_subscribe(b"foo.a", b"any")  # plain entries allow any queue
    w = Permissions(sub_allow=["q grp.*"])
    assert w.can_subscribe(b"q", b"grp.1") and not w.can_subscribe(b"q", b"other")
    d = Permissions(sub_deny=["q bad"])
    assert d.can_subscribe(b"q") and d.can_subscribe(b"q", b"good")
    assert not d.can_subscribe(b"q", b"bad")


def test_deny_delivery():
    p = Permissions(sub_deny=["foo.secret", "bar.>"])
    assert p.has_sub_deny
    assert p.deny_delivery(b"foo.secret") and p.deny_delivery(b"bar.z")
    assert not p.deny_delivery(b"foo.ok")


def test_bcrypt_detection():
    assert is_bcrypt("$2a$11$abcdefghijklmnopqrstuv")
    assert is_bcrypt("$2y$04$x")
    assert not is_bcrypt("$2a$x") and not is_bcrypt("plain")


def _load(text):
    return from_map(parse(text, "c.conf"), "c.conf")


def test_authorization_block_parses():
    o = _load('authorization { default_permissions: {publish: "d.>"}, timeout: "3s", users: ['
              '{user: a, password: b}, {user: c, password: d, permissions: {subscribe: {deny: "x"}, '
              'allow_responses: {max: 3, expires: "1s"}}}] }\nno_auth_user: a')
    a = o.auth
    assert a.required and a.timeout == 3.0 and a.no_auth_user == "a"
    ua, uc = a.users
    assert ua.permissions.pub_allow == ("d.>",)  # default permissions
    assert uc.permissions.sub_deny == ("x",) and uc.permissions.pub_allow == ()
    assert uc.permissions.responses.max_msgs == 3 and uc.permissions.responses.expires == 1.0


def test_secrets_do_not_show():
    o = _load("authorization { token: s3cr3t }")
    assert "s3cr3t" not in repr(o.auth) and "s3cr3t" not in str(o)
    from dataclasses import asdict

    assert "s3cr3t" not in repr(asdict(o))


def test_flags_override_the_file():
    o = _load("authorization { user: a, password: b }").with_(username="x")
    assert (o.auth.username, o.auth.password) == ("x", "b")
    assert o.with_(authorization="t").auth.token == "t"


@pytest.mark.parametrize("text, message", [
    ("authorization { token: abc, user: a, password: b }", "c.conf:1:0: Cannot have a user/pass and token"),
    ("authorization { user: a, password: b, users: [{user: c, password: d}] }",
     "c.conf:1:0: Can not have a single user/pass and a users array"),
    ("authorization { token: abc, users: [{user: c, password: d}] }",
     "c.conf:1:0: Can not have a token and a users array"),
    ("authorization { foo: 1 }", 'c.conf:1:16: unknown field "foo"'),
    ("authorization { users: [{user: c, password: d}, {user: c, password: e}] }",
     'c.conf:1:0: Duplicate user "c" detected'),
    ("authorization { users: [{user: c, password: d, permissions: {publish: 1}}] }",
     "Expected subject permissions to be a subject, or array of subjects, got int64"),
    ('authorization { users: [{user: c, password: d, permissions: {foo: "a"}}] }',
     'c.conf:1:61: Unknown field "foo" parsing permissions'),
    ('authorization { users: [{user: c, password: d, permissions: {publish: {allow: "a", foo: "b"}}}] }',
     "c.conf:1:83: Unknown field name \"foo\" parsing subject permissions, only 'allow' or 'deny' are permitted"),
    ("authorization { users: [{nkey: UABC}] }", "c.conf:1:25: Not a valid public nkey for a user"),
    ("authorization { timeout: 100 }",
     'c.conf:1:16: invalid use of field "timeout": timeout of 100 (100.000000 seconds) is high, consider '
     "keeping it under 60 seconds. possibly caused by unquoted duration; use '1m' instead of 1m, for example"),
    ('authorization { users: [{user: c, password: d, allowed_connection_types: ["FOO"]}] }',
     'c.conf:1:47: invalid connection types ["FOO"]'),
    ('authorization { users: [{user: c, password: d, permissions: {subscribe: "a b c"}}] }',
     'subject "a b c" is not a valid subject'),
    ("authorization { users: [{user: c, password: d, permissions: {allow_responses: 5}}] }",
     "c.conf:1:61: error parsing response permissions, expected a boolean or a map"),
    ('authorization { users: "x" }', "c.conf:1:16: Expected users field to be an array, got x"),
    ("authorization { users: [{password: c}] }", "c.conf:1:25: User entry requires a user"),
    ("authorization { users: [{nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4, password: x}] }",
     "c.conf:1:89: Nkey users do not take usernames or passwords"),
])
def test_config_errors(text, message):
    with pytest.raises(OptionsError) as e:
        _load(text)
    assert str(e.value) == message


def test_start_time_checks():
    from actor_nats.config.options import validate

    with pytest.raises(OptionsError, match='no_auth_user: "foo" present, but users/nkeys are not defined'):
        validate(_load("no_auth_user: foo"))
    with pytest.raises(OptionsError, match='"foo" not present as user or nkey'):
        validate(_load("authorization { users: [{user: c, password: d}] }\nno_auth_user: foo"))


def test_parse_authorization_requires_a_map():
    with pytest.raises(AuthConfigError):
        parse_authorization("x")
