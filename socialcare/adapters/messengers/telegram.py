"""Telegram as a `Messenger`: HTML cards with inline keyboards through python-telegram-bot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
from telegram import Bot, InlineKeyboardMarkup, InputFile, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from socialcare.adapters.messengers.telegram_budget import TAKEN, chat_limits, hold_key
from socialcare.adapters.messengers.telegram_card import (
    announcement_html,
    announcement_keyboard,
    card_html,
    card_keyboard,
    escalation_html,
    escalation_keyboard,
    note_html,
    note_keyboard,
)
from socialcare.bot.announcements.views import AnnouncementView
from socialcare.bot.cards import CardView
from socialcare.bot.escalation_card import EscalationView
from socialcare.bot.ports import (
    MessengerError,
    Note,
    OutcomeUnknown,
    RateLimit,
    RateLimited,
    Undeliverable,
)
from socialcare.bot.team import Person

# Told of every call: messenger, API method, outcome (ok, rate_limited, refused, failed).
Observe = Callable[[str, str, str], None]

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# Posting a card: the Bot API has no idempotency key and lists no chat's messages, so
# a sendMessage whose answer is lost leaves a card we cannot find, and posting it
# again may double it. So: give up early where nothing was sent yet (connecting, or
# waiting for a pooled connection: a retry is safe), and once the request is out wait
# long for the answer (Telegram answers in well under a second; a slow answer is
# still learned rather than taken for a lost one).
POST_CONNECT_TIMEOUT = 5.0
POST_WRITE_TIMEOUT = 10.0
POST_READ_TIMEOUT = 20.0
# Failures of the transport that mean the request never reached Telegram.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError,
             httpx.UnsupportedProtocol)


def _layout(
    card: CardView | EscalationView | AnnouncementView,
) -> tuple[str, InlineKeyboardMarkup | None]:
    if isinstance(card, AnnouncementView):
        return announcement_html(card), announcement_keyboard(card)
    if isinstance(card, EscalationView):
        return escalation_html(card), escalation_keyboard(card)
    return card_html(card), card_keyboard(card)


def _seconds(retry_after: float | timedelta) -> float:
    # PTB gives an int or a timedelta, depending on its time-period setting.
    if isinstance(retry_after, timedelta):
        return retry_after.total_seconds()
    return float(retry_after)


class TelegramMessenger:
    """Post and edit cards, notes and direct messages through one bot.

    Every call takes its chat's shared budget in the bot's rate limiter (see
    `telegram_budget`), waiting for room; with `budget_taken` the caller has taken each
    call from the budgets before making it (the dispatcher), and nothing waits."""

    name = "telegram"
    finds_cards = False  # the Bot API cannot search a chat

    def __init__(self, bot: Bot, *, observe: Observe | None = None,
                 budget_taken: bool = False) -> None:
        self._bot = bot
        self._observe = observe or (lambda messenger, method, outcome: None)
        self._budget = {"rate_limit_args": TAKEN} if budget_taken else {}

    def limits(self, operation: str, channel: str) -> Sequence[RateLimit]:
        """Return the rate limits a call to this chat counts against."""
        return chat_limits(channel)

    async def post_card(
        self, channel: str, card: CardView | EscalationView | AnnouncementView
    ) -> str:
        """Post a new card (a case's in a team chat, an escalation's to a director, an
        announcement's copy)."""
        text, keyboard = _layout(card)
        message = await self._call(
            channel, self._bot.send_message(
                chat_id=channel, text=text, parse_mode=ParseMode.HTML,
                reply_markup=keyboard, link_preview_options=_NO_PREVIEW, **self._budget,
                connect_timeout=POST_CONNECT_TIMEOUT, write_timeout=POST_WRITE_TIMEOUT,
                read_timeout=POST_READ_TIMEOUT,
            )
        )
        return str(message.message_id)

    async def update_card(
        self, channel: str, message_id: str, card: CardView | EscalationView | AnnouncementView
    ) -> None:
        """Replace a posted card's text and buttons."""
        text, keyboard = _layout(card)
        try:
            await self._call(
                channel, self._bot.edit_message_text(
                    chat_id=channel, message_id=int(message_id), text=text,
                    parse_mode=ParseMode.HTML, reply_markup=keyboard,
                    link_preview_options=_NO_PREVIEW, **self._budget,
                )
            )
        except Undeliverable as error:
            # Telegram refuses an edit that changes nothing; the card is in step.
            if "not modified" not in str(error):
                raise

    async def find_card(self, channel: str, case_id: int) -> str | None:
        """Return None: the Bot API cannot search a chat for the bot's own messages."""
        return None

    async def find_announcement(self, channel: str, announcement_id: int) -> str | None:
        """Return None: the Bot API cannot search a chat for the bot's own messages."""
        return None

    async def post_note(self, channel: str, note: Note, *, thread: str | None = None) -> str:
        """Post a note, as a reply to the card when given, pinging its people."""
        reply = ReplyParameters(message_id=int(thread), allow_sending_without_reply=True) \
            if thread else None
        message = await self._call(
            channel, self._bot.send_message(
                chat_id=channel, text=note_html(note), parse_mode=ParseMode.HTML,
                reply_parameters=reply, reply_markup=note_keyboard(note),
                link_preview_options=_NO_PREVIEW, **self._budget,
            )
        )
        return str(message.message_id)

    async def update_note(self, channel: str, message_id: str, note: Note) -> None:
        """Replace a posted note's text (and its buttons, which an edit would drop)."""
        try:
            await self._call(
                channel, self._bot.edit_message_text(
                    chat_id=channel, message_id=int(message_id), text=note_html(note),
                    parse_mode=ParseMode.HTML, reply_markup=note_keyboard(note),
                    link_preview_options=_NO_PREVIEW,
                    **self._budget,
                )
            )
        except Undeliverable as error:
            # Telegram refuses an edit that changes nothing; the note is in step.
            if "not modified" not in str(error):
                raise

    async def pin(self, channel: str, message_id: str) -> None:
        """Pin a message, quietly."""
        await self._call(channel, self._bot.pin_chat_message(
            chat_id=channel, message_id=int(message_id), disable_notification=True
        ))

    async def unpin(self, channel: str, message_id: str) -> None:
        """Unpin a message (one that is not pinned is left as it is)."""
        try:
            await self._call(channel, self._bot.unpin_chat_message(
                chat_id=channel, message_id=int(message_id)))
        except Undeliverable as error:
            if "not found" not in str(error):
                raise

    async def direct(self, recipient: str, note: Note) -> None:
        """Send a direct message to a Telegram user id (they must have started the bot)."""
        await self.post_note(recipient, note)

    async def post_file(
        self, channel: str, filename: str, content: bytes, note: Note, *, image: bool = False
    ) -> None:
        """Send a photo (a chart) or a document, with a caption."""
        upload = InputFile(content, filename=filename)
        caption = note_html(note)[:1024]
        if image:
            await self._call(channel, self._bot.send_photo(
                chat_id=channel, photo=upload, caption=caption, parse_mode=ParseMode.HTML,
                **self._budget))
            return
        await self._call(channel, self._bot.send_document(
            chat_id=channel, document=upload, caption=caption, parse_mode=ParseMode.HTML,
            **self._budget))

    async def message_person(self, person: Person, note: Note) -> bool:
        """Send a direct message; False if the person has no Telegram id or never
        started a chat with the bot."""
        if person.telegram is None:
            return False
        try:
            await self.post_note(str(person.telegram), note)
        except Undeliverable:
            return False
        return True

    async def _call(self, channel: str, call: Any) -> Any:
        name = str(getattr(call, "__qualname__", "?")).rsplit(".", 1)[-1]
        try:
            result = await call
        except RetryAfter as error:
            self._observe(self.name, name, "rate_limited")
            raise RateLimited(
                f"Telegram flood control: {error}", retry_after=_seconds(error.retry_after),
                limit_key=hold_key(channel),
            ) from error
        except (BadRequest, Forbidden) as error:
            self._observe(self.name, name, "refused")
            raise Undeliverable(f"Telegram refused: {error.message}") from error
        except TelegramError as error:  # NetworkError, TimedOut and the rest
            self._observe(self.name, name, "failed")
            if _maybe_done(error):
                raise OutcomeUnknown(f"Telegram's answer was lost: {error}") from error
            raise MessengerError(f"Telegram call failed: {error}") from error
        self._observe(self.name, name, "ok")
        return result


def _maybe_done(error: TelegramError) -> bool:
    """Tell whether a failed call may still have been carried out: it went out and no
    answer came back (read or write timeout, connection dropped). An answer — even an
    error — or a connection never made means it was not."""
    cause = error.__cause__
    return isinstance(error, NetworkError) and isinstance(cause, httpx.HTTPError) \
        and not isinstance(cause, _NOT_SENT)
