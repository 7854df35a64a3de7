"""Exports and imports between JWT accounts, driven by nats-py against BOTH servers: public
stream and service exports; private (`token_req`) exports imported with an activation token;
and every way an import of a private export must fail: no token, a token for another account,
an expired token, a token signed by the wrong key, a revoked token, a token that expires while
the import is in use. A refused import leaves the importer with nothing (no messages, no
responders); a corrected account JWT pushed later makes it apply. One test drives the whole
flow through the `actor-nats jwt` command line.

Operators, accounts and users are made in tmp dirs with actor_nats.nsc / protocol.jwt.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time

import nats
import pytest

from actor_nats import nsc
from actor_nats.protocol import jwt as njwt
from tests.interop.helpers import TIMEOUT, run
from tests.interop.test_jwt_server import connect, creds, start

QUIET = 0.5  # how long "receives nothing" is watched for


@pytest.fixture
def store(tmp_path):
    s = nsc.Store(tmp_path / "nsc")
    nsc.init(s)
    for name, user in (("A", "a"), ("B", "b"), ("C", "c")):
        nsc.add_account(s, name)
        nsc.add_user(s, name, user)
    return s


def pub(store, name) -> str:
    return store.account(name)[1].subject


def seed(store, name) -> str:
    return store.account(name)[0]


def push_replies(srv, store, *accounts):
    return nsc.push(store, list(accounts), srv.url)


def push_ok(srv, store, *accounts):
    for r in push_replies(srv, store, *accounts):
        assert r.get("data", {}).get("message") == "jwt updated", r


def activation(store, exporter, target, subject, kind="stream", key=None, **kw) -> str:
    """An activation for account `target` signed by `exporter`'s key (or `key`)."""
    claims = njwt.activation_claims(pub(store, target), subject, kind, **kw)
    return njwt.encode(claims, key or seed(store, exporter))


def set_imports(store, account, *imports, when=None):
    """Re-sign `account` with exactly these imports (a second later than its last JWT, so
    the server takes it as newer)."""
    when = when or time.time() + 1
    return nsc.resign_account(store, account, when, imports=list(imports))


def priv_import(store, token="", subject="priv.>"):
    return njwt.import_claim(pub(store, "A"), subject, token=token)


def svc_import(store, token="", subject="svc.echo", local="echo"):
    return njwt.import_claim(pub(store, "A"), subject, service=True, local_subject=local,
                             token=token)


async def receives(sub, publisher, subject, payload=b"x") -> bytes | None:
    """Publish on `subject` from `publisher`; what `sub` gets within QUIET (None = nothing)."""
    await publisher.publish(subject, payload)
    await publisher.flush()
    try:
        return (await sub.next_msg(QUIET)).data
    except nats.errors.TimeoutError:
        return None


async def eventually_receives(sub, publisher, subject, payload=b"x") -> bytes:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        got = await receives(sub, publisher, subject, payload)
        if got is not None:
            return got
    raise AssertionError(f"nothing received on {subject}")


async def responder(nc, subject):
    async def echo(msg):
        await msg.respond(b"echo:" + msg.data)

    sub = await nc.subscribe(subject, cb=echo)
    await nc.flush()
    return sub


async def request_fails(nc, subject):
    """The request gets no answer: no responders (or a timeout), as on the reference."""
    with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
        await nc.request(subject, b"q", timeout=QUIET * 2)



@contextlib.asynccontextmanager
async def users_a_b(srv, store):
    """A user of account A and one of account B, both closed afterwards."""
    a = await connect(srv.url, creds(store, "A", "a"))
    try:
        b = await connect(srv.url, creds(store, "B", "b"))
        try:
            yield a, b
        finally:
            await b.close()
    finally:
        await a.close()


async def request_eventually(nc, subject: str, data: bytes):
    """A request through an import that was just pushed: the reference applies account updates
    asynchronously, so the first tries may find no responders."""
    for _ in range(100):
        try:
            return await nc.request(subject, data, timeout=1.0)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.05)
    raise AssertionError(f"{subject}: the service import never answered")

def test_public_stream_and_service(impl, start_server, store, tmp_path):
    nsc.add_export(store, "A", "pub.>")
    nsc.add_export(store, "A", "svc.echo", service=True)
    set_imports(store, "B", priv_import(store, subject="pub.>"), svc_import(store))
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B", "C")

    async def main():
        a = await connect(srv.url, creds(store, "A", "a"))
        b = await connect(srv.url, creds(store, "B", "b"))
        c = await connect(srv.url, creds(store, "C", "c"))
        try:
            sub = await b.subscribe("pub.>")
            csub = await c.subscribe("pub.>")
            await b.flush()
            await c.flush()
            assert await eventually_receives(sub, a, "pub.one", b"hello") == b"hello"
            assert await receives(csub, a, "pub.two") is None  # C imports nothing
            await responder(a, "svc.echo")
            assert (await request_eventually(b, "echo", b"hi")).data == b"echo:hi"
            await request_fails(c, "echo")
        finally:
            for nc in (a, b, c):
                await nc.close()

    run(main)


