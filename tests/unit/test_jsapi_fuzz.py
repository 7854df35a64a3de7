"""Hypothesis fuzzing of the JetStream API's pure functions (protocol/jsapi.py).

Every function that takes something a client wrote (a request body, a decoded request or
config, an API subject, a pull request, an ack payload or ack subject, a DIRECT.GET body, a
header block, a time or duration text) is fed arbitrary input and must either return normally
or raise the error its caller turns into an answer: `ApiError` for API requests,
`PullRequestError` for pull requests, `ValueError` for DIRECT.GET bodies, times and durations.
Anything else would crash the actor that called it (the API actor, a Stream or a Consumer).

Inputs: arbitrary JSON-like values (nested, huge and negative numbers, floats, unicode, None),
bodies built from the request specs with the right or a wrong type for every known key, the
same bodies mangled (truncated, deeply nested, not JSON at all), and raw bytes. What comes back
is checked to be usable: decoded requests hold no None and only the Go types of their spec, and
configs and API responses encode as JSON.
"""

from __future__ import annotations

import json
import re
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from actor_nats.actors.jetstream import REQUEST_SPECS
from actor_nats.protocol import jsapi
from actor_nats.protocol.jserrors import ApiError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=300, deadline=None)

INT64 = (-2**63, 2**63 - 1)

# -- strategies ---------------------------------------------------------------------------------

NAMES = st.sampled_from(["S", "ORDERS", "a.b", "*", ">", "a b", "", "a/b", "a\\b", "x" * 300, "é",
                         "$JS", "S\t", "0", "-"])
SUBJECTS = st.sampled_from(["foo", "foo.*", "foo.>", ">", "*", "", ".", "foo..bar", "a b", "$JS.API.>",
                            "$SYS.>", "$JS.EVENT.x", "foo.bar.baz", "\u00e9.x", "S", "rp.x", "a.*.b"])
NUMBERS = st.one_of(
    st.integers(min_value=-10, max_value=10),
    st.sampled_from([0, -1, -2, 1, 2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, 2**63, -2**63, -2**63 - 1,
                     2**64 - 1, 2**64, 10**30, -10**30, 100_000_000, 999_999, 1_000_000_000,
                     120_000_000_000]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
TEXT = st.one_of(st.text(max_size=12), SUBJECTS, NAMES,
                 st.sampled_from(["1s", "-1", "2020-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                                  "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z", "limits", "explicit",
                                  "pinned_client", "overflow", "last_per_subject", "by_start_time",
                                  "by_start_sequence", "memory", "s2", "async", "new", "50%", "-5%",
                                  "9" * 5000, "\x00", "\ud800", "\udfff", "{{wildcard(1)}}", "$1"]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(
                                   sorted(jsapi.STREAM_FIELDS) + sorted(jsapi.CONSUMER_FIELDS))),
                                   children, max_size=4)),
    max_leaves=12)


def typed(spec, depth=0):
    """A value for a Go type description of jsapi (mostly of that type, sometimes not)."""
    if isinstance(spec, dict):
        right = st.fixed_dictionaries({}, optional={k: typed(v, depth + 1) for k, v in spec.items()})
    elif isinstance(spec, tuple) and spec[0] == "enum":
        right = st.one_of(TEXT, st.sampled_from(["limits", "interest", "workqueue", "old", "new", "file",
                                                   "memory", "none", "s2", "all", "last", "explicit",
                                                   "instant", "original", "create", "update", "pinned_client",
                                                   "default", "async", "by_start_sequence"]))
    elif isinstance(spec, tuple) and spec[0] == "[]":
        right = st.lists(st.one_of(typed(spec[1], depth + 1), st.none()), max_size=3)
    elif isinstance(spec, tuple) and spec[0] == "map":
        right = st.dictionaries(st.text(max_size=5), st.one_of(typed(spec[1], depth + 1), st.none()),
                                max_size=3)
    elif spec == "string":
        right = TEXT
    elif spec == "bool":
        right = st.booleans()
    elif spec == "*time.Time":
        right = st.one_of(TEXT, st.datetimes().map(lambda d: d.isoformat() + "Z"))
    else:  # the integer types
        right = NUMBERS
    if depth > 2:
        return st.one_of(right, st.none())
    return st.one_of(right, right, right, SCALARS, JSON_VALUES)


def body_for(spec) -> st.SearchStrategy[bytes]:
    """A request body for `spec`: well typed or not, then maybe mangled."""
    doc = st.one_of(typed(spec), JSON_VALUES).map(lambda v: json.dumps(v).encode())
    return st.one_of(doc, doc, doc.flatmap(mangled), st.binary(max_size=40), SPECIAL_BODIES)


