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
- Runs of PUBs written the ordinary way (single spaces, CRLF, payload without CRLF inside) are
  parsed in bulk from one `split(b"\r\n")` of the read: the per-message work is a few C calls.
  Anything else (and any PUB the bulk path is unsure of) goes through the exact op-by-op path,
  so both paths give the same events.
- `in_msgs` / `in_bytes` count the messages (PUB and HPUB) and payload bytes parsed;
  `in_hmsgs` the HPUBs among them (so a caller can tell a read that gave only plain PUBs).
- Everything after an ERROR event is discarded; the caller sends the -ERR (if any) and closes.
- Parsing stops after a CONNECT (`paused` is then True): the caller applies it (it decides,
  e.g., whether HPUB is allowed) and calls `feed(b"")` for the rest of the input.
- A control line or payload that straddles reads is kept (the payload as a list of chunks,
  joined once) until it is whole. A control line is checked against max_control_line while it
  is still incomplete, and an impossible verb fails at once, as the reference's byte-level
  parser does, so a peer cannot make us buffer an endless line. PING/PONG/+OK lines are not
  limited (the reference skips their rest): only their first bytes are kept.
- Verbs are case-insensitive; arguments are separated by runs of spaces/tabs/CRs (not VT/FF);
  a bare LF ends a line (a CR before it is dropped); a payload must be followed by exactly CRLF.
  max_control_line applies to the arguments: what follows the verb and its blanks, up to CR.
