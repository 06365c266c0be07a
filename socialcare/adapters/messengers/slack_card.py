"""A card view as Slack Block Kit.

Customer text (the mention, the author's name and handle) goes into `rich_text`
text elements, which Slack shows literally: `*bold*` stays asterisks and `<!channel>`
pings nobody. Our own texts go into mrkdwn with `&`, `<` and `>` escaped. The
deadline is a `<!date^…>` token, so every reader sees it in their own timezone.
"""

from __future__ import annotations

from typing import Any

from socialcare.adapters.messengers.text import cut, safe_url
from socialcare.bot.actions import ActionKind
from socialcare.bot.announcements.views import AnnouncementView
from socialcare.bot.cards import Button, CardView, SlaLevel
from socialcare.bot.escalation_card import EscalationView

# Block Kit limits (section text 3000, header 150, button text 75, context 10 elements);
# the customer's text is cut well inside them, with a link to the original.
MAX_TEXT = 2800
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_HISTORY = 9
MAX_OPTION = 75
MAX_OPTIONS = 100
METADATA_EVENT = "socialcare_case"
ANNOUNCEMENT_EVENT = "socialcare_announcement"
MAX_OFFICIAL = 600


def escape(text: str) -> str:
    """Escape Slack's three control characters; nothing else is touched."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(value: str, **style: bool) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "text", "text": value}
    if style:
        element["style"] = style
    return element


def _link(url: str, label: str) -> dict[str, Any]:
    return {"type": "link", "url": url, "text": label}


def card_blocks(view: CardView) -> list[dict[str, Any]]:
    """Return the blocks of a card."""
    blocks: list[dict[str, Any]] = [{
        "type": "header",
        "text": {"type": "plain_text", "text": view.title[:MAX_HEADER], "emoji": True},
    }]
    author: list[dict[str, Any]] = [_text("👤 ")]
    name = view.author_name or view.author_handle or "—"
    profile = safe_url(view.author_url)
    author.append(_link(profile, name) if profile else _text(name, bold=True))
    if view.author_handle and view.author_handle != name:
        author.append(_text(f"  {view.author_handle}"))
    body, was_cut = cut(view.text or "—", MAX_TEXT)
    if was_cut:
        body += " …"
    rich: list[dict[str, Any]] = [
        {"type": "rich_text_section", "elements": author},
        {"type": "rich_text_quote", "elements": [_text(body)]},
    ]
    original = safe_url(view.url)
    footer: list[dict[str, Any]] = []
    if was_cut:
        footer.append(_text(view.cut_label + " ", italic=True))
    if original:
        footer.append(_link(original, view.original_label))
    if footer:
        rich.append({"type": "rich_text_section", "elements": footer})
    blocks.append({"type": "rich_text", "elements": rich})
    context = f"{view.published_text} · {view.priority_text}"
    if view.about_text:
        context += f"\n{view.about_text}"
    blocks.append({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": escape(context)}],
    })
    state = f"{_sla(view)}\n*{escape(view.state_text)}*"
    for extra in (view.handoff_text, view.escalation_text, view.incident_text):
        if extra:
            state += f"\n{escape(extra)}"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": state}})
    if view.official is not None:
        answer, was_cut = cut(view.official.text, MAX_OFFICIAL)
        blocks.append({"type": "rich_text", "elements": [{"type": "rich_text_section",
                       "elements": [_text(view.official_label + " ", bold=True),
                                    _text(answer + (" …" if was_cut else ""))]}]})
    if view.history:
        lines = "\n".join(escape(line) for line in view.history[-MAX_HISTORY:])
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": lines}]})
    if view.buttons:
        buttons = []
        for button in view.buttons:
            if button.action.kind is ActionKind.TOPIC:
                if view.topic_choices:
                    buttons.append(_topic_select(button, view))
                continue
            packed = button.action.pack()
            element: dict[str, Any] = {
                "type": "button",
                "text": {"type": "plain_text", "text": button.label[:MAX_BUTTON], "emoji": True},
                "action_id": packed,
                "value": packed,
            }
            if button.style:
                element["style"] = button.style
            buttons.append(element)
        blocks.append({"type": "actions", "block_id": f"case-{view.case_id}",
                       "elements": buttons})
    return blocks


def _topic_select(button: Button, view: CardView) -> dict[str, Any]:
    """Return the card's topic select: choosing a topic adds it or takes it away."""
    return {
        "type": "static_select",
        "action_id": button.action.pack(),
        "placeholder": {"type": "plain_text", "text": button.label[:MAX_OPTION], "emoji": True},
        "options": [
            {"text": {"type": "plain_text", "text": choice.title[:MAX_OPTION], "emoji": True},
             "value": choice.action.pack()}
            for choice in view.topic_choices[:MAX_OPTIONS]
        ],
    }