def mangled(body: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.integers(0, len(body)).map(lambda n: body[:n]),                                   # truncated
        st.integers(0, len(body)).map(lambda n: body[:n] + b"\xff" + body[n:]),              # bad UTF-8
        st.just(body + body),                                                                # two values
        st.just(re.sub(rb"[0-9]+", lambda m: m.group(0) * 5000, body, count=1)),            # 5000 digits
        st.just(body + b" x"),
        st.integers(1, 3000).map(lambda n: b"[" * n + body + b"]" * n),                      # deep
        st.integers(1, 3000).map(lambda n: b'{"name":' + b"[" * n + body + b"]" * n + b"}"),
    )


SPECIAL_BODIES = st.sampled_from([
    b"", b" ", b"\r\n", b"{}", b"[]", b"null", b"1", b"-1", b'"x"', b"true", b"{", b"}", b'{"', b"nul",
    b"[" * 20000, b"[" * 10001 + b"]" * 10001, b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"name":"S","description":null}', b'{"name":"S","subjects":[null]}', b'{"batch":null}',
    b'{"metadata":{"a":null}}', b'{"max_msgs":' + b"9" * 5000 + b"}", b'{"config":null}',
    b'{"config":{"backoff":[null]}}', b'{"expires":null,"idle_heartbeat":5}', b"\xef\xbb\xbf{}",
])

STREAM_BODIES = body_for(jsapi.STREAM_REQUEST)
CONSUMER_BODIES = body_for(jsapi.CONSUMER_REQUEST)

# -- what a decoded request may hold ------------------------------------------------------------


def check_typed(value, spec, path="") -> None:
    """A decoded value holds only what its spec's Go type can hold (never None)."""
    assert value is not None, path
    if isinstance(spec, dict):
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert k in spec, f"{path}.{k} not in the spec"
            check_typed(v, spec[k], f"{path}.{k}")
    elif isinstance(spec, tuple) and spec[0] == "[]":
        assert type(value) is list, path
        for i, v in enumerate(value):
            if isinstance(spec[1], dict) and v is None:
                continue  # a nil pointer element ([]*StreamSource)
            check_typed(v, spec[1], f"{path}[{i}]")
    elif isinstance(spec, tuple) and spec[0] == "map":
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert type(k) is str
            check_typed(v, spec[1], f"{path}[{k}]")
    elif isinstance(spec, tuple):  # an enum: its Go value
        assert type(value) is str, path
    elif spec in ("string", "*time.Time"):
        assert type(value) is str, path
    elif spec == "bool":
        assert type(value) is bool, path
    else:
        lo, hi = jsapi._INT_RANGES[spec]
        assert type(value) is int and lo <= value <= hi, path


def api_error_or(fn, *args, **kw):
    """fn's result, or None when it raised an ApiError (anything else propagates)."""
    try:
        return fn(*args, **kw)
    except ApiError as e:
        assert type(e.code) is int and type(e.err_code) is int and type(e.description) is str
        jsapi.go_json(jsapi.api_response("STREAM.CREATE", error=e))
        return None


# -- request decoding ---------------------------------------------------------------------------


@FUZZ
@given(st.one_of(STREAM_BODIES, CONSUMER_BODIES, st.binary(max_size=64)))
def test_decode_json_values_only_raises_api_errors(body):
    api_error_or(jsapi.decode_json_values, body)


@FUZZ
@given(st.one_of(STREAM_BODIES, st.binary(max_size=64)))
def test_loads_only_raises_value_errors(body):
    try:
        jsapi.loads(body)
    except ValueError:
        pass


@FUZZ
@given(STREAM_BODIES, st.booleans())
def test_decode_stream_request(body, strict):
    req = api_error_or(jsapi.decode_stream_request, body, strict=strict)
    if req is not None:
        check_typed(req, jsapi.STREAM_REQUEST)


@FUZZ
@given(CONSUMER_BODIES, st.booleans())
def test_decode_consumer_request(body, strict):
    req = api_error_or(jsapi.decode_consumer_request, body, strict=strict)
    if req is not None:
        check_typed(req, jsapi.CONSUMER_REQUEST)


