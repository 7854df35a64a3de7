"""Kill the actors that serve NATS traffic from inside the server: the System actor ($SYS
requests) and the JetStream API actor ($JS.API). Each is restarted by its supervisor,
subscribes again, and answers again; no client is disconnected, and a stream's data is
untouched by an API actor restart.
"""

from __future__ import annotations

import json

import nats

from tests.chaos.helpers import KILL_CONFIG, connect_watched
from tests.interop.helpers import TIMEOUT, Clients, run

SYS_CONFIG = KILL_CONFIG + """
accounts {
  APP: { users: [{user: app, password: app}], jetstream: enabled }
  SYS: { users: [{user: sys, password: sys}] }
}
system_account: SYS
"""


async def _request_until_answered(nc, subject: str, body: bytes = b"", tries: int = 200):
    """A restarted internal actor subscribes again asynchronously: retry until it answers."""
    for _ in range(tries):
        try:
            return await nc.request(subject, body, timeout=0.25)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            continue
    raise AssertionError(f"{subject} never answered")


def test_kill_system_and_jetstream_api_actors(chaos, tmp_path):
    srv = chaos(config=SYS_CONFIG, args=["-js", "-sd", str(tmp_path)])
    host, port = srv.server.host, srv.server.port

    async def main():
        async with Clients(f"nats://app:app@{host}:{port}") as clients:
            app, w_app = await connect_watched(clients, "app", url=f"nats://app:app@{host}:{port}")
            sys_nc, w_sys = await connect_watched(clients, "sys", url=f"nats://sys:sys@{host}:{port}")
            js = app.jetstream()
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            for i in range(20):
                await js.publish("keep.x", str(i).encode())

            before = await srv.actorz()
            for i in range(3):
                await srv.kill_and_wait("/server/system", f"chaos round {i}")
                r = await _request_until_answered(sys_nc, "$SYS.REQ.SERVER.PING.VARZ", b"{}")
                assert json.loads(r.data)["data"]["server_id"]

                await srv.kill_and_wait("/server/jetstream/api", f"chaos round {i}")
                r = await _request_until_answered(app, "$JS.API.STREAM.INFO.KEEP")
                info = json.loads(r.data)
                assert info["state"]["messages"] == 20 + i, info
                ack = await js.publish("keep.x", b"after", timeout=TIMEOUT)  # streams never stopped
                assert ack.stream == "KEEP"
            after = await srv.actorz()
            assert after["/server/system"]["restarts"] == before["/server/system"]["restarts"] + 3
            assert after["/server/jetstream/api"]["restarts"] == before["/server/jetstream/api"]["restarts"] + 3
            assert w_app.disconnects == 0 and w_sys.disconnects == 0

    run(main, timeout=TIMEOUT * 12)
    assert srv.server.proc.poll() is None
