"""The JetStream API as pure functions: request decoding, config defaults and validation, subjects,
pull requests, acks and PubAcks, exactly as the reference server (v2.15.1) answers them.

It owns: the Go-compatible JSON encoding and request decoding (strict fields, Go's error texts),
RFC3339Nano times and Go durations, the response type names, StreamConfig and ConsumerConfig
defaults/validation/update rules (returned as JSON-ready dicts in the reference's field order),
API subject parsing, the pull-request and ack payload grammars, the `$JS.ACK` reply subject and
the PubAck body. It must not: do I/O, hold state, read clocks (`now` is passed in as Unix ns),
or know about actors. Errors are `jserrors.ApiError`s, raised at the point the reference checks.

Rules of this file:
- Configs are dicts keyed by the JSON names. `normalize_*` take a decoded request and return the
  stored config (static metadata `_nats.req.level` only); `with_dynamic_metadata` adds
  `_nats.ver`/`_nats.level` for responses, as the reference does.
- Check order matters: the first failing check is the error the client sees; each function
  follows the reference's order, and the docstrings say where the actor must interleave its own
  checks (stream lookup, existing consumers).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Iterable, NamedTuple

from . import jserrors as E
from .jserrors import ApiError
from . import subjects as _subjects
from .transform import SubjectTransform, TransformError  # noqa: F401  (streams use jsapi.SubjectTransform)

try:  # the version we report in `_nats.ver`
    from .. import NATS_VERSION
except ImportError:  # pragma: no cover - protocol used outside the package
    NATS_VERSION = "2.15.1"

JS_API_LEVEL = 5
API_PREFIX = "$JS.API."
MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4096
MAX_METADATA_LEN = 128 * 1024
STREAM_MAX_REPLICAS = 5
DEFAULT_DUPLICATE_WINDOW = 120_000_000_000
DEFAULT_ACK_WAIT = 30_000_000_000
DEFAULT_EPHEMERAL_INACTIVE = 5_000_000_000
DEFAULT_MAX_ACK_PENDING = 1000
DEFAULT_MAX_WAITING = 512
DEFAULT_PINNED_TTL = 120_000_000_000
SOURCE_HEALTH_HB = 1_000_000_000
MS = 1_000_000

REQ_LEVEL_KEY = "_nats.req.level"
VERSION_KEY = "_nats.ver"
LEVEL_KEY = "_nats.level"

# --------------------------------------------------------------------------------------------
# JSON as Go writes it


def go_json(obj: Any) -> bytes:
    """Compact JSON with Go's escaping of <, >, &, U+2028 and U+2029 (as encoding/json)."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if any(c in s for c in "<>&\u2028\u2029"):
        s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
             .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    try:
        return s.encode()
    except UnicodeEncodeError:  # a client's bytes that were not UTF-8: Go writes U+FFFD
        return re.sub(r"[\ud800-\udfff]", "\ufffd", s).encode()


def go_quote(s: str) -> str:
    """Go's %q of a string (close enough for the ASCII our error texts quote)."""
    return json.dumps(s, ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Times and durations

ZERO_TIME = "0001-01-01T00:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ZERO_TIME_NS = -62135596800 * 1_000_000_000


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count from 1970-01-01, proleptic Gregorian, any year."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _days(y: int, m: int, d: int) -> int:
    """The day count from 1970-01-01 of a civil date (the inverse of _civil)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def format_time(ns: int | None, offset_s: int = 0) -> str:
    """Go's RFC3339Nano: `2026-11-27T18:09:36.123456789Z`, trailing zeros trimmed. None (or the
    Go zero time) gives `0001-01-01T00:00:00Z`. `offset_s` keeps a non-UTC zone as `+01:00`.
    Any time a client can write is shown (years before 1 or after 9999 too, as Go formats
    them), never an exception."""
    if ns is None:
        ns = ZERO_TIME_NS
    local = ns + offset_s * 1_000_000_000
    secs, frac = divmod(local, 1_000_000_000)
    days, rem = divmod(secs, 86400)
    year, month, day = _civil(days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    ys = f"-{-year:04d}" if year < 0 else f"{year:04d}"
    out = f"{ys}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    if offset_s == 0:
        return out + "Z"
    sign = "+" if offset_s > 0 else "-"
    oh, om = divmod(abs(offset_s) // 60, 60)
    return out + f"{sign}{oh:02d}:{om:02d}"


_RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"


def _time_quote(s: str) -> str:
    """The time package's quote(): ASCII as is (`"` and `\\` escaped), every byte of anything
    else as \\xNN."""
    out = ['"']
    for c in s:
        if c < " " or c >= "\x80":
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", errors="surrogateescape"))
        else:
            out.append("\\" + c if c in '"\\' else c)
    out.append('"')
    return "".join(out)


def _getnum(s: str, fixed: bool) -> tuple[int, str] | None:
    """Go's time.getnum: one or two ASCII digits (exactly two when `fixed`)."""
    if not s[:1].isdigit() or not s[:1].isascii():
        return None
    if not s[1:2].isdigit() or not s[1:2].isascii():
        return None if fixed else (int(s[0]), s[1:])
    return int(s[:2]), s[2:]


def parse_time(s: str, *, lenient_zone: bool = False) -> tuple[int, int]:
    """RFC 3339 as Go's time.Time.UnmarshalJSON takes it (time.Parse with the RFC3339 layout:
    a one-digit hour, a `,` before the fraction and zone offsets up to 24:60 pass) -> (Unix
    ns, zone offset in seconds). Raises ValueError with Go's text. `lenient_zone` also takes
    any two-digit offset (for times this module wrote)."""
    def cannot(rest: str, elem: str) -> ValueError:
        return ValueError(f"parsing time {_time_quote(s)} as {_time_quote(_RFC3339_LAYOUT)}: cannot parse "
                          f"{_time_quote(rest)} as {_time_quote(elem)}")

    def out_of_range(what: str) -> ValueError:
        return ValueError(f"parsing time {_time_quote(s)}: {what} out of range")
    v = s
    if len(v) < 4 or not v[:4].isdigit() or not v[:4].isascii():  # 2006: four digits
        raise cannot(v, "2006")
    year, v = int(v[:4]), v[4:]
    if v[:1] != "-":
        raise cannot(v, "-")
    n = _getnum(v[1:], True)
    if n is None:
        raise cannot(v[1:], "01")
    month, v = n
    if not 1 <= month <= 12:
        raise out_of_range("month")
    if v[:1] != "-":
        raise cannot(v, "-")
    n = _getnum(v[1:], True)
    if n is None:
        raise cannot(v[1:], "02")
    day, v = n
    if v[:1] != "T":
        raise cannot(v, "T")
    n = _getnum(v[1:], False)
    if n is None:
        raise cannot(v[1:], "15")
    hour, v = n
    if hour >= 24:
        raise out_of_range("hour")
    if v[:1] != ":":
        raise cannot(v, ":")
    n = _getnum(v[1:], True)
    if n is None:
        raise cannot(v[1:], "04")
    minute, v = n
    if minute >= 60:
        raise out_of_range("minute")
    if v[:1] != ":":
        raise cannot(v, ":")
    n = _getnum(v[1:], True)
    if n is None:
        raise cannot(v[1:], "05")
    second, v = n
    if second >= 60:
        raise out_of_range("second")
    frac = 0
    if len(v) >= 2 and v[0] in ".," and v[1] in "0123456789":
        i = 2
        while i < len(v) and v[i] in "0123456789":
            i += 1
        frac, v = int(v[1:min(i, 10)].ljust(9, "0")), v[i:]
    offset = 0
    if v[:1] == "Z":
        v = v[1:]
    else:
        if len(v) < 6 or v[3] != ":":
            raise cannot(v, "Z07:00")
        zh, zm = _getnum(v[1:3], True), _getnum(v[4:6], True)
        if zh is None or zm is None or zh[1] or zm[1] or v[0] not in "+-":
            raise cannot(v, "Z07:00")
        if not lenient_zone and zm[0] > 60:  # Go checks both; the minute's error is the one kept
            raise out_of_range("time zone offset minute")
        if not lenient_zone and zh[0] > 24:
            raise out_of_range("time zone offset hour")
        offset = (zh[0] * 60 + zm[0]) * 60 * (-1 if v[0] == "-" else 1)
        v = v[6:]
    if v:
        raise ValueError(f"parsing time {_time_quote(s)}: extra text: {_time_quote(v)}")
    if day < 1 or day > _days_in(month, year):
        raise out_of_range("day")
    secs = _days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return secs * 1_000_000_000 + frac, offset


def parse_time_ns(s: str) -> int:
    """Unix ns of a time this module wrote (a stored config's pause_until, opt_start_time)."""
    return parse_time(s, lenient_zone=True)[0]


def go_marshals_time(s: str) -> bool:
    """Would Go's time.Time.MarshalJSON write this time (as this module writes times)? Not
    with a year outside 0..9999 or a zone offset of 24 hours or more: the reference fails to
    store a config holding one."""
    try:
        return abs(parse_time(s, lenient_zone=True)[1]) < 24 * 3600
    except ValueError:
        return False


def normalize_time(s: str) -> str:
    """A client's RFC3339 time re-written as the reference echoes it (trimmed fraction, Z)."""
    ns, off = parse_time(s)
    return format_time(ns, off)


