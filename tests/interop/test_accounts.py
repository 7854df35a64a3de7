"""Accounts with nats-py, on both servers: isolation between accounts (plain, wildcard and queue
subscriptions, request/reply), stream imports with prefix and `to` remaps, service imports with
singleton and stream responses, private exports, the global account, and config reload moving
imports."""

from __future__ import annotations

import os
import signal

import pytest

from tests.interop.helpers import TIMEOUT, Clients, flush, run, sync_point

CONF = """
accounts {
  A: {
    users: [{user: a, password: a}, {user: a2, password: a2}]
    exports: [
      {stream: "events.>"}
      {stream: "private.>", accounts: [C]}
      {service: "svc.>"}
      {service: "multi", response_type: stream}
    ]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [
      {stream: {account: A, subject: "events.>"}, prefix: "fromA"}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
      {service: {account: A, subject: "multi"}}
    ]
  }
  C: {
    users: [{user: c, password: c}]
    imports: [
      {stream: {account: A, subject: "private.x"}, to: "mine"}
      {stream: {account: A, subject: "events.*"}}
    ]
  }
}
authorization { users: [{user: g, password: g}] }
"""


def url(server, user):
    return f"nats://{user}:{user}@127.0.0.1:{server.port}"


async def drain_sub(sub, quiet=0.3):
    out = []
    while True:
        try:
            m = await sub.next_msg(timeout=quiet)
        except Exception:
            return out
        out.append((m.subject, m.data))


@pytest.fixture
def acc_server(impl, start_server):
    return start_server(impl, config=CONF)


def test_accounts_are_isolated(acc_server):
    async def main():
        async with Clients(url(acc_server, "a")) as cl:
            a = await cl.connect(url(acc_server, "a"))
            a2 = await cl.connect(url(acc_server, "a2"))
            b = await cl.connect(url(acc_server, "b"))
            g = await cl.connect(url(acc_server, "g"))
            subs = {}
            for name, nc in (("a2", a2), ("b", b), ("g", g)):
                subs[name] = (await nc.subscribe(">"), await nc.subscribe("x.*", queue="q"))
                await flush(nc)
            await a.publish("x.1", b"from-a")
            await a.publish("other", b"from-a")
            await flush(a)
            await sync_point(a, a2)
            got_a2 = await drain_sub(subs["a2"][0])
            got_a2q = await drain_sub(subs["a2"][1])
            assert ("x.1", b"from-a") in got_a2 and ("other", b"from-a") in got_a2
            assert got_a2q == [("x.1", b"from-a")]
            for name in ("b", "g"):
                for sub in subs[name]:
                    assert [m for m in await drain_sub(sub) if not m[0].startswith("_SYNC")] == [], name
    run(main)


def test_request_reply_does_not_cross_accounts(acc_server):
    async def main():
        async with Clients(url(acc_server, "a")) as cl:
            a = await cl.connect(url(acc_server, "a"))
            b = await cl.connect(url(acc_server, "b"))

            async def responder(m):
                await m.respond(b"b-answers")

            await b.subscribe("help", cb=responder)
            await flush(b)
            with pytest.raises(Exception):  # no responders in A (nats-py raises NoRespondersError)
                await a.request("help", b"?", timeout=1.0)
            r = await b.request("help", b"?", timeout=TIMEOUT)
            assert r.data == b"b-answers"
    run(main)


def test_stream_import_with_prefix_and_to(acc_server):
    async def main():
        async with Clients(url(acc_server, "a")) as cl:
            a = await cl.connect(url(acc_server, "a"))
            b = await cl.connect(url(acc_server, "b"))
            c = await cl.connect(url(acc_server, "c"))
            sb = await b.subscribe("fromA.events.>")
            sb_plain = await b.subscribe("events.>")  # not imported under its own name
            sc_all = await c.subscribe(">")
            await flush(b)
            await flush(c)
            await a.publish("events.order", b"1", headers={"k": "v"})
            await a.publish("events.deep.x", b"2")
            await a.publish("private.x", b"3")
            await a.publish("private.y", b"4")
            await flush(a)
            m = await sb.next_msg(timeout=TIMEOUT)
            assert (m.subject, m.data, m.headers) == ("fromA.events.order", b"1", {"k": "v"})
            m = await sb.next_msg(timeout=TIMEOUT)
            assert (m.subject, m.data) == ("fromA.events.deep.x", b"2")
            got_c = await drain_sub(sc_all, quiet=0.5)
            assert sorted(got_c) == sorted([("events.order", b"1"), ("mine", b"3")])
            assert await drain_sub(sb_plain) == []
    run(main)


