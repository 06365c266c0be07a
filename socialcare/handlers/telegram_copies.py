"""Copies of Telegram cards: a post whose answer was lost may have left a card that no
card row knows, and the card is posted again. The Bot API lists no chat's messages,
so such a copy comes to light only when someone clicks one of its buttons; then it
is deleted (the click itself still counts)."""

from __future__ import annotations

import logging
from typing import Any

from telegram.error import TelegramError

from socialcare.deps import Deps

log = logging.getLogger(__name__)


async def drop_copy(query: Any, case_id: int, deps: Deps, bot: Any) -> None:
    """Delete a copy of a card: a card message of ours that no card row knows, in a chat
    where the case's card is known by another message — left by a post whose answer
    was lost and that was posted again. The Bot API shows it to us only now, when
    someone clicks it (the click itself still counts)."""
    message = query.message
    # A card's first line is its title, "#<case> · <platform> · <brand>": other messages
    # with a case's buttons (a prompt, a hand-off choice) are left alone.
    if message is None or not (getattr(message, "text", None) or "").startswith(
            f"#{case_id} "):
        return
    chat, message_id = str(message.chat_id), str(message.message_id)
    # One read of the case's cards: a card row recorded between two reads (its post
    # answered while this click was on its way) must not make the card look like a copy.
    async with deps.uow() as uow:
        in_chat = [card for card in await uow.cards.for_case(case_id)
                   if card.messenger == "telegram" and card.channel == chat]
    if any(card.message_id in (None, message_id) for card in in_chat):
        return  # the card itself, or one whose post is still on its way
    known = [card for card in in_chat if card.message_id is not None]
    if not known:
        return
    try:
        await bot.delete_message(chat_id=message.chat_id, message_id=message.message_id)
    except TelegramError as error:  # older than 48 h, or no right to delete
        log.warning("a copy of the card of case #%s (message %s in %s) cannot be deleted: "
                    "%s", case_id, message_id, chat, error)
        return
    deps.telemetry.doubles_removed.labels("telegram").inc()
    log.warning("deleted a copy of the card of case #%s (message %s in %s) when it was "
                "clicked; the card is message %s", case_id, message_id, chat,
                known[0].message_id)
