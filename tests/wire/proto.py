"""Tiny send/expect helpers for raw-socket protocol tests (the reference's own test style)."""

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

    def send(self, data: bytes) -> None:
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
