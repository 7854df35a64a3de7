"""Protocol trace lines as the reference prints them with `-V`/`-DV`: `<<- [PUB foo 5]`,
`<<- MSG_PAYLOAD: ["hello"]`, `->> [MSG foo 1 5]`, `<-> [DELSUB 1]`. Pure formatting: the
client actor decides when to log."""

from __future__ import annotations

from .parser import CONNECT, HPUB, INFO, OK, PING, PONG, PUB, SUB, UNSUB

_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 34: '\\"', 92: "\\\\"}


def go_quote(data: bytes) -> str:
    """Go's %q of a byte string: double quotes, C-style escapes, \\x.. for other bytes."""
    out = ['"']
    text = data.decode("utf-8", errors="surrogateescape")
    for ch in text:
        o = ord(ch)
        if o in _ESCAPES:
            out.append(_ESCAPES[o])
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            out.append("\\x%02x" % (o - 0xDC00))
        elif o < 32 or o == 127:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _j(*tokens) -> str:
    return " ".join(t.decode(errors="replace") if isinstance(t, bytes) else str(t)
                    for t in tokens if t is not None)


def inbound(ev: tuple) -> list[str]:
    """The trace lines for one parsed event (without the connection prefix)."""
    op = ev[0]
    if op == PUB:
        return [f"<<- [{_j(b'PUB', ev[1], ev[2], ev[3])}]", f"<<- MSG_PAYLOAD: [{go_quote(ev[4])}]"]
    if op == HPUB:
        return [f"<<- [{_j(b'HPUB', ev[1], ev[2], ev[3], ev[4])}]", f"<<- MSG_PAYLOAD: [{go_quote(ev[5])}]"]
    if op == SUB:
        return [f"<<- [{_j(b'SUB', ev[1], ev[2], ev[3])}]"]
    if op == UNSUB:
        return [f"<<- [{_j(b'UNSUB', ev[1], ev[2] if ev[2] is not None and ev[2] >= 0 else None)}]"]
    if op == PING:
        return ["<<- [PING]"]
    if op == PONG:
        return ["<<- [PONG]"]
    if op == OK:
        return ["<<- [OK]"]
    if op == CONNECT:
        return [f"<<- [CONNECT {ev[1].decode(errors='replace')}]"]
    if op == INFO:
        return [f"<<- [INFO {ev[1].decode(errors='replace')}]"]
    return []


def outbound_frames(data: bytes) -> list[str]:
    """Trace lines for server frames (MSG/HMSG with payload, PING, PONG, +OK, -ERR, INFO)."""
    lines = []
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\r\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        pos = nl + 2
        if line.startswith((b"MSG ", b"HMSG ")):
            size = int(line.rsplit(b" ", 1)[1])
            payload = data[pos:pos + size]
            pos += size + 2
            lines.append(f"->> [{line.decode(errors='replace')}]")
            lines.append(f"->> MSG_PAYLOAD: [{go_quote(payload)}]")
        elif line == b"+OK":
            lines.append("->> [OK]")
        elif line.startswith(b"INFO "):
            continue  # the reference does not trace INFO
        else:
            lines.append(f"->> [{line.decode(errors='replace')}]")
    return lines
