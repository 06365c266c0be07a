"""Slack in: card buttons, forms and slash commands, through slack-bolt.

Every listener acks first (Slack wants it within 3 seconds), then checks the roster,
then calls the domain; anything for the person alone goes back as an ephemeral
message. Requests reach Bolt on `POST /slack/events` (signature checked first: a
forged or stale one gets 401) or over Socket Mode.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from socialcare.adapters import json_body
from socialcare.adapters.messengers.slack_card import escape
from socialcare.bot import escalations as esc
from socialcare.bot import handoffs
from socialcare.bot.actions import (
    ActionKind,
    AnnouncementAction,
    BadAction,
    CaseAction,
    EscalationAction,
    EscalationActionKind,
)
from socialcare.bot.answers.phones import normalize_phone, shared_excerpt
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.errors import DomainError
from socialcare.bot.escalations import Category
from socialcare.bot.ports import Note
from socialcare.bot.team import Person
from socialcare.bot.text import without_controls
from socialcare.deps import Deps
from socialcare.foreground import Foreground
from socialcare.handlers import (
    announcing,
    calculating,
    escalating,
    slack_incidents,
    slack_views,
)
from socialcare.handlers.bodies import TooLarge, read_body
from socialcare.handlers.chat import Attachment, ChatReply, describe_error, service
from socialcare.handlers.commands import (
    COMMANDS,
    call_back,
    reply_to_case,
    run_action,
    run_command,
    text_only_source,
)
from socialcare.storage.replays import SLACK_SECONDS, Replays, slack_key, storage_failed

log = logging.getLogger(__name__)

# Slack's requests are a few KiB; a view submission with long texts, tens.
MAX_REQUEST = 1024 * 1024
_CASE_BUTTON = re.compile(r"^sc1:")
_ESCALATION_BUTTON = re.compile(r"^sc1e:")
_ANNOUNCEMENT_BUTTON = re.compile(r"^sc1a:")
# How many card clicks are worked on at once after their acks; the others wait their turn.
AFTER_ACK_AT_ONCE = 2


# How long the app's stop waits for the work of requests already acknowledged.
AFTER_ACK_STOP_SECONDS = 10.0


class AfterAcks:
    """The listeners' work after their acks. Bolt runs each listener in a task of its own
    that nothing awaits, and Slack never sends an acknowledged request again: the app's
    stop waits for that work (`wait`) before the database and Redis close under it."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def keep(self) -> None:
        """Count the calling listener's task among the work the stop waits for."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def wait(self, seconds: float = AFTER_ACK_STOP_SECONDS) -> None:
        """Wait for the acknowledged requests' work still running (up to `seconds`)."""
        if not self._running:
            return
        _done, late = await asyncio.wait(set(self._running), timeout=seconds)
        if late:
            log.warning("%d acknowledged Slack request(s) still not done %.0f s into the "
                        "stop: left unfinished", len(late), seconds)


def _case_click(body: Mapping[str, Any]) -> bool:
    """Tell whether a request is a click on a case card's button (or select)."""
    actions = body.get("actions")
    return body.get("type") == "block_actions" and isinstance(actions, list) and bool(actions) \
        and all(isinstance(a, dict) and _CASE_BUTTON.match(str(a.get("action_id", "")))
                for a in actions)


def private_blocks(text: str, link: str | None = None) -> list[dict[str, Any]]:
    """Lay out a private reply so that any customer text in it shows literally (and its
    link, if it has one, as a link)."""
    elements: list[dict[str, Any]] = [{"type": "text", "text": text[:3000]}]
    if link is not None:
        elements += [{"type": "text", "text": "\n"}, {"type": "link", "url": link}]
    return [{"type": "rich_text", "elements": [
        {"type": "rich_text_section", "elements": elements}
    ]}]


