"""nats-py against a running server: request/reply (new-style mux inbox and old-style
per-request inbox), no-responders, and queue groups."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from nats.errors import NoRespondersError

from tests.interop.helpers import (
    Clients, eventually, flush, next_msgs, run, sync_point, unique, TIMEOUT,
)


async def echo_responder(nc, subject, queue="", prefix=b"re:", seen=None):
    """Subscribe `nc` as a responder that answers `prefix + data` (and echoes headers)."""

    async def cb(msg):
        if seen is not None:
            seen.append(msg)
        await nc.publish(msg.reply, prefix + msg.data, headers=msg.headers)

    sub = await nc.subscribe(subject, queue=queue, cb=cb)
    await flush(nc)
    return sub


@pytest.mark.parametrize("old_style", [False, True], ids=["new-style", "old-style"])
def test_request_reply_with_responder_on_another_connection(server, old_style):
    async def main():
        async with Clients(server.url) as clients:
            responder = await clients.connect()
            requester = await clients.connect()
            subject = unique("svc.")
            seen = []
            await echo_responder(responder, subject, seen=seen)

            reply = await requester.request(subject, b"hello", timeout=TIMEOUT,
                                            old_style=old_style)
            assert reply.data == b"re:hello"
            assert reply.subject.startswith("_INBOX.")
            # The responder saw the request with the requester's inbox as reply subject.
            assert len(seen) == 1
            assert seen[0].subject == subject and seen[0].data == b"hello"
            assert seen[0].reply == reply.subject

            # A second request on the same connection gets its own answer.
            reply = await requester.request(subject, b"again", timeout=TIMEOUT,
                                            old_style=old_style)
            assert reply.data == b"re:again"

    run(main)


def test_new_style_requests_share_one_inbox_subscription(server):
    async def main():
        async with Clients(server.url) as clients:
            responder = await clients.connect()
            requester = await clients.connect()
            subject = unique("mux.")
            seen = []
            await echo_responder(responder, subject, seen=seen)
            for i in range(3):
                reply = await requester.request(subject, str(i).encode(), timeout=TIMEOUT)
                assert reply.data == b"re:" + str(i).encode()
            prefixes = {m.reply.rsplit(".", 1)[0] for m in seen}
            assert len(prefixes) == 1, f"expected one mux inbox prefix, got {prefixes}"
            assert len({m.reply for m in seen}) == 3

    run(main)


@pytest.mark.parametrize("old_style", [False, True], ids=["new-style", "old-style"])
def test_many_concurrent_requests_each_get_their_own_reply(server, old_style):
    async def main():
        async with Clients(server.url) as clients:
            responder = await clients.connect()
            requester = await clients.connect()
            subject = unique("conc.")
            await echo_responder(responder, subject)
            payloads = [f"req-{i}".encode() for i in range(100)]
            replies = await asyncio.gather(*(
                requester.request(subject, p, timeout=TIMEOUT, old_style=old_style)
                for p in payloads))
            assert [r.data for r in replies] == [b"re:" + p for p in payloads]

    run(main)


def test_concurrent_requests_from_several_connections(server):
    async def main():
        async with Clients(server.url) as clients:
            responder = await clients.connect()
            requesters = [await clients.connect() for _ in range(5)]
            subject = unique("multi.")
            await echo_responder(responder, subject)

            async def ask(i, nc):
                return await nc.request(subject, f"{i}".encode(), timeout=TIMEOUT)

            replies = await asyncio.gather(*(ask(i, requesters[i % 5]) for i in range(50)))
            assert [r.data for r in replies] == [f"re:{i}".encode() for i in range(50)]

    run(main)


def test_request_and_reply_carry_headers(server):
    async def main():
        async with Clients(server.url) as clients:
            responder = await clients.connect()
            requester = await clients.connect()
            subject = unique("hdr-svc.")
            seen = []
            await echo_responder(responder, subject, seen=seen)
            headers = {"Trace-Id": "abc 123", "X-Mode": "fast"}
            reply = await requester.request(subject, b"body", timeout=TIMEOUT, headers=headers)
            assert seen[0].headers == headers
            assert reply.data == b"re:body"
            assert reply.headers == headers

    run(main)


@pytest.mark.parametrize("old_style", [False, True], ids=["new-style", "old-style"])
def test_request_without_responders_raises_no_responders(server, old_style):
    """The server answers at once with a 503 status; nats-py turns it into
    NoRespondersError. Without that answer the request would end in a TimeoutError."""

    async def main():
        async with Clients(server.url) as clients:
            requester = await clients.connect()
            other = await clients.connect()
            subject = unique("nobody.")
            await other.subscribe(subject + ".deeper")  # interest elsewhere doesn't count
            await flush(other)
            with pytest.raises(NoRespondersError):
                await requester.request(subject, b"anyone?", timeout=TIMEOUT,
                                        old_style=old_style)
            # The connection is still fine afterwards, and a responder now answers.
            await echo_responder(other, subject)
            reply = await requester.request(subject, b"now?", timeout=TIMEOUT,
                                            old_style=old_style)
            assert reply.data == b"re:now?"

    run(main)


def test_no_responders_status_message_reaches_the_inbox(server):
    """What the server sends for no-responders, as seen by a plain subscription: a message
    on the reply subject with a 503 status header and no payload."""

    async def main():
        async with Clients(server.url) as clients:
            nc = await clients.connect()
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await flush(nc)
            subject = unique("void.")
            await nc.publish(subject, b"data", reply=inbox)
            msg = await sub.next_msg(timeout=TIMEOUT)
            assert msg.subject == inbox
            assert msg.data == b""
            assert msg.headers is not None and msg.headers.get("Status") == "503"

    run(main)


def test_queue_group_delivers_each_message_to_exactly_one_member(server):
    async def main():
        async with Clients(server.url) as clients:
            members = [await clients.connect() for _ in range(3)]
            plain_nc = await clients.connect()
            other_group_nc = await clients.connect()
            pub = await clients.connect()
            subject = unique("work.")
            n = 300

            got: list[list[bytes]] = [[] for _ in members]
            for i, nc in enumerate(members):
                async def cb(msg, i=i):
                    got[i].append(msg.data)
                qsub = await nc.subscribe(subject, queue="workers", cb=cb)
                assert qsub.queue == "workers"
                await flush(nc)
            plain = await plain_nc.subscribe(subject)
            other_group = await other_group_nc.subscribe(subject, queue="auditors")
            await flush(plain_nc)
            await flush(other_group_nc)

            payloads = [f"job-{i}".encode() for i in range(n)]
            for p in payloads:
                await pub.publish(subject, p)
            await sync_point(pub, *members, plain_nc, other_group_nc)
            await eventually(lambda: sum(map(len, got)) >= n, what="queue members to get all")

            counts = Counter(p for member in got for p in member)
            assert sorted(counts) == sorted(payloads)
            assert set(counts.values()) == {1}, "a message went to more than one member"
            assert all(len(member) > 0 for member in got), \
                f"load not spread over the group: {[len(m) for m in got]}"
            # A plain subscriber and a second group each get every message, in order.
            assert [m.data for m in await next_msgs(plain, n)] == payloads
            assert [m.data for m in await next_msgs(other_group, n)] == payloads
            assert plain.pending_msgs == 0 and other_group.pending_msgs == 0

    run(main)


def test_queue_group_responders_answer_each_request_once(server):
    async def main():
        async with Clients(server.url) as clients:
            responders = [await clients.connect() for _ in range(3)]
            requester = await clients.connect()
            subject = unique("qsvc.")
            seen = []
            for i, nc in enumerate(responders):
                await echo_responder(nc, subject, queue="svc", prefix=f"{i}:".encode(),
                                     seen=seen)
            replies = await asyncio.gather(*(
                requester.request(subject, f"{k}".encode(), timeout=TIMEOUT)
                for k in range(60)))
            for k, reply in enumerate(replies):
                who, _, data = reply.data.partition(b":")
                assert data == f"{k}".encode() and who in (b"0", b"1", b"2")
            await sync_point(requester, *responders)
            assert sorted(m.data for m in seen) == sorted(f"{k}".encode() for k in range(60))

    run(main)