@pytest.mark.parametrize("signer", ["account", "signing_key"])
def test_private_exports_with_activation(impl, start_server, store, tmp_path, signer):
    nsc.add_export(store, "A", "priv.>", private=True)
    nsc.add_export(store, "A", "svc.echo", service=True, private=True)
    key = None
    kw = {}
    if signer == "signing_key":  # signed by one of A's signing keys, naming A
        key = njwt.create_seed(njwt.ACCOUNT)
        nsc.resign_account(store, "A", time.time(), signing_keys=[njwt.public_key(key)])
        kw = {"issuer_account": pub(store, "A")}
    set_imports(store, "B",
                priv_import(store, activation(store, "A", "B", "priv.>", key=key, **kw)),
                svc_import(store, activation(store, "A", "B", "svc.echo", "service", key=key, **kw)))
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B")

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            assert await eventually_receives(sub, a, "priv.x", b"secret") == b"secret"
            await responder(a, "svc.echo")
            assert (await request_eventually(b, "echo", b"hi")).data == b"echo:hi"

    run(main)


def test_private_export_without_token_then_corrected(impl, start_server, store, tmp_path):
    nsc.add_export(store, "A", "priv.>", private=True)
    nsc.add_export(store, "A", "svc.echo", service=True, private=True)
    set_imports(store, "B", priv_import(store), svc_import(store))
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B")  # accepted: the import just does not apply

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            await responder(a, "svc.echo")
            assert await receives(sub, a, "priv.x") is None
            await request_fails(b, "echo")
            # the corrected account JWT makes both imports apply
            set_imports(store, "B",
                        priv_import(store, activation(store, "A", "B", "priv.>")),
                        svc_import(store, activation(store, "A", "B", "svc.echo", "service")))
            await asyncio.to_thread(push_ok, srv, store, "B")
            assert await eventually_receives(sub, a, "priv.y", b"now") == b"now"
            assert (await request_eventually(b, "echo", b"hi")).data == b"echo:hi"

    run(main)


@pytest.mark.parametrize("case,issue", [
    ("other_account", 'activation token doesn\'t match account it is being included in, "priv.>"'),
    ("other_signer", 'activation token doesn\'t match account for import "priv.>"'),
    ("wrong_kind", "mismatch between token import type service and type of import stream"),
    ("narrower", 'activation token import subject "priv.only" doesn\'t match import "priv.>"'),
    ("garbage", 'import "priv.>" contains an invalid activation token'),
])
def test_bad_activation_refuses_the_account_jwt(impl, start_server, store, tmp_path, case, issue):
    """Tokens the jwt library's import validation rejects make the whole account JWT invalid:
    the push is refused and the server keeps the JWT it had."""
    nsc.add_export(store, "A", "priv.>", private=True)
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B")
    token = {
        "other_account": lambda: activation(store, "A", "C", "priv.>"),
        "other_signer": lambda: activation(store, "C", "B", "priv.>"),
        "wrong_kind": lambda: activation(store, "A", "B", "priv.>", "service"),
        "narrower": lambda: activation(store, "A", "B", "priv.only"),
        "garbage": lambda: "not.a.jwt",
    }[case]()
    set_imports(store, "B", priv_import(store, token))
    [reply] = push_replies(srv, store, "B")
    assert reply.get("error", {}).get("code") == 500, reply
    assert reply["error"]["description"] == f"jwt validation failed - validation errors: [{issue}]"

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            assert await receives(sub, a, "priv.x") is None
            set_imports(store, "B", priv_import(store, activation(store, "A", "B", "priv.>")))
            await asyncio.to_thread(push_ok, srv, store, "B")
            assert await eventually_receives(sub, a, "priv.y", b"ok") == b"ok"

    run(main)