def register(bolt: AsyncApp, deps: Deps) -> AfterAcks:
    """Add socialcare's listeners to a Bolt app; return their work after the acks, for the
    app's stop to wait for."""
    text = deps.catalog
    after_acks = AfterAcks()
    replays = Replays(deps.redis)

    @bolt.middleware
    async def once(req: AsyncBoltRequest, resp: BoltResponse,
                   next_: Callable[[], Awaitable[None]]) -> BoltResponse:
        """Acknowledge a request already acted on (a replay, a redelivery) and drop it.

        Runs after Bolt has checked the signature: only Slack's own requests are marked."""
        body = req.body
        key = slack_key((req.headers.get("x-slack-request-timestamp") or [""])[0], req.raw_body,
                        event_id=body.get("event_id") if body.get("type") == "event_callback"
                        else None)
        req.context["replay_key"] = key
        # A card click is answered the same (empty) either way: it is marked after its
        # ack (`first_time`), which then waits for nothing but the ack itself.
        if not _case_click(body) and not await first_time(key, body):
            return BoltResponse(status=200, body="")
        await next_()
        return resp

    async def first_time(key: str, body: dict[str, Any]) -> bool:
        """Mark a request as taken; False (and a line of log) if it came again."""
        if await replays.take(key, seconds=SLACK_SECONDS):
            return True
        log.info("a Slack %s request came again: acknowledged, not acted on twice",
                 body.get("type") or body.get("command") or "?")
        return False

    async def say_privately(respond: Any, reply: ChatReply) -> None:
        await respond(text=escape(reply.text[:300]),
                      blocks=private_blocks(reply.text, reply.link),
                      response_type="ephemeral", replace_original=False)

    async def tell(client: Any, user: str, channel: str, reply: ChatReply) -> None:
        """Tell someone privately after a form: in the channel it came from, else by DM."""
        if channel:
            await client.chat_postEphemeral(channel=channel, user=user, text=escape(reply.text),
                                            blocks=private_blocks(reply.text))
            return
        person = deps.team.person_by_slack(user)
        if person is not None and "slack" in deps.messengers:
            await deps.messengers["slack"].message_person(person, Note(reply.text))

    def roster(user: str) -> Person | None:
        return deps.team.person_by_slack(user)

    # The work after the acks of card buttons, a few clicks' at a time: ten clicks at
    # once would otherwise run ten transactions' steps between the next clicks' acks.
    after_ack = asyncio.Semaphore(AFTER_ACK_AT_ONCE)

    @bolt.action(_CASE_BUTTON)
    async def on_case_button(ack: Any, body: dict[str, Any], action: dict[str, Any],
                             respond: Any, client: Any, context: dict[str, Any]) -> None:
        after_acks.keep()
        await ack()
        # The other clicks in flight are answered first; then this one is marked as
        # taken (a click Slack sends again is acted on once) and worked on.
        await deps.foreground.give_way()
        if not await first_time(context["replay_key"], body):
            return
        async with after_ack:
            await _case_button(body, action, respond, client)

    async def _case_button(body: dict[str, Any], action: dict[str, Any], respond: Any,
                           client: Any) -> None:
        person = roster(body["user"]["id"])
        if person is None:
            await say_privately(respond, ChatReply(text("error.not_in_roster")))
            return
        try:
            clicked = CaseAction.unpack(action["action_id"])
        except BadAction:
            await say_privately(respond, ChatReply(text("error.unknown_button")))
            return
        channel = (body.get("channel") or {}).get("id", "")
        if clicked.kind is ActionKind.REPLY:
            text_only = await text_only_source(clicked.case_id, deps)
            card_ts = str((body.get("container") or {}).get("message_ts") or "")
            shared = () if text_only is not None else \
                await _thread_pictures(client, channel, card_ts)
            await client.views_open(trigger_id=body["trigger_id"], view=slack_views.reply_view(
                clicked.case_id, channel, deps.team.saved_replies, text,
                text_only=text_only, thread_pictures=shared))
            return
        if clicked.kind is ActionKind.CALL_BACK:
            await client.views_open(trigger_id=body["trigger_id"], view=slack_views.callback_view(
                clicked.case_id, channel, text))
            return
        if clicked.kind is ActionKind.ESCALATE:
            await client.views_open(trigger_id=body["trigger_id"],
                                    view=await _escalate_form(clicked.case_id, channel, deps))
            return
        if clicked.kind is ActionKind.OFFICIAL and clicked.arg:
            answer = await announcing.official_text(clicked.arg, deps)
            if answer is None:
                await say_privately(respond, ChatReply(text("error.announcement_ended",
                                                            id=clicked.arg)))
                return
            await client.views_open(trigger_id=body["trigger_id"], view=slack_views.reply_view(
                clicked.case_id, channel, deps.team.saved_replies, text,
                official=(clicked.arg, answer),
                text_only=await text_only_source(clicked.case_id, deps)))
            return
        if clicked.kind is ActionKind.HAND_OFF and not clicked.arg:
            await client.views_open(trigger_id=body["trigger_id"], view=slack_views.handoff_view(
                clicked.case_id, channel, deps.team.second_line, text))
            return
        if clicked.kind is ActionKind.TOPIC and not clicked.arg:
            # The card's topic select: the option chosen names the topic.
            try:
                chosen = CaseAction.unpack(str((action.get("selected_option") or {})
                                               .get("value", "")))
            except BadAction:
                chosen = None
            if chosen is None or chosen.kind is not ActionKind.TOPIC \
                    or chosen.case_id != clicked.case_id:
                await say_privately(respond, ChatReply(text("error.unknown_button")))
                return
            clicked = chosen
        reply = await run_action(clicked, person, deps)
        if reply is not None:
            await say_privately(respond, reply)

    @bolt.action(_ANNOUNCEMENT_BUTTON)
    async def on_announcement_button(ack: Any, body: dict[str, Any], action: dict[str, Any],
                                     respond: Any) -> None:
        after_acks.keep()
        await ack()
        try:
            clicked = AnnouncementAction.unpack(action["action_id"])
        except BadAction:
            await say_privately(respond, ChatReply(text("error.unknown_button")))
            return
        # No roster check: an audience's members press Got it without a role.
        container, user = body.get("container") or {}, body["user"]
        answer = await announcing.got_it(
            clicked, messenger="slack", channel=str(container.get("channel_id", "")),
            user_id=user["id"],
            name=announcing.name_of("slack", user["id"], str(user.get("name", "")), deps),
            deps=deps)
        await say_privately(respond, ChatReply(answer))

    @bolt.action(_ESCALATION_BUTTON)
    async def on_escalation_button(ack: Any, body: dict[str, Any], action: dict[str, Any],
                                   respond: Any, client: Any) -> None:
        after_acks.keep()
        await ack()
        person = roster(body["user"]["id"])
        if person is None:
            await say_privately(respond, ChatReply(text("error.not_in_roster")))
            return
        try:
            clicked = EscalationAction.unpack(action["action_id"])
        except BadAction:
            await say_privately(respond, ChatReply(text("error.unknown_button")))
            return
        kinds = EscalationActionKind
        if clicked.kind in (kinds.WRITE_DECISION, kinds.COMMENT):
            await client.views_open(trigger_id=body["trigger_id"], view=slack_views.write_view(
                clicked.kind.value, clicked.escalation_id, text))
            return
        if clicked.kind is kinds.REASSIGN and not clicked.arg:
            await client.views_open(trigger_id=body["trigger_id"],
                                    view=slack_views.reassign_view(
                                        clicked.escalation_id,
                                        escalating.directors(deps.team), text))
            return
        reply = await escalating.run_escalation_action(clicked, person, deps)
        if reply is not None:
            await say_privately(respond, reply)

    @bolt.view(slack_views.REPLY_VIEW)
    async def on_reply(ack: Any, body: dict[str, Any], view: dict[str, Any],
                       client: Any) -> None:
        after_acks.keep()
        answer = slack_views.reply_text(view, deps.team.saved_replies)
        if not answer:
            await ack(response_action="errors", errors={"text": text("reply.empty")})
            return
        await ack()
        user = body["user"]["id"]
        person = roster(user)
        meta = slack_views.reply_metadata(view["private_metadata"])
        channel = meta.channel
        image = slack_views.reply_picture(view, deps.team.saved_replies)
        attached = slack_views.attached_file(view)
        picture = None if image is None else Picture(
            Path(image).name, await asyncio.to_thread(Path(image).read_bytes))
        chosen = slack_views.thread_picture(view) if attached is None else None
        if chosen is not None:
            attached = await _file_info(client, chosen)
        if attached is not None or chosen is not None:
            picture = None if attached is None else await _download(attached, client.token)
            if picture is None:
                await tell(client, user, channel, ChatReply(text("reply.file_unreadable")))
                return
        if picture is None and meta.calc_args and person is not None \
                and await text_only_source(meta.case_id, deps) is None:
            # The calculation's own picture goes with it, where the source takes pictures.
            picture = await calculating.reply_picture(meta.calc_args, deps)
        reply = ChatReply(text("error.not_in_roster")) if person is None else \
            await reply_to_case(meta.case_id, answer, person, deps,
                                announcement_id=meta.official, form=meta.form, picture=picture)
        await tell(client, user, channel, reply)

    @bolt.view(slack_views.CALLBACK_VIEW)
    async def on_callback(ack: Any, body: dict[str, Any], view: dict[str, Any],
                          client: Any) -> None:
        after_acks.keep()
        given = slack_views.values(view)
        ask, phone = given.get("ask", ""), given.get("phone", "")
        if not ask and not phone:
            await ack(response_action="errors", errors={"phone": text("reply.empty")})
            return
        if phone and normalize_phone(phone) is None:
            await ack(response_action="errors", errors={"phone": text("error.bad_phone")})
            return
        await ack()
        user = body["user"]["id"]
        person = roster(user)
        case_id, _, channel = view["private_metadata"].partition("|")
        if person is None:
            await tell(client, user, channel, ChatReply(text("error.not_in_roster")))
            return
        if ask:
            told = await reply_to_case(int(case_id), ask, person, deps, form="callback")
            await tell(client, user, channel, told)
        if phone:
            await tell(client, user, channel, await call_back(
                int(case_id), phone, given.get("when", ""), person, deps))

    @bolt.view(slack_views.ESCALATE_VIEW)
    async def on_escalate(ack: Any, body: dict[str, Any], view: dict[str, Any],
                          client: Any) -> None:
        after_acks.keep()
        given = slack_views.values(view)
        case_id, _, channel = view["private_metadata"].partition("|")
        errors = {}
        if not given.get("problem"):
            errors["problem"] = text("error.empty_problem")
        try:
            more = escalating.parse_cases(given["more"]) if given.get("more") else ()
        except escalating.BadCommand:
            errors["more"] = text("escalate.bad_cases")
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        user = body["user"]["id"]
        person = roster(user)
        if person is None:
            await tell(client, user, channel, ChatReply(text("error.not_in_roster")))
            return
        parsed = escalating.Parsed(
            case_ids=(int(case_id), *more), category=Category(given["category"]),
            director=given["director"], problem=given["problem"],
            options=tuple(line for line in given.get("options", "").splitlines()
                          if line.strip()),
        )
        await tell(client, user, channel, await escalating.escalate(parsed, person, deps))

    @bolt.view(slack_views.WRITE_VIEW)
    async def on_write(ack: Any, body: dict[str, Any], view: dict[str, Any],
                       client: Any) -> None:
        after_acks.keep()
        written = slack_views.values(view).get("text", "")
        if not written:
            await ack(response_action="errors", errors={"text": text("error.empty_comment")})
            return
        await ack()
        user = body["user"]["id"]
        person = roster(user)
        kind, _, escalation_id = view["private_metadata"].partition("|")
        reply = ChatReply(text("error.not_in_roster")) if person is None else \
            await escalating.write_to_escalation(
                EscalationActionKind(kind), int(escalation_id), written, person, deps)
        await tell(client, user, "", reply)

    @bolt.view(slack_views.REASSIGN_VIEW)
    async def on_reassign(ack: Any, body: dict[str, Any], view: dict[str, Any],
                          client: Any) -> None:
        after_acks.keep()
        await ack()
        user = body["user"]["id"]
        person = roster(user)
        if person is None:
            await tell(client, user, "", ChatReply(text("error.not_in_roster")))
            return
        try:
            await esc.reassign(esc.Reassign(int(view["private_metadata"]), person.id,
                                            slack_views.values(view).get("director", "")),
                               **service(deps))
        except DomainError as error:
            await tell(client, user, "", ChatReply(describe_error(error, deps)))
            return
        deps.wake()

    @bolt.view(slack_views.HANDOFF_VIEW)
    async def on_handoff(ack: Any, body: dict[str, Any], view: dict[str, Any],
                         client: Any) -> None:
        after_acks.keep()
        await ack()
        user = body["user"]["id"]
        person = roster(user)
        case_id, _, channel = view["private_metadata"].partition("|")
        given = slack_views.values(view)
        if person is None:
            await tell(client, user, channel, ChatReply(text("error.not_in_roster")))
            return
        try:
            await handoffs.hand_off(handoffs.HandOff(int(case_id), person.id,
                                                     given.get("team", ""), given.get("note", "")),
                                    **service(deps))
        except DomainError as error:
            await tell(client, user, channel, ChatReply(describe_error(error, deps)))
            return
        deps.wake()

    slack_incidents.register(bolt, deps, tell=tell, say_privately=say_privately,
                             keep=after_acks.keep)

    for name in COMMANDS:
        bolt.command(f"/{name}")(_command_listener(name, deps, say_privately, after_acks))

    @bolt.error
    async def on_error(error: Exception, body: dict[str, Any], context: dict[str, Any]) -> None:
        log.error("Slack listener failed on a %s request: %s", body.get("type", "?"),
                  error, exc_info=error)
        key = context.get("replay_key")
        if key and storage_failed(error):
            await replays.give_back(key)

    return after_acks


