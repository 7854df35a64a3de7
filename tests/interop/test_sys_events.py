"""`$SYS` events: what a subscriber in the system account sees, with nats-py.

CONNECT/DISCONNECT advisories, the account connection counts, AUTH.ERR, the periodic STATSZ,
LAMEDUCK and SHUTDOWN: the shape test runs one scenario on actor-nats and on the reference and
compares each event's JSON keys and types; behaviour tests run on both servers (values, and that
no other account sees any of it). The slow-consumer advisory is actor-nats' own.
"""

from __future__ import annotations

import asyncio
import json
import signal

import nats

from tests.interop.helpers import TIMEOUT, eventually, run
from tests.wire.proto import client, pub
from tests.wire.test_monitoring import json_shape, shape_differences
from tests.wire.test_sys_requests import CONFIG, app_conn, sys_conn

ALLOWED = {"server.feature_flags": "the reference's JetStream rollout switches"}


class Events:
    """Every `$SYS` event a system-account subscriber got, by subject."""

    def __init__(self):
        self.got: list[tuple[str, dict]] = []

    async def cb(self, msg):
        if not msg.subject.startswith("$SYS.REQ."):
            self.got.append((msg.subject, json.loads(msg.data)))

    def of(self, suffix: str) -> list[dict]:
        return [d for s, d in self.got if s.endswith(suffix)]

    async def wait(self, suffix: str, count: int = 1, timeout: float = TIMEOUT) -> list[dict]:
        await eventually(lambda: len(self.of(suffix)) >= count, timeout, what=suffix)
        return self.of(suffix)


async def _bad_login(srv) -> None:
    try:
        await nats.connect(f"nats://app:wrong@{srv.host}:{srv.port}", allow_reconnect=False,
                           max_reconnect_attempts=0)
    except Exception:
        pass


# -- shapes, side by side with the reference -------------------------------------------------

async def _scenario(srv) -> dict:
    ev = Events()
    async with await sys_conn(srv) as nc:
        await nc.subscribe("$SYS.>", cb=ev.cb)
        await nc.flush()
        app = await app_conn(srv, name="appc")
        await app.publish("foo", b"hello")
        await app.flush()
        await app.close()
        await _bad_login(srv)
        out = {}
        for name, suffix in (("CONNECT", ".APP.CONNECT"), ("DISCONNECT", ".APP.DISCONNECT"),
                             ("AUTH.ERR", ".CLIENT.AUTH.ERR"), ("G.DISCONNECT", ".$G.DISCONNECT"),
                             ("CONNS", ".APP.SERVER.CONNS"), ("OLD.CONNS", "ACCOUNT.APP.CONNS")):
            out[name] = (await ev.wait(suffix))[0]
        out["STATSZ"] = (await ev.wait(".STATSZ", timeout=25))[0]
    return out


def test_events_have_the_reference_shape(start_server):
    ref = run(_scenario, start_server("reference", config=CONFIG))
    act = run(_scenario, start_server("actor", config=CONFIG))
    diffs = []
    for name in ref:
        allowed = {f"{name}.{k}" for k in ALLOWED}
        diffs += shape_differences(json_shape(ref[name]), json_shape(act[name]), name, allowed)
    assert not diffs, "\n".join(diffs)


# -- behaviour, on both servers --------------------------------------------------------------

