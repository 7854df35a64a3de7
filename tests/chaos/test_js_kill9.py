"""kill -9 the whole server under JetStream publish load, many times, and prove that every
message a publisher got a PubAck for is in the stream after the restart (issue 6: "after kill -9
at any moment, restart recovers every message that was acked to a publisher").

Several publishers keep a window of publishes in flight, each message carrying a unique id;
each time the server is killed (SIGKILL, no shutdown path) we restart it on the same port and
store directory and read the whole stream back. Every acked id must be there, exactly once per
sequence, in the order of its sequence numbers. Runs against actor-nats only: the reference
fsyncs on its own schedule and documents that an acked message may be lost to an OS crash, not
to a process kill, and we check the same promise here for ours.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile

import nats
import nats.js.api
import pytest

from tests.interop.helpers import TIMEOUT, run
from tests.servers import free_port

ROUNDS = 4


async def _publish_until_killed(url: str, acked: dict, tag: str, stop: asyncio.Event) -> None:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5)
    js = nc.jetstream()
    n = 0
    try:
        while not stop.is_set():
            futs = []
            for _ in range(16):
                msg_id = f"{tag}-{n}"
                n += 1
                futs.append((msg_id, asyncio.ensure_future(js.publish("crash.x", msg_id.encode(), timeout=5))))
            for msg_id, fut in futs:
                try:
                    ack = await fut
                except Exception:
                    stop.set()
                    continue
                acked[msg_id] = ack.seq
    finally:
        try:
            await nc.close()
        except Exception:
            pass


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("storage", ["file"])
def test_kill9_under_publish_load_keeps_every_acked_message(start_server, storage):
    store = tempfile.mkdtemp(prefix="an-kill9-")
    port = free_port()
    args = ["-js", "-sd", store]

    async def create(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="CRASH", subjects=["crash.>"], storage=storage)
        await nc.close()

    async def load(url, acked, seconds):
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(_publish_until_killed(url, acked, f"r{rnd}p{i}", stop))
                 for i in range(3)]
        await asyncio.sleep(seconds)
        return stop, tasks

    async def read_all(url):
        """Every stored message (an ephemeral pull consumer, ack none), as id -> sequence."""
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info("CRASH")
        got = {}
        psub = await js.pull_subscribe("crash.>", config=nats.js.api.ConsumerConfig(
            ack_policy=nats.js.api.AckPolicy.NONE))
        while len(got) < info.state.messages:
            for m in await psub.fetch(1000, timeout=TIMEOUT):
                got[m.data.decode()] = m.metadata.sequence.stream
        await nc.close()
        return info, got

    acked: dict[str, int] = {}
    srv = start_server("actor", args=args, port=port)
    run(create, srv.url)
    for rnd in range(ROUNDS):
        async def round_():
            stop, tasks = await load(srv.url, acked, 1.0 + 0.3 * rnd)
            srv.signal(signal.SIGKILL)  # no shutdown path at all
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        run(round_)
        srv.wait(10)
        srv = start_server("actor", args=args, port=port)
        try:
            info, got = run(read_all, srv.url)
        except Exception as e:
            raise AssertionError(f"round {rnd}: reading the stream back failed: {e!r}\n"
                                 f"{srv.log()[-3000:]}") from e
        missing = [m for m in acked if m not in got]
        assert not missing, f"round {rnd}: {len(missing)} acked messages lost, e.g. {missing[:5]}"
        wrong = [m for m, seq in acked.items() if got[m] != seq]
        assert not wrong, f"round {rnd}: acked messages at another sequence: {wrong[:5]}"
        assert info.state.messages >= len(acked)
    assert len(acked) > 100, "the load never got going"
    print(f"\n[kill9] {ROUNDS} kills, {len(acked)} acked messages, all recovered")