# A picture larger than this is refused before it is downloaded (no platform takes more
# than Telegram's 10 MB for photos… VK's 50 MB aside).
MAX_ATTACHED = 50 * 1024 * 1024


async def _download(file: dict[str, Any], token: str | None) -> Picture | None:
    """Download a file picked in a form with the bot token; None if it cannot be read."""
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    size = file.get("size")
    if not url.startswith(("https://", "http://")) or not isinstance(size, int) \
            or size > MAX_ATTACHED:
        return None
    try:
        async with aiohttp.ClientSession() as session, session.get(
                url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=30)) as response:
            if response.status != 200:
                return None
            data = await response.content.read(MAX_ATTACHED + 1)
    except (aiohttp.ClientError, TimeoutError):
        return None
    if len(data) > MAX_ATTACHED:
        return None
    return Picture(str(file.get("name") or "picture"), data)


# The thread is read before the reply form opens, whose trigger lasts 3 seconds.
THREAD_LOOKUP_SECONDS = 1.5


async def _thread_pictures(client: Any, channel: str,
                           card_ts: str) -> tuple[tuple[str, str], ...]:
    """Return the images shared in a card's thread; none if it cannot be read in time."""
    if not channel or not card_ts:
        return ()
    try:
        answer = await asyncio.wait_for(
            client.conversations_replies(channel=channel, ts=card_ts, limit=200),
            THREAD_LOOKUP_SECONDS)
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
        log.info("the thread of card %s in %s was not read: %s", card_ts, channel, error)
        return ()
    messages = answer.get("messages")
    return slack_views.thread_pictures(messages if isinstance(messages, list) else [], card_ts)


