"""Kill the Accounts actor (the one that carries stream and service imports between accounts)
while clients of two accounts keep using the imports: it is restarted by the root, subscribes
its imports again, and both imports deliver afterwards; no connection is disconnected, and the
isolation between the accounts holds throughout.
"""

from __future__ import annotations

from tests.chaos.helpers import KILL_CONFIG, connect_watched
from tests.interop.helpers import TIMEOUT, Clients, flush, run

CONFIG = KILL_CONFIG + """
accounts {
  A: { users: [{user: a, password: a}], exports: [{stream: "events.>"}, {service: "svc"}] }
  B: { users: [{user: b, password: b}],
       imports: [{stream: {account: A, subject: "events.>"}, prefix: "a"},
                 {service: {account: A, subject: "svc"}, to: "ask"}] }
}
"""


def test_kill_accounts_actor_imports_come_back(chaos):
    srv = chaos(config=CONFIG)
    host, port = srv.server.host, srv.server.port

    async def main():
        async with Clients(f"nats://a:a@{host}:{port}") as clients:
            a, w_a = await connect_watched(clients, "a", url=f"nats://a:a@{host}:{port}")
            b, w_b = await connect_watched(clients, "b", url=f"nats://b:b@{host}:{port}")

            async def svc(msg):
                await msg.respond(b"ok:" + msg.data)

            await a.subscribe("svc", cb=svc)
            stream = await b.subscribe("a.events.>")
            leak = await b.subscribe("events.>")  # B never sees A's subjects under their own name
            await flush(a)
            await flush(b)

            async def both_imports_work(tag: str) -> None:
                # after a restart the imports are subscribed again asynchronously: retry
                for _ in range(200):
                    try:
                        r = await b.request("ask", tag.encode(), timeout=0.25)
                        break
                    except Exception:
                        continue
                else:
                    raise AssertionError(f"service import never answered after {tag}")
                assert r.data == b"ok:" + tag.encode()
                while True:
                    await a.publish("events.x", tag.encode())
                    await flush(a)
                    try:
                        m = await stream.next_msg(timeout=0.25)
                    except Exception:
                        continue
                    if m.data == tag.encode():
                        assert m.subject == "a.events.x"
                        break

            await both_imports_work("before")
            before = (await srv.actorz())["/server/accounts"]["restarts"]
            for i in range(3):
                await srv.kill_and_wait("/server/accounts", f"chaos round {i}")
                await both_imports_work(f"round{i}")
            after = await srv.actorz()
            assert after["/server/accounts"]["restarts"] == before + 3
            assert w_a.disconnects == 0 and w_b.disconnects == 0
            try:
                m = await leak.next_msg(timeout=0.3)
            except Exception:
                m = None
            assert m is None, f"B saw A's subject {m.subject}"

    run(main, timeout=TIMEOUT * 12)
    assert srv.server.proc.poll() is None
