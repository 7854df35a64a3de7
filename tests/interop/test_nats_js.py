"""nats.js, the JavaScript client, against both servers (`-js -sd <tmpdir>`): JetStream as nats.js
users reach it, through the client's own key-value, object store, stream and consumer APIs.

Each test starts one server and runs one scenario of a node script in tests/interop/node
(`node <script>.mjs <url> <scenario>`, nats.js v3: @nats-io/transport-node, jetstream, kv, obj,
pinned by package-lock.json). The script prints one JSON line holding only what is the same on
every run (no times, no nuids or server ids), and the test compares it with the value written
here, which is what nats-server 2.15.1 answers. Where actor-nats answers differently the actor
case is xfail(strict=True) and the reason says what differs; the reference is right.

The node packages are not installed by the tests (they never touch the network): run
`npm ci --prefix tests/interop/node` once. Without node or tests/interop/node/node_modules the
module is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import selected_impls

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
# Each scenario stops itself after 20 s (common.mjs); this is the backstop for a hung node.
NODE_TIMEOUT = 45.0

if NODE is None:
    pytest.skip("nats.js interop tests need node on PATH", allow_module_level=True)
if not (NODE_DIR / "node_modules" / "@nats-io").is_dir():
    pytest.skip("nats.js is not installed: run `npm ci --prefix tests/interop/node` once",
                allow_module_level=True)


def impls(actor_xfail: str | None = None):
    """Parametrize `impl` over the selected servers; `actor_xfail` marks only the actor case."""
    params = []
    for impl in selected_impls():
        if impl == "actor" and actor_xfail:
            params.append(pytest.param(impl, marks=pytest.mark.xfail(strict=True, reason=actor_xfail)))
        else:
            params.append(pytest.param(impl))
    return pytest.mark.parametrize("impl", params)


def scenario(start_server, impl: str, tmp_path: Path, script: str, name: str):
    """Start `impl` with JetStream, run one scenario of `script` against it, return its JSON."""
    srv = start_server(impl, args=["-js", "-sd", str(tmp_path / "js")])
    try:
        proc = subprocess.run([NODE, script, srv.url, name], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed node already
        pytest.fail(f"node {script} {name} did not finish in {NODE_TIMEOUT}s:\n{e.stderr}")
    if proc.returncode != 0:
        pytest.fail(f"node {script} {name} exited {proc.returncode} against {impl}:\n"
                    f"{proc.stderr}{proc.stdout}")
    lines = proc.stdout.strip().splitlines()
    assert lines, f"node {script} {name} printed nothing:\n{proc.stderr}"
    return json.loads(lines[-1])


# -- how the scripts write what they saw ---------------------------------------------------------

# The metadata nats-server 2.15.1 adds to every stream and consumer config it returns.
METADATA = {"_nats.level": "5", "_nats.req.level": "0", "_nats.ver": "2.15.1"}


def api_error(code: int, err_code: int, description: str, cls: str = "JetStreamApiError") -> dict:
    """A JetStream API error as nats.js raises it (JetStreamApiError or a subclass)."""
    return {"error": cls, "message": description,
            "api": {"code": code, "err_code": err_code, "description": description}}


def client_error(cls: str, message: str) -> dict:
    """An error nats.js raises itself, without a JetStream API error behind it."""
    return {"error": cls, "message": message}


def counts(delivered, ack_floor, pending, ack_pending, redelivered=0, waiting=0) -> dict:
    """A consumer's info in short: (stream seq, consumer seq) pairs and the num_* fields."""
    return {"delivered": delivered[0], "delivered_consumer": delivered[1],
            "ack_floor": ack_floor[0], "ack_floor_consumer": ack_floor[1],
            "num_pending": pending, "num_ack_pending": ack_pending,
            "num_redelivered": redelivered, "num_waiting": waiting}


# KV entries are [key, value, revision, operation, length], watch entries add [isUpdate, delta];
# delivered messages are [stream, consumer, subject, data, stream seq, consumer seq, deliveries,
# pending]; listed objects are [name, size, chunks, digest, deleted].

