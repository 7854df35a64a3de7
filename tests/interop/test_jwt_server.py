"""Operator mode in the server, driven by nats-py against BOTH servers: creds login, the nats
resolver's runtime pushes, lookups and lists, refused JWTs (forged, wrong seed, untrusted,
expired, revoked), account limits from claims (connections, subscriptions, payload), live
revocation, the fetch timeout for an unknown account, JetStream off for an account without
JetStream limits (10039), a MEMORY resolver with preloads, start errors, and a burst of failed
logins that must not slow another client.

Operators, accounts and users are made in tmp dirs with actor_nats.nsc / protocol.jwt.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import nats
import pytest

from actor_nats import nsc
from actor_nats.protocol import creds as ncreds
from actor_nats.protocol import jwt as njwt
from tests.interop.helpers import TIMEOUT, run
from tests.servers import command


@pytest.fixture
def store(tmp_path):
    s = nsc.Store(tmp_path / "nsc")
    nsc.init(s)
    nsc.add_account(s, "A", limits={"mem_storage": 64 << 20, "disk_storage": 128 << 20,
                                    "streams": 5, "consumer": -1})
    nsc.add_user(s, "A", "u")
    return s


def creds(store, account, user) -> str:
    return str(store.user_path(account, user, "creds"))


def start(start_server, impl, store, tmp_path, extra="", timeout="1.9s"):
    (tmp_path / "jwt").mkdir(exist_ok=True)
    text = nsc.resolver_config(store, str(tmp_path / "jwt")).replace('"1.9s"', f'"{timeout}"')
    (tmp_path / "resolver.conf").write_text(text)
    # `include` resolves relative to the including file: keep both in tmp_path
    (tmp_path / "server.conf").write_text(f"include ./resolver.conf\n{extra}")
    return start_server(impl, args=["-c", str(tmp_path / "server.conf")])


def push(srv, store, *accounts):
    replies = nsc.push(store, list(accounts), srv.url)
    for r in replies:
        assert r["data"]["message"] == "jwt updated", r
    return replies


async def apush(srv, store, *accounts):
    """`push` from inside a running event loop."""
    sys_name = store.system_account_name()
    creds_path = str(store.user_path(sys_name, store.users(sys_name)[0], "creds"))
    replies = await nsc._push_async(srv.url, creds_path, [store.account(a)[1].token for a in accounts],
                                    TIMEOUT)
    for r in replies:
        assert r["data"]["message"] == "jwt updated", r
    return replies


async def connect(url, creds_path, errors=None, **kw):
    async def error_cb(e):
        if errors is not None:
            errors.append(e)

    return await nats.connect(url, user_credentials=creds_path, allow_reconnect=False,
                              max_reconnect_attempts=0, connect_timeout=TIMEOUT,
                              error_cb=error_cb, **kw)


async def refused(url, creds_path):
    errors = []
    with pytest.raises(Exception):
        nc = await connect(url, creds_path, errors)
        await nc.close()
    assert any("authorization violation" in str(e).lower() for e in errors), errors


async def wait_for(pred, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def reissue_account(store, name, **changes):
    """Re-sign an account JWT with changed claims (limits, revocations), one second later so
    it is newer than the one the server has."""
    acc_seed, claims = store.account(name)
    op_seed, _ = store.operator()
    nats_claims = dict(claims.nats)
    for k, v in changes.items():
        nats_claims[k] = v
    body = {"sub": claims.subject, "name": claims.name, "nats": nats_claims}
    token = njwt.encode(body, op_seed, time.time() + 1)
    store.save_account(name, acc_seed, token)
    return token


def test_creds_login_pubsub_and_log(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")

    async def main():
        nc = await connect(srv.url, creds(store, "A", "u"))
        try:
            assert nc._server_info.get("nonce")
            assert nc._server_info.get("auth_required") is True
            sub = await nc.subscribe("greet.>")
            await nc.publish("greet.joe", b"hi")
            assert (await sub.next_msg(TIMEOUT)).data == b"hi"
        finally:
            await nc.close()

    run(main)
    assert "Trusted Operators" in srv.log()
    assert f"Managing all jwt in exclusive directory {tmp_path / 'jwt'}" in srv.log()
    assert (tmp_path / "jwt" / f"{store.account('A')[1].subject}.jwt").exists()


def test_accounts_are_isolated(impl, start_server, store, tmp_path):
    nsc.add_account(store, "B")
    nsc.add_user(store, "B", "b")
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A", "B")

    async def main():
        a = await connect(srv.url, creds(store, "A", "u"))
        b = await connect(srv.url, creds(store, "B", "b"))
        try:
            sa = await a.subscribe("x")
            sb = await b.subscribe("x")
            await a.flush()
            await b.flush()
            await b.publish("x", b"from-b")
            assert (await sb.next_msg(TIMEOUT)).data == b"from-b"
            with pytest.raises(Exception):
                await sa.next_msg(0.3)
        finally:
            await a.close()
            await b.close()

    run(main)


def test_refused_jwts(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")
    user_jwt, user_seed_text = open(creds(store, "A", "u")).read(), None
    token, seed = ncreds.parse_creds(user_jwt)
    bad = {}
    # another user's seed: the nonce signature does not verify
    other = nsc.add_user(store, "A", "other")
    bad["wrong-seed"] = ncreds.format_user_creds(token, ncreds.parse_creds(open(other).read())[1])
    # a forged JWT: claims changed after signing
    head, body, sig = token.split(".")
    claims = json.loads(njwt._b64(body))
    claims["nats"]["pub"] = {"allow": [">"]}
    forged_body = njwt.base64.urlsafe_b64encode(njwt.go_json(claims)).decode().rstrip("=")
    bad["forged"] = ncreds.format_user_creds(f"{head}.{forged_body}.{sig}", seed)
    # expired
    acc_seed, acc = store.account("A")
    useed = njwt.create_seed(njwt.USER)
    expired = njwt.encode(njwt.user_claims(njwt.public_key(useed), "old", expires=int(time.time()) - 60),
                          acc_seed, time.time() - 120)
    bad["expired"] = ncreds.format_user_creds(expired, useed)
    # an account of an operator this server does not trust
    other_store = nsc.Store(tmp_path / "other")
    nsc.init(other_store)
    nsc.add_account(other_store, "X")
    nsc.add_user(other_store, "X", "x")
    bad["untrusted"] = open(creds(other_store, "X", "x")).read()
    paths = {}
    for name, text in bad.items():
        p = tmp_path / f"{name}.creds"
        p.write_text(text)
        paths[name] = str(p)

    async def main():
        for name in ("wrong-seed", "forged", "expired"):
            await refused(srv.url, paths[name])
        # the untrusted account is not known: fetched, then refused
        await refused(srv.url, paths["untrusted"])
        nc = await connect(srv.url, creds(store, "A", "u"))  # the server is fine
        await nc.close()

    run(main)
    assert "authentication error" in srv.log()


def test_no_nkey_seed_found(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")
    token = ncreds.parse_jwt(open(creds(store, "A", "u")).read())
    p = tmp_path / "noseed.creds"
    p.write_text(ncreds.decorate_jwt(token))

    with pytest.raises(ncreds.CredsError, match="no nkey seed found"):  # the Go client's text
        ncreds.parse_user_seed(p.read_text())

    async def main():
        with pytest.raises(Exception):  # nats-py cannot sign the nonce: no connection
            nc = await connect(srv.url, str(p))
            await nc.close()
        nc = await connect(srv.url, creds(store, "A", "u"))
        await nc.close()

    run(main)


def test_push_account_at_runtime_then_login(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path, timeout="300ms")
    nsc.add_account(store, "B")
    nsc.add_user(store, "B", "b")

    async def main():
        await refused(srv.url, creds(store, "B", "b"))
        replies = await apush(srv, store, "B")
        assert replies[0]["data"] == {"account": store.account("B")[1].subject, "code": 200,
                                      "message": "jwt updated"}
        assert set(replies[0]["server"]) >= {"name", "host", "id", "ver", "jetstream", "flags", "seq", "time"}
        nc = await connect(srv.url, creds(store, "B", "b"))
        await nc.close()

    run(main)


def test_resolver_requests(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")
    a_pub = store.account("A")[1].subject
    sys_pub = store.account("SYS")[1].subject

    async def main():
        nc = await connect(srv.url, creds(store, "SYS", "sys"))
        try:
            reply = json.loads((await nc.request("$SYS.REQ.CLAIMS.LIST", b"", timeout=TIMEOUT)).data)
            assert sorted(reply["data"]) == sorted([a_pub, sys_pub])
            got = await nc.request(f"$SYS.REQ.ACCOUNT.{a_pub}.CLAIMS.LOOKUP", b"", timeout=TIMEOUT)
            assert got.data.decode() == store.account("A")[1].token
            # an update on the per-account subject for the wrong account
            bad = json.loads((await nc.request(f"$SYS.REQ.ACCOUNT.{sys_pub}.CLAIMS.UPDATE",
                                               store.account("A")[1].token.encode(), timeout=TIMEOUT)).data)
            assert bad["error"] == {"account": sys_pub, "code": 500,
                                    "description": "jwt update resulted in error - subject does not match jwt content"}
            garbage = json.loads((await nc.request("$SYS.REQ.CLAIMS.UPDATE", b"nonsense", timeout=TIMEOUT)).data)
            assert garbage["error"]["account"] == "n/a" and garbage["error"]["code"] == 500
            assert garbage["error"]["description"].startswith("jwt update resulted in error - ")
            # delete is not enabled
            op_seed, op = store.operator()
            req = njwt.encode({"sub": op.subject, "nats": {"accounts": [a_pub], "type": "generic"}}, op_seed)
            deleted = json.loads((await nc.request("$SYS.REQ.CLAIMS.DELETE", req.encode(), timeout=TIMEOUT)).data)
            assert deleted["error"]["description"] == (f"delete accounts request by {op.subject} failed - "
                                                       "delete must be enabled in server config")
        finally:
            await nc.close()

    run(main)


def test_account_connection_limit(impl, start_server, store, tmp_path):
    nsc.add_account(store, "L", limits={"conn": 1})
    nsc.add_user(store, "L", "l")
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "L")

    async def main():
        first = await connect(srv.url, creds(store, "L", "l"))
        try:
            errors = []
            with pytest.raises(Exception):
                nc = await connect(srv.url, creds(store, "L", "l"), errors)
                await nc.close()
            assert any("maximum account active connections exceeded" in str(e).lower() for e in errors), errors
        finally:
            await first.close()

    run(main)


def test_subscription_and_payload_limits(impl, start_server, store, tmp_path):
    nsc.add_account(store, "L", limits={"subs": 2, "payload": 16})
    nsc.add_user(store, "L", "l")
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "L")

    async def main():
        # nats-py closes the connection on these -ERRs and keeps the error as last_error
        nc = await connect(srv.url, creds(store, "L", "l"))
        try:
            for subject in ("a", "b", "c"):
                await nc.subscribe(subject)
            await wait_for(lambda: nc.is_closed, "the close after too many subscriptions")
            assert "maximum subscriptions exceeded" in str(nc.last_error).lower()
        finally:
            await nc.close()
        nc = await connect(srv.url, creds(store, "L", "l"))
        try:
            assert nc.max_payload == 1024 * 1024  # INFO keeps the server's; the claim is enforced
            await nc.publish("a", b"x" * 32)
            await wait_for(lambda: nc.is_closed, "the close after the payload violation")
            assert "maximum payload violation" in str(nc.last_error).lower()
        finally:
            await nc.close()

    run(main)


def test_revocation_pushed_closes_live_connection(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")
    user_pub = njwt.decode(ncreds.parse_jwt(open(creds(store, "A", "u")).read())).subject

    async def main():
        errors = []
        nc = await connect(srv.url, creds(store, "A", "u"), errors)
        try:
            await nc.flush()
            reissue_account(store, "A", revocations={user_pub: int(time.time()) + 1})
            await apush(srv, store, "A")
            await wait_for(lambda: nc.is_closed, "the revocation")
            assert "user authentication revoked" in str(nc.last_error).lower()
        finally:
            await nc.close()
        await refused(srv.url, creds(store, "A", "u"))

    run(main)


def test_lowered_connection_limit_closes_newest(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")

    async def main():
        old_errors, new_errors = [], []
        old = await connect(srv.url, creds(store, "A", "u"), old_errors)
        await old.flush()
        new = await connect(srv.url, creds(store, "A", "u"), new_errors)
        await new.flush()
        try:
            limits = dict(store.account("A")[1].nats["limits"])
            limits["conn"] = 1
            reissue_account(store, "A", limits=limits)
            await apush(srv, store, "A")
            await wait_for(lambda: new.is_closed, "the newest connection's close")
            assert "maximum account active connections exceeded" in str(new.last_error).lower()
            await old.flush()
            assert old.is_connected
        finally:
            await old.close()
            await new.close()

    run(main)


def test_fetch_timeout_for_unknown_account(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path, timeout="700ms")
    nsc.add_account(store, "U")
    nsc.add_user(store, "U", "u")

    async def main():
        t0 = time.monotonic()
        await refused(srv.url, creds(store, "U", "u"))
        assert time.monotonic() - t0 >= 0.6

    run(main)
    log = srv.log()
    assert "Account fetch failed: fetching jwt timed out" in log


def test_account_fetched_from_a_lookup_responder(impl, start_server, store, tmp_path):
    """The nats resolver asks `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP` in the system account for
    an account it lacks; whoever answers there with the JWT lets the user in."""
    srv = start(start_server, impl, store, tmp_path)
    nsc.add_account(store, "F")
    nsc.add_user(store, "F", "f")
    f_jwt = store.account("F")[1].token

    async def main():
        sys_nc = await connect(srv.url, creds(store, "SYS", "sys"))
        try:
            async def answer(msg):
                if msg.reply:
                    await sys_nc.publish(msg.reply, f_jwt.encode())

            await sys_nc.subscribe(f"$SYS.REQ.ACCOUNT.{store.account('F')[1].subject}.CLAIMS.LOOKUP",
                                   cb=answer)
            await sys_nc.flush()
            nc = await connect(srv.url, creds(store, "F", "f"))
            await nc.close()
        finally:
            await sys_nc.close()

    run(main)


def test_jetstream_limits_from_claims(impl, start_server, store, tmp_path):
    nsc.add_account(store, "NOJS")
    nsc.add_user(store, "NOJS", "n")
    srv = start(start_server, impl, store, tmp_path,
                extra=f"jetstream {{ store_dir: '{tmp_path / 'js'}' }}\n")
    push(srv, store, "A", "NOJS")

    async def main():
        nc = await connect(srv.url, creds(store, "A", "u"))
        try:
            info = json.loads((await nc.request("$JS.API.INFO", b"", timeout=TIMEOUT)).data)
            assert info["limits"]["max_memory"] == 64 << 20
            assert info["limits"]["max_storage"] == 128 << 20
            assert info["limits"]["max_streams"] == 5
            assert info["limits"]["max_consumers"] == -1
        finally:
            await nc.close()
        nc = await connect(srv.url, creds(store, "NOJS", "n"))
        try:
            info = json.loads((await nc.request("$JS.API.INFO", b"", timeout=TIMEOUT)).data)
            assert info["error"]["err_code"] == 10039
        finally:
            await nc.close()

    run(main)


def test_memory_resolver_with_preload(impl, start_server, store, tmp_path):
    _, op = store.operator()
    sys_acc = store.account("SYS")[1]
    a = store.account("A")[1]
    conf = (f"operator: {op.token}\nsystem_account: {sys_acc.subject}\nresolver: MEMORY\n"
            f"resolver_preload: {{\n  {sys_acc.subject}: {sys_acc.token}\n  {a.subject}: {a.token}\n}}\n")
    srv = start_server(impl, config=conf)
    nsc.add_account(store, "B")
    nsc.add_user(store, "B", "b")

    async def main():
        nc = await connect(srv.url, creds(store, "A", "u"))
        await nc.close()
        await refused(srv.url, creds(store, "B", "b"))

    run(main)


def test_user_permissions_from_jwt(impl, start_server, store, tmp_path):
    nsc.add_user(store, "A", "limited", pub_allow=["foo.>"], sub_allow=["foo.>", "_INBOX.>"])
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")

    async def main():
        errors = []
        nc = await connect(srv.url, creds(store, "A", "limited"), errors)
        try:
            sub = await nc.subscribe("foo.x")
            await nc.publish("bar", b"no")
            await nc.publish("foo.x", b"ok")
            assert (await sub.next_msg(TIMEOUT)).data == b"ok"
            await wait_for(lambda: errors, "the publish violation")
            assert 'permissions violation for publish to "bar"' in str(errors[0]).lower()
        finally:
            await nc.close()

    run(main)


@pytest.mark.parametrize("system_account", ["mismatch"])
def test_start_errors(impl, store, tmp_path, system_account):
    text = nsc.resolver_config(store, str(tmp_path / "jwt"))
    a_pub = store.account("A")[1].subject
    sys_pub = store.account("SYS")[1].subject
    (tmp_path / "bad.conf").write_text(text.replace(f"system_account: {sys_pub}", f"system_account: {a_pub}"))
    proc = subprocess.run(command(impl) + ["-c", str(tmp_path / "bad.conf"), "-p", "-1"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0
    assert "system_account in config and operator JWT must be identical" in proc.stdout + proc.stderr


def test_failed_logins_do_not_slow_others(impl, start_server, store, tmp_path):
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")
    token, _ = ncreds.parse_creds(open(creds(store, "A", "u")).read())
    bad = tmp_path / "bad.creds"
    bad.write_text(ncreds.format_user_creds(token, njwt.create_seed(njwt.USER)))

    async def main():
        good = await connect(srv.url, creds(store, "A", "u"))
        try:
            sub = await good.subscribe("ping")
            await good.flush()

            async def one_bad():
                try:
                    nc = await connect(srv.url, str(bad))
                    await nc.close()
                except Exception:
                    pass

            t0 = time.monotonic()
            tasks = [asyncio.ensure_future(one_bad()) for _ in range(100)]
            worst = 0.0
            for i in range(20):
                s = time.monotonic()
                await good.publish("ping", b"%d" % i)
                await sub.next_msg(TIMEOUT)
                worst = max(worst, time.monotonic() - s)
            await asyncio.gather(*tasks)
            assert worst < 1.0, worst
            assert time.monotonic() - t0 < 30
        finally:
            await good.close()

    run(main)
    assert srv.proc.poll() is None


def _user_creds(tmp_path, name, seed_signing, issuer_account="", **kw) -> str:
    useed = njwt.create_seed(njwt.USER)
    token = njwt.encode(njwt.user_claims(njwt.public_key(useed), name, issuer_account=issuer_account, **kw),
                        seed_signing)
    p = tmp_path / f"{name}.creds"
    p.write_text(ncreds.format_user_creds(token, useed))
    return str(p)


def test_signing_key_bearer_and_expiry(impl, start_server, store, tmp_path):
    """A user signed by the account's signing key (issuer_account names the account), a bearer
    user whose creds carry another seed, and a user JWT that expires while connected."""
    acc_seed, acc = store.account("A")
    op_seed, _ = store.operator()
    sk_seed = njwt.create_seed(njwt.ACCOUNT)
    token = njwt.encode(njwt.account_claims(acc.subject, "A", limits=dict(acc.nats["limits"]),
                                            signing_keys=[njwt.public_key(sk_seed)]), op_seed, time.time() + 1)
    store.save_account("A", acc_seed, token)
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "A")
    signed = _user_creds(tmp_path, "sk", sk_seed, issuer_account=acc.subject)
    unnamed = _user_creds(tmp_path, "sk-no-account", sk_seed)  # issuer_account missing
    bearer_text = open(_user_creds(tmp_path, "bearer", acc_seed, bearer_token=True)).read()
    bearer = tmp_path / "bearer-other-seed.creds"
    bearer.write_text(ncreds.format_user_creds(ncreds.parse_jwt(bearer_text), njwt.create_seed(njwt.USER)))
    expiring = _user_creds(tmp_path, "soon", acc_seed, expires=int(time.time()) + 3)

    async def main():
        nc = await connect(srv.url, signed)
        await nc.close()
        await refused(srv.url, unnamed)
        nc = await connect(srv.url, str(bearer))
        await nc.close()
        nc = await connect(srv.url, expiring)
        try:
            await wait_for(lambda: nc.is_closed, "the expiry", timeout=8)
            assert "user authentication expired" in str(nc.last_error).lower()
        finally:
            await nc.close()

    run(main)


def test_exports_and_imports_from_claims(impl, start_server, store, tmp_path):
    op_seed, _ = store.operator()
    s_seed, c_seed = njwt.create_seed(njwt.ACCOUNT), njwt.create_seed(njwt.ACCOUNT)
    s_pub, c_pub = njwt.public_key(s_seed), njwt.public_key(c_seed)
    s_token = njwt.encode(njwt.account_claims(s_pub, "S", exports=[
        {"name": "svc", "subject": "svc.>", "type": "service"},
        {"name": "ev", "subject": "events.>", "type": "stream"}]), op_seed)
    c_token = njwt.encode(njwt.account_claims(c_pub, "C", imports=[
        {"name": "svc", "subject": "svc.>", "account": s_pub, "type": "service", "local_subject": "ask.>"},
        {"name": "ev", "subject": "events.>", "account": s_pub, "type": "stream", "local_subject": "s.events.>"}]),
        op_seed)
    store.save_account("S", s_seed, s_token)
    store.save_account("C", c_seed, c_token)
    nsc.add_user(store, "S", "s")
    nsc.add_user(store, "C", "c")
    srv = start(start_server, impl, store, tmp_path)
    push(srv, store, "S", "C")

    async def main():
        s = await connect(srv.url, creds(store, "S", "s"))
        c = await connect(srv.url, creds(store, "C", "c"))
        try:
            async def respond(msg):
                await s.publish(msg.reply, b"answer:" + msg.subject.encode())

            await s.subscribe("svc.>", cb=respond)
            events = await c.subscribe("s.events.>")
            await s.flush()
            await c.flush()
            reply = await c.request("ask.x", b"q", timeout=TIMEOUT)
            assert reply.data == b"answer:svc.x"
            await s.publish("events.1", b"e")
            msg = await events.next_msg(TIMEOUT)
            assert (msg.subject, msg.data) == ("s.events.1", b"e")
        finally:
            await s.close()
            await c.close()

    run(main)
