"""The HMAC signature of socialcare's webhooks, both ways: `X-Signature: sha256=<hex>`."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Signature"


def sign(body: bytes, secret: str) -> str:
    """Return the X-Signature value of a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, given: str | None) -> bool:
    """Tell whether `given` is the body's signature (in constant time)."""
    return hmac.compare_digest((given or "").encode(), sign(body, secret).encode())