# -- key-value (@nats-io/kv) ----------------------------------------------------------------------

KV_BASIC = {
    "put1": 1,
    "get1": ["color", "red", 1, "PUT", 3],
    "update_ok": 2,
    "update_wrong": api_error(400, 10071, "wrong last sequence: 2"),
    "create_existing": api_error(400, 10071, "wrong last sequence: 2"),
    "create_new": 3,
    "get_color": ["color", "blue", 2, "PUT", 4],
    "get_rev1": ["color", "red", 1, "PUT", 3],
    "get_missing": None,
    "put_json": 4,
    "get_json": {"name": "ada"},
    "empty_value": 5,
    "get_empty": ["empty", "", 5, "PUT", 0],
    "invalid_key": client_error("Error", "invalid key: bad key"),
}


@impls()
def test_kv_basic(impl, start_server, tmp_path):
    """put/get, update with the right and a stale revision, create on an existing key, get by revision."""
    assert scenario(start_server, impl, tmp_path, "kv.mjs", "basic") == KV_BASIC


KV_DELETE_PURGE = {
    "keys_before": ["a", "b", "c.d"],
    "keys_filtered": ["c.d"],
    "get_deleted": ["a", "", 6, "DEL", 0],
    "history_a": [
        ["a", "1", 1, "PUT", 1], ["a", "2", 2, "PUT", 1], ["a", "3", 3, "PUT", 1],
        ["a", "", 6, "DEL", 0],
    ],
    "keys_after_delete": ["b", "c.d"],
    "create_over_deleted": 7,
    "get_recreated": ["a", "again", 7, "PUT", 5],
    "get_purged": ["b", "", 8, "PURGE", 0],
    "history_b": [["b", "", 8, "PURGE", 0]],
    "keys_after_purge": ["a", "c.d"],
    "delete_wrong_rev": api_error(400, 10071, "wrong last sequence: 5"),
    "status": {"values": 7, "history": 10},
    "history_all": [
        "a:PUT:1", "a:PUT:2", "a:PUT:3", "c.d:PUT:5", "a:DEL:6", "a:PUT:7", "b:PURGE:8",
    ],
}


@impls()
def test_kv_delete_purge(impl, start_server, tmp_path):
    """delete (DEL marker), create over it, purge (PURGE rollup), history, keys() with a filter."""
    assert scenario(start_server, impl, tmp_path, "kv.mjs", "delete_purge") == KV_DELETE_PURGE


KV_WATCH = {
    "last": [
        ["k1", "b", 2, "PUT", 1, False, 1], ["k2", "c", 3, "PUT", 1, True, 0],
        ["k1", "d", 4, "PUT", 1, True, 0], ["k2", "", 5, "DEL", 0, True, 0],
        ["k3", "e", 6, "PUT", 1, True, 0],
    ],
    "updates": [
        ["k1", "d", 4, "PUT", 1, True, 0], ["k2", "", 5, "DEL", 0, True, 0],
        ["k3", "e", 6, "PUT", 1, True, 0],
    ],
    "all": [
        ["k1", "a", 1, "PUT", 1, False, 2], ["k1", "b", 2, "PUT", 1, False, 1],
        ["k2", "c", 3, "PUT", 1, True, 0], ["k1", "d", 4, "PUT", 1, True, 0],
        ["k2", "", 5, "DEL", 0, True, 0], ["k3", "e", 6, "PUT", 1, True, 0],
    ],
    "filtered": [["k2", "c", 3, "PUT", 1, True, 0], ["k2", "", 5, "DEL", 0, True, 0]],
    "no_deletes": [["k1", "d", 4, "PUT", 1, True, 0], ["k3", "e", 6, "PUT", 1, True, 0]],
    "extra": [0, 0, 0, 0, 0],
    "empty_bucket_watch": 0,
}