SPECS = sorted(REQUEST_SPECS.values(), key=lambda rs: rs[0]) + [
    ("JSApiConsumerGetNextRequest", jsapi.PULL_REQUEST),
    ("JSApiConsumerPauseRequest", {"pause_until": "*time.Time"}),
    ("JSApiConsumerUnpinRequest", {"group": "string"}),
    ("JSApiStreamSnapshotRequest", {"deliver_subject": "string", "no_consumers": "bool",
                                    "chunk_size": "int", "window_size": "int", "jsck": "bool"}),
    ("JSApiStreamRestoreRequest", jsapi.RESTORE_REQUEST),
]


@pytest.mark.parametrize("root,spec", SPECS, ids=[s[0] for s in SPECS])
def test_decode_every_request_spec(root, spec):
    @settings(max_examples=60, deadline=None)
    @given(body_for(spec), st.booleans())
    def run(body, strict):
        req = api_error_or(jsapi.decode_request, body, spec, root, strict=strict)
        if req is not None:
            check_typed(req, spec)
    run()


# -- stream configs -----------------------------------------------------------------------------

ORIGIN = jsapi.normalize_stream_config({"name": "O", "subjects": ["o.>"], "allow_direct": True})
OTHERS = {"O": ORIGIN, "C": {"name": "C", "sources": [{"name": "S"}], "subjects": ["c"]}}


@FUZZ
@given(STREAM_BODIES, NAMES, st.booleans(), st.sampled_from([0, 10**9, 60 * 10**9]), st.booleans(),
       st.sampled_from([0, 1024]))
def test_stream_create_pipeline(body, subject_name, pedantic, max_dup, bytes_required, max_stream_bytes):
    req = api_error_or(jsapi.decode_stream_request, body)
    if req is None:
        return
    api_error_or(jsapi.check_stream_create_request, subject_name, req)
    cfg = api_error_or(jsapi.normalize_stream_config, req, pedantic=pedantic, streams=OTHERS,
                       max_duplicate_window=max_dup, max_bytes_required=bytes_required,
                       max_stream_bytes=max_stream_bytes)
    if cfg is not None:
        jsapi.go_json(jsapi.with_dynamic_metadata(cfg))
        assert jsapi.stream_configs_equal(cfg, cfg)


OLD_STREAMS = [ORIGIN,
               jsapi.normalize_stream_config({"name": "S", "subjects": ["s.>"], "sealed": False,
                                              "deny_delete": True, "allow_msg_ttl": True, "max_age": 10**10}),
               jsapi.normalize_stream_config({"name": "S", "retention": "workqueue", "storage": "memory"})]


@FUZZ
@given(STREAM_BODIES, st.sampled_from(OLD_STREAMS), st.booleans())
def test_stream_update_check(body, old, pedantic):
    req = api_error_or(jsapi.decode_stream_request, body)
    if req is None:
        return
    cfg = api_error_or(jsapi.stream_config_update_check, old, req, pedantic=pedantic, streams=OTHERS)
    if cfg is not None:
        jsapi.go_json(jsapi.with_dynamic_metadata(cfg))


# -- consumer configs ---------------------------------------------------------------------------

CREATE_SUBJECTS = st.one_of(
    st.sampled_from(["$JS.API.CONSUMER.CREATE.S", "$JS.API.CONSUMER.CREATE.S.C",
                     "$JS.API.CONSUMER.CREATE.S.C.foo", "$JS.API.CONSUMER.CREATE.S.C.foo.>",
                     "$JS.API.CONSUMER.DURABLE.CREATE.S.C", "$JS.API.CONSUMER.DURABLE.CREATE.S",
                     "$JS.API.CONSUMER.DURABLE.CREATE.S.C.x", "$JS.D.API.CONSUMER.CREATE.S.C",
                     "$JS.API.CONSUMER.CREATE.S.a/b", "$JS.API.CONSUMER.CREATE..",
                     "$JS.API.CONSUMER.CREATE.S.", "$JS.API.CONSUMER.CREATE.S.C.*"]),
    st.lists(st.sampled_from(["S", "C", "*", ">", "", "foo", "a\\b"]), min_size=1, max_size=4).map(
        lambda t: "$JS.API.CONSUMER.CREATE." + ".".join(t)))
STREAM_CONFIGS = st.sampled_from([
    ORIGIN,
    jsapi.normalize_stream_config({"name": "S", "subjects": ["foo.>"], "retention": "workqueue"}),
    jsapi.normalize_stream_config({"name": "S", "subjects": ["foo.>", "bar"], "retention": "interest",
                                   "consumer_limits": {"max_ack_pending": 10, "inactive_threshold": 10**9}}),
    jsapi.normalize_stream_config({"name": "S", "placement": {"cluster": "c"}}),
])


