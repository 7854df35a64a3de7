"""Operator mode end to end with our tooling and nats-py: `actor-nats jwt` makes an operator, SYS,
an account with JetStream limits and users; the server runs the generated resolver config; users
log in with `user_credentials=`; a wrong creds file gets `Authorization Violation`; an account
made later is pushed at runtime with `actor-nats jwt push`; `actor-nats passwd` hashes are
accepted as bcrypt passwords.

Runs on both servers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import nats
import pytest

from tests.interop.helpers import TIMEOUT, run
from tests.servers import reference_binary

IMPLS = ["actor", "reference"]


def tool(*args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "actor_nats", *args], capture_output=True,
                          text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"actor-nats {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def store(tmp_path):
    s = tmp_path / "nsc"
    tool("jwt", "init", "--store", str(s))
    tool("jwt", "add", "account", "A", "--store", str(s), "--js-mem-storage", "64M",
         "--js-disk-storage", "128M", "--js-streams", "5", "--js-consumer", "-1")
    tool("jwt", "add", "user", "u", "-a", "A", "--store", str(s))
    tool("jwt", "add", "user", "limited", "-a", "A", "--store", str(s), "--allow-pub", "foo.>",
         "--allow-sub", "foo.>,_INBOX.>")
    return s


def creds(store, account, user):
    return str(store / "accounts" / account / "users" / f"{user}.creds")


@pytest.fixture
def op_server(store, tmp_path, start_server, request):
    resolver = tool("jwt", "generate", "config", "--store", str(store), "--resolver-dir",
                    str(tmp_path / "jwt")).stdout
    conf = resolver + f"\njetstream {{ store_dir: '{tmp_path / 'js'}' }}\n"
    srv = start_server(request.param, config=conf)
    reply = tool("jwt", "push", "-a", "A", "--store", str(store), "-s", srv.url).stdout
    assert '"message": "jwt updated"' in reply and '"code": 200' in reply
    return srv


async def _connect(url, creds_path, errors=None):
    async def error_cb(e):
        if errors is not None:
            errors.append(e)

    return await nats.connect(url, user_credentials=creds_path, allow_reconnect=False,
                              max_reconnect_attempts=0, connect_timeout=TIMEOUT, error_cb=error_cb)


def test_generated_config_is_valid_when_included(store, tmp_path):
    (tmp_path / "resolver.conf").write_text(
        tool("jwt", "generate", "config", "--store", str(store)).stdout)
    (tmp_path / "server.conf").write_text("include ./resolver.conf\nport: -1\n")
    proc = subprocess.run([reference_binary(), "-t", "-c", str(tmp_path / "server.conf")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=20)
    assert "is valid" in proc.stderr, proc.stderr


@pytest.mark.parametrize("op_server", IMPLS, indirect=True)
def test_login_pubsub_and_jetstream_limits(op_server, store):
    async def main():
        nc = await _connect(op_server.url, creds(store, "A", "u"))
        try:
            sub = await nc.subscribe("greet.>")
            await nc.publish("greet.joe", b"hello")
            msg = await sub.next_msg(TIMEOUT)
            assert (msg.subject, msg.data) == ("greet.joe", b"hello")
            info = json.loads((await nc.request("$JS.API.INFO", b"", timeout=TIMEOUT)).data)
            assert info["limits"]["max_memory"] == 64 << 20
            assert info["limits"]["max_storage"] == 128 << 20
            assert info["limits"]["max_streams"] == 5
            assert info["limits"]["max_consumers"] == -1
        finally:
            await nc.close()

    run(main)


@pytest.mark.parametrize("op_server", IMPLS, indirect=True)
def test_user_jwt_permissions(op_server, store):
    async def main():
        errors = []
        nc = await _connect(op_server.url, creds(store, "A", "limited"), errors)
        try:
            sub = await nc.subscribe("foo.x")
            await nc.publish("bar", b"denied")
            await nc.publish("foo.x", b"ok")
            assert (await sub.next_msg(TIMEOUT)).data == b"ok"
            for _ in range(100):
                if errors:
                    break
                await asyncio.sleep(0.05)
            assert any('permissions violation for publish to "bar"' in str(e).lower() for e in errors)
        finally:
            await nc.close()

    run(main)


@pytest.mark.parametrize("op_server", IMPLS, indirect=True)
def test_wrong_creds_are_refused(op_server, store, tmp_path):
    # a user JWT with another user's seed: the nonce signature does not match
    text_u = open(creds(store, "A", "u")).read()
    text_l = open(creds(store, "A", "limited")).read()
    mixed = tmp_path / "mixed.creds"
    mixed.write_text(text_u.split("************************* IMPORTANT")[0]
                     + "************************* IMPORTANT" + text_l.split("************************* IMPORTANT")[1])
    # a user of an operator this server does not trust
    tool("jwt", "init", "--store", str(tmp_path / "other"))
    tool("jwt", "add", "account", "X", "--store", str(tmp_path / "other"))
    tool("jwt", "add", "user", "x", "-a", "X", "--store", str(tmp_path / "other"))

    async def main():
        for path in (str(mixed), creds(tmp_path / "other", "X", "x")):
            errors = []
            with pytest.raises(Exception):
                await _connect(op_server.url, path, errors)
            assert any("authorization violation" in str(e).lower() for e in errors), errors

    run(main)


@pytest.mark.parametrize("op_server", IMPLS, indirect=True)
def test_push_account_at_runtime(op_server, store):
    tool("jwt", "add", "account", "B", "--store", str(store))
    tool("jwt", "add", "user", "b", "-a", "B", "--store", str(store))

    async def login_b():
        nc = await _connect(op_server.url, creds(store, "B", "b"))
        try:
            sub = await nc.subscribe("b.>")
            await nc.publish("b.1", b"x")
            assert (await sub.next_msg(TIMEOUT)).data == b"x"
        finally:
            await nc.close()

    with pytest.raises(Exception):  # B is unknown to the server until pushed
        run(login_b)
    out = tool("jwt", "push", "-a", "B", "--store", str(store), "-s", op_server.url).stdout
    assert out.startswith("B: ") and '"message": "jwt updated"' in out
    run(login_b)


def test_passwd_hash_is_a_bcrypt_password(impl, start_server):  # static auth: both servers
    hashed = tool("passwd", "--password", "correct-horse-battery-staple").stdout.strip()
    assert hashed.startswith("$2a$11$")
    srv = start_server(impl, config=f'authorization {{ user: alice, password: "{hashed}" }}\n')

    async def main():
        nc = await nats.connect(srv.url, user="alice", password="correct-horse-battery-staple",
                                allow_reconnect=False, connect_timeout=TIMEOUT)
        await nc.close()
        errors = []

        async def error_cb(e):
            errors.append(e)

        with pytest.raises(Exception):
            await nats.connect(srv.url, user="alice", password="wrong", allow_reconnect=False,
                               max_reconnect_attempts=0, connect_timeout=TIMEOUT, error_cb=error_cb)
        assert any("authorization violation" in str(e).lower() for e in errors), errors

    run(main)
