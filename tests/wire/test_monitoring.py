"""Monitoring endpoints (`-m`): the reference's JSON, field for field, and true counters.

Two kinds of test. Shape tests run the same scenario (the same connections, subscriptions,
messages and closes) on actor-nats and on the reference binary side by side and compare, per
endpoint, the set of JSON keys and their JSON types, recursively (`assert_same_shape`); the few
keys that legitimately differ are listed in ALLOWED with the reason. Behaviour tests
(parametrised over both servers) check values: message/byte counters after publishing N
messages of M bytes, connz sorting, paging, cid and state=closed with the close reasons, subsz
test=, the HTTP 400 texts for bad parameters. /metrics is actor-nats' own and is parsed with
prometheus_client's parser.

No timing assertions: waits poll until the server shows what the test expects.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.servers import Server, free_port


def instant(t: str) -> tuple[str, int]:
    """An RFC 3339 time as Go writes it (trailing zeros of the fraction trimmed, so strings do
    not sort as times) -> a key that does: (date and time to the second, nanoseconds)."""
    head, _, frac = t.rstrip("Z").partition(".")
    return head, int(frac.ljust(9, "0")) if frac else 0
from tests.wire.proto import client, pub, raw_client

# Keys that legitimately differ between the two servers, by path ("[]" is a list element).
ALLOWED = {
    "varz.git_commit": "actor-nats is not built from the nats-server repository",
    "varz.feature_flags": "JetStream feature flags: actor-nats has no JetStream yet",
    "varz.system_account": "no $SYS account yet (no system account subscriptions or events)",
    "accountz.system_account": "no $SYS account yet",
    "accountz.account_detail.imports": "the reference's $G imports $SYS services; no $SYS yet",
}

CONFIG = "max_pending: 100000\nmax_payload: 65536\n"
PAYLOAD = b"0123456789"  # 10 bytes


# -- HTTP helpers ---------------------------------------------------------------------------------

def http(port: int, path: str) -> tuple[int, dict, bytes]:
    url = f"http://127.0.0.1:{port}/{path.lstrip('/')}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get(port: int, path: str) -> dict:
    status, _, body = http(port, path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def wait_for(fn, what: str, timeout: float = 15.0):
    """Poll `fn` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def closed_by_cid(port: int, count: int) -> dict:
    """Wait until the closed ring holds `count` connections; return them by cid."""
    def ready():
        conns = get(port, "connz?state=closed&subs=detail")["connections"]
        return {c["cid"]: c for c in conns} if len(conns) >= count else None
    return wait_for(ready, f"{count} closed connections")


# -- JSON shape comparison ------------------------------------------------------------------------

def json_shape(v):
    """The JSON type of `v`, recursively: objects map keys to shapes, a list's shape merges the
    shapes of all its elements (so optional keys seen on any element count)."""
    if isinstance(v, dict):
        return {k: json_shape(x) for k, x in v.items()}
    if isinstance(v, list):
        merged = None
        for x in v:
            merged = _merge(merged, json_shape(x))
        return [] if merged is None else [merged]
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    raise TypeError(type(v))


def _merge(a, b):
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out.get(k), v)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if not a or not b:
            return a or b
        return [_merge(a[0], b[0])]
    return a if a == b else f"{a}|{b}"


def shape_differences(ref, act, path: str, allowed=ALLOWED) -> list[str]:
    if isinstance(ref, dict) and isinstance(act, dict):
        out = []
        for k in ref.keys() - act.keys():
            if f"{path}.{k}" not in allowed:
                out.append(f"{path}.{k}: missing (reference has {ref[k]!r})")
        for k in act.keys() - ref.keys():
            if f"{path}.{k}" not in allowed:
                out.append(f"{path}.{k}: extra (reference has no such key)")
        for k in ref.keys() & act.keys():
            if f"{path}.{k}" not in allowed:
                out += shape_differences(ref[k], act[k], f"{path}.{k}", allowed)
        return out
    if isinstance(ref, list) and isinstance(act, list):
        if not ref or not act:
            return [] if not ref and not act else [f"{path}: one list is empty, the other not"]
        return shape_differences(ref[0], act[0], f"{path}[]", allowed)
    return [] if ref == act else [f"{path}: {act!r} where the reference has {ref!r}"]