@FUZZ
@given(CREATE_SUBJECTS, CONSUMER_BODIES, STREAM_CONFIGS, st.booleans(), st.sampled_from([0, 5]),
       st.sampled_from([0, 7]), st.booleans())
@example("$JS.API.CONSUMER.CREATE.S.C",
         b'{"stream_name":"S","config":{"sample_freq":"' + b"9" * 5000 + b'"}}', ORIGIN, False, 0, 0, True)
@example("$JS.API.CONSUMER.CREATE.S.C", b'{"stream_name":"S","config":{"backoff":[null]}}',
         ORIGIN, False, 0, 0, True)
@example("$JS.API.CONSUMER.DURABLE.CREATE.S." + "é" * 200,
         ('{"stream_name":"S","config":{"durable_name":"' + "é" * 200 + '"}}').encode(),
         ORIGIN, False, 0, 0, False)
def test_consumer_create_pipeline(subject, body, scfg, pedantic, max_ack, max_batch, with_others):
    cc = api_error_or(jsapi.parse_consumer_create, subject, body)
    if cc is None:
        return
    check_typed(cc.config, jsapi.CONSUMER_FIELDS)
    cfg = api_error_or(jsapi.normalize_consumer_config, scfg, cc.config, pedantic=pedantic or cc.pedantic,
                       max_ack_pending_limit=max_ack, account_max_ack_pending=max_ack,
                       max_request_batch=max_batch)
    if cfg is None:
        return
    jsapi.go_json(jsapi.with_dynamic_metadata(cfg))
    api_error_or(jsapi.check_workqueue_consumer, cfg, [["foo.a"], []] if with_others else None)
    api_error_or(jsapi.check_consumer_storable, cfg)
    try:
        jsapi.check_consumer_name(cfg, cc.name or "generated")
    except ApiError:
        pass
    else:  # a durable name the checks let through is one a file system takes (255 bytes)
        assert len(cfg.get("durable_name", "").encode()) <= 255
    old = jsapi.normalize_consumer_config(scfg, {"durable_name": "C", "ack_policy": "explicit"})
    err = jsapi.consumer_update_check(old, cfg)
    assert err is None or isinstance(err, ApiError)
    assert jsapi.consumer_update_check(cfg, cfg) is None


# -- API subjects -------------------------------------------------------------------------------

SUBJECT_TOKENS = st.sampled_from(["$JS", "API", "STREAM", "CONSUMER", "CREATE", "DURABLE", "INFO", "MSG",
                                  "GET", "NEXT", "DIRECT", "ACCOUNT", "PURGE", "S", "C", "*", ">", "", "D",
                                  "x y"])


@QUICK
@given(st.one_of(st.text(max_size=40), st.lists(SUBJECT_TOKENS, max_size=9).map(".".join),
                 st.lists(SUBJECT_TOKENS, max_size=7).map(lambda t: "$JS.API." + ".".join(t))))
def test_parse_api_subject(subject):
    api = jsapi.parse_api_subject(subject)
    assert api is None or isinstance(api, jsapi.ApiSubject)
    assert isinstance(jsapi.api_tokens(subject), list)


# -- pull requests and acks ---------------------------------------------------------------------

PULL_BODIES = st.one_of(body_for(jsapi.PULL_REQUEST), st.integers().map(lambda n: str(n).encode()),
                        st.sampled_from([b"5", b" 5 ", b"+5", b"-5", b"0", b"9" * 5000, b"\xd9\xa1\xd9\xa2",
                                         "\u0661\u0662".encode(), b"1e3", b"99999999999999999999",
                                         b'{"idle_heartbeat":5000000000000000000}', b"{}{}",
                                         b'{"batch":1} x']))
CONSUMER_LIMITS = st.fixed_dictionaries({}, optional={"max_batch": st.integers(0, 10),
                                                      "max_expires": st.integers(0, 10**10),
                                                      "max_bytes": st.integers(0, 100)})


@QUICK
@given(PULL_BODIES, CONSUMER_LIMITS)
def test_pull_requests(body, limits):
    try:
        pr = jsapi.parse_pull_request(body)
    except jsapi.PullRequestError as e:
        assert e.status in (400, 409) and e.header().startswith(b"NATS/1.0 ")
        return
    for field in ("batch", "expires", "max_bytes", "idle_heartbeat", "min_pending", "min_ack_pending",
                  "priority"):
        v = getattr(pr, field)
        assert type(v) is int and INT64[0] <= v <= INT64[1], (field, v)
    assert type(pr.no_wait) is bool and type(pr.group) is str and type(pr.id) is str
    try:
        jsapi.check_pull_request(pr, limits)
    except jsapi.PullRequestError as e:
        assert e.status == 409


