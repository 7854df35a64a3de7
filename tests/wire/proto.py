"""Tiny send/expect helpers for raw-socket protocol tests (the reference's own test style).

`Wire` is one raw client connection. Besides byte-exact `expect`, it reads the server's stream
op by op (`read_op`, `sync`, `roundtrip`, `ops_until_closed`), so a test can say "these are the
ops the server sent before answering my PING" without caring how the bytes were split across
reads. The server's own keep-alive PINGs (the first comes about 2s after connect) are answered
and skipped by `read_op` unless a test asks to see them. Nothing here knows which implementation
is on the other end.
"""

from __future__ import annotations

import json
import socket
import time


class Wire:
    """A raw client connection: `send(bytes)`, `expect(bytes)`, `read_info()`."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data: bytes, timeout: float = 60.0) -> None:
        # sendall's timeout bounds the whole call; reset it, or a big send would inherit
        # whatever was left over from the last read.
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            raise ConnectionError(f"closed by server; unread: {self.buf!r}")
        self.buf += chunk
        return True

    def read_line(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                raise TimeoutError(f"no full line; have {self.buf!r}")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_exact(self, n: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise TimeoutError(f"wanted {n} bytes; have {self.buf!r}")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect(self, data: bytes, timeout: float = 5.0) -> None:
        got = self.read_exact(len(data), timeout)
        assert got == data, f"expected {data!r}, got {got!r} (then {self.buf!r})"

    def read_info(self) -> dict:
        line = self.read_line()
        assert line.startswith(b"INFO "), line
        return json.loads(line[5:])

    def expect_closed(self, timeout: float = 5.0) -> bytes:
        """Read until the server closes; return whatever arrived before the close."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open; have {self.buf!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                out, self.buf = self.buf, b""
                return out
            self.buf += chunk

    def nothing_more(self, wait: float = 0.3) -> None:
        """Assert that nothing arrives within `wait` seconds."""
        self._fill(time.monotonic() + wait)
        assert self.buf == b"", f"unexpected {self.buf!r}"

    # --- op-level reading ----------------------------------------------------------------------

    def _next_op(self, timeout: float) -> "ServerOp":
        line = self.read_line(timeout)
        raw = line + b"\r\n"
        verb = line.split(b" ", 1)[0].decode("latin-1")
        if verb == "INFO":
            return ServerOp(verb, [], raw, info=json.loads(line[5:]))
        if verb in ("PING", "PONG", "+OK") and line == verb.encode():
            return ServerOp(verb, [], raw)
        if verb == "-ERR":
            text = line[5:].decode("utf-8", "replace")
            assert len(text) >= 2 and text[0] == text[-1] == "'", f"bad -ERR line {line!r}"
            return ServerOp(verb, [], raw, err=text[1:-1])
        if verb == "MSG":
            args = line.split()[1:]
            assert len(args) in (3, 4), f"bad MSG line {line!r}"
            body = self.read_exact(int(args[-1]) + 2, timeout)
            assert body.endswith(b"\r\n"), f"MSG payload not followed by CRLF: {body!r}"
            return ServerOp(verb, args, raw + body, payload=body[:-2])
        if verb == "HMSG":
            args = line.split()[1:]
            assert len(args) in (4, 5), f"bad HMSG line {line!r}"
            hsize, tsize = int(args[-2]), int(args[-1])
            assert 0 <= hsize <= tsize, f"bad HMSG sizes {line!r}"
            body = self.read_exact(tsize + 2, timeout)
            assert body.endswith(b"\r\n"), f"HMSG payload not followed by CRLF: {body!r}"
            return ServerOp(verb, args, raw + body, headers=body[:hsize], payload=body[hsize:-2])
        raise AssertionError(f"not a server op: {line!r} (then {self.buf!r})")

    def read_op(self, timeout: float = 10.0, pings: bool = False) -> "ServerOp":
        """The next op from the server. Server PINGs are answered with PONG and skipped unless
        `pings` is true. Raises ConnectionError if the server closes first, TimeoutError if
        nothing complete arrives within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            op = self._next_op(max(0.0, deadline - time.monotonic()))
            if op.verb == "PING" and not pings:
                self.send(b"PONG\r\n")
                continue
            return op

    def expect_op(self, verb: str, timeout: float = 10.0) -> "ServerOp":
        op = self.read_op(timeout)
        assert op.verb == verb, f"expected {verb}, got {op!r}"
        return op

    def sync(self, timeout: float = 10.0) -> list:
        """Send PING; return every op the server sent before the answering PONG."""
        self.send(b"PING\r\n")
        ops = []
        while True:
            op = self.read_op(timeout)
            if op.verb == "PONG":
                return ops
            ops.append(op)

    def roundtrip(self, data: bytes, timeout: float = 10.0) -> list:
        """Send `data` then PING; return the ops the server sent before the PONG."""
        self.send(data)
        return self.sync(timeout)

    def ops_until_closed(self, timeout: float = 10.0, pings: bool = False) -> list:
        """Read ops until the server closes; return them. Server PINGs are answered and left
        out, unless `pings` is true: then they are returned and not answered. Fails if the
        connection is still open after `timeout`, or if it ends in the middle of an op."""
        deadline = time.monotonic() + timeout
        ops = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout}s; got {ops!r}, "
                                     f"have {self.buf!r}")
            try:
                ops.append(self.read_op(remaining, pings=pings))
            except ConnectionError:
                assert self.buf == b"", f"connection closed mid-op: {self.buf!r} after {ops!r}"
                return ops
            except TimeoutError:
                continue

    def expect_err(self, text: str, timeout: float = 10.0) -> None:
        """The next op is `-ERR '<text>'` (the connection may stay open)."""
        op = self.read_op(timeout)
        assert op == err_line(text), f"expected -ERR '{text}', got {op!r}"

    def expect_err_and_close(self, text: str, timeout: float = 10.0) -> None:
        """The server sends exactly `-ERR '<text>'` and then closes."""
        ops = self.ops_until_closed(timeout)
        assert ops == [err_line(text)], f"expected -ERR '{text}' then close, got {ops!r}"

    def expect_silent_close(self, timeout: float = 10.0) -> None:
        """The server closes without sending anything more (no -ERR)."""
        ops = self.ops_until_closed(timeout)
        assert ops == [], f"expected a close with no -ERR, got {ops!r}"

    def send_bytewise(self, data: bytes) -> None:
        """Send `data` one byte per write (TCP_NODELAY, so each byte is its own segment)."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])

    def close(self) -> None:
        self.sock.close()