async def _file_info(client: Any, file_id: str) -> dict[str, Any] | None:
    """Return a file's object (files.info), or None if Slack does not give it."""
    try:
        answer = await client.files_info(file=file_id)
    except (SlackApiError, aiohttp.ClientError, TimeoutError):
        return None
    found = answer.get("file")
    return found if isinstance(found, dict) else None


async def _escalate_form(case_id: int, channel: str, deps: Deps) -> dict[str, Any]:
    async with deps.uow() as uow:
        first = (await uow.mentions.first_of([case_id])).get(case_id)
    excerpt = shared_excerpt(first.text if first else None, 500)
    return slack_views.escalate_view(
        case_id, channel, excerpt=excerpt, directors=escalating.directors(deps.team),
        suggested=esc.suggest_director(deps.team, excerpt), text=deps.catalog,
    )


def _command_listener(name: str, deps: Deps, say_privately: Any,
                      after_acks: AfterAcks) -> Any:
    async def on_command(ack: Any, command: dict[str, Any], respond: Any, client: Any) -> None:
        after_acks.keep()
        await ack()
        person = deps.team.person_by_slack(command["user_id"])
        if name == "calc" and person is not None:
            await _calc(command, respond, client)
            return
        reply = await run_command(name, command.get("text", ""), person, deps)
        await say_privately(respond, reply)
        await post_files(command["channel_id"], reply.attachments)

    async def _calc(command: dict[str, Any], respond: Any, client: Any) -> None:
        prepared = await calculating.prepare_calc(command.get("text", ""), deps)
        if isinstance(prepared, ChatReply):
            await say_privately(respond, prepared)
            return
        # The reply form first: its trigger lasts 3 seconds, the picture takes a while.
        await client.views_open(trigger_id=command["trigger_id"], view=slack_views.reply_view(
            prepared.case_id, command.get("channel_id", ""), deps.team.saved_replies,
            deps.catalog, prepared=(prepared.text, calculating.CALCULATION),
            text_only=await text_only_source(prepared.case_id, deps),
            calc_args=without_controls(command.get("text", "")).strip()))
        await say_privately(respond, calculating.reply_of(prepared, deps))
        await post_files(command["channel_id"], (await calculating.picture(prepared),))

    async def post_files(channel: str, attachments: tuple[Attachment, ...]) -> None:
        messenger = deps.messengers.get("slack")
        if messenger is None:
            return
        for attached in attachments:
            await messenger.post_file(channel, attached.filename, attached.content,
                                      Note(attached.filename), image=attached.image)

    return on_command


