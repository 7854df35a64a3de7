"""Kill the Consumer actors again and again while a pull fetcher and a push subscriber consume
with explicit acks and a publisher keeps adding to the stream.

Each kill is a crash: the supervisor (the Stream) starts the consumer again from its saved
state; what it had delivered but not saved is delivered again, what was pending and not acked
is redelivered after ack_wait. So the checks are at-least-once: every published message reaches
each consumer (duplicates allowed), in the end each consumer has nothing pending and its ack
floor is the stream's last sequence, the server process stays up and no client is disconnected.
"""

from __future__ import annotations

import asyncio
import tempfile

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig

from tests.chaos.helpers import KILL_CONFIG, connect_watched
from tests.interop.helpers import Clients, eventually, flush, run

INITIAL = 300  # messages before the consumers start
DURING = 300  # messages published while the kills go on
KILLS = 8  # per consumer
KILL_PAUSE = 0.7  # seconds between kills: the Stream's restart budget is 10 in 5 s
ACK_WAIT = 1.0  # seconds: what a crash left pending comes back quickly


def test_kill_consumers_under_load_nothing_lost(chaos):
    store = tempfile.mkdtemp(prefix="an-chaos-js-")
    srv = chaos(config=KILL_CONFIG, args=["-js", "-sd", store])

    async def main():
        async with Clients(srv.url) as clients:
            pub, w_pub = await connect_watched(clients, "pub")
            pull_nc, w_pull = await connect_watched(clients, "pull")
            push_nc, w_push = await connect_watched(clients, "push")
            watches = {"pub": w_pub, "pull": w_pull, "push": w_push}
            js = pub.jetstream()
            await js.add_stream(name="CK", subjects=["ck.>"])
            published: set[int] = set()
            for i in range(1, INITIAL + 1):
                await js.publish("ck.a", b"%d" % i)
                published.add(i)

            # push: a plain subscription on the deliver subject, acked by hand
            push_seen: set[int] = set()
            push_deliveries = 0
            inbox = push_nc.new_inbox()

            async def on_push(msg):
                nonlocal push_deliveries
                if not msg.reply:  # a status (heartbeat, flow control): no ack
                    return
                push_deliveries += 1
                push_seen.add(int(msg.data))
                await push_nc.publish(msg.reply, b"")

            await push_nc.subscribe(inbox, cb=on_push)
            await flush(push_nc)
            await js.add_consumer("CK", ConsumerConfig(
                durable_name="PUSH", deliver_subject=inbox, ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT, max_ack_pending=-1))

            # pull: fetch batches, ack each message
            pull_js = pull_nc.jetstream()
            psub = await pull_js.pull_subscribe("ck.>", durable="PULL", stream="CK", config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT, max_ack_pending=-1))
            pull_seen: set[int] = set()
            pull_deliveries = 0
            stop = asyncio.Event()

            async def fetcher():
                nonlocal pull_deliveries
                while not stop.is_set():
                    try:
                        msgs = await psub.fetch(50, timeout=0.5)
                    except (nats.errors.TimeoutError, asyncio.TimeoutError):
                        continue
                    for m in msgs:
                        pull_deliveries += 1
                        pull_seen.add(int(m.data))
                        await m.ack()

            async def publisher():
                for i in range(INITIAL + 1, INITIAL + DURING + 1):
                    await js.publish("ck.a", b"%d" % i)
                    published.add(i)
                    await asyncio.sleep(0.03)

            fetch_task = asyncio.get_running_loop().create_task(fetcher())
            pub_task = asyncio.get_running_loop().create_task(publisher())
            try:
                tree = await srv.actorz()
                paths = {name: next(p for p in tree if p.endswith("/" + name) and tree[p]["kind"] == "consumer")
                         for name in ("PULL", "PUSH")}
                for k in range(KILLS):
                    for name in ("PULL", "PUSH"):
                        await srv.kill_and_wait(paths[name], f"chaos {name} {k}")
                        await asyncio.sleep(KILL_PAUSE)
                await pub_task
                want = set(range(1, INITIAL + DURING + 1))
                assert published == want
                await eventually(lambda: pull_seen >= want, 60, "every message fetched")
                await eventually(lambda: push_seen >= want, 60, "every message pushed")

                async def settled(name):
                    info = await js.consumer_info("CK", name)
                    return (info.num_ack_pending == 0 and info.num_pending == 0
                            and info.ack_floor.stream_seq == INITIAL + DURING)

                for name in ("PULL", "PUSH"):
                    for _ in range(300):
                        if await settled(name):
                            break
                        await asyncio.sleep(0.1)
                    else:
                        info = await js.consumer_info("CK", name)
                        raise AssertionError(f"{name} never settled: {info}")
            finally:
                stop.set()
                pub_task.cancel()
                await asyncio.gather(fetch_task, pub_task, return_exceptions=True)

            assert pull_deliveries >= len(want) and push_deliveries >= len(want)
            assert srv.server.proc.poll() is None, "the server exited"
            for name, w in watches.items():
                assert w.disconnects == 0, f"{name} was disconnected"
            tree = await srv.actorz()
            for name, path in paths.items():
                assert tree[path]["restarts"] >= KILLS, (name, tree[path])

    run(main, timeout=240)