def assert_same_shape(ref: dict, act: dict, name: str) -> None:
    diffs = shape_differences(json_shape(ref), json_shape(act), name)
    assert not diffs, "\n".join(diffs)


def test_shape_helper_sees_differences():
    ref = {"a": 1, "b": [{"x": "s", "q": 1}, {"x": "t"}], "c": {}, "git_commit": "abc"}
    assert shape_differences(json_shape(ref), json_shape(ref), "varz") == []
    act = {"a": "1", "b": [{"x": "s"}], "c": {"n": True}}
    diffs = shape_differences(json_shape(ref), json_shape(act), "varz")
    assert sorted(diffs) == [
        "varz.a: 'string' where the reference has 'number'",
        "varz.b[].q: missing (reference has 'number')",
        "varz.c.n: extra (reference has no such key)",
    ]


# -- the side-by-side scenario ---------------------------------------------------------------------

def populate(srv: Server) -> list:
    """The same traffic on either server: a subscriber (plain, queue, wildcard-first-token with
    an UNSUB max), a publisher, a client that closed with subscriptions, and one closed for a
    protocol violation. Returns the connections to keep open."""
    sub = client(srv, name="subber", lang="python", version="1.2.3")
    assert sub.roundtrip(b"SUB foo 1\r\nSUB bar.* q1 2\r\nSUB > 3\r\nUNSUB 3 100\r\n") == []
    publisher = client(srv)
    assert publisher.roundtrip(pub("foo", PAYLOAD) * 5 + pub("bar.baz", b"abc")) == []
    assert len(sub.sync()) == 12
    gone = client(srv, name="gone")
    assert gone.roundtrip(b"SUB gone.a 1\r\nSUB gone.b q 2\r\n") == []
    gone.close()
    bad = raw_client(srv)
    bad.send(b"FOO\r\n")
    bad.expect_closed()
    return [sub, publisher]


@pytest.fixture(scope="module")
def pair():
    """Both servers with monitoring, after the same scenario: {"reference": port, "actor": port}."""
    servers, ports, keep = [], {}, []
    try:
        for impl in ("reference", "actor"):
            http_port = free_port()
            srv = Server(impl, args=["-m", str(http_port)], config=CONFIG)
            servers.append(srv)
            keep += populate(srv)
            closed_by_cid(http_port, 2)
            ports[impl] = http_port
        yield ports
    finally:
        for w in keep:
            w.close()
        for srv in servers:
            srv.stop()


SHAPE_PATHS = [
    "varz", "connz", "connz?subs=1", "connz?subs=detail", "connz?state=closed&subs=detail",
    "connz?state=all&sort=bytes_to&auth=1", "connz?cid={cid}", "subsz", "subsz?subs=1",
    "subsz?subs=1&test=bar.baz", "subscriptionsz", "routez", "routez?subs=detail", "gatewayz",
    "leafz", "accountz", "accountz?acc=$G", "accstatz", "accstatz?unused=1", "jsz",
    "jsz?accounts=1", "healthz", "healthz?js-enabled-only=true", "healthz?js-server-only=true",
]


@pytest.mark.parametrize("path", SHAPE_PATHS)
def test_same_json_shape_as_reference(pair, path):
    name = path.split("?")[0]
    shapes = []
    for impl in ("reference", "actor"):
        cid = get(pair[impl], "connz")["connections"][0]["cid"]  # the reference's start at 5
        shapes.append(get(pair[impl], path.format(cid=cid)))
    assert_same_shape(shapes[0], shapes[1], name)


@pytest.mark.parametrize("path", ["varz", "connz", "subsz", "routez", "gatewayz", "leafz",
                                  "accountz", "accstatz", "jsz", "healthz"])
def test_same_headers_as_reference(pair, path):
    for impl in ("reference", "actor"):
        status, headers, _ = http(pair[impl], path)
        assert status == 200
        assert headers["Content-Type"] == "application/json", impl
        assert headers["Access-Control-Allow-Origin"] == "*", impl


