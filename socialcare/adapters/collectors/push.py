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


HUB_SIGNATURE = "X-Hub-Signature-256"


def hub_challenge(query: Mapping[str, str], verify_token: str) -> str:
    """Answer Meta's check of a webhook endpoint with its hub.challenge, or refuse it."""
    if query.get("hub.mode") != "subscribe" or not query.get("hub.challenge"):
        raise Refused(400, "expected hub.mode=subscribe and a hub.challenge")
    if not same(query.get("hub.verify_token"), verify_token):
        raise Refused(403, "hub.verify_token does not match")
    return query["hub.challenge"]


def check_hub_signature(pushed: Pushed, app_secret: str) -> None:
    """Refuse a Meta delivery that the app secret did not sign (X-Hub-Signature-256)."""
    if not same(pushed.headers.get(HUB_SIGNATURE),
                "sha256=" + hmac_sha256(app_secret, pushed.body)):
        raise Refused(401, f"bad or missing {HUB_SIGNATURE} signature")


def hmac_sha256(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of a body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Compare a secret or a signature in constant time."""
    return hmac.compare_digest((given or "").encode(), expected.encode())
