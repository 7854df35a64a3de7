"""config/mappings.py and where mappings land in the options: the top-level block (the global
account), account blocks, YAML, the reference's error texts and positions, /configz's summary and
the reload diff. The corpus in tests/wire/configs checks the same refusals against the reference."""

from __future__ import annotations

import pytest

from actor_nats.config import reload as rl
from actor_nats.config.options import Options, OptionsError, from_map
from actor_nats.config.parser import parse, parse_yaml
from actor_nats.protocol.transform import MapDest, MappingSpec


def options(text: str) -> Options:
    return from_map(parse(text, "m.conf"), config_file="m.conf")


def refusal(text: str) -> list[str]:
    with pytest.raises(OptionsError) as e:
        options(text)
    return e.value.messages


def test_top_level_block_is_the_global_accounts():
    opts = options('mappings { foo: bar, "a.*": [{destination: "b.$1", weight: 60%}, {dest: c, weight: 40}] }')
    assert opts.accounts.mappings == (
        MappingSpec("foo", (MapDest("bar", 100),)),
        MappingSpec("a.*", (MapDest("b.$1", 60), MapDest("c", 40))),
    )
    assert opts.accounts.mappings_of("$G") == opts.accounts.mappings
    assert "accounts" in opts.explicit


def test_maps_alias_and_the_last_block_wins():
    opts = options("mappings { foo: bar }\nmaps { baz: qux }")
    assert opts.accounts.mappings == (MappingSpec("baz", (MapDest("qux", 100),)),)


def test_account_blocks_have_their_own_and_keep_the_global_ones():
    opts = options('mappings { g: h }\naccounts { A: { maps: { x: {destination: y, weight: "50%", '
                   'cluster: east} } } }')
    assert opts.accounts.mappings_of("A") == (MappingSpec("x", (MapDest("y", 50, "east"),)),)
    assert opts.accounts.mappings_of("$G") == (MappingSpec("g", (MapDest("h", 100),)),)
    assert opts.accounts.mappings_of("nobody") == ()


def test_yaml_form():
    conf = parse_yaml("mappings:\n  foo: bar\n  canary:\n    - {destination: a, weight: 90%}\n"
                      "    - {dest: b, weight: 10}\n", "m.yaml")
    opts = from_map(conf, config_file="m.yaml")
    assert opts.accounts.mappings == (MappingSpec("foo", (MapDest("bar", 100),)),
                                      MappingSpec("canary", (MapDest("a", 90), MapDest("b", 10))))


def test_yaml_errors_have_positions():
    conf = parse_yaml("mappings:\n  foo: 'bar.*'\n", "m.yaml")
    with pytest.raises(OptionsError) as e:
        from_map(conf, config_file="m.yaml")
    assert e.value.messages == ['m.yaml:2:3: Error adding mapping for "foo" to "bar.*" : invalid subject']


@pytest.mark.parametrize("text, messages", [
    ('mappings { "foo.*": "bar.$2" }',
     ['m.conf:1:12: Error adding mapping for "foo.*" to "bar.$2" : invalid mapping destination: '
      'wildcard index out of range in $2: [2]']),
    ('mappings { "foo": [{destination: a, weight: 60%}, {destination: b, weight: 50%}] }',
     ['m.conf:1:12: Error adding mapping for "foo" : total weight needs to be <= 100']),
    ('mappings { "foo..": bar }', ['m.conf:1:0: Subject "foo.." is not a valid subject']),
    ("mappings { foo: {destination: a, weight: 120%} }",
     ["m.conf:1:33: Invalid weight 120 for mapping destination"]),
    ("mappings { foo: {destination: a, cluster: c1} }",
     ['m.conf:1:11: Missing weight for mapping destination "a"']),
    ("mappings { foo: 5 }", ["m.conf:1:11: Expected an entry for the mapping destination"]),
    ("mappings { foo: {destination: a, weight: true} }",
     ["m.conf:1:33: Unknown entry type for weight of true\n"]),
    ("mappings { foo: {destination: a, weight: 5.5} }",
     ["m.conf:1:33: Unknown entry type for weight of 5.5\n"]),
    ('mappings { foo: {destination: a, weight: "abc%"} }',
     ['m.conf:1:33: Invalid weight "abc" for mapping destination']),
    ("mappings { foo: {destination: a, weight: 5, bar: 1} }",
     ['m.conf:1:44: Unknown field "bar" for mapping destination']),
    ("mappings { foo: [{destination: a}, {destination: b, weight: 50}] }",
     ['m.conf:1:33: Missing weight for mapping destination "a"']),
    ("mappings: 5", ["m.conf:1:0: interface conversion: interface {} is int64, not map[string]interface {}"]),
    ('accounts { A: { mappings: { "x..": "y" } } }', ['m.conf:1:16: Subject "x.." is not a valid subject']),
])
def test_refusals_as_the_reference(text, messages):
    assert refusal(text) == messages


def test_a_type_assertion_failure_ends_the_block():
    """The reference recovers a failed type assertion for the whole block: what follows it is
    not read (here: the second mapping's error is not reported)."""
    messages = refusal("mappings {\n  foo: {destination: 5, weight: 5}\n  \"bar..\": x\n}")
    assert messages == ["m.conf:2:3: interface conversion: interface {} is int64, not string"]


def test_every_error_of_the_block_is_reported():
    messages = refusal('mappings {\n  a: "b.*"\n  "c..": d\n  e: {destination: f}\n}')
    assert messages == ['m.conf:2:3: Error adding mapping for "a" to "b.*" : invalid subject',
                        'm.conf:1:0: Subject "c.." is not a valid subject',
                        'm.conf:4:3: Missing weight for mapping destination "f"']


def test_summary_for_configz():
    opts = options("mappings { foo: bar }\naccounts { A: { mappings: { x: y } } }")
    summary = opts.accounts.summary()
    assert summary["mappings"] == {"foo": [["bar", 100, ""]]}
    assert summary["accounts"]["A"]["mappings"] == {"x": [["y", 100, ""]]}


def test_a_mapping_change_is_an_accounts_change_that_reloads_quietly():
    old = options("mappings { foo: bar }")
    for text in ("mappings { foo: baz }", "", "accounts { A: { mappings: { x: y } } }"):
        changes = rl.diff(old, options(text))
        assert [c.name for c in changes] == ["accounts"]
        assert rl.refused(changes) is None
        assert changes[0].applied_lines() == []  # only the lines every reload logs
    assert rl.diff(old, options("mappings { foo: bar }")) == []