def test_encodings_as_reference(pair):
    """Durations in ns, times in RFC 3339 UTC, uptime as Go's 1m2s, rtt as a Go duration."""
    for impl in ("reference", "actor"):
        v = get(pair[impl], "varz")
        assert v["ping_interval"] == 120_000_000_000 and v["write_deadline"] == 10_000_000_000
        assert v["auth_timeout"] == 2 and v["tls_timeout"] == 2
        for key in ("start", "now", "config_load_time"):
            assert v[key].endswith("Z") and v[key][10] == "T", (impl, key, v[key])
        assert v["uptime"][-1] == "s" and v["uptime"][:-1].replace("m", "").isdigit()
        assert v["config_digest"].startswith("sha256:")
        assert v["http_req_stats"]["/varz"] >= 1
        c = get(pair[impl], "connz")["connections"][0]
        assert c["rtt"][-1] == "s" and c["uptime"][-1] == "s" and c["idle"][-1] == "s"
        assert get(pair[impl], "connz?cid=1&limit=50")["limit"] == 1
    # healthz is compact JSON on both
    for impl in ("reference", "actor"):
        assert http(pair[impl], "healthz")[2] == b'{"status":"ok"}'


def test_index_page_lists_endpoints(pair):
    for impl in ("reference", "actor"):
        status, headers, body = http(pair[impl], "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        for path in ("varz", "connz", "subsz", "routez", "gatewayz", "leafz", "accountz",
                     "accstatz", "jsz", "healthz"):
            assert f"href=./{path}>".encode() in body, (impl, path)
        assert http(pair[impl], "/nosuchz")[:1] == (404,)


BAD_PARAMS = [
    ("connz?sort=bogus", "invalid sorting option: bogus"),
    ("connz?sort=stop", "sort by stop only valid on closed connections"),
    ("connz?sort=reason&state=all", "sort by reason only valid on closed connections"),
    ("connz?state=bogus", "Error decoding state for bogus"),
    ("connz?limit=x", "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"),
    ("connz?offset=1.5", "Error decoding int for 'offset': strconv.Atoi: parsing \"1.5\": invalid syntax"),
    ("connz?cid=-1", "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"-1\": invalid syntax"),
    ("connz?subs=maybe", "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"),
    ("connz?auth=yes", "Error decoding boolean for 'auth': strconv.ParseBool: parsing \"yes\": invalid syntax"),
    ("subsz?subs=x", "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax"),
    ("subsz?test=foo.*", "invalid test subject, must be valid publish subject: foo.*"),
    ("healthz?js-enabled-only=x",
     "Error decoding boolean for 'js-enabled-only': strconv.ParseBool: parsing \"x\": invalid syntax"),
    ("jsz?accounts=x", "Error decoding boolean for 'accounts': strconv.ParseBool: parsing \"x\": invalid syntax"),
    ("accountz?acc=nope", "Account nope does not exist"),
    ("accstatz?unused=2", "Error decoding boolean for 'unused': strconv.ParseBool: parsing \"2\": invalid syntax"),
]


@pytest.mark.parametrize("path, text", BAD_PARAMS, ids=[p for p, _ in BAD_PARAMS])
def test_bad_parameters_are_400_with_the_reference_text(pair, path, text):
    for impl in ("reference", "actor"):
        status, _, body = http(pair[impl], path)
        assert (status, body.decode()) == (400, text), impl


def test_healthz_stream_without_account(pair):
    for impl in ("reference", "actor"):
        status, _, body = http(pair[impl], "healthz?stream=x")
        assert status == 400
        assert json.loads(body) == {
            "status": "error", "error": '"account" must not be empty when checking stream health'}


# -- values, on each server -----------------------------------------------------------------------

@pytest.fixture
def monitored(impl, start_server):
    """A server of `impl` with monitoring; returns (server, http port)."""
    def start(config: str = CONFIG):
        port = free_port()
        return start_server(impl, args=["-m", str(port)], config=config), port
    return start


