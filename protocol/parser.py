"""The client-protocol parser: bytes in (any chunking), events out. Sans-IO, no clocks.

Rules of this file:
- `ClientParser.feed(data)` returns a list of events, each a plain tuple whose first item is the
  op code below. Tuples are immutable and cheap; the hot path makes one per PUB.
    (PUB, subject, reply|None, size_bytes, payload)
    (HPUB, subject, reply|None, hdr_len, size_bytes, payload)     payload = headers + body
    (SUB, subject, queue|None, sid)
    (UNSUB, sid, max|None)                                         max -1: remove at once
    (PING,) (PONG,) (OK,)
    (CONNECT, json_bytes) (INFO, json_bytes)
    (ERROR, ProtocolError)                                         always the last event
  `size_bytes` is the size token exactly as the client wrote it: the reference echoes it into
  MSG, leading zeros included.
- Everything after an ERROR event is discarded; the caller sends the -ERR (if any) and closes.
- Parsing stops after a CONNECT (`paused` is then True): the caller applies it (it decides,
  e.g., whether HPUB is allowed) and calls `feed(b"")` for the rest of the input.
- A control line or payload that straddles reads is kept (the payload as a list of chunks, joined
  once) until it is whole. A control line is checked against max_control_line while it is still
  incomplete, so a peer cannot make us buffer an endless line.
- Verbs are case-insensitive; arguments are split on runs of spaces/tabs; a bare LF ends a line
  (a CR before it is dropped); the payload must be followed by exactly CRLF.
"""

from __future__ import annotations

from .errors import MAX_CONTROL_LINE, MAX_PAYLOAD, ProtocolError, parse_error, silent_close

PUB, HPUB, SUB, UNSUB, PING, PONG, CONNECT, INFO, OK, ERROR = range(10)

_MAX_SIZE_DIGITS = 9  # the reference rejects longer sizes as invalid
_LONGEST_VERB = 10  # "CONNECT " plus CR and slack: bound for incomplete lines


_VERBS = (b"PUB", b"HPUB", b"SUB", b"UNSUB", b"PING", b"PONG", b"CONNECT", b"INFO", b"+OK", b"-ERR")
_NEEDS_SEP = {b"PUB", b"HPUB", b"SUB", b"UNSUB", b"CONNECT", b"INFO"}


def _plausible(partial: bytes) -> bool:
    """Could this incomplete line still become a valid op? (The reference's byte-level parser
    fails on the first impossible byte, without waiting for the end of the line.)"""
    head = partial[:8].upper()
    for verb in _VERBS:
        if len(head) <= len(verb):
            if verb.startswith(head):
                return True
        elif head.startswith(verb):
            if verb not in _NEEDS_SEP or head[len(verb)] in (32, 9):
                return True
    return False


def _size(token: bytes) -> int:
    if token.isdigit() and len(token) <= _MAX_SIZE_DIGITS:
        return int(token)
    return -1


