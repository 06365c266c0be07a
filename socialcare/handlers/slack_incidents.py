"""Slack in: the buttons of an incident's message and their forms, for the shift lead.

Acknowledge runs `/incident N ack` at once. Answer, Add cases, Remove cases, Resolve:
each opens a form (the click's trigger lasts
3 seconds, so the form opens right after the ack); its submission runs what
`/incident N answer|add|remove|resolve …` runs, with the same roster check. What the
form can tell at once (an empty answer, case numbers that are not numbers, a text too
long, a person who may not) is answered in the form; the outcome comes privately.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from socialcare.bot.actions import BadAction, IncidentAction, IncidentActionKind
from socialcare.bot.announcements.service import MAX_TEXT
from socialcare.bot.catalog import Catalog
from socialcare.bot.text import without_controls
from socialcare.deps import Deps
from socialcare.handlers import incidenting
from socialcare.handlers.chat import ChatReply

INCIDENT_VIEW = "sc1_incident"
_INCIDENT_BUTTON = re.compile(r"^sc1i:")
_FIELD = "text"  # the form's one input: the answer, the case numbers or the follow-up

Tell = Callable[[Any, str, str, ChatReply], Awaitable[None]]
SayPrivately = Callable[[Any, ChatReply], Awaitable[None]]


def incident_view(action: IncidentAction, channel: str, text: Catalog) -> dict[str, Any]:
    """Return the form of an incident button: the answer, the case numbers, or the
    follow-up of its resolution."""
    kind, incident_id = action.kind, action.incident_id
    if kind is IncidentActionKind.ANSWER:
        label, hint, multiline, optional, limit = (
            "incident.answer_label", "incident.answer_hint", True, False, MAX_TEXT)
    elif kind is IncidentActionKind.RESOLVE:
        label, hint, multiline, optional, limit = (
            "incident.follow_up_label", "incident.follow_up_hint", True, True, MAX_TEXT)
    else:
        label, hint, multiline, optional, limit = (
            "incident.cases_label", "incident.cases_hint", False, False,
            incidenting.MAX_CASES_TEXT)
    return {
        "type": "modal", "callback_id": INCIDENT_VIEW,
        "private_metadata": f"{kind.value}|{incident_id}|{channel}",
        "title": {"type": "plain_text",
                  "text": text(f"incident.form_{kind.value}", id=incident_id)[:24]},
        "submit": {"type": "plain_text", "text": text("reply.submit")[:24]},
        "close": {"type": "plain_text", "text": text("reply.cancel")[:24]},
        "blocks": [{
            "type": "input", "block_id": _FIELD, "optional": optional,
            "label": {"type": "plain_text", "text": text(label)[:150]},
            "hint": {"type": "plain_text", "text": text(hint)[:150]},
            "element": {"type": "plain_text_input", "action_id": _FIELD,
                        "multiline": multiline, "max_length": limit},
        }],
    }


def submitted(view: dict[str, Any]) -> tuple[IncidentAction, str, str] | None:
    """Parse a submitted incident form into its action, its channel and its text (control
    characters dropped); None if the form is not one of ours."""
    kind, _, rest = str(view.get("private_metadata") or "").partition("|")
    incident, _, channel = rest.partition("|")
    try:
        action = IncidentAction.unpack(f"sc1i:{kind}:{incident}")
    except BadAction:
        return None
    field = ((view.get("state") or {}).get("values") or {}).get(_FIELD) or {}
    value = (field.get(_FIELD) or {}).get("value") if isinstance(field, dict) else None
    written = without_controls(value if isinstance(value, str) else "").strip()
    return action, channel, written


def register(bolt: AsyncApp, deps: Deps, *, tell: Tell, say_privately: SayPrivately,
             keep: Callable[[], None]) -> None:
    """Add the incident buttons' listeners to a Bolt app (`tell` and `say_privately`
    are the Slack handlers' private answers; `keep` counts a listener's work among what
    the app's stop waits for)."""
    text = deps.catalog

    @bolt.action(_INCIDENT_BUTTON)
    async def on_incident_button(ack: Any, body: dict[str, Any], action: dict[str, Any],
                                 respond: Any, client: Any) -> None:
        keep()
        await ack()
        try:
            clicked = IncidentAction.unpack(action["action_id"])
        except BadAction:
            await say_privately(respond, ChatReply(text("error.unknown_button")))
            return
        refused = incidenting.refusal(deps.team.person_by_slack(body["user"]["id"]), deps)
        if refused is not None:
            await say_privately(respond, ChatReply(refused))
            return
        channel = str((body.get("channel") or {}).get("id", ""))
        if clicked.kind is IncidentActionKind.ACK:  # nothing to ask: done at once
            person = deps.team.person_by_slack(body["user"]["id"])
            assert person is not None
            await tell(client, body["user"]["id"], channel,
                       await incidenting.act(clicked.incident_id, "ack", "", person, deps))
            return
        await client.views_open(trigger_id=body["trigger_id"],
                                view=incident_view(clicked, channel, text))

    @bolt.view(INCIDENT_VIEW)
    async def on_incident_form(ack: Any, body: dict[str, Any], view: dict[str, Any],
                               client: Any) -> None:
        keep()
        parsed = submitted(view)
        if parsed is None:
            await ack(response_action="errors", errors={_FIELD: text("error.unknown_button")})
            return
        clicked, channel, written = parsed
        person = deps.team.person_by_slack(body["user"]["id"])
        wrong = incidenting.refusal(person, deps) or incidenting.form_problem(
            clicked.kind.value, written, deps)
        if wrong is not None:
            await ack(response_action="errors", errors={_FIELD: wrong})
            return
        await ack()
        assert person is not None
        reply = await incidenting.act(clicked.incident_id, clicked.kind.value, written,
                                      person, deps)
        await tell(client, body["user"]["id"], channel, reply)
