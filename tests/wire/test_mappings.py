"""Subject mappings (`mappings`/`maps`, top level and per account) over raw sockets, on both
servers: what a published subject becomes, weighted splits, accounts, permissions, service
imports, JetStream, monitoring, trace and reload.

Every expectation was observed on the reference nats-server 2.15.1. Where the reference is not
deterministic the test says so and runs on actor-nats only: overlapping sources, both `mappings`
and `maps` at top level, a partition of a literal source (the reference tries its mappings, and
reads top-level keys, in Go map order, random per start), a destination of "" (accepted by the
reference's config check, then its server crashes on a publish to that subject), and removing
the top-level block on reload (the reference keeps the old mappings until a restart). Weighted
splits are checked statistically (each destination gets some of 1000 messages), never by exact
counts.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from collections import Counter

import pytest

from tests.servers import free_port
from tests.wire.proto import client, hmsg, hpub, msg, pub

N = 1000  # messages for the weighted splits


def sub_all(srv, subject: str = ">", **opts):
    """A client subscribed to `subject` (sid 1), synced."""
    w = client(srv, **opts)
    assert w.roundtrip(f"SUB {subject} 1\r\n".encode()) == []
    return w


def published(srv, subjects, reply=None, sub_opts=None, **opts) -> list:
    """Publish one message on each subject from a new client; the ops a `>` subscriber got."""
    s = sub_all(srv, **(sub_opts or opts))
    p = client(srv, **opts)
    p.send(b"".join(pub(x, b"m", reply) for x in subjects))
    assert p.sync() == []
    ops = s.sync()
    p.close()
    s.close()
    return ops


def spread(srv, subject: str, n: int = N) -> Counter:
    """Publish `n` messages on `subject`; how many arrived on each subject. The subscriber
    then publishes a marker to itself: everything the publisher sent before its PONG was
    routed, so it arrives before the marker."""
    s = sub_all(srv)
    p = client(srv)
    p.send(pub(subject, b"m") * n)
    assert p.sync() == []
    s.send(pub("zz.marker", b"end"))
    got = Counter()
    while True:
        op = s.read_op()
        if op.subject == b"zz.marker":
            break
        got[op.subject.decode()] += 1
    p.close()
    s.close()
    return got


# --- literal and wildcard sources --------------------------------------------------------------

BASIC = """
mappings {
  foo: bar
  x: y
  y: z
  rep: nope
  "orders.*.*": "o.$2.$1"
  "events.>": "ev.>"
  "fn.*.*": "fn.{{wildcard(2)}}.{{Wildcard(1)}}"
}
"""


def test_literal_mapping_keeps_the_reply_unmapped(impl, start_server):
    srv = start_server(impl, config=BASIC)
    ops = published(srv, ["foo"], reply="rep")
    assert ops == [msg("bar", "1", b"m", reply="rep")]


def test_mapped_subject_is_not_mapped_again(impl, start_server):
    srv = start_server(impl, config=BASIC)
    assert published(srv, ["x", "y"]) == [msg("y", "1", b"m"), msg("z", "1", b"m")]


def test_unmapped_subjects_pass_unchanged(impl, start_server):
    srv = start_server(impl, config=BASIC)
    assert published(srv, ["foo.bar", "fo", "orders.1"]) == [
        msg("foo.bar", "1", b"m"), msg("fo", "1", b"m"), msg("orders.1", "1", b"m")]


def test_wildcard_sources_with_dollar_and_wildcard_function(impl, start_server):
    srv = start_server(impl, config=BASIC)
    ops = published(srv, ["orders.eu.42", "events.a.b.c", "fn.1.2"])
    assert [op.subject for op in ops] == [b"o.42.eu", b"ev.a.b.c", b"fn.2.1"]


def test_subscribers_to_the_source_get_nothing(impl, start_server):
    srv = start_server(impl, config=BASIC)
    s = sub_all(srv, "foo")
    p = client(srv)
    assert p.roundtrip(pub("foo", b"m")) == []
    assert s.sync() == []


def test_headers_are_kept_when_an_hpub_is_mapped(impl, start_server):
    srv = start_server(impl, config=BASIC)
    s = sub_all(srv, headers=True)
    p = client(srv, headers=True)
    hdr = b"NATS/1.0\r\nA: b\r\n\r\n"
    assert p.roundtrip(hpub("orders.us.7", hdr, b"hi", reply="r")) == []
    assert s.sync() == [hmsg("o.7.us", "1", hdr, b"hi", reply="r")]


def test_pedantic_and_verbose_publishers_are_mapped(impl, start_server):
    """The pedantic check sees the subject as published; the mapping still applies."""
    srv = start_server(impl, config=BASIC)
    s = sub_all(srv)
    p = client(srv, pedantic=True, verbose=True)
    ops = p.roundtrip(pub("foo", b"m") + pub("orders.*.x", b"w"))
    assert [op.raw for op in ops] == [b"+OK\r\n", b"-ERR 'Invalid Publish Subject'\r\n", b"+OK\r\n"]
    assert s.sync() == [msg("bar", "1", b"m"), msg("o.x.*", "1", b"w")]


# --- the mapping functions ---------------------------------------------------------------------

FUNCTIONS = """
mappings {
  "fn.partition.*.*": "out.{{partition(10,1,2)}}.{{Partition(3)}}"
  "fn.split.*": "out.{{split(1,-)}}"
  "fn.sfl.*": "out.{{splitfromleft(1,2)}}"
  "fn.sfr.*": "out.{{SplitFromRight(1, 2)}}"
  "fn.slfl.*": "out.{{slicefromleft(1,3)}}"
  "fn.slfr.*": "out.{{SliceFromRight(1,3)}}"
  "fn.left.*": "out.{{left(1,2)}}"
  "fn.right.*": "out.{{ right( 1, 2 ) }}"
  "fn.rest.*.>": "out.$1.>"
  "fn.zero.*": "out.$0.{{wildcard(-1)}}.$x.{{}}"
  "fn.random": "out.{{random(5)}}"
}
"""

# what the reference maps each subject to
FUNCTION_CASES = [
    ("fn.partition.k1.k2", "out.2.0"), ("fn.partition.a.b", "out.6.0"),
    ("fn.partition.user.42", "out.6.2"), ("fn.partition.zz.top", "out.2.2"),
    ("fn.split.-ab--cd-", "out.ab.cd"), ("fn.split.abc", "out.abc"),
    ("fn.sfl.abcde", "out.ab.cde"), ("fn.sfl.a", "out.a"), ("fn.sfl.ab", "out.ab"),
    ("fn.sfr.abcde", "out.abc.de"),
    ("fn.slfl.abcdefgh", "out.abc.def.gh"), ("fn.slfl.abc", "out.abc"),
    ("fn.slfr.abcdefgh", "out.ab.cde.fgh"),
    ("fn.left.abcde", "out.ab"), ("fn.left.a", "out.a"), ("fn.right.abcde", "out.de"),
    ("fn.rest.a.b.c", "out.a.b.c"),
    ("fn.zero.q", "out.fn.fn.$x.{{}}"),  # $0 and wildcard(-1) name the first token
]


def test_mapping_functions(impl, start_server):
    srv = start_server(impl, config=FUNCTIONS)
    ops = published(srv, [s for s, _ in FUNCTION_CASES])
    assert [op.subject.decode() for op in ops] == [want for _, want in FUNCTION_CASES]


def test_functions_count_bytes_not_characters(impl, start_server):
    srv = start_server(impl, config=FUNCTIONS)
    ops = published(srv, ["fn.left.\u00e9x", "fn.right.x\u00e9"])
    assert [op.subject for op in ops] == [b"out.\xc3\xa9", b"out.\xc3\xa9"]


def test_random_function_picks_below_its_bound(impl, start_server):
    srv = start_server(impl, config=FUNCTIONS)
    got = spread(srv, "fn.random", 200)
    assert sum(got.values()) == 200
    assert set(got) <= {f"out.{i}" for i in range(5)} and len(got) > 1, got


# --- weighted destinations ---------------------------------------------------------------------

WEIGHTED = """
mappings {
  split: [{destination: split.a, weight: 50%}, {dest: split.b, weight: 50}]
  partial: [{destination: partial.a, weight: "30"}]
  lossy: [{destination: lossy, weight: 30%}, {destination: lossy.other, weight: 20}]
  scoped: [{destination: scoped.east, weight: 100, cluster: east}, {destination: scoped.all, weight: 40}]
  "w.*": [{destination: "w.$1.a", weight: 70}, {destination: "w.$1.b", weight: 30}]
}
"""


def test_weighted_split_sends_to_both(impl, start_server):
    srv = start_server(impl, config=WEIGHTED)
    got = spread(srv, "split")
    assert set(got) == {"split.a", "split.b"}, got
    assert sum(got.values()) == N


def test_weights_below_100_keep_the_subject_for_the_rest(impl, start_server):
    srv = start_server(impl, config=WEIGHTED)
    got = spread(srv, "partial")
    assert set(got) == {"partial.a", "partial"}, got
    assert sum(got.values()) == N


def test_weighted_wildcard_destinations(impl, start_server):
    srv = start_server(impl, config=WEIGHTED)
    got = spread(srv, "w.7")
    assert set(got) == {"w.7.a", "w.7.b"}, got


def test_source_listed_below_100_drops_the_rest(impl, start_server):
    """When the source itself is one of the destinations, nothing is added for the rest: the
    messages drawn past the listed weights are dropped."""
    srv = start_server(impl, config=WEIGHTED)
    got = spread(srv, "lossy")
    assert set(got) == {"lossy", "lossy.other"}, got
    assert 0 < sum(got.values()) < N


def test_cluster_scoped_destinations_are_not_used_outside_that_cluster(impl, start_server):
    srv = start_server(impl, config=WEIGHTED)
    got = spread(srv, "scoped", 300)
    assert set(got) == {"scoped.all", "scoped"}, got


# --- accounts, permissions, imports ------------------------------------------------------------

ACCOUNTS = """
mappings { "global": "global.mapped" }
authorization { users: [{user: g, password: g}] }
accounts {
  A: {
    users: [{user: a, password: a}]
    exports: [{service: "svc.>"}, {stream: "ev.>"}]
    mappings: { "svc.x": "svc.y", "ev.1": "ev.2", "shared": "a.only" }
  }
  B: {
    users: [{user: b, password: b, permissions: {publish: ["ok", "imp.>", "_INBOX.>", "shared"]}}]
    imports: [{service: {account: A, subject: "svc.>"}, to: "imp.>"}, {stream: {account: A, subject: "ev.>"}}]
    mappings: { "denied": "ok", "ok": "denied2", "imp.q": "imp.x" }
  }
}
"""

A = {"user": "a", "pass": "a"}
B = {"user": "b", "pass": "b"}
G = {"user": "g", "pass": "g"}  # the global account


def test_each_account_has_its_own_mappings(impl, start_server):
    srv = start_server(impl, config=ACCOUNTS)
    assert published(srv, ["shared", "global"], **A) == [msg("a.only", "1", b"m"), msg("global", "1", b"m")]
    assert published(srv, ["shared"], **B) == [msg("shared", "1", b"m")]
    assert published(srv, ["shared", "global"], **G) == [msg("shared", "1", b"m"),
                                                         msg("global.mapped", "1", b"m")]


def test_permissions_are_checked_on_the_mapped_subject(impl, start_server):
    srv = start_server(impl, config=ACCOUNTS)
    s = sub_all(srv, **B)
    p = client(srv, **B)
    assert p.roundtrip(pub("denied", b"1")) == []
    assert p.roundtrip(pub("ok", b"2")) == [b"-ERR 'Permissions Violation for Publish to \"denied2\"'\r\n"]
    assert s.sync() == [msg("ok", "1", b"1")]


def test_service_import_takes_the_exporters_mappings(impl, start_server):
    srv = start_server(impl, config=ACCOUNTS)
    a = sub_all(srv, "svc.>", **A)
    b = client(srv, **B)
    assert b.roundtrip(pub("imp.x", b"3", "_INBOX.r1") + pub("imp.q", b"4", "_INBOX.r2")) == []
    ops = [a.read_op(), a.read_op()]
    assert [(op.subject, op.payload) for op in ops] == [(b"svc.y", b"3"), (b"svc.y", b"4")]
    assert all(op.reply.startswith(b"_R_.") for op in ops)


def test_stream_import_sees_the_exporters_mapped_subject(impl, start_server):
    srv = start_server(impl, config=ACCOUNTS)
    b = sub_all(srv, "ev.>", **B)
    a = client(srv, **A)
    assert a.roundtrip(pub("ev.1", b"5")) == []
    assert b.read_op() == msg("ev.2", "1", b"5")


# --- JetStream ---------------------------------------------------------------------------------

def test_client_publishes_are_mapped_into_streams_but_republishes_are_not(impl, start_server, tmp_path):
    config = 'mappings { "in.mapped": "in.other", "out.>": "never.>", "$JS.API.STREAM.INFO.ALIAS": "$JS.API.STREAM.INFO.S" }\n'
    srv = start_server(impl, config=config, args=["-js", "-sd", str(tmp_path)])
    s = sub_all(srv, "out.>", headers=True)
    p = client(srv, headers=True)
    cfg = {"name": "S", "subjects": ["in.>"], "republish": {"src": "in.>", "dest": "out.>"}}
    p.send(b"SUB _INBOX.1 9\r\n" + pub("$JS.API.STREAM.CREATE.S", json.dumps(cfg).encode(), "_INBOX.1"))
    assert json.loads(p.read_op().payload)["config"]["name"] == "S"
    p.send(pub("in.mapped", b"hello", "_INBOX.1"))
    assert json.loads(p.read_op().payload) == {"stream": "S", "seq": 1}
    op = s.read_op()
    assert op.subject == b"out.other" and b"Nats-Subject: in.other\r\n" in op.headers
    p.send(pub("$JS.API.STREAM.INFO.ALIAS", b"", "_INBOX.1"))
    info = json.loads(p.read_op().payload)
    assert info["config"]["name"] == "S" and info["state"]["messages"] == 1


# --- monitoring and trace ----------------------------------------------------------------------

def accountz_detail(impl, start_server, config=None) -> dict:
    port = free_port()
    srv = start_server(impl, config=config, args=["-m", str(port)])
    client(srv).close()
    url = f"http://127.0.0.1:{port}/accountz?acc=$G"
    return json.loads(urllib.request.urlopen(url, timeout=10).read())["account_detail"]


def test_accountz_shows_the_mappings_after_the_subscriptions(impl, start_server):
    detail = accountz_detail(impl, start_server, BASIC.replace("mappings", "maps"))
    keys = list(detail)
    assert keys.index("mappings") == keys.index("subscriptions") + 1
    assert detail["mappings"] == {  # sorted by source
        "events.>": [{"subject": "ev.>", "weight": 100}],
        "fn.*.*": [{"subject": "fn.{{wildcard(2)}}.{{Wildcard(1)}}", "weight": 100}],
        "foo": [{"subject": "bar", "weight": 100}],
        "orders.*.*": [{"subject": "o.$2.$1", "weight": 100}],
        "rep": [{"subject": "nope", "weight": 100}],
        "x": [{"subject": "y", "weight": 100}],
        "y": [{"subject": "z", "weight": 100}],
    }


def test_accountz_shows_cumulative_weights_and_the_added_source(impl, start_server):
    m = accountz_detail(impl, start_server, WEIGHTED)["mappings"]
    assert m["partial"] == [{"subject": "partial.a", "weight": 30}, {"subject": "partial", "weight": 100}]
    assert m["lossy"] == [{"subject": "lossy.other", "weight": 20}, {"subject": "lossy", "weight": 50}]
    assert m["w.*"] == [{"subject": "w.$1.b", "weight": 30}, {"subject": "w.$1.a", "weight": 100}]
    assert m["scoped"] == [{"subject": "scoped.all", "weight": 40}, {"subject": "scoped", "weight": 100},
                           {"subject": "scoped.east", "weight": 100, "cluster": "east"}]


def test_accountz_has_no_mappings_key_without_mappings(impl, start_server):
    assert "mappings" not in accountz_detail(impl, start_server)


def test_trace_shows_the_mapping_between_the_pub_and_its_payload(impl, start_server):
    srv = start_server(impl, config=BASIC, args=["-V"])
    published(srv, ["foo"])
    lines = [re.sub(r"^.*- cid:\d+ - ", "", l) for l in srv.log().splitlines() if "<<-" in l]
    i = lines.index("<<- [PUB foo 1]")
    assert lines[i:i + 3] == ["<<- [PUB foo 1]", "<<- [MAPPING foo -> bar]", '<<- MSG_PAYLOAD: ["m"]']


# --- reload ------------------------------------------------------------------------------------

def reload(srv, config: str) -> list[str]:
    """Rewrite the config, SIGHUP, wait for the outcome; the server's own log lines of it."""
    srv.config_path.write_text(config)
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while True:
        lines = [re.sub(r"^\[\d+\] \S+ \S+ ", "", l) for l in srv.log()[start:].splitlines()]
        lines = [l for l in lines if " - cid:" not in l]
        if any("Reloaded server configuration" in l or "Failed to reload" in l for l in lines):
            return lines
        assert time.monotonic() < deadline, srv.log()[start:]
        time.sleep(0.02)


