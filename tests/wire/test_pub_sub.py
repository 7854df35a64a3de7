"""PUB, SUB, UNSUB and the MSGs they produce: replies, wildcards, queue groups, auto-unsubscribe,
sid handling, and the framing latitude the parser allows (case, whitespace, bare LF, chunking).

Black-box over raw sockets; every expectation here was observed on the reference nats-server.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.wire.proto import client, msg, pub, raw_client


def sorted_raw(ops) -> list[bytes]:
    return sorted(op.raw for op in ops)


# --- plain delivery --------------------------------------------------------------------------

def test_pub_sub_same_connection(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"hello")) == [msg("foo", "1", b"hello")]


def test_pub_sub_across_connections(server):
    sub = client(server)
    p = client(server)
    assert sub.roundtrip(b"SUB foo 1\r\n") == []
    assert p.roundtrip(pub("foo", b"hello")) == []
    assert sub.read_op() == msg("foo", "1", b"hello")
    assert sub.sync() == []


def test_publish_without_subscribers_is_dropped_quietly(server):
    w = client(server)
    assert w.roundtrip(pub("nobody.listens", b"x")) == []


def test_pub_with_reply(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"abc", reply="bar"))
    assert ops == [b"MSG foo 1 bar 3\r\nabc\r\n"]
    assert ops[0].reply == b"bar"


def test_request_reply_between_two_clients(server):
    requester = client(server)
    responder = client(server)
    assert responder.roundtrip(b"SUB svc 7\r\n") == []
    assert requester.roundtrip(b"SUB _INBOX.r1 1\r\n" + pub("svc", b"ping?", reply="_INBOX.r1")) == []
    req = responder.read_op()
    assert req == msg("svc", "7", b"ping?", reply="_INBOX.r1")
    assert responder.roundtrip(pub(req.reply.decode(), b"pong!")) == []
    assert requester.read_op() == msg("_INBOX.r1", "1", b"pong!")


def test_subjects_are_case_sensitive(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("FOO", b"x") + pub("Foo", b"y")) == []


def test_non_numeric_sid(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo ab-c_D.9\r\n" + pub("foo", b"x")) == [msg("foo", "ab-c_D.9", b"x")]


def test_one_publisher_order_is_kept(server):
    sub = client(server)
    p = client(server)
    assert sub.roundtrip(b"SUB seq 1\r\n") == []
    p.send(b"".join(pub("seq", str(i).encode()) for i in range(200)))
    assert p.sync() == []
    for i in range(200):
        assert sub.read_op() == msg("seq", "1", str(i).encode())
    assert sub.sync() == []


@pytest.mark.parametrize("subs", [[b"SUB > 1\r\n"], [b"SUB *.x 1\r\n"],
                                  [b"SUB a.x 1\r\n", b"SUB b.x 2\r\n", b"SUB c.x 3\r\n"]],
                         ids=["full-wildcard", "first-token-wildcard", "three-literals"])
def test_one_publisher_order_is_kept_across_subjects(server, subs):
    """One publisher's messages on subjects with different first tokens reach one subscriber in
    publish order (one read batch, and many)."""
    sub = client(server)
    assert sub.roundtrip(b"".join(subs)) == []
    p = client(server)
    subjects = ["a.x", "b.x", "c.x"]
    for rnd in range(3):
        frames = [pub(subjects[i % 3], str(i).encode()) for i in range(300)]
        if rnd == 0:
            p.send(b"".join(frames))
        else:
            for f in frames:
                p.send(f)
        assert p.sync() == []
        for i in range(300):
            op = sub.read_op()
            assert (op.subject, op.payload) == (subjects[i % 3].encode(), str(i).encode()), (rnd, i, op)
    assert sub.sync() == []


def test_fan_out_to_every_subscriber(server):
    subs = [client(server) for _ in range(4)]
    for i, s in enumerate(subs):
        assert s.roundtrip(f"SUB fan {i}\r\n".encode()) == []
    p = client(server)
    assert p.roundtrip(pub("fan", b"all")) == []
    for i, s in enumerate(subs):
        assert s.read_op() == msg("fan", str(i), b"all")


# --- wildcards ---------------------------------------------------------------------------------

def test_star_matches_exactly_one_token(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo.* 1\r\n"
                      + pub("foo.bar", b"1") + pub("foo", b"2") + pub("foo.bar.baz", b"3")
                      + pub("foox.bar", b"4"))
    assert ops == [msg("foo.bar", "1", b"1")]


def test_star_in_the_middle(server):
    w = client(server)
    ops = w.roundtrip(b"SUB a.*.c 1\r\n"
                      + pub("a.b.c", b"1") + pub("a.b.d", b"2") + pub("a.c", b"3") + pub("a.x.c", b"4"))
    assert ops == [msg("a.b.c", "1", b"1"), msg("a.x.c", "1", b"4")]


def test_gt_matches_one_or_more_trailing_tokens(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo.> 1\r\n"
                      + pub("foo", b"1") + pub("foo.bar", b"2") + pub("foo.bar.baz", b"3")
                      + pub("bar.foo", b"4"))
    assert ops == [msg("foo.bar", "1", b"2"), msg("foo.bar.baz", "1", b"3")]


def test_full_wildcard(server):
    w = client(server)
    ops = w.roundtrip(b"SUB > 1\r\n" + pub("a", b"1") + pub("a.b.c.d", b"2"))
    assert ops == [msg("a", "1", b"1"), msg("a.b.c.d", "1", b"2")]


def test_star_alone(server):
    w = client(server)
    ops = w.roundtrip(b"SUB * 1\r\n" + pub("a", b"1") + pub("a.b", b"2"))
    assert ops == [msg("a", "1", b"1")]


def test_wildcard_chars_inside_a_token_are_literal(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo* 1\r\nSUB b>r 2\r\n"
                      + pub("foobar", b"1") + pub("foo*", b"2") + pub("bxr", b"3") + pub("b>r", b"4"))
    assert ops == [msg("foo*", "1", b"2"), msg("b>r", "2", b"4")]


def test_every_matching_subscription_gets_a_copy(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo.> 1\r\nSUB foo.* 2\r\nSUB foo.bar 3\r\nSUB > 4\r\nSUB foo.baz 5\r\n"
                      + pub("foo.bar", b"x"))
    # One MSG per matching sid; the order between sids is not specified.
    assert sorted_raw(ops) == sorted(msg("foo.bar", sid, b"x") for sid in "1234")


# --- queue groups ---------------------------------------------------------------------------

def test_queue_group_one_member_plus_all_plain_subs(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo q 1\r\nSUB foo q 2\r\nSUB foo q 3\r\nSUB foo 4\r\nSUB foo r 5\r\n"
                      + pub("foo", b"a"))
    sids = sorted(op.sid for op in ops)
    assert all(op.payload == b"a" and op.subject == b"foo" for op in ops)
    assert len(sids) == 3
    assert b"4" in sids and b"5" in sids
    assert len([s for s in sids if s in (b"1", b"2", b"3")]) == 1


def test_queue_groups_across_connections(server):
    n = 150
    members = {"q": [client(server) for _ in range(3)], "r": [client(server) for _ in range(2)]}
    plain = client(server)
    sid = 0
    for group, conns in members.items():
        for c in conns:
            sid += 1
            assert c.roundtrip(f"SUB work.* {group} {sid}\r\n".encode()) == []
    assert plain.roundtrip(b"SUB work.* 99\r\n") == []
    p = client(server)
    assert p.roundtrip(b"".join(pub(f"work.{i}", str(i).encode()) for i in range(n))) == []

    plain_got = [plain.read_op() for _ in range(n)]
    assert [op.payload for op in plain_got] == [str(i).encode() for i in range(n)]
    for group, conns in members.items():
        seen = Counter()
        per_member = []
        for c in conns:
            got = [op.payload for op in c.sync()]
            per_member.append(len(got))
            seen.update(got)
        # Each message reached exactly one member of each group...
        assert seen == Counter(str(i).encode() for i in range(n)), group
        # ...and the group spread them (random pick: every member got some).
        assert all(k > 0 for k in per_member), (group, per_member)


def test_queue_member_unsubscribe_moves_load_to_the_rest(server):
    a = client(server)
    b = client(server)
    assert a.roundtrip(b"SUB jobs workers 1\r\n") == []
    assert b.roundtrip(b"SUB jobs workers 2\r\n") == []
    assert a.roundtrip(b"UNSUB 1\r\n") == []
    p = client(server)
    assert p.roundtrip(b"".join(pub("jobs", b"j") for _ in range(20))) == []
    assert [op.raw for op in b.sync()] == [msg("jobs", "2", b"j")] * 20
    assert a.sync() == []


def test_queue_names_are_opaque_tokens(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo q.with.dots 1\r\nSUB foo Q 2\r\n" + pub("foo", b"x"))
    # Two different groups (case matters), so both get the message.
    assert sorted_raw(ops) == sorted([msg("foo", "1", b"x"), msg("foo", "2", b"x")])


# --- UNSUB ---------------------------------------------------------------------------------

def test_unsub_stops_delivery(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"a") + b"UNSUB 1\r\n" + pub("foo", b"b")) \
        == [msg("foo", "1", b"a")]


def test_unsub_of_unknown_sid_is_ignored(server):
    w = client(server)
    assert w.roundtrip(b"UNSUB 99\r\nUNSUB 99 5\r\n") == []
    assert w.roundtrip(b"SUB foo 1\r\nUNSUB 2\r\n" + pub("foo", b"still")) == [msg("foo", "1", b"still")]


def test_unsub_twice_is_ignored(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\nUNSUB 1\r\nUNSUB 1\r\n" + pub("foo", b"x")) == []


def test_auto_unsubscribe_after_max(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\nUNSUB 1 2\r\n" + pub("foo", b"a") + pub("foo", b"b") + pub("foo", b"c"))
    assert ops == [msg("foo", "1", b"a"), msg("foo", "1", b"b")]
    # The sid is free again afterwards.
    assert w.roundtrip(b"SUB bar 1\r\n" + pub("bar", b"d")) == [msg("bar", "1", b"d")]


def test_auto_unsubscribe_counts_messages_already_delivered(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"a") + pub("foo", b"b")
                      + b"UNSUB 1 3\r\n" + pub("foo", b"c") + pub("foo", b"d"))
    assert ops == [msg("foo", "1", b"a"), msg("foo", "1", b"b"), msg("foo", "1", b"c")]


def test_auto_unsubscribe_max_already_reached_removes_at_once(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"a") + pub("foo", b"b")
                      + b"UNSUB 1 2\r\n" + pub("foo", b"c"))
    assert ops == [msg("foo", "1", b"a"), msg("foo", "1", b"b")]


def test_auto_unsubscribe_below_delivered_removes_at_once(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\n" + pub("foo", b"a") + pub("foo", b"b")
                      + b"UNSUB 1 1\r\n" + pub("foo", b"c"))
    assert ops == [msg("foo", "1", b"a"), msg("foo", "1", b"b")]


def test_unsub_max_zero_removes_at_once(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\nUNSUB 1 0\r\n" + pub("foo", b"x")) == []


def test_unsub_max_one(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\nUNSUB 1 1\r\n" + pub("foo", b"a") + pub("foo", b"b"))
    assert ops == [msg("foo", "1", b"a")]


def test_auto_unsubscribe_across_publishers(server):
    sub = client(server)
    assert sub.roundtrip(b"SUB foo 1\r\nUNSUB 1 3\r\n") == []
    pubs = [client(server) for _ in range(2)]
    for p in pubs:
        assert p.roundtrip(pub("foo", b"x") + pub("foo", b"x")) == []
    assert [op.raw for op in sub.sync()] == [msg("foo", "1", b"x")] * 3


def test_auto_unsubscribe_of_queue_member(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo q 1\r\nUNSUB 1 2\r\n" + b"".join(pub("foo", b"x") for _ in range(5)))
    assert [op.raw for op in ops] == [msg("foo", "1", b"x")] * 2


# --- sids ----------------------------------------------------------------------------------

def test_duplicate_sid_is_a_noop(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\nSUB foo 1\r\n" + pub("foo", b"abc")) == [msg("foo", "1", b"abc")]


def test_duplicate_sid_with_other_subject_keeps_the_first(server):
    w = client(server)
    ops = w.roundtrip(b"SUB foo 1\r\nSUB bar 1\r\n" + pub("foo", b"a") + pub("bar", b"b"))
    assert ops == [msg("foo", "1", b"a")]


def test_same_sid_on_two_connections_is_independent(server):
    a = client(server)
    b = client(server)
    assert a.roundtrip(b"SUB foo 1\r\n") == []
    assert b.roundtrip(b"SUB foo 1\r\nUNSUB 1\r\n") == []
    assert b.roundtrip(pub("foo", b"x")) == []
    assert a.read_op() == msg("foo", "1", b"x")


# --- payloads ------------------------------------------------------------------------------

def test_zero_length_payload(server):
    w = client(server)
    assert w.roundtrip(b"SUB foo 1\r\nPUB foo 0\r\n\r\n") == [b"MSG foo 1 0\r\n\r\n"]


def test_payload_containing_crlf(server):
    w = client(server)
    body = b"\r\n\r\nPING\r\nPUB x 1\r\n"
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", body)) == [msg("foo", "1", body)]


def test_payload_with_every_byte_value(server):
    w = client(server)
    body = bytes(range(256)) * 4
    assert w.roundtrip(b"SUB foo 1\r\n" + pub("foo", body)) == [msg("foo", "1", body)]


def test_payload_of_exactly_max_payload(server):
    sub = client(server)
    p = client(server)
    body = bytes(i % 251 for i in range(p.info["max_payload"]))
    assert sub.roundtrip(b"SUB big 1\r\n") == []
    assert p.roundtrip(pub("big", body)) == []
    op = sub.read_op(timeout=30)
    assert op.args == [b"big", b"1", str(len(body)).encode()]
    assert op.payload == body


# --- framing latitude --------------------------------------------------------------------------

def test_verbs_are_case_insensitive(server):
    w = raw_client(server)
    ops = w.roundtrip(b'connect {"verbose":false}\r\n'
                      b"sub foo 1\r\nSub bar 2\r\n"
                      + b"pub foo 1\r\na\r\nPuB bar 1\r\nb\r\n"
                      + b"unsub 1\r\nUnSub 2\r\n"
                      + pub("foo", b"c") + pub("bar", b"d"))
    assert ops == [msg("foo", "1", b"a"), msg("bar", "2", b"b")]
    w.send(b"ping\r\n")
    assert w.read_op().verb == "PONG"
    w.send(b"PiNg\r\n")
    assert w.read_op().verb == "PONG"


def test_tabs_and_runs_of_spaces_between_args(server):
    w = client(server)
    ops = w.roundtrip(b"SUB\tfoo  \t 1\r\n"
                      b"SUB \t bar\t\tq \t 2\r\n"
                      b"PUB \t foo\t\t1  \r\nc\r\n"
                      b"PUB  bar \t rep\t 2\r\nde\r\n"
                      b"UNSUB\t 1 \t\r\n"
                      + pub("foo", b"gone"))
    assert ops == [msg("foo", "1", b"c"), msg("bar", "2", b"de", reply="rep")]


def test_bare_lf_line_endings(server):
    w = raw_client(server)
    w.send(b'CONNECT {"verbose":false}\nSUB foo 1\nPUB foo 3\nabc\r\nUNSUB 1\nPING\n')
    assert w.read_op() == msg("foo", "1", b"abc")
    assert w.read_op().verb == "PONG"


def test_protocol_in_one_byte_writes(server):
    w = raw_client(server)
    hdr = b"NATS/1.0\r\nA: b\r\n\r\n"
    w.send_bytewise(b'CONNECT {"verbose":false,"headers":true}\r\n'
                    b"SUB foo 1\r\nSUB bar q 2\r\n"
                    + pub("foo", b"hello\r\nworld", reply="r")
                    + b"HPUB bar %d %d\r\n%sxyz\r\n" % (len(hdr), len(hdr) + 3, hdr)
                    + b"UNSUB 1 1\r\n"
                    + pub("foo", b"after")
                    + b"PING\r\n")
    assert w.read_op() == msg("foo", "1", b"hello\r\nworld", reply="r")
    assert w.read_op().raw == b"HMSG bar 2 %d %d\r\n%sxyz\r\n" % (len(hdr), len(hdr) + 3, hdr)
    assert w.read_op().verb == "PONG"
    assert w.sync() == []


def test_many_ops_pipelined_in_one_write(server):
    w = client(server)
    n = 2000
    batch = b"".join(b"SUB p.%d %d\r\n" % (i, i) for i in range(n))
    batch += b"".join(pub(f"p.{i}", str(i).encode()) for i in range(n))
    batch += b"".join(b"UNSUB %d\r\n" % i for i in range(0, n, 2))
    batch += b"".join(pub(f"p.{i}", b"again") for i in range(n))
    ops = w.roundtrip(batch, timeout=30)
    expected = [msg(f"p.{i}", str(i), str(i).encode()) for i in range(n)]
    expected += [msg(f"p.{i}", str(i), b"again") for i in range(1, n, 2)]
    assert [op.raw for op in ops] == expected
