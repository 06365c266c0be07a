"""A card view as Telegram HTML with an inline keyboard.

Every piece of text is HTML-escaped (customer text and ours alike); only the tags
written here are markup. The customer's words are cut so that the whole message
stays inside Telegram's 4096 characters.
"""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from socialcare.adapters.messengers.text import cut, safe_url
from socialcare.bot.announcements.views import AnnouncementView
from socialcare.bot.cards import CardView, SlaLevel
from socialcare.bot.escalation_card import EscalationView
from socialcare.bot.ports import Note
from socialcare.bot.team import Person

# 4096 characters after entity parsing; the rest of the card takes well under 1000.
MAX_TEXT = 3000
MAX_OFFICIAL = 500  # the official answer on a card (the rest of the card fits beside it)
MAX_ANNOUNCEMENT = 3500
BUTTONS_PER_ROW = 3


def card_html(view: CardView) -> str:
    """Return the text of a card in Telegram's HTML."""
    lines = [f"<b>{escape(view.title)}</b>"]
    name = view.author_name or view.author_handle or "—"
    profile = safe_url(view.author_url)
    author = f'<a href="{escape(profile)}">{escape(name)}</a>' if profile else escape(name)
    if view.author_handle and view.author_handle != name:
        author += f" {escape(view.author_handle)}"
    lines.append(f"👤 {author}")
    body, was_cut = cut(view.text or "—", MAX_TEXT)
    lines.append(f"<blockquote>{escape(body)}{' …' if was_cut else ''}</blockquote>")
    original = safe_url(view.url)
    footer = []
    if was_cut:
        footer.append(f"<i>{escape(view.cut_label)}</i>")
    if original:
        footer.append(f'<a href="{escape(original)}">{escape(view.original_label)}</a>')
    if footer:
        lines.append(" ".join(footer))
    lines.append(f"<i>{escape(view.published_text)} · {escape(view.priority_text)}</i>")
    if view.about_text:
        lines.append(escape(view.about_text))
    sla = escape(view.sla.text)
    if view.sla.level in (SlaLevel.WARNING, SlaLevel.OVERDUE):
        sla = f"<b>{sla}</b>"
    if view.sla.deadline_text and view.sla.deadline_at is not None:
        sla += f" · ⏰ {escape(view.sla.deadline_text)}"
    lines.append(sla)
    lines.append(f"<b>{escape(view.state_text)}</b>")
    lines += [escape(extra) for extra in
              (view.handoff_text, view.escalation_text, view.incident_text) if extra]
    if view.official is not None:
        answer, was_cut = cut(view.official.text, MAX_OFFICIAL)
        lines.append(f"<b>{escape(view.official_label)}</b> {escape(answer)}"
                     + (" …" if was_cut else ""))
    if view.history:
        lines.append("<i>" + "\n".join(escape(line) for line in view.history) + "</i>")
    return "\n".join(lines)


def card_keyboard(view: CardView) -> InlineKeyboardMarkup | None:
    """Return the card's buttons, a few to a row."""
    if not view.buttons:
        return None
    buttons = [
        InlineKeyboardButton(button.label, callback_data=button.action.pack())
        for button in view.buttons
    ]
    return InlineKeyboardMarkup(
        [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    )


def mention(person: Person) -> str:
    """Return an HTML mention that pings a person by their Telegram id."""
    if person.telegram is None:
        return escape(person.name)
    return f'<a href="tg://user?id={person.telegram}">{escape(person.name)}</a>'


def note_html(note: Note) -> str:
    """Return a note with its mentions in Telegram's HTML."""
    text = escape(note.text)
    if note.mention:
        text += "\n" + " ".join(mention(person) for person in note.mention)
    return text


def note_keyboard(note: Note) -> InlineKeyboardMarkup | None:
    """Return a note's buttons (an incident's message), a few to a row, or None."""
    if not note.buttons:
        return None
    buttons = [InlineKeyboardButton(button.label, callback_data=button.action)
               for button in note.buttons]
    return InlineKeyboardMarkup(
        [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)])


def escalation_html(view: EscalationView) -> str:
    """Return the text of an escalation card in Telegram's HTML."""
    lines = [f"<b>{escape(view.title)}</b>", "",
             f"<b>{escape(view.problem_label)}</b>",
             escape(cut(view.problem, MAX_TEXT // 2)[0])]
    if view.options:
        lines += ["", f"<b>{escape(view.options_label)}</b>"]
        lines += [f"{n}. {escape(cut(option, 300)[0])}"
                  for n, option in enumerate(view.options, start=1)]
    if view.cases:
        lines += ["", f"<b>{escape(view.cases_label)}</b>"]
        for case in view.cases:
            url = safe_url(case.url)
            label = f'<a href="{escape(url)}">{escape(case.label)}</a>' if url \
                else escape(case.label)
            lines.append(f"• {label} — {escape(case.excerpt)}")
        if view.more_text:
            lines.append(escape(view.more_text))
            url = safe_url(view.all_cases_url)
            if url:
                lines.append(f'<a href="{escape(url)}">{escape(view.all_cases_label)}</a>')
    lines += ["", f"<i>{escape(view.raised_text)} · {escape(view.director_text)}</i>",
              f"<b>{escape(view.state_text)}</b>"]
    if view.decision:
        lines.append(escape(cut(view.decision, 500)[0]))
    lines += [f"<i>{escape(cut(comment, 300)[0])}</i>" for comment in view.comments]
    return "\n".join(lines)


def escalation_keyboard(view: EscalationView) -> InlineKeyboardMarkup | None:
    """Return an escalation card's buttons: one row per kind, numbers side by side."""
    if not view.buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    previous = None
    for button in view.buttons:
        key = InlineKeyboardButton(button.label, callback_data=button.action.pack())
        if button.action.kind is previous and len(rows[-1]) < 5:
            rows[-1].append(key)
        else:
            rows.append([key])
        previous = button.action.kind
    return InlineKeyboardMarkup(rows)


def announcement_html(view: AnnouncementView) -> str:
    """Return an announcement's copy in Telegram's HTML (a withdrawn text struck out)."""
    body = escape(cut(view.text, MAX_ANNOUNCEMENT)[0])
    if view.state.value == "withdrawn":
        body = f"<s>{body}</s>"
    return "\n".join([f"<b>{escape(view.title)}</b>", body,
                      f"<i>{escape(' · '.join(view.status))}</i>"])


def announcement_keyboard(view: AnnouncementView) -> InlineKeyboardMarkup | None:
    """Return Got it while the announcement is in force."""
    if not view.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.action.pack())
                                  for b in view.buttons]])
