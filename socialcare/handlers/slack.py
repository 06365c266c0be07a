"""Slack in: card buttons, the reply form and slash commands, through slack-bolt.

Every listener acks first (Slack wants it within 3 seconds), then checks the roster,
then calls the domain; anything for the person alone goes back as an ephemeral
message. Requests reach Bolt on `POST /slack/events` (signature checked by Bolt:
a forged or stale one gets 401) or over Socket Mode.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from socialcare.adapters.messengers.slack_card import escape
from socialcare.bot.actions import ActionKind, BadAction, CaseAction
from socialcare.bot.catalog import Catalog
from socialcare.bot.ports import Note
from socialcare.bot.team import SavedReply
from socialcare.deps import Deps
from socialcare.handlers.commands import (
    COMMANDS,
    ChatReply,
    reply_to_case,
    run_action,
    run_command,
)

log = logging.getLogger(__name__)

REPLY_VIEW = "sc1_reply"
_ACTION = re.compile(r"^sc1:")


def private_blocks(text: str) -> list[dict[str, Any]]:
    """Lay out a private reply so that any customer text in it shows literally."""
    return [{"type": "rich_text", "elements": [
        {"type": "rich_text_section", "elements": [{"type": "text", "text": text[:3000]}]}
    ]}]


def register(bolt: AsyncApp, deps: Deps) -> None:
    """Add socialcare's listeners to a Bolt app."""
    text = deps.catalog

    async def say_privately(respond: Any, reply: ChatReply) -> None:
        await respond(text=escape(reply.text[:300]), blocks=private_blocks(reply.text),
                      response_type="ephemeral", replace_original=False)

    @bolt.action(_ACTION)
    async def on_button(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        respond: Any, client: Any) -> None:
        await ack()
        person = deps.team.person_by_slack(body["user"]["id"])
        if person is None:
            await say_privately(respond, ChatReply(text("error.not_in_roster")))
            return
        try:
            clicked = CaseAction.unpack(action["action_id"])
        except BadAction:
            await say_privately(respond, ChatReply(text("error.unknown_button")))
            return
        if clicked.kind is ActionKind.REPLY:
            channel = (body.get("channel") or {}).get("id", "")
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=reply_view(clicked.case_id, channel, deps.team.saved_replies, text),
            )
            return
        reply = await run_action(clicked, person, deps)
        if reply is not None:
            await say_privately(respond, reply)

    @bolt.view(REPLY_VIEW)
    async def on_reply(ack: Any, body: dict[str, Any], view: dict[str, Any],
                       client: Any) -> None:
        answer = _reply_text(view, deps.team.saved_replies)
        if not answer:
            await ack(response_action="errors", errors={"text": text("reply.empty")})
            return
        await ack()
        user = body["user"]["id"]
        person = deps.team.person_by_slack(user)
        case_id, _, channel = view["private_metadata"].partition("|")
        reply = ChatReply(text("error.not_in_roster")) if person is None else \
            await reply_to_case(int(case_id), answer, person, deps)
        if channel:
            await client.chat_postEphemeral(channel=channel, user=user,
                                            text=escape(reply.text),
                                            blocks=private_blocks(reply.text))
        elif person is not None and "slack" in deps.messengers:
            await deps.messengers["slack"].message_person(person, Note(reply.text))

    for name in COMMANDS:
        bolt.command(f"/{name}")(_command_listener(name, deps, say_privately))

    @bolt.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Slack listener failed on a %s request: %s", body.get("type", "?"),
                  error, exc_info=error)


def _command_listener(name: str, deps: Deps, say_privately: Any) -> Any:
    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        person = deps.team.person_by_slack(command["user_id"])
        await say_privately(respond, await run_command(name, command.get("text", ""),
                                                       person, deps))

    return on_command


def reply_view(
    case_id: int, channel: str, saved: tuple[SavedReply, ...], text: Catalog
) -> dict[str, Any]:
    """Return the reply form of a case."""
    blocks: list[dict[str, Any]] = []
    if saved:
        blocks.append({
            "type": "input", "block_id": "saved", "optional": True,
            "label": {"type": "plain_text", "text": text("reply.saved_label")},
            "element": {
                "type": "static_select", "action_id": "saved",
                "placeholder": {"type": "plain_text", "text": text("reply.saved_hint")[:150]},
                "options": [
                    {"text": {"type": "plain_text", "text": reply.title[:75]},
                     "value": str(i)}
                    for i, reply in enumerate(saved[:100])
                ],
            },
        })
    blocks.append({
        "type": "input", "block_id": "text", "optional": bool(saved),
        "label": {"type": "plain_text", "text": text("reply.text_label")},
        "hint": {"type": "plain_text", "text": text("reply.text_hint")},
        "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                    "max_length": 2000},
    })
    return {
        "type": "modal", "callback_id": REPLY_VIEW,
        "private_metadata": f"{case_id}|{channel}",
        "title": {"type": "plain_text", "text": text("reply.title", id=case_id)[:24]},
        "submit": {"type": "plain_text", "text": text("reply.submit")[:24]},
        "close": {"type": "plain_text", "text": text("reply.cancel")[:24]},
        "blocks": blocks,
    }


def _reply_text(view: dict[str, Any], saved: tuple[SavedReply, ...]) -> str:
    values = view.get("state", {}).get("values", {})
    typed = (values.get("text", {}).get("text", {}).get("value") or "").strip()
    if typed:
        return typed
    option = (values.get("saved", {}).get("saved", {}).get("selected_option") or {})
    index = option.get("value")
    if index is not None and index.isdigit() and int(index) < len(saved):
        return saved[int(index)].text
    return ""


def http_route(app: web.Application, bolt: AsyncApp) -> None:
    """Serve Slack's events, commands and interactivity on `POST /slack/events`."""

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app.router.add_post("/slack/events", slack_events)
