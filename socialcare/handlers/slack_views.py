"""Slack modals: the reply form, the escalation form, and the director's forms.

Each builder returns a view; each reader parses a submitted view's state into plain
values once, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socialcare.bot.catalog import Catalog
from socialcare.bot.escalations import Category
from socialcare.bot.team import Person, SavedReply, SecondLineTeam

REPLY_VIEW = "sc1_reply"
ESCALATE_VIEW = "sc1_escalate"
WRITE_VIEW = "sc1_write"  # a director's written decision, or anyone's comment
REASSIGN_VIEW = "sc1_reassign"
HANDOFF_VIEW = "sc1_handoff"
CALLBACK_VIEW = "sc1_callback"
# private_metadata holds 3,000 characters; the case, channel and form take a few dozen.
MAX_CALC_ARGS = 2800
# The images of a card's thread offered in its reply form (a select holds 100 options).
MAX_THREAD_PICTURES = 20
PICTURE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit]}


def _modal(callback_id: str, title: str, metadata: str, blocks: list[dict[str, Any]],
           text: Catalog) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": callback_id, "private_metadata": metadata,
        "title": _plain(title, 24), "submit": _plain(text("reply.submit"), 24),
        "close": _plain(text("reply.cancel"), 24), "blocks": blocks,
    }


def _text_input(block_id: str, label: str, *, initial: str = "", multiline: bool = True,
                optional: bool = False, hint: str | None = None,
                max_length: int = 2000) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id,
                               "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "optional": optional,
                             "label": _plain(label), "element": element}
    if hint:
        block["hint"] = _plain(hint)
    return block


def _select(block_id: str, label: str, options: list[tuple[str, str]],
            initial: str | None = None, *, optional: bool = False) -> dict[str, Any]:
    choices = [{"text": _plain(title, 75), "value": value} for title, value in options[:100]]
    element: dict[str, Any] = {"type": "static_select", "action_id": block_id,
                               "options": choices}
    chosen = next((c for c in choices if c["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": _plain(label), "element": element}


def values(view: dict[str, Any]) -> dict[str, str]:
    """Return a submitted view's inputs as block id → text (a select gives its value)."""
    found: dict[str, str] = {}
    for block_id, actions in (view.get("state", {}).get("values", {}) or {}).items():
        for action in actions.values():
            if action.get("type") == "static_select":
                found[block_id] = (action.get("selected_option") or {}).get("value") or ""
            else:
                found[block_id] = (action.get("value") or "").strip()
    return found


