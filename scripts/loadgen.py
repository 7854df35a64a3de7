"""Load-generator workers for scripts/bench.py: raw sockets, as cheap per message as Python allows.

Each function here is the body of one worker process (one process per role, started by bench.py
with multiprocessing's fork context). They speak the NATS client protocol directly:

- a publisher sends a pre-built buffer of many `PUB subj N\\r\\n<payload>\\r\\n` frames (>= 256 KB)
  with one `sendall` per chunk, then `PING` and waits for `PONG`, so it knows the server has read
  everything it sent;
- a subscriber only counts: `bytes.count(b"MSG ")` over each received chunk, plus the few bytes
  that straddle two chunks; the payload and subject never contain `MSG `;
- the request-reply pair and the idle-connection opener are small, exact parsers.

Workers report through multiprocessing pipes and shared arrays; times are `time.monotonic()`,
which is the same clock in every process on Linux, so the parent can combine them.
"""

from __future__ import annotations

import resource
import socket
import time

CRLF = b"\r\n"
CHUNK_BYTES = 256 * 1024
CONNECT = (b'CONNECT {"verbose":false,"pedantic":false,"echo":false,"lang":"python",'
           b'"version":"bench","protocol":1,"name":"%s"}\r\n')


class ProtocolError(RuntimeError):
    pass


