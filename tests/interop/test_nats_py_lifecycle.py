"""nats-py against a running server: the life of subscriptions and connections —
auto-unsubscribe, draining, and reconnecting to a restarted server on the same port."""

from __future__ import annotations

import asyncio

import pytest
from nats.errors import NoRespondersError

from tests.interop.helpers import (
    Clients, eventually, flush, next_msgs, run, settle, sync_point, unique, wait_event, TIMEOUT,
)


async def assert_no_interest(clients, subject):
    """The server knows nobody listens on `subject`: a request gets no-responders at once."""
    probe = await clients.connect()
    with pytest.raises(NoRespondersError):
        await probe.request(subject, b"anyone?", timeout=TIMEOUT)


def replier(nc, prefix):
    async def cb(msg):
        await nc.publish(msg.reply, prefix + msg.data)
    return cb


# --- auto-unsubscribe ----------------------------------------------------------------------

def test_unsubscribe_with_limit_stops_delivery_at_the_server(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("limit.")
            sub = await sub_nc.subscribe(subject)
            await sub.unsubscribe(limit=3)
            await flush(sub_nc)
            for i in range(10):
                await pub_nc.publish(subject, f"{i}".encode())
            await sync_point(pub_nc, sub_nc)
            assert [m.data for m in await next_msgs(sub, 3)] == [b"0", b"1", b"2"]
            # The server itself stopped after 3: nats-py counts every MSG it reads, even
            # ones for subscriptions it has already dropped.
            assert sub_nc.stats["in_msgs"] == 3 + 1  # plus the sync marker
            await assert_no_interest(clients, subject)

    run(main)


def test_unsubscribe_with_limit_after_some_messages(server):
    """The limit counts messages already delivered: UNSUB 5 after 2 leaves 3 more."""

    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("later.")
            sub = await sub_nc.subscribe(subject)
            await flush(sub_nc)
            await pub_nc.publish(subject, b"a")
            await pub_nc.publish(subject, b"b")
            assert [m.data for m in await next_msgs(sub, 2)] == [b"a", b"b"]
            await sub.unsubscribe(limit=5)
            await flush(sub_nc)
            for i in range(10):
                await pub_nc.publish(subject, f"{i}".encode())
            await sync_point(pub_nc, sub_nc)
            assert [m.data for m in await next_msgs(sub, 3)] == [b"0", b"1", b"2"]
            assert sub_nc.stats["in_msgs"] == 5 + 1
            await assert_no_interest(clients, subject)

    run(main)


def test_unsubscribe_removes_interest(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("gone.")
            sub = await sub_nc.subscribe(subject)
            await flush(sub_nc)
            await pub_nc.publish(subject, b"before")
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"before"
            await sub.unsubscribe()
            await flush(sub_nc)
            await pub_nc.publish(subject, b"after")
            await sync_point(pub_nc, sub_nc)
            assert sub_nc.stats["in_msgs"] == 1 + 1
            await assert_no_interest(clients, subject)

    run(main)


def test_subscribe_with_max_msgs_delivers_exactly_that_many(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("max.")
            got = []

            async def cb(msg):
                got.append(msg.data)

            await sub_nc.subscribe(subject, cb=cb, max_msgs=5)
            await flush(sub_nc)
            for i in range(20):
                await pub_nc.publish(subject, f"{i}".encode())
            await sync_point(pub_nc, sub_nc)
            await eventually(lambda: len(got) >= 5, what="five messages")
            await sync_point(pub_nc, sub_nc)
            assert got == [f"{i}".encode() for i in range(5)]

    run(main)


# --- drain ---------------------------------------------------------------------------------

def test_drain_delivers_own_messages_published_before_it_and_closes(server):
    async def main():
        async with Clients(server.url) as clients:
            closed = asyncio.Event()

            async def closed_cb():
                closed.set()

            nc = await clients.connect(closed_cb=closed_cb)
            subject = unique("drain.")
            got, got_queued = [], []

            def slow(into):
                async def cb(msg):
                    await asyncio.sleep(0.001)
                    into.append(msg.data)
                return cb

            await nc.subscribe(subject, cb=slow(got))
            await nc.subscribe(subject + ".q", queue="g", cb=slow(got_queued))
            await flush(nc)
            sent = [f"{i}".encode() for i in range(200)]
            for p in sent:
                await nc.publish(subject, p)
            await nc.publish(subject + ".q", b"queued")
            # Only wait until nats-py has written them, not for a round trip (see settle).
            await settle(nc)
            await nc.drain()
            assert nc.is_closed
            await wait_event(closed, "closed_cb")
            assert got == sent
            assert got_queued == [b"queued"]
            await assert_no_interest(clients, subject)
            await assert_no_interest(clients, subject + ".q")

    run(main)


def test_drain_processes_messages_from_another_publisher(server):
    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("drain2.")
            got = []
            gate = asyncio.Event()

            async def held(msg):
                await gate.wait()
                got.append(msg.data)

            await nc.subscribe(subject, cb=held)
            await flush(nc)
            sent = [f"{i}".encode() for i in range(300)]
            for p in sent:
                await pub_nc.publish(subject, p)
            await sync_point(pub_nc, nc)
            assert got == []  # all 300 are queued in the client, none processed yet
            drain = asyncio.ensure_future(nc.drain())
            await eventually(lambda: nc.is_draining, what="the drain to start")
            gate.set()
            await asyncio.wait_for(drain, TIMEOUT)
            assert nc.is_closed
            assert got == sent
            await assert_no_interest(clients, subject)
            assert pub_nc.is_connected

    run(main)


def test_subscription_drain_keeps_connection_open(server):
    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("sdrain.")
            sub = await nc.subscribe(subject)
            await flush(nc)
            for i in range(5):
                await pub_nc.publish(subject, f"{i}".encode())
            await sync_point(pub_nc, nc)
            drain = asyncio.ensure_future(sub.drain())
            assert [m.data for m in await next_msgs(sub, 5)] == [f"{i}".encode() for i in range(5)]
            await asyncio.wait_for(drain, TIMEOUT)
            await assert_no_interest(clients, subject)
            assert nc.is_connected
            reply_sub = await nc.subscribe(subject + ".again")
            await flush(nc)
            await pub_nc.publish(subject + ".again", b"still here")
            assert (await reply_sub.next_msg(timeout=TIMEOUT)).data == b"still here"

    run(main)


# --- reconnect -----------------------------------------------------------------------------

def test_client_reconnects_to_restarted_server_and_resubscribes(impl, start_server):
    first = start_server(impl)

    async def main():
        disconnected, reconnected = asyncio.Event(), asyncio.Event()

        async def disconnected_cb():
            disconnected.set()

        async def reconnected_cb():
            reconnected.set()

        async with Clients(first.url) as clients:
            nc = await clients.connect(
                allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                dont_randomize=True, disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb, expect_errors=True)
            root = unique("rc")
            literal = await nc.subscribe(f"{root}.a")
            wildcard = await nc.subscribe(f"{root}.>")
            queue = await nc.subscribe(f"{root}.q", queue="workers")
            limited = await nc.subscribe(f"{root}.lim")
            await limited.unsubscribe(limit=3)
            await nc.subscribe(f"svc.{root}", cb=replier(nc, b"re:"))
            await flush(nc)

            pub = await clients.connect()
            await pub.publish(f"{root}.lim", b"lim-0")
            await pub.publish(f"{root}.a", b"before")
            assert (await literal.next_msg(timeout=TIMEOUT)).data == b"before"
            assert (await limited.next_msg(timeout=TIMEOUT)).data == b"lim-0"
            assert [m.data for m in await next_msgs(wildcard, 2)] == [b"lim-0", b"before"]
            # Sets up nats-py's request mux inbox on the old server.
            assert (await nc.request(f"svc.{root}", b"1", timeout=TIMEOUT)).data == b"re:1"
            await pub.close()

            first.stop()
            await wait_event(disconnected, "disconnected_cb")
            assert not reconnected.is_set()
            # Published while disconnected: nats-py buffers it and sends it on reconnect.
            await nc.publish(f"{root}.a", b"buffered")

            second = start_server(impl, port=first.port)
            await wait_event(reconnected, "reconnected_cb", timeout=30)
            assert nc.is_connected
            assert nc.connected_url.port == first.port
            assert nc.stats["reconnects"] == 1

            pub = await clients.connect(second.url)
            await pub.publish(f"{root}.a", b"after")
            await pub.publish(f"{root}.b.c", b"deep")
            await pub.publish(f"{root}.q", b"work")
            for i in range(1, 6):
                await pub.publish(f"{root}.lim", f"lim-{i}".encode())
            await sync_point(pub, nc)

            assert sorted(m.data for m in await next_msgs(literal, 2)) == [b"after", b"buffered"]
            assert (await queue.next_msg(timeout=TIMEOUT)).data == b"work"
            # The auto-unsubscribe limit was replayed as what was left of it: 2 more.
            assert [m.data for m in await next_msgs(limited, 2)] == [b"lim-1", b"lim-2"]
            assert limited.pending_msgs == 0
            wild = [m.data for m in await next_msgs(wildcard, 9)]
            assert sorted(wild) == sorted([b"after", b"buffered", b"deep", b"work"] +
                                          [f"lim-{i}".encode() for i in range(1, 6)])

            # Requests both ways work over the new server.
            assert (await pub.request(f"svc.{root}", b"2", timeout=TIMEOUT)).data == b"re:2"
            responder = await clients.connect(second.url)
            await responder.subscribe(f"other.{root}", cb=replier(responder, b"ok:"))
            await flush(responder)
            assert (await nc.request(f"other.{root}", b"3", timeout=TIMEOUT)).data == b"ok:3"

    run(main)