def test_counters_are_true(monitored):
    """N messages of M bytes to one subscriber: in/out msgs and bytes count the messages (not
    protocol lines), per connection and in /varz, and stay counted after the connections close."""
    srv, port = monitored()
    n, payload = 40, b"x" * 123
    base = get(port, "varz")
    sub = client(srv)
    assert sub.roundtrip(b"SUB c.> 1\r\n") == []
    p = client(srv)
    assert p.roundtrip(pub("c.x", payload) * n) == []
    assert len(sub.sync()) == n
    v = get(port, "varz")
    for key, want in (("in_msgs", n), ("out_msgs", n), ("in_bytes", n * len(payload)),
                      ("out_bytes", n * len(payload))):
        assert v[key] - base[key] == want, key
        assert v[key.replace("_", "_client_", 1)] - base[key] == want
    assert v["connections"] == 2 and v["total_connections"] == 2
    assert v["subscriptions"] - base["subscriptions"] == 1
    conns = {c["cid"]: c for c in get(port, "connz")["connections"]}
    pc, sc = conns[max(conns)], conns[min(conns)]
    assert (pc["in_msgs"], pc["in_bytes"], pc["out_msgs"], pc["out_bytes"]) == (n, n * 123, 0, 0)
    assert (sc["in_msgs"], sc["in_bytes"], sc["out_msgs"], sc["out_bytes"]) == (0, 0, n, n * 123)
    p.close()
    sub.close()
    wait_for(lambda: get(port, "varz")["connections"] == 0, "both connections closed")
    after = get(port, "varz")
    for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        assert after[key] == v[key], key
    assert after["total_connections"] == 2
    closed = closed_by_cid(port, 2)
    assert sorted((c["in_msgs"], c["out_msgs"]) for c in closed.values()) == [(0, n), (n, 0)]


def test_connz_sorting_and_paging(monitored):
    srv, port = monitored()
    wires = []
    for i in range(4):  # cid order == start order; subscriptions 0, 1, 2, 3; i publishes i msgs
        w = client(srv, name=f"c{i}")
        w.roundtrip(b"".join(f"SUB s{i}.{j} {j}\r\n".encode() for j in range(i))
                    + pub("nobody", b"x" * 10) * (i * 2))
        wires.append(w)
        time.sleep(0.01)
    cids = [c["cid"] for c in get(port, "connz")["connections"]]
    assert cids == sorted(cids) and len(cids) == 4
    names = lambda path: [c.get("name") for c in get(port, path)["connections"]]  # noqa: E731
    assert names("connz?sort=cid") == ["c0", "c1", "c2", "c3"]
    assert names("connz?sort=start") == ["c0", "c1", "c2", "c3"]
    assert names("connz?sort=subs") == ["c3", "c2", "c1", "c0"]
    assert names("connz?sort=msgs_from") == ["c3", "c2", "c1", "c0"]
    assert names("connz?sort=bytes_from") == ["c3", "c2", "c1", "c0"]
    assert names("connz?sort=uptime") == ["c3", "c2", "c1", "c0"]  # ascending: newest first
    assert names("connz?sort=subs&offset=1&limit=2") == ["c2", "c1"]
    page = get(port, "connz?offset=3&limit=2")
    assert (page["num_connections"], page["total"], page["offset"], page["limit"]) == (1, 4, 3, 2)
    for sort in ("pending", "msgs_to", "bytes_to", "last", "idle", "rtt"):
        assert sorted(names(f"connz?sort={sort}")) == ["c0", "c1", "c2", "c3"], sort
    one = get(port, f"connz?cid={cids[2]}")
    assert one["limit"] == 1 and [c["name"] for c in one["connections"]] == ["c2"]
    assert get(port, "connz?cid=999")["connections"] == []
    subs = get(port, f"connz?cid={cids[2]}&subs=1")["connections"][0]["subscriptions_list"]
    assert sorted(subs) == ["s2.0", "s2.1"]
    wires[0].close()
    closed = closed_by_cid(port, 1)
    assert [c["name"] for c in closed.values()] == ["c0"]
    everything = get(port, "connz?state=all")
    assert everything["total"] == 4 and [c["cid"] for c in everything["connections"]] == cids
    assert get(port, "connz?state=any")["total"] == 4