class ClientParser:
    """Incremental parser for one client connection."""

    __slots__ = ("max_payload", "max_control_line", "headers_ok", "paused", "_buf", "_op", "_chunks", "_have",
                 "_need")

    def __init__(self, max_payload: int = 1048576, max_control_line: int = 4096):
        self.max_payload = max_payload
        self.max_control_line = max_control_line
        self.headers_ok = False  # HPUB is a violation until CONNECT said headers:true
        self.paused = False  # stopped after a CONNECT with more input buffered
        self._buf = b""  # an incomplete control line
        self._op = None  # a PUB/HPUB waiting for its payload
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, data: bytes) -> list:
        self.paused = False
        events: list = []
        op = self._op
        if op is not None:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                if self._have == self._need - 1 and data[-1] != 13:
                    self._reset()
                    return [(ERROR, parse_error())]
                return events
            data = b"".join(self._chunks)
            self._chunks = []
            self._have = 0
        elif self._buf:
            data = self._buf + data
            self._buf = b""
        self._op = None
        append = events.append
        find = data.find
        n = len(data)
        pos = 0
        mcl = self.max_control_line
        try:
            while True:
                if op is not None:
                    end = pos + op[-1]
                    if end + 2 > n:
                        if end < n and data[end] != 13:  # the byte after the payload must be CR
                            raise parse_error()
                        self._op = op
                        rest = data[pos:]
                        self._chunks = [rest]
                        self._have = len(rest)
                        self._need = op[-1] + 2
                        return events
                    if data[end:end + 2] != b"\r\n":
                        raise parse_error()
                    if op[0] == PUB:
                        append((PUB, op[1], op[2], op[3], data[pos:end]))
                    else:
                        append((HPUB, op[1], op[2], op[3], op[4], data[pos:end]))
                    pos = end + 2
                    op = None
                if pos >= n:
                    return events
                nl = find(b"\n", pos)
                if nl < 0:
                    rest = data[pos:]
                    if len(rest) > mcl + _LONGEST_VERB:
                        raise ProtocolError(MAX_CONTROL_LINE, reason="Max Control Line Exceeded")
                    if not _plausible(rest):
                        raise parse_error()
                    self._buf = rest
                    return events
                if data[pos:pos + 4] == b"PUB ":
                    # Fast path: a whole PUB whose payload is already here.
                    args = data[pos + 4:nl].split()
                    if len(args) == 2:
                        subject, size_b = args
                        reply = None
                    elif len(args) == 3:
                        subject, reply, size_b = args
                    else:
                        raise silent_close()
                    if nl - pos - 4 - (data[nl - 1] == 13) > mcl:
                        raise ProtocolError(MAX_CONTROL_LINE, reason="Max Control Line Exceeded")
                    if size_b.isdigit() and len(size_b) <= _MAX_SIZE_DIGITS:
                        size = int(size_b)
                    else:
                        raise silent_close()
                    if size > self.max_payload:
                        raise ProtocolError(MAX_PAYLOAD, reason="Maximum Payload Exceeded")
                    start = nl + 1
                    end = start + size
                    if end + 2 <= n:
                        if data[end:end + 2] != b"\r\n":
                            raise parse_error()
                        append((PUB, subject, reply, size_b, data[start:end]))
                        pos = end + 2
                    else:
                        if end < n and data[end] != 13:
                            raise parse_error()
                        op = (PUB, subject, reply, size_b, size)
                        pos = start
                    continue
                pos = self._control(data, pos, nl, events)
                if pos < 0:  # a PUB/HPUB whose payload follows
                    op = events.pop()
                    pos = nl + 1
                elif events and events[-1][0] == CONNECT:
                    # CONNECT changes how the rest is parsed (headers): stop here, and let the
                    # caller apply it and call feed(b"") for the rest.
                    self._buf = data[pos:]
                    self.paused = pos < n
                    return events
        except ProtocolError as err:
            self._reset()
            append((ERROR, err))
            return events

    def _reset(self) -> None:
        self._buf = b""
        self._op = None
        self._chunks = []
        self._have = 0

    def _pub(self, args: list, arglen: int):
        """A PUB line from the slow path (lower-case verb, tab separator)."""
        if arglen > self.max_control_line:
            raise ProtocolError(MAX_CONTROL_LINE, reason="Max Control Line Exceeded")
        if len(args) == 2:
            subject, reply, size_b = args[0], None, args[1]
        elif len(args) == 3:
            subject, reply, size_b = args
        else:
            raise silent_close()
        size = _size(size_b)
        if size < 0:
            raise silent_close()
        if size > self.max_payload:
            raise ProtocolError(MAX_PAYLOAD, reason="Maximum Payload Exceeded")
        return (PUB, subject, reply, size_b, size)

    def _hpub(self, args: list):
        if not self.headers_ok:
            raise silent_close()
        if len(args) == 3:
            subject, reply, hdr_b, size_b = args[0], None, args[1], args[2]
        elif len(args) == 4:
            subject, reply, hdr_b, size_b = args
        else:
            raise silent_close()
        hdr = _size(hdr_b)
        size = _size(size_b)
        if hdr < 0 or size < 0 or hdr > size:
            raise silent_close()
        if size > self.max_payload:
            raise ProtocolError(MAX_PAYLOAD, reason="Maximum Payload Exceeded")
        return (HPUB, subject, reply, hdr, size_b, size)

    def _control(self, data: bytes, pos: int, nl: int, events: list) -> int:
        """Parse one non-fast-path control line; return the next position, or -1 when the
        line opened a PUB/HPUB (its pending op is the last item of `events`)."""
        first = data[pos]
        if first == 43:  # '+'
            if data[pos:pos + 3].upper() == b"+OK":
                events.append((OK,))
                return nl + 1
            raise parse_error()
        if first == 45:  # '-'
            if data[pos:pos + 4].upper() == b"-ERR":
                raise silent_close("Client Closed")
            raise parse_error()
        verb = data[pos:pos + 8].upper()
        line_end = nl
        arglen = 0

        def args_from(skip: int) -> list:
            nonlocal arglen
            raw = data[pos + skip:line_end]
            arglen = len(raw) - (1 if raw.endswith(b"\r") else 0)
            if arglen > self.max_control_line:
                raise ProtocolError(MAX_CONTROL_LINE, reason="Max Control Line Exceeded")
            return raw.split()

        if verb[:4] in (b"PING", b"PONG"):
            events.append((PING,) if verb[1] == 73 else (PONG,))
            return nl + 1
        sep = verb[3:4]
        if verb[:3] == b"PUB" and sep in (b" ", b"\t"):
            events.append(self._pub(args_from(4), arglen))
            return -1
        if verb[:3] == b"SUB" and sep in (b" ", b"\t"):
            args = args_from(4)
            if len(args) == 2:
                events.append((SUB, args[0], None, args[1]))
            elif len(args) == 3:
                events.append((SUB, args[0], args[1], args[2]))
            else:
                raise silent_close()
            return nl + 1
        if verb[:5] == b"UNSUB" and verb[5:6] in (b" ", b"\t"):
            args = args_from(6)
            if len(args) == 1:
                events.append((UNSUB, args[0], None))
            elif len(args) == 2:
                events.append((UNSUB, args[0], _size(args[1])))
            else:
                raise silent_close()
            return nl + 1
        if verb[:4] == b"HPUB" and verb[4:5] in (b" ", b"\t"):
            events.append(self._hpub(args_from(5)))
            return -1
        if verb[:7] == b"CONNECT" and verb[7:8] in (b" ", b"\t", b"\r", b"\n"):
            args_from(8)
            events.append((CONNECT, data[pos + 8:nl].strip()))
            return nl + 1
        if verb[:4] == b"INFO" and verb[4:5] in (b" ", b"\t"):
            args_from(5)
            events.append((INFO, data[pos + 5:nl].strip()))
            return nl + 1
        raise parse_error()
