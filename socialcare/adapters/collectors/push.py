"""What pushed sources (listening platforms, Meta) hand us, and how we refuse it.

The HTTP handler turns a request into a `Pushed` and a receiver turns that into
mentions, or raises `Refused` with the status and the reason the sender gets back.
Receivers know nothing of aiohttp, so they are tested with plain values.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Pushed:
    """One request from a pushed source."""

    query: Mapping[str, str]
    headers: Mapping[str, str]  # looked up case-insensitively by the handler's mapping
    body: bytes


class Refused(Exception):
    """The request is not taken; `status` and the message go back to the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def hmac_sha256(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of a body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Compare a secret or a signature in constant time."""
    return hmac.compare_digest((given or "").encode(), expected.encode())