@impls()
def test_kv_watch(impl, start_server, tmp_path):
    """watch(): last values then updates, updates only, all history, one key, ignoring deletes."""
    assert scenario(start_server, impl, tmp_path, "kv.mjs", "watch") == KV_WATCH


KV_TTL = {
    "max_age": 1000000000,
    "duplicate_window": 1000000000,
    "before": ["x", "1", 1, "PUT", 1],
    "values_before": 2,
    "ttl": 1000,
    "after": None,
    "keys_after": [],
    "values_after": 0,
}


@impls()
def test_kv_ttl(impl, start_server, tmp_path):
    """A bucket with a 1 s ttl: the stream's max_age, and entries gone after 2.2 s."""
    assert scenario(start_server, impl, tmp_path, "kv.mjs", "ttl") == KV_TTL


KV_STATUS = {
    "status": {
        "bucket": "st",
        "values": 3,
        "history": 3,
        "ttl": 0,
        "backingStore": "file",
        "storage": "file",
        "replicas": 1,
        "description": "d",
        "max_bytes": 1048576,
        "maxValueSize": 1024,
        "size": 117,
        "compression": False,
    },
    "config": {
        "name": "KV_st",
        "description": "d",
        "subjects": ["$KV.st.>"],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": 1048576,
        "max_age": 0,
        "max_msgs_per_subject": 3,
        "max_msg_size": 1024,
        "discard": "new",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": 120000000000,
        "compression": "none",
        "allow_direct": True,
        "mirror_direct": False,
        "sealed": False,
        "deny_delete": False,
        "deny_purge": False,
        "allow_rollup_hdrs": True,
        "consumer_limits": {},
        "allow_msg_ttl": False,
        "metadata": METADATA,
    },
    "state": {
        "messages": 3,
        "bytes": 117,
        "first_seq": 1,
        "last_seq": 3,
        "num_subjects": 2,
        "consumer_count": 0,
    },
    "too_big": api_error(400, 10054, "message size exceeds maximum allowed"),
    "opened_get": ["a", "2", 2, "PUT", 1],
    "list": ["st", "st2"],
    "destroyed": True,
    "list_after_destroy": ["st2"],
    "open_missing": api_error(404, 10059, "stream not found", "StreamNotFoundError"),
}


@impls()
def test_kv_status(impl, start_server, tmp_path):
    """status() and the backing stream's config, maxValueSize, open(), list(), destroy()."""
    assert scenario(start_server, impl, tmp_path, "kv.mjs", "status") == KV_STATUS


# -- object store (@nats-io/obj) ------------------------------------------------------------------

OBJ_BIG = {
    "put": {
        "bucket": "big",
        "name": "blob.bin",
        "description": "ten megabytes",
        "size": 10485760,
        "chunks": 80,
        "digest": "SHA-256=dt6elFSgeNPYL2C39FV_GS0ahcrXX0Yf2QIqA0eqwjA=",
        "deleted": False,
        "has_nuid": True,
        "has_mtime": True,
        "max_chunk_size": 131072,
        "revision": 81,
        "metadata": {},
    },
    "digest_matches": True,
    "info_same_as_put": True,
    "get_error": None,
    "get_identical": True,
    "get_size": 10485760,
    "get_blob_identical": True,
    "list": [
        ["blob.bin", 10485760, 80, "SHA-256=dt6elFSgeNPYL2C39FV_GS0ahcrXX0Yf2QIqA0eqwjA=", False],
    ],
    "status": {
        "bucket": "big",
        "description": "",
        "ttl": 0,
        "storage": "file",
        "replicas": 1,
        "sealed": False,
        "size": 10491000,
        "backingStore": "JetStream",
        "compression": False,
        "messages": 81,
    },
    "delete": {
        "type": "io.nats.jetstream.api.v1.stream_purge_response",
        "success": True,
        "purged": 80,
    },
    "info_after_delete": {
        "bucket": "big",
        "name": "blob.bin",
        "description": "ten megabytes",
        "size": 0,
        "chunks": 0,
        "digest": "",
        "deleted": True,
        "has_nuid": True,
        "has_mtime": True,
        "max_chunk_size": 131072,
        "revision": 82,
        "metadata": {},
    },
    "get_after_delete": None,
    "list_after_delete": [],
    "messages_after_delete": 1,
}