def test_closed_connections_and_reasons(monitored):
    """Each way a client connection ends, with the reference's reason, in the closed ring."""
    srv, port = monitored("max_pending: 100000\nmax_payload: 1000\nmax_connections: 4\n")
    w = client(srv, name="bye")
    w.roundtrip(b"SUB a 1\r\nSUB b q 2\r\n")
    w.close()
    for connect, data in ((True, b"FOO\r\n"), (True, b"PUB foo 2000\r\n"),
                          (True, b"SUB " + b"x" * 5000 + b" 1\r\n"),
                          (False, b'CONNECT {"protocol":5}\r\n'),
                          (False, b'CONNECT {"no_responders":true}\r\n')):
        w = client(srv) if connect else raw_client(srv)
        w.send(data)
        w.expect_closed()
    slow = client(srv, rcvbuf=65536, name="slowpoke")
    assert slow.roundtrip(b"SUB flood 1\r\n") == []
    p = client(srv)
    p.send(pub("flood", b"x" * 900) * 5000)
    p.sync(timeout=60)
    slow.expect_closed(timeout=30)
    extra = [client(srv) for _ in range(3)]  # with p: max_connections
    over = raw_client(srv)
    over.expect_closed()
    want = ["Client Closed", "Protocol Violation", "Maximum Message Payload Exceeded",
            "Maximum Control Line Exceeded", "Bad Client Protocol Version",
            "No Responders Requires Headers", "Slow Consumer (Pending Bytes)",
            "Maximum Connections Exceeded"]
    closed = list(closed_by_cid(port, len(want)).values())
    by_reason = {c["reason"]: c for c in closed}
    assert sorted(by_reason) == sorted(want)
    bye = by_reason["Client Closed"]
    assert bye["name"] == "bye" and bye["subscriptions"] == 2
    assert sorted((s["subject"], s.get("qgroup"), s["account"])
                  for s in bye["subscriptions_list_detail"]) == [("a", None, "$G"), ("b", "q", "$G")]
    sc = by_reason["Slow Consumer (Pending Bytes)"]
    assert sc["name"] == "slowpoke" and sc["pending_bytes"] > 0 and sc["out_msgs"] > 0
    for c in closed:
        assert instant(c["stop"]) >= instant(c["start"])
    reasons = [c["reason"] for c in get(port, "connz?state=closed&sort=reason")["connections"]]
    assert reasons == sorted(reasons)
    stops = [instant(c["stop"]) for c in get(port, "connz?state=closed&sort=stop")["connections"]]
    assert stops == sorted(stops, reverse=True)
    v = get(port, "varz")
    assert v["slow_consumers"] == 1 and v["slow_consumer_stats"]["clients"] == 1
    assert v["connections"] == 4 and v["total_connections"] == len(closed) + 4
    assert (f' - cid:{sc["cid"]} - "slowpoke" - Slow Consumer Detected: MaxPending of 100000 '
            f'Exceeded') in srv.log()
    for w in extra + [p]:
        w.close()


def test_stale_connection_reason(monitored):
    srv, port = monitored('ping_interval: "1s"\nping_max: 1\n')
    stale = raw_client(srv)  # never answers the server's PINGs
    stale.send(b'CONNECT {"verbose":false}\r\n')
    closed = wait_for(lambda: get(port, "connz?state=closed")["connections"], "the stale close")
    assert [c["reason"] for c in closed] == ["Stale Connection"]
    v = get(port, "varz")
    assert v["stale_connections"] == 1 and v["stale_connection_stats"]["clients"] == 1
    stale.close()


def test_write_deadline_slow_consumer_is_named(monitored):
    srv, port = monitored('write_deadline: "500ms"\n')
    slow = client(srv, rcvbuf=65536, name="laggard")
    assert slow.roundtrip(b"SUB flood 1\r\n") == []
    p = client(srv)
    p.send(pub("flood", b"x" * 10000) * 1500)  # 15 MB, well under max_pending: the socket stalls
    p.sync(timeout=60)
    closed = wait_for(lambda: get(port, "connz?state=closed")["connections"], "the slow close")
    assert [(c["name"], c["reason"]) for c in closed] == [("laggard", "Slow Consumer (Write Deadline)")]
    assert get(port, "varz")["slow_consumers"] == 1
    assert (f' - cid:{closed[0]["cid"]} - "laggard" - Slow Consumer Detected: WriteDeadline of '
            f'500ms exceeded with ') in srv.log()
    slow.close()


