"""One action codec for both messengers.

A button carries a `CaseAction` packed as `sc1:<kind>:<case id>`: short enough for
Telegram's 64-byte callback_data and Slack's action_id, and independent of any class
or function name, so that cards already posted keep working after a rename. The
version prefix lets a future format live next to this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

PREFIX = "sc1"
MAX_BYTES = 64


class ActionKind(StrEnum):
    """What a card button asks for; the values are part of the wire format."""

    CLAIM = "claim"
    RELEASE = "release"
    REPLY = "reply"
    ANSWERED = "answered"
    RESOLVE = "resolve"
    DISMISS = "dismiss"
    ESCALATE = "escalate"
    HAND_OFF = "handoff"  # with the second-line team's number, or none to choose
    HAND_BACK = "handback"
    TOPIC = "topic"  # with the topic's number to add or take it away, or none to choose
    # Reply with an announcement's official answer (its number as the argument): a
    # prefilled form in Slack; in Telegram an offer by private message, whose
    # OFFICIAL_SEND button publishes the answer as it stands.
    OFFICIAL = "official"
    OFFICIAL_SEND = "official_send"
    # Offer the customer a call back: the form asks them for a number, then sends the
    # number to the call centre. The call centre's card answers with CALLED or
    # UNREACHABLE.
    CALL_BACK = "callback"
    # Telegram's call-back conversation: publish the standard ask for a number as it stands.
    CALL_BACK_ASK = "callback_ask"
    CALLED = "called"
    UNREACHABLE = "unreachable"


_PATTERN = re.compile(
    rf"^{PREFIX}:(?P<kind>[a-z_]+):(?P<case_id>[1-9][0-9]{{0,17}})(?::(?P<arg>[0-9]{{1,18}}))?$"
)


class BadAction(ValueError):
    """A button payload that is not one of ours."""


@dataclass(frozen=True)
class CaseAction:
    """A button's request: do `kind` to case `case_id` (with an optional number)."""

    kind: ActionKind
    case_id: int
    arg: int | None = None

    def pack(self) -> str:
        """Return the payload for Slack action_id/value and Telegram callback_data."""
        packed = f"{PREFIX}:{self.kind.value}:{self.case_id}"
        if self.arg is not None:
            packed += f":{self.arg}"
        assert len(packed.encode()) <= MAX_BYTES
        return packed

    @classmethod
    def unpack(cls, payload: str) -> CaseAction:
        """Parse a payload, or raise BadAction."""
        found = _PATTERN.match(payload)
        if found is None:
            raise BadAction(f"not a socialcare action: {payload[:80]!r}")
        try:
            kind = ActionKind(found["kind"])
        except ValueError:
            raise BadAction(f"unknown action {found['kind']!r}") from None
        arg = found["arg"]
        return cls(kind, int(found["case_id"]), None if arg is None else int(arg))


class EscalationActionKind(StrEnum):
    """What an escalation card's button asks for; values are part of the wire format."""

    ACKNOWLEDGE = "ack"
    DECIDE = "decide"  # with the option's number
    WRITE_DECISION = "write"
    REASSIGN = "reassign"  # with the new director's place in the roster, or 0 to choose
    COMMENT = "comment"
    CLOSE = "close"


_ESCALATION = re.compile(
    rf"^{PREFIX}e:(?P<kind>[a-z]+):(?P<id>[1-9][0-9]{{0,17}})(?::(?P<arg>[0-9]{{1,3}}))?$"
)


@dataclass(frozen=True)
class EscalationAction:
    """A button's request on an escalation card: `kind`, with an optional number."""

    kind: EscalationActionKind
    escalation_id: int
    arg: int | None = None

    def pack(self) -> str:
        """Return the payload for Slack action_id/value and Telegram callback_data."""
        packed = f"{PREFIX}e:{self.kind.value}:{self.escalation_id}"
        if self.arg is not None:
            packed += f":{self.arg}"
        assert len(packed.encode()) <= MAX_BYTES
        return packed

    @classmethod
    def unpack(cls, payload: str) -> EscalationAction:
        """Parse a payload, or raise BadAction."""
        found = _ESCALATION.match(payload)
        if found is None:
            raise BadAction(f"not a socialcare escalation action: {payload[:80]!r}")
        try:
            kind = EscalationActionKind(found["kind"])
        except ValueError:
            raise BadAction(f"unknown escalation action {found['kind']!r}") from None
        arg = found["arg"]
        return cls(kind, int(found["id"]), None if arg is None else int(arg))


_Kind = TypeVar("_Kind", bound=StrEnum)


def _kind_and_id(pattern: re.Pattern[str], payload: str, kinds: type[_Kind],
                 what: str) -> tuple[_Kind, int]:
    """Read `<prefix>:<kind>:<id>` of a button on an announcement or an incident, the
    whole payload (a trailing newline is not a button's), or raise BadAction."""
    found = pattern.fullmatch(payload)
    if found is None:
        raise BadAction(f"not a socialcare {what} action: {payload[:80]!r}")
    try:
        kind = kinds(found["kind"])
    except ValueError:
        raise BadAction(f"unknown {what} action {found['kind']!r}") from None
    return kind, int(found["id"])


class AnnouncementActionKind(StrEnum):
    """What an announcement's button asks for; the values are part of the wire format."""

    GOT_IT = "ack"


_ANNOUNCEMENT = re.compile(rf"^{PREFIX}a:(?P<kind>[a-z]+):(?P<id>[1-9][0-9]{{0,17}})$")


@dataclass(frozen=True)
class AnnouncementAction:
    """A button's request on an announcement's chat copy (Got it)."""

    kind: AnnouncementActionKind
    announcement_id: int

    def pack(self) -> str:
        """Return the payload for Slack action_id/value and Telegram callback_data."""
        packed = f"{PREFIX}a:{self.kind.value}:{self.announcement_id}"
        assert len(packed.encode()) <= MAX_BYTES
        return packed

    @classmethod
    def unpack(cls, payload: str) -> AnnouncementAction:
        """Parse a payload, or raise BadAction."""
        return cls(*_kind_and_id(_ANNOUNCEMENT, payload, AnnouncementActionKind,
                                 "announcement"))


class IncidentActionKind(StrEnum):
    """What an incident message's button asks for; the values are part of the wire format."""

    ACK = "ack"  # no form: the press is the acknowledgement
    ANSWER = "answer"
    ADD = "add"
    REMOVE = "remove"
    RESOLVE = "resolve"


_INCIDENT = re.compile(rf"^{PREFIX}i:(?P<kind>[a-z]+):(?P<id>[1-9][0-9]{{0,17}})$")


@dataclass(frozen=True)
class IncidentAction:
    """A button's request on an incident's message in a team channel (a lead's form)."""

    kind: IncidentActionKind
    incident_id: int

    def pack(self) -> str:
        """Return the payload for Slack action_id/value and Telegram callback_data."""
        packed = f"{PREFIX}i:{self.kind.value}:{self.incident_id}"
        assert len(packed.encode()) <= MAX_BYTES
        return packed

    @classmethod
    def unpack(cls, payload: str) -> IncidentAction:
        """Parse a payload, or raise BadAction."""
        return cls(*_kind_and_id(_INCIDENT, payload, IncidentActionKind, "incident"))