ACK_PAYLOADS = st.one_of(
    st.binary(max_size=30),
    st.tuples(st.sampled_from([b"-NAK", b"-NAK ", b"+NXT", b"+NXT ", b"+TERM", b"+TERM ", b"+WPI", b"+ACK"]),
              st.one_of(PULL_BODIES, st.binary(max_size=20), st.sampled_from([
                  b"1s", b"-1s", b"9" * 5000 + b"s", b'{"delay":' + b"9" * 5000 + b"}", b"[" * 5000,
                  b'{"delay":' + b"[" * 3000 + b"]" * 3000 + b"}", b'{"delay":null}', b"\xff",
                  b'{"delay":"\\ud800"}']))).map(b"".join))


@QUICK
@given(ACK_PAYLOADS)
def test_parse_ack(payload):
    ack = jsapi.parse_ack(payload)
    assert ack.kind in ("ack", "nak", "progress", "next", "term", "unknown")
    assert ack.delay is None or (type(ack.delay) is int)
    if ack.kind == "next":
        try:
            jsapi.parse_pull_request(ack.next_request)
        except jsapi.PullRequestError:
            pass


ACK_TOKENS = st.one_of(st.sampled_from(["S", "C", "1", "0", "-1", "99999999999999999999999", "\u0661", "",
                                        "_", "*"]),
                       st.integers(min_value=-10, max_value=2**70).map(str))


@QUICK
@given(st.one_of(st.text(max_size=40),
                 st.lists(ACK_TOKENS, min_size=7, max_size=12).map(lambda t: "$JS.ACK." + ".".join(t))))
def test_parse_ack_reply(subject):
    r = jsapi.parse_ack_reply(subject)
    if r is not None:
        assert all(type(v) is int for v in (r.delivered, r.stream_seq, r.consumer_seq, r.timestamp,
                                            r.pending))


# -- DIRECT.GET, headers ------------------------------------------------------------------------

@FUZZ
@given(body_for(jsapi.DIRECT_GET_REQUEST))
def test_parse_direct_get_request(body):
    try:
        req = jsapi.parse_direct_get_request(body)
    except ValueError:
        return
    assert jsapi.direct_get_conflict(req) in (True, False)
    for k in ("seq", "batch", "max_bytes", "up_to_seq"):
        assert type(req[k]) is int
    for k in ("last_by_subj", "next_by_subj"):
        req[k].encode()  # a subject the stream can match (no lone surrogate)


@QUICK
@given(st.one_of(st.binary(max_size=60), st.lists(st.sampled_from(
    [b"NATS/1.0", b"Nats-Required-Api-Level: 1", b"Nats-Required-Api-Level: x", b"Nats-Required-Api-Level:",
     b"Nats-Required-Api-Level: " + b"9" * 5000, b"Nats-Required-Api-Level: \xd9\xa1", b"a: b", b""]),
    max_size=4).map(b"\r\n".join)))
def test_required_api_level(hdr):
    assert jsapi.required_api_level_refused(hdr) in (True, False)


# -- times and durations ------------------------------------------------------------------------

TIMES = st.one_of(TEXT, st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{1,2}:[0-9]{2}:[0-9]{2}"
                                      r"([.,][0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})\Z"))


@QUICK
@given(TIMES)
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:59:59-01:00")
@example("0000-01-01T00:00:00Z")
def test_times(text):
    try:
        ns, off = jsapi.parse_time(text)
    except ValueError:
        return
    assert type(ns) is int
    # a parsed time is shown again in any zone without failing (pause_until, opt_start_time),
    # and what is shown is read back as the same time (a stored config's times)
    assert jsapi.format_time(ns).endswith("Z")
    assert jsapi.parse_time_ns(jsapi.normalize_time(text)) == ns
    assert jsapi.go_marshals_time(jsapi.normalize_time(text)) in (True, False)


@QUICK
@given(st.one_of(st.text(alphabet=string.digits + ".-+hmsuµμn", max_size=14), st.text(max_size=8),
                 st.sampled_from(["9" * 5000 + "s", "1." + "9" * 5000 + "s", "-0", "+1h"])))
def test_parse_duration(text):
    try:
        ns = jsapi.parse_duration(text)
    except ValueError:
        return
    assert type(ns) is int


@QUICK
@given(st.integers(min_value=INT64[0], max_value=INT64[1]))
def test_format_time_and_duration_take_any_int64(ns):
    assert isinstance(jsapi.format_time(ns), str)
    assert isinstance(jsapi.format_duration(ns), str)
