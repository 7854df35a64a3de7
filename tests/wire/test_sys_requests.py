"""`$SYS` requests: the monitoring data and the server controls over the system account.

A nats-py client logged into the system account (`sys`/`sys` in account SYS) asks what
`nats server list` / `nats server report` and friends ask: `$SYS.REQ.SERVER.PING[.<X>]`,
`$SYS.REQ.SERVER.<id>.<X>`, `.KICK`, `.LDM`, `.RELOAD`, `$SYS.REQ.ACCOUNT.<acc>.<X>`,
`$SYS.REQ.USER.INFO`. The shape test runs one scenario on actor-nats and on the reference side by
side and compares every answer's JSON keys and types (tests/wire/test_monitoring.py's helpers);
behaviour tests run on both servers; `.KILL` is actor-nats' own.

No timing assertions: "no answer" means no reply within a short wait (the reference's way of
saying a filter did not match).
"""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from tests.interop.helpers import run
from tests.wire.proto import client
from tests.wire.test_monitoring import json_shape, shape_differences

CONFIG = """
accounts {
  SYS: { users: [{user: sys, password: sys}] }
  APP: { users: [{user: app, password: app}] }
}
system_account: SYS
"""

ENDPOINTS = ("STATSZ", "VARZ", "SUBSZ", "CONNZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "ACCOUNTZ", "JSZ",
             "HEALTHZ", "IDZ")

# Keys that legitimately differ, by path ("<request>.<key>...", "[]" a list element).
ALLOWED = {
    "server.feature_flags": "JetStream feature flags: the reference's own rollout switches",
    "data.git_commit": "actor-nats is not built from the nats-server repository",
    "data.feature_flags": "as server.feature_flags",
    "data.account_detail.imports": "the reference's accounts import $SYS services; actor-nats "
                                   "subscribes its System actor in each account instead",
    "data.imports": "as data.account_detail.imports",
}

SHORT = 0.7  # seconds to wait for an answer that must not come


def _allowed(name: str) -> set:
    return {f"{name}.{k}" for k in ALLOWED}


def sys_conn(srv, **kw):
    return nats.connect(f"nats://sys:sys@{srv.host}:{srv.port}", allow_reconnect=False, **kw)


def app_conn(srv, **kw):
    return nats.connect(f"nats://app:app@{srv.host}:{srv.port}", allow_reconnect=False, **kw)


async def ask(nc, subject: str, body=b"", timeout: float = 5.0):
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = await nc.request(subject, body, timeout=timeout)
    return json.loads(msg.data)


async def no_answer(nc, subject: str, body=b"") -> bool:
    try:
        await ask(nc, subject, body, timeout=SHORT)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return True
    return False


async def server_id(nc) -> str:
    return (await ask(nc, "$SYS.REQ.SERVER.PING.IDZ"))["id"]


# -- shapes, side by side with the reference -------------------------------------------------

