"""Encryption at rest for the file store: key derivation and one AEAD per stream.

Owns the cipher names ("chachapoly" = ChaCha20-Poly1305, "aes" = AES-256-GCM), the key
derivation (HKDF-SHA256 of the configured key, with the stream directory's name as info, so
two streams never share a key), and sealing/opening byte strings with a random 12-byte nonce
stored in front of the ciphertext. Pure: no files.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .base import StoreError

NONCE = 12
TAG = 16

_CIPHERS = {
    "chachapoly": ChaCha20Poly1305,
    "chacha": ChaCha20Poly1305,
    "chacha20": ChaCha20Poly1305,
    "chacha20poly1305": ChaCha20Poly1305,
    "aes": AESGCM,
    "aesgcm": AESGCM,
    "aes-gcm": AESGCM,
}


class DecryptError(Exception):
    """A sealed blob failed authentication (wrong key, or damage the checksum missed)."""


class Sealer:
    def __init__(self, cipher: str, key: bytes | str, context: str):
        cls = _CIPHERS.get(cipher.lower())
        if cls is None:
            raise StoreError(f"unknown cipher {cipher!r} (use 'chachapoly' or 'aes')")
        if isinstance(key, str):
            key = key.encode()
        if not key:
            raise StoreError("encryption needs a key")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"actor-nats store",
                       info=b"stream " + context.encode()).derive(key)
        self.cipher = cipher.lower()
        self._aead = cls(derived)

    def seal(self, plain: bytes, aad: bytes | None = None) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plain, aad)

    def open(self, blob: bytes, aad: bytes | None = None) -> bytes:
        if len(blob) < NONCE + TAG:
            raise DecryptError("sealed blob too short")
        try:
            return self._aead.decrypt(bytes(blob[:NONCE]), bytes(blob[NONCE:]), aad)
        except InvalidTag:
            raise DecryptError("authentication failed (wrong key?)") from None
