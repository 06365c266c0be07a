"""Telegram in: card buttons, replies and commands, through python-telegram-bot.

Every callback query is answered — with the outcome when it is quick, always within
the same handler — because Telegram shows a spinner until it is. Updates arrive by
polling or on `POST /telegram/webhook`, where the `X-Telegram-Bot-Api-Secret-Token`
header must match (else 403).

Reply: the Reply button sends the agent a private message to answer; a reply to
that message (or to a card in the team chat) is the answer. Which case a prompt is
about is kept in Redis, so a restart loses nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import ForceReply, Message, ReplyParameters, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from socialcare.bot.actions import ActionKind, BadAction, CaseAction
from socialcare.deps import Deps
from socialcare.handlers.commands import COMMANDS, reply_to_case, run_action, run_command

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PROMPT_SECONDS = 24 * 3600  # a reply prompt can be answered for a day
_CALLBACK_TEXT = 200  # answerCallbackQuery text limit


# A person waits for these answers: ride out a flood-control pause (retry_after)
# instead of dropping the answer. Cards, which the dispatcher reschedules, get none.
INTERACTIVE_RETRIES = 3


async def _say(bot: Any, message: Message, text: str) -> None:
    """Answer a message in its chat, quoting it in groups."""
    await bot.send_message(
        chat_id=message.chat_id, text=text,
        reply_parameters=None if message.chat.type == "private"
        else ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True),
        rate_limit_args=INTERACTIVE_RETRIES,
    )


def _prompt_key(chat_id: int, message_id: int) -> str:
    return f"telegram:prompt:{chat_id}:{message_id}"


def register(application: Application[Any, Any, Any, Any, Any, Any], deps: Deps) -> None:
    """Add socialcare's handlers to a python-telegram-bot application."""
    text = deps.catalog

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.from_user is not None
        answer, alert = text("click.done"), False
        try:
            person = deps.team.person_by_telegram(query.from_user.id)
            if person is None:
                answer, alert = text("error.not_in_roster"), True
                return
            try:
                clicked = CaseAction.unpack(query.data or "")
            except BadAction:
                answer, alert = text("error.unknown_button"), True
                return
            if clicked.kind is ActionKind.REPLY:
                answer, alert = await _prompt_reply(context, query.from_user.id, clicked, deps)
                return
            reply = await run_action(clicked, person, deps)
            if reply is not None:
                answer, alert = reply.text, True
        except Exception:
            log.exception("Telegram button %r failed", query.data)
            answer, alert = text("error.failed"), True
        finally:
            await query.answer(text=answer[:_CALLBACK_TEXT], show_alert=alert)

    async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or message.reply_to_message is None:
            return
        person = deps.team.person_by_telegram(user.id)
        replied = message.reply_to_message
        case_id = await deps.redis.get(_prompt_key(message.chat_id, replied.message_id))
        if case_id is None:
            async with deps.uow() as uow:
                card = await uow.cards.find("telegram", str(message.chat_id),
                                            str(replied.message_id))
            if card is None:
                if message.chat.type == "private":
                    await _say(context.bot, message, text("reply.not_a_prompt"))
                return
            case_id = card.case_id
        if person is None:
            await _say(context.bot, message, text("error.not_in_roster"))
            return
        outcome = await reply_to_case(int(case_id), message.text or "", person, deps)
        await _say(context.bot, message, outcome.text)

    application.add_handler(CallbackQueryHandler(on_button, pattern=r"^sc1:"))
    for name in COMMANDS:
        application.add_handler(CommandHandler(name, _command_handler(name, deps)))
    application.add_handler(MessageHandler(
        filters.REPLY & filters.TEXT & ~filters.COMMAND & ~filters.UpdateType.EDITED, on_reply
    ))
    application.add_error_handler(_on_error)


async def _prompt_reply(
    context: ContextTypes.DEFAULT_TYPE, user_id: int, clicked: CaseAction, deps: Deps
) -> tuple[str, bool]:
    """Ask the agent for the answer in a private chat; return the click's answer."""
    try:
        prompt = await context.bot.send_message(
            chat_id=user_id, text=deps.catalog("reply.prompt", id=clicked.case_id),
            reply_markup=ForceReply(selective=True), rate_limit_args=INTERACTIVE_RETRIES,
        )
    except Forbidden:
        return deps.catalog("reply.start_dm"), True
    await deps.redis.set(_prompt_key(prompt.chat_id, prompt.message_id), clicked.case_id,
                         ex=PROMPT_SECONDS)
    return deps.catalog("reply.check_dm"), False


def _command_handler(name: str, deps: Deps) -> Any:
    async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        # Everything after "/cmd" or "/cmd@botname".
        _, _, args = (message.text or "").partition(" ")
        reply = await run_command(name, args, deps.team.person_by_telegram(user.id), deps)
        await _say(context.bot, message, reply.text)

    return on_command


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("Telegram handler failed on %r", update, exc_info=context.error)


def webhook_route(
    app: web.Application, application: Application[Any, Any, Any, Any, Any, Any], secret: str
) -> None:
    """Take updates on `POST /telegram/webhook`, checking Telegram's secret header."""

    async def telegram_webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"error": "wrong or missing secret token"}, status=403)
        try:
            update = Update.de_json(json.loads(await request.read()), application.bot)
        except (ValueError, TypeError, KeyError, TelegramError) as error:
            return web.json_response({"error": f"not an update: {error}"}, status=400)
        await application.update_queue.put(update)
        return web.json_response({"ok": True})

    app.router.add_post("/telegram/webhook", telegram_webhook)