@impls()
def test_obj_big(impl, start_server, tmp_path):
    """A 10 MB object: put from a stream, digest and size, read back identical, list, delete."""
    assert scenario(start_server, impl, tmp_path, "obj.mjs", "big") == OBJ_BIG


OBJ_SMALL = {
    "put_hello": {
        "bucket": "small",
        "name": "hello.txt",
        "description": "",
        "size": 11,
        "chunks": 1,
        "digest": "SHA-256=uU0nuZNNPgilLlLX2n2r-sSE7-N6U4DukIj3rOLvzek=",
        "deleted": False,
        "has_nuid": True,
        "has_mtime": True,
        "max_chunk_size": 131072,
        "revision": 2,
        "metadata": {},
    },
    "put_empty": {
        "bucket": "small",
        "name": "empty",
        "description": "",
        "size": 0,
        "chunks": 0,
        "digest": "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",
        "deleted": False,
        "has_nuid": True,
        "has_mtime": True,
        "max_chunk_size": 131072,
        "revision": 3,
        "metadata": {},
    },
    "put_chunked": {
        "bucket": "small",
        "name": "chunked",
        "description": "",
        "size": 1000,
        "chunks": 8,
        "digest": "SHA-256=baAnpdHIEvTI_sPdcHbLe1zZuyTR1u6CCarCIywZQmI=",
        "deleted": False,
        "has_nuid": True,
        "has_mtime": True,
        "max_chunk_size": 128,
        "revision": 12,
        "metadata": {},
    },
    "chunked_digest_matches": True,
    "get_hello": "hello world",
    "get_empty": 0,
    "get_chunked_identical": True,
    "replace_hello": {
        "bucket": "small",
        "name": "hello.txt",
        "description": "",
        "size": 11,
        "chunks": 1,
        "digest": "SHA-256=OQjFZ_7acrwNvbLf8ED-DTRw3NUblCN0N4pHaTDb9rM=",
        "deleted": False,
        "has_nuid": True,
        "has_mtime": True,
        "max_chunk_size": 131072,
        "revision": 14,
        "metadata": {},
    },
    "get_replaced": "hello again",
    "info_updated": {
        "bucket": "small",
        "name": "empty",
        "description": "nothing here",
        "size": 0,
        "chunks": 0,
        "digest": "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",
        "deleted": False,
        "has_nuid": True,
        "has_mtime": True,
        "revision": 15,
        "metadata": {"k": "v"},
    },
    "link": {
        "bucket": "small",
        "name": "hello-link",
        "description": "",
        "deleted": False,
        "has_nuid": False,
        "has_mtime": False,
        "revision": 16,
        "metadata": {},
    },
    "get_via_link": "hello again",
    "missing": None,
    "list": [
        ["chunked", 1000, 8, "SHA-256=baAnpdHIEvTI_sPdcHbLe1zZuyTR1u6CCarCIywZQmI=", False],
        ["empty", 0, 0, "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=", False],
        ["hello-link", None, None, None, None],
        ["hello.txt", 11, 1, "SHA-256=OQjFZ_7acrwNvbLf8ED-DTRw3NUblCN0N4pHaTDb9rM=", False],
    ],
    "messages": 14,
    "stream_config": {
        "name": "OBJ_small",
        "description": "small things",
        "subjects": ["$O.small.C.>", "$O.small.M.>"],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
        "discard": "new",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": 120000000000,
        "compression": "none",
        "allow_direct": True,
        "mirror_direct": False,
        "sealed": False,
        "deny_delete": False,
        "deny_purge": False,
        "allow_rollup_hdrs": True,
        "consumer_limits": {},
        "allow_msg_ttl": False,
        "metadata": METADATA,
    },
    "buckets": ["small"],
    "destroyed": True,
}


