"""Differential `-t -c FILE` checks: every config file in tests/wire/configs/ is accepted or
refused by actor-nats exactly when the reference `nats-server -t -c FILE` accepts or refuses it.

The corpus (configs/valid/*.conf: the reference accepts; configs/invalid/*.conf: it refuses;
configs/include/: fragments that cases include, not cases themselves) covers the grammar and
its quirks, every key actor-nats implements with good and bad values, empty blocks, and files
using features actor-nats does not implement yet. Per file, both binaries are run:

- the reference refuses it: actor-nats refuses it too, with the identical message after the
  `nats-server: ` / `actor-nats: ` prefix (file:line:col included). The reference reports all
  errors of a file in Go map order (random), so lines are compared as a sorted list. A few
  messages cannot reasonably match; they are in ALLOWED_DIFFERENCES with the reason.
- the reference accepts it: actor-nats accepts it with the identical `configuration file ...
  is valid (sha256:...)` line, unless the file configures a feature actor-nats does not support
  yet (a top-level key of UNSUPPORTED with a value that configures something): then actor-nats
  must refuse with `FILE:LINE:COL: "<key>" is not supported by actor-nats yet` for the first
  such key. Empty blocks (`{}`, `[]`) and `jetstream: false|disabled` configure nothing.

Where actor-nats diverges from the reference today, the case is xfail(strict=True) with the
divergence spelled out in DIVERGENCES, so fixing it turns the case into an XPASS failure that
asks for the marker to be removed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from actor_nats.config.options import NOT_YET
from tests.servers import reference_binary

CONFIGS = Path(__file__).resolve().parent / "configs"

# Top-level keys actor-nats refuses by name: the server's own list, so the two cannot drift.
UNSUPPORTED = frozenset(NOT_YET)
# Values that configure nothing (whitespace and comments removed, compared in lower case).
CONFIGURES_NOTHING = frozenset(("{}", "[]", "false", "disabled"))

# Environment for the cases that use variables from the environment (both binaries get it).
ENV = {
    "valid/env_fallback.conf": {
        "AN_CFG_PORT": "4333",            # parsed as a config value: an int
        "AN_CFG_TRACE": "true",           # a bool
        "AN_CFG_NAME": "srv-env",         # a string
        "AN_CFG_NESTED": "$AN_CFG_PORT",  # an env value referring to another env variable
    },
    "invalid/env_cycle.conf": {"AN_CFG_CYC1": "$AN_CFG_CYC2", "AN_CFG_CYC2": "$AN_CFG_CYC1"},
    "invalid/env_parse_error.conf": {"AN_CFG_BAD": "[1,"},
    "invalid/env_map_wrong_type.conf": {"AN_CFG_MAP": "{a: 1}"},
}

# Reference refusals whose message actor-nats cannot reasonably reproduce: the reference refuses
# because of what is inside a block actor-nats does not implement (it validates the block's
# fields, loads certificates, ...). actor-nats still refuses the file, naming the block:
# the expected message is the not-supported one for that key.
ALLOWED_DIFFERENCES = {
    # reference: FILE:1:10: unknown field "foo"
    "invalid/cluster_unknown_field.conf": "unknown field inside cluster {}",
    # reference: FILE:1:10: cluster name cannot contain spaces
    "invalid/cluster_name_spaces.conf": "cluster name checked inside cluster {}",
    # reference: FILE:1:0: error parsing X509 certificate/key pair: open ...: no such file or directory
    "invalid/tls_missing_cert_files.conf": "the reference loads the certificate files",
}
# Refused by the reference, accepted by actor-nats on purpose: `debug { allow_kill: true }` is
# actor-nats' own block (lets `actor-nats kill` crash actors); the reference wants a bool
# (FILE:1:0: interface conversion: interface {} is map[string]interface {}, not bool).
ACTOR_EXTENSIONS = {"invalid/debug_block_extension.conf"}

# Where actor-nats diverges from the reference today (reference output / actor-nats output).
DIVERGENCES: dict[str, str] = {
}


def _cases():
    for folder in ("valid", "invalid"):
        for path in sorted((CONFIGS / folder).glob("*.conf")):
            name = f"{folder}/{path.name}"
            marks = ()
            if name in DIVERGENCES:
                marks = (pytest.mark.xfail(strict=True, reason=DIVERGENCES[name]),)
            yield pytest.param(name, id=name, marks=marks)


def _run(argv: list[str], name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **ENV.get(name, {}))
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)


@lru_cache(maxsize=None)
def reference(name: str) -> tuple[int, str]:
    proc = _run([reference_binary(), "-t", "-c", str(CONFIGS / name)], name)
    return proc.returncode, _strip(proc.stdout + proc.stderr, "nats-server: ")


def actor(name: str) -> tuple[int, str]:
    proc = _run([sys.executable, "-m", "actor_nats", "-t", "-c", str(CONFIGS / name)], name)
    return proc.returncode, _strip(proc.stdout + proc.stderr, "actor-nats: ")


def _strip(out: str, prefix: str) -> str:
    out = out.strip()
    return out[len(prefix):] if out.startswith(prefix) else out


def _lines(message: str) -> list[str]:
    return sorted(l for l in message.splitlines() if l.strip())


def first_unsupported(path: Path) -> tuple[str, int, int, str] | None:
    """(file, line, column, key) of the first top-level key in UNSUPPORTED whose value
    configures something, following `include`s; None if there is none.

    A small scanner for this corpus, not a parser: top-level keys are the lines that start in
    column 0 outside any brace or bracket (the corpus keeps nested keys indented and does not
    brace-wrap files that use unsupported features). The column is the reference's: 0 for a
    key on line 1, 1 on later lines."""
    lines = path.read_text().splitlines()
    depth = 0
    i = 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        if depth == 0 and line[:1] not in ("", " ", "\t", "#", "/", "{", "}"):
            inc = re.match(r"(?i)include\s+(['\"]?)(.+?)\1\s*$", line)
            if inc:
                found = first_unsupported(Path(os.path.normpath(path.parent / inc.group(2))))
                if found:
                    return found
                continue
            m = re.match(r"\"([^\"]*)\"|'([^']*)'|([^\s:=]+)", line)
            key = next(g for g in m.groups() if g is not None)
            if key.lower() in UNSUPPORTED:
                value = re.sub(r"^\s*[:=]?\s*", "", line[m.end():])
                j = i
                while _balance(value) > 0 and j < len(lines):
                    value += "\n" + lines[j]
                    j += 1
                if _configures_something(value):
                    return str(path), lineno, 0 if lineno == 1 else 1, key
        depth += _balance(line)
    return None


def _uncomment(text: str) -> str:
    out = []
    for line in text.splitlines():
        line = re.sub(r"\"[^\"]*\"|'[^']*'", '""', line)  # brackets inside strings do not count
        out.append(re.split(r"#|//", line, maxsplit=1)[0])
    return "\n".join(out)


def _balance(text: str) -> int:
    t = _uncomment(text)
    return t.count("{") + t.count("[") - t.count("}") - t.count("]")


def _configures_something(value: str) -> bool:
    return re.sub(r"\s+", "", _uncomment(value)).lower() not in CONFIGURES_NOTHING


def _not_supported(found: tuple[str, int, int, str]) -> str:
    file, line, col, key = found
    return f'{file}:{line}:{col}: "{key}" is not supported by actor-nats yet'


@pytest.mark.parametrize("name", list(_cases()))
def test_check_config_file(name):
    path = CONFIGS / name
    ref_rc, ref_out = reference(name)
    act_rc, act_out = actor(name)
    # The corpus says what the reference does; this keeps the folders honest.
    assert (ref_rc == 0) == name.startswith("valid/"), f"reference says: {ref_out}"

    if ref_rc != 0:
        if name in ACTOR_EXTENSIONS:
            assert act_rc == 0, act_out
            assert act_out.startswith(f"configuration file {path} is valid (sha256:"), act_out
        elif name in ALLOWED_DIFFERENCES:
            found = first_unsupported(path)
            assert found is not None, "allow-listed files use a block actor-nats does not support"
            assert act_rc != 0, act_out
            assert act_out == _not_supported(found)
        else:
            assert act_rc != 0, f"actor-nats accepts what the reference refuses: {ref_out}"
            assert _lines(act_out) == _lines(ref_out)
        return

    found = first_unsupported(path)
    if found is not None:
        assert act_rc != 0, act_out
        assert act_out == _not_supported(found)
    else:
        assert ref_out.startswith(f"configuration file {path} is valid (sha256:"), ref_out
        assert act_rc == 0, act_out
        assert act_out == ref_out


def _unsupported_cases():
    for folder in ("valid",):
        for path in sorted((CONFIGS / folder).glob("*.conf")):
            if first_unsupported(path) is not None:
                yield pytest.param(f"{folder}/{path.name}", id=f"{folder}/{path.name}")


@pytest.mark.parametrize("name", list(_unsupported_cases()))
def test_unsupported_features_parse_as_the_reference(name):
    """Files actor-nats refuses for a feature it lacks still hold grammar (arrays of maps,
    bcrypt literals, block-scoped variables, includes) that its parser must read as the
    reference does: the parser's digest of the file equals the reference's."""
    from actor_nats.config.parser import digest

    ref_rc, ref_out = reference(name)
    assert ref_rc == 0, ref_out
    assert ref_out == f"configuration file {CONFIGS / name} is valid ({digest(CONFIGS / name)})"
