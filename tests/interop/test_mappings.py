"""Subject mappings with nats-py, as applications use them: a request to an old subject name
answered by a service on the new one (the reply inbox is not mapped), a versioned service
split by weight, JetStream publishes through a mapping, no-responders through a mapping, and
the mappings of an account JWT (operator mode), updated by a push. Both servers."""

from __future__ import annotations

import asyncio

import pytest
from nats.errors import NoRespondersError

from tests.interop.helpers import Clients, flush, run, TIMEOUT

CONFIG = """
mappings {
  "svc.legacy.*": "svc.v2.$1"
  "svc.canary": [{destination: svc.canary.v1, weight: 50%}, {destination: svc.canary.v2, weight: 50%}]
  "orders.new": "orders.in.new"
  "nobody": "nobody.home"
}
"""


def test_request_reply_through_a_mapping(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def main():
        async with Clients(srv.url) as clients:
            service = await clients.connect()
            requester = await clients.connect()
            seen = []

            async def answer(msg):
                seen.append(msg)
                await service.publish(msg.reply, b"v2:" + msg.data)

            await service.subscribe("svc.v2.*", cb=answer)
            await flush(service)
            for old_style in (False, True):
                reply = await requester.request("svc.legacy.lookup", b"42", timeout=TIMEOUT,
                                                old_style=old_style)
                assert reply.data == b"v2:42"
            assert [m.subject for m in seen] == ["svc.v2.lookup", "svc.v2.lookup"]
            assert all(m.reply.startswith("_INBOX.") for m in seen)

    run(main)


def test_weighted_service_versions_both_answer(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def main():
        async with Clients(srv.url) as clients:
            v1 = await clients.connect()
            v2 = await clients.connect()
            requester = await clients.connect()
            for nc, name in ((v1, b"v1"), (v2, b"v2")):
                async def cb(msg, nc=nc, name=name):
                    await nc.publish(msg.reply, name)
                await nc.subscribe(f"svc.canary.{name.decode()}", cb=cb)
                await flush(nc)
            answers = {(await requester.request("svc.canary", b"", timeout=TIMEOUT)).data
                       for _ in range(100)}
            assert answers == {b"v1", b"v2"}

    run(main)


def test_no_responders_through_a_mapping(impl, start_server):
    srv = start_server(impl, config=CONFIG)

    async def main():
        async with Clients(srv.url) as clients:
            requester = await clients.connect()
            with pytest.raises(NoRespondersError):
                await requester.request("nobody", b"", timeout=TIMEOUT)

    run(main)


def test_jetstream_publish_through_a_mapping(impl, start_server, tmp_path):
    srv = start_server(impl, config=CONFIG, args=["-js", "-sd", str(tmp_path)])

    async def main():
        async with Clients(srv.url) as clients:
            nc = await clients.connect()
            js = nc.jetstream()
            await js.add_stream(name="ORDERS", subjects=["orders.in.>"])
            ack = await js.publish("orders.new", b"o1")
            assert (ack.stream, ack.seq) == ("ORDERS", 1)
            msg = await js.get_msg("ORDERS", 1)
            assert msg.subject == "orders.in.new" and msg.data == b"o1"

    run(main)


# --- operator mode: mappings from the account JWT ----------------------------------------------

def test_account_jwt_mappings_apply_and_update_on_push(impl, start_server, tmp_path):
    from actor_nats import nsc

    store = nsc.Store(tmp_path / "nsc")
    nsc.init(store)
    nsc.add_account(store, "A")
    nsc.add_user(store, "A", "u")
    nsc.resign_account(store, "A", mappings={"foo": [{"subject": "bar", "weight": 100}]})
    (tmp_path / "jwt").mkdir()
    (tmp_path / "server.conf").write_text(nsc.resolver_config(store, str(tmp_path / "jwt")))
    srv = start_server(impl, args=["-c", str(tmp_path / "server.conf")])
    for r in nsc.push(store, ["A"], srv.url):
        assert r["data"]["message"] == "jwt updated", r
    creds = str(store.user_path("A", "u", "creds"))

    async def main():
        async with Clients(srv.url) as clients:
            nc = await clients.connect(user_credentials=creds)
            sub = await nc.subscribe(">")
            await flush(nc)

            async def lands_on(subject):
                """Publish foo until it arrives on `subject` (the reference applies a pushed
                account update asynchronously)."""
                for _ in range(50):
                    await nc.publish("foo", b"x")
                    msg = await sub.next_msg(timeout=TIMEOUT)
                    if msg.subject == subject:
                        return
                    await asyncio.sleep(0.1)
                raise AssertionError(f"foo never mapped to {subject}")

            await lands_on("bar")
            nsc.resign_account(store, "A", mappings={"foo": [{"subject": "baz"}]})  # weight 0: 100
            await nsc._push_async(srv.url, str(store.user_path(store.system_account_name(),
                                  store.users(store.system_account_name())[0], "creds")),
                                  [store.account("A")[1].token], TIMEOUT)
            await lands_on("baz")  # the same connection, with the new mapping

    run(main)