def test_service_import_singleton(acc_server):
    async def main():
        async with Clients(url(acc_server, "a")) as cl:
            a = await cl.connect(url(acc_server, "a"))
            b = await cl.connect(url(acc_server, "b"))
            seen = []

            async def echo(m):
                seen.append(m.subject)
                await m.respond(b"echo:" + m.data)

            await a.subscribe("svc.echo", cb=echo)
            await flush(a)
            for i in range(5):
                r = await b.request("echo", str(i).encode(), timeout=TIMEOUT)
                assert r.data == b"echo:" + str(i).encode()
            assert seen == ["svc.echo"] * 5
            # the importer's requests never reach A under the local name
            sa = await a.subscribe("echo")
            await flush(a)
            await b.request("echo", b"x", timeout=TIMEOUT)
            assert await drain_sub(sa) == []
    run(main)


def test_service_import_stream_responses(acc_server):
    async def main():
        async with Clients(url(acc_server, "a")) as cl:
            a = await cl.connect(url(acc_server, "a"))
            b = await cl.connect(url(acc_server, "b"))

            async def multi(m):
                for i in range(3):
                    await a.publish(m.reply, f"part{i}".encode())

            await a.subscribe("multi", cb=multi)
            await flush(a)
            inbox = b.new_inbox()
            sub = await b.subscribe(inbox)
            await flush(b)
            await b.publish("multi", b"go", reply=inbox)
            parts = [(await sub.next_msg(timeout=TIMEOUT)).data for _ in range(3)]
            assert parts == [b"part0", b"part1", b"part2"]
    run(main)


def test_unauthorized_import_is_refused_at_start(impl, start_server):
    conf = """accounts {
      A: { exports: [{stream: "p.>", accounts: [C]}] }
      B: { imports: [{stream: {account: A, subject: "p.>"}}] }
      C: {}
    }"""
    with pytest.raises(RuntimeError) as err:  # the server exits early; the message has its log
        start_server(impl, config=conf, ready_timeout=10)
    assert 'Error adding stream import "p.>": stream import not authorized' in str(err.value)


def test_account_user_in_a_queue_group_only_shares_with_its_account(acc_server):
    async def main():
        async with Clients(url(acc_server, "a")) as cl:
            a = await cl.connect(url(acc_server, "a"))
            a2 = await cl.connect(url(acc_server, "a2"))
            b = await cl.connect(url(acc_server, "b"))
            qa = await a2.subscribe("work", queue="workers")
            qb = await b.subscribe("work", queue="workers")
            await flush(a2)
            await flush(b)
            for i in range(20):
                await a.publish("work", str(i).encode())
            await flush(a)
            got = [(await qa.next_msg(timeout=TIMEOUT)).data for _ in range(20)]
            assert got == [str(i).encode() for i in range(20)]
            assert await drain_sub(qb) == []
    run(main)


def test_reload_adds_an_import(impl, start_server):
    before = """accounts {
      A: { users: [{user: a, password: a}], exports: [{stream: "news.>"}] }
      B: { users: [{user: b, password: b}] }
    }"""
    after = before.replace("B: { users: [{user: b, password: b}] }",
                           'B: { users: [{user: b, password: b}], imports: [{stream: {account: A, subject: "news.>"}}] }')
    srv = start_server(impl, config=before)

    async def main():
        async with Clients(url(srv, "a")) as cl:
            a = await cl.connect(url(srv, "a"))
            b = await cl.connect(url(srv, "b"))
            sb = await b.subscribe("news.>")
            await flush(b)
            await a.publish("news.1", b"before")
            await flush(a)
            assert await drain_sub(sb) == []
            srv.config_path.write_text(after)
            os.kill(srv.proc.pid, signal.SIGHUP)
            for _ in range(100):  # the reload applies asynchronously: publish until it shows
                await a.publish("news.2", b"after")
                await flush(a)
                try:
                    m = await sb.next_msg(timeout=0.1)
                    break
                except Exception:
                    continue
            else:
                raise AssertionError("the import never applied")
            assert (m.subject, m.data) == ("news.2", b"after")
    run(main)


def test_service_import_without_responder_gets_no_responders(acc_server):
    async def main():
        import nats.errors

        async with Clients(url(acc_server, "b")) as cl:
            b = await cl.connect(url(acc_server, "b"))
            with pytest.raises(nats.errors.NoRespondersError):
                await b.request("echo", b"anyone?", timeout=TIMEOUT)
    run(main)
