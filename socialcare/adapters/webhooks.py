"""POST signed JSON to other systems (the second line's ticket systems)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from socialcare.adapters.collectors.signature import HEADER, sign
from socialcare.bot.ports import DeliveryFailed

TIMEOUT = aiohttp.ClientTimeout(total=15)


class SignedWebhookSender:
    """POST JSON signed with `X-Signature: sha256=<hex HMAC-SHA256>` of the body."""

    def __init__(self, session: aiohttp.ClientSession, secret: str) -> None:
        self._session = session
        self._secret = secret

    async def post(self, url: str, body: Mapping[str, Any]) -> None:
        """POST the body, or raise DeliveryFailed."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {HEADER: sign(raw, self._secret), "Content-Type": "application/json"}
        try:
            async with self._session.post(url, data=raw, headers=headers,
                                          timeout=TIMEOUT) as response:
                if response.status >= 300:
                    raise DeliveryFailed(f"{url} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"{url} unreachable: {type(error).__name__}") from error