def test_subsz_counts_and_test_subject(monitored):
    srv, port = monitored()
    base = get(port, "subsz")["num_subscriptions"]
    a = client(srv)
    a.roundtrip(b"SUB foo.bar 1\r\nSUB foo.* 2\r\nSUB > 3\r\nSUB *.bar 4\r\nSUB baz q 5\r\n"
                b"UNSUB 3 10\r\n")
    s = get(port, "subsz")
    # `>` and `*.bar` live in every shard of actor-nats: each still counts once
    assert s["num_subscriptions"] - base == 5
    assert "subscriptions_list" not in s and s["total"] == 0
    assert get(port, "varz")["subscriptions"] - base == 5
    # the reference's own $G subscriptions (imports of $SYS services) are not ours
    mine = lambda d: [x for x in d.get("subscriptions_list", [])  # noqa: E731
                      if x["account"] == "$G" and not x["subject"].startswith("$SYS.")]
    listed = mine(get(port, "subsz?subs=1"))
    assert sorted(x["subject"] for x in listed) == ["*.bar", ">", "baz", "foo.*", "foo.bar"]
    by_subject = {x["subject"]: x for x in listed}
    assert by_subject["baz"]["qgroup"] == "q" and by_subject[">"]["max"] == 10
    assert "max" not in by_subject["foo.bar"] and "qgroup" not in by_subject["foo.bar"]
    matched = mine(get(port, "subsz?subs=1&test=foo.bar"))
    assert sorted(x["subject"] for x in matched) == ["*.bar", ">", "foo.*", "foo.bar"]
    assert sorted(x["subject"] for x in mine(get(port, "subsz?subs=1&test=baz"))) == [">", "baz"]
    page = get(port, "subsz?subs=1&test=foo.bar&limit=2")
    assert page["limit"] == 2 and len(page["subscriptions_list"]) == 2
    a.roundtrip(b"PUB foo.bar 2\r\nhi\r\n")
    counted = {x["subject"]: x["msgs"] for x in mine(get(port, "subsz?subs=1&test=foo.bar"))}
    assert counted == {">": 1, "*.bar": 1, "foo.*": 1, "foo.bar": 1}


# -- actor-nats only --------------------------------------------------------------------------------

def test_metrics_parse_and_carry_the_counters(start_server):
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    srv = start_server("actor", args=["-m", str(port)])
    internal = get(port, "varz")["subscriptions"]  # the server's own ($SYS requests, imports)
    sub = client(srv)
    sub.roundtrip(b"SUB m 1\r\n")
    p = client(srv)
    p.roundtrip(pub("m", b"y" * 50) * 7)
    assert len(sub.sync()) == 7
    status, headers, body = http(port, "metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    sid = (("server_id", get(port, "varz")["server_id"]),)
    assert samples[("nats_varz_in_msgs_total", sid)] == 7
    assert samples[("nats_varz_out_msgs_total", sid)] == 7
    assert samples[("nats_varz_in_bytes_total", sid)] == 350
    assert samples[("nats_varz_out_bytes_total", sid)] == 350
    assert samples[("nats_varz_connections", sid)] == 2
    assert samples[("nats_varz_subscriptions", sid)] == internal + 1
    assert samples[("nats_varz_total_connections_total", sid)] == 2
    assert samples[("actor_nats_actors", (("kind", "shard"),))] == 4
    assert samples[("actor_nats_actors", (("kind", "client"),))] == 2
    assert ("actor_nats_mailbox_depth", (("kind", "shard"),)) in samples
    assert ("actor_nats_actor_restarts_total", (("kind", "shard"),)) in samples
    assert samples[("actor_nats_slow_consumers_total", (("kind", "clients"),))] == 0
