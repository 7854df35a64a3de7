"""Load a config file into Options: parse (NATS format or YAML), convert and validate, then
apply command-line overrides on top (flags win, as in the reference). Pure: reads the file,
touches nothing else.
"""

from __future__ import annotations

import hashlib

from .options import Options, OptionsError, from_map, validate


def load(path: str = "", overrides: dict | None = None, check_only: bool = False,
         warnings: list | None = None) -> Options:
    """Options from the file (if any) with `overrides` (command-line flags) applied on top.
    Unless `check_only` (`-t`), also the checks the reference makes when the server starts.

    What the reference only warns about when it starts (an empty file) is an error for `-t`
    and is appended to `warnings` otherwise."""
    if path:
        from .parser import parse_file

        conf = parse_file(path)
        if not conf:
            message = f"{path}: config has no values or is empty"
            if check_only:
                raise OptionsError(message)
            if warnings is not None:
                warnings.append(message)
        opts = from_map(conf, config_file=path, check_only=check_only, warnings=warnings)
    else:
        opts = Options()
    if overrides:
        opts = opts.with_(**overrides)
    if not check_only:
        validate(opts)
    return opts


def digest(path: str) -> str:
    """The `sha256:...` digest shown by `-t` (and later /varz config_digest)."""
    try:
        from .parser import digest as parser_digest

        return parser_digest(path)
    except ImportError:
        with open(path, "rb") as f:
            return "sha256:" + hashlib.sha256(f.read()).hexdigest()
