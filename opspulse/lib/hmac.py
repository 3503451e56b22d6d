"""Constant-time webhook signature checks."""

from __future__ import annotations

import base64
import hashlib
import hmac


def base64_hmac_sha256(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_base64_hmac_sha256(body: bytes, signature: str, secrets: list[str]) -> bool:
    """True if `signature` is base64(HMAC-SHA256(body)) under any of `secrets`.

    Several secrets are accepted because a platform keeps signing with the old secret
    for a while after a rotation.
    """
    if not signature:
        return False
    given = signature.strip().encode()
    matched = False
    for secret in secrets:
        if secret:
            expected = base64_hmac_sha256(body, secret).encode()
            matched |= hmac.compare_digest(expected, given)
    return matched
