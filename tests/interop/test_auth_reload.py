"""Auth reload journeys (issues 3 and 4): edit the authorization block, SIGHUP, and watch live
connections, on both servers. Observed on the reference nats-server 2.15.1:

- Added users can log in at once; the reload logs only the usual `Reloaded: authorization users`
  (plus `Reloaded: authorization nkey users` when nkeys are configured, and one line for a
  changed single username, password, token or timeout).
- Each connection's CONNECT credentials are checked again. A login whose user is no longer
  listed is closed without a -ERR (close reason "Client Closed"); credentials that no longer
  pass get -ERR 'Authorization Violation' and `[ERR] ... authentication error - User "c"`.
- The others take their user's new permissions at once: a publish now denied gets the
  Permissions Violation -ERR, and subscriptions now denied are removed, each with
  -ERR 'Permissions Violation for Subscription to "foo.x" (sid "1")' and
  `[INF] Removed sub "foo.x" (sid "1") for User "b" - not authorized`.
- A refused reload keeps the old users; a no_auth_user change is refused.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import nats
import pytest

from tests.interop.helpers import TIMEOUT, run
from tests.interop.test_reload import FAILED, TRAPPED, assert_reloaded, log_lines, reload

USERS = """authorization {
  users: [
    {user: a, password: pa}
    {user: b, password: pb}
  ]
}
"""


class Raw:
    """A raw connection logged in with CONNECT `creds`."""

    def __init__(self, srv, **creds):
        self.sock = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
        self.buf = b""
        self._until(b"\r\n")
        self.buf = b""
        connect = {"verbose": False, "pedantic": False, "protocol": 1, **creds}
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        assert self._until(b"PONG\r\n"), self.buf
        self.buf = b""

    def _until(self, marker: bytes, timeout: float = TIMEOUT) -> bool:
        """Read until `marker` is in the buffer (True) or the peer closes (False)."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"timed out waiting for {marker!r}: {self.buf!r}")
            if not data:
                return False
            self.buf += data
        return True

    def roundtrip(self, data: bytes = b"") -> bytes:
        """Send `data` and a PING; everything up to the PONG (PINGs from the server dropped)."""
        self.sock.sendall(data + b"PING\r\n")
        assert self._until(b"PONG\r\n"), self.buf
        out, _, self.buf = self.buf.partition(b"PONG\r\n")
        return out.replace(b"PING\r\n", b"")

    def closed(self) -> bytes:
        """Wait for the server to close; what it sent before (PINGs dropped)."""
        assert not self._until(b"\x00never\x00"), self.buf
        return self.buf.replace(b"PING\r\n", b"")


def wait_log(srv, text: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in log_lines(srv.log())):
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{srv.log()}"
        time.sleep(0.02)


def test_added_user_logs_in_and_old_users_stay(impl, start_server):
    srv = start_server(impl, config=USERS)
    a = Raw(srv, user="a", **{"pass": "pa"})

    async def main():
        with pytest.raises(Exception):
            await nats.connect(srv.url, user="c", password="pc", allow_reconnect=False,
                               connect_timeout=TIMEOUT)
        block = await asyncio.to_thread(
            reload, srv, USERS.replace("{user: b, password: pb}",
                                       "{user: b, password: pb}\n{user: c, password: pc}"))
        assert_reloaded(block)
        nc = await nats.connect(srv.url, user="c", password="pc", allow_reconnect=False,
                                connect_timeout=TIMEOUT)
        sub = await nc.subscribe("hello")
        await nc.publish("hello", b"c is in")
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"c is in"
        await nc.close()

    run(main)
    assert a.roundtrip(b"PUB x 0\r\n\r\n") == b""