@impls()
def test_obj_small(impl, start_server, tmp_path):
    """Small, empty and many-chunk objects, replace, update of the meta, links, the stream config."""
    assert scenario(start_server, impl, tmp_path, "obj.mjs", "small") == OBJ_SMALL


OBJ_SEALED = {
    "sealed": True,
    "stream_sealed": True,
    "get_after_seal": "still here",
    "put_sealed": api_error(400, 10109, "invalid operation on sealed stream"),
    "delete_sealed": api_error(400, 10109, "invalid operation on sealed stream"),
    "list_after": ["kept"],
    "messages": 2,
}


@impls()
def test_obj_sealed(impl, start_server, tmp_path):
    """seal(): still readable, and put and delete fail with the sealed-stream error."""
    assert scenario(start_server, impl, tmp_path, "obj.mjs", "sealed") == OBJ_SEALED


OBJ_WATCH = {
    "history": [
        {"name": "a", "size": 1, "deleted": False, "isUpdate": False},
        {"name": "b", "size": 1, "deleted": False, "isUpdate": True},
        {"name": "a", "size": 1, "deleted": False, "isUpdate": True},
        {"name": "b", "size": 0, "deleted": True, "isUpdate": True},
        {"name": "c", "size": 1, "deleted": False, "isUpdate": True},
    ],
    "updates": [
        {"name": "a", "size": 1, "deleted": False, "isUpdate": True},
        {"name": "b", "size": 0, "deleted": True, "isUpdate": True},
        {"name": "c", "size": 1, "deleted": False, "isUpdate": True},
    ],
    "no_deletes": [
        {"name": "a", "size": 1, "deleted": False, "isUpdate": True},
        {"name": "c", "size": 1, "deleted": False, "isUpdate": True},
    ],
    "extra": [0, 0, 0],
}


@impls()
def test_obj_watch(impl, start_server, tmp_path):
    """watch() with and without history, and ignoring deletes."""
    assert scenario(start_server, impl, tmp_path, "obj.mjs", "watch") == OBJ_WATCH


# -- streams and consumers (@nats-io/jetstream) ---------------------------------------------------

JS_STREAMS = {
    "add": {
        "type": "io.nats.jetstream.api.v1.stream_create_response",
        "config": {
            "name": "ORDERS",
            "subjects": ["orders.>"],
            "retention": "limits",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
            "max_msgs_per_subject": -1,
            "max_msg_size": -1,
            "discard": "old",
            "storage": "file",
            "num_replicas": 1,
            "duplicate_window": 120000000000,
            "compression": "none",
            "allow_direct": False,
            "mirror_direct": False,
            "sealed": False,
            "deny_delete": False,
            "deny_purge": False,
            "allow_rollup_hdrs": False,
            "consumer_limits": {},
            "allow_msg_ttl": False,
            "metadata": METADATA,
        },
        "state": {"messages": 0, "bytes": 0, "first_seq": 0, "last_seq": 0, "consumer_count": 0},
        "did_create": True,
    },
    "add_again_same": True,
    "add_conflict": api_error(400, 10058, "stream name already in use with a different configuration"),
    "add_overlap": api_error(400, 10065, "subjects overlap with an existing stream"),
    "info_config_same": True,
    "info": {
        "type": "io.nats.jetstream.api.v1.stream_info_response",
        "total": 0,
        "offset": 0,
        "limit": 0,
        "state": {
            "messages": 4,
            "bytes": 170,
            "first_seq": 1,
            "last_seq": 4,
            "num_subjects": 2,
            "consumer_count": 0,
        },
    },
    "info_subjects": {"orders.new": 2, "orders.paid": 2},
    "events_state": {
        "messages": 3,
        "bytes": 78,
        "first_seq": 3,
        "last_seq": 5,
        "num_subjects": 1,
        "consumer_count": 0,
    },
    "list": ["EVENTS", "ORDERS"],
    "names": ["EVENTS", "ORDERS"],
    "names_by_subject": ["EVENTS"],
    "find": "ORDERS",
    "find_missing": api_error(404, 10059, "no stream matches subject", "StreamNotFoundError"),
    "update": ["orders.>", "refunds.>"],
    "update_storage": api_error(500, 10052, "stream configuration update can not change storage type"),
    "get_seq": {"subject": "orders.paid", "seq": 2, "data": "m2"},
    "get_last": {"subject": "orders.new", "seq": 3, "data": "m3"},
    "get_missing": None,
    "delete_msg": True,
    "state_after_delete": {
        "messages": 3,
        "bytes": 128,
        "first_seq": 2,
        "last_seq": 4,
        "num_subjects": 2,
        "consumer_count": 0,
    },
    "purge_filter": {
        "type": "io.nats.jetstream.api.v1.stream_purge_response",
        "success": True,
        "purged": 2,
    },
    "purge_all": {
        "type": "io.nats.jetstream.api.v1.stream_purge_response",
        "success": True,
        "purged": 1,
    },
    "state_after_purge": {
        "messages": 0,
        "bytes": 0,
        "first_seq": 5,
        "last_seq": 4,
        "consumer_count": 0,
    },
    "delete": True,
    "info_deleted": api_error(404, 10059, "stream not found", "StreamNotFoundError"),
    "delete_missing": api_error(404, 10059, "stream not found", "StreamNotFoundError"),
    "bad_name": client_error("InvalidNameError", "stream name ('A.B') cannot contain '.'"),
}


