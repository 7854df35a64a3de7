"""The `jetstream` config block, the top-level `store_dir`, and the -js / -sd flags, as the reference
reads them.

Owns `JetStreamOptions` (what the JetStream supervisor is started with) and `parse_jetstream`,
which turns the block (or `jetstream: enabled|disabled|true|false`) into it with the reference's
error messages. Keys the reference knows that actor-nats does not implement are refused by name,
never ignored. Pure: no actors, no filesystem (defaults that depend on the machine, such as 75% of
memory and disk, are computed by actors/jetstream.py at start).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SYNC_INTERVAL_DEFAULT = 120.0  # seconds ("2m")
CIPHERS = {"chachapoly": "chachapoly", "chacha": "chachapoly", "chachapoly1305": "chachapoly",
           "aes": "aes", "aes-gcm": "aes", "aesgcm": "aes"}


@dataclass(frozen=True)
class JetStreamOptions:
    enabled: bool = False
    store_dir: str = ""  # the `jetstream/` folder is created under it (default: the temp dir)
    max_memory_store: int = -1  # -1: 75% of the machine's memory, decided at start
    max_file_store: int = -1  # -1: 75% of the free disk under store_dir, decided at start
    domain: str = ""
    cipher: str = ""  # "" (no encryption at rest), "chachapoly" or "aes"
    key: str = ""
    sync_interval: float = SYNC_INTERVAL_DEFAULT  # seconds between fsyncs
    sync_always: bool = False  # sync_interval: always
    max_outstanding_catchup: int = 0
    unique_tag: str = ""
    strict: bool = True

    def with_(self, **changes) -> "JetStreamOptions":
        return replace(self, **changes)


class JetStreamConfigError(Exception):
    """str() is the reference's message (without the position; the caller adds it). `key` is
    the key inside the block the error is about (None: the `jetstream` key itself)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


# keys the reference accepts in the block that actor-nats does not implement yet
NOT_YET = ("limits", "prev_key", "prev_ek", "prev_encryption_key", "extension_hint",
           "request_queue_limit", "max_buffered_size", "max_buffered_msgs", "tpm", "tpm_keys_file",
           "tpm_encryption_key", "tpm_srk_password", "tpm_pcr", "meta_compact", "meta_compact_size",
           "meta_compact_sync", "max_catchup")


def parse_jetstream(value, base: JetStreamOptions | None = None) -> JetStreamOptions:
    """The top-level `jetstream` value: a bool, "enabled"/"disabled", or a block."""
    opts = base or JetStreamOptions()
    if isinstance(value, bool):
        return opts.with_(enabled=value)
    if isinstance(value, str):
        v = value.lower()
        if v in ("enabled", "enable"):
            return opts.with_(enabled=True)
        if v in ("disabled", "disable"):
            return opts.with_(enabled=False)
        raise JetStreamConfigError(f"Expected 'enabled' or 'disabled' for string value, got '{value}'")
    if not isinstance(value, dict):
        raise JetStreamConfigError(f"Expected map, bool or string to define JetStream, got {type(value).__name__}")
    changes: dict = {"enabled": True}
    used_as_variable = getattr(value, "used_as_variable", set())
    for key, v in value.items():
        lk = key.lower()
        if key in used_as_variable:
            continue  # a block-local variable, not a setting
        try:
            if lk in ("store", "store_dir", "storedir"):
                changes["store_dir"] = _str(v)
            elif lk in ("max_memory_store", "max_mem_store", "max_mem"):
                changes["max_memory_store"] = _size("max_mem_store", v)
            elif lk in ("max_file_store", "max_file"):
                changes["max_file_store"] = _size("max_file_store", v)
            elif lk == "domain":
                changes["domain"] = _str(v)
            elif lk in ("enable", "enabled"):
                if not isinstance(v, bool):
                    raise JetStreamConfigError(f"Expected bool for {key}")
                changes["enabled"] = v
            elif lk in ("key", "ek", "encryption_key"):
                changes["key"] = _str(v)
            elif lk == "cipher":
                c = CIPHERS.get(str(v).lower())
                if c is None:
                    raise JetStreamConfigError(f'Unknown cipher type: "{v}"')
                changes["cipher"] = c
            elif lk in ("sync", "sync_interval"):
                if isinstance(v, str) and v.lower() == "always":
                    changes["sync_always"] = True
                    changes["sync_interval"] = SYNC_INTERVAL_DEFAULT
                elif isinstance(v, str):
                    from .options import parse_duration

                    try:
                        changes["sync_interval"] = parse_duration(v)
                    except ValueError as e:
                        raise JetStreamConfigError(f"error parsing {lk}: {e}") from None
                else:
                    raise JetStreamConfigError(
                        f'invalid use of field "{lk}": {lk} should be converted to a duration')
            elif lk == "max_outstanding_catchup":
                changes["max_outstanding_catchup"] = _size("max_outstanding_catchup", v)
            elif lk == "unique_tag":
                changes["unique_tag"] = _str(v).lower().strip()
            elif lk == "strict":
                if not isinstance(v, bool):
                    raise JetStreamConfigError(f"Expected bool for {key}")
                changes["strict"] = v
            elif lk in NOT_YET:
                raise JetStreamConfigError(f'"jetstream.{key}" is not supported by actor-nats yet')
            else:
                raise JetStreamConfigError(f'unknown field "{key}"')
        except JetStreamConfigError as e:
            e.key = key
            raise
    return opts.with_(**changes)


def _str(v) -> str:
    if not isinstance(v, str):
        raise JetStreamConfigError(f"interface conversion: interface {{}} is {type(v).__name__}, not string")
    return v


def _size(name: str, v) -> int:
    """An integer (the conf parser already applied K/M/G suffixes) or a string such as "2G"
    (the reference's getStorageSize: K, M, G, T are powers of 1024)."""
    if isinstance(v, bool):
        raise JetStreamConfigError(f"{name} interface conversion: interface {{}} is bool, not int64")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        s = v.strip()
        shift = {"K": 10, "M": 20, "G": 30, "T": 40}.get(s[-1:].upper())
        num = s[:-1] if s[-1:].isalpha() else s
        try:
            if not num.lstrip("+-").isdigit():
                raise ValueError(num)
            return int(num) << (shift or 0)
        except ValueError:
            raise JetStreamConfigError(f'{name} strconv.ParseInt: parsing "{num}": invalid syntax') from None
    raise JetStreamConfigError(f"{name} interface conversion: interface {{}} is {type(v).__name__}, not int64")


def friendly_bytes(n: int) -> str:
    """The reference's friendlyBytes (startup log: "17.66 GB")."""
    if n < 1024:
        return f"{n} B"
    import math

    exp = int(math.log(n) / math.log(1024))
    return f"{n / 1024 ** exp:.2f} {'KMGTPE'[exp - 1]}B"