def http_route(app: web.Application, bolt: AsyncApp, signing_secret: str,
               foreground: Foreground) -> None:
    """Serve Slack's events, commands and interactivity on `POST /slack/events`.

    The signature is checked on the raw bytes before anything reads them, and a request
    without a good one is refused with one line of log (Bolt would log its whole body).
    A signed body that Bolt cannot read (malformed, nested absurdly deep, not an
    object) is a 400. Each request is in the `foreground` until it has its answer.
    """
    verifier = SignatureVerifier(signing_secret)

    async def slack_events(request: web.Request) -> web.Response:
        with foreground.answering():
            return await _answer(request)

    async def _answer(request: web.Request) -> web.Response:
        try:
            body = await read_body(request, limit=MAX_REQUEST)
        except TooLarge as error:
            return web.json_response({"error": str(error)}, status=413)
        if not _signed(verifier, body, request.headers):
            log.warning("Slack request refused: bad or missing signature (%d bytes from %s)",
                        len(body), request.remote)
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(body=body.decode(), query=request.query_string,
                                            headers=request.headers)  # type: ignore[arg-type]
        # Bolt parses in the constructor: JSON errors, RecursionError, and the errors of
        # reading fields of something that is not an object.
        except (ValueError, RecursionError, AttributeError, TypeError) as error:
            return web.json_response({"error": f"unreadable request: {type(error).__name__}"},
                                     status=400)
        if not isinstance(bolt_request.body, dict) \
                or json_body.deeper_than(bolt_request.body, json_body.MAX_DEPTH):
            return web.json_response({"error": "unreadable request: not a Slack payload"},
                                     status=400)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app.router.add_post("/slack/events", slack_events)


def _signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    """Tell whether Slack signed the body. A timestamp that is no number, or a body that
    is not UTF-8 (which Slack never sends, and the verifier cannot read), is not signed."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    try:
        return verifier.is_valid(body, timestamp, headers.get("X-Slack-Signature"))
    except UnicodeDecodeError:
        return False
