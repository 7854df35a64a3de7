"""The `mappings` (or `maps`) block: subject mappings of the global account (top level) or of an
account (inside `accounts { A: { mappings: {...} } }`), typed and checked as the reference does.

    mappings {
      "orders.new": "orders.v2.new"                          # literal
      "events.*.*": "ev.$2.{{wildcard(1)}}"                  # wildcards and functions
      "canary": [{destination: "canary.a", weight: 90%},     # weighted; the rest (if below
                 {dest: "canary.b", weight: 10}]             # 100%) keeps its subject
    }

Owns turning that block into `MappingSpec`s (protocol/transform.py) with the reference's error
texts and positions: an invalid source is reported at the block's key, a destination problem at
the mapping's key (or the array element's, or the destination field's, as the reference's
tokens place them), and what the reference reports through a recovered type assertion
(`interface conversion: ...`) ends the block there, as it does. Whether a destination can be
built is protocol/transform.py's `Mapping`, so the config refuses exactly what the runtime could
not apply. Pure: parsed config values in, frozen specs and messages out.
"""

from __future__ import annotations

from ..protocol.subjects import valid_subject
from ..protocol.trace import go_quote
from ..protocol.transform import MapDest, Mapping, MappingSpec, TransformError
from .where import go_type, item_pos as _item_pos, pos as _pos

_INT = frozenset("0123456789")


class _Panic(Exception):
    """What the reference reports from a failed type assertion: the rest of the block is not read."""


def parse_mappings(value, parent=None, key: str = "") -> tuple[tuple, list[str]]:
    """(MappingSpecs, error messages with positions) for one mappings block."""
    where = _pos(parent, key)
    if not isinstance(value, dict):
        return (), [where + _conversion(value, "map[string]interface {}")]
    specs: list[MappingSpec] = []
    errors: list[str] = []
    for subject, mv in value.items():
        if not valid_subject(subject.encode("utf-8", "surrogateescape")):
            errors.append(where + f"Subject {_q(subject)} is not a valid subject")
            continue
        at = _pos(value, subject)
        try:
            if isinstance(mv, str):
                dests = (MapDest(mv, 100),)
                failed = _check(subject, dests)
                if failed:
                    errors.append(at + f"Error adding mapping for {_q(subject)} to {_q(mv)} : {failed}")
                    continue
            else:
                if isinstance(mv, list):
                    parsed = [_dest(item, _item_pos(mv, i), errors) for i, item in enumerate(mv)]
                    dests = tuple(d for d in parsed if d is not None)
                else:
                    d = _dest(mv, at, errors)
                    if d is None:
                        continue
                    dests = (d,)
                failed = _check(subject, dests)
                if failed:
                    errors.append(at + f"Error adding mapping for {_q(subject)} : {failed}")
                    continue
        except _Panic as e:
            errors.append(str(e))
            break
        specs.append(MappingSpec(subject, dests))
    return tuple(specs), errors


def _check(subject: str, dests: tuple) -> str:
    try:
        Mapping(subject, dests)
    except TransformError as e:
        return str(e)
    return ""


def _dest(item, at: str, errors: list) -> MapDest | None:
    """One destination map (`{destination, weight, cluster}`); None after an error."""
    if not isinstance(item, dict):
        errors.append(at + "Expected an entry for the mapping destination")
        return None
    subject, weight, cluster = "", None, ""
    for k, v in item.items():
        lk = k.lower()
        here = _pos(item, k)
        if lk in ("dest", "destination"):
            if not isinstance(v, str):
                raise _Panic(at + _conversion(v, "string"))
            subject = v
        elif lk == "weight":
            if isinstance(v, str):
                text = v[:-1] if v.endswith("%") else v
                if not _go_atoi_ok(text):
                    errors.append(here + f"Invalid weight {_q(text)} for mapping destination")
                    return None
                w = int(text)
            elif isinstance(v, int) and not isinstance(v, bool):
                w = v
            else:
                errors.append(here + f"Unknown entry type for weight of {_go_v(v)}\n")
                return None
            if not 0 <= w <= 100:
                errors.append(here + f"Invalid weight {w} for mapping destination")
                return None
            weight = w
        elif lk == "cluster":
            if not isinstance(v, str):
                raise _Panic(at + _conversion(v, "string"))
            cluster = v
        else:
            errors.append(here + f"Unknown field {_q(k)} for mapping destination")
            return None
    if weight is None:
        errors.append(at + f"Missing weight for mapping destination {_q(subject)}")
        return None
    return MapDest(subject, weight, cluster)


def _go_atoi_ok(text: str) -> bool:
    """Go's strconv.Atoi would take it (an optional sign, decimal digits, fits in 64 bits)."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return bool(digits) and set(digits) <= _INT and -(2**63) <= int(text) < 2**63


def _q(text: str) -> str:
    return go_quote(text.encode("utf-8", "surrogateescape"))


def _conversion(value, want: str) -> str:
    return f"interface conversion: interface {{}} is {go_type(value)}, not {want}"


def _go_v(value) -> str:
    """Go's %v of a config value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    if hasattr(value, "strftime"):  # a time: Go's Time.String() (the config's times are UTC)
        frac = f".{value.microsecond:06d}".rstrip("0").rstrip(".") if value.microsecond else ""
        return value.strftime("%Y-%m-%d %H:%M:%S") + frac + " +0000 UTC"
    return str(value)


def summary(specs: tuple) -> dict:
    """{source: [[destination, weight, cluster], ...]} for /configz."""
    return {s.src: [[d.subject, d.weight, d.cluster] for d in s.dests] for s in specs}


__all__ = ["parse_mappings", "summary"]
