"""The NATS configuration format (and YAML as a second syntax), parsed into plain Python values.

Owns: the grammar (a pyparsing grammar whose states mirror the reference lexer, `conf/lex.go`),
`$variable` resolution with block scoping and environment fallback, `include`, key positions,
the `-t` digest, and the YAML front end. Must not: know option names, check types of options,
touch sockets or actors. Validation of what the keys mean lives in options.py.

Public API
    parse(text, filename=None, env=None) -> ConfMap      NATS format
    parse_yaml(text, filename=None, env=None) -> ConfMap YAML (see "YAML" below)
    parse_file(path, env=None) -> ConfMap                .yaml/.yml -> YAML, anything else -> NATS
    digest(path) -> "sha256:..."                         what `nats-server -t` prints
    config_digest(mapping) -> "sha256:..."               the same, for a parsed map
    ConfMap: dict with .positions {key: (file, line, column)} and .used_as_variable {key}
    ConfList: list with .positions [(file, line, column)] per item
    ConfigError (config/errors.py): message, file, line, column; str() is the reference's text

Values: str, bool, int, float, datetime (UTC), ConfMap, ConfList.

Behaviour, checked against nats-server v2.15.1 (`nats-server -t -c FILE`):
- The reference lexer is a hand-written state machine with quirks; this grammar reproduces the
  ones a user can hit (each checked against the binary, which differs from conf/lex.go in
  places): `[1,2]` is a parse error (a number directly followed by `]` lexes as the string
  "2]"), `[1, 2 ]` is fine; `10s`, `4222abc`, `10ms`, `1k5` are strings; `1m` is 1000000;
  `1.5s`, `-5x` and `1k 5` are parse errors; `1.2.3.4:4222` is a string; `tr\\x75e` is the
  string "true"; an unquoted value ends at a single quote (the quote is eaten, so `abc'def` is
  an error); `1\\t` keeps the backslash while `1k\\t` is "1k<TAB>"; a block string `( ... )`
  keeps everything up to and including the newline before the closing `)` (at end of file the
  `)` itself too); a value with an unknown size suffix (`1kbb`) silently sets nothing; `x { a: }`
  sets a top-level `a` to `{}` (the reference's key stack); a stray `/` is skipped after a
  top-level value and separates entries in maps and arrays; `{ ... }` around the whole file is
  skipped, even unclosed; non-ASCII digits lex as numbers and then fail as the reference does.
- Variables are NOT interpolated inside quoted strings: `listen: "$host:$port"` is that literal
  text, as in the reference. Unquoted `$host:$port` is one variable named `host:$port`.
- Environment fallback: `$X` not found in any enclosing map is looked up in `env` (default
  os.environ); the text is parsed as the config `pk=<text>` and `pk`'s value used, so "4222" is
  an int, "{a: 1}" a map, "1\\nfoo=2" just 1. Errors read
  `variable reference for 'X' on line N could not be parsed: <inner error>` and cycles
  `... could not be parsed: variable reference cycle for 'X'`, nested as the reference nests them.
- Errors carry the reference's text (see errors.py). Lexer errors report the line the lexer
  was on, which is the next line when the offending character is the newline itself.
- Positions: (file, line, column) with the reference's column (byte offset from the last
  newline before the token: 0-based on line 1, 1-based after). A map value's position is its
  key's; a list item's is the item's own (for a map or list item: just after its `}`/`]`).
  Keys that came from an environment variable value have no position (the reference has none).
- `include` paths are joined to the including file's directory the way Go's filepath.Join
  does, so even an absolute path is taken relative to that directory (as the reference does).
  An include cycle crashes the reference (stack overflow); here it is a ConfigError.
- Nesting deeper than about 35 maps/arrays is refused ("config nesting is too deep"): the
  grammar is recursive descent on the Python stack. The grammar is built once and runs under a
  lock (its parse actions share one event list); a run is short, pure CPU, and never re-entered.

Digest: the reference hashes the parsed map, not the file: sha256 of Go's json.Encoder output
for the map (keys sorted, HTML-escaped, floats in Go's shortest form, datetimes RFC 3339, one
trailing newline). `config_digest` reproduces that; for a YAML file it hashes the parsed map the
same way (the reference cannot read YAML, so there is nothing to compare with).

YAML (pyyaml, safe): the top level must be a mapping (or empty). Mappings -> ConfMap,
sequences -> ConfList, quoted and block scalars (`'..'`, `".."`, `|`, `>`) -> str exactly as
YAML decodes them. Plain (unquoted) scalars follow the NATS rules for a whole unquoted value:
true/yes/on/false/no/off (any case) -> bool; `-?\\d+` -> int; `-?\\d+` with a size suffix from
the table (k kb ki kib m mb ... e eb ei eib, any case) -> int; `-?\\d+\\.\\d+` -> float;
`YYYY-MM-DDTHH:MM:SSZ` -> datetime; `$name` -> variable (same scoping, env fallback and `$2a$`
rule as above); anything else -> the scalar text verbatim (no backslash escapes, and scalars
the NATS lexer would reject, such as `-foo` or `1.5s`, are strings). So YAML `null`/`~` is the
string "null"/"~" and an empty value is "". Explicit tags (`!!str 10`, `!!int "5"`) are
honoured. Keys are strings (a plain key's text). Anchors, aliases and `<<` merges work;
duplicate keys: last wins. There is no `include` in YAML. Positions come from the node marks,
with the same column convention as the NATS format.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import posixpath
import re
import threading
from decimal import Decimal
from typing import Any, Mapping

import pyparsing as pp

from .errors import ConfigError

__all__ = [
    "ConfMap",
    "ConfList",
    "ConfigError",
    "parse",
    "parse_file",
    "parse_yaml",
    "digest",
    "config_digest",
]


class ConfMap(dict):
    """A parsed map. `positions[key]` is (file, line, column) of the key; `used_as_variable`
    holds keys whose current value was referenced as `$key` (the reference does not report
    those as unknown fields)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.positions: dict[str, tuple] = {}
        self.used_as_variable: set[str] = set()


