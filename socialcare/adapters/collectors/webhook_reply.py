"""Publish the team's replies through a social-listening platform's reply endpoint.

A `webhook` source whose options name a `reply_url` can publish: the reply is POSTed
there as JSON, signed like `/ingest` (X-Signature with INGEST_WEBHOOK_SECRET), and the
platform answers with the reply's id and link. The id is stored with the case, so
when the platform later sends the reply back as a mention it is a duplicate.

    {"source": "webhook", "in_reply_to": "1234567890", "thread_id": "1234567000",
     "platform": "instagram", "text": "…", "case_id": 12}
    → 200 {"id": "1234567999", "url": "https://…"}

A reply with a picture carries it inline (PNG or JPEG, up to 5 MB):
`"image": {"filename": "apn.png", "content_type": "image/png", "base64": "iVBOR…"}`;
with `pictures = false` in the options the platform is sent text only.
"""

from __future__ import annotations

import base64
import json

import aiohttp

from socialcare.adapters.collectors.signature import HEADER, sign
from socialcare.bot.answers.pictures import MB, Picture, PictureLimits
from socialcare.bot.model import Mention
from socialcare.bot.ports import Published, PublishFailed
from socialcare.bot.team import Source

TIMEOUT = aiohttp.ClientTimeout(total=15)


def can_publish(source: Source) -> bool:
    """Tell whether a source is configured to publish replies."""
    return source.kind == "webhook" and bool(source.options.get("reply_url"))


class WebhookReplyPublisher:
    """POST signed replies to each source's `reply_url`."""

    def __init__(self, session: aiohttp.ClientSession, secret: str) -> None:
        self._session = session
        self._secret = secret

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits | None:
        """The endpoint takes the picture inline, in base64: up to 5 MB of PNG or JPEG;
        nothing when the source says its platform publishes text only (`pictures = false`)."""
        if source.options.get("pictures") is False:
            return None
        return PictureLimits(max_bytes=5 * MB, types=("image/png", "image/jpeg"))

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Publish `text` as a reply to the mention `to`."""
        return await self._post(source, to, text, None)

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        """Publish the picture (in base64) with `text` as a reply to the mention `to`."""
        return await self._post(source, to, text, picture)

    async def _post(self, source: Source, to: Mention, text: str,
                    picture: Picture | None) -> Published:
        url = str(source.options["reply_url"])
        reply: dict[str, object] = {
            "source": source.name, "in_reply_to": to.external_id, "thread_id": to.thread_key,
            "platform": to.platform, "text": text, "case_id": to.case_id,
        }
        if picture is not None:
            reply["image"] = {"filename": picture.filename, "content_type": picture.content_type,
                              "base64": base64.b64encode(picture.content).decode()}
        body = json.dumps(reply).encode()
        headers = {HEADER: sign(body, self._secret), "Content-Type": "application/json"}
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          timeout=TIMEOUT) as response:
                if response.status >= 400:
                    raise PublishFailed(f"the reply endpoint answered {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as error:
            raise PublishFailed(f"the reply endpoint is unreachable: {type(error).__name__}") \
                from error
        answer = answer if isinstance(answer, dict) else {}
        reply_id = answer.get("id")
        return Published(
            external_id=None if reply_id in (None, "") else str(reply_id),
            url=answer.get("url") if isinstance(answer.get("url"), str) else None,
        )
