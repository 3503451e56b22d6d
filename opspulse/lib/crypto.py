"""AES-GCM encryption for credentials at rest, under a key ring that can rotate.

A ciphertext is "v1:<kid>:<base64(nonce || ciphertext+tag)>". The associated data
binds it to its row and column, so a ciphertext copied onto another store's row
fails to decrypt. New values are encrypted with the first key of the ring; every key
in the ring can decrypt, so a new key is added first, values re-encrypted with
`manage.py rotate_field_keys`, and only then is the old key removed. Every place a
ciphertext is stored is registered in opspulse.lib.encrypted_fields so that the
rotation reaches it.
"""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured

VERSION = "v1"


class DecryptionError(Exception):
    pass


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """Parse "kid:base64key,…" into an ordered {kid: key}; the first entry is current."""
    ring: dict[str, bytes] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kid, _, encoded = item.partition(":")
        try:
            key = base64.urlsafe_b64decode(encoded)
        except ValueError as exc:
            raise ImproperlyConfigured(f"field key {kid!r} is not base64") from exc
        if len(key) != 32 or not kid or ":" in kid:
            raise ImproperlyConfigured(f"field key {kid!r} must be a 32-byte key with a name")
        ring[kid] = key
    if not ring:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds no key")
    return ring


def generate_key_entry(kid: str | None = None) -> str:
    kid = kid or f"k{secrets.token_hex(4)}"
    return f"{kid}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def development_key_ring(path: Path) -> str:
    """Return the development key ring, creating it under ./var/ on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_key_entry("dev1"))
        path.chmod(0o600)
    return path.read_text().strip()


@lru_cache(maxsize=8)
def _ring(spec: str) -> dict[str, bytes]:
    return parse_key_ring(spec)


def key_ring() -> dict[str, bytes]:
    from django.conf import settings

    return _ring(settings.FIELD_ENCRYPTION_KEYS)


def encrypt(plaintext: str, *, associated_data: str, ring: dict[str, bytes] | None = None) -> str:
    ring = ring or key_ring()
    kid, key = next(iter(ring.items()))
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), associated_data.encode())
    return f"{VERSION}:{kid}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, associated_data: str, ring: dict[str, bytes] | None = None) -> str:
    ring = ring or key_ring()
    try:
        version, kid, encoded = token.split(":", 2)
        raw = base64.b64decode(encoded)
    except ValueError as exc:
        raise DecryptionError("malformed ciphertext") from exc
    if version != VERSION:
        raise DecryptionError(f"unknown ciphertext version {version!r}")
    key = ring.get(kid)
    if key is None:
        raise DecryptionError(f"key {kid!r} is not in the key ring")
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], associated_data.encode()).decode()
    except Exception as exc:  # cryptography raises InvalidTag
        raise DecryptionError("ciphertext does not match its key or row") from exc


def current_kid(token: str) -> str:
    return token.split(":", 2)[1]
