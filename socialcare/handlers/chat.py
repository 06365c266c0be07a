"""What the chat handlers share: the reply they give, and domain errors in words."""

from __future__ import annotations

from dataclasses import dataclass

from socialcare.bot.cards import display_name
from socialcare.bot.errors import DomainError
from socialcare.deps import Deps


@dataclass(frozen=True)
class Attachment:
    """A file that goes with a reply: a chart (an image) or a document."""

    filename: str
    content: bytes
    image: bool = False


@dataclass(frozen=True)
class ReplyDraft:
    """An answer prepared for a case (a calculation): it goes into the case's reply form
    for the agent to check and send; `form` is recorded with the answer."""

    case_id: int
    text: str
    form: str
    # The `/calc` arguments it was worked out from: the comparison picture is drawn again
    # from them to go with the reply (to sources that take pictures).
    calc_args: str = ""


@dataclass(frozen=True)
class ChatReply:
    """What the bot answers: private to the person unless `public`."""

    text: str
    public: bool = False
    # Files to post along in the same chat.
    attachments: tuple[Attachment, ...] = ()
    # For the person's eyes only (a sign-in link): Telegram sends it to their private
    # chat even when the command was typed in a group.
    personal: bool = False
    # A link the reply is about, shown as a link where plain text would not be one.
    link: str | None = None
    # An answer to put into a case's reply form.
    draft: ReplyDraft | None = None


def describe_error(error: DomainError, deps: Deps) -> str:
    """Return a domain error's reason in the team's language."""
    text = deps.catalog
    params = dict(error.params)
    if "state" in params:
        params["state"] = text(f"state.{params['state']}")
    if "escalation_state" in params:
        params["escalation_state"] = text(f"escalation_state.{params['escalation_state']}")
    if "action" in params:
        params["action"] = text(f"verb.{params['action']}")
    if "by" in params:
        params["by"] = display_name(str(params["by"]), deps.team, text)
    return text(error.key, **params)


def service(deps: Deps) -> dict[str, object]:
    """Return the keyword arguments every domain command takes."""
    return {"uow": deps.uow(), "clock": deps.clock, "team": deps.team}
