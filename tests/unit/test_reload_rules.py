"""The reload table (config/reload.py): the diff, the reference's wording and value formats,
and docs/reload.md generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from actor_nats.config import reload as rl
from actor_nats.config.options import Options, option_names


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (60, "1m0s"), (120, "2m0s"), (10, "10s"), (5400, "1h30m0s"), (0.5, "500ms"),
    (1.5, "1.5s"), (3600, "1h0m0s"), (0.000001, "1µs"), (90.25, "1m30.25s"),
])
def test_go_duration(seconds, text):
    assert rl.go_duration(seconds) == text


def test_every_option_has_a_rule():
    assert set(option_names()) - {"config_file", "explicit"} == set(rl.RULES)


def test_diff_and_messages():
    old = Options(port=4222, max_payload=1048576, ping_interval=120.0, debug=False)
    new = old.with_(max_payload=2097152, ping_interval=60.0, debug=True)
    changes = {c.name: c for c in rl.diff(old, new)}
    assert set(changes) == {"max_payload", "ping_interval", "debug"}
    assert rl.refused(list(changes.values())) is None
    assert changes["max_payload"].applied() == "Reloaded: max_payload = 2097152"
    assert changes["ping_interval"].applied() == "Reloaded: ping_interval = 1m0s"
    assert changes["debug"].applied() == "Reloaded: debug = true"


def test_refusal_uses_the_reference_field_names():
    old = Options(port=4222, lame_duck_duration=40.0)
    change = rl.refused(rl.diff(old, old.with_(port=4333)))
    assert change.refusal() == "config reload not supported for Port: old=4222, new=4333"
    change = rl.refused(rl.diff(old, old.with_(lame_duck_duration=50.0, max_payload=10)))
    assert change.refusal() == "config reload not supported for LameDuckDuration: old=40s, new=50s"


def test_client_advertise_is_logged_as_the_reference_does():
    old = Options(client_advertise="a:1")
    (change,) = rl.diff(old, old.with_(client_advertise="b:2"))
    assert change.applied() == "Reload: client_advertise = b:2"


def test_docs_are_generated_from_the_table():
    docs = Path(__file__).resolve().parents[2] / "docs" / "reload.md"
    assert docs.read_text() == rl.table_markdown(), \
        "docs/reload.md is stale: python -m actor_nats.config.reload > docs/reload.md"
