"""STREAM.SNAPSHOT and STREAM.RESTORE on actor-nats, spoken with nats-py primitives as nats.go
and the `nats` CLI (`nats stream backup` / `restore`) speak them: subscribe to the deliver
subject and answer each chunk's reply (`$JS.SNAPSHOT.ACK.<stream>.<id>.<size>.<index>`) to
take a snapshot; send the chunks, each as a request answered by an empty ack, then an empty
message, to the restore subject to restore. actor-nats only: its archive is its own, not the
reference's, so the two servers cannot exchange snapshots (and a reference snapshot is a tar of
its file-store blocks).

A stream with messages (and a deleted one) and a durable consumer with some messages acked is
snapshotted, deleted and restored: the messages, their sequences and the consumer's ack floor
come back; a second restore of the same name is refused with 10130.
"""

from __future__ import annotations

import asyncio
import json
import tempfile

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StorageType

from tests.interop.helpers import run


async def take_snapshot(nc, stream: str, chunk_size: int = 1024, no_consumers: bool = False):
    """(response, archive bytes, end-of-stream message) of a snapshot."""
    deliver = nc.new_inbox()
    chunks: list[bytes] = []
    done = asyncio.get_running_loop().create_future()

    async def on_chunk(msg):
        if not msg.data:
            if not done.done():
                done.set_result(msg)
            return
        chunks.append(msg.data)
        if msg.reply:
            await nc.publish(msg.reply, b"")

    sub = await nc.subscribe(deliver, cb=on_chunk)
    req = {"deliver_subject": deliver, "chunk_size": chunk_size, "no_consumers": no_consumers}
    resp = await nc.request(f"$JS.API.STREAM.SNAPSHOT.{stream}", json.dumps(req).encode(), timeout=5)
    end = await asyncio.wait_for(done, 10)
    await sub.unsubscribe()
    return json.loads(resp.data), b"".join(chunks), end


async def restore(nc, stream: str, meta: dict, archive: bytes, chunk: int = 1000):
    """The restore response (deliver subject) and the final stream create response."""
    req = {"config": meta["config"], "state": meta["state"]}
    resp = json.loads((await nc.request(f"$JS.API.STREAM.RESTORE.{stream}",
                                        json.dumps(req).encode(), timeout=5)).data)
    if "error" in resp:
        return resp, None
    deliver = resp["deliver_subject"]
    for i in range(0, len(archive), chunk):
        ack = await nc.request(deliver, archive[i:i + chunk], timeout=5)
        assert ack.data == b""
    final = await nc.request(deliver, b"", timeout=10)
    return resp, json.loads(final.data)


@pytest.mark.parametrize("storage", [StorageType.FILE, StorageType.MEMORY])
def test_snapshot_restore_roundtrip(start_server, storage):
    srv = start_server("actor", args=["-js", "-sd", tempfile.mkdtemp(prefix="an-snap-")])

    async def main():
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        try:
            await js.add_stream(name="S", subjects=["s.>"], storage=storage)
            for i in range(50):
                await js.publish(f"s.{i % 3}", (f"m{i}-" + "x" * 200).encode(),
                                 headers={"H": str(i)} if i % 5 == 0 else None)
            await js.delete_msg("S", 7)
            await js.add_consumer("S", ConsumerConfig(durable_name="D", ack_policy=AckPolicy.EXPLICIT))
            sub = await js.pull_subscribe("s.>", durable="D", stream="S")
            for m in await sub.fetch(10, timeout=5):
                await m.ack_sync()
            before = await js.stream_info("S")
            cbefore = await js.consumer_info("S", "D")
            assert cbefore.ack_floor.stream_seq == 11

            meta, archive, end = await take_snapshot(nc, "S")
            assert meta["type"] == "io.nats.jetstream.api.v1.stream_snapshot_response"
            assert meta["config"]["name"] == "S" and meta["state"]["messages"] == 49
            assert len(archive) > 1024  # more than one chunk went out, so the end says 204
            assert end.headers and end.headers.get("Status") == "204" and end.data == b""

            await js.delete_stream("S")
            resp, final = await restore(nc, "S", meta, archive)
            assert resp["type"] == "io.nats.jetstream.api.v1.stream_restore_response"
            assert resp["deliver_subject"].startswith("$JS.SNAPSHOT.RESTORE.S.")
            assert final["type"] == "io.nats.jetstream.api.v1.stream_create_response"
            assert "error" not in final, final
            assert final["state"]["messages"] == 49

            after = await js.stream_info("S")
            assert after.state.messages == before.state.messages
            assert after.state.first_seq == before.state.first_seq
            assert after.state.last_seq == before.state.last_seq
            assert after.state.bytes == before.state.bytes
            for seq in (1, 6, 8, 50):
                a = await js.get_msg("S", seq)
                assert a.seq == seq and a.data.startswith(f"m{seq - 1}-".encode())
                if (seq - 1) % 5 == 0:
                    assert a.headers and a.headers.get("H") == str(seq - 1)
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.get_msg("S", 7)

            c = await js.consumer_info("S", "D")
            assert c.ack_floor.stream_seq == 11 and c.ack_floor.consumer_seq == 10
            assert c.num_pending == cbefore.num_pending
            sub = await js.pull_subscribe("s.>", durable="D", stream="S")
            nxt = (await sub.fetch(1, timeout=5))[0]
            assert nxt.metadata.sequence.stream == 12

            # the name is taken now
            again, _ = await restore(nc, "S", meta, archive)
            assert again["error"] == {"code": 400, "err_code": 10130,
                                      "description": "stream name already in use, cannot restore"}
        finally:
            await nc.close()

    run(main)