def test_connect_and_disconnect_events(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def go():
        ev = Events()
        async with await sys_conn(srv) as nc:
            await nc.subscribe("$SYS.ACCOUNT.>", cb=ev.cb)
            await nc.flush()
            sid = (json.loads((await nc.request("$SYS.REQ.SERVER.PING.IDZ", b"")).data))["id"]
            app = await app_conn(srv, name="appc")
            for _ in range(3):
                await app.publish("foo", b"hello")
            await app.flush()
            await app.close()
            connect = (await ev.wait("$SYS.ACCOUNT.APP.CONNECT"))[0]
            assert connect["type"] == "io.nats.server.advisory.v1.client_connect"
            assert connect["server"]["id"] == sid
            c = connect["client"]
            assert (c["acc"], c["user"], c["name"], c["kind"], c["client_type"]) == \
                ("APP", "app", "appc", "Client", "nats")
            assert c["lang"] == "python3" and c["name_tag"] == "APP"
            gone = (await ev.wait("$SYS.ACCOUNT.APP.DISCONNECT"))[0]
            assert gone["type"] == "io.nats.server.advisory.v1.client_disconnect"
            assert gone["client"]["id"] == c["id"] and "stop" in gone["client"]
            assert gone["sent"] == {"msgs": 3, "bytes": 15}
            assert gone["reason"] == "Client Closed"
            assert gone["server"]["seq"] > connect["server"]["seq"]
    run(go)


def test_auth_error_event(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def go():
        ev = Events()
        async with await sys_conn(srv) as nc:
            await nc.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR", cb=ev.cb)
            await nc.flush()
            await _bad_login(srv)
            err = (await ev.wait(".CLIENT.AUTH.ERR"))[0]
            assert err["reason"] == "Authentication Failure"
            assert err["client"]["user"] == "app"
    run(go)


def test_other_accounts_never_see_sys_traffic(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def go():
        sys_ev, app_ev = Events(), Events()
        async with await sys_conn(srv) as nc, await app_conn(srv) as spy:
            await nc.subscribe("$SYS.>", cb=sys_ev.cb)
            await spy.subscribe("$SYS.>", cb=app_ev.cb)
            await spy.subscribe(">", cb=app_ev.cb)
            await nc.flush()
            await spy.flush()
            other = await app_conn(srv)
            await other.close()
            await sys_ev.wait(".APP.DISCONNECT")
            await nc.request("$SYS.REQ.SERVER.PING", b"")
            await asyncio.sleep(0.3)
            assert app_ev.got == []
    run(go)


def test_periodic_statsz(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def go():
        ev = Events()
        async with await sys_conn(srv) as nc:
            await nc.subscribe("$SYS.SERVER.*.STATSZ", cb=ev.cb)
            await nc.flush()
            got = (await ev.wait(".STATSZ", timeout=25))[0]
            assert got["statsz"]["connections"] >= 1
            assert got["statsz"]["total_connections"] >= 1
    run(go)


def test_lame_duck_and_shutdown_events(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def ldm():
        ev = Events()
        nc = await sys_conn(srv, max_reconnect_attempts=0)
        await nc.subscribe("$SYS.SERVER.*.LAMEDUCK", cb=ev.cb)
        await nc.flush()
        sid = json.loads((await nc.request("$SYS.REQ.SERVER.PING.IDZ", b"")).data)["id"]
        srv.signal(signal.SIGUSR2)
        got = (await ev.wait(".LAMEDUCK"))[0]
        assert got["id"] == sid and "seq" in got
        await nc.close()
    run(ldm)
    srv.proc.kill()  # lame duck mode runs for lame_duck_duration; no need to wait for it

    srv = start_server(impl, config=CONFIG)

    async def shutdown():
        ev = Events()
        nc = await sys_conn(srv, max_reconnect_attempts=0)
        await nc.subscribe("$SYS.SERVER.*.SHUTDOWN", cb=ev.cb)
        await nc.flush()
        srv.signal(signal.SIGTERM)
        got = (await ev.wait(".SHUTDOWN"))[0]
        assert set(got) >= {"name", "host", "id", "ver", "jetstream", "flags", "seq", "time"}
        await nc.close()
    run(shutdown)


# -- actor-nats' own ---------------------------------------------------------------------------

SLOW_CONFIG = CONFIG + 'max_pending: 100000\nmax_payload: 65536\nwrite_deadline: "2s"\n'


def test_slow_consumer_advisory_names_the_connection(start_server):
    srv = start_server("actor", config=SLOW_CONFIG)

    async def go():
        ev = Events()
        async with await sys_conn(srv) as nc:
            await nc.subscribe("$SYS.SERVER.*.CLIENT.SLOW_CONSUMER", cb=ev.cb)
            await nc.flush()
            slow = client(srv, rcvbuf=65536, user="app", name="slowpoke", **{"pass": "app"})
            assert slow.roundtrip(b"SUB flood 1\r\n") == []
            fast = client(srv, user="app", **{"pass": "app"})
            fast.send(pub("flood", b"x" * 10_000) * 1200)
            got = (await ev.wait(".CLIENT.SLOW_CONSUMER", timeout=30))[0]
            assert got["type"] == "io.actor-nats.advisory.v1.slow_consumer"
            assert got["client"]["name"] == "slowpoke" and got["client"]["acc"] == "APP"
            assert got["client"]["id"] == slow.info["client_id"]
            assert got["reason"].startswith("Slow Consumer")
            assert got["pending_bytes"] > 0 and got["max_pending"] == 100000
            assert "stop" in got["client"]
    run(go)