"""

from __future__ import annotations

from itertools import islice

from .errors import MAX_CONTROL_LINE, MAX_PAYLOAD, ProtocolError, parse_error, silent_close

PUB, HPUB, SUB, UNSUB, PING, PONG, CONNECT, INFO, OK, ERROR = range(10)

_MAX_SIZE_DIGITS = 9  # the reference rejects longer sizes as invalid
_LONGEST_VERB = 10  # "CONNECT " plus CR and slack: bound for incomplete lines
_CRLF = b"\r\n"

_VERBS = (b"PUB", b"HPUB", b"SUB", b"UNSUB", b"PING", b"PONG", b"CONNECT", b"INFO", b"+OK", b"-ERR")
_NEEDS_BLANK = {b"PUB", b"HPUB", b"SUB", b"UNSUB", b"CONNECT", b"INFO", b"-ERR"}
_UNLIMITED = (b"PING", b"PONG", b"+OK")


def _plausible(partial: bytes) -> bool:
    """Could this incomplete line still become a valid op? (The reference's byte-level parser
    fails on the first impossible byte, without waiting for the end of the line.)"""
    head = partial[:8].upper()
    for verb in _VERBS:
        if len(head) <= len(verb):
            if verb.startswith(head):
                return True
        elif head.startswith(verb):
            nxt = head[len(verb)]
            if verb not in _NEEDS_BLANK or nxt in (32, 9) or (verb == b"CONNECT" and nxt in (13, 10)):
                return True
    return False


def _plain(ctrls: bytes) -> bool:
    """Whole-run check for the bulk path (control lines joined by LF): nothing that the exact
    path splits or reads differently (tabs, CR, VT, FF, empty tokens, trailing blanks)."""
    return not (b"\t" in ctrls or b"\r" in ctrls or b"\x0b" in ctrls or b"\x0c" in ctrls
                or b"  " in ctrls or b" \n" in ctrls or ctrls.endswith(b" "))


_SIZES = [str(i).encode() for i in range(8192)]  # canonical size tokens, for the bulk path


def _size(token: bytes) -> int:
    if token.isdigit() and len(token) <= _MAX_SIZE_DIGITS:
        return int(token)
    return -1


def _args(raw: bytes) -> list:
    """Split on runs of spaces, tabs and CRs, as the reference does (bytes.split() would also
    split on VT and FF)."""
    return [a for a in raw.replace(b"\t", b" ").replace(b"\r", b" ").split(b" ") if a]


def _max_payload(size: int, limit: int) -> ProtocolError:
    return ProtocolError(MAX_PAYLOAD, reason="Maximum Message Payload Exceeded",
                         detail=f"maximum payload exceeded: {size} vs {limit}")


def _mcl_error() -> ProtocolError:
    return ProtocolError(MAX_CONTROL_LINE, reason="Maximum Control Line Exceeded")


class ClientParser:
    """Incremental parser for one client connection."""

    __slots__ = ("max_payload", "max_control_line", "headers_ok", "paused", "in_msgs", "in_bytes", "in_hmsgs",
                 "_buf", "_op", "_chunks", "_have", "_need")

    def __init__(self, max_payload: int = 1048576, max_control_line: int = 4096):
        self.max_payload = max_payload
        self.max_control_line = max_control_line
        self.headers_ok = False  # HPUB is a violation until CONNECT said headers:true
        self.paused = False  # stopped after a CONNECT with more input buffered
        self.in_msgs = 0
        self.in_hmsgs = 0
        self.in_bytes = 0
        self._buf = b""  # an incomplete control line
        self._op = None  # a PUB/HPUB waiting for its payload: (op, subject, reply, x, size)
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, data: bytes) -> list:
        self.paused = False
        if data[:4] == b"PUB " and self._op is None and not self._buf and data[-2:] == _CRLF:
            one = self._single_pub(data)
            if one is not None:
                return one
        events: list = []
        op = self._op
        if op is not None:
            if data:
                self._chunks.append(data)
                self._have += len(data)
            if self._have < self._need:
                if self._have == self._need - 1 and self._chunks[-1][-1] != 13:
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
        startswith = data.startswith
        n = len(data)
        pos = 0
        mcl = self.max_control_line
        nmsgs = nbytes = 0
        lines = None  # data split at CRLF, made when a PUB run is first met
        li = li_pos = -1  # lines[li] starts at byte li_pos
        bulk = True
        try:
            while True:
                if op is not None:
                    size = op[4]
                    end = pos + size
                    if end + 2 > n:
                        if end < n and data[end] != 13:  # the byte after the payload must be CR
                            raise parse_error()
                        self._op = op
                        rest = data[pos:]
                        self._chunks = [rest]
                        self._have = len(rest)
                        self._need = size + 2
                        return events
                    if not startswith(_CRLF, end):
                        raise parse_error()
                    if op[0] == PUB:
                        append((PUB, op[1], op[2], op[3], data[pos:end]))
                    else:
                        append((HPUB, op[1], op[2], op[3][0], op[3][1], data[pos:end]))
                        self.in_hmsgs += 1
                    nmsgs += 1
                    nbytes += size
                    pos = end + 2
                    op = None
                if pos >= n:
                    return events
                nl = find(b"\n", pos)
                if nl < 0:
                    self._buf = self._incomplete(data[pos:])
                    return events
                if bulk and startswith(b"PUB ", pos):
                    # Bulk path, from the line that starts here (lines[li]).
                    if li_pos != pos:
                        if lines is None:
                            lines = data.split(_CRLF)
                            li, li_pos = 0, 0
                        if pos == 0 or data[pos - 2:pos] == _CRLF:
                            li += data.count(_CRLF, li_pos, pos)
                            li_pos = pos
                    if li_pos == pos:
                        start_li = li
                        first_event = len(events)
                        last = len(lines) - 1  # lines[-1] is not CRLF-terminated
                        climit = mcl + 4
                        sizes = _SIZES
                        try:
                            # per message only what decides the framing; the rest is checked
                            # for the whole run below, at C speed. The size token must be the
                            # canonical digits of the payload length (other spellings, and
                            # payloads of 8 KiB or more, go to the exact path).
                            prev = None  # the last control line split (runs repeat one)
                            nsplit = 0
                            for ctrl, payload in zip(islice(lines, li, last, 2),
                                                     islice(lines, li + 1, last, 2)):
                                if ctrl != prev:
                                    args = ctrl.split(b" ")
                                    if len(args) == 3:
                                        verb, subject, size_b = args
                                        reply = None
                                    elif len(args) == 4:
                                        verb, subject, reply, size_b = args
                                    else:
                                        break
                                    if verb != b"PUB" or len(ctrl) > climit:
                                        break
                                    prev = ctrl
                                    nsplit += 1
                                if size_b != sizes[len(payload)]:
                                    break
                                append((PUB, subject, reply, size_b, payload))
                        except (ValueError, IndexError):
                            pass  # not a plain PUB: the exact path takes it from here
                        li = start_li + 2 * (len(events) - first_event)
                        if li != start_li:
                            run = lines[start_li:li]
                            count = (li - start_li) >> 1
                            if nsplit == 1:  # one control line, repeated: checked once
                                ok = _plain(prev) and b"\n" not in prev
                                ctrl_bytes = len(prev) * count
                            else:
                                ctrls = b"\n".join(run[0::2])
                                ok = _plain(ctrls) and ctrls.count(b"\n") == count - 1  # no bare LF
                                ctrl_bytes = len(ctrls) - count + 1
                            if ok:
                                payloads = run[1::2]
                                payload_bytes = sum(map(len, payloads))
                                run_bytes = ctrl_bytes + payload_bytes + 4 * count
                                if payload_bytes <= self.max_payload or \
                                        max(map(len, payloads)) <= self.max_payload:
                                    nmsgs += count
                                    nbytes += payload_bytes
                                    pos += run_bytes
                                    li_pos = pos
                                    continue
                            # rare: something only the exact path gets right; redo from here
                            del events[first_event:]
                            li = start_li
                            bulk = False
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
        finally:
            self.in_msgs += nmsgs
            self.in_bytes += nbytes

    def _single_pub(self, data: bytes) -> list | None:
        """A read that is exactly one plain PUB (a request, a synchronous JetStream publish):
        parsed here without the bulk path's setup, or None to let the general path take it.
        The size token must be the canonical digits of everything between the control line
        and the final CRLF, so the payload is that by definition, as the general path reads it."""
        nl = data.find(_CRLF)
        size = len(data) - nl - 4
        if size < 0 or size >= 8192 or nl > self.max_control_line + 4 or size > self.max_payload:
            return None
        ctrl = data[:nl]
        args = ctrl.split(b" ")
        if len(args) == 3:
            reply = None
        elif len(args) == 4:
            reply = args[2]
        else:
            return None
        if args[-1] != _SIZES[size] or not args[1] or (reply is not None and not reply) \
                or b"\n" in ctrl or not _plain(ctrl):
            return None
        self.in_msgs += 1
        self.in_bytes += size
        return [(PUB, args[1], reply, args[-1], data[nl + 2:-2])]

    def _incomplete(self, rest: bytes) -> bytes:
        """What to keep of a control line that has not ended yet (or fail now)."""
        head = rest[:4].upper()
        if head in _UNLIMITED or head[:3] == b"+OK":
            return rest[:8]  # the reference ignores the rest of these lines
        if not _plausible(rest):
            raise parse_error()
        if len(rest) > self.max_control_line + _LONGEST_VERB:
            verb_end = 0
            while verb_end < len(rest) and rest[verb_end] not in (32, 9):
                verb_end += 1
            if len(rest[verb_end:].lstrip(b" \t")) > self.max_control_line:
                raise _mcl_error()
        return rest

    def _reset(self) -> None:
        self._buf = b""
        self._op = None
        self._chunks = []
        self._have = 0

    def _pub(self, args: list):
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
            raise _max_payload(size, self.max_payload)
        return (PUB, subject, reply, size_b, size)

    def _hpub(self, args: list):
        if not self.headers_ok:
            raise ProtocolError(None, reason="Protocol Violation", detail="message headers not supported")
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
            raise _max_payload(size, self.max_payload)
        return (HPUB, subject, reply, (hdr, size_b), size)

    def _control(self, data: bytes, pos: int, nl: int, events: list) -> int:
        """Parse one control line that the fast path did not take; return the next position,
        or -1 when the line opened a PUB/HPUB (its pending op is the last item of `events`)."""
        first = data[pos]
        if first == 43:  # '+'
            if data[pos:pos + 3].upper() == b"+OK":
                events.append((OK,))
                return nl + 1
            raise parse_error()
        verb = data[pos:pos + 8].upper()
        if verb[:4] in (b"PING", b"PONG"):
            events.append((PING,) if verb[1] == 73 else (PONG,))
            return nl + 1
        line_end = nl - 1 if data[nl - 1] == 13 else nl

        def args_from(skip: int) -> list:
            raw = data[pos + skip:line_end].lstrip(b" \t")
            if len(raw) > self.max_control_line:
                raise _mcl_error()
            return _args(raw)

        if first == 45:  # '-'
            if verb[:4] == b"-ERR" and verb[4:5] in (b" ", b"\t"):
                args_from(5)
                raise silent_close("Client Closed")
            raise parse_error()
        blank = (b" ", b"\t")
        if verb[:3] == b"PUB" and verb[3:4] in blank:
            events.append(self._pub(args_from(4)))
            return -1
        if verb[:3] == b"SUB" and verb[3:4] in blank:
            args = args_from(4)
            if len(args) == 2:
                events.append((SUB, args[0], None, args[1]))
            elif len(args) == 3:
                events.append((SUB, args[0], args[1], args[2]))
            else:
                raise silent_close()
            return nl + 1
        if verb[:5] == b"UNSUB" and verb[5:6] in blank:
            args = args_from(6)
            if len(args) == 1:
                events.append((UNSUB, args[0], None))
            elif len(args) == 2:
                events.append((UNSUB, args[0], _size(args[1])))
            else:
                raise silent_close()
            return nl + 1
        if verb[:4] == b"HPUB" and verb[4:5] in blank:
            events.append(self._hpub(args_from(5)))
            return -1
        if verb[:7] == b"CONNECT" and verb[7:8] in (b" ", b"\t", b"\r", b"\n"):
            args_from(8)
            events.append((CONNECT, data[pos + 8:nl].strip()))
            return nl + 1
        if verb[:4] == b"INFO" and verb[4:5] in blank:
            args_from(5)
            events.append((INFO, data[pos + 5:nl].strip()))
            return nl + 1
        raise parse_error()
