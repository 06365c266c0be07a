"""Slack as a `Messenger`: Block Kit cards through slack_sdk's Web API client.

The dispatcher's client has no rate-limit retry handler on purpose: a 429 comes back
at once as `RateLimited`, so that the dispatcher schedules that card for later and
goes on with other channels instead of sleeping inside the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from socialcare.adapters.messengers.slack_card import (
    ANNOUNCEMENT_EVENT,
    METADATA_EVENT,
    announcement_blocks,
    announcement_metadata,
    card_blocks,
    card_fallback,
    card_metadata,
    escalation_blocks,
    escalation_fallback,
    escape,
)
from socialcare.bot.announcements.views import AnnouncementView
from socialcare.bot.cards import CardView
from socialcare.bot.escalation_card import EscalationView
from socialcare.bot.ports import (
    MessengerError,
    Note,
    OutcomeUnknown,
    RateBudgets,
    RateLimit,
    RateLimited,
    Undeliverable,
)
from socialcare.bot.team import Person

# Told of every call: messenger, API method, outcome (ok, rate_limited, refused, failed).
Observe = Callable[[str, str, str], None]

# Slack: chat.postMessage about 1 per second per channel; chat.update is Tier 3,
# about 50 per minute per workspace.
POSTS_PER_SECOND = 1
# "Short bursts above 1/s" are allowed: a channel that was quiet takes three at once.
POST_BURST = 3
UPDATES_PER_MINUTE = 50
# A note or a file waits this long at most for its channel's slot.
MAX_WAIT_SECONDS = 60.0
# Errors after which retrying the same call cannot succeed.
_GONE = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "message_not_found",
    "cant_update_message", "edit_window_closed", "restricted_action", "msg_too_long",
    "invalid_blocks", "no_permission", "account_inactive", "user_not_found",
})
# An unpin of a message that is not pinned (any more) has nothing left to do.
_NOT_PINNED = "no_pin"
# How far back a card of a case is looked for when a post's outcome is unknown.
_HISTORY_LIMIT = 200


def _layout(card: CardView | EscalationView | AnnouncementView) -> dict[str, Any]:
    if isinstance(card, AnnouncementView):
        return {"text": escape(card.fallback), "blocks": announcement_blocks(card),
                "metadata": announcement_metadata(card)}
    if isinstance(card, EscalationView):
        return {"text": escalation_fallback(card), "blocks": escalation_blocks(card)}
    return {"text": card_fallback(card), "blocks": card_blocks(card),
            "metadata": card_metadata(card)}


# A section block's text holds 3,000 characters; the message's text keeps it all.
_SECTION_TEXT = 3000


def _note_buttons(text: str, note: Note) -> dict[str, Any]:
    """Return the blocks of a note with buttons (the text, then the buttons), or none."""
    if not note.buttons:
        return {}
    return {"blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_TEXT]}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": button.action, "value": button.action,
             "text": {"type": "plain_text", "text": button.label[:75]}}
            for button in note.buttons[:25]]},
    ]}


def mention(person: Person) -> str:
    """Return a mrkdwn mention that pings a person, or their name if Slack lacks them."""
    return f"<@{person.slack}>" if person.slack else escape(person.name)


class SlackMessenger:
    """Post and edit cards, notes and direct messages in one Slack workspace."""

    name = "slack"
    finds_cards = True  # by the case id in a card's message metadata

    def __init__(self, client: AsyncWebClient, *, observe: Observe | None = None,
                 budgets: RateBudgets | None = None) -> None:
        self._client = client
        self._observe = observe or (lambda messenger, method, outcome: None)
        # Given, notes and files take their channel's next slot from the budgets the
        # dispatcher's cards take theirs from (without, the caller took it already).
        self._budgets = budgets
        # A person's direct-message channel never changes: open it once.
        self._dms: dict[str, str] = {}

    def limits(self, operation: str, channel: str) -> Sequence[RateLimit]:
        """Return the rate limits a call counts against."""
        if operation == "update":
            return [RateLimit("slack:update", UPDATES_PER_MINUTE, 60.0)]
        return [RateLimit(f"slack:post:{channel}", POSTS_PER_SECOND, 1.0, burst=POST_BURST)]

    async def post_card(
        self, channel: str, card: CardView | EscalationView | AnnouncementView
    ) -> str:
        """Post a new card (a case's tagged with its case id; an escalation's to a
        director's direct messages; an announcement's copy tagged with its id)."""
        response = await self._call(
            f"slack:post:{channel}", self._client.chat_postMessage,
            channel=await self._channel(channel), **_layout(card),
            unfurl_links=False, unfurl_media=False,
        )
        return str(response["ts"])

    async def update_card(
        self, channel: str, message_id: str, card: CardView | EscalationView | AnnouncementView
    ) -> None:
        """Replace a posted card's blocks."""
        await self._call(
            "slack:update", self._client.chat_update,
            channel=await self._channel(channel), ts=message_id, **_layout(card),
        )

    async def find_card(self, channel: str, case_id: int) -> str | None:
        """Find a card of this case in the channel by its message metadata."""
        return await self._find(channel, METADATA_EVENT, "case_id", case_id)

    async def find_announcement(self, channel: str, announcement_id: int) -> str | None:
        """Find an announcement's copy in the channel by its message metadata."""
        return await self._find(channel, ANNOUNCEMENT_EVENT, "announcement_id", announcement_id)

    async def _find(self, channel: str, event_type: str, key: str, value: int) -> str | None:
        response = await self._call(
            f"slack:history:{channel}", self._client.conversations_history,
            channel=channel, include_all_metadata=True, limit=_HISTORY_LIMIT,
        )
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == event_type and payload.get(key) == value:
                return str(message["ts"])
        return None

    async def post_note(self, channel: str, note: Note, *, thread: str | None = None) -> str:
        """Post a note (in a card's thread when given), pinging its people."""
        text = escape(note.text)
        if note.mention:
            text += "\n" + " ".join(mention(person) for person in note.mention)
        await self._room("post", channel)
        response = await self._call(
            f"slack:post:{channel}", self._client.chat_postMessage,
            channel=await self._channel(channel), text=text, thread_ts=thread,
            unfurl_links=False, **_note_buttons(text, note),
        )
        return str(response["ts"])

    async def update_note(self, channel: str, message_id: str, note: Note) -> None:
        """Replace a posted note's text (and its buttons, which an edit would drop)."""
        text = escape(note.text)
        await self._call(
            "slack:update", self._client.chat_update,
            channel=await self._channel(channel), ts=message_id, text=text,
            **_note_buttons(text, note),
        )

    async def pin(self, channel: str, message_id: str) -> None:
        """Pin a message."""
        await self._call(f"slack:pin:{channel}", self._client.pins_add,
                         channel=channel, timestamp=message_id)

    async def unpin(self, channel: str, message_id: str) -> None:
        """Unpin a message (one that is not pinned is left as it is)."""
        try:
            await self._call(f"slack:pin:{channel}", self._client.pins_remove,
                             channel=channel, timestamp=message_id)
        except MessengerError as error:
            if _NOT_PINNED not in str(error):
                raise

    async def message_person(self, person: Person, note: Note) -> bool:
        """Send a direct message; False if the person has no Slack id."""
        if person.slack is None:
            return False
        await self.direct(person.slack, note)
        return True

    async def direct(self, recipient: str, note: Note) -> None:
        """Send a direct message to a Slack user id."""
        await self.post_note(recipient, note)

    async def post_file(
        self, channel: str, filename: str, content: bytes, note: Note, *, image: bool = False
    ) -> None:
        """Upload a file (an image shows inline) to a channel with a note."""
        await self._room("post", channel)
        await self._call(
            f"slack:post:{channel}", self._client.files_upload_v2,
            channel=await self._channel(channel), filename=filename, content=content,
            initial_comment=escape(note.text),
        )

    async def _room(self, operation: str, channel: str) -> None:
        """Wait for the channel's next slot, if this messenger takes its own."""
        if self._budgets is None:
            return
        limits = self.limits(operation, channel)
        booking = await self._budgets.book(limits, within=MAX_WAIT_SECONDS)
        if not booking.taken:
            raise RateLimited(f"no slot in {channel} within {MAX_WAIT_SECONDS:g} s",
                              retry_after=booking.wait, limit_key=limits[0].key)
        await asyncio.sleep(booking.wait)

    async def _channel(self, channel: str) -> str:
        """Return the channel to post to: a user id becomes their direct-message channel."""
        if not channel.startswith(("U", "W")):
            return channel
        if channel not in self._dms:
            opened = await self._call("slack:open", self._client.conversations_open,
                                      users=channel)
            self._dms[channel] = str(opened["channel"]["id"])
        return self._dms[channel]

    async def _call(self, limit_key: str, method: Any, **params: Any) -> Any:
        name = getattr(method, "__name__", "?")
        try:
            result = await method(**params)
        except SlackApiError as error:
            status = error.response.status_code
            code = error.response.get("error") if isinstance(error.response.data, dict) else None
            if status == 429:
                self._observe(self.name, name, "rate_limited")
                retry_after = float(error.response.headers.get("Retry-After", 1))
                raise RateLimited(f"Slack rate limit ({code})", retry_after=retry_after,
                                  limit_key=limit_key) from error
            if code in _GONE:
                self._observe(self.name, name, "refused")
                raise Undeliverable(f"Slack refused: {code}") from error
            self._observe(self.name, name, "failed")
            raise MessengerError(f"Slack answered {status}: {code}") from error
        except (TimeoutError, aiohttp.ClientError) as error:
            self._observe(self.name, name, "failed")
            if isinstance(error, aiohttp.ClientConnectorError):  # never sent
                raise MessengerError(f"Slack unreachable: {type(error).__name__}") from error
            raise OutcomeUnknown(f"Slack's answer was lost: {type(error).__name__}") \
                from error
        self._observe(self.name, name, "ok")
        return result
