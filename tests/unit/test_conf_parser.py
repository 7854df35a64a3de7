"""Unit tests of config/parser.py and config/errors.py: the NATS conf grammar and its quirks,
every error text with its position, variables, include, positions, the -t digest and YAML.

Expected values were taken from nats-server v2.15.1 (`nats-server -t -c FILE`). When that binary
is on PATH, `test_reference_agrees` also runs it over a table of configs and compares the
outcome live (parse error text, unknown-field positions, or the digest of a valid file).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import string
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_nats.config.errors import ConfigError
from actor_nats.config.parser import ConfList, ConfMap, config_digest, digest, parse, parse_file, parse_yaml

UTC = dt.timezone.utc


def p(text: str, env: dict | None = None, filename: str = "t.conf") -> ConfMap:
    return parse(text, filename, env=env or {})


def err(text: str, env: dict | None = None, filename: str = "t.conf") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, filename, env=env or {})
    return info.value


# ---------------------------------------------------------------------------------------------
# Key/value syntax, maps, arrays, comments


@pytest.mark.parametrize(
    "text",
    ["port: 4222", "port = 4222", "port 4222", "port:4222", "port=4222", "port\t4222", "port\n4222",
     "  port  :  4222  ", "port: 4222;", "port: 4222,", "port: 4222 # c", "port: 4222 // c",
     "{ port: 4222 }", "{\n  port: 4222\n}\n", '"port": 4222', "'port': 4222", "port: 4222 / "],
)
def test_key_value_forms(text):
    assert p(text) == {"port": 4222}


def test_separators_between_entries():
    assert p("a=1; b=2, c=3\nd=4") == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert p("m { a=1; b=2, c=3\n d=4 }") == {"m": {"a": 1, "b": 2, "c": 3, "d": 4}}
    assert p("m {a: 1 / b: 2}") == {"m": {"a": 1, "b": 2}}  # a lone '/' separates in a map


def test_maps_and_arrays_nest_freely():
    text = """
    cluster {
      routes = [
        nats://a:6222
        "nats://b:6222",  # comment
        {x: [1, {y: z} ], w: []}
        []
      ]
      empty {}
      map_no_sep { a: b }
    }
    """
    assert p(text) == {
        "cluster": {
            "routes": ["nats://a:6222", "nats://b:6222", {"x": [1, {"y": "z"}], "w": []}, []],
            "empty": {},
            "map_no_sep": {"a": "b"},
        }
    }


def test_map_value_may_start_on_next_line_but_top_level_value_may_not():
    assert p("m {\n a:\n 1\n}") == {"m": {"a": 1}}
    e = err("a:\nb")
    assert str(e) == "Parse error on line 2: 'Expected value but found new line'"
    assert (e.file, e.line) == ("t.conf", 2)


def test_arrays_trailing_comma_and_comments():
    assert p("a = [1, 2, ]") == {"a": [1, 2]}
    assert p("a = [\n 1 # one\n 2 // two\n]") == {"a": [1, 2]}
    assert p("a = [ x / y ]") == {"a": ["x", "y"]}  # a lone '/' separates in an array


def test_comments_and_hash_inside_values():
    assert p("# top\n// also\na = b#c // d\n") == {"a": "b#c"}
    assert p("a = nats://h:4222") == {"a": "nats://h:4222"}
    assert p("a = x//y") == {"a": "x//y"}


def test_duplicate_keys_last_wins():
    m = p("port: 1\nport: 2\nm { a: 1 }\nm { b: 2 }")
    assert m == {"port": 2, "m": {"b": 2}}
    assert m.positions["port"] == ("t.conf", 2, 1)


def test_whole_file_may_be_wrapped_in_braces_json_style():
    assert p('{"a": 1, "b": [true, "x"], "c": {"d": 1.5}}') == {"a": 1, "b": [True, "x"], "c": {"d": 1.5}}
    assert p("{\n a: 1\n") == {"a": 1}  # an unclosed top-level brace is fine after a newline
    assert p("{{ a: 1 } , b: 2 }") == {"a": 1, "b": 2}


# ---------------------------------------------------------------------------------------------
# Strings


def test_double_quoted_escapes():
    assert p(r'a = "t\tn\nr\r q\" b\\ x\x41\x7a"') == {"a": 't\tn\nr\r q" b\\ xAz'}
    assert p(r'a = "\xc3\xa9"') == {"a": "é"}  # \x escapes are bytes
    assert p('a = "multi\nline"') == {"a": "multi\nline"}


@pytest.mark.parametrize(
    "text, line, message",
    [
        (r'a = "\q"', 1, "Invalid escape character 'q'. Only the following escape characters are allowed: "
                         r'\xXX, \t, \n, \r, \", \\.'),
        ('a = "\\\nx"', 2, "Invalid escape character '\\n'. Only the following escape characters are allowed: "
                           r'\xXX, \t, \n, \r, \", \\.'),
        (r'a = "a\x"', 1, "Expected two hexadecimal digits after '\\x', but got 'x\"'"),
        (r'a = "a\xA"', 1, "Expected two hexadecimal digits after '\\x', but got 'A\"'"),
        (r'a = "a\xzz"', 1, "Expected two hexadecimal digits after '\\x', but got 'zz'"),
        ('a = "a\\xg\n"', 2, "Expected two hexadecimal digits after '\\x', but hit end of line"),
        (r"a = x\q", 1, "Invalid escape character 'q'. Only the following escape characters are allowed: "
                        r'\xXX, \t, \n, \r, \", \\.'),
        ('a = "abc', 1, "Unexpected EOF."),
        ("a = 'abc", 1, "Unexpected EOF."),
    ],
)
def test_string_errors(text, line, message):
    e = err(text)
    assert e.message == message
    assert e.line == line
    assert str(e) == f"Parse error on line {line}: '{message}'"


def test_single_quoted_strings_are_raw():
    assert p(r"a = 'x\q\t'") == {"a": r"x\q\t"}
    assert p("a = 'two\nlines'") == {"a": "two\nlines"}


def test_unquoted_strings():
    assert p("a = hello") == {"a": "hello"}
    assert p("m {a = x}") == {"m": {"a": "x"}}
    assert p("a = [x,y]") == {"a": ["x", "y"]}
    assert p(r"a = x\ty") == {"a": "x\ty"}  # escapes apply unquoted too
    assert p(r"a = tr\x75e") == {"a": "true"}  # an escaped value is never a bool
    assert p("a = x'") == {"a": "x"}  # a quote ends an unquoted value and is eaten
    assert p("a = ") == {"a": ""}
    assert p("a = ;") == {"a": ""}
    assert str(err("a = abc'def")) == (
        "Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, "
        "but got 'd' instead.'"
    )


def test_block_strings():
    assert p("a = (\n  raw \\q 'x' \"y\"\n  ) not the end\n)\nb = 1") == {
        "a": "\n  raw \\q 'x' \"y\"\n  ) not the end\n",
        "b": 1,
    }
    assert p("a = (\nx\n)") == {"a": "\nx\n)"}  # at end of file the ')' is kept, as the reference does
    e = err("a = (\nx)\n")
    assert str(e) == "Parse error on line 3: 'Unexpected EOF processing block.'"


# ---------------------------------------------------------------------------------------------
# Scalars: bools, numbers, sizes, strings that look like numbers, dates


@pytest.mark.parametrize("word, value", [("true", True), ("TRUE", True), ("Yes", True), ("on", True),
                                         ("false", False), ("No", False), ("OFF", False)])
def test_booleans(word, value):
    assert p(f"a = {word}") == {"a": value}


def test_bool_words_quoted_are_strings():
    assert p('a = "true"\nb = \'on\'') == {"a": "true", "b": "on"}


@pytest.mark.parametrize(
    "text, value",
    [("0", 0), ("4222", 4222), ("-1", -1), ("007", 7), ("9223372036854775807", 2**63 - 1),
     ("-9223372036854775808", -(2**63)), ("1.5", 1.5), ("-0.25", -0.25), ("10.0", 10.0)],
)
def test_numbers(text, value):
    got = p(f"a = {text}")["a"]
    assert got == value and type(got) is type(value)


SIZES = [("k", 1000), ("kb", 1024), ("ki", 1024), ("kib", 1024), ("m", 10**6), ("mb", 2**20), ("mi", 2**20),
         ("mib", 2**20), ("g", 10**9), ("gb", 2**30), ("gi", 2**30), ("gib", 2**30), ("t", 10**12),
         ("tb", 2**40), ("ti", 2**40), ("tib", 2**40), ("p", 10**15), ("pb", 2**50), ("pi", 2**50),
         ("pib", 2**50), ("e", 10**18), ("eb", 2**60), ("ei", 2**60), ("eib", 2**60)]


@pytest.mark.parametrize("suffix, mult", SIZES)
def test_size_suffixes(suffix, mult):
    assert p(f"a = 3{suffix}")["a"] == 3 * mult
    assert p(f"a = 3{suffix.upper()}")["a"] == 3 * mult
    assert p(f"a = -2{suffix}")["a"] == -2 * mult


def test_size_overflow_wraps_like_go_int64():
    assert p("a = 10E")["a"] == 10 * 10**18 - 2**64


def test_unknown_suffix_silently_sets_nothing():
    # The reference's parser ignores the item; the key is left on its key stack.
    assert p("a = 1kbb\nb = 2") == {"b": 2}


@pytest.mark.parametrize(
    "text",
    ["10s", "4222abc", "10ms", "1m5s", "1k5", "1kbx", "1'x", "1.2.3.4", "127.0.0.1", "1.2.3.4:4222",
     "-1.2.3", "-5ks", "2]"],
)
def test_strings_that_start_like_numbers(text):
    value = p(f"a = {text}")["a"]
    expected = {"1'x": "1'x", "2]": "2]"}.get(text, text)
    assert value == expected


def test_backslash_after_digits_is_kept_but_after_a_size_suffix_is_an_escape():
    assert p(r"a = 1\t") == {"a": "1\\t"}
    assert p(r"a = 1k\t") == {"a": "1k\t"}


def test_one_m_is_a_million_not_a_minute():
    assert p("ping_interval: 1m") == {"ping_interval": 1_000_000}


def test_datetime():
    assert p("a = 2006-01-02T15:04:05Z") == {"a": dt.datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)}


@pytest.mark.parametrize(
    "text, message",
    [
        ("a = -foo", "Expected a digit but got 'f'."),
        ("a = -.5", "Floats must start with a digit, not '.'."),
        ("a = .5", "Floats must start with a digit"),
        ("a = 1.", "Floats must have a digit after the '.', but got '\x00' instead."),
        ("a = 1.x", "Floats must have a digit after the '.', but got 'x' instead."),
        ("a = 12-3", "All ISO8601 dates must be in full Zulu form."),
        ("a = 2020-01-02", "Expected 'T' in ISO8601 datetime, but found '\x00' instead."),
        ("a = 2020-0x", "Expected digit in ISO8601 datetime, but found 'x' instead."),
        ("a = 1.5s", "Expected a top-level value to end with a new line, comment or EOF, but got 's' instead."),
        ("a = 1.2.3.4abc", "Expected a top-level value to end with a new line, comment or EOF, but got 'a' instead."),
        ("a = -5x", "Expected a top-level value to end with a new line, comment or EOF, but got 'x' instead."),
        ("a = 1k 5", "Expected a top-level value to end with a new line, comment or EOF, but got '5' instead."),
        ("a = [1,2]", 'Expected an array value terminator "," or an array terminator "]", but got \'\x00\' instead.'),
    ],
)
def test_number_lexing_errors(text, message):
    e = err(text)
    assert str(e) == f"Parse error on line 1: '{message}'"


def test_number_directly_before_array_end_is_a_string():
    assert p("a = [1, 2 ]") == {"a": [1, 2]}
    assert p("a = [1k]") == {"a": ["1k"]}
    assert p("a = [x]") == {"a": ["x"]}
    assert p("a = [1.5]") == {"a": [1.5]}


@pytest.mark.parametrize(
    "text, message",
    [
        ("a = 99999999999999999999", "integer '99999999999999999999' is out of the range"),
        ("a = 2020-13-01T00:00:00Z", "expected Zulu formatted DateTime, but got '2020-13-01T00:00:00Z'"),
        ("a = 1" + "0" * 400 + ".5", "float '1" + "0" * 400 + ".5' is out of the range"),
    ],
)
def test_value_conversion_errors_have_no_line_prefix(text, message):
    e = err(text)
    assert str(e) == message
    assert (e.file, e.line) == ("t.conf", 1)


# ---------------------------------------------------------------------------------------------
# Structure errors, each with the reference's text and line


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("= 1", 1, "Unexpected key separator '='"),
        ("a=1 b", 1, "Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead."),
        ("/x", 1, "Unexpected EOF."),
        ('a = 1\n"abc', 2, "Unexpected EOF."),
        ("m { = 1 }", 1, "Unexpected key separator '='."),
        ("m { ] }", 1, "Unexpected array end ']' processing map."),
        ("m {", 1, "Unexpected EOF processing map."),
        ("m {\n a", 2, "Unexpected EOF processing map key."),
        ("m { 'a", 1, "Unexpected EOF processing quoted map key."),
        ('m { "a', 1, "Unexpected EOF processing double quoted map key."),
        ("m { a: 1 b }", 1, 'Expected a map value terminator "," or a map terminator "}", but got \'b\' instead.'),
        ("m { a: , }", 1, 'Unexpected map value terminator ",".'),
        ("m { a: 1", 1, 'Expected a map value terminator "," or a map terminator "}", but got \'\x00\' instead.'),
        ("a = [,]", 1, "Unexpected array value terminator ','."),
        ("a = [1 2]", 1, 'Expected an array value terminator "," or an array terminator "]", but got \'2\' instead.'),
        ("a = [", 1, 'Expected an array value terminator "," or an array terminator "]", but got \'\x00\' instead.'),
        ("{ a: 1", 1, "Expected a block-level value to end with a new line, comment or EOF, but got '\x00' instead."),
        ("{{ a: 1 } b: 2 }", 1, "Expected a block-level to end with a '}', but got 'b' instead."),
        ("include\n", 2, "Expected include value but found new line"),
        ("include [x]", 1, "Expected include value but found start of an array"),
        ("include {x}", 1, "Expected include value but found start of a map"),
        ("include (x)", 1, "Expected include value but found start of a block"),
        ("include 1.conf", 1, "Expected include value but found start of a number"),
        ("include \\x", 1, "Expected include value but found escape sequence"),
        ("include 'x", 1, "Unexpected EOF in quoted include"),
        ('include "x', 1, "Unexpected EOF in double quoted include"),
    ],
)
def test_parse_errors(text, line, message):
    e = err(text)
    assert (e.message, e.line, e.file) == (message, line, "t.conf")
    assert str(e) == f"Parse error on line {line}: '{message}'"


@pytest.mark.parametrize(
    "text, where",
    [("port", "t.conf:1:4"), ("a = 1\nport", "t.conf:2:5"), ("port: '", "t.conf:1:7"),
     ('a: "\\t', "t.conf:1:5"), ("include", "t.conf:1:7"), ("a = 1\n\nport   ", "t.conf:3:8")],
)
def test_key_without_value_at_end(text, where):
    e = err(text)
    assert str(e) == f"config is invalid ({where})"
    assert f"{e.file}:{e.line}:{e.column}" == where


def test_quirky_but_valid_endings():
    assert p('a = 1\n"') == {"a": 1}  # a lone quote at EOF ends the file
    assert p("a = 1\n}") == {"a": 1}  # a stray top-level '}' too
    assert p("a: [ '") == {}  # EOF inside an array: the key never gets its value


def test_key_stack_quirk_empty_value_before_brace():
    # `x { a: }` closes the map with `a` still pending, so the map becomes a's value.
    assert p("x { a: }") == {"a": {}}


def test_lexer_error_after_a_semantic_error_is_not_reported_first():
    e = err('a = $nope\nb = "\\q"')
    assert str(e) == "variable reference for 'nope' on line 1 can not be found"


def test_configerror_str_forms():
    assert str(ConfigError('unknown field "x"', "a.conf", 3, 1)) == 'a.conf:3:1: unknown field "x"'
    assert str(ConfigError("plain")) == "plain"
    e = ConfigError.parse_error("boom", "a.conf", 2)
    assert (str(e), e.message, e.file, e.line) == ("Parse error on line 2: 'boom'", "boom", "a.conf", 2)
    assert isinstance(e, Exception)


# ---------------------------------------------------------------------------------------------
# Positions


def test_key_positions_follow_the_reference_columns():
    m = p("a: 1\n  b: 2\nm {\n\tc: 3\n}\n'q': 4\n")
    assert m.positions == {"a": ("t.conf", 1, 0), "b": ("t.conf", 2, 3), "m": ("t.conf", 3, 1), "q": ("t.conf", 6, 2)}
    assert m["m"].positions == {"c": ("t.conf", 4, 2)}


def test_multiline_quoted_key_reports_the_line_where_it_ends():
    m = p("'a\nb': 1\nm { 'c\nd': 2 }")
    assert m.positions["a\nb"] == ("t.conf", 2, 1)
    assert m["m"].positions["c\nd"] == ("t.conf", 4, 6)


def test_columns_count_bytes():
    m = p("é = 1; b = 2")
    assert m.positions["b"] == ("t.conf", 1, 8)


def test_list_item_positions():
    m = p("a = [\n  x, 'y'\n  {k: 1}\n]")
    assert m["a"].positions == [("t.conf", 2, 3), ("t.conf", 2, 7), ("t.conf", 3, 9)]
    assert isinstance(m["a"], ConfList)


def test_no_filename():
    m = parse("a = 1", env={})
    assert m.positions["a"] == (None, 1, 0)
    assert str(err_nofile("a")) == "config is invalid (:1:1)"


def err_nofile(text):
    with pytest.raises(ConfigError) as info:
        parse(text, env={})
    return info.value


# ---------------------------------------------------------------------------------------------
# Variables


def test_variables_block_scoping():
    text = """
    port = 4222
    a { port = 1, inner { x = $port } }
    b { x = $port }
    c = [ {x = $port} ]
    """
    m = p(text)
    assert m["a"]["inner"]["x"] == 1
    assert m["b"]["x"] == 4222
    assert m["c"] == [{"x": 4222}]


def test_variables_must_be_defined_earlier():
    e = err("a = $b\nb = 1")
    assert str(e) == "variable reference for 'b' on line 1 can not be found"
    assert (e.line, e.column) == (1, 5)


def test_variables_keep_type_and_share_maps():
    m = p("t = {x: [1, 2 ]}\nu = $t\nv = [$t, $t]")
    assert m["u"] == {"x": [1, 2]} and m["v"] == [m["t"], m["t"]]


def test_used_as_variable():
    m = p("PORT = 4222\nport = $PORT\nZ = 1\nZ = 2")
    assert m.used_as_variable == {"PORT"}
    m = p("x = 1\ny = $x\nx = 2")  # the x that was used was replaced
    assert m.used_as_variable == set()
    m = p("m { a = 1, b = $a }")
    assert m["m"].used_as_variable == {"a"} and m.used_as_variable == set()


def test_no_interpolation_inside_quotes():
    m = p('host = "h"\nport = 5\nlisten = "$host:$port"')
    assert m["listen"] == "$host:$port"
    assert m.used_as_variable == set()
    e = err("host = h\nport = 5\nlisten = $host:$port")
    assert str(e) == "variable reference for 'host:$port' on line 3 can not be found"


def test_bcrypt_hash_is_literal():
    assert p("pass = $2a$11$abc/def.ghi") == {"pass": "$2a$11$abc/def.ghi"}
    assert str(err("pass = $2b$11$abc")) == "variable reference for '2b$11$abc' on line 1 can not be found"
    assert p("pass = '$2b$11$abc'") == {"pass": "$2b$11$abc"}


def test_empty_variable_name():
    assert str(err("a = $")) == "variable reference for '' on line 1 can not be found"


def test_environment_fallback_parses_values():
    env = {"PORT": "4222", "ON": "true", "M": "{a: 1, b: [x, y]}", "S": "hello", "TWO": "1\nfoo=2", "Q": '"q s"'}
    m = p("a = $PORT\nb = $ON\nc = $M\nd = $S\ne = $TWO\nf = $Q", env=env)
    assert m == {"a": 4222, "b": True, "c": {"a": 1, "b": ["x", "y"]}, "d": "hello", "e": 1, "f": "q s"}
    assert m["c"].positions == {}  # env values carry no positions in the reference
    assert p("port = 1\na = $port", env={"port": "9"})["a"] == 1  # the config wins over the env


def test_environment_errors_and_cycles():
    e = err("a = $E", env={"E": "a b"})
    assert str(e) == (
        "variable reference for 'E' on line 1 could not be parsed: Parse error on line 1: "
        "'Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead.'"
    )
    assert str(err("a = $E", env={"E": "$E"})) == (
        "variable reference for 'E' on line 1 could not be parsed: variable reference for 'E' on line 1 "
        "could not be parsed: variable reference cycle for 'E'"
    )
    assert str(err("a = $E", env={"E": "$F", "F": "$E"})) == (
        "variable reference for 'E' on line 1 could not be parsed: variable reference for 'F' on line 1 "
        "could not be parsed: variable reference for 'E' on line 1 could not be parsed: "
        "variable reference cycle for 'E'"
    )
    assert p("a = $E\nb = $E", env={"E": "$F", "F": "1"}) == {"a": 1, "b": 1}  # no false cycle


def test_environment_value_with_a_missing_include(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an env value's includes are relative to the working directory
    e = err("x: $E", env={"E": "{include nope.conf\n}"})
    assert str(e) == (
        "variable reference for 'E' on line 1 could not be parsed: error parsing include file 'nope.conf', "
        "error opening config file: open nope.conf: no such file or directory"
    )


def test_default_env_is_os_environ(monkeypatch):
    monkeypatch.setenv("ACTOR_NATS_TEST_PORT", "5")
    assert parse("port: $ACTOR_NATS_TEST_PORT") == {"port": 5}


# ---------------------------------------------------------------------------------------------
# include


def test_include_forms(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inc.conf").write_text("port: 4222\nnested = yes\ninclude more.conf\n")
    (tmp_path / "sub" / "more.conf").write_text("more: 1\n")
    (tmp_path / "auth.conf").write_text("user: a\npassword: b\n")
    main = tmp_path / "main.conf"
    main.write_text(
        "include sub/inc.conf\n"
        "INCLUDE 'sub/more.conf'\n"
        'authorization { include "auth.conf"; timeout: 2 }\n'
        "include: not-an-include\n"
    )
    m = parse_file(str(main), env={})
    assert m == {"port": 4222, "nested": True, "more": 1, "authorization": {"user": "a", "password": "b", "timeout": 2},
                 "include": "not-an-include"}
    assert m.positions["port"] == (str(tmp_path / "sub" / "inc.conf"), 1, 0)
    assert m["authorization"].positions["password"] == (str(tmp_path / "auth.conf"), 2, 1)


def test_include_later_keys_override_and_variables_cross(tmp_path):
    (tmp_path / "vars.conf").write_text("PORT = 4222\nport = 1\n")
    main = tmp_path / "main.conf"
    main.write_text("include vars.conf\nport = $PORT\n")
    m = parse_file(str(main), env={})
    assert m == {"PORT": 4222, "port": 4222}
    assert m.used_as_variable == {"PORT"}


def test_include_absolute_path_is_joined_to_the_directory(tmp_path):
    (tmp_path / "inc.conf").write_text("a: 1\n")
    main = tmp_path / "main.conf"
    main.write_text("include /inc.conf\n")
    assert parse_file(str(main), env={}) == {"a": 1}


def test_include_errors(tmp_path):
    main = tmp_path / "main.conf"
    main.write_text("include nope.conf\n")
    e = _file_err(main)
    assert str(e) == f"error parsing include file 'nope.conf', open {tmp_path}/nope.conf: no such file or directory"
    (tmp_path / "bad.conf").write_text('a = 1\nb = "\\q"\n')
    main.write_text("include bad.conf\n")
    e = _file_err(main)
    assert str(e).startswith("error parsing include file 'bad.conf', Parse error on line 2: 'Invalid escape character 'q'.")
    assert (e.file, e.line) == (f"{tmp_path}/bad.conf", 2)
    (tmp_path / "nokey.conf").write_text("port")
    main.write_text("include nokey.conf\n")
    assert str(_file_err(main)) == f"error parsing include file 'nokey.conf', config is invalid ({tmp_path}/nokey.conf:1:4)"
    main.write_text("include ;\n")
    assert str(_file_err(main)) == f"error parsing include file '', read {tmp_path}: is a directory"


def test_include_cycle_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("include a.conf\n")
    e = _file_err(tmp_path / "a.conf")
    assert "include cycle" in str(e)


def _file_err(path):
    with pytest.raises(ConfigError) as info:
        parse_file(str(path), env={})
    return info.value


def test_parse_file_missing():
    with pytest.raises(ConfigError) as info:
        parse_file("/nonexistent/x.conf", env={})
    assert str(info.value) == "open /nonexistent/x.conf: no such file or directory"


# ---------------------------------------------------------------------------------------------
# Digest (values from nats-server -t)


@pytest.mark.parametrize(
    "text, sha",
    [
        ("port: 4222", "797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e"),
        ("port: 1\n\"", "5b27b68e52c25859a76c94f378c31d5a499ca677a46b38fb5f58ded229b59650"),
        ("port: 1k", "b4e37e69fac012708240ea673bed4137a1af43762a352f4e1a9f26a0574ce8a7"),
        ("port: 1kb", "3bfe4140eb4037871021ed50e0bffec9156ae0dbf739896cf07aabe419982d1e"),
        ("port: 1, port: 2; port = 3", "67857e91c568b1d013870fbd2922ea753bce24f36e2af13502d33bb0017158c3"),
        ('accounts: [ "A\\tB" ]', "b4d2e71e7a5fca2edd524aa44369abab38c92dddbcb6a6b1f9e4202b43221e60"),
        ('server_metadata { a: "\\x00\\x01\\x1f\\x7f", b: "<>&", c: "\u2028\u2029", d: "\\x08\\x0c", e: "\\xff", f: "é😀" }',
         "9908dbfb72c13a22435b0ffbbd71166125cf15363e002f9a725e351cf29efe3f"),
        ('server_metadata { "z": "1", "Z": "2", "é": "3", "a b": "4" }',
         "fcd952bd6386e9a0a8c32fe0ce7d272b1fc8356b13ef6e7551dcba9d1b981454"),
        ("authorization { timeout: 1.5 }", "293f744f1b86a6a20add5751335365b56ad8d6351548cbc8995340c619e2e015"),
        ("authorization { timeout: 0.0000001 }", "0cf2519d83b3592eb5f3f80f08033e24f0af96eb50a24964c7bb965f0f5003a1"),
    ],
)
def test_digest_matches_reference(tmp_path, text, sha):
    path = tmp_path / "t.conf"
    path.write_text(text)
    assert digest(str(path)) == "sha256:" + sha


def test_digest_json_of_datetime_floats_and_sorting():
    m = p("b = [true, 1.0, -0.0, 1 ]\na = 2006-01-02T15:04:05Z\nc = {z: 1, y: \"<\"}")
    expected = '{"a":"2006-01-02T15:04:05Z","b":[true,1,-0,1],"c":{"y":"\\u003c","z":1}}\n'
    import hashlib

    assert config_digest(m) == "sha256:" + hashlib.sha256(expected.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Property tests: round trips


_KEY = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8).filter(
    lambda k: k.lower() != "include"
)
_TEXT = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=12)
_SCALAR = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    _TEXT,
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6).map(float),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEY, inner, max_size=4)),
    max_leaves=12,
)
_DOC = st.dictionaries(_KEY, _VALUE, max_size=6)


def _conf_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\t\n\r":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _conf_value(v, style: int) -> str:
    if isinstance(v, bool):
        return (["true", "yes", "On", "TRUE"] if v else ["false", "no", "Off", "FALSE"])[style % 4]
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if "e" not in repr(v) else format(v, "f")
    if isinstance(v, str):
        return _conf_string(v)
    if isinstance(v, list):
        sep = [", ", "\n", " ,", ", // c\n"][style % 4]
        return "[" + sep.join(_conf_value(x, style + 1) for x in v) + " ]"
    return "{" + _conf_body(v, style + 1) + "}"


def _conf_body(d: dict, style: int) -> str:
    seps = [": ", " = ", " ", "="]
    ends = ["\n", "; ", ", ", " # comment\n"]
    return "".join(f"{k}{seps[style % 4]}{_conf_value(v, style)}{ends[(style + i) % 4]}" for i, (k, v) in enumerate(d.items()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOC, st.integers(0, 3))
def test_roundtrip_conf(doc, style):
    text = _conf_body(doc, style)
    assert p(text) == doc


def _yaml_value(v, indent: int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _conf_value(v, 0)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x, indent) for x in v) + "]"
    return "{" + ", ".join(f"{k}: {_yaml_value(x, indent)}" for k, x in v.items()) + "}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOC, st.integers(0, 3))
def test_yaml_and_conf_agree(doc, style):
    yaml_text = "".join(f"{k}: {_yaml_value(v, 0)}\n" for k, v in doc.items())
    assert parse_yaml(yaml_text, "t.yaml", env={}) == p(_conf_body(doc, style)) == doc


_NASTY = st.text(alphabet=list("ab1k.-$:=;,{}[]()'\"\\#/ \t\n\rxé"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(_NASTY)
def test_any_text_parses_or_raises_configerror(text):
    try:
        result = p(text)
    except ConfigError as e:
        assert str(e)
    else:
        assert isinstance(result, ConfMap)


# ---------------------------------------------------------------------------------------------
# YAML


def test_yaml_basic_structure_and_nats_scalars():
    text = """