@pytest.mark.parametrize("case", ["expired", "untrusted_signing_key", "not_yet_valid"])
def test_activation_refused_by_the_server(impl, start_server, store, tmp_path, case):
    """Tokens that pass the account JWT's validation but not the server's activation check:
    the push succeeds, the import does not apply."""
    nsc.add_export(store, "A", "priv.>", private=True)
    now = int(time.time())
    if case == "expired":
        token = activation(store, "A", "B", "priv.>", expires=now - 10)
    elif case == "not_yet_valid":
        token = activation(store, "A", "B", "priv.>", not_before=now + 3600)
    else:  # names A as its issuer account, but the key is not one of A's signing keys
        token = activation(store, "A", "B", "priv.>", key=njwt.create_seed(njwt.ACCOUNT),
                           issuer_account=pub(store, "A"))
    set_imports(store, "B", priv_import(store, token))
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B")

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            assert await receives(sub, a, "priv.x") is None

    run(main)


def test_revoked_activation_stops_the_import(impl, start_server, store, tmp_path):
    nsc.add_export(store, "A", "priv.>", private=True)
    set_imports(store, "B", priv_import(store, activation(store, "A", "B", "priv.>")))
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B")

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            assert await eventually_receives(sub, a, "priv.x", b"before") == b"before"
            # A revokes B's activations issued up to now
            _, acc = store.account("A")
            exports = [dict(e, revocations={pub(store, "B"): int(time.time()) + 1})
                       for e in acc.nats["exports"]]
            nsc.resign_account(store, "A", time.time() + 1, exports=exports)
            await asyncio.to_thread(push_ok, srv, store, "A")
            deadline = time.monotonic() + TIMEOUT
            while await receives(sub, a, "priv.y") is not None:
                assert time.monotonic() < deadline, "still receiving after the revocation"

    run(main)


def test_activation_expiry_stops_the_import(impl, start_server, store, tmp_path):
    nsc.add_export(store, "A", "priv.>", private=True)
    expires = int(time.time()) + 3
    set_imports(store, "B", priv_import(store, activation(store, "A", "B", "priv.>", expires=expires)))
    srv = start(start_server, impl, store, tmp_path)
    push_ok(srv, store, "A", "B")

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            assert await eventually_receives(sub, a, "priv.x", b"before") == b"before"
            await asyncio.sleep(max(0.0, expires - time.time()) + 1.5)
            while True:  # drain anything sent just before the expiry
                try:
                    await sub.next_msg(0.1)
                except nats.errors.TimeoutError:
                    break
            assert await receives(sub, a, "priv.after") is None

    run(main)


def test_command_line_flow(impl, start_server, tmp_path):
    """export / generate activation / import / push, all through `actor-nats jwt`."""
    env_store = str(tmp_path / "nsc")

    def jwt(*args):
        out = subprocess.run([sys.executable, "-m", "actor_nats", "jwt", *args, "--store", env_store],
                             capture_output=True, text=True, timeout=60)
        return out

    def ok(*args):
        out = jwt(*args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    ok("init")
    for acc, user in (("A", "a"), ("B", "b")):
        ok("add", "account", acc)
        ok("add", "user", user, "-a", acc)
    ok("add", "export", "-a", "A", "--subject", "priv.>", "--private")
    ok("add", "export", "-a", "A", "--subject", "svc.echo", "--service", "--response-type", "stream")
    refused = jwt("add", "import", "-a", "B", "--src-account", "A", "--remote-subject", "priv.>")
    assert refused.returncode == 1 and "private" in refused.stderr
    ok("generate", "activation", "-a", "A", "--subject", "priv.>", "--target-account", "B",
       "-o", str(tmp_path / "act.jwt"))
    ok("add", "import", "-a", "B", "--src-account", "A", "--remote-subject", "priv.>",
       "--token", str(tmp_path / "act.jwt"))
    ok("add", "import", "-a", "B", "--src-account", "A", "--remote-subject", "svc.echo",
       "--local-subject", "echo", "--service")
    store = nsc.Store(env_store)
    exports = {e["subject"]: e for e in store.account("A")[1].nats["exports"]}
    assert exports["priv.>"]["token_req"] is True
    assert exports["svc.echo"]["response_type"] == "Stream"
    srv = start(start_server, impl, store, tmp_path)
    pushed = subprocess.run([sys.executable, "-m", "actor_nats", "jwt", "push", "--all",
                             "--store", env_store, "-s", srv.url],
                            capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr

    async def main():
        async with users_a_b(srv, store) as (a, b):
            sub = await b.subscribe("priv.>")
            await b.flush()
            assert await eventually_receives(sub, a, "priv.x", b"cli") == b"cli"
            await responder(a, "svc.echo")
            for _ in range(100):  # the pushed import applies asynchronously on the reference
                try:
                    reply = await b.request("echo", b"hi", timeout=1.0)
                    break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the service import never answered")
            assert reply.data == b"echo:hi"

    run(main)