@impls()
def test_js_streams(impl, start_server, tmp_path):
    """jsm.streams: add (again, conflicting, overlapping), info, list, names, find, update,
    getMessage, deleteMessage, purge, delete."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "streams") == JS_STREAMS


JS_DELETE_MSG = {
    "file": {
        "first": True,
        "first_again": api_error(500, 10057, "no message found"),
        "middle": True,
        "middle_again": api_error(400, 10043, "sequence 3 not found"),
        "last": True,
        "last_again": api_error(400, 10043, "sequence 5 not found"),
        "beyond_last": api_error(500, 10057, "stream store EOF"),
        "state": {
            "messages": 2,
            "bytes": 76,
            "first_seq": 2,
            "last_seq": 5,
            "num_subjects": 1,
            "num_deleted": 2,
            "consumer_count": 0,
        },
    },
    "memory": {
        "first": True,
        "first_again": api_error(400, 10043, "sequence 1 not found"),
        "middle": True,
        "middle_again": api_error(400, 10043, "sequence 3 not found"),
        "last": True,
        "last_again": api_error(400, 10043, "sequence 5 not found"),
        "beyond_last": api_error(400, 10043, "sequence 9 not found"),
        "state": {
            "messages": 2,
            "bytes": 52,
            "first_seq": 2,
            "last_seq": 5,
            "num_subjects": 1,
            "num_deleted": 2,
            "consumer_count": 0,
        },
    },
}


@impls()
def test_js_delete_msg(impl, start_server, tmp_path):
    """deleteMessage of sequences already deleted or never stored, file and memory storage."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "delete_msg") == JS_DELETE_MSG


JS_PUBLISH = {
    "first": {"stream": "P", "seq": 1, "duplicate": False},
    "duplicate": {"stream": "P", "seq": 1, "duplicate": True},
    "second": {"stream": "P", "seq": 2, "duplicate": False},
    "expect_last_msg_id_ok": {"stream": "P", "seq": 3, "duplicate": False},
    "expect_last_msg_id_wrong": api_error(400, 10070, "wrong last msg ID: id-2b"),
    "expect_last_seq_ok": {"stream": "P", "seq": 4, "duplicate": False},
    "expect_last_seq_wrong": api_error(400, 10071, "wrong last sequence: 4"),
    "expect_last_subject_seq_ok": {"stream": "P", "seq": 5, "duplicate": False},
    "expect_last_subject_seq_wrong": api_error(400, 10071, "wrong last sequence: 5"),
    "expect_last_msg_id_after_plain": api_error(400, 10070, "wrong last msg ID: "),
    "expect_stream_ok": {"stream": "P", "seq": 6, "duplicate": False},
    "expect_stream_wrong": api_error(400, 10060, "expected stream does not match"),
    "no_stream": client_error("JetStreamNotEnabled", "jetstream is not enabled"),
    "state": {
        "messages": 6,
        "bytes": 489,
        "first_seq": 1,
        "last_seq": 6,
        "num_subjects": 2,
        "consumer_count": 0,
    },
}


