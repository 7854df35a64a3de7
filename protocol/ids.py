"""Identifiers the protocol shows: the server id (an nkey-style public key, 'N' + 55 chars) and
the 15-character nonce. Pure functions; randomness comes from `os.urandom` unless given."""

from __future__ import annotations

import base64
import os

import nkeys


def server_id(raw: bytes | None = None) -> str:
    """A server public nkey: base32(prefix 'N' byte + 32 bytes + CRC16), unpadded (56 chars)."""
    raw = raw if raw is not None else os.urandom(32)
    body = bytes([nkeys.PREFIX_BYTE_SERVER]) + raw
    crc = nkeys.crc16_checksum(body)
    full = body + crc  # nkeys returns the CRC16 as two little-endian bytes
    return base64.b32encode(full).decode().rstrip("=")


def nonce(raw: bytes | None = None) -> str:
    """11 random bytes, base64 raw-URL: 15 characters, as the reference's INFO nonce."""
    raw = raw if raw is not None else os.urandom(11)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
