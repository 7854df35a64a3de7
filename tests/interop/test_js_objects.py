"""nats-py's object store (`js.create_object_store`) against both servers (`-js -sd <tmpdir>`).

Objects are chunks on `$O.<bucket>.C.<nuid>` plus a rolled-up metadata message on
`$O.<bucket>.M.<name>` (NATS.md §7.6); reading one back is an ordered consumer with flow
control. A 10 MB object makes both go through many chunks and flow-control windows.
"""

from __future__ import annotations

import os
import tempfile

import nats.js.errors
import pytest

from tests.interop.helpers import Clients, run, unique


@pytest.fixture
def js_server(impl, start_server):
    return start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-js-")])


def test_put_get_list_delete(js_server):
    async def main():
        async with Clients(js_server.url) as clients:
            nc = await clients.connect()
            js = nc.jetstream()
            obs = await js.create_object_store(bucket=unique("O"))
            big = os.urandom(10 * 1024 * 1024)
            info = await obs.put("big.bin", big)
            assert info.size == len(big) and info.chunks == 80
            small = await obs.put("small.txt", b"hello")
            assert small.size == 5
            got = await obs.get("big.bin")
            assert got.data == big
            assert got.info.digest == info.digest
            assert (await obs.get("small.txt")).data == b"hello"
            names = sorted(o.name for o in await obs.list())
            assert names == ["big.bin", "small.txt"]
            await obs.delete("big.bin")
            with pytest.raises((nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError)):
                await obs.get("big.bin")
            names = sorted(o.name for o in await obs.list() if not o.deleted)
            assert names == ["small.txt"]
            # replacing an object removes the old chunks
            await obs.put("small.txt", b"bye")
            assert (await obs.get("small.txt")).data == b"bye"
            status = await obs.status()
            assert not status.sealed

    run(main, timeout=120)
