"""DIRECT.GET in all its forms (ADR-31), compared between actor-nats and the reference.

The same stream is built on both servers (`-js -sd <tmp>`, file and memory storage), then the
same DIRECT.GET requests are sent over a raw connection and every reply message (header block
and payload, bytes) must be the same once the time stamps are masked: the single forms, the
batch forms (`batch`, `max_bytes`, `seq`, `next_by_subj` with wildcards, `start_time`,
`no_hdr`) with their `Nats-Num-Pending` / `Nats-Last-Sequence` headers and the closing
`204 EOB`, `multi_last` with `up_to_seq` / `up_to_time` (and `Nats-UpTo-Sequence` on the EOB),
and the status-only errors (404, 408, 412, 413).
"""

from __future__ import annotations

import json
import re
import tempfile
import time

import pytest

from tests.wire.proto import connect

TIME = re.compile(rb'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z')
STATUS = re.compile(rb'^NATS/1\.0 \d\d\d')


class Getter:
    """Requests over one raw connection; a reply is the list of messages up to the first
    status message (batch forms) or the single message (single forms)."""

    def __init__(self, server):
        self.w = connect(server, {"headers": True, "no_responders": True, "protocol": 1})
        self.w.send(b"SUB _INBOX.g.* 1\r\n")
        self.n = 0

    def send(self, subject: str, body: bytes = b"", hdr: bytes = b"", reply: str | None = None):
        if hdr:
            head = f"HPUB {subject} {reply or ''} {len(hdr)} {len(hdr) + len(body)}\r\n"
            self.w.send(head.replace("  ", " ").encode() + hdr + body + b"\r\n")
        else:
            head = f"PUB {subject} {reply or ''} {len(body)}\r\n"
            self.w.send(head.replace("  ", " ").encode() + body + b"\r\n")

    def request(self, subject: str, body: bytes = b"", hdr: bytes = b"", many: bool = False):
        self.n += 1
        reply = f"_INBOX.g.{self.n}"
        self.send(subject, body, hdr, reply)
        out = []
        while True:
            try:
                op = self.w.read_op(3.0)
            except TimeoutError:
                out.append("timeout")
                return out
            assert op.subject == reply.encode()
            hdr_block = TIME.sub(b"T", op.headers) if op.headers else op.headers
            out.append((hdr_block, op.payload))
            if not many or (op.headers and STATUS.match(op.headers)):
                return out

    def close(self):
        self.w.close()


def build(g: Getter, storage: str) -> int:
    """The stream both servers get; returns a time (ns) between the two halves of it."""
    cfg = {"name": "D", "subjects": ["d.>"], "allow_direct": True, "storage": storage}
    r = g.request("$JS.API.STREAM.CREATE.D", json.dumps(cfg).encode())
    assert b'"error"' not in r[0][1], r
    for i, subj in enumerate(["d.a", "d.b", "d.a", "d.c.x", "d.c.y"]):
        g.request(subj, f"m{i + 1}".encode())
    g.request("d.b", b"with-hdr", b"NATS/1.0\r\nFoo: bar\r\n\r\n")  # 6
    time.sleep(0.05)
    mid = time.time_ns()
    time.sleep(0.05)
    for i, subj in enumerate(["d.a", "d.c.x", "d.e", "d.e"]):  # 7..10
        g.request(subj, f"n{i + 1}".encode())
    g.request("$JS.API.STREAM.MSG.DELETE.D", b'{"seq":8}')
    return mid


