"""A tour of nats-py's JetStream API (streams, dedupe, updates, push and pull consumers with
naks, terms and redelivery, message get/delete/purge, ordered consumers, KV, account info,
deletes), run against actor-nats and the reference in one test: every observation must be the
same on both servers."""

from __future__ import annotations

import asyncio

import nats
from nats.js.api import DeliverPolicy, StorageType, StreamConfig

from tests.interop.helpers import run


async def tour(url: str) -> list:
    nc = await nats.connect(url)
    js = nc.jetstream()
    out = []
    def rec(name, v): out.append((name, v))
    await js.add_stream(name="ORD", subjects=["ord.>"], max_msgs=1000, storage=StorageType.MEMORY)
    rec("find", await js.find_stream_name_by_subject("ord.x"))
    for i in range(10): await js.publish(f"ord.{i%3}", f"m{i}".encode(), headers={"Nats-Msg-Id": f"id{i}"})
    ack = await js.publish("ord.0", b"dup", headers={"Nats-Msg-Id": "id0"})
    rec("dup", ack.duplicate)
    si = await js.stream_info("ORD", subjects_filter=">")
    rec("state", (si.state.messages, si.state.first_seq, si.state.last_seq, si.state.subjects))
    await js.update_stream(StreamConfig(name="ORD", subjects=["ord.>"], max_msgs=5, storage=StorageType.MEMORY))
    si = await js.stream_info("ORD"); rec("after update", (si.state.messages, si.state.first_seq))
    # push durable with manual ack
    got = []
    async def cb(m): got.append(m.data); await m.ack_sync()
    sub = await js.subscribe("ord.>", durable="pushd", cb=cb, manual_ack=True, deliver_policy=DeliverPolicy.ALL)
    for _ in range(1000):  # until the five stored messages arrived (generous; not a timing check)
        if len(got) >= 5:
            break
        await asyncio.sleep(0.01)
    rec("push got", got)
    ci = await js.consumer_info("ORD", "pushd"); rec("push ci", (ci.num_pending, ci.num_ack_pending, ci.delivered.stream_seq, ci.ack_floor.stream_seq))
    await sub.unsubscribe()
    # pull with fetch and various acks
    for i in range(3): await js.publish("ord.1", f"p{i}".encode())
    psub = await js.pull_subscribe("ord.1", durable="pulld")
    msgs = await psub.fetch(2, timeout=2)
    rec("pull", [(m.subject, m.data, m.metadata.num_pending, m.metadata.num_delivered) for m in msgs])
    await msgs[0].nak(delay=0.1); await msgs[1].term()
    msgs = await psub.fetch(1, timeout=3); rec("redelivered", [(m.data, m.metadata.num_delivered) for m in msgs]); await msgs[0].ack_sync()
    # consumer list/names
    rec("consumers", sorted([c.name for c in await js.consumers_info("ORD")]))
    names = await js.streams_info(); rec("streams", [s.config.name for s in names])
    # get msg / delete / purge
    m = await js.get_last_msg("ORD", "ord.2"); rec("last ord.2", (m.seq, m.data))
    await js.delete_msg("ORD", m.seq)
    await js.purge_stream("ORD", subject="ord.0")
    si = await js.stream_info("ORD"); rec("after purge", (si.state.messages, si.state.num_deleted))
    # ordered consumer
    osub = await js.subscribe("ord.>", ordered_consumer=True)
    info = await js.stream_info("ORD")
    od = [(await osub.next_msg(timeout=10)).data for _ in range(info.state.messages)]
    rec("ordered", od)
    # KV
    kv = await js.create_key_value(bucket="cfg", history=3)
    await kv.put("a", b"1"); await kv.put("a", b"2"); r = await kv.update("a", b"3", last=2)
    e = await kv.get("a"); rec("kv", (e.value, e.revision, r))
    hist = await kv.history("a"); rec("hist", [h.value for h in hist])
    keys = await kv.keys(); rec("keys", keys)
    await kv.delete("a")
    try: await kv.get("a"); rec("get deleted", "no error")
    except Exception as ex: rec("get deleted", type(ex).__name__)
    st = await kv.status(); rec("kv status", (st.bucket, st.values, st.history))
    # account info
    ai = await js.account_info(); rec("account", (ai.streams, ai.consumers))
    await js.delete_consumer("ORD", "pulld")
    await js.delete_stream("ORD")
    try: await js.stream_info("ORD")
    except Exception as ex: rec("deleted info", type(ex).__name__)
    await nc.close()
    return out


def test_jetstream_tour_is_the_same_on_both_servers(start_server, tmp_path):
    results = {}
    for impl in ("reference", "actor"):
        srv = start_server(impl, args=["-js", "-sd", str(tmp_path / impl)])
        results[impl] = run(tour, srv.url)
    for (name, ref), (_, ours) in zip(results["reference"], results["actor"]):
        assert ours == ref, f"{name}: actor-nats {ours!r}, reference {ref!r}"
    assert len(results["actor"]) == len(results["reference"]) == 20