def test_snapshot_end_message_and_errors(start_server):
    """The end of the chunk stream as the reference sends it (an empty message, with a
    `NATS/1.0 204` header once a full chunk went out and no header when everything fit in
    one short chunk), no_consumers, and the request errors."""
    srv = start_server("actor", args=["-js", "-sd", tempfile.mkdtemp(prefix="an-snap-")])

    async def main():
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        try:
            await js.add_stream(name="E", subjects=["e"])
            await js.add_consumer("E", ConsumerConfig(durable_name="C", ack_policy=AckPolicy.EXPLICIT))
            await js.publish("e", b"x")
            meta, archive, end = await take_snapshot(nc, "E", chunk_size=1024 * 1024, no_consumers=True)
            assert not end.headers  # one short chunk: no 204 header
            meta2, archive2, end2 = await take_snapshot(nc, "E", chunk_size=10)  # clamped to 1 KiB
            await js.delete_stream("E")
            resp, final = await restore(nc, "E", meta, archive)
            assert "error" not in final, final
            assert (await js.stream_info("E")).state.consumer_count == 0

            r = json.loads((await nc.request("$JS.API.STREAM.SNAPSHOT.NOPE", b'{"deliver_subject":"x"}')).data)
            assert r["error"]["err_code"] == 10059
            r = json.loads((await nc.request("$JS.API.STREAM.SNAPSHOT.E", b"")).data)
            assert r["error"]["err_code"] == 10003
            r = json.loads((await nc.request("$JS.API.STREAM.SNAPSHOT.E", b'{"deliver_subject":"a.*"}')).data)
            assert r["error"]["err_code"] == 10015
            r = json.loads((await nc.request("$JS.API.STREAM.RESTORE.X", b'{"config":{"name":"Y"}}')).data)
            assert r["error"]["err_code"] == 10056 and r["deliver_subject"] == ""
            # garbage instead of an archive: the restore fails, no stream appears
            resp = json.loads((await nc.request("$JS.API.STREAM.RESTORE.G", b'{"config":{"name":"G"}}')).data)
            await nc.request(resp["deliver_subject"], b"not a snapshot", timeout=5)
            final = json.loads((await nc.request(resp["deliver_subject"], b"", timeout=5)).data)
            assert final["error"]["err_code"] == 10062
            names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"")).data)
            assert "G" not in (names["streams"] or [])
        finally:
            await nc.close()

    run(main)


def test_snapshot_and_restore_advisories(start_server):
    """SNAPSHOT_CREATE/COMPLETE and RESTORE_CREATE/COMPLETE, in the reference's shapes, naming
    the client that asked."""
    srv = start_server("actor", args=["-js", "-sd", tempfile.mkdtemp(prefix="an-snap-")])

    async def main():
        nc = await nats.connect(srv.url, name="backup")
        js = nc.jetstream()
        advisories: list = []

        async def on_adv(msg):
            advisories.append((msg.subject, json.loads(msg.data)))

        try:
            await nc.subscribe("$JS.EVENT.ADVISORY.STREAM.*.S", cb=on_adv)
            await js.add_stream(name="S", subjects=["s.>"])
            for i in range(5):
                await js.publish("s.1", b"x" * 300)
            meta, archive, _ = await take_snapshot(nc, "S")
            await js.delete_stream("S")
            _, final = await restore(nc, "S", meta, archive)
            assert "error" not in final
            await nc.flush()
            for _ in range(100):
                if len({s for s, _ in advisories}) >= 6:
                    break
                await asyncio.sleep(0.05)
            by_kind = {s.split(".")[4]: a for s, a in advisories}
            snap = by_kind["SNAPSHOT_CREATE"]
            assert list(snap) == ["type", "id", "timestamp", "stream", "state", "client"]
            assert snap["type"] == "io.nats.jetstream.advisory.v1.snapshot_create"
            assert snap["state"]["messages"] == 5 and snap["client"]["name"] == "backup"
            assert snap["client"]["id"] == nc.client_id
            done = by_kind["SNAPSHOT_COMPLETE"]
            assert list(done) == ["type", "id", "timestamp", "stream", "start", "end", "client"]
            rc = by_kind["RESTORE_CREATE"]
            assert list(rc) == ["type", "id", "timestamp", "stream", "client"]
            assert rc["client"]["name"] == "backup"
            rd = by_kind["RESTORE_COMPLETE"]
            assert list(rd) == ["type", "id", "timestamp", "stream", "start", "end", "bytes", "client"]
            assert rd["bytes"] == len(archive) and rd["type"] == "io.nats.jetstream.advisory.v1.restore_complete"
        finally:
            await nc.close()

    run(main)