def test_reload_adds_and_changes_mappings_for_connected_clients(impl, start_server):
    srv = start_server(impl, config="mappings { foo: bar }\n")
    s = sub_all(srv)
    p = client(srv)  # stays connected through both reloads

    def send(subject):
        assert p.roundtrip(pub(subject, b"m")) == []
        return [op.subject.decode() for op in s.sync()]

    assert send("foo") == ["bar"] and send("baz") == ["baz"]
    lines = reload(srv, 'mappings { foo: qux, "baz.*": "zz.$1" }\n')
    assert lines[:3] == ['[INF] Trapped "hangup" signal', "[INF] Reloaded: authorization users",
                         "[INF] Reloaded: accounts"], lines
    assert lines[3].startswith("[INF] Reloaded server configuration (sha256:"), lines
    assert send("foo") == ["qux"] and send("baz.1") == ["zz.1"]


def test_reload_adds_an_accounts_mappings_for_its_connected_clients(impl, start_server):
    users = "users: [{user: a, password: a}]"
    srv = start_server(impl, config=f"accounts {{ A: {{ {users} }} }}\n")
    s = sub_all(srv, **A)
    p = client(srv, **A)
    assert p.roundtrip(pub("foo", b"m")) == []
    assert s.sync() == [msg("foo", "1", b"m")]
    reload(srv, f"accounts {{ A: {{ {users}, mappings: {{ foo: a.foo }} }} }}\nmappings {{ foo: g.foo }}\n")
    assert p.roundtrip(pub("foo", b"m")) == []
    assert s.sync() == [msg("a.foo", "1", b"m")]