@impls()
def test_js_publish(impl, start_server, tmp_path):
    """js.publish: msgID dedupe (duplicate flag), each expect header right and wrong, no stream."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "publish") == JS_PUBLISH


# The durable pull consumer "worker" as both servers report its config.
WORKER_CONFIG = {
    "durable_name": "worker",
    "name": "worker",
    "deliver_policy": "all",
    "ack_policy": "explicit",
    "ack_wait": 30000000000,
    "max_deliver": -1,
    "replay_policy": "instant",
    "max_waiting": 512,
    "max_ack_pending": 1000,
    "num_replicas": 0,
    "metadata": METADATA,
}

# Without num_waiting after the consume() loop is left: test_js_pull_after_consume is about that.
JS_PULL = {
    "add": {
        "type": "io.nats.jetstream.api.v1.consumer_create_response",
        "stream_name": "Q",
        "name": "worker",
        "config": WORKER_CONFIG,
        "delivered": {"consumer_seq": 0, "stream_seq": 0},
        "ack_floor": {"consumer_seq": 0, "stream_seq": 0},
        "num_ack_pending": 0,
        "num_redelivered": 0,
        "num_waiting": 0,
        "num_pending": 10,
    },
    "fetch": [
        ["Q", "worker", "q.a", "m1", 1, 1, 1, 9], ["Q", "worker", "q.b", "m2", 2, 2, 1, 8],
        ["Q", "worker", "q.a", "m3", 3, 3, 1, 7],
    ],
    "next": ["Q", "worker", "q.b", "m4", 4, 4, 1, 6],
    "next_ackack": True,
    "after_next": counts((4, 4), (4, 4), pending=6, ack_pending=0),
    "consume": [
        ["Q", "worker", "q.a", "m5", 5, 5, 1, 5], ["Q", "worker", "q.b", "m6", 6, 6, 1, 4],
        ["Q", "worker", "q.a", "m7", 7, 7, 1, 3], ["Q", "worker", "q.b", "m8", 8, 8, 1, 2],
        ["Q", "worker", "q.a", "m9", 9, 9, 1, 1], ["Q", "worker", "q.b", "m10", 10, 10, 1, 0],
    ],
    "after_consume": {
        "delivered": 10,
        "delivered_consumer": 10,
        "ack_floor": 10,
        "ack_floor_consumer": 10,
        "num_pending": 0,
        "num_ack_pending": 0,
        "num_redelivered": 0,
    },
    "info": {
        "type": "io.nats.jetstream.api.v1.consumer_info_response",
        "stream_name": "Q",
        "name": "worker",
        "config": WORKER_CONFIG,
        "delivered": {"consumer_seq": 10, "stream_seq": 10},
        "ack_floor": {"consumer_seq": 10, "stream_seq": 10},
        "num_ack_pending": 0,
        "num_redelivered": 0,
        "num_pending": 0,
    },
    "list": ["worker"],
    "missing": api_error(404, 10014, "consumer not found", "ConsumerNotFoundError"),
    "delete": True,
    "info_deleted": api_error(404, 10014, "consumer not found", "ConsumerNotFoundError"),
}


@impls()
def test_js_pull(impl, start_server, tmp_path):
    """A durable pull consumer: fetch({max_messages}), next(), consume(), acks, consumer info."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "pull") == JS_PULL


