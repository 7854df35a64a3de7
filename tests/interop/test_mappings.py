"""Subject mappings with nats-py, as applications use them: a request to an old subject name
answered by a service on the new one (the reply inbox is not mapped), a versioned service
split by weight, JetStream publishes through a mapping, and no-responders through a mapping.
Both servers."""

from __future__ import annotations

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