class ConfList(list):
    """A parsed array. `positions[i]` is (file, line, column) of item i, as the reference
    records it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.positions: list[tuple] = []


# ---------------------------------------------------------------------------------------------
# Lexical facts shared by the grammar and the YAML front end.

# Go's unicode.IsSpace (Python's str.isspace also counts \x1c-\x1f, Go does not).
_GS = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_SUFFIX = {"": 1}
for _i, _letter in enumerate("kmgtpe", start=1):
    _SUFFIX[_letter] = 1000**_i
    for _bin in ("b", "i", "ib"):
        _SUFFIX[_letter + _bin] = 1024**_i
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# The body of an unquoted string (the reference's lexString) and of a double-quoted string.
_UNQ_BODY = r"""(?:[^\n\r;,\]} \t\\']|\\[tnr"\\]|\\x[0-9A-Fa-f]{2})*+"""
_DQ_BODY = r"""(?:[^"\\]|\\[tnr"\\]|\\x[0-9A-Fa-f]{2})*+"""
_ESCAPE = re.compile(r"""\\(?:([tnr"\\])|x([0-9A-Fa-f]{2}))""")
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}
# After a number, these end it (the reference's list; `]` is not in it).
_NUM_END = r"(?=[\n\r};, \t]|\Z)"


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(raw):
        out += raw[pos : m.start()].encode("utf-8", "surrogatepass")
        if m.group(1):
            out += _SIMPLE_ESCAPES[m.group(1)].encode()
        else:
            out.append(int(m.group(2), 16))
        pos = m.end()
    out += raw[pos:].encode("utf-8", "surrogatepass")
    return out.decode("utf-8", "replace")


def _rune(s: str, i: int) -> tuple[str, int]:
    """The character at i as the reference prints it in an error, and the offset after it
    (end of input reads as NUL and does not advance)."""
    if i >= len(s):
        return "\x00", i
    c = s[i]
    return ("\\n" if c == "\n" else c), i + 1


def _convert_int(raw: str) -> int | None:
    """The reference's integer item: digits, optional size suffix. None for an unknown suffix
    (the reference then sets no value at all). Raises ValueError with the reference's text."""
    n = 0
    while n < len(raw) and (raw[n].isdecimal() or raw[n] == "-"):
        n += 1
    digits, suffix = raw[:n], raw[n:].strip().lower()
    if not (digits.isascii() and re.fullmatch(r"-?[0-9]+", digits)):
        raise ValueError(f"expected integer, but got '{raw}'")
    num = int(digits)
    if not _INT64_MIN <= num <= _INT64_MAX:
        raise ValueError(f"integer '{raw}' is out of the range")
    if suffix not in _SUFFIX:
        return None
    num *= _SUFFIX[suffix]
    # Go int64 multiplication wraps silently.
    num = (num + 2**63) % 2**64 - 2**63
    return num


def _convert_float(raw: str) -> float:
    if not raw.isascii():
        raise ValueError(f"expected float, but got '{raw}'")
    value = float(raw)
    if math.isinf(value):
        raise ValueError(f"float '{raw}' is out of the range")
    return value


def _convert_datetime(raw: str) -> _dt.datetime:
    try:
        if not raw.isascii():
            raise ValueError
        return _dt.datetime.strptime(raw, _DATETIME_FORMAT).replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise ValueError(f"expected Zulu formatted DateTime, but got '{raw}'") from None


# ---------------------------------------------------------------------------------------------
# The grammar. Parse actions append events (the reference lexer's items) to a list; the builder
# below turns events into maps exactly as the reference parser does. A lexer error or the end of
# input stops the grammar with an exception, so the grammar never has to "succeed": that keeps
# every state's error alternative a plain last choice.


class _LexError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos  # offset the lexer had reached: its line is the reported line


class _End(Exception):
    """End of input (the reference's EOF item). `ilstart` and `pending` feed the column of a
    `config is invalid` error the way the reference computes it."""

    def __init__(self, ilstart: int | None = None, pending: str = "") -> None:
        super().__init__("end")
        self.ilstart = ilstart
        self.pending = pending


_GRAMMAR_LOCK = threading.Lock()
_GRAMMAR: tuple | None = None  # (grammar, its event list), built on first use


def _run_grammar(text: str) -> tuple[list, BaseException]:
    """Run the grammar over text: the events up to where it stopped, and why it stopped
    (_End, _LexError, or a pyparsing/recursion error for a bug or absurd nesting). The grammar
    is built once; a lock serialises runs because its actions share one event list (a run is
    pure CPU and short, and includes/env values are parsed after it returns, never inside)."""
    global _GRAMMAR
    with _GRAMMAR_LOCK:
        if _GRAMMAR is None:
            events: list = []
            old_white = pp.ParserElement.DEFAULT_WHITE_CHARS
            pp.ParserElement.set_default_whitespace_chars("")
            try:
                grammar = _build(events)
                grammar.streamline()
            finally:
                pp.ParserElement.set_default_whitespace_chars(old_white)
            _GRAMMAR = (grammar, events)
        grammar, events = _GRAMMAR
        events.clear()
        try:
            grammar.parse_string(text, parse_all=False)
            stop: BaseException = _End()  # not reached: every run ends in _End or _LexError
        except (_End, _LexError, pp.ParseBaseException, RecursionError) as exc:
            stop = exc
        out = list(events)
        events.clear()
    return out, stop


