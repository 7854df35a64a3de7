"""Pull consumer priority groups (ADR-42) on both servers: the pull request checks (400/423),
pinned_client (the pin, its Nats-Pin-Id header, other clients held back, a wrong pin answered
423, UNPIN and the pin timeout with their advisories, the pin in CONSUMER.INFO), overflow
(min_pending / min_ack_pending) and prioritized (lower priority numbers served first).

Each client is its own raw connection; a pull request is a PUB to CONSUMER.MSG.NEXT with the
client's inbox as reply. Statuses and messages are read as the reference sends them.
"""

from __future__ import annotations

import json
import tempfile
import time

import pytest

from tests.wire.proto import connect

NEXT = "$JS.API.CONSUMER.MSG.NEXT.S.C"


class Client:
    """One connection with one inbox; `pull` sends a request, `reply` reads what comes back."""

    def __init__(self, server, name: str):
        self.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1})
        self.inbox = f"_INBOX.{name}"
        self.w.send(f"SUB {self.inbox}.* 1\r\n".encode())
        self.n = 0
        self.early: list = []
        assert self.w.sync() == []

    def publish(self, subject: str, body: bytes = b"") -> None:
        self.w.send(f"PUB {subject} {len(body)}\r\n".encode() + body + b"\r\n")

    def api(self, subject: str, body: dict | None = None) -> dict:
        return self.api_raw(subject, json.dumps(body).encode() if body is not None else b"")

    def api_raw(self, subject: str, data: bytes) -> dict:
        self.n += 1
        reply = f"{self.inbox}.{self.n}"
        self.w.send(f"PUB {subject} {reply} {len(data)}\r\n".encode() + data + b"\r\n")
        while True:  # an advisory may come before the reply (either server): kept for later
            op = self.w.read_op(5)
            if op.subject == reply.encode():
                return json.loads(op.payload)
            self.early.append(op)

    def advisory(self, timeout: float = 5.0) -> dict:
        op = self.early.pop(0) if self.early else self.w.read_op(timeout)
        assert op.subject.startswith(b"$JS.EVENT.ADVISORY."), op
        return json.loads(op.payload)

    def pull(self, **req) -> None:
        self.n += 1
        data = json.dumps(req).encode()
        self.w.send(f"PUB {NEXT} {self.inbox}.{self.n} {len(data)}\r\n".encode() + data + b"\r\n")

    def reply(self, timeout: float = 5.0):
        """(status line or None, headers dict, payload) of the next message to our inbox."""
        op = self.w.read_op(timeout)
        status, headers = None, {}
        if op.headers:
            lines = op.headers.decode().split("\r\n")
            status = lines[0][len("NATS/1.0"):].strip() or None
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip()] = v.strip()
        return status, headers, op.payload

    def subscribe(self, subject: str, sid: int) -> None:
        self.w.send(f"SUB {subject} {sid}\r\n".encode())
        assert self.w.sync() == []

    def close(self):
        self.w.close()


@pytest.fixture
def js(impl, start_server):
    srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-jsprio-")])
    clients = []

    def client(name: str) -> Client:
        c = Client(srv, name)
        clients.append(c)
        return c

    yield client
    for c in clients:
        c.close()


