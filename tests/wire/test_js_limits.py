"""JetStream resource limits on publish, on both servers: an account's `max_file`/`max_mem`
(10002 "resource limits exceeded for account" when a message would take its usage past the
limit) and the server's `max_file_store`/`max_memory_store` (10023 "insufficient resources"
once more than the limit is stored). Usage goes down again with a purge or a stream delete.

Every count below was observed on the reference: 100-byte messages on subject `s.1` take 133
bytes in a file stream and 119 in a memory stream.
"""

from __future__ import annotations

import json
import tempfile

import pytest

from tests.wire.test_js_stream_api import Requester

ACCOUNT_LIMITS = """
jetstream {{ store_dir: "{sd}" }}
accounts {{ A {{ jetstream {{ max_file: 2000, max_mem: 2000 }}, users [{{user: a, password: a}}] }} }}
"""
SERVER_LIMITS = """
jetstream {{ store_dir: "{sd}", max_file_store: 2000, max_memory_store: 2000 }}
accounts {{ A {{ jetstream: enabled, users [{{user: a, password: a}}] }} }}
"""
ACCOUNT_ERROR = {"error": {"code": 400, "err_code": 10002, "description": "resource limits exceeded for account"},
                 "stream": "S", "seq": 0}
SERVER_ERROR = {"error": {"code": 503, "err_code": 10023, "description": "insufficient resources"},
                "stream": "S", "seq": 0}


class UserRequester(Requester):
    def __init__(self, server):
        from tests.wire.proto import connect

        self.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1,
                                  "user": "a", "pass": "a"})
        self.w.send(b"SUB _INBOX.t.* 1\r\n")
        self.n = 0


def api(r: Requester, subject: str, body: dict | None = None) -> dict:
    resp = r.request(subject, json.dumps(body).encode() if body is not None else b"")
    assert resp != "timeout", subject
    return json.loads(resp[1])


def publish_until_refused(r: Requester, limit: int = 40) -> tuple[int, dict]:
    """(messages accepted, the first refusal's PubAck)."""
    for n in range(limit):
        ack = json.loads(r.request("s.1", b"x" * 100)[1])
        if "error" in ack:
            return n, ack
    raise AssertionError(f"no refusal after {limit} messages")


@pytest.fixture
def limited(impl, start_server):
    def start(template: str):
        srv = start_server(impl, config=template.format(sd=tempfile.mkdtemp(prefix="an-jslim-")))
        return UserRequester(srv)
    return start


@pytest.mark.parametrize("storage, accepted, used", [("file", 15, 1995), ("memory", 16, 1904)])
def test_account_limit_refuses_the_message_that_would_pass_it(limited, storage, accepted, used):
    r = limited(ACCOUNT_LIMITS)
    assert "error" not in api(r, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "storage": storage})
    assert publish_until_refused(r) == (accepted, ACCOUNT_ERROR)
    info = api(r, "$JS.API.INFO")
    assert info["memory" if storage == "memory" else "storage"] == used
    assert api(r, "$JS.API.STREAM.INFO.S")["state"]["messages"] == accepted


@pytest.mark.parametrize("storage, accepted", [("file", 16), ("memory", 17)])
def test_server_limit_refuses_once_it_is_passed(limited, storage, accepted):
    r = limited(SERVER_LIMITS)
    assert "error" not in api(r, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "storage": storage})
    assert publish_until_refused(r) == (accepted, SERVER_ERROR)


def test_a_purge_gives_the_account_its_room_back(limited):
    r = limited(ACCOUNT_LIMITS)
    api(r, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    assert publish_until_refused(r)[0] == 15
    assert api(r, "$JS.API.STREAM.PURGE.S")["purged"] == 15
    assert api(r, "$JS.API.INFO")["storage"] == 0
    assert publish_until_refused(r) == (15, ACCOUNT_ERROR)


def test_a_deleted_stream_gives_the_account_its_room_back(limited):
    r = limited(ACCOUNT_LIMITS)
    api(r, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    assert publish_until_refused(r)[0] == 15
    assert api(r, "$JS.API.STREAM.DELETE.S")["success"] is True
    api(r, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    assert publish_until_refused(r) == (15, ACCOUNT_ERROR)