JS_PULL_IDLE = {
    "fetch": [["I", "idle", "i", "m1", 1, 1, 1, 1], ["I", "idle", "i", "m2", 2, 2, 1, 0]],
    "fetch_empty": [],
    "next_empty": None,
    "idle": counts((2, 2), (2, 2), pending=0, ack_pending=0),
    "next_late": ["I", "idle", "i", "late", 3, 3, 1, 0],
    "before_late_ack": counts((3, 3), (2, 2), pending=0, ack_pending=1),
    "after_late_ack": counts((3, 3), (3, 3), pending=0, ack_pending=0),
}


@impls()
def test_js_pull_idle(impl, start_server, tmp_path):
    """fetch() and next() that expire empty, then a later message reaches next()."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "pull_idle") == JS_PULL_IDLE


JS_PULL_AFTER_CONSUME = {
    "consumed": [1, 2, 3],
    "after_break": counts((3, 3), (3, 3), pending=0, ack_pending=0),
    "next": ["C", "w", "c", "later", 4, 4, 1, 0],
    "after_next": counts((4, 4), (4, 4), pending=0, ack_pending=0),
}


@impls()
def test_js_pull_after_consume(impl, start_server, tmp_path):
    """After leaving consume(), its pull request is dropped; the next message goes to next()."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "pull_after_consume") == JS_PULL_AFTER_CONSUME


JS_ACKS = {
    "first": [
        ["A", "d", "a", "m1", 1, 1, 1, 5], ["A", "d", "a", "m2", 2, 2, 1, 4],
        ["A", "d", "a", "m3", 3, 3, 1, 3], ["A", "d", "a", "m4", 4, 4, 1, 2],
    ],
    "after_first": counts((4, 4), (1, 1), pending=2, ack_pending=2),
    "second": [
        ["A", "d", "a", "m2", 2, 5, 2, 2], ["A", "d", "a", "m5", 5, 6, 1, 1],
        ["A", "d", "a", "m6", 6, 7, 1, 0],
    ],
    "after_second": counts((6, 7), (3, 3), pending=0, ack_pending=1),
    "after_all": counts((6, 7), (6, 7), pending=0, ack_pending=0),
}


@impls()
def test_js_acks(impl, start_server, tmp_path):
    """ack, nak (redelivered), term, working and a late ack: ack_floor and num_ack_pending."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "acks") == JS_ACKS


JS_ORDERED = {
    "consume_seqs": list(range(1, 31)),
    "consume_in_order": True,
    "filtered": [
        "o.b:m2:9", "o.b:m5:8", "o.b:m8:7", "o.b:m11:6", "o.b:m14:5", "o.b:m17:4", "o.b:m20:3",
        "o.b:m23:2", "o.b:m26:1", "o.b:m29:0",
    ],
    "last_per_subject": ["o.a:m28", "o.b:m29", "o.c:m30"],
    "next": [29, 30, None],
    "info_cached": {
        "type": "io.nats.jetstream.api.v1.consumer_create_response",
        "stream_name": "O",
        "name": "<ordered>",
        "config": {
            "deliver_policy": "by_start_sequence",
            "opt_start_seq": 1,
            "ack_policy": "none",
            "max_deliver": 1,
            "replay_policy": "instant",
            "max_waiting": 512,
            "inactive_threshold": 300000000000,
            "num_replicas": 1,
            "mem_storage": True,
            "metadata": METADATA,
        },
        "delivered": {"consumer_seq": 0, "stream_seq": 0},
        "ack_floor": {"consumer_seq": 0, "stream_seq": 0},
        "num_ack_pending": 0,
        "num_redelivered": 0,
        "num_waiting": 0,
        "num_pending": 30,
    },
}


@impls()
def test_js_ordered(impl, start_server, tmp_path):
    """Ordered consumers: consume() in order, filtered, last per subject, fetch, next."""
    assert scenario(start_server, impl, tmp_path, "js.mjs", "ordered") == JS_ORDERED