_UNITS = [("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3),
          ("µs", 10**3), ("μs", 10**3), ("ns", 1)]


def format_duration(ns: int) -> str:
    """Go's time.Duration.String(): `1m30s`, `1.5s`, `100ms`, `0s`."""
    if ns == 0:
        return "0s"
    neg, u = ns < 0, abs(ns)
    if u < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if u >= size or unit == "ns":
                whole, frac = divmod(u, size)
                out = str(whole)
                if frac:
                    out += "." + f"{frac:0{len(str(size)) - 1}d}".rstrip("0")
                return ("-" if neg else "") + out + unit
    secs, frac = divmod(u, 10**9)
    h, secs = divmod(secs, 3600)
    m, secs = divmod(secs, 60)
    out = f"{secs}" + ("." + f"{frac:09d}".rstrip("0") if frac else "") + "s"
    if h:
        out = f"{h}h{m}m" + out
    elif m:
        out = f"{m}m" + out
    return ("-" if neg else "") + out


def parse_duration(s: str) -> int:
    """Go's time.ParseDuration -> ns. Raises ValueError(`time: invalid duration "x"`)."""
    orig, s = s, s
    bad = ValueError(f"time: invalid duration {_time_quote(orig)}")
    neg = False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise bad
    total = 0
    while s:
        m = re.match(r"([0-9]*)(?:\.([0-9]*))?", s)
        if not m or (not m.group(1) and not m.group(2)):
            raise bad
        whole, frac = m.group(1) or "0", m.group(2) or ""
        s = s[m.end():]
        u = re.match(r"[^0-9.]+", s)
        if not u:
            raise ValueError(f"time: missing unit in duration {_time_quote(orig)}")
        unit = u.group(0)
        size = dict(_UNITS).get(unit)
        if size is None:
            raise ValueError(f"time: unknown unit {_time_quote(unit)} in duration {_time_quote(orig)}")
        s = s[u.end():]
        if len(whole.lstrip("0")) > 19:
            raise bad  # Go: overflow
        frac = frac[:19]  # Go ignores digits past what an int64 holds
        total += int(whole) * size + (int(frac) * size // 10 ** len(frac) if frac else 0)
        if total > 2**63 - (0 if neg else 1):
            raise bad
    return -total if neg else total


# --------------------------------------------------------------------------------------------
# Response types

RESPONSE_TYPES = {
    "INFO": "account_info_response",
    "STREAM.CREATE": "stream_create_response",
    "STREAM.UPDATE": "stream_update_response",
    "STREAM.DELETE": "stream_delete_response",
    "STREAM.INFO": "stream_info_response",
    "STREAM.NAMES": "stream_names_response",
    "STREAM.LIST": "stream_list_response",
    "STREAM.PURGE": "stream_purge_response",
    "STREAM.MSG.GET": "stream_msg_get_response",
    "STREAM.MSG.DELETE": "stream_msg_delete_response",
    "STREAM.SNAPSHOT": "stream_snapshot_response",
    "STREAM.RESTORE": "stream_restore_response",
    "STREAM.PEER.REMOVE": "stream_remove_peer_response",
    "STREAM.LEADER.STEPDOWN": "stream_leader_stepdown_response",
    "CONSUMER.CREATE": "consumer_create_response",
    "CONSUMER.DURABLE.CREATE": "consumer_create_response",
    "CONSUMER.DELETE": "consumer_delete_response",
    "CONSUMER.INFO": "consumer_info_response",
    "CONSUMER.NAMES": "consumer_names_response",
    "CONSUMER.LIST": "consumer_list_response",
    "CONSUMER.PAUSE": "consumer_pause_response",
    "CONSUMER.UNPIN": "consumer_unpin_response",
    "CONSUMER.RESET": "consumer_reset_response",
    "CONSUMER.LEADER.STEPDOWN": "consumer_leader_stepdown_response",
    "META.LEADER.STEPDOWN": "meta_leader_stepdown_response",
    "SERVER.REMOVE": "meta_server_remove_response",
    "ACCOUNT.PURGE": "account_purge_response",
}
SYSTEM_RESPONSE = "system_response"
TYPE_PREFIX = "io.nats.jetstream.api.v1."


def api_response(type_name: str, body: dict | None = None, error: ApiError | None = None) -> dict:
    """`{"type": "io.nats.jetstream.api.v1.<type_name>", ...body}`; with `error`, the error
    object follows the type, as the reference orders it. `type_name` may also be an op
    ("STREAM.CREATE")."""
    type_name = RESPONSE_TYPES.get(type_name, type_name)
    out: dict[str, Any] = {"type": TYPE_PREFIX + type_name}
    if error is not None:
        out["error"] = error.to_json()
    if body:
        out.update(body)
    return out


# --------------------------------------------------------------------------------------------
# Request decoding with Go's strictness and error texts


class _Num(str):
    """A JSON number kept as its literal text until its Go type is known."""


MAX_JSON_DEPTH = 10000  # Go's encoding/json nesting limit ("exceeded max depth")
_WS = " \t\r\n"
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_BAD_BYTE = re.compile(r"[\udc80-\udcff]")  # a byte that was not UTF-8, as _text_of keeps it


class _GoJSONError(Exception):
    """A body Go's encoding/json refuses: `msg` is Go's text, `offset` its byte offset (None
    for Go errors that have none, such as `unexpected EOF`)."""

    def __init__(self, msg: str, offset: int | None = None):
        super().__init__(msg)
        self.msg = msg
        self.offset = offset


class _SlowPath(Exception):
    """The C decoder met what only the iterative one decodes as Go does (NaN, Infinity)."""


def _no_constants(name: str):
    raise _SlowPath(name)


class _Dups(dict):
    """A JSON object with a repeated key: `pairs` holds every member in order (Go decodes
    each in turn; the dict keeps the last)."""

    pairs: list


def _object(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        d = _Dups(d)
        d.pairs = pairs
    return d


_FAST = json.JSONDecoder(parse_float=_Num, parse_int=_Num, parse_constant=_no_constants,
                         object_pairs_hook=_object)


def _text_of(body: bytes | str) -> str:
    """The body as text; bytes that are not UTF-8 become lone surrogates (one per byte, as Go
    replaces each with U+FFFD in strings), so byte offsets can be recovered."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body).decode("utf-8", errors="surrogateescape")
    return body


def _byte_offset(text: str, pos: int) -> int:
    try:
        return len(text[:pos].encode("utf-8", errors="surrogateescape"))
    except UnicodeEncodeError:
        return pos


def _decode_value(text: str, pos: int) -> tuple[Any, int]:
    """One JSON value at `pos` (no leading whitespace): (value, end). Numbers are _Num;
    strings with lone surrogates (bad \\u escapes or bytes) get U+FFFD in their place. Deeply
    nested values (beyond the C decoder's recursion) are decoded iteratively, up to Go's
    depth limit. Raises json.JSONDecodeError or _GoJSONError."""
    try:
        value, end = _FAST.raw_decode(text, pos)
    except (RecursionError, _SlowPath):
        value, end = _decode_iterative(text, pos)
    if _SURROGATE.search(text, pos, end):
        value = _replace_surrogates(value)
    return value, end


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _WS:
        pos += 1
    return pos


def _decode_key(text: str, pos: int) -> tuple[str, int]:
    if pos >= len(text) or text[pos] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = json.decoder.scanstring(text, pos + 1, True)
    pos = _skip_ws(text, pos)
    if pos >= len(text) or text[pos] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, _skip_ws(text, pos + 1)


def _decode_iterative(text: str, pos: int) -> tuple[Any, int]:
    """The C decoder's grammar and error positions without recursion, and without NaN or
    Infinity (Go has none); a container nested deeper than Go's limit raises _GoJSONError."""
    n = len(text)
    stack: list[list] = []  # [members so far, key of the member being decoded, is an object]
    while True:
        if pos >= n:
            raise json.JSONDecodeError("Expecting value", text, pos)
        c = text[pos]
        if c in "{[":
            if len(stack) >= MAX_JSON_DEPTH:
                raise _GoJSONError("exceeded max depth", _byte_offset(text, pos) + 1)
            pos = _skip_ws(text, pos + 1)
            if c == "{":
                if pos < n and text[pos] == "}":
                    value, pos = {}, pos + 1
                else:
                    key, pos = _decode_key(text, pos)
                    stack.append([[], key, True])
                    continue
            else:
                if pos < n and text[pos] == "]":
                    value, pos = [], pos + 1
                else:
                    stack.append([[], None, False])
                    continue
        elif c == '"':
            value, pos = json.decoder.scanstring(text, pos + 1, True)
        elif text.startswith("null", pos):
            value, pos = None, pos + 4
        elif text.startswith("true", pos):
            value, pos = True, pos + 4
        elif text.startswith("false", pos):
            value, pos = False, pos + 5
        else:
            m = _JSON_NUMBER.match(text, pos)
            if not m:
                raise json.JSONDecodeError("Expecting value", text, pos)
            value, pos = _Num(m.group(0)), m.end()
        while True:  # a value is complete: into its container, closing the containers it ends
            if not stack:
                return value, pos
            members, key, is_object = stack[-1]
            members.append((key, value) if is_object else value)
            pos = _skip_ws(text, pos)
            if pos < n and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
                if is_object:
                    stack[-1][1], pos = _decode_key(text, pos)
                break
            if pos < n and text[pos] == ("}" if is_object else "]"):
                value, pos = (_object(members) if is_object else members), pos + 1
                stack.pop()
                continue
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


def _replace_surrogates(value: Any) -> Any:
    """Lone surrogates in every string (keys too) replaced by U+FFFD, as Go decodes them."""
    def fix(x: Any) -> Any:
        if isinstance(x, str) and not isinstance(x, _Num):
            return re.sub(r"[\ud800-\udfff]", "\ufffd", x)
        return x
    if not isinstance(value, (dict, list)):
        return fix(value)
    todo, seen = [value], set()
    while todo:
        v = todo.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, dict):
            items = list(v.items())
            v.clear()
            for k, x in items:
                v[fix(k)] = fix(x)
            if isinstance(v, _Dups):
                v.pairs = [(fix(k), fix(x)) for k, x in v.pairs]
                items += v.pairs
            todo.extend(x for _, x in items if isinstance(x, (dict, list)))
        else:
            for i, x in enumerate(v):
                v[i] = fix(x)
                if isinstance(x, (dict, list)):
                    todo.append(x)
    return value


def loads(body: bytes | str) -> Any:
    """json.loads for what a client sent, as Go's json.Unmarshal reads it (one value; no NaN or
    Infinity; any nesting up to Go's limit; lone surrogates and bad bytes in strings become
    U+FFFD). Raises ValueError for what Go refuses; never RecursionError."""
    text = _text_of(body)
    try:
        value, end = _decode_value(text, _skip_ws(text, 0))
    except (json.JSONDecodeError, _GoJSONError) as e:
        raise ValueError(str(e)) from None
    if _skip_ws(text, end) < len(text):
        raise ValueError("invalid character after top-level value")
    return _plain_numbers(value)


def _plain_numbers(value: Any) -> Any:
    """_Num literals as Python numbers (int, or float with a fraction or exponent), without
    recursion. A number too long for int() raises ValueError."""
    def num(x):
        if isinstance(x, _Num):
            return float(x) if any(c in x for c in ".eE") else int(x)
        return x
    if not isinstance(value, (dict, list)):
        return num(value)
    todo = [value]
    while todo:
        v = todo.pop()
        keys = v.keys() if isinstance(v, dict) else range(len(v))
        for k in keys:
            x = v[k]
            if isinstance(x, (dict, list)):
                todo.append(x)
            else:
                v[k] = num(x)
    return value


def _in_number(text: str, pos: int) -> int | None:
    """Where a malformed number ends at or spans `pos` (`-x`, `1.x`, `1ex`): the position of
    the character Go refuses in it, or None if no number is malformed there."""
    start = pos
    while start > 0 and text[start - 1] in "0123456789.eE+-":
        start -= 1
    if start == pos and text[pos:pos + 1] != "-":
        return None
    i, n = start, len(text)
    digits = "0123456789"
    if i < n and text[i] == "-":
        i += 1
        if i >= n or text[i] not in digits:
            return i
    if i < n and text[i] == "0":
        i += 1
    else:
        while i < n and text[i] in digits:
            i += 1
    if i < n and text[i] == ".":
        i += 1
        if i >= n or text[i] not in digits:
            return i
        while i < n and text[i] in digits:
            i += 1
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        if i >= n or text[i] not in digits:
            return i
    return None


def _syntax_error(text: str, e: json.JSONDecodeError) -> _GoJSONError:
    """Go's SyntaxError (text and byte offset, the offset just past the character it names)
    for where Python's decoder stopped. The reference's encoding/json words them as Go 1.25
    does (`in string`, `in numeric literal`, `invalid escape sequence`)."""
    pos = e.pos
    msg = e.msg
    n = len(text)

    def bad(at: int, what: str) -> _GoJSONError:
        if at >= n:
            return _GoJSONError("unexpected EOF")
        return _GoJSONError(f"invalid character {_go_char(text[at])} {what}", _byte_offset(text, at + 1))
    num = _in_number(text, pos) if pos < n else None
    if num is not None:
        return bad(num, "in numeric literal")
    if pos >= len(text.rstrip(_WS)) or msg.startswith("Unterminated string"):
        return _GoJSONError("unexpected EOF")
    ch = text[pos]
    if msg.startswith("Expecting value") or msg.startswith("Extra data"):
        for lit in ("null", "true", "false"):
            if ch == lit[0]:
                got = text[pos:pos + len(lit)]
                for i, (a, b) in enumerate(zip(got, lit)):
                    if a != b:
                        return bad(pos + i, f"in literal {lit} (expecting {_go_char(b)})")
                if len(got) < len(lit):
                    return _GoJSONError("unexpected EOF")
        return bad(pos, "looking for beginning of value")
    if msg.startswith("Expecting property name"):
        return bad(pos, "looking for beginning of object key string")
    if msg.startswith("Expecting ':'"):
        return bad(pos, "after object key")
    if msg.startswith("Expecting ','"):
        inside = _innermost(text, pos)
        return bad(pos, "after object key:value pair" if inside == "{" else "after array element")
    if msg.startswith("Invalid control character"):
        return bad(pos, "in string")
    if msg.startswith("Invalid \\u"):  # Python stops at the 'u'; Go names `\u` and 4 more bytes
        return _escape_error(text, pos - 1, 6)
    if msg.startswith("Invalid \\escape"):  # Python stops at the backslash
        return _escape_error(text, pos, 2)
    return bad(pos, "looking for beginning of value")


def _escape_error(text: str, start: int, nbytes: int) -> _GoJSONError:
    """`invalid escape sequence` naming the first `nbytes` bytes from the backslash at `start`
    (in backquotes, or as Go's %q when they are not plain printable UTF-8)."""
    raw = text[start:start + nbytes].encode("utf-8", errors="surrogateescape")[:nbytes]
    if len(raw) < nbytes:
        return _GoJSONError("unexpected EOF")
    seq = raw.decode("utf-8", errors="surrogateescape")
    if any(c == "`" or not c.isprintable() or c.isspace() or "\udc80" <= c <= "\udcff" for c in seq):
        shown = _go_quote_bytes(seq)
    else:
        shown = f"`{seq}`"
    return _GoJSONError(f"invalid escape sequence {shown} in string", _byte_offset(text, start) + nbytes)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\"}


def _go_escape(c: str, quote: str) -> str:
    """One character as Go's strconv quoting writes it (a byte that was not UTF-8, kept as a
    surrogate escape, as \\xNN)."""
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xdc00:02x}"
    if c == quote:
        return "\\" + c
    if c in _GO_ESCAPES:
        return _GO_ESCAPES[c]
    if c.isprintable():
        return c
    o = ord(c)
    if o < 0x80:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def _go_quote_bytes(s: str) -> str:
    """Go's %q of a string (strconv.Quote)."""
    return '"' + "".join(_go_escape(c, '"') for c in s) + '"'


def _go_char(c: str) -> str:
    """Go's quoting of the character its JSON scanner stopped at: the whole rune
    (strconv.QuoteRune), or '\\xff' for a byte that is not UTF-8."""
    if "\udc80" <= c <= "\udcff":
        return f"'\\x{ord(c) - 0xdc00:x}'"
    return "'" + _go_escape(c, "'") + "'"


def _innermost(text: str, pos: int) -> str:
    stack, in_str, esc = [], False, False
    for c in text[:pos]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _json_values(body: bytes | str, single: bool = False, with_start: bool = False):
    """The top-level JSON values of a body, one at a time, as Go reads them: a json.Decoder
    (`single` false: values one after another; a syntax error is raised when reached, with
    ` at offset N` as the reference's unmarshalRequest adds it) or json.Unmarshal (`single`:
    exactly one value, the whole body checked first; Go's texts without an offset). Raises
    ApiError 10025."""
    text = _text_of(body)
    n = len(text)
    pos = _skip_ws(text, 0)
    if single and pos >= n:
        raise E.JSInvalidJSONError(err="unexpected end of JSON input")
    while pos < n:
        start = pos
        try:
            try:
                value, pos = _decode_value(text, pos)
            except json.JSONDecodeError as e:
                raise _syntax_error(text, e) from None
            pos = _skip_ws(text, pos)
            if single and pos < n:
                raise _GoJSONError(f"invalid character {_go_char(text[pos])} after top-level value",
                                   _byte_offset(text, pos) + 1)
        except _GoJSONError as e:
            if single:
                msg = "unexpected end of JSON input" if e.msg == "unexpected EOF" else e.msg
            else:
                msg = e.msg if e.offset is None else f"{e.msg} at offset {e.offset}"
            raise E.JSInvalidJSONError(err=msg) from None
        yield (value, start) if with_start else value


def decode_json_values(body: bytes | str) -> list[Any]:
    """All top-level JSON values in a body (a Go json.Decoder reads them one after another).
    Raises ApiError 10025 with Go's syntax error text."""
    return list(_json_values(body))


# Go type descriptions for the request structs. A spec is a Go type name string, or a dict
# (struct: field -> spec), or ("[]", spec) / ("map", spec) / ("enum", parser).


class _EnumError(Exception):
    pass


def _enum(values: dict[str, Any], err=None, lower=False, string_only=False):
    def parse(raw: Any, literal: str):
        if string_only:  # decoded as a Go string first (null leaves it empty)
            if raw is not None and (not isinstance(raw, str) or isinstance(raw, _Num)):
                raise _EnumError(f"json: cannot unmarshal {_kind(raw)} into Go value of type string")
            literal = go_quote(raw or "")
        key = literal.lower() if lower else literal
        if key in values:
            return values[key]
        raise _EnumError(err(literal) if err else f"can not unmarshal {_go_quote_bytes(literal)}")
    return ("enum", parse)


class _Raw(str):
    """Literal JSON text in _lit's output."""


def _lit(raw: Any) -> str:
    """A decoded value as JSON text again (compact; numbers as they were written), without
    recursion: values nest as deep as Go allows."""
    out: list[str] = []
    todo: list[Any] = [raw]
    while todo:
        v = todo.pop()
        if isinstance(v, _Raw):
            out.append(v)
        elif v is None:
            out.append("null")
        elif v is True or v is False:
            out.append("true" if v else "false")
        elif isinstance(v, _Num):
            out.append(str(v))
        elif isinstance(v, str):
            out.append(go_quote(v))
        elif isinstance(v, list):
            parts: list[Any] = [_Raw("[")]
            for i, x in enumerate(v):
                if i:
                    parts.append(_Raw(","))
                parts.append(x)
            parts.append(_Raw("]"))
            todo.extend(reversed(parts))
        elif isinstance(v, dict):
            parts = [_Raw("{")]
            for i, (k, x) in enumerate(v.items()):
                parts.append(_Raw(("," if i else "") + go_quote(k) + ":"))
                parts.append(x)
            parts.append(_Raw("}"))
            todo.extend(reversed(parts))
        else:
            out.append(json.dumps(v))
    return "".join(out)


def _kind(raw: Any) -> str:
    if isinstance(raw, bool):
        return "bool"
    if isinstance(raw, _Num):
        return "number"
    if isinstance(raw, str):
        return "string"
    if isinstance(raw, list):
        return "array"
    if isinstance(raw, dict):
        return "object"
    return "null"


_INT_RANGES = {"int": (-2**63, 2**63 - 1), "int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31 - 1),
               "uint64": (0, 2**64 - 1), "uint8": (0, 255), "time.Duration": (-2**63, 2**63 - 1)}

_RETENTION = _enum({'"limits"': "limits", '"interest"': "interest", '"workqueue"': "workqueue"})
_DISCARD = _enum({'"old"': "old", '"new"': "new"}, lower=True)
_STORAGE = _enum({'"file"': "file", '"memory"': "memory"})
_COMPRESSION = _enum({'"none"': "none", '"s2"': "s2"}, err=lambda _l: "unknown compression algorithm",
                     string_only=True)
_PERSIST = _enum({'"default"': "default", '""': "default", '"async"': "async"})
_DELIVER = _enum({'"all"': "all", '"undefined"': "all", '"last"': "last", '"new"': "new",
                  '"by_start_sequence"': "by_start_sequence", '"by_start_time"': "by_start_time",
                  '"last_per_subject"': "last_per_subject"})
_ACK = _enum({'"none"': "none", '"all"': "all", '"explicit"': "explicit", '"flow_control"': "flow_control"})
_REPLAY = _enum({'"instant"': "instant", '"original"': "original"})
_PRIORITY = _enum({'"none"': "none", '"overflow"': "overflow", '"pinned_client"': "pinned_client",
                   '"prioritized"': "prioritized"}, err=lambda l: f"unknown priority policy: {l}")
_ACTION = _enum({'""': "", '"create"': "create", '"update"': "update"},
                err=lambda l: f"unknown consumer action: {l}")

_TRANSFORM = {"src": "string", "dest": "string"}
_EXTERNAL = {"api": "string", "deliver": "string"}
_SOURCE = {"name": "string", "opt_start_seq": "uint64", "opt_start_time": "*time.Time",
           "filter_subject": "string", "subject_transforms": ("[]", _TRANSFORM),
           "external": _EXTERNAL, "consumer": {"name": "string", "deliver_subject": "string"}}
STREAM_FIELDS: dict[str, Any] = {
    "name": "string", "description": "string", "subjects": ("[]", "string"), "retention": _RETENTION,
    "max_consumers": "int", "max_msgs": "int64", "max_bytes": "int64", "max_age": "time.Duration",
    "max_msgs_per_subject": "int64", "max_msg_size": "int32", "discard": _DISCARD, "storage": _STORAGE,
    "num_replicas": "int", "no_ack": "bool", "duplicate_window": "time.Duration",
    "placement": {"cluster": "string", "tags": ("[]", "string"), "preferred": "string"},
    "mirror": _SOURCE, "sources": ("[]", _SOURCE, "*"), "compression": _COMPRESSION, "first_seq": "uint64",
    "subject_transform": _TRANSFORM, "republish": {"src": "string", "dest": "string", "headers_only": "bool"},
    "allow_direct": "bool", "mirror_direct": "bool", "discard_new_per_subject": "bool", "sealed": "bool",
    "deny_delete": "bool", "deny_purge": "bool", "allow_rollup_hdrs": "bool",
    "consumer_limits": {"inactive_threshold": "time.Duration", "max_ack_pending": "int"},
    "allow_msg_ttl": "bool", "subject_delete_marker_ttl": "time.Duration", "allow_msg_counter": "bool",
    "allow_atomic": "bool", "allow_msg_schedules": "bool", "persist_mode": _PERSIST, "allow_batched": "bool",
    "metadata": ("map", "string"),
}
STREAM_REQUEST = dict(STREAM_FIELDS, pedantic="bool")
CONSUMER_FIELDS: dict[str, Any] = {
    "durable_name": "string", "name": "string", "description": "string", "deliver_policy": _DELIVER,
    "opt_start_seq": "uint64", "opt_start_time": "*time.Time", "ack_policy": _ACK,
    "ack_wait": "time.Duration", "max_deliver": "int", "backoff": ("[]", "time.Duration"),
    "filter_subject": "string", "filter_subjects": ("[]", "string"), "replay_policy": _REPLAY,
    "rate_limit_bps": "uint64", "sample_freq": "string", "max_waiting": "int", "max_ack_pending": "int",
    "flow_control": "bool", "headers_only": "bool", "max_batch": "int", "max_expires": "time.Duration",
    "max_bytes": "int", "deliver_subject": "string", "deliver_group": "string",
    "idle_heartbeat": "time.Duration", "inactive_threshold": "time.Duration", "num_replicas": "int",
    "mem_storage": "bool", "direct": "bool", "sourcing": "bool", "metadata": ("map", "string"),
    "pause_until": "*time.Time", "priority_groups": ("[]", "string"), "priority_policy": _PRIORITY,
    "priority_timeout": "time.Duration",
}
CONSUMER_REQUEST = {"stream_name": "string", "config": CONSUMER_FIELDS, "action": _ACTION, "pedantic": "bool"}
STREAM_STATE: dict[str, Any] = {
    "messages": "uint64", "bytes": "uint64", "first_seq": "uint64", "first_ts": "*time.Time",
    "last_seq": "uint64", "last_ts": "*time.Time", "num_subjects": "int", "subjects": ("map", "uint64"),
    "num_deleted": "int", "deleted": ("[]", "uint64"), "lost": {"msgs": ("[]", "uint64"), "bytes": "uint64"},
    "consumer_count": "int",
}
RESTORE_REQUEST = {"config": STREAM_FIELDS, "state": STREAM_STATE}
_TYPE_NAMES = {id(STREAM_FIELDS): "server.StreamConfig", id(STREAM_STATE): "server.StreamState",
               id(STREAM_STATE["lost"]): "server.LostStreamData",
               id(_SOURCE): "server.StreamSource", id(_TRANSFORM): "server.SubjectTransformConfig",
               id(_EXTERNAL): "server.ExternalStream", id(_SOURCE["consumer"]): "server.StreamConsumerSource",
               id(STREAM_FIELDS["placement"]): "server.Placement",
               id(STREAM_FIELDS["republish"]): "server.RePublish",
               id(STREAM_FIELDS["consumer_limits"]): "server.StreamConsumerLimits",
               id(CONSUMER_FIELDS): "server.ConsumerConfig"}
PULL_REQUEST = {"expires": "time.Duration", "batch": "int", "max_bytes": "int", "no_wait": "bool",
                "idle_heartbeat": "time.Duration", "group": "string", "min_pending": "int64",
                "min_ack_pending": "int64", "id": "string", "priority": "int"}


class _Decoder:
    """Decodes one request value as the reference's encoding/json (Go 1.25) does: keys matched
    case-insensitively, members in document order, and the first error met is the one
    reported (a wrong type, an unknown field when strict, an enum's or a time's own error).
    `text` and `start` locate the value in the body, for the raw text Go hands to an enum's
    UnmarshalJSON."""

    def __init__(self, root: str, strict: bool, text: str = "", start: int = 0):
        self.root = root
        self.strict = strict
        self.text = text
        self.start = start
        # no escapes and no bytes that were not UTF-8: a string's text is its value in quotes
        self.plain = "\\" not in text and not _BAD_BYTE.search(text)

    def fail(self, msg: str):
        raise E.JSInvalidJSONError(err=msg)

    def type_error(self, raw: Any, gotype: str, path: list[str], value: str | None = None) -> None:
        what = value or _kind(raw)
        where = ".".join([self.root] + path)
        if path and path[-1].isdigit():
            self.fail(f"json: cannot unmarshal {what} into {where} of type {gotype}")
        elif path:
            self.fail(f"json: cannot unmarshal {what} into Go struct field {where} of type {gotype}")
        else:
            self.fail(f"json: cannot unmarshal {what} into Go value of type server.{self.root}")

    def value(self, raw: Any, spec: Any, path: list[str], old: Any = None, rpath: tuple = ()) -> Any:
        """The Go value of `raw` for `spec`, given the value decoded so far (`old`). None
        means nil or unset: the caller leaves the field out (JSON null keeps a scalar or a
        struct as it was and makes a slice, map or pointer nil, as in Go). `rpath` is where
        `raw` is in the text: (key, occurrence) per object, the index per array."""
        if isinstance(spec, dict):
            if raw is None:
                return old
            if not isinstance(raw, dict):
                self.type_error(raw, _go_name(spec), path)
            out = dict(old) if isinstance(old, dict) else {}
            seen: dict[str, int] = {}
            for key, val in (raw.pairs if isinstance(raw, _Dups) else raw.items()):
                seen[key] = seen.get(key, -1) + 1
                field = key if key in spec else next((k for k in spec if k.lower() == key.lower()), None)
                if field is None:
                    if self.strict:
                        self.fail(f"json: unknown field {go_quote(key)}")
                    continue
                v = self.value(val, spec[field], path + [key], out.get(field), rpath + ((key, seen[key]),))
                if v is None:
                    out.pop(field, None)
                else:
                    out[field] = v
            return out
        if isinstance(spec, tuple) and spec[0] == "enum":
            literal = '"' + raw + '"' if self.plain and type(raw) is str else self.raw_text(rpath, raw)
            try:
                return spec[1](raw, literal)
            except _EnumError as e:
                self.fail(str(e))
        if isinstance(spec, tuple) and spec[0] == "[]":
            if raw is None:
                return None
            if not isinstance(raw, list):
                self.type_error(raw, _go_name(spec), path)
            elem = spec[1]
            out_list = []
            for i, v in enumerate(raw):
                x = self.value(v, elem, path + [str(i)], None, rpath + (i,))
                if x is None and not (len(spec) > 2 and spec[2] == "*"):
                    x = _zero(elem)  # a null element is the element type's zero value
                out_list.append(x)
            return out_list
        if isinstance(spec, tuple) and spec[0] == "map":
            if raw is None:
                return None
            if not isinstance(raw, dict):
                self.type_error(raw, _go_name(spec), path)
            out = dict(old) if isinstance(old, dict) else {}
            for k, v in (raw.pairs if isinstance(raw, _Dups) else raw.items()):
                x = self.value(v, spec[1], path + [k])  # Go decodes into a fresh element
                out[k] = _zero(spec[1]) if x is None else x
            return out
        return self.scalar(raw, spec, path, old)

    def raw_text(self, rpath: tuple, raw: Any) -> str:
        """The JSON text of the value at `rpath` as the client wrote it (`raw` written again
        if it cannot be found)."""
        try:
            return _raw_at(self.text, self.start, rpath)
        except (ValueError, IndexError):
            return _lit(raw)

    def scalar(self, raw: Any, gotype: str, path: list[str], old: Any) -> Any:
        if raw is None:
            return None if gotype == "*time.Time" else old
        if gotype == "string":
            if isinstance(raw, str) and not isinstance(raw, _Num):
                return str(raw)
        elif gotype == "bool":
            if isinstance(raw, bool):
                return raw
        elif gotype == "*time.Time":
            if not isinstance(raw, str) or isinstance(raw, _Num):
                self.type_error(raw, "time.Time", path)
            try:
                return normalize_time(raw)
            except ValueError as e:
                self.fail(str(e))
        elif gotype in _INT_RANGES:
            if isinstance(raw, _Num):
                n = _go_int(raw, *_INT_RANGES[gotype])
                if n is None:
                    self.type_error(raw, gotype, path, value=f"number {raw}")
                return n
        self.type_error(raw, gotype, path)
        return old


_SCALAR = re.compile(r"[^,\]}\s]*")


def _skip_value(text: str, pos: int) -> int:
    """The end of the (valid) JSON value at `pos`, without recursion."""
    c = text[pos]
    if c == '"':
        return json.decoder.scanstring(text, pos + 1, False)[1]
    if c not in "[{":
        return _SCALAR.match(text, pos).end()
    depth = 0
    while True:
        c = text[pos]
        if c == '"':
            pos = json.decoder.scanstring(text, pos + 1, False)[1]
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1


def _raw_at(text: str, pos: int, rpath: tuple) -> str:
    """The text of the value reached from the (valid) JSON value at `pos` by `rpath`."""
    for step in rpath:
        pos = _skip_ws(text, pos) + 1  # past '[' or '{'
        if isinstance(step, int):
            for _ in range(step):
                pos = _skip_ws(text, _skip_value(text, _skip_ws(text, pos))) + 1  # past ','
            continue
        key, occurrence = step
        while True:
            pos = _skip_ws(text, pos)
            k, pos = json.decoder.scanstring(text, pos + 1, False)
            pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ':'
            if _replace_surrogates(k) == key:
                if occurrence == 0:
                    break
                occurrence -= 1
            pos = _skip_ws(text, _skip_value(text, pos)) + 1  # past ','
    pos = _skip_ws(text, pos)
    return text[pos:_skip_value(text, pos)]


def _go_int(literal: str, lo: int, hi: int) -> int | None:
    """A JSON number literal as Go's strconv.ParseInt/ParseUint take it into a type with range
    [lo, hi] (no fraction or exponent, no sign for unsigned types), or None."""
    digits = literal[1:] if literal[:1] == "-" else literal
    if not digits.isdigit() or not digits.isascii() or len(digits) > 20 or (lo == 0 and literal[:1] == "-"):
        return None
    n = int(literal)
    return n if lo <= n <= hi else None


def _zero(spec: Any) -> Any:
    """The zero value of a Go type description (None for pointers)."""
    if isinstance(spec, dict):
        return {}
    if spec == "string":
        return ""
    if spec == "bool":
        return False
    if spec in _INT_RANGES:
        return 0
    return None


def _go_name(spec: Any) -> str:
    """The Go type a spec stands for, as the reference's type errors name it."""
    if isinstance(spec, str):
        return "time.Time" if spec == "*time.Time" else spec
    if isinstance(spec, dict):
        return _TYPE_NAMES.get(id(spec), "struct")
    if spec[0] == "[]":
        return "[]" + ("*" if len(spec) > 2 and spec[2] == "*" else "") + _go_name(spec[1])
    if spec[0] == "map":
        return "map[string]" + _go_name(spec[1])
    return "string"


def decode_request(body: bytes | str, spec: dict, root: str, *, strict: bool = True,
                   single: bool = False) -> dict:
    """Decode an API request body as the reference does: a strict json.Decoder over every value
    in the body, each decoded before the next is read (the reference's unmarshalRequest), or
    with `single` one value as json.Unmarshal reads it (pull requests, UNPIN; `strict` off:
    unknown fields ignored). An empty body is `{}` (with `single`: Go's `unexpected end of JSON
    input`). Raises ApiError 10025 (invalid JSON) with the reference's text."""
    text = _text_of(body)
    out: dict = {}
    for v, start in _json_values(text, single, with_start=True):
        out = _Decoder(root, strict, text, start).value(v, spec, [], out) or out
    return out


def decode_stream_request(body: bytes | str, *, strict: bool = True) -> dict:
    """STREAM.CREATE/UPDATE body -> dict of the given fields (plus `pedantic`)."""
    return decode_request(body, STREAM_REQUEST, "StreamConfigRequest", strict=strict)


def decode_consumer_request(body: bytes | str, *, strict: bool = True) -> dict:
    """CONSUMER.CREATE body -> {"stream_name", "config": {...}, "action", "pedantic"}."""
    req = decode_request(body, CONSUMER_REQUEST, "CreateConsumerRequest", strict=strict)
    req.setdefault("config", {})
    req.setdefault("stream_name", "")
    req.setdefault("action", "")
    return req


# --------------------------------------------------------------------------------------------
# Names and subjects


def valid_subject(subject: str) -> bool:
    return _subjects.valid_subject(subject.encode())


def _blen(s: str) -> int:
    """The length Go's len() gives: UTF-8 bytes, not characters (the reference's name,
    description and metadata limits count bytes)."""
    return len(s.encode("utf-8", errors="replace"))


def valid_asset_name(name: str) -> bool:
    """A stream/consumer name: non-empty, no whitespace, '.', '*', '>', path separators."""
    return bool(name) and not any(c in name for c in ".*> \t\r\n\f\\/")


def _subjects_collide(a: str, b: str) -> bool:
    """Could one subject match both patterns?"""
    ta, tb = a.split("."), b.split(".")
    for i, (x, y) in enumerate(zip(ta, tb)):
        if x == ">" or y == ">":
            return True
        if x != y and x != "*" and y != "*":
            return False
    return len(ta) == len(tb)


def _subset_match(subject: str, test: str) -> bool:
    """Is every subject matched by `subject` also matched by `test`?"""
    ts, tt = subject.split("."), test.split(".")
    for i, t in enumerate(tt):
        if i >= len(ts):
            return False
        if t == ">":
            return True
        s = ts[i]
        if t == "*":
            if s == ">":
                return False
            continue
        if s != t:
            return False
    return len(ts) == len(tt)


def _literal(subject: str) -> bool:
    return all(t not in ("*", ">") for t in subject.split("."))


# --------------------------------------------------------------------------------------------
# Stream config

_STREAM_ORDER = [
    # (key, zero, omitempty)
    ("name", "", False), ("description", "", True), ("subjects", None, True), ("retention", "limits", False),
    ("max_consumers", 0, False), ("max_msgs", 0, False), ("max_bytes", 0, False), ("max_age", 0, False),
    ("max_msgs_per_subject", 0, False), ("max_msg_size", 0, True), ("discard", "old", False),
    ("storage", "file", False), ("num_replicas", 0, False), ("no_ack", False, True),
    ("duplicate_window", 0, True), ("placement", None, True), ("mirror", None, True), ("sources", None, True),
    ("compression", "none", False), ("first_seq", 0, True), ("subject_transform", None, True),
    ("republish", None, True), ("allow_direct", False, False), ("mirror_direct", False, False),
    ("discard_new_per_subject", False, True), ("sealed", False, False), ("deny_delete", False, False),
    ("deny_purge", False, False), ("allow_rollup_hdrs", False, False), ("consumer_limits", None, False),
    ("allow_msg_ttl", False, False), ("subject_delete_marker_ttl", 0, True), ("allow_msg_counter", False, True),
    ("allow_atomic", False, True), ("allow_msg_schedules", False, True), ("persist_mode", "default", True),
    ("allow_batched", False, True), ("metadata", None, True),
]
_SOURCE_ORDER = ["name", "opt_start_seq", "opt_start_time", "filter_subject", "subject_transforms",
                 "external", "consumer"]


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == 0 or v is False or v == [] or v == {}


def _emit_source(src: dict) -> dict:
    out: dict[str, Any] = {"name": src.get("name", "")}
    for k in _SOURCE_ORDER[1:]:
        v = src.get(k)
        if _empty(v):
            continue
        if k == "subject_transforms":
            v = [{"src": t.get("src", ""), "dest": t.get("dest", "")} for t in v]
        elif k == "external":
            v = {"api": v.get("api", ""), "deliver": v.get("deliver", "")}
        elif k == "consumer":
            v = {kk: v[kk] for kk in ("name", "deliver_subject") if v.get(kk)}
        out[k] = v
    return out


def emit_stream_config(cfg: dict) -> dict:
    """A stream config dict in the reference's JSON field order, omitempty fields dropped."""
    out: dict[str, Any] = {}
    for key, zero, omit in _STREAM_ORDER:
        v = cfg.get(key, zero)
        if key == "persist_mode" and v == "default":
            continue
        if omit and _empty(v):
            continue
        if key == "consumer_limits":
            v = v or {}
            v = {k: v[k] for k in ("inactive_threshold", "max_ack_pending") if v.get(k)}
        elif key in ("mirror",):
            v = _emit_source(v)
        elif key == "sources":
            v = [_emit_source(s) for s in v]
        elif key == "placement":
            v = {k: v[k] for k in ("cluster", "tags", "preferred") if v.get(k)}
        elif key == "subject_transform":
            v = {"src": v.get("src", ""), "dest": v.get("dest", "")}
        elif key == "republish":
            r = {"dest": v.get("dest", "")}
            if v.get("src"):
                r = {"src": v["src"], **r}
            if v.get("headers_only"):
                r["headers_only"] = True
            v = r
        elif key == "metadata":
            v = dict(sorted(v.items()))
        out[key] = v
    return out


def _stream_req_level(cfg: dict) -> int:
    level = 0
    if cfg.get("allow_msg_ttl") or (cfg.get("subject_delete_marker_ttl") or 0) > 0:
        level = max(level, 1)
    if cfg.get("allow_msg_counter") or cfg.get("allow_atomic") or cfg.get("allow_msg_schedules") \
            or cfg.get("persist_mode") == "async":
        level = max(level, 2)
    if cfg.get("allow_batched"):
        level = max(level, 4)
    return level


def with_dynamic_metadata(cfg: dict, version: str = NATS_VERSION) -> dict:
    """A copy of a stored stream/consumer config with `_nats.ver` and `_nats.level` added, as
    every API response shows them (they are never stored)."""
    out = dict(cfg)
    md = dict(cfg.get("metadata") or {})
    md[VERSION_KEY] = version
    md[LEVEL_KEY] = str(JS_API_LEVEL)
    out["metadata"] = dict(sorted(md.items()))
    if "metadata" not in cfg:  # keep the field order: metadata goes where the struct has it
        out = _reorder_metadata(out)
    return out


def _reorder_metadata(cfg: dict) -> dict:
    order = [k for k, _z, _o in _STREAM_ORDER] if "retention" in cfg else _CONSUMER_KEYS
    return {k: cfg[k] for k in order if k in cfg} | {k: v for k, v in cfg.items() if k not in order}


def check_stream_create_request(subject_stream: str, req: dict) -> None:
    """The STREAM.CREATE handler's own checks, before the config is normalized."""
    if subject_stream != req.get("name", ""):
        raise E.JSStreamMismatchError()
    if "\\" in subject_stream or "/" in subject_stream:
        raise E.JSStreamNameContainsPathSeparatorsError()
    if req.get("sealed"):
        raise E.JSStreamInvalidConfigError(err="stream configuration for create can not be sealed")
    if req.get("mirror_direct") and not req.get("mirror"):
        raise E.JSStreamInvalidConfigError(err="stream has no mirror but does have mirror direct")


def normalize_stream_config(req: dict, *, pedantic: bool | None = None, clustered: bool = False,
                            max_duplicate_window: int = 0, streams: dict[str, dict] | None = None,
                            max_bytes_required: bool = False, max_stream_bytes: int = 0) -> dict:
    """Apply the reference's stream defaults and validation (its checkStreamCfg, then the
    non-clustered replicas check) to a decoded StreamConfig request. `streams` maps the other
    streams of the account to their configs (mirror/source checks and cycle detection). Returns
    the stored config in field order, with static metadata; raises ApiError."""
    if pedantic is None:
        pedantic = bool(req.get("pedantic"))
    cfg = {k: v for k, v in req.items() if k != "pedantic"}
    streams = streams or {}
    inv = lambda msg: E.JSStreamInvalidConfigError(err=msg)  # noqa: E731
    ped = lambda msg: E.JSPedanticError(err=msg)  # noqa: E731

    name = cfg.get("name", "")
    if not valid_asset_name(name):
        raise inv("stream name is required and can not contain '.', '*', '>', '\\', '/'")
    if _blen(name) > MAX_NAME_LEN:
        raise inv(f"stream name is too long, maximum allowed is {MAX_NAME_LEN}")
    if _blen(cfg.get("description", "")) > MAX_DESCRIPTION_LEN:
        raise inv(f"stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}")
    md = dict(cfg.get("metadata") or {})
    md.pop(VERSION_KEY, None)
    md.pop(LEVEL_KEY, None)
    if sum(_blen(k) + _blen(v) for k, v in md.items()) > MAX_METADATA_LEN:
        raise inv(f"stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes")
    for key, default in (("retention", "limits"), ("discard", "old"), ("compression", "none"),
                         ("storage", "file"), ("persist_mode", "default")):
        cfg.setdefault(key, default)

    replicas = cfg.get("num_replicas", 0) or 1
    cfg["num_replicas"] = replicas
    if replicas > STREAM_MAX_REPLICAS:
        raise inv(f"maximum replicas is {STREAM_MAX_REPLICAS}")
    if replicas < 0:
        raise E.JSReplicasCountCannotBeNegativeError()
    for key in ("max_msgs", "max_msgs_per_subject", "max_bytes", "max_msg_size", "max_consumers"):
        v = cfg.get(key, 0)
        if v == 0 or v < -1:
            if pedantic and v < -1:
                raise ped(f"{key} must be set to -1")
            cfg[key] = -1
    max_age = cfg.get("max_age", 0)
    cfg["max_age"] = max_age
    if max_age < 0:
        raise inv("max age can not be negative")
    if max_age != 0 and max_age < 100 * MS:
        raise inv("max age needs to be >= 100ms")

    mirror, sources = cfg.get("mirror"), cfg.get("sources") or []
    dup = cfg.get("duplicate_window", 0)
    if dup == 0 and not mirror and not sources:
        window = DEFAULT_DUPLICATE_WINDOW
        if max_duplicate_window > 0 and window > max_duplicate_window:
            if pedantic:
                raise ped("duplicate window limits are higher than current limits")
            window = max_duplicate_window
        if max_age != 0 and max_age < window:
            if pedantic:
                raise ped("duplicate window cannot be bigger than max age")
            dup = max_age
        else:
            dup = window
    cfg["duplicate_window"] = dup
    if dup < 0:
        raise inv("duplicates window can not be negative")
    if max_age != 0 and dup > max_age:
        raise inv("duplicates window can not be larger then max age")
    if max_duplicate_window > 0 and dup > max_duplicate_window:
        raise inv(f"duplicates window can not be larger then server limit of {format_duration(max_duplicate_window)}")
    if 0 < dup < 100 * MS:
        raise inv("duplicates window needs to be >= 100ms")

    if cfg.get("deny_purge") and cfg.get("allow_rollup_hdrs"):
        raise inv("roll-ups require the purge permission")
    if cfg.get("allow_msg_counter"):
        if cfg["discard"] == "new":
            raise inv("counter stream cannot use discard new")
        if cfg.get("allow_msg_ttl"):
            raise inv("counter stream cannot use message TTLs")
        if cfg.get("allow_msg_schedules"):
            raise inv("counter stream cannot use message schedules")
        if cfg["retention"] != "limits":
            raise inv("counter stream can only use limits retention")
    if cfg.get("discard_new_per_subject"):
        if cfg["discard"] != "new":
            raise inv("discard new per subject requires discard new policy to be set")
        if cfg["max_msgs_per_subject"] <= 0:
            raise inv("discard new per subject requires max msgs per subject > 0")
    sdm = cfg.get("subject_delete_marker_ttl", 0)
    if sdm > 0:
        if sdm < 1_000_000_000:
            raise inv("subject delete marker TTL must be at least 1 second")
        if not cfg.get("allow_msg_ttl"):
            if pedantic:
                raise inv("subject delete marker cannot be set if message TTLs are disabled")
            cfg["allow_msg_ttl"] = True
        if not cfg.get("allow_rollup_hdrs"):
            if pedantic:
                raise inv("subject delete marker cannot be set if roll-ups are disabled")
            cfg["allow_rollup_hdrs"], cfg["deny_purge"] = True, False
    elif sdm < 0:
        raise inv("subject delete marker TTL must not be negative")
    if cfg.get("allow_msg_schedules"):
        if cfg["discard"] == "new":
            raise inv("message scheduling cannot use discard new")
        if not cfg.get("allow_rollup_hdrs"):
            if pedantic:
                raise inv("message scheduling cannot be set if roll-ups are disabled")
            cfg["allow_rollup_hdrs"], cfg["deny_purge"] = True, False
    if cfg["persist_mode"] == "async":
        if cfg["storage"] != "file":
            raise inv("async persist mode is only supported on file storage")
        if replicas > 1:
            raise inv("async persist mode is not supported on replicated streams")
        if cfg.get("allow_atomic"):
            raise inv("async persist mode is not supported with atomic batch publish")

    subjects = list(cfg.get("subjects") or [])
    stream_subs: list[str] = []
    if mirror is not None:
        _check_mirror(cfg, mirror, subjects, sources, streams, pedantic, stream_subs)
    if sources and cfg.get("allow_msg_schedules"):
        raise E.JSSourceWithMsgSchedulesError()
    _check_sources(cfg, sources, streams, stream_subs)
    _check_cycles(cfg, streams)

    if not subjects:
        if mirror is None and not sources:
            subjects = [name]
    else:
        if mirror is not None:
            raise E.JSMirrorWithSubjectsError()
        _check_stream_subjects(subjects, cfg)
    if subjects:
        cfg["subjects"] = subjects
    else:
        cfg.pop("subjects", None)
    if not subjects and not sources and mirror is None:
        raise inv("stream needs at least one configured subject or be a source/mirror")
    if max_bytes_required and cfg["max_bytes"] <= 0:
        raise E.JSStreamMaxBytesRequiredError()
    if max_stream_bytes > 0 and cfg["max_bytes"] > max_stream_bytes:
        raise E.JSStreamMaxStreamBytesExceededError()

    st = cfg.get("subject_transform")
    if st is not None:
        if st.get("src") and not valid_subject(st["src"]):
            raise E.JSStreamTransformInvalidSourceError(err=f"invalid subject {st['src']}")
        _check_mapping(st.get("src", ""), st.get("dest", ""), E.JSStreamTransformInvalidDestinationError)
    rp = cfg.get("republish")
    if rp is not None:
        rp = dict(rp)
        if not rp.get("src"):
            if pedantic:
                raise ped("republish source can not be empty")
            rp["src"] = ">"
        if rp.get("dest") == ">" and rp["src"] == ">" and st is not None and len(subjects) == 1 \
                and st.get("src", "") == subjects[0]:
            if pedantic:
                raise ped("implicit republish based on subject transform")
            rp["src"] = rp["dest"] = st.get("dest", "")
        if any(_subjects_collide(rp.get("dest", ""), s) for s in subjects):
            raise inv("stream configuration for republish destination forms a cycle")
        if not _valid_transform(rp["src"], rp.get("dest", "")):
            raise inv(f"stream configuration for republish with transform from '{rp['src']}' to "
                      f"'{rp.get('dest', '')}' not valid")
        cfg["republish"] = rp
    pl = cfg.get("placement")
    if pl is not None and not any(pl.get(k) for k in ("cluster", "tags", "preferred")):
        cfg.pop("placement")
    elif pl is not None and pl.get("preferred"):
        raise inv("preferred server not permitted in placement")

    if not clustered and replicas > 1:
        raise E.JSStreamReplicasNotSupportedError()
    md[REQ_LEVEL_KEY] = str(_stream_req_level(cfg))
    cfg["metadata"] = md
    return emit_stream_config(cfg)


def _check_mirror(cfg, mirror, subjects, sources, streams, pedantic, stream_subs) -> None:
    if cfg.get("first_seq", 0) > 0:
        raise E.JSMirrorWithFirstSeqError()
    if subjects:
        raise E.JSMirrorWithSubjectsError()
    if sources:
        raise E.JSMirrorWithSourcesError()
    if cfg.get("allow_msg_counter"):
        raise E.JSMirrorWithCountersError()
    if cfg.get("allow_atomic"):
        raise E.JSMirrorWithAtomicPublishError()
    if cfg.get("allow_batched"):
        raise E.JSMirrorWithBatchPublishError()
    if cfg.get("allow_msg_schedules"):
        raise E.JSMirrorWithMsgSchedulesError()
    c = mirror.get("consumer")
    if c is not None:
        if not valid_asset_name(c.get("name", "")) or not _literal(c.get("deliver_subject", "")) \
                or not valid_subject(c.get("deliver_subject", "")) \
                or mirror.get("opt_start_seq") or mirror.get("opt_start_time") or mirror.get("filter_subject"):
            raise E.JSMirrorDurableConsumerCfgInvalidError()
    transforms = mirror.get("subject_transforms") or []
    if mirror.get("filter_subject") and transforms:
        raise E.JSMirrorMultipleFiltersNotAllowedError()
    if cfg.get("subject_delete_marker_ttl", 0) > 0:
        raise E.JSStreamInvalidConfigError(err="subject delete markers forbidden on mirrors")
    for i, tr in enumerate(transforms):
        src = tr.get("src", "")
        if src and not valid_subject(src):
            raise E.JSMirrorInvalidSubjectFilterError(err=f"invalid subject {src}")
        _check_mapping(src, tr.get("dest", ""), E.JSMirrorInvalidTransformDestinationError)
        for j, other in enumerate(transforms):
            if i != j and _subjects_collide(src, other.get("src", "")):
                raise E.JSMirrorOverlappingSubjectFiltersError()
    if mirror.get("external") is None:
        if not valid_asset_name(mirror.get("name", "")):
            raise E.JSMirrorInvalidStreamNameError()
        origin = streams.get(mirror["name"])
        if origin is not None:
            stream_subs.extend(origin.get("subjects") or [])
            mms, oms = cfg.get("max_msg_size", -1), origin.get("max_msg_size", -1)
            if mms > 0 and oms > 0 and mms < oms:
                raise E.JSMirrorMaxMessageSizeTooBigError()
            if pedantic and bool(cfg.get("mirror_direct")) != bool(origin.get("allow_direct")):
                raise E.JSPedanticError(err="origin stream has direct get set, mirror has it disabled")
            cfg["mirror_direct"] = bool(origin.get("allow_direct"))
    else:
        _check_external(mirror["external"], stream_subs)


def _check_external(ext: dict, stream_subs: list[str]) -> None:
    pfx = ext.get("deliver", "")
    if pfx:
        if not valid_subject(pfx) or not _literal(pfx):
            raise E.JSStreamInvalidExternalDeliverySubjError(prefix=pfx)
        for sub in stream_subs:
            if _subjects_collide(sub, f"{pfx}.{sub}"):
                raise E.JSStreamExternalDelPrefixOverlapsError(prefix=pfx, subject=sub)
    api = ext.get("api", "")
    if api:
        if not valid_subject(api) or not _literal(api):
            raise E.JSStreamInvalidConfigError(
                err=f"stream external api prefix {go_quote(api)} must be a valid subject without wildcards")
        if _subjects_collide(api, "$JS.API"):
            raise E.JSStreamExternalApiOverlapError(prefix=api, subject="$JS.API")


def _check_sources(cfg, sources, streams, stream_subs) -> None:
    inames, cnames = set(), set()
    for src in sources:
        if not src or not valid_asset_name(src.get("name", "")):
            raise E.JSSourceInvalidStreamNameError()
        ext = src.get("external") or {}
        iname = (src["name"], ext.get("api", ""), src.get("filter_subject", ""),
                 tuple((t.get("src", ""), t.get("dest", "")) for t in src.get("subject_transforms") or []))
        if iname in inames:
            raise E.JSSourceDuplicateDetectedError()
        inames.add(iname)
        transforms = src.get("subject_transforms") or []
        if src.get("filter_subject") and transforms:
            raise E.JSSourceMultipleFiltersNotAllowedError()
        for tr in transforms:
            s = tr.get("src", "")
            if s and not valid_subject(s):
                raise E.JSSourceInvalidSubjectFilterError(err=f"invalid subject {s}")
            _check_mapping(s, tr.get("dest", ""), E.JSSourceInvalidTransformDestinationError)
        for i, tr in enumerate(transforms):
            for j, other in enumerate(transforms):
                if i != j and _subset_match(tr.get("src", ""), other.get("src", "")):
                    raise E.JSSourceOverlappingSubjectFiltersError()
        c = src.get("consumer")
        if c is not None:
            if not valid_asset_name(c.get("name", "")) or not _literal(c.get("deliver_subject", "")) \
                    or not valid_subject(c.get("deliver_subject", "")) \
                    or src.get("opt_start_seq") or src.get("opt_start_time") or src.get("filter_subject"):
                raise E.JSSourceDurableConsumerCfgInvalidError()
            cname = (src["name"], c.get("name", ""))
            if cname in cnames:
                raise E.JSSourceDurableConsumerDuplicateDetectedError()
            cnames.add(cname)
        if src.get("external") is None:
            origin = streams.get(src["name"])
            if origin is not None:
                stream_subs.extend(origin.get("subjects") or [])
                mms, oms = cfg.get("max_msg_size", -1), origin.get("max_msg_size", -1)
                if mms > 0 and oms > 0 and mms < oms:
                    raise E.JSSourceMaxMessageSizeTooBigError()
        else:
            _check_external(src["external"], stream_subs)


def _check_cycles(cfg: dict, streams: dict[str, dict]) -> None:
    to_visit, visited = [cfg], set()
    while to_visit:
        c = to_visit.pop(0)
        visited.add(c.get("name", ""))
        for src in c.get("sources") or []:
            if src.get("external") is not None:
                continue
            if src.get("name") in visited:
                flt = src.get("filter_subject", "")
                if not flt or any(_subjects_collide(s, flt) for s in c.get("subjects") or []):
                    raise E.JSStreamInvalidConfigError(err="detected cycle")
            elif src.get("name") in streams:
                to_visit.append(streams[src["name"]])
        m = c.get("mirror")
        if m and m.get("external") is None:
            if m.get("name") in visited:
                raise E.JSStreamInvalidConfigError(err="detected cycle")
            if m.get("name") in streams:
                to_visit.append(streams[m["name"]])


def _check_stream_subjects(subjects: list[str], cfg: dict) -> None:
    inv = lambda msg: E.JSStreamInvalidConfigError(err=msg)  # noqa: E731
    seen: set[str] = set()
    no_ack = bool(cfg.get("no_ack"))
    for i, subj in enumerate(subjects):
        if not valid_subject(subj):
            raise inv("invalid subject")
        if subj in seen:
            raise inv("duplicate subjects detected")
        if subj == ">":
            if not no_ack:
                raise inv("capturing all subjects requires no-ack to be true")
            if cfg["num_replicas"] != 1:
                raise inv("capturing all subjects requires replicas of 1")
        if not no_ack:
            for ns in ("$JS.>", "$JSC.>", "$NRG.>"):
                if _subjects_collide(subj, ns) and not _subset_match(subj, "$JS.EVENT.>"):
                    raise inv("subjects that overlap with jetstream api require no-ack to be true")
            if _subjects_collide(subj, "$SYS.>") and not _subset_match(subj, "$SYS.ACCOUNT.>"):
                raise inv("subjects that overlap with system api require no-ack to be true")
        for other in subjects[i + 1:]:
            if _subjects_collide(other, subj):
                raise inv(f"subject {go_quote(subj)} overlaps with {go_quote(other)}")
        seen.add(subj)


_MAPPING_FN = re.compile(r"\{\{\s*(\w+)\s*\((.*?)\)\s*\}\}")


def _valid_transform(src: str, dest: str) -> bool:
    """A permissive check of a subject mapping: destination a valid subject, `$N`/`{{wildcard(N)}}`
    references within the source's wildcards."""
    if dest == "":
        return True
    if src and not valid_subject(src):
        return False
    src_tokens = (src or ">").split(".")
    nwc = sum(1 for t in src_tokens if t == "*")
    if ">" in dest.split(".") and src_tokens[-1] != ">":
        return False
    for m in _MAPPING_FN.finditer(dest):
        args = [a.strip() for a in m.group(2).split(",") if a.strip()]
        fn = m.group(1).lower()
        # wildcard(N) names a wildcard; partition(buckets, N, ...) names wildcards after the count
        refs = args[:1] if fn == "wildcard" else args[1:] if fn == "partition" else []
        for a in refs:
            if a.isdigit() and int(a) > nwc:
                return False
    plain = _MAPPING_FN.sub("X", dest)
    for ref in re.findall(r"\$(\d+)", plain):
        if int(ref) > nwc:
            return False
    if not valid_subject(re.sub(r"\$\d+", "X", plain)):
        return False
    try:  # what the transform itself refuses (bad function arguments, ...)
        SubjectTransform(src, dest)
    except TransformError:
        return False
    return True


def _check_mapping(src: str, dest: str, ctor) -> None:
    if not _valid_transform(src, dest):
        raise ctor(err="invalid subject transform")


def stream_config_update_check(old: dict, new: dict, *, pedantic: bool = False, clustered: bool = False,
                               **limits: Any) -> dict:
    """What STREAM.UPDATE may not change. `old` is the stored config, `new` the decoded request.
    Returns the normalized new config (sealed streams get their forced settings) or raises."""
    cfg = normalize_stream_config(new, pedantic=pedantic, clustered=True, **limits)
    inv = lambda msg: E.JSStreamInvalidConfigError(err=msg)  # noqa: E731
    if cfg["name"] != old.get("name"):
        raise inv("stream configuration name must match original")
    if not clustered and cfg["num_replicas"] > 1:
        raise E.JSStreamReplicasNotSupportedError()
    if cfg["storage"] != old.get("storage", "file"):
        raise inv("stream configuration update can not change storage type")
    if cfg["retention"] != old.get("retention", "limits") and "workqueue" in (cfg["retention"], old.get("retention")):
        raise inv("stream configuration update can not change retention policy to/from workqueue")
    if old.get("sealed") and not cfg.get("sealed"):
        raise inv("stream configuration update can not unseal a sealed stream")
    if old.get("deny_delete") and not cfg.get("deny_delete"):
        raise inv("stream configuration update can not cancel deny message deletes")
    if old.get("deny_purge") and not cfg.get("deny_purge"):
        raise inv("stream configuration update can not cancel deny purge")
    if cfg.get("mirror") is not None and cfg.get("mirror") != old.get("mirror"):
        raise E.JSStreamMirrorNotUpdatableError()
    if old.get("allow_msg_ttl") and not cfg.get("allow_msg_ttl"):
        raise inv("message TTL status can not be disabled")
    if bool(cfg.get("allow_msg_counter")) != bool(old.get("allow_msg_counter")):
        raise inv("stream configuration update can not change message counter setting")
    if old.get("allow_msg_schedules") and not cfg.get("allow_msg_schedules"):
        raise inv("message schedules can not be disabled")
    if cfg.get("persist_mode", "default") != old.get("persist_mode", "default"):
        raise inv("stream configuration update can not change persist mode")
    if cfg.get("sealed"):
        cfg.update(max_age=0, discard="new", deny_delete=True, deny_purge=True, allow_rollup_hdrs=False)
        if "duplicate_window" in cfg and cfg["duplicate_window"] and False:
            pass
    return emit_stream_config(cfg)


def stream_configs_equal(a: dict, b: dict) -> bool:
    """Is a repeated STREAM.CREATE idempotent? Compares configs ignoring dynamic metadata."""
    def strip(c: dict) -> dict:
        c = dict(c)
        md = {k: v for k, v in (c.get("metadata") or {}).items() if k not in (VERSION_KEY, LEVEL_KEY)}
        c["metadata"] = md
        return c
    return strip(a) == strip(b)


# --------------------------------------------------------------------------------------------
# Consumer config

_CONSUMER_ORDER = [
    ("durable_name", True), ("name", True), ("description", True), ("deliver_policy", False),
    ("opt_start_seq", True), ("opt_start_time", True), ("ack_policy", False), ("ack_wait", True),
    ("max_deliver", True), ("backoff", True), ("filter_subject", True), ("filter_subjects", True),
    ("replay_policy", False), ("rate_limit_bps", True), ("sample_freq", True), ("max_waiting", True),
    ("max_ack_pending", True), ("flow_control", True), ("headers_only", True), ("max_batch", True),
    ("max_expires", True), ("max_bytes", True), ("deliver_subject", True), ("deliver_group", True),
    ("idle_heartbeat", True), ("inactive_threshold", True), ("num_replicas", False), ("mem_storage", True),
    ("direct", True), ("sourcing", True), ("metadata", True), ("pause_until", True),
    ("priority_groups", True), ("priority_policy", True), ("priority_timeout", True),
]
_CONSUMER_KEYS = [k for k, _o in _CONSUMER_ORDER]
_CONSUMER_DEFAULTS = {"deliver_policy": "all", "ack_policy": "none", "replay_policy": "instant",
                      "num_replicas": 0, "priority_policy": "none"}
_VALID_GROUP = re.compile(r"^[a-zA-Z0-9/_=-]{1,16}$")


def emit_consumer_config(cfg: dict) -> dict:
    """A consumer config dict in the reference's JSON field order, omitempty fields dropped."""
    out: dict[str, Any] = {}
    for key, omit in _CONSUMER_ORDER:
        v = cfg.get(key, _CONSUMER_DEFAULTS.get(key))
        if key == "priority_policy" and v == "none":
            continue
        if omit and _empty(v):
            continue
        if key == "metadata":
            v = dict(sorted(v.items()))
        out[key] = v
    return out


class ConsumerCreate(NamedTuple):
    """A checked CONSUMER.CREATE request: which consumer, which action, with what config."""
    stream: str
    name: str          # "" for a legacy ephemeral (the actor generates one)
    action: str        # "", "create" or "update"
    config: dict       # the decoded request config (not yet normalized)
    pedantic: bool
    legacy_ephemeral: bool


def parse_consumer_create(subject: str, body: bytes | str, *, clustered: bool = False,
                          strict: bool = True) -> ConsumerCreate:
    """The CONSUMER.CREATE / DURABLE.CREATE handler's checks that need no stream, in the
    reference's order: JSON (10025), subject form (10016), stream name (10056), path separators
    (10127), durable/name rules (10017, 10018, 10020), subject filter (10137, 10131), replicas in
    single-server mode (10074). The actor then looks the stream up (10059) and calls
    normalize_consumer_config."""
    req = decode_consumer_request(body, strict=strict)
    cfg = dict(req["config"])
    api = api_tokens(subject)
    n = len(api)  # tokens after the $JS.API / $JS.<domain>.API prefix, + 2 for "$JS.API"
    tokens = ["$JS", "API"] + api
    n = len(tokens)
    filtered = ""
    legacy_ephemeral = legacy_durable = False
    if n < 5:
        raise ValueError("not a consumer create subject")
    if n == 5:
        legacy_ephemeral = True
        stream, cname = tokens[4], cfg.get("name", "")
    elif tokens[3] == "DURABLE":
        legacy_durable = True
        if n != 7:
            raise E.JSConsumerDurableNameNotInSubjectError()
        stream, cname = tokens[5], tokens[6]
    else:
        stream, cname = tokens[4], tokens[5]
        if n > 6:
            filtered = ".".join(tokens[6:])
    if stream != req["stream_name"]:
        raise E.JSStreamMismatchError()
    if cname and ("\\" in cname or "/" in cname):
        raise E.JSConsumerNameContainsPathSeparatorsError()
    durable = cfg.get("durable_name", "")
    if legacy_durable:
        if not durable:
            raise E.JSConsumerDurableNameNotSetError()
        if cname != durable:
            raise E.JSConsumerDurableNameNotMatchSubjectError()
        cfg["name"] = cname
    elif not legacy_ephemeral:
        if durable and cname != durable:
            raise E.JSConsumerDurableNameNotMatchSubjectError()
        cfg["name"] = cname
    if legacy_ephemeral and durable:
        raise E.JSConsumerEphemeralWithDurableNameError()
    if filtered and cfg.get("filter_subjects"):
        raise E.JSConsumerMultipleFiltersNotAllowedError()
    if filtered and cfg.get("filter_subject", "") != filtered:
        raise E.JSConsumerCreateFilterSubjectMismatchError()
    if not clustered and cfg.get("num_replicas", 0) > 1:
        raise E.JSStreamReplicasNotSupportedError()
    return ConsumerCreate(stream, cfg.get("name", ""), req["action"], cfg, bool(req.get("pedantic")),
                          legacy_ephemeral)


def normalize_consumer_config(stream_config: dict, req: dict, *, pedantic: bool = False,
                              max_ack_pending_limit: int = 0, account_max_ack_pending: int = 0,
                              max_request_batch: int = 0) -> dict:
    """Apply the reference's consumer defaults and checks (setConsumerConfigDefaults, then
    checkConsumerCfg, then the ephemeral inactive threshold) against the stream's config.
    Returns the stored config in field order with static metadata; raises ApiError.

    The actor then checks, in this order: an existing consumer of that name (`action` create ->
    10148 if the config differs; else consumer_update_check), `action` update of a missing one
    (10149), max consumers (10026), workqueue rules (check_workqueue_consumer), name length
    (10102) and name validity (10103)."""
    cfg = dict(req)
    scl = stream_config.get("consumer_limits") or {}
    ped = lambda msg: E.JSPedanticError(err=msg)  # noqa: E731
    for k, v in _CONSUMER_DEFAULTS.items():
        cfg.setdefault(k, v)

    md = cfg.get("max_deliver", 0)
    if md == 0 or md < -1:
        if pedantic and md < -1:
            raise ped("max_deliver must be set to -1")
        cfg["max_deliver"] = -1
    for key, name in (("max_waiting", "max_waiting"), ("max_batch", "max_batch"),
                      ("max_expires", "max_expires"), ("max_bytes", "max_bytes"),
                      ("idle_heartbeat", "idle_heartbeat"), ("inactive_threshold", "inactive_threshold"),
                      ("priority_timeout", "priority_timeout")):
        if key == "max_batch":
            # max_ack_pending sits between max_waiting and max_batch in the reference's order
            if cfg.get("max_ack_pending", 0) < -1:
                if pedantic:
                    raise ped("max_ack_pending must be set to -1")
                cfg["max_ack_pending"] = -1
        if cfg.get(key, 0) < 0:
            if pedantic:
                raise ped(f"{name} must not be negative")
            cfg[key] = 0
    push = bool(cfg.get("deliver_subject"))
    if not push and not cfg.get("max_waiting"):
        cfg["max_waiting"] = DEFAULT_MAX_WAITING
    if not cfg.get("ack_wait") and cfg["ack_policy"] in ("explicit", "all"):
        cfg["ack_wait"] = DEFAULT_ACK_WAIT
    backoff = cfg.get("backoff") or []
    if backoff:
        if pedantic and cfg.get("ack_wait", 0) != backoff[0]:
            raise ped("first backoff value has to equal batch AckWait")
        cfg["ack_wait"] = backoff[0]
    if not cfg.get("max_ack_pending"):
        if pedantic and scl.get("max_ack_pending", 0) > 0:
            raise ped("max_ack_pending must be set if it's configured in stream limits")
        cfg["max_ack_pending"] = scl.get("max_ack_pending", 0)
    if not cfg.get("inactive_threshold"):
        if pedantic and scl.get("inactive_threshold", 0) > 0:
            raise ped("inactive_threshold must be set if it's configured in stream limits")
        cfg["inactive_threshold"] = scl.get("inactive_threshold", 0)
    if not cfg.get("max_ack_pending") and cfg["ack_policy"] != "none":
        ap = DEFAULT_MAX_ACK_PENDING
        if 0 < max_ack_pending_limit < ap:
            ap = max_ack_pending_limit
        if 0 < account_max_ack_pending < ap:
            ap = account_max_ack_pending
        cfg["max_ack_pending"] = ap
    if not push and not cfg.get("max_batch") and max_request_batch > 0:
        if pedantic:
            raise ped("max_request_batch must be set if it's JetStream limits are set")
        cfg["max_batch"] = max_request_batch
    if cfg.get("priority_policy") == "pinned_client" and not cfg.get("priority_timeout"):
        cfg["priority_timeout"] = DEFAULT_PINNED_TTL
    if cfg["ack_policy"] == "flow_control" and not pedantic:
        cfg["flow_control"] = True
        cfg["idle_heartbeat"] = SOURCE_HEALTH_HB

    _check_consumer_config(cfg, stream_config, max_ack_pending_limit, account_max_ack_pending,
                           max_request_batch)

    if not cfg.get("durable_name") and cfg.get("inactive_threshold", 0) <= 0:
        cfg["inactive_threshold"] = DEFAULT_EPHEMERAL_INACTIVE
    meta = {k: v for k, v in (cfg.get("metadata") or {}).items() if k not in (VERSION_KEY, LEVEL_KEY)}
    level = 0
    if cfg.get("pause_until") and cfg["pause_until"] != ZERO_TIME:
        level = 1
    if cfg.get("priority_policy", "none") != "none" or cfg.get("priority_timeout") or cfg.get("priority_groups"):
        level = 1
    if cfg["ack_policy"] == "flow_control":
        level = 4
    meta[REQ_LEVEL_KEY] = str(level)
    cfg["metadata"] = meta
    return emit_consumer_config(cfg)


def _check_consumer_config(cfg: dict, scfg: dict, srv_max_ack: int, acc_max_ack: int, srv_max_batch: int) -> None:
    inv = lambda msg: E.JSStreamInvalidConfigError(err=msg)  # noqa: E731
    name, durable = cfg.get("name", ""), cfg.get("durable_name", "")
    if name and not valid_asset_name(name):
        raise inv("consumer name can not contain '.', '*', '>', '\\', '/'")
    if durable and not valid_asset_name(durable):
        raise inv("consumer durable name can not contain '.', '*', '>', '\\', '/'")
    replicas, sreplicas = cfg.get("num_replicas", 0), scfg.get("num_replicas", 1)
    if replicas > 0 and replicas > sreplicas:
        raise E.JSConsumerReplicasExceedsStreamError()
    if replicas < 0:
        raise E.JSReplicasCountCannotBeNegativeError()
    retention = scfg.get("retention", "limits")
    if retention in ("interest", "workqueue") and replicas != 0 and replicas != sreplicas:
        raise E.JSConsumerReplicasShouldMatchStreamError()
    backoff = cfg.get("backoff") or []
    if any(b < 0 for b in backoff):
        raise E.JSConsumerBackOffNegativeError()
    if cfg.get("ack_wait", 0) < 0:
        raise E.JSConsumerAckWaitNegativeError()
    push = bool(cfg.get("deliver_subject"))
    hb = cfg.get("idle_heartbeat", 0)
    if cfg["ack_policy"] == "flow_control":
        if not push:
            raise E.JSConsumerAckFCRequiresPushError()
        if not cfg.get("flow_control"):
            raise E.JSConsumerAckFCRequiresFCError()
        if hb != SOURCE_HEALTH_HB:
            raise inv("flow control ack policy heartbeat needs to be 1s")
        if cfg.get("max_ack_pending", 0) <= 0:
            raise E.JSConsumerAckFCRequiresMaxAckPendingError()
        if cfg.get("ack_wait", 0) != 0 or backoff:
            raise E.JSConsumerAckFCRequiresNoAckWaitError()
        if cfg["max_deliver"] > 0:
            raise E.JSConsumerAckFCRequiresNoMaxDeliverError()
    if backoff and cfg["max_deliver"] != -1 and len(backoff) > cfg["max_deliver"]:
        raise E.JSConsumerMaxDeliverBackoffError()
    if _blen(cfg.get("description", "")) > MAX_DESCRIPTION_LEN:
        raise E.JSConsumerDescriptionTooLongError(max=MAX_DESCRIPTION_LEN)
    mw, map_ = cfg.get("max_waiting", 0), cfg.get("max_ack_pending", 0)
    if push:
        ds = cfg["deliver_subject"]
        if not _literal(ds):
            raise E.JSConsumerDeliverToWildcardsError()
        if not valid_subject(ds):
            raise E.JSConsumerInvalidDeliverSubjectError()
        if _delivery_forms_cycle(scfg, ds):
            raise E.JSConsumerDeliverCycleError()
        if mw != 0:
            raise E.JSConsumerPushMaxWaitingError()
        if map_ > 0 and cfg["ack_policy"] == "none":
            raise E.JSConsumerMaxPendingAckPolicyRequiredError()
        if 0 < hb < 100 * MS:
            raise E.JSConsumerSmallHeartbeatError()
    else:
        if cfg["ack_policy"] == "none" and retention == "workqueue":
            raise E.JSConsumerPullRequiresAckError()
        if cfg.get("rate_limit_bps", 0) > 0:
            raise E.JSConsumerPullWithRateLimitError()
        if mw < 0:
            raise E.JSConsumerMaxWaitingNegativeError()
        if hb > 0:
            raise E.JSConsumerHBRequiresPushError()
        if cfg.get("flow_control"):
            raise E.JSConsumerFCRequiresPushError()
        if cfg.get("max_batch", 0) < 0:
            raise E.JSConsumerMaxRequestBatchNegativeError()
        me = cfg.get("max_expires", 0)
        if me != 0 and me < MS:
            raise E.JSConsumerMaxRequestExpiresTooSmallError()
        if srv_max_batch > 0 and cfg.get("max_batch", 0) > srv_max_batch:
            raise E.JSConsumerMaxRequestBatchExceededError(limit=srv_max_batch)
    scl = scfg.get("consumer_limits") or {}
    for lim in (srv_max_ack, acc_max_ack, scl.get("max_ack_pending", 0)):
        if lim > 0 and map_ > lim:
            raise E.JSConsumerMaxPendingAckExcessError(limit=lim)
    sit = scl.get("inactive_threshold", 0)
    if sit > 0 and cfg.get("inactive_threshold", 0) > sit:
        raise E.JSConsumerInactiveThresholdExcessError(limit=format_duration(sit))
    if cfg.get("direct"):
        if not push:
            raise E.JSConsumerDirectRequiresPushError()
        if durable:
            raise E.JSConsumerDirectRequiresEphemeralError()
    fs, fss = cfg.get("filter_subject", ""), cfg.get("filter_subjects") or []
    if fs and fss:
        raise E.JSConsumerDuplicateFilterSubjectsError()
    if fs and not valid_subject(fs):
        raise inv("invalid subject")
    if any(f == "" for f in fss):
        raise E.JSConsumerEmptyFilterError()
    filters = [fs] if fs else list(fss)
    for i, f in enumerate(filters):
        if not valid_subject(f):
            raise inv("invalid subject")
        for j, g in enumerate(filters):
            if i != j and _subset_match(f, g):
                raise E.JSConsumerOverlappingSubjectFiltersError()
    dp = cfg["deliver_policy"]
    seq, start = cfg.get("opt_start_seq", 0), cfg.get("opt_start_time")
    words = {"all": "all", "last": "last", "last_per_subject": "last per subject", "new": "new",
             "by_start_sequence": "by start sequence", "by_start_time": "by start time"}[dp]

    def bad(what):
        return E.JSConsumerInvalidPolicyError(
            err=f"consumer delivery policy is deliver {words}, but optional start {what} is also set")

    def not_set(what):
        return E.JSConsumerInvalidPolicyError(
            err=f"consumer delivery policy is deliver {words}, but optional {what} is not set")
    if dp in ("all", "last", "last_per_subject", "new"):
        if seq > 0:
            raise bad("sequence")
        if start is not None:
            raise bad("time")
        if dp == "last_per_subject" and not filters:
            raise not_set("filter subject")
    elif dp == "by_start_sequence":
        if seq == 0:
            raise not_set("start sequence")
        if start is not None:
            raise bad("time")
    elif dp == "by_start_time":
        if start is None:
            raise not_set("start time")
        if seq != 0:
            raise bad("start sequence")
    sf = cfg.get("sample_freq", "")
    if sf:
        s = sf[:-1] if sf.endswith("%") else sf
        try:
            freq = go_atoi(s)
        except ValueError as e:
            raise E.JSConsumerInvalidSamplingError(err=str(e)) from None
        if freq < 0:
            raise E.JSConsumerInvalidSamplingError(err="<nil>")
    if cfg.get("flow_control") and hb == 0:
        raise E.JSConsumerWithFlowControlNeedsHeartbeatsError()
    if durable and name and name != durable:
        raise E.JSConsumerCreateDurableAndNameMismatchError()
    if sum(_blen(k) + _blen(v) for k, v in (cfg.get("metadata") or {}).items()) > MAX_METADATA_LEN:
        raise E.JSConsumerMetadataLengthError(limit=f"{MAX_METADATA_LEN // 1024}KB")
    groups = cfg.get("priority_groups") or []
    if cfg.get("priority_policy", "none") != "none":
        if push:
            raise E.JSConsumerPushWithPriorityGroupError()
        if not groups:
            raise E.JSConsumerPriorityPolicyWithoutGroupError()
        for g in groups:
            if g == "":
                raise E.JSConsumerEmptyGroupNameError()
            if not _VALID_GROUP.match(g):
                raise E.JSConsumerInvalidGroupNameError()
    else:
        if groups:
            raise E.JSConsumerPriorityGroupWithPolicyNoneError()
        if cfg.get("priority_timeout", 0) > 0:
            raise E.JSConsumerPinnedTTLWithoutPriorityPolicyNoneError()
    pl = scfg.get("placement") or {}
    if pl.get("preferred"):
        raise inv("preferred server not permitted in placement")


def _delivery_forms_cycle(scfg: dict, deliver_subject: str) -> bool:
    return any(_subjects.subject_matches(s.encode(), deliver_subject.encode())
               for s in scfg.get("subjects") or [])


def check_workqueue_consumer(cfg: dict, other_filters: Iterable[list[str]] | None) -> None:
    """A new consumer on a workqueue stream: explicit ack (10098), deliver all (10101), and no
    overlap with the other consumers' filters (10099 unfiltered, 10100 overlap). `other_filters`
    lists the filters of each other consumer (an empty list = unfiltered)."""
    if cfg.get("direct") or cfg.get("sourcing"):
        return
    if cfg.get("ack_policy") not in ("explicit", "flow_control"):
        raise E.JSConsumerWQRequiresExplicitAckError()
    if cfg.get("deliver_policy", "all") != "all":
        raise E.JSConsumerWQConsumerNotDeliverAllError()
    others = list(other_filters or [])
    if others:
        mine = consumer_filters(cfg)
        if not mine:
            raise E.JSConsumerWQMultipleUnfilteredError()
        for theirs in others:
            if not theirs or any(_subjects_collide(a, b) for a in mine for b in theirs):
                raise E.JSConsumerWQConsumerNotUniqueError()


def consumer_filters(cfg: dict) -> list[str]:
    fs = cfg.get("filter_subject", "")
    return [fs] if fs else list(cfg.get("filter_subjects") or [])


def check_consumer_storable(cfg: dict) -> None:
    """A new consumer whose opt_start_time or pause_until Go cannot write as JSON (a zone
    offset of 24 hours or more): the reference fails to create its store (10012)."""
    for key in ("opt_start_time", "pause_until"):
        if cfg.get(key) and not go_marshals_time(cfg[key]):
            raise E.JSConsumerCreateError(err="error creating store for consumer")


def check_consumer_name(cfg: dict, name: str) -> None:
    """The last checks of a new consumer's name: length for durables (10102), validity (10103)."""
    if cfg.get("durable_name") and _blen(cfg["durable_name"]) > MAX_NAME_LEN:
        raise E.JSConsumerNameTooLongError(max=MAX_NAME_LEN)
    if not valid_asset_name(name):
        raise E.JSConsumerBadDurableNameError()


def consumer_update_check(old: dict, new: dict) -> ApiError | None:
    """What an update of an existing consumer may not change. Both are normalized configs.
    The reference reports these through JSConsumerCreateErrF (10012, code 500) with its text."""
    def strip(c):
        return {k: v for k, v in c.items() if k != "metadata"}
    if strip(old) == strip(new):
        return None
    err = E.JSConsumerCreateError
    for key, text in (("deliver_policy", "deliver policy can not be updated"),
                      ("mem_storage", "storage type can not be updated"),
                      ("direct", "direct can not be updated"), ("sourcing", "sourcing can not be updated"),
                      ("opt_start_seq", "start sequence can not be updated"),
                      ("opt_start_time", "start time can not be updated"),
                      ("ack_policy", "ack policy can not be updated"),
                      ("replay_policy", "replay policy can not be updated"),
                      ("idle_heartbeat", "heart beats can not be updated"),
                      ("flow_control", "flow control can not be updated")):
        if old.get(key) != new.get(key) and not (_empty(old.get(key)) and _empty(new.get(key))):
            return err(err=text)
    ods, nds = old.get("deliver_subject", ""), new.get("deliver_subject", "")
    if ods != nds:
        if not ods:
            return err(err="can not update pull consumer to push based")
        if not nds:
            return err(err="can not update push consumer to pull based")
    if old.get("max_waiting", 0) != new.get("max_waiting", 0):
        return err(err="max waiting can not be updated")
    bo = new.get("backoff") or []
    if bo and new.get("max_deliver", -1) != -1 and len(bo) > new.get("max_deliver", -1):
        return E.JSConsumerMaxDeliverBackoffError()
    return None


# --------------------------------------------------------------------------------------------
# API subjects


class ApiSubject(NamedTuple):
    """A parsed `$JS.API.…` request subject."""
    op: str             # "STREAM.CREATE", "CONSUMER.MSG.NEXT", "INFO", ...
    stream: str = ""
    consumer: str = ""
    filter: str = ""    # CONSUMER.CREATE.<s>.<c>.<filter…>, or DIRECT.GET.<s>.<subject…>
    domain: str = ""


_OPS_STREAM = ("STREAM.CREATE", "STREAM.UPDATE", "STREAM.DELETE", "STREAM.INFO", "STREAM.PURGE",
               "STREAM.SNAPSHOT", "STREAM.RESTORE", "STREAM.MSG.GET", "STREAM.MSG.DELETE",
               "STREAM.LEADER.STEPDOWN", "STREAM.PEER.REMOVE", "CONSUMER.LIST", "CONSUMER.NAMES",
               "DIRECT.GET")
_OPS_CONSUMER = ("CONSUMER.DELETE", "CONSUMER.INFO", "CONSUMER.MSG.NEXT", "CONSUMER.PAUSE",
                 "CONSUMER.UNPIN", "CONSUMER.RESET", "CONSUMER.LEADER.STEPDOWN",
                 "CONSUMER.DURABLE.CREATE")
_OPS_PLAIN = ("INFO", "STREAM.LIST", "STREAM.NAMES", "META.LEADER.STEPDOWN", "SERVER.REMOVE",
              "META.RESCUE")


def api_tokens(subject: str) -> list[str]:
    """The tokens after `$JS.API.` (or `$JS.<domain>.API.`)."""
    t = subject.split(".")
    if len(t) >= 2 and t[0] == "$JS" and t[1] == "API":
        return t[2:]
    if len(t) >= 3 and t[0] == "$JS" and t[2] == "API":
        return t[3:]
    return []


def parse_api_subject(subject: str) -> ApiSubject | None:
    """`$JS.API.CONSUMER.CREATE.S.C.foo.>` -> ApiSubject("CONSUMER.CREATE", "S", "C", "foo.>").
    A `$JS.<domain>.API.` prefix sets `domain`. None if the subject is no API request."""
    t = subject.split(".")
    domain = ""
    if len(t) >= 3 and t[0] == "$JS" and t[1] != "API" and t[2] == "API":
        domain, rest = t[1], t[3:]
    elif len(t) >= 2 and t[0] == "$JS" and t[1] == "API":
        rest = t[2:]
    else:
        return None
    joined = ".".join(rest)
    for op in _OPS_PLAIN:
        if joined == op:
            return ApiSubject(op, domain=domain)
    if rest[:2] == ["CONSUMER", "CREATE"] and len(rest) >= 3:
        return ApiSubject("CONSUMER.CREATE", rest[2], rest[3] if len(rest) > 3 else "",
                          ".".join(rest[4:]), domain)
    for op in sorted(_OPS_CONSUMER, key=len, reverse=True):
        n = op.count(".") + 1
        if rest[:n] == op.split(".") and len(rest) == n + 2:
            return ApiSubject(op, rest[n], rest[n + 1], domain=domain)
    for op in sorted(_OPS_STREAM, key=len, reverse=True):
        n = op.count(".") + 1
        if rest[:n] == op.split(".") and len(rest) >= n + 1:
            if op == "DIRECT.GET":
                return ApiSubject(op, rest[n], filter=".".join(rest[n + 1:]), domain=domain)
            if len(rest) == n + 1:
                return ApiSubject(op, rest[n], domain=domain)
    if rest[:2] == ["ACCOUNT", "PURGE"] and len(rest) == 3:
        return ApiSubject("ACCOUNT.PURGE", domain=domain, stream=rest[2])
    return ApiSubject(joined, domain=domain) if rest else None


# --------------------------------------------------------------------------------------------
# Pull requests


class PullRequest(NamedTuple):
    """A parsed CONSUMER.MSG.NEXT body. `expires`/`idle_heartbeat` are ns (0 = none)."""
    batch: int = 1
    expires: int = 0
    max_bytes: int = 0
    no_wait: bool = False
    idle_heartbeat: int = 0
    group: str = ""
    min_pending: int = 0
    min_ack_pending: int = 0
    id: str = ""
    priority: int = 0
    is_json: bool = False


class PullRequestError(Exception):
    """A pull request the reference answers with a status message (`status`, `description`)."""

    def __init__(self, status: int, description: str):
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description

    def header(self) -> bytes:
        return f"NATS/1.0 {self.status} {self.description}\r\n\r\n".encode()


def parse_pull_request(body: bytes) -> PullRequest:
    """Empty -> batch 1; a plain integer -> batch N; JSON -> its fields. A bad JSON body or
    idle_heartbeat > expires/2 raises PullRequestError(400, "Bad Request - …"). The consumer
    then applies its own limits with check_pull_request."""
    req = body.strip()
    if not req:
        return PullRequest()
    if req[:1] == b"{":
        try:
            # decoded into a pointer to a pointer: Go names no struct in its type errors
            d = decode_request(req, PULL_REQUEST, "", strict=False, single=True)
        except ApiError as e:
            raise PullRequestError(400, "Bad Request - " + e.description.removeprefix("invalid JSON: ")) from None
        hb, exp = d.get("idle_heartbeat", 0), d.get("expires", 0)
        if hb > 0 and _wrap64(hb * 2) > exp:  # Go's int64 arithmetic
            raise PullRequestError(400, "Bad Request - heartbeat value too large")
        return PullRequest(batch=d.get("batch", 0), expires=exp, max_bytes=d.get("max_bytes", 0),
                           no_wait=d.get("no_wait", False), idle_heartbeat=hb, group=d.get("group", ""),
                           min_pending=d.get("min_pending", 0), min_ack_pending=d.get("min_ack_pending", 0),
                           id=d.get("id", ""), priority=d.get("priority", 0), is_json=True)
    try:
        return PullRequest(batch=go_atoi(req))
    except ValueError:  # not a number to Go's strconv.Atoi either: one message
        return PullRequest()


def _wrap64(n: int) -> int:
    """n as Go's int64 arithmetic leaves it (wrapped around)."""
    return (n + 2**63) % 2**64 - 2**63


def go_atoi(text: bytes | str) -> int:
    """Go's strconv.Atoi: an optional sign and ASCII digits, within int64. Raises ValueError
    (never for a long number's conversion limit)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"strconv.Atoi: parsing {_go_quote_bytes(text)}: invalid syntax")
    n = int(text) if len(digits.lstrip("0")) <= 19 else 2**63
    if not -2**63 <= n < 2**63:
        raise ValueError(f"strconv.Atoi: parsing {_go_quote_bytes(text)}: value out of range")
    return n


def check_pull_request(pr: PullRequest, consumer_config: dict) -> None:
    """The consumer's limits on one request, in the reference's order (409s)."""
    mb = consumer_config.get("max_batch", 0)
    if mb > 0 and pr.batch > mb:
        raise PullRequestError(409, f"Exceeded MaxRequestBatch of {mb}")
    me = consumer_config.get("max_expires", 0)
    if me > 0 and (pr.expires == 0 or pr.expires > me):
        raise PullRequestError(409, f"Exceeded MaxRequestExpires of {format_duration(me)}")
    mxb = consumer_config.get("max_bytes", 0)
    if mxb > 0 and pr.max_bytes > mxb:
        raise PullRequestError(409, f"Exceeded MaxRequestMaxBytes of {mxb}")


# --------------------------------------------------------------------------------------------
# Acks


class Ack(NamedTuple):
    """A parsed ack payload. kind: ack | nak | progress | next | term | unknown."""
    kind: str
    delay: int | None = None        # nak: ns, when given and valid
    next_request: bytes = b""       # next: the pull request after "+NXT"
    reason: str = ""                # term


def parse_ack(payload: bytes) -> Ack:
    """`""`/`+ACK`/`+OK` ack; `-NAK[ {"delay":ns}| <duration>]`; `+WPI`; `+NXT [req]`;
    `+TERM [reason]`. A bad NAK delay is a plain NAK (the reference logs a warning)."""
    if payload in (b"", b"+ACK", b"+OK"):
        return Ack("ack")
    if payload.startswith(b"+NXT"):
        return Ack("next", next_request=payload[4:])
    if payload.startswith(b"-NAK"):
        arg = payload[4:].strip()
        delay = None
        if arg:
            try:
                if arg[:1] == b"{":  # ConsumerNakOptions, as json.Unmarshal reads it
                    d = decode_request(arg, {"delay": "time.Duration"}, "ConsumerNakOptions", strict=False,
                                       single=True)
                    delay = d.get("delay", 0)
                else:
                    delay = parse_duration(arg.decode())
            except (ValueError, ApiError):
                delay = None
        return Ack("nak", delay=delay)
    if payload == b"+WPI":
        return Ack("progress")
    if payload.startswith(b"+TERM"):
        return Ack("term", reason=payload[5:].strip().decode(errors="replace"))
    return Ack("unknown")


ACK_PREFIX = "$JS.ACK."


class AckReply(NamedTuple):
    stream: str
    consumer: str
    delivered: int      # delivery count
    stream_seq: int
    consumer_seq: int
    timestamp: int      # ns
    pending: int
    domain: str = ""


def ack_reply_subject(stream: str, consumer: str, delivered: int, stream_seq: int, consumer_seq: int,
                      timestamp_ns: int, pending: int) -> str:
    """The 9-token reply subject of a delivered message."""
    return (f"$JS.ACK.{stream}.{consumer}.{delivered}.{stream_seq}.{consumer_seq}."
            f"{timestamp_ns}.{pending}")


def _ack_num(s: str) -> int:
    return int(s) if s.isdigit() and s.isascii() and len(s) <= 20 else -1


def parse_ack_reply(subject: str) -> AckReply | None:
    """Parse a 9-token (v1) or 12+-token (v2, with domain and account hash) ack subject.
    Non-numeric fields are -1, as the reference's parser leaves them; None if not an ack."""
    t = subject.split(".")
    if (len(t) != 9 and len(t) < 12) or t[0] != "$JS" or t[1] != "ACK":
        return None
    off, domain = (4, t[2]) if len(t) >= 12 else (2, "")
    if domain == "_":
        domain = ""
    return AckReply(t[off], t[off + 1], _ack_num(t[off + 2]), _ack_num(t[off + 3]), _ack_num(t[off + 4]),
                    _ack_num(t[off + 5]), _ack_num(t[off + 6]), domain)


# --------------------------------------------------------------------------------------------
# PubAck


def pub_ack(stream: str, seq: int, *, duplicate: bool = False, domain: str = "") -> bytes:
    """The PubAck body, byte for byte as the reference builds it: `{"stream":"S","seq":1}`,
    with a domain `{"stream":"S","domain":"D","seq":1}`, and a duplicate ends
    `,"duplicate": true}` (with that space). No `type` field."""
    out = '{"stream":' + go_quote(stream)
    if domain:
        out += ',"domain":' + go_quote(domain)
    out += f',"seq":{seq}'
    out += ',"duplicate": true}' if duplicate else "}"
    return out.encode()


def pub_ack_error(err: ApiError, stream: str = "") -> bytes:
    """A failed publish: `{"error":{…}}`, with `"stream"` when the stream is known."""
    d: dict[str, Any] = {"error": err.to_json()}
    if stream:
        d["stream"] = stream
    return go_json(d)


# -- DIRECT.GET requests (ADR-31) ---------------------------------------------------------------

DIRECT_GET_MAX_MULTI = 1024  # multi_last answers at most this many subjects (413 Too Many Results)


DIRECT_GET_REQUEST = {"seq": "uint64", "last_by_subj": "string", "next_by_subj": "string", "batch": "int",
                      "max_bytes": "int", "start_time": "*time.Time", "multi_last": ("[]", "string"),
                      "up_to_seq": "uint64", "up_to_time": "*time.Time", "no_hdr": "bool"}


def parse_direct_get_request(body: bytes) -> dict:
    """A DIRECT.GET JSON body decoded as the reference's JSApiMsgGetRequest (json.Unmarshal:
    keys matched case-insensitively, unknown keys ignored, JSON null = unset). Returns
    {seq, last_by_subj, next_by_subj, batch, max_bytes, start_time (ns or None), multi_last
    (list), up_to_seq, up_to_time (ns or None), no_hdr}; raises ValueError for what Go cannot
    decode (the caller answers `408 Malformed Request`)."""
    try:
        req = decode_request(body, DIRECT_GET_REQUEST, "", strict=False, single=True)
    except ApiError as e:
        raise ValueError(e.description) from None
    start, up_to = req.get("start_time"), req.get("up_to_time")
    return {
        "seq": req.get("seq", 0), "last_by_subj": req.get("last_by_subj", ""),
        "next_by_subj": req.get("next_by_subj", ""), "batch": req.get("batch", 0),
        "max_bytes": req.get("max_bytes", 0),
        "start_time": parse_time_ns(start) if start is not None else None,
        "multi_last": req.get("multi_last") or [], "up_to_seq": req.get("up_to_seq", 0),
        "up_to_time": parse_time_ns(up_to) if up_to is not None else None,
        "no_hdr": req.get("no_hdr", False),
    }


def check_msg_get_request(req: dict) -> None:
    """STREAM.MSG.GET's own checks, before the stream is looked up (10003): no batch, and one
    of seq, last_by_subj, next_by_subj (with seq or start_time) or start_time, not in
    conflict."""
    seq, last, nxt = req.get("seq") or 0, req.get("last_by_subj") or "", req.get("next_by_subj") or ""
    start = req.get("start_time")
    if (req.get("batch") or 0) > 0 or (req.get("max_bytes") or 0) > 0:
        raise E.JSBadRequestError()
    if ((seq > 0 and last) or (seq == 0 and not last and not nxt and start is None)
            or (seq > 0 and start is not None) or (start is not None and last) or (last and nxt)):
        raise E.JSBadRequestError()


def direct_get_conflict(req: dict) -> bool:
    """Options that cannot go together in one DIRECT.GET request (`408 Bad Request`); batch
    mode is not allowed with last_by_subj."""
    seq, last, nxt = req["seq"], req["last_by_subj"], req["next_by_subj"]
    start, multi = req["start_time"] is not None, bool(req["multi_last"])
    return bool((seq and last) or (seq and start) or (start and last) or (last and nxt)
                or (last and req["batch"] > 0) or (last and multi) or (nxt and multi)
                or (req["up_to_seq"] and req["up_to_time"] is not None))


def required_api_level_refused(hdr: bytes) -> bool:
    """A request header `Nats-Required-Api-Level` above the level this server speaks (or not a
    number): the request is refused with `412 Required Api Level`."""
    if not hdr or b"Nats-Required-Api-Level" not in hdr:
        return False
    for line in hdr.split(b"\r\n")[1:]:
        k, sep, v = line.partition(b":")
        if sep and k.strip() == b"Nats-Required-Api-Level":
            try:
                return go_atoi(v.strip()) > JS_API_LEVEL
            except ValueError:
                return True
    return False
