"""nats-py's key-value store (`js.create_key_value`) against both servers (`-js -sd <tmpdir>`).

The server sees only streams, direct gets and ordered consumers (NATS.md §7.6): put/get,
create and update with revisions, delete and purge markers, history, keys, watch with and
without history, and TTL expiry.
"""

from __future__ import annotations

import asyncio
import tempfile

import nats.js.errors
import pytest

from tests.interop.helpers import Clients, run, unique, TIMEOUT


@pytest.fixture
def js_server(impl, start_server):
    return start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-js-")])


def test_put_get_update_create(js_server):
    async def main():
        async with Clients(js_server.url) as clients:
            nc = await clients.connect()
            js = nc.jetstream()
            kv = await js.create_key_value(bucket=unique("B"), history=5)
            r1 = await kv.put("color", b"red")
            assert r1 == 1
            e = await kv.get("color")
            assert (e.key, e.value, e.revision) == ("color", b"red", 1)
            r2 = await kv.update("color", b"blue", last=r1)
            assert r2 == 2
            with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
                await kv.update("color", b"green", last=r1)
            with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
                await kv.create("color", b"green")
            r3 = await kv.create("size", b"L")
            assert r3 == 3
            assert (await kv.get("color")).value == b"blue"
            assert (await kv.get("color", revision=1)).value == b"red"
            with pytest.raises(nats.js.errors.KeyNotFoundError):
                await kv.get("missing")
            status = await kv.status()
            assert status.values == 3 and status.history == 5

    run(main)


def test_delete_purge_history_keys(js_server):
    async def main():
        async with Clients(js_server.url) as clients:
            nc = await clients.connect()
            js = nc.jetstream()
            kv = await js.create_key_value(bucket=unique("B"), history=10)
            for v in (b"1", b"2", b"3"):
                await kv.put("a", v)
            await kv.put("b", b"x")
            await kv.put("c.d", b"y")
            hist = await kv.history("a")
            assert [(e.value, e.revision) for e in hist] == [(b"1", 1), (b"2", 2), (b"3", 3)]
            assert sorted(await kv.keys()) == ["a", "b", "c.d"]
            await kv.delete("b")
            with pytest.raises(nats.js.errors.KeyNotFoundError):  # nats-py hides KeyDeletedError
                await kv.get("b")
            assert sorted(await kv.keys()) == ["a", "c.d"]
            # a create over a deleted key is allowed
            await kv.create("b", b"again")
            assert (await kv.get("b")).value == b"again"
            await kv.purge("a")
            hist = await kv.history("a")
            assert len(hist) == 1 and hist[0].operation == "PURGE"
            with pytest.raises(nats.js.errors.KeyNotFoundError):
                await kv.get("a")
            assert sorted(await kv.keys()) == ["b", "c.d"]
            # re-created after the purge, the old revisions are gone
            await kv.put("a", b"new")
            assert [e.value for e in await kv.history("a")] == [b"", b"new"]

    run(main)


def test_watch_with_and_without_history(js_server):
    async def main():
        async with Clients(js_server.url) as clients:
            nc = await clients.connect()
            js = nc.jetstream()
            kv = await js.create_key_value(bucket=unique("B"), history=10)
            await kv.put("k1", b"a")
            await kv.put("k1", b"b")
            await kv.put("k2", b"c")
            # default: the last value of each key, then the marker (None), then updates
            w = await kv.watchall()
            seen = []
            while True:
                e = await w.updates(timeout=TIMEOUT)
                if e is None:
                    break
                seen.append((e.key, e.value))
            assert seen == [("k1", b"b"), ("k2", b"c")]
            await kv.put("k2", b"d")
            await kv.delete("k1")
            e = await w.updates(timeout=TIMEOUT)
            assert (e.key, e.value, e.operation) == ("k2", b"d", None)
            e = await w.updates(timeout=TIMEOUT)
            assert (e.key, e.operation) == ("k1", "DEL")
            await w.stop()
            # include_history: every revision
            w = await kv.watch(">", include_history=True)
            seen = []
            while True:
                e = await w.updates(timeout=TIMEOUT)
                if e is None:
                    break
                seen.append((e.key, e.value, e.revision))
            assert seen == [("k1", b"a", 1), ("k1", b"b", 2), ("k2", b"c", 3), ("k2", b"d", 4),
                            ("k1", b"", 5)]
            await w.stop()
            # one key: its last value, the marker, then new puts
            w = await kv.watch("k2")
            e = await w.updates(timeout=TIMEOUT)
            assert (e.key, e.value) == ("k2", b"d")
            assert await w.updates(timeout=TIMEOUT) is None
            await kv.put("k1", b"other")
            await kv.put("k2", b"e")
            e = await w.updates(timeout=TIMEOUT)
            assert (e.key, e.value) == ("k2", b"e")
            await w.stop()

    run(main)


def test_ttl_expires_values(js_server):
    async def main():
        async with Clients(js_server.url) as clients:
            nc = await clients.connect()
            js = nc.jetstream()
            kv = await js.create_key_value(bucket=unique("B"), ttl=1.0)
            await kv.put("short", b"lived")
            assert (await kv.get("short")).value == b"lived"
            await asyncio.sleep(1.6)
            with pytest.raises(nats.js.errors.KeyNotFoundError):
                await kv.get("short")

    run(main)
