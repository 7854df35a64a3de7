"""nats-py against a running server: message headers, payload contents and sizes
(empty, binary, at and over max_payload), and many subscriptions on one connection."""

from __future__ import annotations

import pytest
from nats.errors import MaxPayloadError

from tests.interop.helpers import (
    Clients, eventually, flush, next_msgs, run, sync_point, unique, TIMEOUT,
)

MAX_PAYLOAD = 1024 * 1024  # the default in both implementations


async def pair(clients):
    """A subscriber connection and a publisher connection."""
    return await clients.connect(), await clients.connect()


async def round_trip(sub_nc, pub_nc, payloads_and_headers):
    """Publish each (payload, headers) from pub_nc and return what sub_nc receives."""
    subject = unique("rt.")
    sub = await sub_nc.subscribe(subject)
    await flush(sub_nc)
    for payload, headers in payloads_and_headers:
        await pub_nc.publish(subject, payload, headers=headers)
    msgs = await next_msgs(sub, len(payloads_and_headers), timeout=TIMEOUT)
    assert all(m.subject == subject for m in msgs)
    return msgs


# --- headers -------------------------------------------------------------------------------

def test_single_header(server):
    async def main():
        async with Clients(server.url) as clients:
            [msg] = await round_trip(*await pair(clients), [(b"payload", {"Foo": "Bar"})])
            assert msg.data == b"payload"
            assert msg.headers == {"Foo": "Bar"}

    run(main)


def test_multiple_headers_and_values_with_spaces(server):
    async def main():
        async with Clients(server.url) as clients:
            headers = {
                "Content-Type": "text/plain; charset=utf-8",
                "X-Greeting": "hello there, world",
                "X-Spaces": "a  b   c",
                "X-Colon": "key: value: more",
                "Nats-Msg-Id": "id-42",
                "lower-case-key": "Mixed Case Value",
            }
            [msg] = await round_trip(*await pair(clients), [(b"body", headers)])
            assert msg.data == b"body"
            assert msg.headers == headers

    run(main)


def test_headers_with_empty_payload(server):
    async def main():
        async with Clients(server.url) as clients:
            [msg] = await round_trip(*await pair(clients), [(b"", {"Only": "headers here"})])
            assert msg.data == b""
            assert msg.headers == {"Only": "headers here"}

    run(main)


def test_messages_with_and_without_headers_interleave(server):
    async def main():
        async with Clients(server.url) as clients:
            sent = [(b"plain-1", None), (b"with-1", {"N": "1"}), (b"", None),
                    (b"with-2", {"N": "2", "M": "two words"}), (b"plain-2", None)]
            msgs = await round_trip(*await pair(clients), sent)
            assert [(m.data, m.headers) for m in msgs] == sent

    run(main)


def test_headers_with_binary_payload_containing_protocol_text(server):
    async def main():
        async with Clients(server.url) as clients:
            payload = b"NATS/1.0\r\nFake: header\r\n\r\nMSG x 1 3\r\nabc\r\n\x00\xff"
            [msg] = await round_trip(*await pair(clients), [(payload, {"Real": "yes"})])
            assert msg.data == payload
            assert msg.headers == {"Real": "yes"}

    run(main)


# --- payloads ------------------------------------------------------------------------------

def test_empty_payload(server):
    async def main():
        async with Clients(server.url) as clients:
            msgs = await round_trip(*await pair(clients), [(b"", None), (b"x", None), (b"", None)])
            assert [(m.data, m.headers) for m in msgs] == [(b"", None), (b"x", None), (b"", None)]

    run(main)


def test_binary_payload_with_every_byte_value(server):
    async def main():
        async with Clients(server.url) as clients:
            every_byte = bytes(range(256))
            crlf_heavy = b"\r\n" * 100 + b"\r" + b"\n\r"
            msgs = await round_trip(*await pair(clients), [
                (every_byte, None), (every_byte[::-1] * 64, None), (crlf_heavy, None)])
            assert msgs[0].data == every_byte
            assert msgs[1].data == every_byte[::-1] * 64
            assert msgs[2].data == crlf_heavy

    run(main)