# --- actor-nats only (the reference is not deterministic here) ---------------------------------

def test_literal_source_first_then_wildcards_in_config_order(start_server):
    """The reference tries its mappings in Go map order (random per start); actor-nats looks
    the literal source up first, then the wildcard sources in the order written."""
    srv = start_server("actor", config="""
mappings {
  "foo.>": "gt.>"
  "foo.bar": "lit"
  "foo.*": "star.$1"
}
""")
    ops = published(srv, ["foo.bar", "foo.x", "foo.x.y"])
    assert [op.subject for op in ops] == [b"lit", b"gt.x", b"gt.x.y"]


def test_empty_destination_keeps_the_subject(start_server):
    """The reference accepts `foo: ""` and then crashes on a publish to foo; actor-nats keeps
    the subject."""
    srv = start_server("actor", config='mappings { foo: "" }\n')
    assert published(srv, ["foo"]) == [msg("foo", "1", b"m")]


def test_the_last_top_level_block_wins(start_server):
    """`mappings` and `maps` both given: the reference reads top-level keys in Go map order
    (random), so either may win there; actor-nats takes the last one written."""
    srv = start_server("actor", config="mappings { x: y }\nmaps { z: w }\n")
    assert [op.subject for op in published(srv, ["x", "z"])] == [b"x", b"w"]


def test_literal_partition_hashes_the_empty_key(start_server):
    """A literal source found first (always, here) partitions an empty key, as the reference
    does when its literal mapping is the first it tries."""
    srv = start_server("actor", config='mappings { "p": "out.{{partition(3)}}", "q.*": "r" }\n')
    assert [op.subject for op in published(srv, ["p"])] == [b"out.1"]


def test_removing_the_top_level_block_removes_the_mappings(start_server):
    """The reference keeps the global account's mappings until a restart when the block is
    removed (its reload only updates accounts still in the config); actor-nats drops them."""
    srv = start_server("actor", config="mappings { foo: bar }\n")
    assert [op.subject for op in published(srv, ["foo"])] == [b"bar"]
    reload(srv, "# no mappings\n")
    assert [op.subject for op in published(srv, ["foo"])] == [b"foo"]
