"""Telegram in: card buttons, replies, escalations and commands, through
python-telegram-bot.

Every callback query is answered — with the outcome when it is quick, always within
the same handler — because Telegram shows a spinner until it is. Updates arrive by
polling or on `POST /telegram/webhook`, where the `X-Telegram-Bot-Api-Secret-Token`
header must match (else 403).

Anything the bot must ask for in words (a reply to the customer, a decision, a
comment, an escalation's problem and options) is asked in the person's private chat
as a message to reply to; what each such prompt is about, and an escalation being
put together step by step, is kept in Redis, so a restart loses nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from socialcare.adapters import json_body
from socialcare.adapters.messengers.telegram_budget import Budget
from socialcare.bot import escalations as esc
from socialcare.bot.actions import (
    ActionKind,
    AnnouncementAction,
    BadAction,
    CaseAction,
    EscalationAction,
    EscalationActionKind,
    IncidentAction,
    IncidentActionKind,
)
from socialcare.bot.answers.phones import normalize_phone
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.cards import topic_choices
from socialcare.bot.escalations import Category
from socialcare.bot.team import Person
from socialcare.bot.text import without_controls
from socialcare.deps import Deps
from socialcare.handlers import (
    announcing,
    calculating,
    collectors,
    escalating,
    incidenting,
    telegram_copies,
)
from socialcare.handlers.bodies import TooLarge, read_body
from socialcare.handlers.commands import (
    COMMANDS,
    call_back,
    reply_to_case,
    run_action,
    run_command,
    text_only_source,
)
from socialcare.storage.replays import TELEGRAM_SECONDS, Replays, storage_failed, telegram_key

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE = 1024 * 1024  # an update is a few KiB (a 4,096-character message at most)
PROMPT_SECONDS = 24 * 3600  # a prompt can be answered for a day
DRAFT_SECONDS = 3600  # an escalation being put together is kept for an hour
_CALLBACK_TEXT = 200  # answerCallbackQuery text limit
# A person waits for these answers: they wait for room in the chat's shared budget and
# ride out a flood-control pause (retry_after) instead of dropping the answer. Cards,
# which the dispatcher reschedules, get none.
INTERACTIVE_RETRIES = 3
_CATEGORIES = list(Category)


def _prompt_key(chat_id: int, message_id: int) -> str:
    return f"telegram:prompt:{chat_id}:{message_id}"


def _draft_key(user_id: int) -> str:
    return f"telegram:escalation-draft:{user_id}"


async def _say(bot: Any, chat_id: int, text: str, *, quote: Message | None = None,
               markup: Any = None, preview: bool = True) -> Message:
    """Send a message a person waits for (quoting theirs in groups)."""
    reply = None
    if quote is not None and quote.chat.type != "private":
        reply = ReplyParameters(message_id=quote.message_id, allow_sending_without_reply=True)
    sent: Message = await bot.send_message(
        chat_id=chat_id, text=text, reply_parameters=reply, reply_markup=markup,
        link_preview_options=None if preview else LinkPreviewOptions(is_disabled=True),
        rate_limit_args=Budget(retries=INTERACTIVE_RETRIES))
    return sent


class _Conversation:
    """The questions the bot asks in private chats, and what their answers mean."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._text = deps.catalog

    async def ask(self, bot: Any, user_id: int, text: str, about: dict[str, Any]) -> None:
        """Ask something to be answered by replying; remember what it is `about`."""
        prompt = await _say(bot, user_id, text, markup=ForceReply(selective=True))
        await self._deps.redis.set(_prompt_key(prompt.chat_id, prompt.message_id),
                                   json.dumps(about), ex=PROMPT_SECONDS)

    async def about_pictures(self, case_id: int) -> str:
        """Return the line a reply prompt ends with when the case's source publishes text
        only (said before the agent sends a photo), else nothing."""
        source = await text_only_source(case_id, self._deps)
        return "" if source is None else "\n\n" + self._text("reply.text_only", source=source)

    async def offer_call_back(self, bot: Any, user_id: int, case_id: int) -> None:
        """Offer a call back privately: step 1 the ask for a number (a button publishes it
        as it stands; a reply, the agent's own wording), step 2 a prompt for the number and
        the preferred time the customer gives, which go to the call centre."""
        publish = CaseAction(ActionKind.CALL_BACK_ASK, case_id)
        offer = await _say(bot, user_id, self._text(
            "reply.callback_telegram", id=case_id, ask=self._text("reply.callback_ask")),
            markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                self._text("button.callback_ask"), callback_data=publish.pack())]]))
        await self._deps.redis.set(
            _prompt_key(offer.chat_id, offer.message_id),
            json.dumps({"kind": "reply", "case": case_id, "form": "callback"}),
            ex=PROMPT_SECONDS)
        await self.ask(bot, user_id, self._text("reply.callback_telegram_number", id=case_id),
                       {"kind": "callback", "case": case_id})

    async def offer_official(self, bot: Any, user_id: int, case_id: int,
                             announcement_id: int) -> None:
        """Offer an announcement's official answer privately: a button publishes it as it
        stands; a reply to the offer publishes the person's own wording of it."""
        answer = await announcing.official_text(announcement_id, self._deps)
        if answer is None:
            await _say(bot, user_id, self._text("error.announcement_ended", id=announcement_id))
            return
        send = CaseAction(ActionKind.OFFICIAL_SEND, case_id, announcement_id)
        offer = await _say(bot, user_id, self._text("reply.official_offer", id=case_id,
                                                    text=answer)
                           + await self.about_pictures(case_id),
                           markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                               self._text("button.official_send"), callback_data=send.pack())]]))
        about = {"kind": "reply", "case": case_id, "announcement": announcement_id}
        await self._deps.redis.set(_prompt_key(offer.chat_id, offer.message_id),
                                   json.dumps(about), ex=PROMPT_SECONDS)

    async def prompt_of(self, message: Message) -> dict[str, Any] | None:
        """Return what the message replied to was asking, if it was one of ours."""
        assert message.reply_to_message is not None
        found = await self._deps.redis.get(
            _prompt_key(message.chat_id, message.reply_to_message.message_id))
        return None if found is None else dict(json.loads(found))

    async def draft(self, user_id: int) -> dict[str, Any] | None:
        found = await self._deps.redis.get(_draft_key(user_id))
        return None if found is None else dict(json.loads(found))

    async def keep(self, user_id: int, draft: dict[str, Any]) -> None:
        await self._deps.redis.set(_draft_key(user_id), json.dumps(draft), ex=DRAFT_SECONDS)

    async def start_escalation(self, bot: Any, user_id: int, case_id: int) -> None:
        """Begin an escalation: ask for the category."""
        await self.keep(user_id, {"cases": [case_id]})
        buttons = [[InlineKeyboardButton(self._text(f"category.{c.value}"),
                                         callback_data=f"sc1d:cat:{i}")]
                   for i, c in enumerate(_CATEGORIES)]
        await _say(bot, user_id, self._text("escalate.ask_category", id=case_id),
                   markup=InlineKeyboardMarkup(buttons))

    async def step(self, bot: Any, user_id: int, person: Person, data: str) -> str:
        """Take a click of the escalation conversation; return the click's answer."""
        draft = await self.draft(user_id)
        if draft is None:
            return self._text("escalate.expired")
        _, step, number = data.split(":")
        index = int(number)
        if step == "cat" and index < len(_CATEGORIES):
            draft["category"] = _CATEGORIES[index].value
            await self.keep(user_id, draft)
            chiefs = escalating.directors(self._deps.team)
            async with self._deps.uow() as uow:
                first = (await uow.mentions.first_of(draft["cases"])).get(draft["cases"][0])
            suggested = esc.suggest_director(self._deps.team, first.text if first else "")
            buttons = [[InlineKeyboardButton(
                ("★ " if p is suggested else "") + p.name, callback_data=f"sc1d:dir:{i}")]
                for i, p in enumerate(chiefs)]
            await _say(bot, user_id, self._text("escalate.ask_director"),
                       markup=InlineKeyboardMarkup(buttons))
        elif step == "dir" and index < len(escalating.directors(self._deps.team)):
            draft["director"] = escalating.directors(self._deps.team)[index].id
            await self.keep(user_id, draft)
            await self.ask(bot, user_id, self._text("escalate.ask_problem"), {"kind": "problem"})
        elif step == "send" and {"category", "director", "problem"} <= draft.keys():
            await self._deps.redis.delete(_draft_key(user_id))
            parsed = escalating.Parsed(
                case_ids=tuple(draft["cases"]), category=Category(draft["category"]),
                director=draft["director"], problem=draft["problem"],
                options=tuple(draft.get("options", ())),
            )
            outcome = await escalating.escalate(parsed, person, self._deps)
            await _say(bot, user_id, outcome.text)
        elif step == "cancel":
            await self._deps.redis.delete(_draft_key(user_id))
            return self._text("escalate.cancelled")
        return self._text("click.done")

    async def answer(self, bot: Any, message: Message, person: Person,
                     about: dict[str, Any]) -> None:
        """Take a reply to one of our prompts (a photo's caption is its text)."""
        text = (message.text or message.caption or "").strip()
        kind = about.get("kind")
        if kind == "reply":
            official = about.get("announcement")
            picture = None
            if message.photo:
                picture = await _photo_of(bot, message)
                if picture is None:
                    await _say(bot, message.chat_id, self._text("reply.photo_too_big"),
                               quote=message)
                    return
            elif about.get("calc") and await text_only_source(int(about["case"]),
                                                              self._deps) is None:
                # A calculation's own picture goes with it, where the source takes pictures.
                picture = await calculating.reply_picture(str(about["calc"]), self._deps)
            outcome = await reply_to_case(int(about["case"]), text, person, self._deps,
                                          announcement_id=int(official) if official else None,
                                          form=str(about.get("form") or "text"),
                                          picture=picture)
            await _say(bot, message.chat_id, outcome.text, quote=message)
        elif kind == "callback":
            phone, when = number_and_time(text)
            if normalize_phone(phone) is None:
                await _say(bot, message.chat_id, self._text("reply.callback_bad_number"),
                           quote=message)
                return
            outcome = await call_back(int(about["case"]), phone, when, person, self._deps)
            await _say(bot, message.chat_id, outcome.text, quote=message)
        elif kind in ("write", "comment"):
            outcome = await escalating.write_to_escalation(
                EscalationActionKind(kind), int(about["escalation"]), text, person, self._deps)
            await _say(bot, message.chat_id, outcome.text, quote=message)
        elif kind in ("problem", "options"):
            await self._draft_answer(bot, message, kind, text)
        elif kind == "incident":
            await self._incident_answer(bot, message, person, about, text)

    async def _incident_answer(self, bot: Any, message: Message, person: Person,
                               about: dict[str, Any], text: str) -> None:
        """Take a lead's reply to an incident button's question: the answer, the case
        numbers, or the follow-up ("-" for none); run what `/incident N …` runs."""
        verb, incident_id = str(about.get("verb", "")), int(about["incident"])
        text = without_controls(text).strip()
        if verb == "resolve" and text == "-":
            text = ""
        wrong = incidenting.refusal(person, self._deps) or incidenting.form_problem(
            verb, text, self._deps)
        outcome = wrong if wrong is not None else (await incidenting.act(
            incident_id, verb, text, person, self._deps)).text
        await _say(bot, message.chat_id, outcome, quote=message)

    async def _draft_answer(self, bot: Any, message: Message, kind: str, text: str) -> None:
        assert message.from_user is not None
        user_id = message.from_user.id
        draft = await self.draft(user_id)
        if draft is None:
            await _say(bot, message.chat_id, self._text("escalate.expired"))
            return
        if kind == "problem":
            draft["problem"] = text
            await self.keep(user_id, draft)
            await self.ask(bot, user_id, self._text("escalate.ask_options"), {"kind": "options"})
            return
        draft["options"] = [line.strip() for line in text.splitlines()
                            if line.strip() and line.strip() != "-"]
        await self.keep(user_id, draft)
        summary = "\n".join([
            self._text("escalate.confirm"),
            f"#{', #'.join(map(str, draft['cases']))} · "
            f"{self._text('category.' + draft['category'])} · @{draft['director']}",
            draft["problem"],
            *(f"{n}. {option}" for n, option in enumerate(draft["options"], start=1)),
        ])
        await _say(bot, user_id, summary, markup=InlineKeyboardMarkup([[
            InlineKeyboardButton(self._text("escalate.send"), callback_data="sc1d:send:0"),
            InlineKeyboardButton(self._text("escalate.cancel"), callback_data="sc1d:cancel:0"),
        ]]))