def _build(ev: list) -> pp.ParserElement:
    GS = _GS

    def R(pattern: str, action=None) -> pp.Regex:
        e = pp.Regex(pattern)
        if action is not None:
            e.add_parse_action(action)
        return e

    def fail(describe) -> pp.ParserElement:
        """An always-matching last alternative that raises the reference's error."""

        def act(s, loc, toks):
            message, pos = describe(s, loc)
            raise _LexError(message, pos)

        return pp.Empty().add_parse_action(act)

    def error_at(message: str):
        """Raise `message` when this one-character token matches; the lexer has read it."""

        def act(s, loc, toks):
            raise _LexError(message, loc + 1)

        return act

    def raise_(message, at: str):
        """A parse action raising `message` (a string, or a function of the matched text) with
        the lexer positioned before the token, after it, or at the end of input."""

        def act(s, loc, toks):
            text = message(toks[0]) if callable(message) else message
            pos = {"before": loc, "after": loc + len(toks[0]), "eof": len(s)}[at]
            raise _LexError(text, pos)

        return act

    def end_of(s: str, loc: int, toks) -> None:
        raise _End()

    def emit(kind: str):
        def act(s, loc, toks):
            ev.append((kind, None, loc, loc + len(toks[0])))

        return act

    # -- skipping ---------------------------------------------------------------------------
    gsp = R(f"[{GS}]+").suppress()
    comment = R(r"(?:#|//)[^\n\r]*").suppress()
    ws = R(r"[ \t]+").suppress()
    lone_slash = R(r"/(?!/)").suppress()
    at_end = R(r"\Z")

    # -- escapes, shared by unquoted and double-quoted strings -------------------------------
    def escape_error(s: str, i: int) -> _LexError:
        """s[i] is a backslash that does not start a valid escape."""
        c, pos = _rune(s, i + 1)
        if c != "x":
            return _LexError(
                f"Invalid escape character '{c}'. Only the following escape characters are "
                "allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
                pos,
            )
        for _ in range(2):
            r, pos = _rune(s, pos)
            if r == "\\n" or r == "\r":
                return _LexError("Expected two hexadecimal digits after '\\x', but hit end of line", pos)
        got = s[:pos].encode("utf-8", "surrogatepass")[-2:].decode("utf-8", "replace")
        return _LexError(f"Expected two hexadecimal digits after '\\x', but got '{got}'", pos)

    # -- strings -----------------------------------------------------------------------------
    def unquoted(s, loc, toks):
        body, quote = toks["b"], toks["q"]
        b = loc + len(body)
        if not quote and b < len(s) and s[b] == "\\":
            raise escape_error(s, b)
        if quote or "\\" in body:
            ev.append(("str", _unescape(body), loc, b))
        elif body.lower() in _BOOLS:
            ev.append(("bool", body, loc, b))
        elif body.startswith("$"):
            ev.append(("var", body[1:], loc + 1, b))
        else:
            ev.append(("str", body, loc, b))

    def number_string(prefix_group: str):
        """A value that started as a number and turned into an unquoted string. The text in
        `prefix_group` is taken raw; the rest goes through the string rules."""

        def act(s, loc, toks):
            prefix, body, quote = toks[prefix_group], toks["b"], toks["q"]
            b = loc + len(prefix) + len(body)
            if not quote and b < len(s) and s[b] == "\\":
                raise escape_error(s, b)
            ev.append(("str", prefix + _unescape(body), loc, b))

        return act

    def sq_string(s, loc, toks):
        ev.append(("str", toks["v"], loc + 1, loc + 1 + len(toks["v"])))

    def sq_eof(s, loc, toks):
        if len(toks[0]) > 1:
            raise _LexError("Unexpected EOF.", len(s))
        raise _End(ilstart=loc)

    def dq_string(s, loc, toks):
        body, quote = toks["b"], toks["q"]
        end = loc + 1 + len(body)
        if quote:
            ev.append(("str", _unescape(body), loc + 1, end))
            return
        if end < len(s):  # stopped at a backslash
            raise escape_error(s, end)
        last = None
        for last in _ESCAPE.finditer(body):
            pass
        pending_raw = body[last.end() :] if last else body
        if pending_raw:
            raise _LexError("Unexpected EOF.", len(s))
        raise _End(ilstart=loc, pending=_unescape(body))

    def block_string(s, loc, toks):
        m = toks[0]
        close = loc + len(m) - 1  # the ')'
        b = close if close + 1 < len(s) else close + 1
        ev.append(("str", s[loc + 1 : b], loc + 1, b))

    # -- numbers -----------------------------------------------------------------------------
    def number(kind: str):
        def act(s, loc, toks):
            ev.append((kind, toks[0], loc, loc + len(toks[0])))

        return act

    def date_error(s, loc, toks):
        pos = loc + 5
        for f in "00-00T00:00:00Z":
            r, pos = _rune(s, pos)
            if f == "0":
                if not (len(r) == 1 and r.isdecimal()):  # Go's unicode.IsDigit is Nd
                    raise _LexError(f"Expected digit in ISO8601 datetime, but found '{r}' instead.", pos)
            elif f != r:
                raise _LexError(f"Expected '{f}' in ISO8601 datetime, but found '{r}' instead.", pos)
        raise AssertionError("unreachable: a valid date matched the date alternative")

    def after_dot_error(s, loc, toks):
        r, pos = _rune(s, loc + len(toks[0]))
        raise _LexError(f"Floats must have a digit after the '.', but got '{r}' instead.", pos)

    def neg_error(s, loc, toks):
        r, pos = _rune(s, loc + 1)
        if r == ".":
            raise _LexError("Floats must start with a digit, not '.'.", pos)
        raise _LexError(f"Expected a digit but got '{r}'.", pos)

    suffix = r"[kKmMgGtTpPeE][bBiI]*+"
    float_alts = [
        R(r"-?\d++\.(?!\d)", after_dot_error),
        R(r"-?\d++\.\d++\.[0-9.:\-]*+", number("str")),
        R(r"-?\d++\.\d++", number("float")),
    ]
    neg_number = pp.MatchFirst(
        [
            R(r"-(?!\d)", neg_error),
            *float_alts,
            R(r"-\d++" + suffix + _NUM_END, number("int")),
            R(rf"(?P<p>-\d++{suffix})(?P<b>{_UNQ_BODY})(?P<q>'?)", number_string("p")),
            R(r"-\d++", number("int")),
        ]
    )
    pos_number = pp.MatchFirst(
        [
            R(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", number("date")),
            R(r"\d{4}-", date_error),
            R(r"\d++-", raise_("All ISO8601 dates must be in full Zulu form.", at="after")),
            *float_alts,
            R(r"\d++" + suffix + _NUM_END, number("int")),
            R(rf"(?P<p>\d++{suffix})(?P<b>{_UNQ_BODY})(?P<q>'?)", number_string("p")),
            R(r"\d++" + _NUM_END, number("int")),
            R(rf"(?P<p>\d++(?s:.))(?P<b>{_UNQ_BODY})(?P<q>'?)", number_string("p")),
        ]
    )

    # -- values ------------------------------------------------------------------------------
    value = pp.Forward()
    array_body = pp.Forward()
    map_body = pp.Forward()

    value <<= pp.Optional(ws) + pp.MatchFirst(
        [
            R(r"\[", emit("arr")) + array_body,
            R(r"\{", emit("map")) + map_body,
            R(r"'(?P<v>[^']*+)'", sq_string),
            R(r"'[^']*+\Z", sq_eof),
            R(rf'"(?P<b>{_DQ_BODY})(?P<q>"?)', dq_string),
            neg_number,
            R(r"\((?s:.*?)\n\)(?=\n|\Z)", block_string),
            R(r"\(", raise_("Unexpected EOF processing block.", at="eof")),
            pos_number,
            R(r"\.", error_at("Floats must start with a digit")),
            R(r"[\n\r]", error_at("Expected value but found new line")),
            R(rf"(?P<b>{_UNQ_BODY})(?P<q>'?)", unquoted),
        ]
    )

    # -- include -----------------------------------------------------------------------------
    def include(s, loc, toks):
        path = toks["p"]
        a = loc + (1 if toks[0][:1] in ("'", '"') else 0)
        ev.append(("inc", path, a, a + len(path)))

    include_value = pp.Optional(ws) + pp.MatchFirst(
        [
            R(r"'(?P<p>[^']*+)'", include),
            R(r"'", raise_("Unexpected EOF in quoted include", at="eof")),
            R(r'"(?P<p>[^"]*+)"', include),
            R(r'"', raise_("Unexpected EOF in double quoted include", at="eof")),
            R(r"\[", error_at("Expected include value but found start of an array")),
            R(r"\{", error_at("Expected include value but found start of a map")),
            R(r"\(", error_at("Expected include value but found start of a block")),
            R(r"[\d\-]", error_at("Expected include value but found start of a number")),
            R(r"\\", error_at("Expected include value but found escape sequence")),
            R(r"[\n\r]", error_at("Expected include value but found new line")),
            R(r"(?P<p>[^\n\r;} \t']*+)'?", include),
        ]
    )
    include_kw = R(rf"(?i:include)(?=[{GS}])").suppress()

    # -- keys --------------------------------------------------------------------------------
    def key(group: str | None = None, offset: int = 0):
        def act(s, loc, toks):
            name = toks[group] if group else toks[0]
            a = loc + offset
            ev.append(("key", name, a, a + len(name)))

        return act

    def quoted_key_eof(s, loc, toks):
        if len(toks[0]) > 1:
            raise _LexError("Unexpected EOF.", len(s))
        raise _End(ilstart=loc)

    def map_key_eof_check(s, loc, toks):
        if loc + len(toks[0]) >= len(s):
            raise _LexError("Unexpected EOF processing map key.", len(s))

    sep = R(r"[=:]").suppress()

    # Top level and inside top-level braces (the reference's lexKeyStart/lexKeyEnd).
    key_end_top = R(f"[{GS}]*+").suppress() + pp.MatchFirst([sep + value, R(r"\Z", end_of), value])
    key_stmt_top = pp.MatchFirst(
        [
            R(r"[=:]", raise_(lambda t: f"Unexpected key separator '{t}'", at="before")),
            R(r'"(?P<k>[^"]*+)"', key("k", 1)) + key_end_top,
            R(r'"[^"]*+\Z', quoted_key_eof),
            R(r"'(?P<k>[^']*+)'", key("k", 1)) + key_end_top,
            R(r"'[^']*+\Z", quoted_key_eof),
            include_kw + include_value,
            R(rf"""[^{GS}=:"'][^{GS}=:]*+""", key()) + key_end_top,
        ]
    )

    def top_end_msg(s, loc):
        r, pos = _rune(s, loc)
        return (f"Expected a top-level value to end with a new line, comment or EOF, but got '{r}' instead.", pos)

    top_value_end = pp.ZeroOrMore(ws | lone_slash) + pp.MatchFirst(
        [comment, R(r"[\n\r;,}]").suppress(), at_end.copy().suppress(), fail(top_end_msg)]
    )

    def block_value_msg(s, loc):
        r, pos = _rune(s, loc)
        return (f"Expected a block-level value to end with a new line, comment or EOF, but got '{r}' instead.", pos)

    def block_end_msg(s, loc):
        r, pos = _rune(s, loc)
        return (f"Expected a block-level to end with a '}}', but got '{r}' instead.", pos)

    unexpected_eof_slash = R(r"/", error_at("Unexpected EOF."))
    block_body = pp.Forward()
    block_value_end = pp.ZeroOrMore(ws | lone_slash | comment) + pp.MatchFirst(
        [R(r"[\n\r;,]").suppress(), pp.FollowedBy(R(r"\}")), fail(block_value_msg)]
    )
    block_end = pp.ZeroOrMore(R(r"[\n\r \t]+").suppress() | lone_slash) + pp.MatchFirst(
        [R(r"\}").suppress(), (comment | R(r"[;,]").suppress()) + block_body, fail(block_end_msg)]
    )
    block_item = pp.MatchFirst(
        [
            gsp,
            comment,
            unexpected_eof_slash,
            R(r"\Z", end_of),
            ~R(r"[{}]") + key_stmt_top + block_value_end,
        ]
    )
    block_body <<= pp.ZeroOrMore(block_item) + pp.MatchFirst(
        [R(r"\}").suppress(), R(r"\{").suppress() + block_body + block_end]
    )

    top_item = pp.MatchFirst(
        [
            gsp,
            R(r"\{").suppress() + block_body,
            comment,
            unexpected_eof_slash,
            R(r"\Z", end_of),
            key_stmt_top + top_value_end,
        ]
    )

    # -- maps (lexMapKeyStart ... lexMapValueEnd) ---------------------------------------------
    def map_value_end_msg(s, loc):
        r, pos = _rune(s, loc)
        return (f'Expected a map value terminator "," or a map terminator "}}", but got \'{r}\' instead.', pos)

    map_value_end = pp.ZeroOrMore(ws | comment) + pp.MatchFirst(
        [R(r"[;,\n\r]|/(?!/)").suppress(), pp.FollowedBy(R(r"\}")), fail(map_value_end_msg)]
    )
    map_kv = (
        R(f"[{GS}]*+").suppress()
        + pp.Optional(sep)
        + R(f"[{GS}]*+").suppress()
        + pp.MatchFirst(
            [
                R(r",", error_at('Unexpected map value terminator ",".')),
                pp.FollowedBy(R(r"\}")),
                value + map_value_end,
            ]
        )
    )
    map_key_any = R(rf"(?s:.)?[^{GS}=:]*+", map_key_eof_check)
    map_key_any.add_parse_action(key())
    map_entry = ~R(r"\}") + pp.MatchFirst(
        [
            R(r"[=:]", raise_(lambda t: f"Unexpected key separator '{t}'.", at="before")),
            R(r"\]", raise_("Unexpected array end ']' processing map.", at="before")),
            R(r"\Z", raise_("Unexpected EOF processing map.", at="before")),
            R(r"/(?!/)").suppress()
            + pp.MatchFirst([include_kw + include_value + map_value_end, map_key_any + map_kv]),
            R(r"'(?P<k>[^']*+)'", key("k", 1)) + map_kv,
            R(r"'", raise_("Unexpected EOF processing quoted map key.", at="eof")),
            R(r'"(?P<k>[^"]*+)"', key("k", 1)) + map_kv,
            R(r'"', raise_("Unexpected EOF processing double quoted map key.", at="eof")),
            include_kw + include_value + map_value_end,
            map_key_any + map_kv,
        ]
    )
    map_skip = pp.ZeroOrMore(gsp | comment)
    map_body <<= map_skip + pp.ZeroOrMore(map_entry + map_skip) + R(r"\}", emit("endmap"))

    # -- arrays (lexArrayValue, lexArrayValueEnd) ---------------------------------------------
    def array_value_end_msg(s, loc):
        r, pos = _rune(s, loc)
        return (f'Expected an array value terminator "," or an array terminator "]", but got \'{r}\' instead.', pos)

    array_value_end = pp.ZeroOrMore(ws | comment) + pp.MatchFirst(
        [R(r"[,\n\r]|/(?!/)").suppress(), pp.FollowedBy(R(r"\]")), fail(array_value_end_msg)]
    )
    array_skip = pp.ZeroOrMore(gsp | comment)
    array_item = ~R(r"[\],]|/(?!/)") + value + array_value_end
    array_body <<= (
        array_skip
        + pp.ZeroOrMore(array_item + array_skip)
        + pp.MatchFirst(
            [
                R(r"\]", emit("endarr")),
                fail(lambda s, loc: ("Unexpected array value terminator ','.", loc + 1)),
            ]
        )
    )

    grammar = pp.ZeroOrMore(top_item)
    grammar.parse_with_tabs()
    return grammar


# ---------------------------------------------------------------------------------------------
# Source positions, the reference's way.


class _Source:
    def __init__(self, text: str, filename: str | None) -> None:
        self.text = text
        self.filename = filename
        self._ascii = text.isascii()

    def _b(self, off: int) -> int:
        if self._ascii:
            return off
        return len(self.text[:off].encode("utf-8", "surrogatepass"))

    def line(self, off: int) -> int:
        return self.text.count("\n", 0, off) + 1

    def ilstart(self, off: int) -> int:
        """The reference's line start for a token starting at off: the offset of the last
        newline before it, or 0."""
        i = self.text.rfind("\n", 0, off)
        return i if i > 0 else 0

    def column(self, start: int, end: int | None = None, value: str | None = None) -> int:
        """Column of a token whose raw text is s[start:end] and whose value is `value` (they
        differ for escaped strings): end - line start - len(value), in bytes."""
        if end is None or value is None:
            return self._b(start) - self._b(self.ilstart(start))
        return self._b(end) - self._b(self.ilstart(start)) - len(value.encode("utf-8", "surrogatepass"))

    def pos(self, start: int, end: int | None = None, value: str | None = None) -> tuple:
        line_at = end if end is not None else start
        return (self.filename, self.line(line_at), self.column(start, end, value))


# ---------------------------------------------------------------------------------------------
# The builder: the reference parser's processItem, over the grammar's events.

_BCRYPT_PREFIX = "2a$"
_ENV_KEY = "pk"


class _Parser:
    def __init__(
        self,
        text: str,
        fp: str | None,
        env: Mapping[str, str],
        env_refs: set,
        includes: tuple,
        pedantic: bool = True,
    ) -> None:
        self.src = _Source(text, fp)
        self.fp = fp
        self.env = env
        self.env_refs = env_refs
        self.includes = includes  # real paths of the files being parsed, outermost first
        self.pedantic = pedantic
        self.mapping = ConfMap()
        self.ctxs: list = [self.mapping]
        self.keys: list = []  # (name, position)
        self.last = None  # kind of the last event

    # -- driving ---------------------------------------------------------------------------
    def run(self) -> ConfMap:
        events, stop = _run_grammar(self.src.text)
        text = self.src.text
        if isinstance(stop, pp.ParseBaseException):  # a grammar bug, never the user's fault
            raise ConfigError(f"internal parser error: {stop}", self.fp, self.src.line(stop.loc))
        if isinstance(stop, RecursionError):
            raise ConfigError("config nesting is too deep", self.fp)
        for event in events:
            self.process(event)
        if isinstance(stop, _LexError):
            line = self.src.line(stop.pos)
            raise ConfigError.parse_error(stop.message, self.fp, line, self.src.column(stop.pos))
        assert isinstance(stop, _End)
        if self.last == "key" and self.keys and self.keys[-1][0] != "}":
            end = len(text)
            il = self.src.ilstart(end) if stop.ilstart is None else self.src.ilstart(stop.ilstart)
            col = self.src._b(end) - self.src._b(il) - len(stop.pending.encode("utf-8", "surrogatepass"))
            raise ConfigError.invalid(self.fp or "", self.src.line(end), col)
        if not self.pedantic:
            _strip_positions(self.mapping)
        return self.mapping

    # -- items -----------------------------------------------------------------------------
    def process(self, event: tuple) -> None:
        kind, val, a, b = event
        self.last = kind
        src = self.src
        if kind == "key":
            self.keys.append((val, src.pos(a, b, val)))  # line: where the key ends
        elif kind == "map":
            self.ctxs.append(ConfMap())
        elif kind == "endmap":
            m = self.ctxs.pop()
            self.set_value(m, src.pos(b, b, ""))
        elif kind == "arr":
            self.ctxs.append(ConfList())
        elif kind == "endarr":
            arr = self.ctxs.pop()
            self.set_value(arr, src.pos(b, b, ""))
        elif kind == "str":
            self.set_value(val, src.pos(a, b, val))
        elif kind == "bool":
            self.set_value(_BOOLS[val.lower()], src.pos(a, b, val))
        elif kind in ("int", "float", "date"):
            try:
                if kind == "int":
                    value = _convert_int(val)
                elif kind == "float":
                    value = _convert_float(val)
                else:
                    value = _convert_datetime(val)
            except ValueError as exc:
                raise ConfigError(str(exc), self.fp, src.line(b), src.column(a), text=str(exc)) from None
            if value is not None:  # an unknown size suffix sets nothing, as in the reference
                self.set_value(value, src.pos(a, b, val))
        elif kind == "var":
            self.variable(val, a, b)
        elif kind == "inc":
            self.include(val, a, b)
        else:  # pragma: no cover
            raise AssertionError(kind)

    def set_value(self, value: Any, pos: tuple, used: bool = False) -> None:
        ctx = self.ctxs[-1]
        if isinstance(ctx, ConfList):
            ctx.append(value)
            ctx.positions.append(pos)
            return
        if not self.keys:
            raise ConfigError("BUG in parser, keys stack empty", *pos)
        name, key_pos = self.keys.pop()
        ctx[name] = value
        ctx.positions[name] = key_pos
        if used:
            ctx.used_as_variable.add(name)
        else:
            ctx.used_as_variable.discard(name)

    # -- variables -------------------------------------------------------------------------
    def variable(self, name: str, a: int, b: int) -> None:
        line = self.src.line(b)
        try:
            value, found = self.lookup(name)
        except ConfigError as exc:
            raise exc.wrap(f"variable reference for '{name}' on line {line} could not be parsed: ") from None
        if not found:
            message = f"variable reference for '{name}' on line {line} can not be found"
            raise ConfigError(message, self.fp, line, self.src.column(a), text=message)
        self.set_value(value, self.src.pos(a, b, name))

    def lookup(self, name: str) -> tuple[Any, bool]:
        if name.startswith(_BCRYPT_PREFIX):
            return "$" + name, True
        for ctx in reversed(self.ctxs):
            if isinstance(ctx, ConfMap) and name in ctx:
                ctx.used_as_variable.add(name)
                return ctx[name], True
        return _env_lookup(name, self.env, self.env_refs)

    # -- include ---------------------------------------------------------------------------
    def include(self, path: str, a: int, b: int) -> None:
        full = _go_join(_go_dir(self.fp or ""), path)
        real = os.path.realpath(full)
        prefix = f"error parsing include file '{path}', "
        if real in self.includes:
            chain = " -> ".join([*self.includes[self.includes.index(real) :], real])
            message = f"include cycle: {chain}"
            raise ConfigError(message, self.fp, self.src.line(b), self.src.column(a), text=prefix + message)
        try:
            text = _read(full)
            sub = _Parser(text, full, self.env, self.env_refs, self.includes + (real,), self.pedantic)
            m = sub.run()
        except ConfigError as exc:
            raise exc.wrap(prefix) from None
        except OSError as exc:
            message = _go_os_error(full, exc)
            if not self.pedantic:  # the reference's ParseFile (used under env values) says more
                message = "error opening config file: " + message
            raise ConfigError(message, self.fp, self.src.line(b), self.src.column(a), text=prefix + message) from None
        for k, v in m.items():
            self.keys.append((k, m.positions.get(k)))
            self.set_value(v, m.positions.get(k), used=k in m.used_as_variable)


def _env_lookup(name: str, env: Mapping[str, str], env_refs: set) -> tuple[Any, bool]:
    """The environment fallback of a variable: the text is parsed as the config `pk=<text>`.
    `env_refs` holds the names being resolved, to catch cycles."""
    if name in env_refs:
        message = f"variable reference cycle for '{name}'"
        raise ConfigError(message, text=message)
    if name not in env:
        return None, False
    env_refs.add(name)
    try:
        m = _Parser(f"{_ENV_KEY}={env[name]}", "", env, env_refs, (), pedantic=False).run()
    finally:
        env_refs.discard(name)
    if _ENV_KEY in m:
        return m[_ENV_KEY], True
    return None, False


def _strip_positions(value: Any) -> None:
    """Values from an environment variable: the reference keeps no positions for them."""
    if isinstance(value, ConfMap):
        value.positions.clear()
        for v in value.values():
            _strip_positions(v)
    elif isinstance(value, ConfList):
        value.positions = [None] * len(value)
        for v in value:
            _strip_positions(v)


def _go_dir(path: str) -> str:
    """Go's filepath.Dir."""
    d = posixpath.dirname(path)
    return _go_clean(d) if d else "."


def _go_clean(path: str) -> str:
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _go_join(*parts: str) -> str:
    """Go's filepath.Join: join the non-empty parts with '/', then Clean. An absolute second
    part does not reset the path."""
    joined = "/".join(p for p in parts if p)
    return _go_clean(joined) if joined else ""


def _go_os_error(path: str, exc: OSError) -> str:
    import errno as _errno

    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    reason = reason[:1].lower() + reason[1:]
    op = "read" if exc.errno == _errno.EISDIR else "open"
    return f"{op} {path}: {reason}"


def _read(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    return data.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Public entry points.


def parse(text: str, filename: str | None = None, env: Mapping[str, str] | None = None) -> ConfMap:
    """Parse NATS-format config text. `filename` is used in positions and errors and as the
    base directory of `include`s (the current directory when None). `env` is the environment
    for `$VAR` fallback (os.environ when None)."""
    environ = os.environ if env is None else env
    includes = (os.path.realpath(filename),) if filename else ()
    return _Parser(text, filename, environ, set(), includes).run()


def parse_file(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> ConfMap:
    """Parse a config file; `.yaml`/`.yml` files are read as YAML."""
    path = os.fspath(path)
    try:
        text = _read(path)
    except OSError as exc:
        message = _go_os_error(path, exc)
        raise ConfigError(message, path, text=message) from None
    if path.lower().endswith((".yaml", ".yml")):
        return parse_yaml(text, path, env)
    return parse(text, path, env)


# ---------------------------------------------------------------------------------------------
# Digest: Go's json.Encoder over the parsed map, then sha256.


def config_digest(mapping: Mapping) -> str:
    return "sha256:" + hashlib.sha256((_go_json(mapping) + "\n").encode("utf-8")).hexdigest()


def digest(path: str | os.PathLike) -> str:
    """The `sha256:...` that `nats-server -t -c path` prints for a valid file."""
    return config_digest(parse_file(path))


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _go_json_string(s: str) -> str:
    def sub(m: re.Match) -> str:
        c = m.group()
        if c in _JSON_ESCAPES:
            return _JSON_ESCAPES[c]
        if "\ud800" <= c <= "\udfff":
            return "\ufffd"
        return "\\u%04x" % ord(c)

    return '"' + _JSON_SPECIAL.sub(sub, s) + '"'


def _go_json_float(f: float) -> str:
    """Go's encoding/json float64: shortest digits, plain notation for 1e-6 <= |f| < 1e21,
    otherwise exponent notation with at least two exponent digits except e-0N -> e-N."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    d = Decimal(repr(f))  # repr is the shortest round-tripping form, like Go's 'g', -1
    if 1e-6 <= abs(f) < 1e21:
        text = format(d, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    sign, digits, exponent = d.as_tuple()
    digits_s = "".join(map(str, digits)).rstrip("0") or "0"
    e10 = exponent + len(digits) - 1
    mantissa = digits_s[0] + ("." + digits_s[1:] if len(digits_s) > 1 else "")
    text = f"{'-' if sign else ''}{mantissa}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    return re.sub(r"e-0(\d)$", r"e-\1", text)


def _go_json(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_json_float(v)
    if isinstance(v, str):
        return _go_json_string(v)
    if isinstance(v, _dt.datetime):
        return '"' + v.strftime("%Y-%m-%dT%H:%M:%SZ") + '"'
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-8", "surrogatepass"))
        return "{" + ",".join(_go_json_string(k) + ":" + _go_json(x) for k, x in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_go_json(x) for x in v) + "]"
    if v is None:
        return "null"
    raise TypeError(f"cannot digest {type(v).__name__}")


# ---------------------------------------------------------------------------------------------
# YAML.


_YAML_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_INT = re.compile(r"-?[0-9]+(?:[kmgtpe](?:b|i|ib)?)?", re.IGNORECASE)
_PLAIN_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")
_PLAIN_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


class _YamlBuilder:
    """YAML nodes -> the structures `parse` returns, with NATS rules for plain scalars."""

    def __init__(self, text: str, filename: str | None, env: Mapping[str, str]) -> None:
        import yaml

        self.yaml = yaml
        self.src = _Source(text, filename)
        self.env = env
        self.env_refs: set = set()
        self.ctxs: list = []  # enclosing maps, innermost last (lists are not scopes)
        self.done: dict = {}  # id(node) -> value, so an alias shares its anchor's value
        self.active: set = set()
        self.resolver = yaml.resolver.Resolver()

    def pos(self, node) -> tuple:
        return self.src.pos(node.start_mark.index)

    def error(self, message: str, node) -> ConfigError:
        file, line, column = self.pos(node)
        return ConfigError(message, file, line, column)

    def convert(self, node) -> Any:
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise self.error("yaml: recursive alias", node)
        self.active.add(key)
        try:
            if isinstance(node, self.yaml.MappingNode):
                value = self.mapping(node)
            elif isinstance(node, self.yaml.SequenceNode):
                value = self.sequence(node)
            else:
                value = self.scalar(node)
        finally:
            self.active.discard(key)
        self.done[key] = value
        return value

    def mapping(self, node) -> ConfMap:
        m = ConfMap()
        self.ctxs.append(m)
        try:
            explicit = {k.value for k, _ in node.value if k.tag != _YAML_MERGE and isinstance(k, self.yaml.ScalarNode)}
            for knode, vnode in node.value:
                if knode.tag == _YAML_MERGE:
                    self.merge(m, vnode, explicit)
                    continue
                if not isinstance(knode, self.yaml.ScalarNode):
                    raise self.error("yaml: map keys must be scalars", knode)
                name = knode.value
                m[name] = self.convert(vnode)
                m.positions[name] = self.pos(knode)
                m.used_as_variable.discard(name)
        finally:
            self.ctxs.pop()
        return m

    def merge(self, m: ConfMap, vnode, explicit: set) -> None:
        sources = vnode.value if isinstance(vnode, self.yaml.SequenceNode) else [vnode]
        for source in sources:
            merged = self.convert(source)
            if not isinstance(merged, ConfMap):
                raise self.error("yaml: a merge key (<<) needs a map or a list of maps", source)
            for k, v in merged.items():
                if k not in explicit and k not in m:
                    m[k] = v
                    m.positions[k] = merged.positions.get(k)

    def sequence(self, node) -> ConfList:
        out = ConfList()
        for item in node.value:
            out.append(self.convert(item))
            out.positions.append(self.pos(item))
        return out

    def scalar(self, node) -> Any:
        text = node.value
        plain = node.style is None
        implicit = self.resolver.resolve(self.yaml.ScalarNode, text, (plain, not plain))
        if node.tag != implicit:  # an explicit tag: YAML's own meaning
            return self.tagged(node)
        if not plain:
            return text
        return self.plain(text, node)

    def tagged(self, node) -> Any:
        constructor = self.yaml.constructor.SafeConstructor()
        try:
            value = constructor.construct_object(node, deep=True)
        except self.yaml.YAMLError as exc:
            raise self.error(f"yaml: {getattr(exc, 'problem', None) or exc}", node) from None
        if isinstance(value, _dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        if value is None or isinstance(value, (bytes, _dt.date, set)):
            raise self.error(f"yaml: unsupported value for tag {node.tag}", node)
        return value

    def plain(self, text: str, node) -> Any:
        if text.lower() in _BOOLS:
            return _BOOLS[text.lower()]
        try:
            if _PLAIN_INT.fullmatch(text):
                return _convert_int(text)
            if _PLAIN_FLOAT.fullmatch(text):
                return _convert_float(text)
            if _PLAIN_DATETIME.fullmatch(text):
                return _convert_datetime(text)
        except ValueError as exc:
            file, line, column = self.pos(node)
            raise ConfigError(str(exc), file, line, column, text=str(exc)) from None
        if text.startswith("$") and not any(c.isspace() for c in text):
            return self.variable(text[1:], node)
        return text

    def variable(self, name: str, node) -> Any:
        if name.startswith(_BCRYPT_PREFIX):
            return "$" + name
        for ctx in reversed(self.ctxs):
            if name in ctx:
                ctx.used_as_variable.add(name)
                return ctx[name]
        file, line, column = self.pos(node)
        try:
            value, found = _env_lookup(name, self.env, self.env_refs)
        except ConfigError as exc:
            raise exc.wrap(f"variable reference for '{name}' on line {line} could not be parsed: ") from None
        if not found:
            message = f"variable reference for '{name}' on line {line} can not be found"
            raise ConfigError(message, file, line, column, text=message)
        return value


def parse_yaml(text: str, filename: str | None = None, env: Mapping[str, str] | None = None) -> ConfMap:
    """Parse YAML config text into the same structure `parse` returns (see module docstring)."""
    import yaml

    builder = _YamlBuilder(text, filename, os.environ if env is None else env)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is None:
            raise ConfigError(f"yaml: {problem}", filename) from None
        file, line, column = builder.src.pos(min(mark.index, len(text)))
        raise ConfigError(f"yaml: {problem}", file, line, column) from None
    if root is None:
        return ConfMap()
    if not isinstance(root, yaml.MappingNode):
        raise builder.error("yaml: the top level of a config must be a map", root)
    return builder.convert(root)
