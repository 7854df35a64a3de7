"""Log lines that scripts and client-library test helpers read, in the reference's format:
the startup lines, and the -D/-V (-DV) debug and protocol trace lines for a client."""

from __future__ import annotations

import re
import time

from tests.wire.proto import client

LINE = re.compile(r"^\[\d+\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} \[(INF|DBG|TRC|WRN|ERR|FTL)\] ")


def wait_for(server, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in log:\n{server.log()}")


def test_startup_lines(server):
    log = server.log()
    for text in ("[INF] Starting nats-server", "[INF]   Version:  ",
                 f"[INF] Listening for client connections on 127.0.0.1:{server.port}",
                 "[INF] Server is ready"):
        assert text in log
    for line in log.splitlines():
        if line.strip():
            assert LINE.match(line), line


def test_no_timestamps_with_logtime_false(impl, start_server):
    srv = start_server(impl, args=["-T=false"])
    assert re.search(r"^\[\d+\] \[INF\] Server is ready$", srv.log(), re.M)


def test_debug_and_trace_lines_for_a_client(impl, start_server):
    srv = start_server(impl, args=["-DV"])
    w = client(srv, name="tracer")
    w.roundtrip(b"SUB foo 1\r\nPUB foo bar 5\r\nhello\r\nUNSUB 1\r\n")
    w.close()
    prefix = r'127\.0\.0\.1:\d+ - cid:\d+ - "tracer" - '
    log = wait_for(srv, "Client connection closed")
    assert re.search(r"\[DBG\] 127\.0\.0\.1:\d+ - cid:\d+ - Client connection created", log)
    for line in (r"<<- \[SUB foo 1\]", r"<<- \[PUB foo bar 5\]", r'<<- MSG_PAYLOAD: \["hello"\]',
                 r"->> \[MSG foo 1 bar 5\]", r'->> MSG_PAYLOAD: \["hello"\]', r"<<- \[PING\]",
                 r"->> \[PONG\]", r"<<- \[UNSUB 1\]", r"<-> \[DELSUB 1\]"):
        assert re.search(r"\[TRC\] " + prefix + line, log), line
    assert re.search(r"\[DBG\] " + prefix + "Client connection closed: Client Closed", log)


def test_headers_not_supported_is_logged(impl, start_server):
    srv = start_server(impl, args=["-D"])
    w = client(srv, name="nohdr")
    w.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")
    w.expect_silent_close()
    log = wait_for(srv, "Client connection closed")
    assert re.search(r'\[ERR\] 127\.0\.0\.1:\d+ - cid:\d+ - "nohdr" - message headers not supported', log)
    assert re.search(r'"nohdr" - Client connection closed: Protocol Violation', log)
