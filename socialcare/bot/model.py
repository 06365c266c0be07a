"""The team's vocabulary as plain dataclasses: mention, case, event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Tier(StrEnum):
    """How fast a source's mentions must be answered."""

    MAIN = "main"  # the big social networks
    EXTRA = "extra"  # forums, news portals


class Priority(StrEnum):
    """The order in which cases are worked when deadlines are equal."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        """Return 0 for the most pressing priority."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2}


class State(StrEnum):
    """Where a case stands in its life cycle."""

    NEW = "new"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    REOPENED = "reopened"


OPEN_STATES = frozenset({State.NEW, State.CLAIMED, State.ANSWERED, State.REOPENED})


class EventKind(StrEnum):
    """What happened to a case; every change of a case appends one."""

    CREATED = "created"
    CLAIMED = "claimed"
    RELEASED = "released"
    CLAIM_EXPIRED = "claim_expired"
    AGENT_MESSAGE = "agent_message"
    CUSTOMER_MESSAGE = "customer_message"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    REOPENED = "reopened"
    SLA_POINT = "sla_point"
    ESCALATED = "escalated"
    HANDED_OFF = "handed_off"
    HANDED_BACK = "handed_back"
    TOPICS_CHANGED = "topics_changed"
    INCIDENT_JOINED = "incident_joined"
    INCIDENT_LEFT = "incident_left"


SYSTEM = "system"


@dataclass(frozen=True)
class Author:
    """Who wrote a mention, as the source names them."""

    id: str | None = None
    name: str | None = None
    handle: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class RawMention:
    """A mention as a collector found it, before normalising and matching."""

    source: str
    external_id: str
    text: str
    published_at: datetime
    url: str | None = None
    platform: str | None = None
    author: Author = field(default_factory=Author)
    thread_id: str | None = None
    parent_id: str | None = None
    # A review's stars, 1–5: one or two make its case urgent.
    rating: int | None = None


@dataclass
class Mention:
    """A stored message of a case: the customer's, or the brand's own answer."""

    source: str
    external_id: str
    platform: str
    text: str
    published_at: datetime
    collected_at: datetime
    thread_key: str
    author: Author = field(default_factory=Author)
    url: str | None = None
    parent_id: str | None = None
    from_brand: bool = False
    case_id: int | None = None
    id: int | None = None


@dataclass
class Case:
    """One customer's matter: the first mention, its follow-ups and the team's work on it.

    `version` grows with every stored change; storage applies a change only if the
    version it was read at is still current, which is how concurrent clicks, workers
    and messengers are kept from both winning.
    """

    brand: str
    source: str
    platform: str
    tier: Tier
    priority: Priority
    thread_key: str
    published_at: datetime
    collected_at: datetime
    state: State = State.NEW
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    response_cycle: int = 1
    response_started_at: datetime | None = None
    response_due_at: datetime | None = None
    response_alerts: int = 0
    resolve_due_at: datetime | None = None
    resolve_alerts: int = 0
    next_alert_at: datetime | None = None
    # While a second-line team works on it: which team, who handed it off, since when.
    handoff_team: str | None = None
    handed_off_by: str | None = None
    handed_off_at: datetime | None = None
    # What the mention was read as at ingest: its language ("ru", "kk", "en",
    # "other"; None for cases older than the detector), its topics (agents may change
    # them) and the places it names.
    language: str | None = None
    topics: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    version: int = 0
    id: int | None = None

    @property
    def is_open(self) -> bool:
        """Tell whether the team still owes this case work."""
        return self.state in OPEN_STATES

    @property
    def awaits_response(self) -> bool:
        """Tell whether the customer is waiting for the team's (next) answer."""
        return self.is_open and self.response_due_at is not None

    @property
    def collector_lag_seconds(self) -> float:
        """Return how long the mention took from being published to reaching us."""
        return max(0.0, (self.collected_at - self.published_at).total_seconds())


@dataclass(frozen=True)
class Event:
    """One change of a case: who did what, and when."""

    case_id: int
    kind: EventKind
    actor: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass
class Card:
    """A message that shows a case (in a team channel) or an escalation (in a
    director's direct messages), and how far it is in step.

    `change_seq` grows with every change of what it shows; the card is in step when
    `synced_seq` has caught up. `due_at` is when it must next be looked at: at once
    after a change, or at the next step of its SLA line.
    """

    case_id: int | None
    messenger: str
    channel: str
    due_at: datetime
    deadline: datetime | None = None
    message_id: str | None = None
    fingerprint: str | None = None
    change_seq: int = 1
    synced_seq: int = 0
    rank: int = 0  # 0: not posted yet, 1: the case changed, 2: an SLA step
    posting_since: datetime | None = None
    post_attempts: int = 0
    unsure_posts: int = 0  # attempts whose outcome is unknown: possible copies
    posted_at: datetime | None = None
    notified_event_id: int = 0
    escalation_id: int | None = None
    id: int | None = None


@dataclass
class WebhookDelivery:
    """A JSON body to POST to a URL (a ticket system), retried until it is taken."""

    url: str
    body: dict[str, Any]
    created_at: datetime
    next_try_at: datetime | None
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None
    id: int | None = None
