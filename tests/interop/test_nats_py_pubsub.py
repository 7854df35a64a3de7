"""nats-py against a running server: connecting, publish/subscribe, wildcards, echo, and the
verbose/pedantic connection options.

Every test runs against each selected implementation through the `server` fixture.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.interop.helpers import (
    Clients, eventually, flush, next_msgs, run, sync_point, unique, TIMEOUT,
)


def test_connect_reports_server_info(server):
    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect()
            other = await clients.connect()
            assert nc.is_connected
            assert nc.connected_url is not None
            assert nc.connected_url.hostname == "127.0.0.1"
            assert nc.connected_url.port == server.port
            assert nc.max_payload == 1024 * 1024
            assert isinstance(nc.client_id, int) and nc.client_id > 0
            assert isinstance(other.client_id, int) and other.client_id > 0
            assert nc.client_id != other.client_id
            version = nc.connected_server_version
            assert version.major >= 2, f"server version {version} too old for headers"
            # The PING/PONG round trip works and the connection stays up.
            await nc.flush(timeout=TIMEOUT)
            assert nc.is_connected
        assert nc.is_closed and other.is_closed

    run(main)


def test_publish_subscribe_with_callback(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("cb.")
            received = []
            done = asyncio.Event()

            async def cb(msg):
                received.append((msg.subject, msg.reply, msg.data))
                if len(received) == 10:
                    done.set()

            await sub_nc.subscribe(subject, cb=cb)
            await flush(sub_nc)
            for i in range(10):
                await pub_nc.publish(subject, f"msg-{i}".encode())
            await pub_nc.publish(subject + ".other", b"not for us")
            await flush(pub_nc)
            await asyncio.wait_for(done.wait(), TIMEOUT)
            await sync_point(pub_nc, sub_nc)
            # In order, exactly once, with no reply subject.
            assert received == [(subject, "", f"msg-{i}".encode()) for i in range(10)]

    run(main)


def test_publish_subscribe_with_next_msg_and_reply_subject(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            subject = unique("nm.")
            sub = await sub_nc.subscribe(subject)
            await flush(sub_nc)
            await pub_nc.publish(subject, b"hello", reply="the.reply.subject")
            await pub_nc.publish(subject, b"world")
            await flush(pub_nc)
            first, second = await next_msgs(sub, 2)
            assert (first.subject, first.reply, first.data) == \
                (subject, "the.reply.subject", b"hello")
            assert (second.subject, second.reply, second.data) == (subject, "", b"world")
            assert sub.delivered == 2

    run(main)


def test_subscriber_on_same_connection_sees_messages_after_flush(server):
    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect()
            subject = unique("self.")
            sub = await nc.subscribe(subject)
            await nc.publish(subject, b"one")
            await nc.flush(timeout=TIMEOUT)
            msg = await sub.next_msg(timeout=TIMEOUT)
            assert msg.data == b"one"

    run(main)


def test_wildcard_star_matches_exactly_one_token(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            root = unique("star")
            sub = await sub_nc.subscribe(f"{root}.*.end")
            await flush(sub_nc)
            for subject in (f"{root}.a.end", f"{root}.a.b.end", f"{root}.end",
                            f"{root}.b.end.more", f"{root}.b.end"):
                await pub_nc.publish(subject, subject.encode())
            await flush(pub_nc)
            await sync_point(pub_nc, sub_nc)
            got = [m.subject for m in await next_msgs(sub, sub.pending_msgs)]
            assert got == [f"{root}.a.end", f"{root}.b.end"]

    run(main)


def test_wildcard_full_matches_one_or_more_tokens(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            root = unique("full")
            sub = await sub_nc.subscribe(f"{root}.>")
            await flush(sub_nc)
            subjects = [root, f"{root}.a", f"{root}.a.b", f"{root}.a.b.c", f"{root}x.a",
                        f"other.{root}.a"]
            for subject in subjects:
                await pub_nc.publish(subject, subject.encode())
            await flush(pub_nc)
            await sync_point(pub_nc, sub_nc)
            got = [(m.subject, m.data) for m in await next_msgs(sub, sub.pending_msgs)]
            expected = [f"{root}.a", f"{root}.a.b", f"{root}.a.b.c"]
            assert got == [(s, s.encode()) for s in expected]

    run(main)


def test_overlapping_subscriptions_each_get_a_copy(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect()
            root = unique("ovl")
            literal = await sub_nc.subscribe(f"{root}.x.y")
            star = await sub_nc.subscribe(f"{root}.*.y")
            full = await sub_nc.subscribe(f"{root}.>")
            await flush(sub_nc)
            await pub_nc.publish(f"{root}.x.y", b"payload")
            await flush(pub_nc)
            await sync_point(pub_nc, sub_nc)
            for sub in (literal, star, full):
                assert sub.pending_msgs == 1
                msg = await sub.next_msg(timeout=TIMEOUT)
                assert (msg.subject, msg.data) == (f"{root}.x.y", b"payload")

    run(main)


def test_no_echo_connection_does_not_receive_its_own_messages(server):
    async def main():
        async with Clients(server.url) as clients:
            quiet = await clients.connect(no_echo=True)
            other = await clients.connect()
            subject = unique("echo.")
            quiet_sub = await quiet.subscribe(subject)
            other_sub = await other.subscribe(subject)
            await flush(quiet)
            await flush(other)

            await quiet.publish(subject, b"from-quiet")
            await flush(quiet)
            # The other connection gets it; only then does it publish its own message, which
            # the no_echo connection must receive (and it must be the first thing it sees).
            msg = await other_sub.next_msg(timeout=TIMEOUT)
            assert msg.data == b"from-quiet"
            await other.publish(subject, b"from-other")
            await flush(other)
            msg = await quiet_sub.next_msg(timeout=TIMEOUT)
            assert msg.data == b"from-other"
            # The other connection (echo on) also hears itself.
            msg = await other_sub.next_msg(timeout=TIMEOUT)
            assert msg.data == b"from-other"

            await quiet.publish(subject, b"from-quiet-2")
            await sync_point(quiet, other)
            assert (await other_sub.next_msg(timeout=TIMEOUT)).data == b"from-quiet-2"
            await sync_point(other, quiet)
            assert quiet_sub.pending_msgs == 0
            assert quiet.stats["in_msgs"] == 1 + 1  # from-other, plus one sync marker

    run(main)


@pytest.mark.parametrize("options", [
    {"verbose": True},
    {"pedantic": True},
    {"verbose": True, "pedantic": True},
], ids=["verbose", "pedantic", "verbose+pedantic"])
def test_verbose_and_pedantic_clients_work(server, options):
    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect(**options)
            plain = await clients.connect()
            root = unique("vp")
            own = await nc.subscribe(f"{root}.>")
            queue = await nc.subscribe(f"{root}.q", queue="workers")
            await flush(nc)
            for i in range(5):
                await nc.publish(f"{root}.q", f"{i}".encode(), headers={"N": str(i)})
            await plain.publish(f"{root}.q", b"plain")
            await flush(nc)
            await flush(plain)
            got = await next_msgs(own, 6)
            assert sorted(m.data for m in got) == [b"0", b"1", b"2", b"3", b"4", b"plain"]
            queued = await next_msgs(queue, 6)
            assert [m.headers for m in queued if m.data != b"plain"] == [
                {"N": str(i)} for i in range(5)]

            # Requests and unsubscribes work too, and the connection never saw an error.
            async def responder(msg):
                await nc.publish(msg.reply, b"re:" + msg.data)

            await nc.subscribe(f"{root}.svc", cb=responder)
            await flush(nc)
            reply = await plain.request(f"{root}.svc", b"ping", timeout=TIMEOUT)
            assert reply.data == b"re:ping"
            reply = await nc.request(f"{root}.svc", b"self", timeout=TIMEOUT)
            assert reply.data == b"re:self"
            await queue.unsubscribe()
            await flush(nc)
            assert nc.is_connected
            assert nc.last_error is None

    run(main)


def test_pedantic_server_rejects_wildcard_publish_subject(server):
    """With pedantic on, the server itself checks subjects: the client's own check is off
    here so the bad PUB reaches the server, which must answer with -ERR."""

    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect(pedantic=True, skip_subject_validation=True,
                                       expect_errors=True)
            await nc.publish(unique("ped.") + ".*", b"x")
            # nats-py closes its connection on any -ERR; wait for that and look at why.
            await eventually(lambda: nc.last_error is not None, what="-ERR from the server")
            assert "invalid publish subject" in str(nc.last_error).lower()

    run(main)
