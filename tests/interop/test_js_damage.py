"""A file stream whose block file is damaged while the server is down: at the next start the
damage is detected (every record carries a checksum), logged, and reported as `state.lost` in
STREAM.INFO; the damaged message is skipped, every other message loads, and the server and the
stream keep working. actor-nats only: the reference has been shown to lose data silently here.
"""

from __future__ import annotations

import glob
import os

import nats

from tests.interop.helpers import TIMEOUT, run
from tests.servers import free_port


async def _fill(url: str, n: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="DMG", subjects=["dmg.>"])
    for i in range(n):
        await js.publish(f"dmg.{i}", f"payload-{i:04d}".encode() * 4)
    await nc.close()


async def _read(url: str):
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info("DMG")
    got = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            got.append((await js.get_msg("DMG", seq)).data)
        except nats.js.errors.NotFoundError:
            pass
    ack = await js.publish("dmg.after", b"still works", timeout=TIMEOUT)
    await nc.close()
    return info, got, ack


def test_flipped_byte_is_reported_and_the_rest_loads(start_server, tmp_path):
    port = free_port()
    args = ["-js", "-sd", str(tmp_path)]
    srv = start_server("actor", args=args, port=port)
    run(_fill, srv.url, 50)
    srv.stop()
    blocks = sorted(glob.glob(str(tmp_path / "jetstream" / "$G" / "streams" / "DMG" / "msgs" / "*.blk")))
    assert blocks, os.listdir(tmp_path)
    data = bytearray(open(blocks[0], "rb").read())
    at = data.find(b"payload-0025")  # inside message 26's payload
    assert at > 0
    data[at + 3] ^= 0x01
    open(blocks[0], "wb").write(bytes(data))

    srv = start_server("actor", args=args, port=port)
    info, got, ack = run(_read, srv.url)
    assert b"payload-0025" * 4 not in got
    assert len(got) == 49 and got[0] == b"payload-0000" * 4 and got[-1] == b"payload-0049" * 4
    assert ack.seq == 51  # the damaged sequence is not handed out again
    log = srv.log()
    assert "store damaged" in log and "1 damaged messages skipped" in log
    assert srv.proc.poll() is None