def setup(admin: Client, messages: int, **consumer) -> None:
    assert "error" not in admin.api("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    cfg = {"durable_name": "C", "ack_policy": "explicit", **consumer}
    assert "error" not in admin.api("$JS.API.CONSUMER.CREATE.S.C", {"stream_name": "S", "config": cfg})
    for i in range(messages):
        assert admin.api_raw("s.1", str(i).encode())["seq"] == i + 1  # acked: stored


@pytest.mark.parametrize("consumer, request_, status", [
    ({"priority_policy": "pinned_client", "priority_groups": ["A"]}, {"batch": 1}, "400 Bad Request - Priority Group missing"),
    ({"priority_policy": "pinned_client", "priority_groups": ["A"]}, {"batch": 1, "group": "B"}, "400 Bad Request - Invalid Priority Group"),
    ({"priority_policy": "pinned_client", "priority_groups": ["A"]}, {"batch": 1, "group": "A", "min_pending": 1},
     "400 Bad Request - Not a Overflow Priority consumer"),
    ({"priority_policy": "overflow", "priority_groups": ["A"]}, {"batch": 1, "group": "A", "id": "X"},
     "400 Bad Request - Not a Pinned Client Priority consumer"),
    ({"priority_policy": "prioritized", "priority_groups": ["A"]}, {"batch": 1, "group": "A", "priority": 10},
     "400 Bad Request - Priority must be between 0 and 9"),
    ({}, {"batch": 1, "min_ack_pending": 3}, "400 Bad Request - Not a Overflow Priority consumer"),
])
def test_pull_request_checks(js, consumer, request_, status):
    admin = js("admin")
    setup(admin, 1, **consumer)
    admin.pull(**request_)
    assert admin.reply()[0] == status


def test_pinned_client(js):
    admin, a, b = js("admin"), js("a"), js("b")
    setup(admin, 5, priority_policy="pinned_client", priority_groups=["A"])
    info = admin.api("$JS.API.CONSUMER.INFO.S.C")
    assert info["config"]["priority_timeout"] == 120_000_000_000
    assert info["priority_groups"] == [{"group": "A", "pinned_ts": "0001-01-01T00:00:00Z"}]
    admin.subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.S.C", 9)

    a.pull(batch=1, group="A", expires=5_000_000_000)
    status, headers, payload = a.reply()
    assert status is None and payload == b"0"
    pin = headers["Nats-Pin-Id"]
    assert len(pin) > 0
    adv = admin.advisory()
    assert adv["type"] == "io.nats.jetstream.advisory.v1.consumer_group_pinned"
    assert (adv["account"], adv["stream"], adv["consumer"], adv["group"], adv["pinned_id"]) == \
        ("$G", "S", "C", "A", pin)
    state = admin.api("$JS.API.CONSUMER.INFO.S.C")["priority_groups"]
    assert state[0]["group"] == "A" and state[0]["pinned_client_id"] == pin and state[0]["pinned_ts"]

    # someone else: held back while the pin holds (answered only at expiry), a wrong pin at once
    b.pull(batch=1, group="A", expires=500_000_000)
    assert b.reply()[0].startswith("408 Request Timeout")
    b.pull(batch=1, group="A", expires=5_000_000_000, id="not-the-pin")
    assert b.reply()[0] == "423 Nats-Pin-Id mismatch"

    # the pinned client goes on with its pin
    a.pull(batch=2, group="A", expires=5_000_000_000, id=pin)
    got = [a.reply() for _ in range(2)]
    assert [p for _, _, p in got] == [b"1", b"2"]
    assert all(h["Nats-Pin-Id"] == pin for _, h, _ in got)

    # UNPIN: advised, and a waiting request of another client gets a new pin
    b.pull(batch=1, group="A", expires=5_000_000_000)
    assert admin.api("$JS.API.CONSUMER.UNPIN.S.C", {"group": "A"}) == \
        {"type": "io.nats.jetstream.api.v1.consumer_unpin_response"}
    adv = admin.advisory()
    assert adv["type"] == "io.nats.jetstream.advisory.v1.consumer_group_unpinned"
    assert (adv["group"], adv["reason"]) == ("A", "admin")
    status, headers, payload = b.reply()
    assert payload == b"3" and headers["Nats-Pin-Id"] not in ("", pin)
    assert admin.advisory()["pinned_id"] == headers["Nats-Pin-Id"]

    # the old pin is now wrong
    a.pull(batch=1, group="A", expires=5_000_000_000, id=pin)
    assert a.reply()[0] == "423 Nats-Pin-Id mismatch"


def test_pin_times_out_when_the_pinned_client_stops_asking(js):
    admin, a, b = js("admin"), js("a"), js("b")
    setup(admin, 3, priority_policy="pinned_client", priority_groups=["A"], priority_timeout=500_000_000)
    admin.subscribe("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.C", 9)
    a.pull(batch=1, group="A", expires=5_000_000_000)
    first_pin = a.reply()[1]["Nats-Pin-Id"]
    adv = admin.advisory(10)  # a asks for nothing more: the pin times out
    assert (adv["group"], adv["reason"]) == ("A", "timeout")
    b.pull(batch=1, group="A", expires=5_000_000_000)
    status, headers, payload = b.reply()
    assert payload == b"1" and headers["Nats-Pin-Id"] != first_pin


def test_overflow_serves_a_request_only_past_its_thresholds(js):
    admin, a = js("admin"), js("a")
    setup(admin, 3, priority_policy="overflow", priority_groups=["A"])
    a.pull(batch=1, group="A", min_pending=10, expires=500_000_000)
    assert a.reply()[0].startswith("408 Request Timeout")
    a.pull(batch=1, group="A", min_pending=3, expires=5_000_000_000)
    status, headers, payload = a.reply()
    assert status is None and payload == b"0" and "Nats-Pin-Id" not in headers
    # one delivered and not acked: min_ack_pending 1 is met
    a.pull(batch=1, group="A", min_ack_pending=1, expires=5_000_000_000)
    assert a.reply()[2] == b"1"
    a.pull(batch=1, group="A", expires=5_000_000_000)  # no thresholds: always served
    assert a.reply()[2] == b"2"


def test_prioritized_serves_the_lower_priority_number_first(js):
    admin, low, high = js("admin"), js("low"), js("high")
    setup(admin, 0, priority_policy="prioritized", priority_groups=["A"])
    low.pull(batch=1, group="A", priority=5, expires=5_000_000_000)
    high.pull(batch=1, group="A", priority=1, expires=5_000_000_000)
    deadline = time.monotonic() + 5  # the reference queues pull requests asynchronously
    while admin.api("$JS.API.CONSUMER.INFO.S.C")["num_waiting"] != 2:
        assert time.monotonic() < deadline, "the two pull requests never waited"
        time.sleep(0.01)
    admin.publish("s.1", b"first")
    assert high.reply()[2] == b"first"
    admin.publish("s.1", b"second")
    assert low.reply()[2] == b"second"


def test_waiting_requests_take_messages_in_turn(js):
    """Without a priority policy too: one message to each waiting request in turn."""
    admin, a, b = js("admin"), js("a"), js("b")
    setup(admin, 0)
    a.pull(batch=5, expires=5_000_000_000)
    deadline = time.monotonic() + 5
    while admin.api("$JS.API.CONSUMER.INFO.S.C")["num_waiting"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    b.pull(batch=5, expires=5_000_000_000)
    while admin.api("$JS.API.CONSUMER.INFO.S.C")["num_waiting"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for i in range(4):
        assert admin.api_raw("s.1", str(i).encode())["seq"] == i + 1
    assert [a.reply()[2], a.reply()[2]] == [b"0", b"2"]
    assert [b.reply()[2], b.reply()[2]] == [b"1", b"3"]