def _sla(view: CardView) -> str:
    line = escape(view.sla.text)
    if view.sla.deadline_at is None:
        return line
    stamp = int(view.sla.deadline_at.timestamp())
    deadline = f"<!date^{stamp}^{{time}}|{escape(view.sla.deadline_text)}>"
    bold = view.sla.level in (SlaLevel.WARNING, SlaLevel.OVERDUE)
    return f"*{line}*  ·  ⏰ {deadline}" if bold else f"{line}  ·  ⏰ {deadline}"


def card_fallback(view: CardView) -> str:
    """Return the notification text of a card (shown where blocks are not)."""
    return escape(f"{view.title} — {view.sla.text} — {view.state_text}")


def card_metadata(view: CardView) -> dict[str, Any]:
    """Return the message metadata that tags a card with its case."""
    return {"event_type": METADATA_EVENT, "event_payload": {"case_id": view.case_id}}


def escalation_blocks(view: EscalationView) -> list[dict[str, Any]]:
    """Return the blocks of an escalation card."""
    blocks: list[dict[str, Any]] = [{
        "type": "header",
        "text": {"type": "plain_text", "text": view.title[:MAX_HEADER], "emoji": True},
    }]
    rich: list[dict[str, Any]] = [
        {"type": "rich_text_section", "elements": [_text(view.problem_label + "\n", bold=True),
                                                   _text(cut(view.problem, MAX_TEXT)[0])]},
    ]
    if view.options:
        rich.append({"type": "rich_text_section",
                     "elements": [_text("\n" + view.options_label, bold=True)]})
        rich.append({"type": "rich_text_list", "style": "ordered", "elements": [
            {"type": "rich_text_section", "elements": [_text(cut(option, 500)[0])]}
            for option in view.options
        ]})
    if view.cases:
        rich.append({"type": "rich_text_section",
                     "elements": [_text(view.cases_label, bold=True)]})
        items = []
        for case in view.cases:
            url = safe_url(case.url)
            head = _link(url, case.label) if url else _text(case.label)
            items.append({"type": "rich_text_section",
                          "elements": [head, _text(f" — {case.excerpt}")]})
        rich.append({"type": "rich_text_list", "style": "bullet", "elements": items})
    rest: list[dict[str, Any]] = []
    if view.more_text:
        rest.append(_text(view.more_text))
    url = safe_url(view.all_cases_url)
    if url and view.more_text:
        rest += [_text("\n"), _link(url, view.all_cases_label)]
    if rest:
        rich.append({"type": "rich_text_section", "elements": rest})
    blocks.append({"type": "rich_text", "elements": rich})
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn", "text": escape(f"{view.raised_text} · {view.director_text}")}]})
    state: list[dict[str, Any]] = [_text(view.state_text, bold=True)]
    if view.decision:
        state.append(_text("\n" + cut(view.decision, MAX_TEXT)[0]))
    for comment in view.comments:
        state.append(_text("\n" + cut(comment, 500)[0], italic=True))
    blocks.append({"type": "rich_text",
                   "elements": [{"type": "rich_text_section", "elements": state}]})
    if view.buttons:
        elements = []
        for button in view.buttons[:25]:
            packed = button.action.pack()
            element: dict[str, Any] = {
                "type": "button", "action_id": packed, "value": packed,
                "text": {"type": "plain_text", "text": button.label[:MAX_BUTTON], "emoji": True},
            }
            if button.style:
                element["style"] = button.style
            elements.append(element)
        blocks.append({"type": "actions", "block_id": f"escalation-{view.escalation_id}",
                       "elements": elements})
    return blocks


def escalation_fallback(view: EscalationView) -> str:
    """Return the notification text of an escalation card."""
    return escape(f"{view.title} — {view.state_text}")


def announcement_blocks(view: AnnouncementView) -> list[dict[str, Any]]:
    """Return the blocks of an announcement's copy: its text shown literally, its
    status, and Got it while it is in force."""
    blocks: list[dict[str, Any]] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": view.title[:MAX_HEADER], "emoji": True}},
        {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
            _text(cut(view.text, MAX_TEXT)[0], strike=not view.in_force
                  and view.state.value == "withdrawn")]}]},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": escape(" · ".join(view.status))}]},
    ]
    if view.buttons:
        blocks.append({"type": "actions", "block_id": f"announcement-{view.announcement_id}",
                       "elements": [{
                           "type": "button", "action_id": b.action.pack(),
                           "value": b.action.pack(), "style": "primary",
                           "text": {"type": "plain_text", "text": b.label[:MAX_BUTTON],
                                    "emoji": True}} for b in view.buttons]})
    return blocks


def announcement_metadata(view: AnnouncementView) -> dict[str, Any]:
    """Return the message metadata that tags a copy with its announcement."""
    return {"event_type": ANNOUNCEMENT_EVENT,
            "event_payload": {"announcement_id": view.announcement_id}}