port: 4222
max_payload: 1MB
sizes: [1K, 1KB, -2m]
debug: yes
off_word: OFF
ratio: 1.5
when: 2006-01-02T15:04:05Z
strings: [10s, 127.0.0.1, "1K", '007', -foo, 1.5s, null, ~, 0x10, 1e5, "$notavar"]
empty:
nested:
  cluster: {name: c1, routes: [nats://a:6222]}
"""
    m = parse_yaml(text, "t.yaml", env={})
    assert m == {
        "port": 4222, "max_payload": 2**20, "sizes": [1000, 1024, -2_000_000], "debug": True, "off_word": False,
        "ratio": 1.5, "when": dt.datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC),
        "strings": ["10s", "127.0.0.1", "1K", "007", "-foo", "1.5s", "null", "~", "0x10", "1e5", "$notavar"],
        "empty": "", "nested": {"cluster": {"name": "c1", "routes": ["nats://a:6222"]}},
    }
    assert m.positions["port"] == ("t.yaml", 2, 1)
    assert m["nested"].positions["cluster"] == ("t.yaml", 12, 3)
    assert m["sizes"].positions[1] == ("t.yaml", 4, 13)


def test_yaml_same_config_both_syntaxes():
    conf = """
    PORT = 4222
    port: $PORT
    authorization { users: [ {user: a, password: "p w"}, {user: b, password: $2a$11$xyz} ] }
    jetstream { max_mem: 1G, store_dir: "/tmp/js" }
    """
    yml = """
PORT: 4222
port: $PORT
authorization:
  users:
    - user: a
      password: "p w"
    - {user: b, password: $2a$11$xyz}
jetstream:
  max_mem: 1G
  store_dir: /tmp/js
"""
    a, b = p(conf), parse_yaml(yml, "t.yaml", env={})
    assert a == b
    assert a.used_as_variable == b.used_as_variable == {"PORT"}


def test_yaml_variables_scoping_env_and_errors():
    m = parse_yaml("a: 1\nm:\n  a: 2\n  x: $a\ny: $a\nl: [{z: $a}]\ne: $E\n", env={"E": "{k: [1, 2 ]}"})
    assert m == {"a": 1, "m": {"a": 2, "x": 2}, "y": 1, "l": [{"z": 1}], "e": {"k": [1, 2]}}
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\nb: $nope\n", "t.yaml", env={})
    assert str(info.value) == "variable reference for 'nope' on line 2 can not be found"
    assert (info.value.file, info.value.line, info.value.column) == ("t.yaml", 2, 4)
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: $E\n", env={"E": "$E"})
    assert str(info.value).endswith("variable reference cycle for 'E'")


def test_yaml_anchors_merges_and_tags():
    text = """
base: &b {a: 1, b: 2}
copy: *b
merged:
  <<: *b
  b: 3
tagged_str: !!str 10
tagged_int: !!int "5"
quoted_block: |
  line1
  line2
"""
    m = parse_yaml(text, env={})
    assert m["copy"] == {"a": 1, "b": 2}
    assert m["merged"] == {"a": 1, "b": 3}
    assert m["tagged_str"] == "10" and m["tagged_int"] == 5
    assert m["quoted_block"] == "line1\nline2\n"


def test_yaml_errors_and_edges(tmp_path):
    assert parse_yaml("", env={}) == {}
    for bad in ("- a\n- b\n", "a: [1, 2\n", "? [a]\n: 1\n"):
        with pytest.raises(ConfigError):
            parse_yaml(bad, "t.yaml", env={})
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\nb: [1, 2\n", "t.yaml", env={})
    assert info.value.file == "t.yaml" and info.value.line is not None
    path = tmp_path / "c.yml"
    path.write_text("port: 1k\n")
    assert parse_file(str(path), env={}) == {"port": 1000}
    assert digest(str(path)) == "sha256:b4e37e69fac012708240ea673bed4137a1af43762a352f4e1a9f26a0574ce8a7"


# ---------------------------------------------------------------------------------------------
# Live comparison with the reference binary


_KNOWN = {"port", "listen", "server_metadata", "server_tags", "debug", "accounts", "authorization", "ping_max"}

_REFERENCE_CASES = [
    "port: 4222",
    "port = 10k\ndebug: yes",
    'server_metadata { a: "x\\ty", b: \'raw\\q\', c: nats://h:4222, d: (\nblock\n), e: tr\\x75e }',
    'S = "s"\nserver_tags: [$S, "x"]\nport: 1KB',
    "{\n port: 1\n}\n",
    "a = 1\nb = [1,2]",
    "a = (\ntext\n)\nb = 1",
    "x { a: }",
    "x { /a: 1, 'b c' = 2 }\ny = 1kbb",
    "a: \"\\q\"",
    "m {\n a: 1\n b",
    "port: -foo",
    "a = 1\nport",
    "a = $nope",
    "é = 1; b = 2",
    "{{ port: 1 } , debug: true }",
    "accounts: [ A, 'B', \"C\" ]\nport: 1\n\"",
    "authorization { timeout: 0.0000001 }",
]


@pytest.mark.skipif(shutil.which("nats-server") is None, reason="reference nats-server not on PATH")
@pytest.mark.parametrize("text", _REFERENCE_CASES)
def test_reference_agrees(tmp_path, text):
    path = tmp_path / "t.conf"
    path.write_text(text)
    run = subprocess.run(["nats-server", "-t", "-c", str(path)], capture_output=True, text=True, timeout=20,
                         env={**os.environ, "HOME": str(tmp_path)})
    ref = (run.stdout + run.stderr).strip().removeprefix("nats-server: ")
    try:
        m = parse_file(str(path), env={})
    except ConfigError as e:
        assert ref == str(e)
        return
    unknown = sorted(f'{m.positions[k][0]}:{m.positions[k][1]}:{m.positions[k][2]}: unknown field "{k}"'
                     for k in m if k.lower() not in _KNOWN and k not in m.used_as_variable)
    if unknown:
        assert sorted(ref.splitlines()) == unknown
    else:
        assert ref == f"configuration file {path} is valid ({digest(str(path))})"