def connect(server, connect_opts: dict | None = None, verbose: bool = False) -> Wire:
    """Open a raw connection, read INFO, send CONNECT (unless connect_opts is None) + PING."""
    w = Wire(server.connect())
    w.info = w.read_info()
    if connect_opts is not None:
        opts = {"verbose": verbose, "pedantic": False}
        opts.update(connect_opts)
        w.send(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
        if verbose:
            w.expect(b"+OK\r\n")
        w.expect(b"PONG\r\n")
        # 2.12+ follows the first PONG with an INFO carrying connect_info for protocol>=1 clients.
        if opts.get("protocol", 0) >= 1:
            w.read_info()
    return w


class ServerOp:
    """One op sent by the server: `verb`, `args` (the control line's arguments, as bytes),
    `headers` and `payload` for MSG/HMSG, `info` for INFO, `err` (the text between the quotes)
    for -ERR, and `raw`: its exact bytes. Compares equal to its raw bytes."""

    def __init__(self, verb: str, args: list, raw: bytes, headers: bytes | None = None,
                 payload: bytes | None = None, info: dict | None = None, err: str | None = None):
        self.verb, self.args, self.raw = verb, args, raw
        self.headers, self.payload, self.info, self.err = headers, payload, info, err

    @property
    def subject(self) -> bytes:
        return self.args[0]

    @property
    def sid(self) -> bytes:
        return self.args[1]

    @property
    def reply(self) -> bytes | None:
        # MSG subj sid [reply] size / HMSG subj sid [reply] hsize tsize
        return self.args[2] if len(self.args) == (4 if self.verb == "MSG" else 5) else None

    def __repr__(self) -> str:
        return f"ServerOp({self.raw!r})"

    def __eq__(self, other) -> bool:
        if isinstance(other, ServerOp):
            return self.raw == other.raw
        if isinstance(other, (bytes, bytearray)):
            return self.raw == bytes(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.raw)


def err_line(text: str) -> bytes:
    return f"-ERR '{text}'\r\n".encode()


def _reply(reply: str | None) -> str:
    return f"{reply} " if reply else ""


def pub(subject: str, payload: bytes, reply: str | None = None) -> bytes:
    return f"PUB {subject} {_reply(reply)}{len(payload)}\r\n".encode() + payload + b"\r\n"


def hpub(subject: str, headers: bytes, payload: bytes, reply: str | None = None) -> bytes:
    sizes = f"{len(headers)} {len(headers) + len(payload)}"
    return f"HPUB {subject} {_reply(reply)}{sizes}\r\n".encode() + headers + payload + b"\r\n"


def msg(subject: str, sid: str, payload: bytes, reply: str | None = None) -> bytes:
    """The exact bytes of the MSG the server should deliver."""
    return f"MSG {subject} {sid} {_reply(reply)}{len(payload)}\r\n".encode() + payload + b"\r\n"


def hmsg(subject: str, sid: str, headers: bytes, payload: bytes, reply: str | None = None) -> bytes:
    """The exact bytes of the HMSG the server should deliver."""
    sizes = f"{len(headers)} {len(headers) + len(payload)}"
    return (f"HMSG {subject} {sid} {_reply(reply)}{sizes}\r\n".encode()
            + headers + payload + b"\r\n")


def open_wire(server, rcvbuf: int | None = None, timeout: float = 10.0) -> Wire:
    """A raw connection with nothing read yet. `rcvbuf` pins SO_RCVBUF before connecting, so
    the kernel cannot absorb megabytes on a slow reader's behalf."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((server.host, server.port))
    return Wire(s, timeout)


def raw_client(server, **kw) -> Wire:
    """A connection that has read the server's INFO (kept as `w.info`) and sent nothing."""
    w = open_wire(server, **kw)
    w.info = w.read_info()
    return w


def client(server, rcvbuf: int | None = None, **opts) -> Wire:
    """A ready client: INFO read (`w.info`), CONNECT sent with verbose and pedantic off unless
    `opts` says otherwise, synced with PING/PONG, and for protocol>=1 the connect_info INFO that
    follows the first PONG read into `w.connect_info`."""
    w = raw_client(server, rcvbuf=rcvbuf)
    o = {"verbose": False, "pedantic": False}
    o.update(opts)
    w.send(b"CONNECT " + json.dumps(o).encode() + b"\r\nPING\r\n")
    if o.get("verbose"):
        w.expect_op("+OK")
    w.expect_op("PONG")
    if o.get("protocol", 0) >= 1:
        w.connect_info = w.expect_op("INFO").info
    return w