def test_payload_of_exactly_max_payload_is_delivered(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc, pub_nc = await pair(clients)
            assert pub_nc.max_payload == MAX_PAYLOAD
            big = bytes(i % 251 for i in range(MAX_PAYLOAD))
            near = big[: MAX_PAYLOAD - 100]
            msgs = await round_trip(sub_nc, pub_nc, [(big, None), (near, {"Size": "near"})])
            assert len(msgs[0].data) == MAX_PAYLOAD and msgs[0].data == big
            assert msgs[1].data == near and msgs[1].headers == {"Size": "near"}

    run(main)


def test_publishing_more_than_max_payload_raises_and_connection_survives(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc, pub_nc = await pair(clients)
            subject = unique("big.")
            sub = await sub_nc.subscribe(subject)
            await flush(sub_nc)
            with pytest.raises(MaxPayloadError):
                await pub_nc.publish(subject, b"x" * (pub_nc.max_payload + 1))
            await pub_nc.publish(subject, b"small")
            msg = await sub.next_msg(timeout=TIMEOUT)
            assert msg.data == b"small"
            assert pub_nc.is_connected

    run(main)


def test_server_enforces_max_payload(server):
    """Get past nats-py's own size check so the oversized PUB reaches the server, which
    must refuse it with -ERR and not deliver it."""

    async def main():
        async with Clients(server.url) as clients:
            sub_nc = await clients.connect()
            pub_nc = await clients.connect(expect_errors=True)
            subject = unique("toobig.")
            sub = await sub_nc.subscribe(subject)
            await flush(sub_nc)
            pub_nc._max_payload = 10 * MAX_PAYLOAD  # what a misbehaving client would do
            await pub_nc.publish(subject, b"x" * (MAX_PAYLOAD + 1))
            await eventually(lambda: pub_nc.last_error is not None, what="-ERR from the server")
            assert "maximum payload" in str(pub_nc.last_error).lower()
            await eventually(lambda: pub_nc.is_closed, what="the connection to close")
            # Nothing was delivered; the subscriber's connection is unaffected.
            checker = await clients.connect()
            await checker.publish(subject, b"after")
            msg = await sub.next_msg(timeout=TIMEOUT)
            assert msg.data == b"after"

    run(main)


def test_configured_max_payload_is_announced_and_enforced(start_server, impl):
    async def main(srv):
        async with Clients(srv.url) as clients:
            sub_nc, pub_nc = await pair(clients)
            assert pub_nc.max_payload == 4096
            with pytest.raises(MaxPayloadError):
                await pub_nc.publish("cfg.big", b"x" * 4097)
            [msg] = await round_trip(sub_nc, pub_nc, [(b"y" * 4096, None)])
            assert msg.data == b"y" * 4096

    run(main, start_server(impl, config="max_payload: 4096\n"))


# --- many subscriptions --------------------------------------------------------------------

def test_one_thousand_subscriptions_on_one_connection(server):
    async def main():
        async with Clients(server.url) as clients:
            sub_nc, pub_nc = await pair(clients)
            root = unique("many")
            n = 1000
            received: dict[int, list[bytes]] = {i: [] for i in range(n)}
            subs = []
            for i in range(n):
                async def cb(msg, i=i):
                    received[i].append(msg.data)
                subs.append(await sub_nc.subscribe(f"{root}.{i}", cb=cb))
            assert len({s._id for s in subs}) == n
            await flush(sub_nc)
            for i in range(n):
                await pub_nc.publish(f"{root}.{i}", f"for-{i}".encode())
            await sync_point(pub_nc, sub_nc)
            await eventually(lambda: all(received.values()), what="every subscription's message")
            assert received == {i: [f"for-{i}".encode()] for i in range(n)}

            # Unsubscribing half of them: only the rest still get messages.
            for sub in subs[::2]:
                await sub.unsubscribe()
            await flush(sub_nc)
            for i in range(n):
                await pub_nc.publish(f"{root}.{i}", b"second")
            await sync_point(pub_nc, sub_nc)
            await eventually(lambda: all(len(received[i]) == 2 for i in range(1, n, 2)),
                             what="the second round")
            assert all(len(received[i]) == 1 for i in range(0, n, 2))
            assert sub_nc.stats["in_msgs"] == n + n // 2 + 2  # plus two sync markers

    run(main)
