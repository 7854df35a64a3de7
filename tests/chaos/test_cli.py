"""`actor-nats kill` and `actor-nats tree` against a running server (the console script, run
as a subprocess), and the kill switch: without `debug { allow_kill: true }` nothing can be
killed, over HTTP or from the command line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.chaos.helpers import KILL_CONFIG

REFUSED = "kill is disabled: enable it with debug { allow_kill: true }"


def actor_nats(*args: str) -> subprocess.CompletedProcess:
    script = shutil.which("actor-nats")
    argv = [script] if script else [sys.executable, "-m", "actor_nats"]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def tree_rows(out: str) -> dict[str, list[str]]:
    """`actor-nats tree` output as actor name -> columns (KIND STATE MAILBOX RECEIVED
    RESTARTS AGE [extra...])."""
    lines = out.splitlines()
    assert lines[0].split()[:7] == ["ACTOR", "KIND", "STATE", "MAILBOX", "RECEIVED", "RESTARTS",
                                    "AGE"], out
    rows = {}
    for line in lines[1:-1]:
        cols = line.split()
        rows[cols[0]] = cols[1:]
    assert lines[-1].startswith(f"{len(rows)} actors, server "), lines[-1]
    return rows


def wait_restarts(srv, path: str, n: int, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        entry = srv.actorz_sync().get(path)
        if entry is not None and entry["restarts"] >= n and entry["state"] == "running":
            return entry
        assert time.monotonic() < deadline, f"{path} not restarted: {entry}"
        time.sleep(0.01)


@pytest.mark.parametrize("config", [None, "debug { allow_kill: false }\n"],
                         ids=["no-debug-block", "allow_kill-false"])
def test_kill_is_refused_unless_enabled(chaos, config):
    srv = chaos(config=config)
    status, body = srv.kill_sync("/server/router/shard-0")
    assert (status, body) == (403, {"error": REFUSED})
    status, body = srv.kill_sync("/server/no-such-actor")
    assert status == 403, "refused before the path is even looked at"

    cli = actor_nats("kill", "/server/router/shard-0", "-s", srv.base)
    assert cli.returncode == 1, cli
    assert cli.stderr.strip() == f"actor-nats kill: {REFUSED}"
    assert cli.stdout == ""

    tree = srv.actorz_sync()
    assert all(a["restarts"] == 0 and a["state"] == "running" for a in tree.values()), tree
    assert srv.server.proc.poll() is None
    assert "Killing actor" not in srv.server.log()


def test_cli_kill_then_tree_shows_the_restart(chaos):
    srv = chaos(config=KILL_CONFIG)
    out = actor_nats("tree", "-s", srv.base)
    assert out.returncode == 0, out
    rows = tree_rows(out.stdout)
    assert rows["shard-2"][:2] == ["shard", "running"] and rows["shard-2"][4] == "0"

    cli = actor_nats("kill", "/server/router/shard-2", "-s", srv.base, "--reason", "from the cli")
    assert cli.returncode == 0, cli
    assert cli.stdout.strip() == "killed /server/router/shard-2"
    wait_restarts(srv, "/server/router/shard-2", 1)

    out = actor_nats("tree", "-s", srv.base)
    assert out.returncode == 0, out
    rows = tree_rows(out.stdout)
    assert set(rows) >= {"server", "config", "router", "clients", "listener", "monitor",
                         "shard-0", "shard-1", "shard-2", "shard-3"}
    for name, cols in rows.items():
        assert cols[1] == "running", (name, cols)
        assert cols[4] == ("1" if name == "shard-2" else "0"), (name, cols)
    assert "index=2" in rows["shard-2"]

    js = actor_nats("tree", "--json", "-s", srv.base)
    assert js.returncode == 0, js
    by_path = {a["path"]: a for a in json.loads(js.stdout)["actors"]}
    assert by_path["/server/router/shard-2"]["restarts"] == 1
    assert by_path["/server/router"]["restarts"] == 0

    missing = actor_nats("kill", "/server/router/shard-9", "-s", srv.base)
    assert missing.returncode == 1, missing
    assert missing.stderr.strip() == "actor-nats kill: no actor at '/server/router/shard-9'"

    log = srv.server.log()
    assert "Killing actor /server/router/shard-2 on request: from the cli" in log
    assert "/server/router: child shard-2 crashed: Crash: from the cli" in log
    assert srv.server.proc.poll() is None
