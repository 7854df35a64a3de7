"""scripts/chaos_report.py in its quick mode: it runs to the end, stops its server, and its
table has a row per actor kind with the restarts each kill should cause."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["shard-0", "shard-1", "shard-2", "shard-3", "router", "client", "config", "listener",
         "monitor", "clients"]


def test_chaos_report_quick(tmp_path):
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "chaos_report.py"), "--quick",
                           "--quiet", "--kills", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("kind "))
    for col in ("kills", "restarts", "restart p50", "delivery p50", "lost", "other disc."):
        assert col in lines[header]
    rows = {ln.split()[0]: ln.split() for ln in lines[header + 2:] if ln.strip()
            and not ln.startswith(" ")}
    for kind in KINDS:
        assert kind in rows, (kind, proc.stdout)
        assert rows[kind][1] == "1", rows[kind]  # one kill each
    assert "router (20 in 5s): gave up after" in proc.stdout
    assert "as designed" in proc.stdout and "NOT as designed" not in proc.stdout

    report = json.loads(out.read_text())
    assert report["meta"]["ok"] is True
    by_kind = {r["kind"]: r for r in report["kinds"]}
    for kind in KINDS:
        r = by_kind[kind]
        assert r["kills"] == 1 and r["errors"] == 0, r
        assert r["restarts"] == (0 if kind == "client" else 1), r
        assert r["restart_p50_ms"] is not None and r["delivery_p50_ms"] is not None, r
        if kind != "clients":
            assert r["other_disconnects"] == 0, r
    assert report["escalation"]["router"]["as_designed"] is True
    assert report["escalation"]["root"]["as_designed"] is True
    assert report["escalation"]["root"]["exit_code"] not in (0, None)