async def _scenario(srv) -> dict:
    """The same connections, subscriptions and messages on either server; every answer."""
    out = {}
    sysc = await sys_conn(srv, name="sysc")
    app = await app_conn(srv, name="appc")
    try:
        await app.subscribe("foo.>")
        await app.publish("foo.bar", b"hello")
        await app.flush()
        sid = await server_id(sysc)
        out["PING"] = await ask(sysc, "$SYS.REQ.SERVER.PING")
        for x in ENDPOINTS:
            out[f"PING.{x}"] = await ask(sysc, f"$SYS.REQ.SERVER.PING.{x}")
            out[f"ID.{x}"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.{x}")
        out["CONNZ.subs"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.CONNZ",
                                      {"subscriptions_detail": True, "acc": "APP"})
        out["SUBSZ.subs"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.SUBSZ",
                                      {"subscriptions": True, "test": "foo.bar"})
        out["ACCOUNTZ.acc"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.ACCOUNTZ", {"account": "APP"})
        out["CONNZ.badsort"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.CONNZ", {"sort": "nope"})
        out["CONNZ.badjson"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.CONNZ", b"{bad")
        out["HEALTHZ.bad"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.HEALTHZ", {"stream": "x"})
        out["KICK.none"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.KICK", {"cid": 99999})
        out["LDM.none"] = await ask(sysc, f"$SYS.REQ.SERVER.{sid}.LDM", {"cid": 99999})
        for x in ("CONNZ", "SUBSZ", "INFO", "STATZ", "CONNS"):
            out[f"ACCOUNT.{x}"] = await ask(sysc, f"$SYS.REQ.ACCOUNT.APP.{x}")
        out["ACCOUNT.INFO.none"] = await ask(sysc, "$SYS.REQ.ACCOUNT.NOPE.INFO")
        out["ACCOUNT.PING.STATZ"] = await ask(sysc, "$SYS.REQ.ACCOUNT.PING.STATZ")
        out["USER.INFO"] = await ask(sysc, "$SYS.REQ.USER.INFO")
        out["APP.USER.INFO"] = await ask(app, "$SYS.REQ.USER.INFO")
        out["APP.PING.CONNZ"] = await ask(app, "$SYS.REQ.SERVER.PING.CONNZ")
        out["APP.ACCOUNT.PING.CONNZ"] = await ask(app, "$SYS.REQ.ACCOUNT.PING.CONNZ")
    finally:
        await app.close()
        await sysc.close()
    return out


def test_answers_have_the_reference_shape(start_server):
    ref = run(_scenario, start_server("reference", config=CONFIG))
    act = run(_scenario, start_server("actor", config=CONFIG))
    assert ref.keys() == act.keys()
    diffs = []
    for name in ref:
        allowed = _allowed(name)
        diffs += shape_differences(json_shape(ref[name]), json_shape(act[name]), name, allowed)
    assert not diffs, "\n".join(diffs)


# -- behaviour, on both servers --------------------------------------------------------------

@pytest.fixture
def srv(impl, start_server):
    return start_server(impl, config=CONFIG)


def test_ping_varz_is_this_servers_varz(srv):
    async def go():
        async with await sys_conn(srv) as nc:
            sid = await server_id(nc)
            answer = await ask(nc, "$SYS.REQ.SERVER.PING.VARZ", b"{}")
            assert answer["server"]["id"] == sid
            assert answer["data"]["server_id"] == sid
            assert answer["data"]["port"] == srv.port
            assert answer["data"]["system_account"] == "SYS"
            direct = await ask(nc, f"$SYS.REQ.SERVER.{sid}.VARZ")
            assert direct["data"]["server_id"] == sid
            statsz = await ask(nc, "$SYS.REQ.SERVER.PING")
            assert statsz["statsz"]["connections"] >= 1
            seqs = [answer["server"]["seq"], direct["server"]["seq"], statsz["server"]["seq"]]
            assert seqs == sorted(seqs) and len(set(seqs)) == 3
    run(go)


def test_filters_that_do_not_match_get_no_answer(srv):
    async def go():
        async with await sys_conn(srv) as nc:
            varz = (await ask(nc, "$SYS.REQ.SERVER.PING.VARZ"))["data"]
            for body in ({"server_name": "nope"}, {"cluster": "nope"}, {"tags": ["nope"]},
                         {"domain": "nope"}, {"host": "10.9.8.7"}):
                assert await no_answer(nc, "$SYS.REQ.SERVER.PING.VARZ", body), body
            hit = await ask(nc, "$SYS.REQ.SERVER.PING.VARZ",
                            {"server_name": varz["server_name"], "host": srv.host})
            assert hit["data"]["server_id"] == varz["server_id"]
    run(go)


def test_endpoint_options_and_errors(srv):
    async def go():
        async with await sys_conn(srv) as nc, await app_conn(srv, name="appc") as app:
            await app.subscribe("foo.>")
            await app.flush()
            sid = await server_id(nc)
            connz = await ask(nc, f"$SYS.REQ.SERVER.{sid}.CONNZ", {"subscriptions": True, "acc": "APP"})
            conns = connz["data"]["connections"]
            assert [c.get("name") for c in conns] == ["appc"]
            assert "foo.>" in conns[0]["subscriptions_list"]
            subsz = await ask(nc, f"$SYS.REQ.SERVER.{sid}.SUBSZ", {"subscriptions": True, "test": "foo.x"})
            assert [s["subject"] for s in subsz["data"]["subscriptions_list"]] == ["foo.>"]
            bad = await ask(nc, f"$SYS.REQ.SERVER.{sid}.CONNZ", {"sort": "nope"})
            assert bad["data"] is None
            assert bad["error"] == {"code": 500, "description": "invalid sorting option: nope"}
            bad = await ask(nc, f"$SYS.REQ.SERVER.{sid}.CONNZ", b"{bad")
            assert bad["error"]["code"] == 400 and "data" not in bad
            health = await ask(nc, f"$SYS.REQ.SERVER.{sid}.HEALTHZ")
            assert health["data"] == {"status": "ok", "status_code": 200}
            assert await no_answer(nc, f"$SYS.REQ.SERVER.{sid}.NOPE")
    run(go)


def test_kick_closes_that_client(srv):
    async def go():
        async with await sys_conn(srv) as nc:
            victim = await app_conn(srv, name="victim")
            sid = await server_id(nc)
            conns = (await ask(nc, f"$SYS.REQ.SERVER.{sid}.CONNZ", {"acc": "APP"}))["data"]["connections"]
            cid = next(c["cid"] for c in conns if c.get("name") == "victim")
            kicked = await ask(nc, f"$SYS.REQ.SERVER.{sid}.KICK", {"cid": cid})
            assert "error" not in kicked and kicked["server"]["id"] == sid
            for _ in range(200):
                if victim.is_closed:
                    break
                await asyncio.sleep(0.05)
            assert victim.is_closed
            closed = (await ask(nc, f"$SYS.REQ.SERVER.{sid}.CONNZ", {"state": 1, "cid": cid}))["data"]
            assert closed["connections"][0]["reason"] == "Kicked"
            none = await ask(nc, f"$SYS.REQ.SERVER.{sid}.KICK", {"cid": 99999})
            assert none["error"] == {"code": 500, "description": "no such client or leafnode id"}
            assert await no_answer(nc, f"$SYS.REQ.SERVER.{sid}.KICK")  # no body: no answer
    run(go)


def test_ldm_sends_that_client_the_lame_duck_info(srv):
    w = client(srv, user="app", **{"pass": "app"}, protocol=1)

    async def go():
        async with await sys_conn(srv) as nc:
            sid = await server_id(nc)
            cid = w.info["client_id"]
            answer = await ask(nc, f"$SYS.REQ.SERVER.{sid}.LDM", {"cid": cid})
            assert "error" not in answer
            none = await ask(nc, f"$SYS.REQ.SERVER.{sid}.LDM", {"cid": 99999})
            assert none["error"] == {"code": 500, "description": "no such client id"}
    run(go)
    info = w.expect_op("INFO").info
    assert info.get("ldm") is True


def test_reload_answers_like_sighup(srv):
    async def go():
        async with await sys_conn(srv) as nc:
            sid = await server_id(nc)
            answer = await ask(nc, f"$SYS.REQ.SERVER.{sid}.RELOAD")
            assert set(answer) == {"server"}
    run(go)
    assert "Reloaded server configuration" in srv.log()


def test_account_requests_see_one_account(srv):
    async def go():
        async with await sys_conn(srv, name="sysc") as nc, await app_conn(srv, name="appc") as app:
            await app.subscribe("foo")
            await app.flush()
            connz = await ask(nc, "$SYS.REQ.ACCOUNT.APP.CONNZ")
            assert [c.get("name") for c in connz["data"]["connections"]] == ["appc"]
            info = await ask(nc, "$SYS.REQ.ACCOUNT.APP.INFO")
            assert info["data"]["account_name"] == "APP"
            assert info["data"]["client_connections"] == 1
            statz = await ask(nc, "$SYS.REQ.ACCOUNT.APP.STATZ")
            assert [a["acc"] for a in statz["data"]["account_statz"]] == ["APP"]
            none = await ask(nc, "$SYS.REQ.ACCOUNT.NOPE.INFO")
            assert none["error"] == {"code": 500, "description": "Account NOPE does not exist"}
            me = await ask(nc, "$SYS.REQ.USER.INFO")
            assert me["data"]["user"] == "sys" and me["data"]["account"] == "SYS"
            # what every account gets: about itself only
            me = await ask(app, "$SYS.REQ.USER.INFO")
            assert me["data"]["user"] == "app" and me["data"]["account"] == "APP"
            own = await ask(app, "$SYS.REQ.SERVER.PING.CONNZ")
            assert [c.get("name") for c in own["data"]["connections"]] == ["appc"]
            # and nothing else of $SYS
            assert await no_answer(app, "$SYS.REQ.SERVER.PING")
            assert await no_answer(app, "$SYS.REQ.SERVER.PING.VARZ")
    run(go)


# -- actor-nats' own ---------------------------------------------------------------------------

def test_kill_crashes_an_actor_from_the_system_account(start_server):
    srv = start_server("actor", config=CONFIG)

    async def go():
        async with await sys_conn(srv) as nc:
            sid = await server_id(nc)
            answer = await ask(nc, f"$SYS.REQ.SERVER.{sid}.KILL",
                               {"path": "/server/listener", "reason": "chaos test"})
            assert answer["data"] == {"killed": "/server/listener", "reason": "chaos test"}
            missing = await ask(nc, f"$SYS.REQ.SERVER.{sid}.KILL", {"path": "/nope"})
            assert missing["error"]["code"] == 404
            # the System actor itself: it answers, then restarts and answers again
            answer = await ask(nc, f"$SYS.REQ.SERVER.{sid}.KILL", {"path": "/server/system"})
            assert answer["data"]["killed"] == "/server/system"
            for _ in range(100):
                try:
                    if (await ask(nc, "$SYS.REQ.SERVER.PING.IDZ", timeout=0.5))["id"] == sid:
                        break
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the System actor did not come back")
        # a new connection still gets in through the restarted listener
        async with await app_conn(srv) as app:
            await app.flush()
    run(go)
    assert "Killing actor /server/listener on a $SYS request: chaos test" in srv.log()