def reply_view(
    case_id: int, channel: str, saved: tuple[SavedReply, ...], text: Catalog, *,
    official: tuple[int, str] | None = None, prepared: tuple[str, str] | None = None,
    text_only: str | None = None, calc_args: str = "",
    thread_pictures: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """Return the reply form of a case; `official` (announcement id, its answer) fills
    it in with an announcement's official answer, `prepared` (text, answer form) with an
    answer prepared for the case (a calculation, from `/calc calc_args`: its picture goes
    with the reply); `text_only` names the case's source when it publishes text only,
    which the form says before anything is sent; `thread_pictures` (name, file id) are
    the images shared in the card's thread, offered to choose from."""
    blocks: list[dict[str, Any]] = []
    filled = official[1] if official else prepared[0] if prepared else ""
    # The /calc arguments ride in the metadata (the picture is drawn again from them).
    calc_args = calc_args if len(calc_args) <= MAX_CALC_ARGS else ""
    if text_only is not None:
        blocks.append({"type": "context", "block_id": "text_only", "elements": [
            {"type": "plain_text", "text": text("reply.text_only", source=text_only)[:2000]}]})
    elif calc_args:
        blocks.append({"type": "context", "block_id": "calc_picture", "elements": [
            {"type": "plain_text", "text": text("calc.picture_goes")}]})
    if saved and not filled:
        blocks.append(_select("saved", text("reply.saved_label"),
                              [(("🖼 " if r.image and text_only is None else "") + r.title,
                                str(i)) for i, r in enumerate(saved)], optional=True))
    if text_only is None:
        # A picture the agent attaches, published with the answer.
        blocks.append({"type": "input", "block_id": "picture", "optional": True,
                       "label": _plain(text("reply.picture_label")),
                       "hint": _plain(text("reply.picture_hint")),
                       "element": {"type": "file_input", "action_id": "picture",
                                   "filetypes": ["png", "jpg", "jpeg", "gif"],
                                   "max_files": 1}})
        if thread_pictures:
            blocks.append(_select("thread_picture", text("reply.thread_picture_label"),
                                  list(thread_pictures[:MAX_THREAD_PICTURES]), optional=True))
    blocks.append(_text_input("text", text("reply.text_label"),
                              optional=bool(saved) and not filled,
                              hint=text("reply.text_hint"), initial=filled,
                              max_length=3000 if filled else 2000))
    form = prepared[1] if prepared else ""
    metadata = "|".join([str(case_id), channel, str(official[0]) if official else "",
                         form, calc_args]).rstrip("|")
    return _modal(REPLY_VIEW, text("reply.title", id=case_id), metadata, blocks, text)


@dataclass(frozen=True)
class ReplyMetadata:
    """What a reply form carries besides its inputs."""

    case_id: int
    channel: str
    official: int | None
    form: str
    # The /calc arguments of a calculation (its picture is drawn again from them).
    calc_args: str


def reply_metadata(metadata: str) -> ReplyMetadata:
    """Read a reply form's metadata: case id, channel, announcement id, answer form and
    the /calc arguments (last: they may hold a "|")."""
    case_id, channel, official, form, calc_args = [*metadata.split("|", 4), "", "", "", ""][:5]
    return ReplyMetadata(int(case_id), channel, int(official) if official else None,
                         form or "text", calc_args)


def callback_view(case_id: int, channel: str, text: Catalog) -> dict[str, Any]:
    """Return the call-back form: the ask for a number (published), then the number and
    the time the customer gave (to the call centre)."""
    return _modal(CALLBACK_VIEW, text("reply.callback_title", id=case_id),
                  f"{case_id}|{channel}", [
                      _text_input("ask", text("reply.callback_ask_label"), optional=True,
                                  initial=text("reply.callback_ask"),
                                  hint=text("reply.callback_ask_hint")),
                      _text_input("phone", text("reply.callback_phone_label"), optional=True,
                                  multiline=False, max_length=40),
                      _text_input("when", text("reply.callback_when_label"), optional=True,
                                  multiline=False, max_length=200),
                  ], text)


def thread_pictures(messages: list[Any], card_ts: str) -> tuple[tuple[str, str], ...]:
    """Return the images people shared under a card (name, file id), newest first, from
    its thread's messages as conversations.replies gives them (files[] of file objects)."""
    found: list[tuple[str, str]] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("ts") == card_ts:
            continue
        for file in message.get("files") or []:
            if not isinstance(file, dict) or not isinstance(file.get("id"), str) \
                    or file.get("mimetype") not in PICTURE_TYPES:
                continue
            name = str(file.get("title") or file.get("name") or file["id"])
            found.append((name, file["id"][:150]))
    return tuple(reversed(found))[:MAX_THREAD_PICTURES]


def thread_picture(view: dict[str, Any]) -> str | None:
    """Return the file id of the thread's image the form picked, if any."""
    return values(view).get("thread_picture") or None


def reply_text(view: dict[str, Any], saved: tuple[SavedReply, ...]) -> str:
    """Return the answer a reply form carries: typed, else the saved reply picked."""
    given = values(view)
    if given.get("text"):
        return given["text"]
    index = given.get("saved", "")
    return saved[int(index)].text if index.isdigit() and int(index) < len(saved) else ""


def attached_file(view: dict[str, Any]) -> dict[str, Any] | None:
    """Return the file object the form's file input holds, if any."""
    state = (view.get("state", {}).get("values", {}) or {}).get("picture") or {}
    files = (state.get("picture") or {}).get("files") or []
    return files[0] if files and isinstance(files[0], dict) else None


def reply_picture(view: dict[str, Any], saved: tuple[SavedReply, ...]) -> str | None:
    """Return the picture file of the saved reply the form picked, if it has one."""
    index = values(view).get("saved", "")
    return saved[int(index)].image if index.isdigit() and int(index) < len(saved) else None


def escalate_view(
    case_id: int, channel: str, *, excerpt: str, directors: list[Person],
    suggested: Person | None, text: Catalog,
) -> dict[str, Any]:
    """Return the escalation form of a case, prefilled from it."""
    blocks = [
        _select("category", text("escalate.category"),
                [(text(f"category.{c.value}"), c.value) for c in Category]),
        _select("director", text("escalate.director"), [(p.name, p.id) for p in directors],
                suggested.id if suggested else None),
        _text_input("problem", text("escalation.problem"),
                    initial=text("escalate.prefill", id=case_id, excerpt=excerpt)),
        _text_input("options", text("escalation.options"), optional=True,
                    hint=text("escalate.options_hint")),
        _text_input("more", text("escalate.more_cases"), optional=True, multiline=False,
                    hint=text("escalate.more_hint"), max_length=200),
    ]
    return _modal(ESCALATE_VIEW, text("escalate.title", id=case_id), f"{case_id}|{channel}",
                  blocks, text)


def write_view(kind: str, escalation_id: int, text: Catalog) -> dict[str, Any]:
    """Return the form for a written decision (`kind` "write") or a comment."""
    label = text("escalate.decision" if kind == "write" else "escalate.comment")
    return _modal(WRITE_VIEW, label, f"{kind}|{escalation_id}",
                  [_text_input("text", label)], text)


def reassign_view(escalation_id: int, directors: list[Person], text: Catalog) -> dict[str, Any]:
    """Return the form that passes an escalation to another director."""
    return _modal(REASSIGN_VIEW, text("button.reassign"), str(escalation_id),
                  [_select("director", text("escalate.director"),
                           [(p.name, p.id) for p in directors])], text)


def handoff_view(case_id: int, channel: str, teams: tuple[SecondLineTeam, ...],
                 text: Catalog) -> dict[str, Any]:
    """Return the form that sends a case to a second-line team."""
    return _modal(HANDOFF_VIEW, text("escalate.handoff_title", id=case_id),
                  f"{case_id}|{channel}", [
                      _select("team", text("escalate.handoff_team"),
                              [(t.title, t.name) for t in teams]),
                      _text_input("note", text("escalate.handoff_note"), optional=True),
                  ], text)