def test_removed_user_is_closed_and_changed_password_revoked(impl, start_server):
    srv = start_server(impl, config=USERS + "\n", args=["-D"])
    a = Raw(srv, user="a", **{"pass": "pa"})
    b = Raw(srv, user="b", **{"pass": "pb"})
    b2 = Raw(srv, user="b", **{"pass": "pb"})
    # a removed, b's password changed, c added
    block = reload(srv, "authorization { users: [ {user: b, password: new}, {user: c, password: pc} ] }\n")
    assert_reloaded(block)
    # a removed user is closed without a -ERR
    assert a.closed() == b""
    # changed credentials: the reference's violation, on every connection of that user
    assert b.closed() == b"-ERR 'Authorization Violation'\r\n"
    assert b2.closed() == b"-ERR 'Authorization Violation'\r\n"
    wait_log(srv, 'authentication error - User "b"')
    wait_log(srv, "Client connection closed: Client Closed")
    c = Raw(srv, user="c", **{"pass": "pc"})
    assert c.roundtrip(b"PUB x 0\r\n\r\n") == b""


def test_switching_to_token_revokes_unauthenticated_connections(impl, start_server):
    srv = start_server(impl, config="max_payload: 1MB\n")
    anon = Raw(srv)
    assert_reloaded(reload(srv, "max_payload: 1MB\nauthorization { token: s3cr3t }\n"),
                    "authorization token")
    assert anon.closed() == b"-ERR 'Authorization Violation'\r\n"
    t = Raw(srv, auth_token="s3cr3t")
    assert t.roundtrip(b"PUB x 0\r\n\r\n") == b""


def test_changed_permissions_apply_to_the_live_connection(impl, start_server):
    srv = start_server(impl, config="""authorization { users: [
        {user: b, password: pb, permissions: {publish: ">", subscribe: ">"}}
        {user: o, password: po}
    ] }
""")
    b = Raw(srv, user="b", **{"pass": "pb"})
    other = Raw(srv, user="o", **{"pass": "po"})
    assert b.roundtrip(b"SUB foo.x 1\r\nSUB bar.x 2\r\nSUB foo.* q 3\r\n") == b""
    block = reload(srv, """authorization { users: [
        {user: b, password: pb, permissions: {publish: "foo.>", subscribe: "bar.>"}}
        {user: o, password: po}
    ] }
""")
    # the reference logs the removals before its final line, actor-nats just after it
    assert_reloaded([line for line in block if "Removed sub" not in line])
    got = b.roundtrip(b"PUB bar.x 2\r\nhi\r\nPUB foo.x 2\r\nhi\r\n")
    lines = got.split(b"\r\n")
    # the two subscription removals come in no fixed order (the reference walks a Go map)
    assert sorted(lines[:2]) == [
        b"-ERR 'Permissions Violation for Subscription to \"foo.*\" using queue \"q\" (sid \"3\")'",
        b"-ERR 'Permissions Violation for Subscription to \"foo.x\" (sid \"1\")'"], got
    assert lines[2:] == [b"-ERR 'Permissions Violation for Publish to \"bar.x\"'", b""], got
    wait_log(srv, '[INF] Removed sub "foo.x" (sid "1") for User "b" - not authorized')
    wait_log(srv, '[INF] Removed sub "foo.*" using queue "q" (sid "3") for User "b" - not authorized')
    # the kept subscription still receives; the removed ones do not
    assert other.roundtrip(b"PUB bar.x 3\r\nyes\r\nPUB foo.x 2\r\nno\r\n") == b""
    got = b.roundtrip()
    assert got == b"MSG bar.x 2 3\r\nyes\r\n", got


def test_refused_reload_keeps_the_old_users(impl, start_server):
    srv = start_server(impl, config=USERS)
    a = Raw(srv, user="a", **{"pass": "pa"})
    block = reload(srv, "authorization { users: [ {user: a, password: 1} ] }\n")
    assert block[0] == TRAPPED and len(block) == 2 and block[1].startswith(FAILED), block
    assert block[1].endswith("interface conversion: interface {} is int64, not string"), block
    assert a.roundtrip(b"PUB x 0\r\n\r\n") == b""
    b = Raw(srv, user="b", **{"pass": "pb"})
    assert b.roundtrip(b"PUB x 0\r\n\r\n") == b""


def test_no_auth_user_change_is_refused(impl, start_server):
    srv = start_server(impl, config=USERS + "no_auth_user: a\n")
    anon = Raw(srv)
    block = reload(srv, USERS + "no_auth_user: b\n")
    assert block == [TRAPPED, FAILED + "config reload not supported for NoAuthUser: old=a, new=b"]
    assert anon.roundtrip(b"PUB x 0\r\n\r\n") == b""
