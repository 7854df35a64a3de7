"""Static auth with nats-py, on both servers: token, user/password, bcrypt, nkey seed login,
no_auth_user, a refused login raising, permission violations reported asynchronously while the
connection stays usable."""

from __future__ import annotations

import asyncio

import nats
import nkeys
import pytest
from nats.errors import NoServersError

from tests.interop.helpers import TIMEOUT, run

SEED = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4PA"
NKEY = nkeys.from_seed(SEED.encode()).public_key.decode()


def _bcrypt(pw: str) -> str:
    import bcrypt

    return bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()


CONF = """authorization {
  users: [
    {user: alice, password: "%s"}
    {user: bob, password: pb, permissions: {publish: {allow: "ok.>", deny: "ok.no"}, subscribe: ">"}}
    {nkey: %s, permissions: {publish: "nk.>", subscribe: ">"}}
  ]
}
""" % (_bcrypt("wonderland"), NKEY)


async def _connect(url, errors=None, **kw):
    async def error_cb(e):
        if errors is not None:
            errors.append(e)

    return await nats.connect(url, allow_reconnect=False, connect_timeout=TIMEOUT, max_reconnect_attempts=0,
                              error_cb=error_cb, **kw)


async def _roundtrip(nc, subject="ok.x"):
    sub = await nc.subscribe(subject)
    await nc.publish(subject, b"hello")
    msg = await sub.next_msg(timeout=TIMEOUT)
    assert msg.data == b"hello"


def test_token(impl, start_server):
    srv = start_server(impl, config="authorization { token: s3cr3t }")

    async def main():
        nc = await _connect(srv.url, token="s3cr3t")
        await _roundtrip(nc)
        await nc.close()
        with pytest.raises(Exception):
            await _connect(srv.url, token="wrong")

    run(main)


def test_users_bcrypt_and_wrong_password(impl, start_server):
    srv = start_server(impl, config=CONF)

    async def main():
        nc = await _connect(srv.url, user="alice", password="wonderland")
        await _roundtrip(nc)
        await nc.close()
        with pytest.raises((NoServersError, nats.errors.Error, OSError, asyncio.TimeoutError)):
            await _connect(srv.url, user="alice", password="nope")

    run(main)


def test_publish_violation_keeps_connection(impl, start_server):
    srv = start_server(impl, config=CONF)

    async def main():
        errors = []
        nc = await _connect(srv.url, errors, user="bob", password="pb")
        await nc.publish("ok.no", b"x")
        await nc.flush(timeout=TIMEOUT)
        for _ in range(200):
            if errors:
                break
            await asyncio.sleep(0.01)
        assert errors and "permissions violation for publish" in str(errors[0]).lower()
        assert nc.is_connected
        await _roundtrip(nc, "ok.y")
        await nc.close()

    run(main)


def test_nkey_seed_login(impl, start_server, tmp_path):
    srv = start_server(impl, config=CONF)
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(SEED)

    async def main():
        nc = await _connect(srv.url, nkeys_seed=str(seed_file))
        await _roundtrip(nc, "nk.a")
        await nc.close()

    run(main)


def test_no_auth_user(impl, start_server):
    srv = start_server(impl, config='authorization { users: [{user: anon, password: x, permissions: '
                                    '{publish: "ok.>", subscribe: "ok.>"}}] }\nno_auth_user: anon')

    async def main():
        nc = await _connect(srv.url)
        await _roundtrip(nc)
        await nc.close()

    run(main)