def register(application: Application[Any, Any, Any, Any, Any, Any], deps: Deps) -> None:
    """Add socialcare's handlers to a python-telegram-bot application."""
    text = deps.catalog
    talk = _Conversation(deps)
    replays = Replays(deps.redis)

    def replay_key(update: Update, bot: Any) -> str:
        return telegram_key(str(bot.token).partition(":")[0], update.update_id)

    async def once(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Drop an update already acted on (Telegram delivers again what it thinks was
        lost, by webhook or to the next poll), whichever process took it first."""
        if not await replays.take(replay_key(update, context.bot), seconds=TELEGRAM_SECONDS):
            log.info("Telegram update %s came again: not acted on twice", update.update_id)
            raise ApplicationHandlerStop

    async def failed(update: object, context: ContextTypes.DEFAULT_TYPE,
                     error: BaseException | None) -> None:
        """Let a redelivery act when storage failed before anything was stored."""
        if isinstance(update, Update) and error is not None and storage_failed(error):
            await replays.give_back(replay_key(update, context.bot))

    async def clicked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> tuple[str, bool]:
        query = update.callback_query
        assert query is not None
        data = query.data or ""
        if data.startswith("sc1a:"):
            # No roster check: an audience's members press Got it without a role.
            message = query.message
            user = query.from_user
            return await announcing.got_it(
                AnnouncementAction.unpack(data), messenger="telegram",
                channel=str(message.chat.id) if message else "", user_id=str(user.id),
                name=announcing.name_of("telegram", str(user.id), user.full_name, deps),
                deps=deps), False
        person = deps.team.person_by_telegram(query.from_user.id)
        if person is None:
            return text("error.not_in_roster"), True
        bot = context.bot
        if data.startswith("sc1d:"):
            return await talk.step(bot, query.from_user.id, person, data), False
        if data.startswith("sc1e:"):
            return await _escalation_button(EscalationAction.unpack(data), person, bot)
        if data.startswith("sc1i:"):
            return await _incident_button(IncidentAction.unpack(data), person,
                                          query.from_user.id, bot)
        action = CaseAction.unpack(data)
        await telegram_copies.drop_copy(query, action.case_id, deps, bot)
        if action.kind is ActionKind.REPLY:
            return await _in_private(bot, talk.ask(
                bot, query.from_user.id, text("reply.prompt", id=action.case_id)
                + await talk.about_pictures(action.case_id),
                {"kind": "reply", "case": action.case_id}))
        if action.kind is ActionKind.CALL_BACK:
            # Slack's call-back form as a private conversation: the ask for a number (a
            # button publishes it as it stands, a reply in the agent's words), then the
            # number and the preferred time, as a reply, to the call centre.
            return await _in_private(bot, talk.offer_call_back(bot, query.from_user.id,
                                                               action.case_id))
        if action.kind is ActionKind.CALL_BACK_ASK:
            # The offer loses its button first: a second press publishes nothing more.
            await query.edit_message_reply_markup(reply_markup=None)
            reply = await reply_to_case(action.case_id, text("reply.callback_ask"), person,
                                        deps, form="callback")
            return reply.text, True
        if action.kind is ActionKind.ESCALATE:
            return await _in_private(bot, talk.start_escalation(bot, query.from_user.id,
                                                                action.case_id))
        if action.kind is ActionKind.OFFICIAL and action.arg:
            return await _in_private(bot, talk.offer_official(
                bot, query.from_user.id, action.case_id, action.arg))
        if action.kind is ActionKind.OFFICIAL_SEND and action.arg:
            answer = await announcing.official_text(action.arg, deps)
            if answer is None:
                return text("error.announcement_ended", id=action.arg), True
            # The offer loses its button first: a second press publishes nothing more.
            await query.edit_message_reply_markup(reply_markup=None)
            reply = await reply_to_case(action.case_id, answer, person, deps,
                                        announcement_id=action.arg)
            return reply.text, True
        if action.kind is ActionKind.HAND_OFF and not action.arg:
            buttons = [[InlineKeyboardButton(team.title, callback_data=CaseAction(
                ActionKind.HAND_OFF, action.case_id, number).pack())]
                for number, team in enumerate(deps.team.second_line, start=1)]
            return await _in_private(bot, _say(
                bot, query.from_user.id, text("escalate.handoff_title", id=action.case_id),
                markup=InlineKeyboardMarkup(buttons)))
        if action.kind is ActionKind.TOPIC and not action.arg:
            return await _in_private(bot, _topic_keyboard(bot, query.from_user.id,
                                                          action.case_id))
        reply = await run_action(action, person, deps)
        if action.kind is ActionKind.TOPIC and reply is None and query.message is not None \
                and query.message.chat.type == "private":
            # The private chooser: show the topics as they are now.
            await _topic_keyboard(bot, query.from_user.id, action.case_id,
                                  message_id=query.message.message_id)
        return (reply.text, True) if reply else (text("click.done"), False)

    async def _topic_keyboard(bot: Any, user_id: int, case_id: int,
                              message_id: int | None = None) -> None:
        async with deps.uow() as uow:
            case = await uow.cases.get(case_id)
        buttons = [[InlineKeyboardButton(choice.title, callback_data=choice.action.pack())]
                   for choice in topic_choices(case, deps.team, text)]
        markup = InlineKeyboardMarkup(buttons)
        if message_id is None:
            await _say(bot, user_id, text("topic.choose", id=case_id), markup=markup)
        else:
            await bot.edit_message_reply_markup(chat_id=user_id, message_id=message_id,
                                                reply_markup=markup)

    async def _in_private(bot: Any, asking: Any) -> tuple[str, bool]:
        try:
            await asking
        except Forbidden:
            return text("reply.start_dm"), True
        return text("reply.check_dm"), False

    async def _incident_button(action: IncidentAction, person: Person, user_id: int,
                               bot: Any) -> tuple[str, bool]:
        """Acknowledge the incident at once, or ask the lead in private for the answer,
        the case numbers or the follow-up."""
        refused = incidenting.refusal(person, deps)
        if refused is not None:
            return refused, True
        if action.kind is IncidentActionKind.ACK:  # nothing to ask: done at once
            done = await incidenting.act(action.incident_id, "ack", "", person, deps)
            return done.text, False
        return await _in_private(bot, talk.ask(
            bot, user_id, text(f"incident.ask_{action.kind.value}", id=action.incident_id),
            {"kind": "incident", "verb": action.kind.value, "incident": action.incident_id}))

    async def _escalation_button(action: EscalationAction, person: Person,
                                 bot: Any) -> tuple[str, bool]:
        kinds = EscalationActionKind
        if action.kind in (kinds.WRITE_DECISION, kinds.COMMENT):
            label = "escalate.decision" if action.kind is kinds.WRITE_DECISION \
                else "escalate.comment"
            return await _in_private(bot, talk.ask(
                bot, person.telegram or 0, text(label) + " — #" + str(action.escalation_id),
                {"kind": action.kind.value, "escalation": action.escalation_id}))
        if action.kind is kinds.REASSIGN and not action.arg:
            buttons = [[InlineKeyboardButton(p.name, callback_data=EscalationAction(
                kinds.REASSIGN, action.escalation_id, i).pack())]
                for i, p in enumerate(escalating.directors(deps.team), start=1)]
            await _say(bot, person.telegram or 0, text("escalate.director"),
                       markup=InlineKeyboardMarkup(buttons))
            return text("click.done"), False
        reply = await escalating.run_escalation_action(action, person, deps)
        return (reply.text, True) if reply else (text("click.done"), False)

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        answer, alert = text("click.done"), False
        try:
            answer, alert = await clicked(update, context)
        except BadAction:
            answer, alert = text("error.unknown_button"), True
        except Exception as error:
            log.exception("Telegram button %r failed", query.data)
            answer, alert = text("error.failed"), True
            await failed(update, context, error)
        finally:
            await query.answer(text=answer[:_CALLBACK_TEXT], show_alert=alert)

    async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or message.reply_to_message is None:
            return
        person = deps.team.person_by_telegram(user.id)
        about = await talk.prompt_of(message)
        if about is None:
            async with deps.uow() as uow:
                card = await uow.cards.find("telegram", str(message.chat_id),
                                            str(message.reply_to_message.message_id))
            if card is None or card.case_id is None:
                if message.chat.type == "private":
                    await _say(context.bot, message.chat_id, text("reply.not_a_prompt"))
                return
            about = {"kind": "reply", "case": card.case_id}
        if person is None:
            await _say(context.bot, message.chat_id, text("error.not_in_roster"), quote=message)
            return
        await talk.answer(context.bot, message, person, about)

    async def on_group_message(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        for name, groups in deps.collectors.telegram.items():
            source = deps.team.source(name)
            if source is None or not groups.watches(message.chat):
                continue
            mention = groups.mention(source, message)
            if mention is None:
                return
            await collectors.take_in(deps, [mention])
            return

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram handler failed on %r", update, exc_info=context.error)
        await failed(update, context, context.error)

    application.add_handler(TypeHandler(Update, once), group=-1)
    application.add_handler(CallbackQueryHandler(on_button, pattern=r"^sc1[deai]?:"))
    for name in COMMANDS:
        application.add_handler(CommandHandler(name, _command_handler(name, deps, talk)))
    application.add_handler(MessageHandler(
        filters.REPLY & filters.TEXT & ~filters.COMMAND & ~filters.UpdateType.EDITED, on_reply
    ))
    # A photo sent in reply to a prompt, in private: a picture reply, its caption the text.
    application.add_handler(MessageHandler(
        filters.REPLY & filters.PHOTO & filters.ChatType.PRIVATE & ~filters.UpdateType.EDITED,
        on_reply))
    if deps.collectors.telegram:
        # Its own group, so that a reply in a customers' chat is collected as well as
        # looked at as a possible answer to a card.
        application.add_handler(MessageHandler(
            (filters.ChatType.GROUPS | filters.UpdateType.CHANNEL_POST)
            & ~filters.COMMAND & ~filters.UpdateType.EDITED, on_group_message), group=1)
    application.add_error_handler(on_error)


def number_and_time(text: str) -> tuple[str, str]:
    """Split an agent's "NUMBER | when" (or the time on the next line) into the two."""
    head, bar, rest = text.partition("|")
    if not bar:
        head, _, rest = text.partition("\n")
    return head.strip(), " ".join(rest.split())[:200]


# Bots download files of up to 20 MB (https://core.telegram.org/bots/api#getfile).
MAX_DOWNLOAD = 20 * 1024 * 1024


async def _photo_of(bot: Any, message: Message) -> Picture | None:
    """Download the largest size of a photo a person sent; None if it is too large."""
    largest = message.photo[-1]
    if largest.file_size is not None and largest.file_size > MAX_DOWNLOAD:
        return None
    file = await bot.get_file(largest.file_id)
    data = bytes(await file.download_as_bytearray())
    return Picture(f"photo-{largest.file_unique_id}.jpg", data)


def _command_handler(name: str, deps: Deps, talk: _Conversation) -> Any:
    async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        # Everything after "/cmd" or "/cmd@botname".
        _, _, args = (message.text or "").partition(" ")
        reply = await run_command(name, args, deps.team.person_by_telegram(user.id), deps)
        if reply.personal:
            await _say_personally(context.bot, message, user.id, reply.text, deps)
            return
        await _say(context.bot, message.chat_id, reply.text, quote=message)
        for attached in reply.attachments:
            upload = InputFile(attached.content, filename=attached.filename)
            if attached.image:
                await context.bot.send_photo(chat_id=message.chat_id, photo=upload,
                                             rate_limit_args=Budget(retries=INTERACTIVE_RETRIES))
            else:
                await context.bot.send_document(
                    chat_id=message.chat_id, document=upload,
                    rate_limit_args=Budget(retries=INTERACTIVE_RETRIES))
        if reply.draft is not None:
            # A prepared answer goes to the private reply conversation of its case.
            draft = reply.draft
            pictures = await talk.about_pictures(draft.case_id)
            if not pictures and draft.calc_args:
                pictures = "\n\n" + deps.catalog("calc.picture_goes")
            try:
                await talk.ask(context.bot, user.id,
                               deps.catalog("reply.prompt_prepared", id=draft.case_id,
                                            text=draft.text) + pictures,
                               {"kind": "reply", "case": draft.case_id, "form": draft.form,
                                "calc": draft.calc_args})
            except Forbidden:
                await _say(context.bot, message.chat_id, deps.catalog("reply.start_dm"),
                           quote=message)

    return on_command


async def _say_personally(bot: Any, message: Message, user_id: int, text: str,
                          deps: Deps) -> None:
    """Send something for one person's eyes (a sign-in link) to their private chat; in a
    group, say only where it went. No link preview: nothing fetches the link first."""
    if message.chat.type == "private":
        await _say(bot, message.chat_id, text, preview=False)
        return
    try:
        await _say(bot, user_id, text, preview=False)
    except Forbidden:
        await _say(bot, message.chat_id, deps.catalog("console.start_dm"), quote=message)
        return
    await _say(bot, message.chat_id, deps.catalog("console.check_dm"), quote=message)


def webhook_route(
    app: web.Application, application: Application[Any, Any, Any, Any, Any, Any], secret: str
) -> None:
    """Take updates on `POST /telegram/webhook`, checking Telegram's secret header."""

    async def telegram_webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"error": "wrong or missing secret token"}, status=403)
        try:
            data = json_body.loads(await read_body(request, limit=MAX_UPDATE))
        except TooLarge as error:
            return web.json_response({"error": str(error)}, status=413)
        except json_body.BadJson as error:
            return web.json_response({"error": str(error)}, status=400)
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return web.json_response(
                {"error": "not an update: expected an object with a numeric update_id"},
                status=400)
        try:
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError, AttributeError, TelegramError) as error:
            return web.json_response({"error": f"not an update: {error!r}"}, status=400)
        await application.update_queue.put(update)
        return web.json_response({"ok": True})

    app.router.add_post("/telegram/webhook", telegram_webhook)
