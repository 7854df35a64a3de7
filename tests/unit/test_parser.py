"""The client-protocol parser (protocol/parser.py; NATS.md §1.1, §1.2, §1.5): every op and its
event tuple, chunking invariance, the pause after CONNECT, every error and the max_control_line
boundary. Pure: bytes in, events out, no socket. The fuzzing is in test_parser_fuzz.py.

Expectations marked [ref] were checked against nats-server v2.15.1 over a raw socket. Tests
named test_bug_* are parser bugs these tests found (now fixed): the expectation is the
reference's behaviour.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actor_nats.protocol import errors
from actor_nats.protocol.parser import (
    CONNECT,
    ERROR,
    HPUB,
    INFO,
    OK,
    PING,
    PONG,
    PUB,
    SUB,
    UNSUB,
    ClientParser,
)

# -- helpers -----------------------------------------------------------------------------------

SILENT = (ERROR, None, True)  # the connection closes without an -ERR
PARSE_ERR = (ERROR, errors.UNKNOWN_PROTOCOL, True)
MCL_ERR = (ERROR, errors.MAX_CONTROL_LINE, True)
MAX_PAYLOAD_ERR = (ERROR, errors.MAX_PAYLOAD, True)


def norm(events: list) -> list:
    """ERROR events as (ERROR, text, close), so event lists compare by value."""
    return [(ERROR, ev[1].text, ev[1].close) if ev[0] == ERROR else ev for ev in events]


def apply_connect(parser: ClientParser, raw: bytes) -> None:
    """What the client actor does with a CONNECT that matters to the parser: headers:true."""
    try:
        opts = json.loads(raw)
    except ValueError:
        return
    if isinstance(opts, dict):
        parser.headers_ok = opts.get("headers") is True


def run(chunks, parser: ClientParser | None = None, **kw) -> list:
    """Feed `chunks` the way the client actor does: apply each CONNECT, resume a paused parser
    with feed(b""), stop at the first ERROR. Returns the normalised events."""
    p = parser if parser is not None else ClientParser(**kw)
    out: list = []
    for chunk in chunks:
        events = p.feed(chunk)
        while True:
            for ev in events:
                out.append(ev)
                if ev[0] == CONNECT:
                    apply_connect(p, ev[1])
                elif ev[0] == ERROR:
                    return norm(out)
            if not p.paused:
                break
            events = p.feed(b"")
    return norm(out)


def parse(data: bytes, **kw) -> list:
    return run([data], **kw)


def split(data: bytes, cuts) -> list[bytes]:
    """`data` cut at the given offsets (duplicates and the ends ignored: no empty chunks)."""
    points = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:])]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def hpub_parser(**kw) -> ClientParser:
    p = ClientParser(**kw)
    p.headers_ok = True
    return p


HDR = b"NATS/1.0\r\nA: b\r\n\r\n"  # 18 bytes


# -- every op and its event tuple --------------------------------------------------------------

OPS = [
    (b"PUB foo 5\r\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"PUB foo bar 5\r\nhello\r\n", (PUB, b"foo", b"bar", b"5", b"hello")),
    (b"SUB foo 1\r\n", (SUB, b"foo", None, b"1")),
    (b"SUB foo q 1\r\n", (SUB, b"foo", b"q", b"1")),
    (b"UNSUB 1\r\n", (UNSUB, b"1", None)),
    (b"UNSUB 1 5\r\n", (UNSUB, b"1", 5)),
    (b"UNSUB 1 0\r\n", (UNSUB, b"1", 0)),
    (b"UNSUB 1 x\r\n", (UNSUB, b"1", -1)),  # an invalid max removes at once
    (b"UNSUB 1 -5\r\n", (UNSUB, b"1", -1)),
    (b"UNSUB 1 1234567890\r\n", (UNSUB, b"1", -1)),  # 10 digits
    (b"UNSUB 1 000000007\r\n", (UNSUB, b"1", 7)),
    (b"PING\r\n", (PING,)),
    (b"PONG\r\n", (PONG,)),
    (b"+OK\r\n", (OK,)),
    (b'CONNECT {"verbose":false,"pedantic":false}\r\n', (CONNECT, b'{"verbose":false,"pedantic":false}')),
    (b'CONNECT \t {"name": "a b"} \t\r\n', (CONNECT, b'{"name": "a b"}')),  # inner spaces kept
    (b"CONNECT\t{}\r\n", (CONNECT, b"{}")),
    (b'INFO {"server_id":"x"}\r\n', (INFO, b'{"server_id":"x"}')),
    (b"INFO\t{}\r\n", (INFO, b"{}")),
    # [ref] PING/PONG/+OK ignore whatever follows the verb up to the line end
    (b"PINGX\r\n", (PING,)),
    (b"PING\t\r\n", (PING,)),
    (b"PONG junk\r\n", (PONG,)),
    (b"+OKAY\r\n", (OK,)),
]

HPUB_OPS = [
    (b"HPUB foo 18 23\r\n" + HDR + b"hello\r\n", (HPUB, b"foo", None, 18, b"23", HDR + b"hello")),
    (b"HPUB foo bar 18 23\r\n" + HDR + b"hello\r\n", (HPUB, b"foo", b"bar", 18, b"23", HDR + b"hello")),
    (b"HPUB foo 18 18\r\n" + HDR + b"\r\n", (HPUB, b"foo", None, 18, b"18", HDR)),
    (b"HPUB foo 0 0\r\n\r\n", (HPUB, b"foo", None, 0, b"0", b"")),
    # the size token is kept as written, the header length is an int
    (b"HPUB foo 018 023\r\n" + HDR + b"hello\r\n", (HPUB, b"foo", None, 18, b"023", HDR + b"hello")),
]


@pytest.mark.parametrize("data, event", OPS, ids=[repr(d[:24]) for d, _ in OPS])
def test_op_event(data, event):
    assert parse(data) == [event]
    assert run(bytewise(data)) == [event]


@pytest.mark.parametrize("data, event", HPUB_OPS, ids=[repr(d[:24]) for d, _ in HPUB_OPS])
def test_hpub_event(data, event):
    assert run([data], parser=hpub_parser()) == [event]
    assert run(bytewise(data), parser=hpub_parser()) == [event]


def test_event_fields_are_bytes():
    (ev,) = parse(b"PUB foo bar 3\r\nabc\r\n")
    assert all(type(x) is bytes for x in ev[1:])
    (ev,) = run([b"HPUB foo 12 15\r\nNATS/1.0\r\n\r\nabc\r\n"], parser=hpub_parser())
    assert type(ev[3]) is int and type(ev[4]) is bytes and type(ev[5]) is bytes


@pytest.mark.parametrize("data, event", [
    (b"pub foo 5\r\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"Pub foo r 5\r\nhello\r\n", (PUB, b"foo", b"r", b"5", b"hello")),
    (b"sub foo 1\r\n", (SUB, b"foo", None, b"1")),
    (b"sUb foo q 1\r\n", (SUB, b"foo", b"q", b"1")),
    (b"unsub 1 2\r\n", (UNSUB, b"1", 2)),
    (b"UnSuB 1\r\n", (UNSUB, b"1", None)),
    (b"ping\r\n", (PING,)),
    (b"pOnG\r\n", (PONG,)),
    (b"+ok\r\n", (OK,)),
    (b"+oK\r\n", (OK,)),
    (b"connect {}\r\n", (CONNECT, b"{}")),
    (b"Info {}\r\n", (INFO, b"{}")),
])
def test_verbs_are_case_insensitive(data, event):
    assert parse(data) == [event]


def test_hpub_verb_is_case_insensitive():
    assert run([b"hPuB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"], parser=hpub_parser()) == [
        (HPUB, b"foo", None, 12, b"12", b"NATS/1.0\r\n\r\n")]


@pytest.mark.parametrize("data, event", [
    (b"PUB\tfoo\t5\r\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"PUB  foo   5\r\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"PUB foo \t bar\t\t5 \t\r\nhello\r\n", (PUB, b"foo", b"bar", b"5", b"hello")),
    (b"PUB \t foo 5\r\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"SUB\t\tfoo  q\t 1  \r\n", (SUB, b"foo", b"q", b"1")),
    (b"UNSUB\t 1 \t 3\t\r\n", (UNSUB, b"1", 3)),
])
def test_tabs_and_runs_of_spaces_separate_arguments(data, event):
    assert parse(data) == [event]


def test_tabs_in_hpub():
    assert run([b"HPUB\tfoo \t r\t12  12\r\nNATS/1.0\r\n\r\n\r\n"], parser=hpub_parser()) == [
        (HPUB, b"foo", b"r", 12, b"12", b"NATS/1.0\r\n\r\n")]


@pytest.mark.parametrize("data, event", [
    (b"PUB foo 5\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"pub foo 5\nhello\r\n", (PUB, b"foo", None, b"5", b"hello")),
    (b"SUB foo 1\n", (SUB, b"foo", None, b"1")),
    (b"UNSUB 1 2\n", (UNSUB, b"1", 2)),
    (b"PING\n", (PING,)),
    (b"PONG\n", (PONG,)),
    (b"+OK\n", (OK,)),
    (b"CONNECT {}\n", (CONNECT, b"{}")),
    (b"INFO {}\n", (INFO, b"{}")),
])
def test_bare_lf_ends_a_line(data, event):
    assert parse(data) == [event]
    assert run(bytewise(data)) == [event]


def test_bare_lf_ends_an_hpub_line():
    assert run([b"HPUB foo 12 12\nNATS/1.0\r\n\r\n\r\n"], parser=hpub_parser()) == [
        (HPUB, b"foo", None, 12, b"12", b"NATS/1.0\r\n\r\n")]


@pytest.mark.parametrize("token", [b"5", b"05", b"005", b"000000005"])
def test_size_token_kept_as_written(token):
    # [ref] the server echoes the token into MSG: `PUB a 005` is delivered as `MSG a 1 005`
    assert parse(b"PUB foo " + token + b"\r\nhello\r\n") == [(PUB, b"foo", None, token, b"hello")]
    assert parse(b"pub foo " + token + b"\r\nhello\r\n") == [(PUB, b"foo", None, token, b"hello")]


@pytest.mark.parametrize("data, event", [
    (b"PUB foo 0\r\n\r\n", (PUB, b"foo", None, b"0", b"")),
    (b"PUB foo r 0\r\n\r\n", (PUB, b"foo", b"r", b"0", b"")),
    (b"pub foo 000\r\n\r\n", (PUB, b"foo", None, b"000", b"")),
])
def test_zero_length_payload(data, event):
    assert parse(data) == [event]
    assert run(bytewise(data)) == [event]


CRLF_PAYLOADS = [b"\r\n", b"\r\n\r\n", b"a\r\nb", b"PING\r\n", b"\r", b"\n", b"PUB x 1\r\n"]


@pytest.mark.parametrize("payload", CRLF_PAYLOADS)
def test_payload_may_contain_crlf(payload):
    size = str(len(payload)).encode()
    data = b"PUB foo " + size + b"\r\n" + payload + b"\r\nPING\r\n"
    expected = [(PUB, b"foo", None, size, payload), (PING,)]
    assert parse(data) == expected
    assert run(bytewise(data)) == expected


def test_many_ops_in_one_read_come_out_in_order():
    data = (b"PING\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nsub bar q 2\r\npub bar r 0\r\n\r\n"
            b"UNSUB 1\r\nPONG\r\n+OK\r\n")
    assert parse(data) == [
        (PING,), (SUB, b"foo", None, b"1"), (PUB, b"foo", None, b"2", b"hi"), (SUB, b"bar", b"q", b"2"),
        (PUB, b"bar", b"r", b"0", b""), (UNSUB, b"1", None), (PONG,), (OK,)]


def test_large_payload_split_across_reads():
    payload = bytes(range(256)) * 40
    data = b"PUB big 10240\r\n" + payload + b"\r\n"
    p = ClientParser()
    assert p.feed(data[:100]) == []
    assert p.feed(data[100:5000]) == []
    assert p.feed(data[5000:-1]) == []
    assert norm(p.feed(data[-1:])) == [(PUB, b"big", None, b"10240", payload)]


# -- chunking invariance ------------------------------------------------------------------------

BIG = bytes(range(256)) * 12
VALID = [
    b"PING\r\nPONG\r\n+OK\r\n",
    b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB foo 1\r\nPUB foo 5\r\nhello\r\nPING\r\n',
    b"SUB foo q 1\r\nSUB foo.* 2\r\nPUB foo.bar reply.x 11\r\nhello world\r\nUNSUB 1\r\nUNSUB 2 10\r\n",
    b"PUB a 0\r\n\r\nPUB b r 0\r\n\r\npub c 000\r\n\r\n",
    b"PUB crlf 10\r\n\r\n\r\nPING\r\n\r\nPING\r\n",
    b"pub\tlow\t\t3\nabc\r\nsUb low  1\nunsub 1 5\nping\nPONG\n",
    b'CONNECT {"headers":true}\r\nHPUB h 18 23\r\n' + HDR + b"hello\r\nhpub h r 12 12\nNATS/1.0\r\n\r\n\r\n",
    b'CONNECT {}\r\nCONNECT {"headers":true}\r\nHPUB h 12 12\r\nNATS/1.0\r\n\r\n\r\nCONNECT {}\r\nPING\r\n',
    b"PUB big " + str(len(BIG)).encode() + b"\r\n" + BIG + b"\r\nPING\r\n",
    b"PUB " + b"s" * 2000 + b" " + b"r" * 2000 + b" 3\r\nabc\r\nSUB " + b"t" * 4000 + b" 1\r\n",
    b"PINGX\r\nPONG junk\r\n+OKAY\r\nINFO {}\r\nPUB x 005\r\nhello\r\n",
    b"UNSUB 1 x\r\nUNSUB 2 -1\r\nSUB a\t\tq\t9\r\n",
    # runs of plain PUBs (the bulk path when whole), broken by lines only the exact path takes
    b"".join(b"PUB s.%d r 3\r\nabc\r\n" % i for i in range(50)) + b"PING\r\n",
    b"PUB a 1\r\nx\r\nPUB\tb 1\r\ny\r\nPUB c 2\r\n\r\n\r\nPUB d 1 \r\nz\r\nPUB e 001\r\nw\r\n"
    b"PUB f  1\r\nv\r\nPUB g 1\nu\r\nPUB h\x0bi 1\r\nt\r\nPUB 00 1\r\ns\r\nPUB j 0\r\n\r\n",
]
# Streams that end in an error: the events before it, then the error, whatever the chunking.
FAILING = [
    b"PING\r\nSUB foo 1\r\nFOO bar\r\nPING\r\n",
    b"PUB a 5\r\nhelloX\r\nPING\r\n",
    b"PUB a 5\r\nhello\nPING\r\n",
    b"PUB a 5\r\nhello\rXPING\r\n",
    b"PING\r\nPUB a 5\r\nhi\r\nPING\r\n",
    b"PING\r\n-ERR 'bye'\r\nPING\r\n",
    b"SUB a 1\r\nMSG a 1 2\r\nhi\r\n",
    b"PING\r\n\r\nPING\r\n",
    b"PING\r\n PING\r\n",
    b"PING\r\nPUB a\r\n",
    b"PING\r\nHPUB a 12 12\r\nNATS/1.0\r\n\r\n\r\n",
    b"PING\r\nPUB a 2000000\r\n" + b"x" * 100,
    b"PING\r\nSUB " + b"a" * 5000 + b" 1\r\nPING\r\n",
    b"PING\r\nPUB a " + b"b" * 5000 + b" 1\r\nx\r\n",
    b"PING\r\nPUB a 1234567890\r\n",
    b'CONNECT {"headers":true}\r\nHPUB a 13 12\r\n',
]
CORPUS = VALID + FAILING


def ids(streams):
    return [repr(s[:30]) for s in streams]


@pytest.mark.parametrize("data", VALID, ids=ids(VALID))
def test_valid_corpus_has_no_error(data):
    events = parse(data)
    assert events and all(ev[0] != ERROR for ev in events)


@pytest.mark.parametrize("data", FAILING, ids=ids(FAILING))
def test_failing_corpus_ends_in_one_error(data):
    events = parse(data)
    assert [ev[0] for ev in events].count(ERROR) == 1 and events[-1][0] == ERROR


@pytest.mark.parametrize("data", CORPUS, ids=ids(CORPUS))
def test_byte_by_byte_equals_whole(data):
    assert run(bytewise(data)) == parse(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_chunkings_equal_whole(data):
    stream = data.draw(st.sampled_from(CORPUS), label="stream")
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    assert run(split(stream, cuts)) == parse(stream)


def test_message_counters():
    p = ClientParser()
    p.headers_ok = True
    p.feed(b"PUB a 3\r\nabc\r\nPUB b 2\r\nhi\r\npub c 0\r\n\r\n"
           b"HPUB d 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB e 4\r\nab")
    assert (p.in_msgs, p.in_bytes) == (4, 3 + 2 + 0 + 14)
    p.feed(b"cd\r\nSUB x 1\r\n")
    assert (p.in_msgs, p.in_bytes) == (5, 23)


# -- the pause after CONNECT, and HPUB -----------------------------------------------------------

def test_parsing_pauses_after_connect():
    p = ClientParser()
    assert p.feed(b'CONNECT {"verbose":false}\r\nPING\r\nPONG\r\n') == [(CONNECT, b'{"verbose":false}')]
    assert p.paused
    assert p.feed(b"") == [(PING,), (PONG,)]
    assert not p.paused


def test_connect_at_the_end_of_the_input_does_not_pause():
    p = ClientParser()
    assert p.feed(b"PING\r\nCONNECT {}\r\n") == [(PING,), (CONNECT, b"{}")]
    assert not p.paused
    assert p.feed(b"PING\r\n") == [(PING,)]


def test_pause_with_an_incomplete_line_after_connect():
    p = ClientParser()
    assert p.feed(b"CONNECT {}\r\nPI") == [(CONNECT, b"{}")]
    assert p.paused
    assert p.feed(b"") == []
    assert not p.paused
    assert p.feed(b"NG\r\n") == [(PING,)]


def test_pause_before_a_pending_payload():
    p = ClientParser()
    assert p.feed(b"CONNECT {}\r\nPUB a 5\r\nhel") == [(CONNECT, b"{}")]
    assert p.paused
    assert p.feed(b"") == []
    assert norm(p.feed(b"lo\r\n")) == [(PUB, b"a", None, b"5", b"hello")]


def test_each_connect_pauses():
    p = ClientParser()
    assert p.feed(b"CONNECT {}\r\nCONNECT {}\r\nPING\r\n") == [(CONNECT, b"{}")]
    assert p.paused
    assert p.feed(b"") == [(CONNECT, b"{}")]
    assert p.paused
    assert p.feed(b"") == [(PING,)]
    assert not p.paused


def test_more_input_while_paused_keeps_the_order():
    p = ClientParser()
    assert p.feed(b"CONNECT {}\r\nPING\r\n") == [(CONNECT, b"{}")]
    assert p.feed(b"PONG\r\n") == [(PING,), (PONG,)]
    assert not p.paused


def test_hpub_is_a_silent_close_without_headers():
    p = ClientParser()
    assert not p.headers_ok
    assert norm(p.feed(b"PING\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n")) == [(PING,), SILENT]


def test_connect_with_headers_applied_during_the_pause_allows_hpub():
    p = ClientParser()
    data = b'CONNECT {"headers":true}\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n'
    assert p.feed(data) == [(CONNECT, b'{"headers":true}')]
    assert p.paused
    p.headers_ok = True
    assert p.feed(b"") == [(HPUB, b"foo", None, 12, b"12", b"NATS/1.0\r\n\r\n")]


def test_connect_without_headers_keeps_hpub_closed():
    p = ClientParser()
    assert run([b'CONNECT {"headers":false}\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n'], parser=p) == [
        (CONNECT, b'{"headers":false}'), SILENT]


# -- errors ----------------------------------------------------------------------------------------

ERRORS = [
    # unknown verbs, and ops a client may not send [ref]
    (b"FOO bar\r\n", PARSE_ERR),
    (b"PUBX foo 1\r\n", PARSE_ERR),
    (b"PUB\r\n", PARSE_ERR),
    (b"SUB\r\n", PARSE_ERR),
    (b"UNSUB\r\n", PARSE_ERR),
    (b"PIN\r\n", PARSE_ERR),
    (b"+O\r\n", PARSE_ERR),
    (b"+X\r\n", PARSE_ERR),
    (b"-X\r\n", PARSE_ERR),
    (b"MSG foo 1 2\r\nhi\r\n", PARSE_ERR),
    (b"HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n", PARSE_ERR),
    (b"RS+ foo\r\n", PARSE_ERR),
    (b"LS+ foo\r\n", PARSE_ERR),
    (b"A+ foo\r\n", PARSE_ERR),
    # leading whitespace, empty lines [ref]
    (b" PING\r\n", PARSE_ERR),
    (b"\tPING\r\n", PARSE_ERR),
    (b"\r\n", PARSE_ERR),
    (b"\n", PARSE_ERR),
    # the payload must be followed by exactly CRLF [ref]
    (b"PUB foo 2\r\nhiX\r\n", PARSE_ERR),
    (b"PUB foo 2\r\nhi\n", PARSE_ERR),
    (b"PUB foo 2\r\nhi\rX", PARSE_ERR),
    (b"PUB foo 2\r\nhi\r\r\n", PARSE_ERR),
    (b"pub foo 2\r\nhiX\r\n", PARSE_ERR),
    (b"PUB foo 0\r\nX\r\n", PARSE_ERR),
    # a payload shorter than declared eats the next line and then fails
    (b"PUB foo 5\r\nhi\r\nPING\r\n", PARSE_ERR),
    # -ERR from the client: the server closes without answering [ref]
    (b"-ERR 'oops'\r\n", SILENT),
    (b"-err\t'oops'\n", SILENT),
    # wrong argument counts: closed without an -ERR [ref]
    (b"PUB foo\r\n", SILENT),
    (b"PUB \r\n", SILENT),
    (b"PUB a b c 1\r\n", SILENT),
    (b"pub foo\r\n", SILENT),
    (b"pub a b c 1\r\n", SILENT),
    (b"SUB foo\r\n", SILENT),
    (b"SUB \r\n", SILENT),
    (b"SUB a b c d\r\n", SILENT),
    (b"UNSUB \r\n", SILENT),
    (b"UNSUB 1 2 3\r\n", SILENT),
    # bad sizes: closed without an -ERR [ref]
    (b"PUB foo -1\r\n", SILENT),
    (b"PUB foo x\r\n", SILENT),
    (b"PUB foo 1x\r\n", SILENT),
    (b"PUB foo +1\r\n", SILENT),
    (b"PUB foo 1234567890\r\n", SILENT),
    (b"PUB foo 0000000001\r\nx\r\n", SILENT),  # 10 digits, however small
    (b"pub foo -1\r\n", SILENT),
    (b"pub foo 0000000001\r\n", SILENT),
]


@pytest.mark.parametrize("data, error", ERRORS, ids=ids([d for d, _ in ERRORS]))
def test_error(data, error):
    assert parse(data) == [error]
    assert run(bytewise(data)) == [error]


HPUB_ERRORS = [
    (b"HPUB foo 12\r\n", SILENT),
    (b"HPUB a b c 1 2\r\n", SILENT),
    (b"HPUB foo -1 5\r\n", SILENT),
    (b"HPUB foo x 5\r\n", SILENT),
    (b"HPUB foo 1 x\r\n", SILENT),
    (b"HPUB foo 1 1234567890\r\n", SILENT),
    (b"HPUB foo 0000000001 5\r\n", SILENT),
    (b"HPUB foo 6 5\r\n", SILENT),  # header size > total size [ref]
    (b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\nX", PARSE_ERR),
    (b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\n", PARSE_ERR),
]


@pytest.mark.parametrize("data, error", HPUB_ERRORS, ids=ids([d for d, _ in HPUB_ERRORS]))
def test_hpub_error(data, error):
    assert run([data], parser=hpub_parser()) == [error]
    assert run(bytewise(data), parser=hpub_parser()) == [error]


@pytest.mark.parametrize("data", [
    b"F", b"X", b"MSG", b"R", b"A", b"L", b" ", b"\t", b"PUBX", b"PX", b"SUBX", b"CONNECTX", b"+X", b"-X",
    b"INFOX", b"HPUBX", b"UNSUBX",
])
def test_impossible_bytes_fail_before_the_line_ends(data):
    assert parse(data) == [PARSE_ERR]


@pytest.mark.parametrize("data", [
    b"P", b"PU", b"PUB", b"PUB ", b"pub\t", b"H", b"HPUB ", b"S", b"SUB ", b"U", b"UNSUB ", b"PI", b"PING",
    b"PONG", b"+", b"+O", b"+OK", b"-", b"-ERR", b"-ERR ", b"C", b"CONNECT", b"CONNECT ", b"I", b"INFO ",
])
def test_possible_prefixes_wait_for_more(data):
    p = ClientParser()
    assert p.feed(data) == []
    assert p._buf == data


def test_pub_over_max_payload():
    p = ClientParser(max_payload=16)
    # checked on the control line, before the payload arrives
    assert norm(p.feed(b"PUB foo 17\r\n")) == [MAX_PAYLOAD_ERR]
    assert parse(b"pub foo 17\r\n", max_payload=16) == [MAX_PAYLOAD_ERR]
    assert parse(b"PUB foo r 999999999\r\n", max_payload=16) == [MAX_PAYLOAD_ERR]
    assert parse(b"PUB foo 16\r\n" + b"x" * 16 + b"\r\n", max_payload=16) == [
        (PUB, b"foo", None, b"16", b"x" * 16)]
    assert parse(b"pub foo 16\r\n" + b"x" * 16 + b"\r\n", max_payload=16) == [
        (PUB, b"foo", None, b"16", b"x" * 16)]


def test_hpub_over_max_payload():
    assert norm(hpub_parser(max_payload=16).feed(b"HPUB foo 12 17\r\n")) == [MAX_PAYLOAD_ERR]
    assert run([b"HPUB foo 12 16\r\nNATS/1.0\r\n\r\nabcd\r\n"], parser=hpub_parser(max_payload=16)) == [
        (HPUB, b"foo", None, 12, b"16", b"NATS/1.0\r\n\r\nabcd")]


def test_max_payload_error_closes():
    (ev,) = ClientParser(max_payload=1).feed(b"PUB a 2\r\n")
    assert ev[0] == ERROR and ev[1].text == errors.MAX_PAYLOAD and ev[1].close


def test_events_before_an_error_are_returned_and_nothing_after():
    p = ClientParser()
    events = p.feed(b"PING\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nBAD\r\nPING\r\nSUB bar 2\r\n")
    assert norm(events) == [(PING,), (SUB, b"foo", None, b"1"), (PUB, b"foo", None, b"1", b"x"), PARSE_ERR]


def test_error_in_a_pending_payload_returns_earlier_events():
    p = ClientParser()
    assert p.feed(b"PUB a 3\r\nab") == []
    assert norm(p.feed(b"c\r\nPING\r\nPUB b 1\r\nxY\r\nPING\r\n")) == [
        (PUB, b"a", None, b"3", b"abc"), (PING,), PARSE_ERR]


def test_pending_payload_fails_as_soon_as_the_byte_after_it_is_wrong():
    p = ClientParser()
    assert p.feed(b"PUB a 3\r\nab") == []
    assert norm(p.feed(b"cX")) == [PARSE_ERR]


def test_parser_state_is_dropped_after_an_error():
    p = ClientParser()
    p.feed(b"PUB a 3\r\nab")
    assert norm(p.feed(b"cXYZ")) == [PARSE_ERR]
    assert p._buf == b"" and p._op is None and p._have == 0


# -- max_control_line -------------------------------------------------------------------------------

MCL = 32


def _args(n: int, head: bytes, tail: bytes) -> bytes:
    """An argument string of exactly n bytes: head + filler + tail."""
    return head + b"r" * (n - len(head) - len(tail)) + tail


# (verb and separator, args of exactly n bytes, what follows the line, the event for n == MCL)
MCL_LINES = [
    (b"PUB ", lambda n: _args(n, b"s ", b" 0"), b"\r\n", lambda a: (PUB, b"s", a[2:-2], b"0", b"")),
    (b"pub ", lambda n: _args(n, b"s ", b" 0"), b"\r\n", lambda a: (PUB, b"s", a[2:-2], b"0", b"")),
    (b"PUB\t", lambda n: _args(n, b"s ", b" 0"), b"\r\n", lambda a: (PUB, b"s", a[2:-2], b"0", b"")),
    (b"HPUB ", lambda n: _args(n, b"s ", b" 0 0"), b"\r\n", lambda a: (HPUB, b"s", a[2:-4], 0, b"0", b"")),
    (b"SUB ", lambda n: _args(n, b"s ", b" 1"), b"", lambda a: (SUB, b"s", a[2:-2], b"1")),
    (b"UNSUB ", lambda n: _args(n, b"", b" 5"), b"", lambda a: (UNSUB, a[:-2], 5)),
    (b"CONNECT ", lambda n: _args(n, b'{"name":"', b'"}'), b"", lambda a: (CONNECT, a)),
    (b"INFO ", lambda n: _args(n, b'{"name":"', b'"}'), b"", lambda a: (INFO, a)),
]
MCL_IDS = [v.decode().strip() or "x" for v, *_ in MCL_LINES]
MCL_IDS[2] = "PUB-tab"


@pytest.mark.parametrize("verb, args, after, event", MCL_LINES, ids=MCL_IDS)
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_control_line_of_exactly_max_passes(verb, args, after, event, eol):
    # [ref] the CR is not counted: args of exactly max_control_line bytes pass with CRLF too
    a = args(MCL)
    assert len(a) == MCL
    data = verb + a + eol + after
    expected = [event(a)]
    assert run([data], parser=hpub_parser(max_control_line=MCL)) == expected
    assert run(bytewise(data), parser=hpub_parser(max_control_line=MCL)) == expected


@pytest.mark.parametrize("verb, args, after, event", MCL_LINES, ids=MCL_IDS)
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_control_line_one_over_max_fails(verb, args, after, event, eol):
    a = args(MCL + 1)
    data = verb + a + eol + after
    assert run([data], parser=hpub_parser(max_control_line=MCL)) == [MCL_ERR]
    assert run(bytewise(data), parser=hpub_parser(max_control_line=MCL)) == [MCL_ERR]


@pytest.mark.parametrize("data", [
    b"PUB s " + b"r" * 28 + b" 0 \r\n\r\n",
    b"SUB s " + b"r" * 28 + b" 1\t\r\n",
])
def test_trailing_whitespace_counts(data):
    # [ref] args are measured from the first non-blank byte to the line end (CR excluded)
    assert parse(data, max_control_line=MCL) == [MCL_ERR]


LIMITED_VERBS = [b"PUB ", b"pub ", b"HPUB ", b"SUB ", b"UNSUB ", b"CONNECT ", b"INFO ", b"-ERR "]


@pytest.mark.parametrize("verb", LIMITED_VERBS)
def test_incomplete_control_line_over_max_fails_before_the_line_ends(verb):
    p = hpub_parser(max_control_line=MCL)
    assert p.feed(verb + b"a" * MCL) == []  # not over the limit yet: kept
    assert norm(p.feed(b"a" * 16)) == [MCL_ERR]


def test_incomplete_control_line_grown_slowly_fails():
    p = ClientParser(max_control_line=MCL)
    for _ in range(MCL + 16):
        events = p.feed(b"a" if p._buf else b"SUB ")
        if events:
            assert norm(events) == [MCL_ERR]
            break
        assert len(p._buf) <= MCL + 16
    else:
        pytest.fail("an endless SUB line was never refused")


def test_control_line_limit_is_checked_before_arguments_and_size():
    # [ref] overMaxControlLineLimit runs before processPub/processSub
    assert parse(b"pub " + b"a " * 20 + b"1\r\n", max_control_line=MCL) == [MCL_ERR]
    assert parse(b"SUB " + b"a " * 20 + b"1\r\n", max_control_line=MCL) == [MCL_ERR]
    assert parse(b"PUB " + b"a" * 40 + b" 99999\r\n", max_control_line=MCL, max_payload=16) == [MCL_ERR]


def test_control_line_error_returns_earlier_events():
    assert parse(b"PING\r\nSUB " + b"a" * 40 + b" 1\r\nPING\r\n", max_control_line=MCL) == [(PING,), MCL_ERR]


def test_default_max_control_line_is_4096():
    assert parse(b"SUB s " + b"q" * 4094 + b"\r\n") == [(SUB, b"s", None, b"q" * 4094)]
    assert parse(b"SUB s " + b"q" * 4095 + b"\r\n") == [MCL_ERR]


# -- parser bugs these tests found (fixed unless marked xfail) --------------------------------

def test_bug_fast_path_pub_checks_control_line_before_argument_count():
    # [ref] -ERR 'maximum control line exceeded'; the slow path (`pub`) gets it right
    assert parse(b"PUB " + b"a " * 20 + b"1\r\n", max_control_line=MCL) == [MCL_ERR]


@pytest.mark.parametrize("data, event", [
    (b"PUB" + b" " * 10 + b"s " + b"r" * 28 + b" 0\r\n\r\n", (PUB, b"s", b"r" * 28, b"0", b"")),
    (b"pub" + b"\t" * 10 + b"s " + b"r" * 28 + b" 0\r\n\r\n", (PUB, b"s", b"r" * 28, b"0", b"")),
    (b"SUB" + b" " * 5 + b"s " + b"q" * 28 + b" 1\r\n", (SUB, b"s", b"q" * 28, b"1")),
    (b"CONNECT" + b" " * 20 + b'{"name":"' + b"n" * 21 + b'"}\r\n',
     (CONNECT, b'{"name":"' + b"n" * 21 + b'"}')),
])
def test_bug_leading_blanks_do_not_count_toward_max_control_line(data, event):
    # [ref] the reference starts the argument at the first non-blank byte: these pass
    assert parse(data, max_control_line=MCL) == [event]


@pytest.mark.parametrize("verb, event", [(b"PING", (PING,)), (b"PONG", (PONG,)), (b"+OK", (OK,))])
def test_bug_long_ping_line_is_chunking_invariant(verb, event):
    # [ref] PONG whether the line comes in one read or two; ours: PING whole, MCL error split
    data = verb + b"x" * 100 + b"\r\n"
    assert parse(data, max_control_line=MCL) == [event]
    assert run([data[:-2], data[-2:]], max_control_line=MCL) == [event]


def test_bug_bare_connect_is_chunking_invariant():
    # whole: (CONNECT, b"") and the actor closes silently on the bad JSON, as the reference
    # does; split after the CR: Unknown Protocol Operation
    assert parse(b"CONNECT\r\n") == [(CONNECT, b"")]
    assert run([b"CONNECT\r", b"\n"]) == [(CONNECT, b"")]


@pytest.mark.parametrize("data, event", [
    (b"SUB a\x0bb 1\r\n", (SUB, b"a\x0bb", None, b"1")),
    (b"PUB a\x0bb 2\r\nhi\r\n", (PUB, b"a\x0bb", None, b"2", b"hi")),
    (b"PUB a\x0c 2\r\nhi\r\n", (PUB, b"a\x0c", None, b"2", b"hi")),
    (b"UNSUB 1\x0b2\r\n", (UNSUB, b"1\x0b2", None)),
])
def test_bug_arguments_split_only_on_space_tab_cr_lf(data, event):
    # [ref] splitArg splits on ' ', '\t', '\r', '\n' only: `SUB a\x0bb 1` then `PUB a\x0bb 2`
    # delivers `MSG a\x0bb 1 2`
    assert parse(data) == [event]


def test_bug_feed_empty_while_payload_pending():
    p = ClientParser()
    assert p.feed(b"PUB a 3\r\nabc\r") == []
    assert p.feed(b"") == []
    assert norm(p.feed(b"\n")) == [(PUB, b"a", None, b"3", b"abc")]


@pytest.mark.parametrize("data", [b"-ERR\r\n", b"-ERRx\r\n", b"-errors\r\n"])
def test_bug_minus_err_needs_a_blank(data):
    # [ref] -ERR 'Unknown Protocol Operation'; ours closes silently as if it were -ERR
    assert parse(data) == [PARSE_ERR]


def test_bug_minus_err_line_is_held_to_max_control_line():
    # [ref] -ERR 'maximum control line exceeded'; ours closes silently (and errors when split)
    assert parse(b"-ERR '" + b"x" * 100 + b"'\r\n", max_control_line=MCL) == [MCL_ERR]


@pytest.mark.parametrize("data, expected", [
    (b"PUB a\n 3\r\nabc\r\n", [SILENT]),
    (b"PUB a b\nc 3\r\nabc\r\n", [SILENT]),
    (b"PUB a 1\r\nx\r\nPUB b\nc 1\r\ny\r\n", [(PUB, b"a", None, b"1", b"x"), SILENT]),
], ids=["subject", "reply", "second-in-run"])
def test_bug_bare_lf_ends_a_pub_line_in_a_run(data, expected):
    # [ref] `PUB a 1\r\nx\r\nPUB a\nc 1\r\ny\r\n`: MSG for the first, then `PUB a` (one
    # argument) closes silently. Byte by byte we agree; whole, the bulk path splits the read at
    # CRLF only and yields a PUB to b"a\n" / reply b"b\nc" / subject b"b\nc".
    assert run(bytewise(data)) == expected
    assert parse(data) == expected