def rfc(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def script(mid: int):
    """(subject, body, header block, many) for each request; `mid` splits the stream in two."""
    t = rfc(mid)
    J = lambda **kw: json.dumps(kw).encode()  # noqa: E731
    G = "$JS.API.DIRECT.GET.D"
    return [
        # single forms
        (G, J(seq=1), b"", False),
        (G, J(seq=6), b"", False),
        (G, J(seq=8), b"", False),
        (G, J(seq=99), b"", False),
        (G, J(last_by_subj="d.a"), b"", False),
        (G, J(last_by_subj="d.c.*"), b"", False),
        (G, J(next_by_subj="d.c.>", seq=5), b"", False),
        (G, J(seq=6, no_hdr=True), b"", False),
        (G, J(start_time=t), b"", False),
        (G + ".d.b", b"", b"", False),
        (G + ".d.b", J(no_hdr=True), b"", False),
        (G + ".d.zz", b"", b"", False),
        (G + ".d.b", J(seq=1), b"", False),
        (G + ".d.b", b"{bad", b"", False),
        # request errors
        (G, b"", b"", False),
        (G, b"{}", b"", False),
        (G, b"null", b"", False),
        (G, b"[1]", b"", False),
        (G, b'{"seq":"1"}', b"", False),
        (G, b'{"seq":-1}', b"", False),
        (G, b'{"batch":2}', b"", False),
        (G, J(seq=1, last_by_subj="d.a"), b"", False),
        (G, J(last_by_subj="d.a", batch=2), b"", False),
        (G, J(next_by_subj="d.a", multi_last=["d.a"]), b"", False),
        (G, J(seq=1, start_time=t), b"", False),
        (G, J(multi_last=["d.a"], up_to_seq=3, up_to_time=t), b"", False),
        (G, J(start_time="yesterday"), b"", False),
        (G, J(seq=1), b"NATS/1.0\r\nNats-Required-Api-Level: 99\r\n\r\n", False),
        (G, J(seq=1), b"NATS/1.0\r\nNats-Required-Api-Level: 1\r\n\r\n", False),
        # batch forms
        (G, J(seq=1, batch=3), b"", True),
        (G, J(seq=1, batch=100), b"", True),
        (G, J(seq=7, batch=3), b"", True),
        (G, J(seq=11, batch=3), b"", True),
        (G, J(seq=2, batch=5, no_hdr=True), b"", True),
        (G, J(next_by_subj="d.a", batch=10), b"", True),
        (G, J(next_by_subj="d.c.*", seq=4, batch=10), b"", True),
        (G, J(next_by_subj="d.zz", batch=10), b"", True),
        (G, J(seq=1, batch=10, max_bytes=12), b"", True),
        (G, J(seq=1, batch=1), b"", True),
        (G, J(start_time=t, batch=10), b"", True),
        (G, J(next_by_subj="d.>", start_time=t, batch=2), b"", True),
        # multi_last
        (G, J(multi_last=["d.a", "d.b"]), b"", True),
        (G, J(multi_last=["d.>"]), b"", True),
        (G, J(multi_last=["d.c.*", "d.c.x"]), b"", True),
        (G, J(multi_last=["d.>"], up_to_seq=5), b"", True),
        (G, J(multi_last=["d.>"], up_to_time=t), b"", True),
        (G, J(multi_last=["d.>"], up_to_time="2000-01-01T00:00:00Z"), b"", True),
        (G, J(multi_last=["d.>"], batch=2), b"", True),
        (G, J(multi_last=["d.>"], max_bytes=5), b"", True),
        (G, J(multi_last=["d.>"], seq=6), b"", True),
        (G, J(multi_last=["d.>"], seq=99), b"", True),
        (G, J(multi_last=["d.>"], no_hdr=True), b"", True),
        (G, J(multi_last=["d.zz"]), b"", True),
        (G, J(multi_last=["d.a"], up_to_seq=2), b"", True),
    ]


def run(start_server, impl: str, storage: str):
    srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-dg-")])
    g = Getter(srv)
    try:
        mid = build(g, storage)
        return [g.request(subj, body, hdr, many) for subj, body, hdr, many in script(mid)]
    finally:
        g.close()


@pytest.mark.parametrize("storage", ["file", "memory"])
def test_direct_get_forms(start_server, storage):
    want = run(start_server, "reference", storage)
    got = run(start_server, "actor", storage)
    reqs = script(0)
    for i, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"request {i} {reqs[i][:2]}: reference {w!r}, actor-nats {g!r}"


def test_multi_last_too_many_results(start_server):
    """More than 1024 subjects answering a multi_last: 413 Too Many Results."""
    results = {}
    for impl in ("reference", "actor"):
        srv = start_server(impl, args=["-js", "-sd", tempfile.mkdtemp(prefix="an-dg-")])
        g = Getter(srv)
        try:
            g.request("$JS.API.STREAM.CREATE.M",
                      b'{"name":"M","subjects":["m.>"],"allow_direct":true,"storage":"memory"}')
            for i in range(1030):
                g.send(f"m.{i}", b"x")
            for _ in range(500):  # the reference stores plain publishes asynchronously
                info = json.loads(g.request("$JS.API.STREAM.INFO.M")[0][1])
                if info["state"]["messages"] == 1030:
                    break
                time.sleep(0.01)
            assert info["state"]["messages"] == 1030, info["state"]
            results[impl] = [
                g.request("$JS.API.DIRECT.GET.M", b'{"multi_last":["m.>"]}', many=True),
                g.request("$JS.API.DIRECT.GET.M", b'{"multi_last":["m.>"],"up_to_seq":1000,"batch":2}',
                          many=True),
            ]
        finally:
            g.close()
    assert results["actor"] == results["reference"]