def _report_failure(ready, result, error: Exception) -> None:
    """A worker failed: unblock the parent waiting for "ready", and send it the error."""
    try:
        ready.send("error")
    except Exception:
        pass
    result.send({"ok": False, "error": f"{type(error).__name__}: {error}"})


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def payload(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


def connect(host: str, port: int, name: str, nodelay: bool = False, timeout: float = 30.0):
    """Open a connection, read INFO, send CONNECT+PING and wait for PONG. Returns the socket."""
    s = socket.create_connection((host, port), timeout=timeout)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(CONNECT % name.encode() + b"PING\r\n")
    wait_pong(s)
    return s


def wait_pong(s: socket.socket, buf: bytes = b"") -> bytes:
    """Read until a PONG line; answer server PINGs; fail on -ERR. Returns bytes after PONG."""
    while True:
        while CRLF in buf:
            line, buf = buf.split(CRLF, 1)
            if line == b"PONG":
                return buf
            if line == b"PING":
                s.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ProtocolError(line.decode(errors="replace"))
            # INFO, +OK and anything else: ignored
        data = s.recv(65536)
        if not data:
            raise ProtocolError("connection closed while waiting for PONG")
        buf += data


def close(s: socket.socket) -> None:
    try:
        s.close()
    except OSError:
        pass


# --------------------------------------------------------------------------------- publisher

def publisher(host, port, subject, size, duration, count, go, ready, result, rate=0.0, numbered=False):
    """Publish for `duration` seconds (or exactly `count` messages if count > 0).

    `go` is an Event (start barrier), `ready` a Pipe end signalled once connected, `result` a
    Pipe end that receives a dict. `rate` > 0 paces the publisher (msgs/s, chunk-granular).
    `numbered` puts a 16-digit sequence number at the start of each payload (count mode only).
    """
    s = None
    try:
        s = connect(host, port, "bench-pub")
        s.settimeout(120.0)
        head = b"PUB %s %d\r\n" % (subject.encode(), size)
        if numbered:
            if count <= 0 or size < 16:
                raise ValueError("numbered payloads need a count and >= 16 bytes")
            tail = payload(size)[16:] + CRLF
            whole = b"".join(head + b"%016d" % i + tail for i in range(count))
            frame_len = len(head) + size + 2
            per_chunk = max(1, CHUNK_BYTES // frame_len)
            chunks = [whole[i:i + per_chunk * frame_len]
                      for i in range(0, len(whole), per_chunk * frame_len)]
            chunk_msgs = [len(c) // frame_len for c in chunks]
        else:
            frame = head + payload(size) + CRLF
            per_chunk = max(1, CHUNK_BYTES // len(frame))
            chunk = frame * per_chunk
        ready.send("ready")
        go.wait()
        c0 = cpu_seconds()
        t0 = time.monotonic()
        sent = 0
        if numbered:
            for c, n in zip(chunks, chunk_msgs):
                s.sendall(c)
                sent += n
        elif count > 0:
            full, rest = divmod(count, per_chunk)
            for _ in range(full):
                s.sendall(chunk)
            if rest:
                s.sendall(frame * rest)
            sent = count
        else:
            deadline = t0 + duration
            interval = per_chunk / rate if rate > 0 else 0.0
            next_t = t0
            now = t0
            while now < deadline:
                s.sendall(chunk)
                sent += per_chunk
                now = time.monotonic()
                if interval:
                    next_t += interval
                    if next_t > now:
                        time.sleep(next_t - now)
                        now = time.monotonic()
        t_sent = time.monotonic()
        s.sendall(b"PING\r\n")
        wait_pong(s)
        t_pong = time.monotonic()
        result.send({"ok": True, "sent": sent, "t0": t0, "t_sent": t_sent, "t_pong": t_pong,
                     "cpu": cpu_seconds() - c0})
    except KeyboardInterrupt:
        pass
    except Exception as e:  # reported to the parent, which prints it
        _report_failure(ready, result, e)
    finally:
        if s is not None:
            close(s)


# -------------------------------------------------------------------------------- subscriber

def subscriber(host, port, subject, queue, idx, counts, last, stop, ready, result, keep=False):
    """Subscribe and count `MSG ` frames until `stop` is set.

    counts[idx] / last[idx] (shared arrays, no lock) hold the running count and the monotonic time
    of the last receive that brought messages; the parent watches them. With `keep`, the raw data
    is kept and the 16-digit sequence numbers in the payloads are returned (queue-group check).
    """
    s = None
    try:
        s = connect(host, port, f"bench-sub-{idx}")
        q = (b" " + queue.encode()) if queue else b""
        s.sendall(b"SUB %s%s 1\r\nPING\r\n" % (subject.encode(), q))
        rest = wait_pong(s)
        s.settimeout(0.1)
        ready.send("ready")
        c0 = cpu_seconds()
        n = rest.count(b"MSG ")
        kept = [rest] if keep else None
        tail = rest[-3:]
        counts[idx] = n
        recv = s.recv
        size = 1 << 20
        while not stop.value:
            try:
                data = recv(size)
            except socket.timeout:
                continue
            if not data:
                raise ProtocolError("connection closed by server")
            k = data.count(b"MSG ") + (tail + data[:3]).count(b"MSG ")
            tail = data[-3:] if len(data) >= 3 else (tail + data)[-3:]
            if keep:
                kept.append(data)
            if k:
                n += k
                counts[idx] = n
                last[idx] = time.monotonic()
        out = {"ok": True, "count": n, "cpu": cpu_seconds() - c0}
        if keep:
            out["seqs"] = _sequence_numbers(b"".join(kept))
        result.send(out)
    except KeyboardInterrupt:
        pass
    except Exception as e:
        _report_failure(ready, result, e)
    finally:
        if s is not None:
            close(s)


def _sequence_numbers(data: bytes) -> list[int]:
    """Parse every MSG frame (exactly, by its size field) and return the payload numbers."""
    out = []
    pos = 0
    end = len(data)
    while pos < end:
        nl = data.find(CRLF, pos)
        if nl < 0:
            break
        line = data[pos:nl]
        pos = nl + 2
        if line.startswith(b"MSG "):
            size = int(line.rsplit(b" ", 1)[1])
            out.append(int(data[pos:pos + 16]))
            pos += size + 2
    return out


# -------------------------------------------------------------------------- request / reply

def _frames(buf: bytes):
    """Split complete protocol frames off `buf`: yields (line, payload|None), returns leftover.
    An HMSG's payload includes its headers."""
    frames = []
    pos = 0
    while True:
        nl = buf.find(CRLF, pos)
        if nl < 0:
            break
        line = buf[pos:nl]
        if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
            size = int(line.rsplit(b" ", 1)[1])
            if len(buf) < nl + 2 + size + 2:
                break
            frames.append((line, buf[nl + 2:nl + 2 + size]))
            pos = nl + 2 + size + 2
        else:
            frames.append((line, None))
            pos = nl + 2
    return frames, buf[pos:]


def responder(host, port, subject, size, stop, ready, result):
    """Answer every request on `subject` with a `size`-byte reply on its reply subject."""
    s = None
    try:
        s = connect(host, port, "bench-responder", nodelay=True)
        s.sendall(b"SUB %s 1\r\nPING\r\n" % subject.encode())
        buf = wait_pong(s)
        s.settimeout(0.1)
        ready.send("ready")
        reply_tail = b" %d\r\n" % size + payload(size) + CRLF
        answered = 0
        while not stop.value:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise ProtocolError("connection closed by server")
            frames, buf = _frames(buf + data)
            out = []
            for line, body in frames:
                if body is not None:
                    parts = line.split(b" ")
                    if len(parts) == 5:
                        out.append(b"PUB " + parts[3] + reply_tail)
                        answered += 1
                elif line == b"PING":
                    out.append(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    raise ProtocolError(line.decode(errors="replace"))
            if out:
                s.sendall(b"".join(out))
        result.send({"ok": True, "answered": answered})
    except KeyboardInterrupt:
        pass
    except Exception as e:
        _report_failure(ready, result, e)
    finally:
        if s is not None:
            close(s)


def requester(host, port, subject, size, warmup, count, go, ready, result, timeout=5.0):
    """Send requests one at a time and time each round trip (perf_counter_ns) to its reply."""
    s = None
    try:
        s = connect(host, port, "bench-requester", nodelay=True)
        inbox = b"_INBOX.bench"
        s.sendall(b"SUB %s 1\r\nPING\r\n" % inbox)
        buf = wait_pong(s)
        s.settimeout(timeout)
        req = b"PUB %s %s %d\r\n" % (subject.encode(), inbox, size) + payload(size) + CRLF
        ready.send("ready")
        go.wait()
        samples = []
        clock = time.perf_counter_ns
        for i in range(warmup + count):
            t = clock()
            s.sendall(req)
            got = False
            while not got:
                data = s.recv(65536)
                if not data:
                    raise ProtocolError("connection closed by server")
                frames, buf = _frames(buf + data)
                for line, body in frames:
                    if body is not None:
                        got = True
                    elif line == b"PING":
                        s.sendall(b"PONG\r\n")
                    elif line.startswith(b"-ERR"):
                        raise ProtocolError(line.decode(errors="replace"))
            if i >= warmup:
                samples.append((clock() - t) / 1000.0)
        result.send({"ok": True, "samples_us": samples})
    except KeyboardInterrupt:
        pass
    except Exception as e:
        _report_failure(ready, result, e)
    finally:
        if s is not None:
            close(s)


# ------------------------------------------------------------------------------ JetStream

class _Conn:
    """A raw connection that collects MSG/HMSG frames and answers PINGs."""

    def __init__(self, host, port, name):
        self.s = connect(host, port, name, nodelay=True)
        self.s.settimeout(30.0)
        self.buf = b""

    def recv_msgs(self) -> list:
        data = self.s.recv(262144)
        if not data:
            raise ProtocolError("connection closed by server")
        frames, self.buf = _frames(self.buf + data)
        out = []
        for line, body in frames:
            if body is not None:
                out.append((line, body))
            elif line == b"PING":
                self.s.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ProtocolError(line.decode(errors="replace"))
        return out

    def request(self, subject: str, body: bytes, inbox=b"_INBOX.js.api") -> bytes:
        self.s.sendall(b"SUB %s 99\r\nPUB %s %s %d\r\n%s\r\n" % (inbox, subject.encode(), inbox,
                                                                   len(body), body))
        while True:
            for line, payload_ in self.recv_msgs():
                if line.split(b" ")[1] == inbox:
                    self.s.sendall(b"UNSUB 99\r\n")
                    return payload_

    def close(self):
        close(self.s)


def js_setup(host, port, stream, subject, storage="file"):
    """Create the bench stream (and nothing else); returns the API's answer."""
    import json

    c = _Conn(host, port, "bench-js-setup")
    try:
        cfg = {"name": stream, "subjects": [subject], "storage": storage, "retention": "limits"}
        return json.loads(c.request(f"$JS.API.STREAM.CREATE.{stream}", json.dumps(cfg).encode()))
    finally:
        c.close()


def js_publisher(host, port, subject, size, count, window, go, ready, result):
    """Publish `count` messages to a stream subject, at most `window` without their PubAck
    (window 1 = synchronous publish). Counts acks that are not errors."""
    c = None
    try:
        c = _Conn(host, port, "bench-js-pub")
        inbox = b"_INBOX.jsack"
        c.s.sendall(b"SUB %s.* 1\r\nPING\r\n" % inbox)
        c.buf = wait_pong(c.s)
        body = payload(size)
        frames = [b"PUB %s %s.%d %d\r\n" % (subject.encode(), inbox, i % 1000000, size) + body + CRLF
                  for i in range(min(count, 4096))]
        ready.send("ready")
        go.wait()
        t0 = time.monotonic()
        sent = acked = errors = 0
        while acked + errors < count:
            if sent < count and sent - acked - errors < window:
                n = min(window - (sent - acked - errors), count - sent)
                c.s.sendall(b"".join(frames[(sent + k) % len(frames)] for k in range(n)))
                sent += n
            for _line, ack in c.recv_msgs():
                if b'"error"' in ack:
                    errors += 1
                else:
                    acked += 1
        t1 = time.monotonic()
        result.send({"ok": True, "acked": acked, "errors": errors, "t0": t0, "t1": t1,
                     "cpu": cpu_seconds()})
    except KeyboardInterrupt:
        pass
    except Exception as e:
        _report_failure(ready, result, e)
    finally:
        if c is not None:
            c.close()


def js_fetcher(host, port, stream, consumer, count, batch, go, ready, result):
    """Create a durable pull consumer (explicit ack), then fetch `count` messages in batches of
    `batch`, acking each one (+ACK to its reply subject) as it arrives."""
    import json

    c = None
    try:
        c = _Conn(host, port, "bench-js-fetch")
        cfg = {"stream_name": stream, "config": {"durable_name": consumer, "ack_policy": "explicit",
                                                 "deliver_policy": "all", "max_ack_pending": -1}}
        r = json.loads(c.request(f"$JS.API.CONSUMER.CREATE.{stream}.{consumer}", json.dumps(cfg).encode()))
        if "error" in r:
            raise ProtocolError(f"consumer create: {r['error']}")
        inbox = b"_INBOX.jsfetch"
        c.s.sendall(b"SUB %s 2\r\nPING\r\n" % inbox)
        c.buf = wait_pong(c.s)
        nxt = b"$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (stream.encode(), consumer.encode())
        req = json.dumps({"batch": batch, "expires": 5_000_000_000}).encode()
        ready.send("ready")
        go.wait()
        t0 = time.monotonic()
        got = 0
        while got < count:
            c.s.sendall(b"PUB %s %s %d\r\n%s\r\n" % (nxt, inbox, len(req), req))
            in_batch = 0
            while in_batch < batch and got < count:
                acks = []
                status = False
                for line, _body in c.recv_msgs():
                    parts = line.split(b" ")
                    if line.startswith(b"HMSG") and len(parts) == 5:  # a status (no reply)
                        status = True
                        continue
                    reply = parts[3] if len(parts) >= 5 else None
                    if reply is not None:
                        acks.append(b"PUB %s 0\r\n\r\n" % reply)
                    got += 1
                    in_batch += 1
                if acks:
                    c.s.sendall(b"".join(acks))
                if status:
                    break
        t1 = time.monotonic()
        result.send({"ok": True, "got": got, "t0": t0, "t1": t1, "cpu": cpu_seconds()})
    except KeyboardInterrupt:
        pass
    except Exception as e:
        _report_failure(ready, result, e)
    finally:
        if c is not None:
            c.close()


# -------------------------------------------------------------------------- idle connections

def idle_connections(host, port, count, batch, ctl):
    """Open `count` connections (CONNECT+PING, wait for PONG each), in batches of `batch`.

    Sends {"ok", "opened"} on `ctl` when all are up, then holds them until `ctl` says "close".
    """
    socks = []
    try:
        msg = CONNECT % b"bench-idle" + b"PING\r\n"
        while len(socks) < count:
            new = []
            for _ in range(min(batch, count - len(socks))):
                s = socket.create_connection((host, port), timeout=30.0)
                new.append(s)
                socks.append(s)
                s.sendall(msg)
            for s in new:
                wait_pong(s)
        ctl.send({"ok": True, "opened": len(socks)})
        if ctl.poll(600):
            ctl.recv()
    except KeyboardInterrupt:
        pass
    except Exception as e:
        ctl.send({"ok": False, "error": f"{type(e).__name__}: {e}", "opened": len(socks)})
        try:
            if ctl.poll(600):
                ctl.recv()
        except Exception:
            pass
    finally:
        for s in socks:
            close(s)


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

