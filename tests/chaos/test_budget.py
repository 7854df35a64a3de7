"""Restart budgets (OTP's intensity within period): a supervisor that has to restart its
children too often gives up and fails itself, so its own supervisor decides. The Router
(20 shard restarts in 5 s) escalates to the root, which restarts it with fresh shards; the
root (5 restarts in 10 s) gives up by ending the process non-zero with a clear log line.

Kills are sent one at a time, each after the previous restart is visible, and counted: the
budget decides after how many kills a supervisor gives up, not the clock (on a slow machine
the loop simply needs more kills to get enough of them into one period).
"""

from __future__ import annotations

import asyncio
import re
import urllib.error

from tests.chaos.helpers import Traffic
from tests.interop.helpers import Clients, run

ROUTER_INTENSITY = 20
ROOT_INTENSITY = 5
MAX_KILLS = 400


def test_router_gives_up_after_too_many_shard_restarts_and_is_restarted(chaos):
    srv = chaos()

    async def main():
        async with Clients(srv.url) as clients:
            t = await Traffic.create(srv, clients)
            tree = await srv.actorz()
            shards = srv.shard_paths(tree)
            router_before = tree["/server/router"]["restarts"]
            root_before = tree["/server"]["restarts"]
            t.publisher.start()
            kills = 0
            while True:
                assert kills < MAX_KILLS, "the router never gave up"
                path = shards[kills % len(shards)]
                now = await srv.actorz()
                restarts = now[path]["restarts"]
                await srv.kill(path, "chaos: budget")
                kills += 1
                while True:  # the shard restarted, or the router gave up and was restarted
                    now = await srv.actorz()
                    if now["/server/router"]["restarts"] > router_before:
                        break
                    e = now.get(path)
                    if e is not None and e["restarts"] > restarts and e["state"] == "running":
                        break
                    await asyncio.sleep(0.002)
                if now["/server/router"]["restarts"] > router_before:
                    break
            print(f"\n[chaos] the router gave up after {kills} shard kills")
            assert kills > ROUTER_INTENSITY
            now = await srv.wait_restarted("/server/router", router_before)
            assert now["restarts"] == router_before + 1
            tree = await srv.actorz()
            assert tree["/server"]["restarts"] == root_before
            for p in shards:
                assert tree[p]["state"] == "running"
            await t.markers()  # the new router's shards have every subscription
            lost = await t.stop_and_count()
            print(f"[chaos] {sum(lost.values())} messages lost over {kills} shard kills "
                  f"and one router restart")
            await t.assert_connections_intact()
            await t.close()

    run(main, timeout=120)
    assert srv.server.proc.poll() is None
    log = srv.server.log()
    assert (f"/server/router: more than {ROUTER_INTENSITY} restarts in 5.0s; giving up"
            in log), log[-3000:]
    assert "supervisor tree gave up" not in log


def test_root_gives_up_and_the_process_exits_non_zero(chaos):
    srv = chaos()
    server = srv.server

    def router_restarts():
        return srv.actorz_sync()["/server/router"]["restarts"]

    kills = 0
    while server.proc.poll() is None:
        assert kills < MAX_KILLS, "the root never gave up"
        try:
            before = router_restarts()
            status, body = srv.kill_sync("/server/router", "chaos: root budget")
        except (urllib.error.URLError, ConnectionError):
            break  # the process is going away
        assert status == 200, body
        kills += 1
        while server.proc.poll() is None:
            try:
                if router_restarts() > before:
                    break
            except (urllib.error.URLError, ConnectionError, KeyError):
                pass  # exiting, or the router is between incarnations
    code = server.wait(timeout=30)
    log = server.log()
    print(f"\n[chaos] the root gave up after {kills} router kills; exit code {code}")
    assert code != 0
    assert kills > ROOT_INTENSITY
    lines = [ln for ln in log.splitlines() if "supervisor tree gave up" in ln]
    assert len(lines) == 1, log[-3000:]
    print(f"[chaos] {lines[0]}")
    assert re.search(r"\[FTL\] supervisor tree gave up: .*more than 5 restarts in 10\.0s",
                     lines[0]), lines[0]
    assert "Server is ready" in log


def test_killing_the_root_ends_the_process_non_zero(chaos):
    """The root has no supervisor: its failure is the tree giving up."""
    srv = chaos()
    status, body = srv.kill_sync("/server", "chaos: the root itself")
    assert status == 200, body
    code = srv.server.wait(timeout=30)
    assert code != 0
    lines = [ln for ln in srv.server.log().splitlines() if "supervisor tree gave up" in ln]
    assert len(lines) == 1 and "[FTL]" in lines[0] and "Crash: chaos: the root itself" in lines[0], \
        srv.server.log()[-3000:]
