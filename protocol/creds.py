"""`.creds` files and decorated JWTs/seeds, as nsc writes them and the reference reads them.

Owns: `format_user_creds(jwt, seed)` (the exact text nsc writes: a `NATS USER JWT` block, the
IMPORTANT banner, a `USER NKEY SEED` block), `decorate_jwt(jwt, kind)`, `decorate_seed(seed)`,
and the parsers `parse_jwt(text)` (first block, or the whole text when undecorated, as an
operator file may be) and `parse_seed(text)` / `parse_user_seed(text)` with the reference
library's errors (`no nkey seed found`, `doesn't contain a seed nkey`, `doesn't contain an user
seed nkey`). `parse_creds(text)` returns both halves of a user creds file.

Pure: text in, text out. nats-py's `user_credentials=` reads what this writes.
"""

from __future__ import annotations

import re

from .jwt import JWTError, public_key

# a block: a line of ≥3 dashes with a title, one token line, a closing line of ≥3 dashes
_BLOCK = re.compile(r"\s*(?:-{3,}[^\n]*-{3,}\r?\n)([\w\-.=]+)(?:\r?\n-{3,}[^\n]*-{3,}(?:\r?\n|\Z))")

_BANNER = ("************************* IMPORTANT *************************\n"
           "NKEY Seed printed below can be used to sign and prove identity.\n"
           "NKEYs are sensitive and should be treated as secrets.\n\n")
_SEED_KINDS = {"SU": "USER", "SA": "ACCOUNT", "SO": "OPERATOR"}


class CredsError(ValueError):
    """A creds file that cannot be used; str() is the reference library's text."""


def decorate_jwt(token: str, kind: str = "user") -> str:
    kind = kind.upper()
    return f"-----BEGIN NATS {kind} JWT-----\n{token}\n------END NATS {kind} JWT------\n\n"


def decorate_seed(seed: str) -> str:
    seed = seed.strip()
    kind = _SEED_KINDS.get(seed[:2])
    if kind is None:
        raise CredsError("seed is not an operator, account or user seed")
    return (f"{_BANNER}-----BEGIN {kind} NKEY SEED-----\n{seed}\n------END {kind} NKEY SEED------\n\n"
            "*************************************************************\n")


def format_user_creds(token: str, seed: str) -> str:
    """The `.creds` text for a user JWT and its seed (the seed must be the JWT's subject's)."""
    if not seed.strip().startswith("SU"):
        raise CredsError("nkey seed is not an user seed")
    return decorate_jwt(token, "user") + decorate_seed(seed)


def _blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def parse_jwt(text: str) -> str:
    """The JWT of a decorated file (the first block), or the text itself when undecorated."""
    blocks = _blocks(text)
    return blocks[0] if blocks else text.strip()


def parse_seed(text: str) -> str:
    """The seed of a decorated file (second block), else the first line starting SO/SA/SU."""
    blocks = _blocks(text)
    seed = None
    if len(blocks) > 1:
        seed = blocks[1]
    else:
        for line in text.split("\n"):
            if line.strip()[:2] in _SEED_KINDS:
                seed = line.strip()
                break
    if seed is None:
        raise CredsError("no nkey seed found")
    if seed[:2] not in _SEED_KINDS:
        raise CredsError("doesn't contain a seed nkey")
    try:
        public_key(seed)
    except JWTError:
        raise CredsError("invalid seed") from None
    return seed


def parse_user_seed(text: str) -> str:
    seed = parse_seed(text)
    if not seed.startswith("SU"):
        raise CredsError("doesn't contain an user seed nkey")
    return seed


def parse_creds(text: str) -> tuple[str, str]:
    """(user JWT, user seed) of a creds file."""
    return parse_jwt(text), parse_user_seed(text)
