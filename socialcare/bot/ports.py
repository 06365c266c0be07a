"""The protocols through which the domain reaches the outside world."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from socialcare.bot.answers.pictures import Picture, PictureLimits
from socialcare.bot.model import Card, Case, Event, Mention, State, Tier, WebhookDelivery

if TYPE_CHECKING:  # these modules use the protocols themselves
    from socialcare.bot.announcements.ports import AnnouncementRepository
    from socialcare.bot.announcements.views import AnnouncementView
    from socialcare.bot.cards import CardView
    from socialcare.bot.escalation_card import EscalationView
    from socialcare.bot.escalations import Escalation, EscalationEvent
    from socialcare.bot.incidents import Incident, IncidentEvent, Reply, Send, StaleSend
    from socialcare.bot.metrics import CaseFacts
    from socialcare.bot.notices import Notice
    from socialcare.bot.reports import Period, Report
    from socialcare.bot.sources import Alert, Delivery, Polled, SourceState
    from socialcare.bot.team import Person, Source


class Clock(Protocol):
    """Tells the time; injected so that tests can move it."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


class CaseRepository(Protocol):
    """Stores cases; every save is conditional on the version the case was read at."""

    async def get(self, case_id: int) -> Case:
        """Return the case, or raise CaseNotFound."""
        ...

    async def get_many(self, case_ids: Collection[int]) -> dict[int, Case]:
        """Return the cases that exist among these ids."""
        ...

    async def add(self, cases: Sequence[Case]) -> None:
        """Store new cases and set their ids."""
        ...

    async def save(self, case: Case) -> None:
        """Store a changed case if nobody changed it since it was read, else raise
        ConcurrentUpdate; bump its version."""
        ...

    async def list_open(self, *, limit: int = 500) -> list[Case]:
        """Return open cases, earliest response deadline first."""
        ...

    async def list_queue(self, holder: str, *, unclaimed: bool, limit: int,
                         languages: Collection[str] = ()) -> tuple[list[Case], int]:
        """Return the open cases `holder` holds — with `unclaimed`, also the new and
        reopened ones nobody holds (in `languages` or of no known language, if any are
        given) — earliest response deadline first, at most `limit` of them, and how
        many there are in all."""
        ...

    async def count_waiting_elsewhere(self, languages: Collection[str]) -> int:
        """Count the new and reopened cases in a known language not among `languages`."""
        ...

    async def published_between(self, start: datetime, end: datetime) -> list[int]:
        """Return the ids of cases whose customer published in [start, end)."""
        ...

    async def count_by_state(self) -> dict[State, int]:
        """Count cases per state."""
        ...

    async def count_open(self) -> dict[Tier, int]:
        """Count open cases per tier."""
        ...

    async def save_many(self, changed: Sequence[Case]) -> list[Case]:
        """Store changed cases, each if still at the version it was read at; return
        those stored (the others changed meanwhile)."""
        ...

    async def list_due(self, now: datetime, *, limit: int) -> list[Case]:
        """Return cases whose next SLA alert is due, earliest first."""
        ...

    async def next_alert(self) -> datetime | None:
        """Return when the earliest SLA alert of any case is due (None: none is)."""
        ...


class MentionRepository(Protocol):
    """Stores the messages of cases; (source, external id) is unique."""

    async def reserve(self, keys: Collection[tuple[str, str]], *,
                      threads: Collection[tuple[str, str]] = ()) -> None:
        """Hold these (source, external id) keys and (source, thread reference) keys
        until the transaction ends, so that another writer of the same mention, or of a
        mention of the same thread, waits and then sees it stored."""
        ...

    async def existing(self, keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Return which of these (source, external id) pairs are already stored."""
        ...

    async def threads(self, source: str, keys: Collection[str]) -> Mapping[str, tuple[int, str]]:
        """Map thread ids and external ids of stored mentions of a source to
        (case id, thread key)."""
        ...

    async def add(self, mentions: Sequence[Mention]) -> None:
        """Store mentions and set their ids."""
        ...

    async def for_case(self, case_id: int) -> list[Mention]:
        """Return a case's mentions, oldest first."""
        ...

    async def first_of(self, case_ids: Collection[int]) -> dict[int, Mention]:
        """Return the first mention of each of these cases."""
        ...


class EventRepository(Protocol):
    """Appends events; never changes one."""

    async def add(self, events: Iterable[Event]) -> None:
        """Append events."""
        ...

    async def for_case(self, case_id: int) -> list[Event]:
        """Return a case's events in the order they happened."""
        ...

    async def for_cases(self, case_ids: Collection[int]) -> dict[int, list[Event]]:
        """Return the events of several cases, each list in order."""
        ...


class CardRepository(Protocol):
    """Stores where each case was posted and how far its cards are in step."""

    async def add(self, new: Sequence[Card]) -> None:
        """Store new cards (not yet posted)."""
        ...

    async def mark_changed(self, changed: Sequence[Case], *, at: datetime) -> None:
        """Put the cards of these cases out of step: due at once."""
        ...

    async def mark_escalation_changed(self, escalation_id: int, *, at: datetime) -> None:
        """Put the cards of an escalation out of step: due at once."""
        ...

    async def for_escalation(self, escalation_id: int) -> list[Card]:
        """Return an escalation's cards."""
        ...

    async def due(
        self, now: datetime, *, messengers: Collection[str], per_channel: int, limit: int
    ) -> list[Card]:
        """Return the cards to sync now, most pressing first, at most `per_channel` of
        one channel."""
        ...

    async def for_case(self, case_id: int) -> list[Card]:
        """Return a case's cards."""
        ...

    async def for_cases(self, case_ids: Collection[int]) -> dict[int, list[Card]]:
        """Return the cards of several cases, each case's in the order they were made."""
        ...

    async def oldest_due(self, now: datetime, *, messengers: Collection[str]) -> datetime | None:
        """Return when the card that has waited longest to be synced fell due."""
        ...

    async def find(self, messenger: str, channel: str, message_id: str) -> Card | None:
        """Return the card behind a posted message."""
        ...

    async def begin_post(self, card: Card, *, now: datetime, stale: datetime) -> int | None:
        """Record an attempt to post; None if another worker is posting the card, else
        how many earlier attempts have an unknown outcome (an attempt older than
        `stale` that never recorded one counts now)."""
        ...

    async def begin_edit(self, card: Card, *, now: datetime, stale: datetime) -> bool:
        """Claim a posted card for an edit; False if another worker is sending it or
        the case changed since `card` was read."""
        ...

    async def end_edit(self, card: Card, *, began: datetime) -> None:
        """Give back the claim `begin_edit` took at `began`."""
        ...

    async def posted(self, card: Card, *, message_id: str, at: datetime) -> None:
        """Record where the card was posted."""
        ...

    async def post_failed(self, card: Card, *, unsure: bool = False) -> None:
        """Record a post that failed; `unsure`: its outcome is unknown (the card may be
        in the channel)."""
        ...

    async def post_put_off(self, card: Card, *, began: datetime) -> None:
        """Take back the attempt `begin_post` recorded at `began`: it was never made
        (its channel had no slot)."""
        ...

    async def synced(
        self, card: Card, *, seq: int, fingerprint: str | None, next_due: datetime | None
    ) -> None:
        """Record that the card shows the case as of change `seq`."""
        ...

    async def defer(self, card: Card, *, until: datetime) -> None:
        """Look at the card again at `until`, or earlier if the case changes."""
        ...

    async def notified(self, card: Card, *, event_id: int) -> bool:
        """Record that the card's thread has the notes up to `event_id`."""
        ...


@dataclass(frozen=True)
class Note:
    """A short message in a card's thread or a channel; `mention` pings people by name;
    `buttons` go under it (an incident's message: the lead's forms)."""

    text: str
    mention: tuple[Person, ...] = ()
    buttons: tuple[NoteButton, ...] = ()


@dataclass(frozen=True)
class NoteButton:
    """A button under a note: its label and its packed action (Slack action_id,
    Telegram callback_data)."""

    label: str
    action: str


@dataclass(frozen=True)
class RateLimit:
    """`rate` calls per `per_seconds` under `key` (shared by every process): a token
    bucket that holds `burst` calls (`rate` unless given) and starts full."""

    key: str
    rate: int
    per_seconds: float
    burst: int | None = None

    @property
    def interval(self) -> float:
        """Return the seconds one call's token takes to come back."""
        return self.per_seconds / self.rate

    @property
    def capacity(self) -> int:
        """Return how many calls may go at once after a quiet spell."""
        return self.burst if self.burst is not None else self.rate


@dataclass(frozen=True)
class Booking:
    """A slot asked of the rate budgets: `taken`, the call may go in `wait` seconds (0:
    now); not taken, the budgets have no slot within the wait asked, the first is in
    `wait` seconds."""

    taken: bool
    wait: float
    # Per limit, the moment (ms, the budgets' clock) the call's token was counted from:
    # a call that goes out later moves its buckets on (`RateBudgets.sent`).
    counted_from: tuple[int, ...] = ()


class MessengerError(Exception):
    """A messenger call failed in a way worth retrying later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(MessengerError):
    """The messenger said "too many requests": wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, limit_key: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.limit_key = limit_key


class Undeliverable(MessengerError):
    """The channel or message is gone, or the bot may not post there: retrying won't help."""


class OutcomeUnknown(MessengerError):
    """The request went out but its answer was lost (a read timeout, a dropped
    connection): what it asked for may have been done."""


class Messenger(Protocol):
    """One chat platform: posts and edits cards, writes notes, pings and messages people."""

    name: str

    def limits(self, operation: str, channel: str) -> Sequence[RateLimit]:
        """Return the platform's rate limits that a call of `operation` ("post", "update")
        to `channel` counts against."""
        ...

    async def post_card(
        self, channel: str, card: CardView | EscalationView | AnnouncementView
    ) -> str:
        """Post a new card (a case's, an escalation's to a director, or an announcement's
        copy); return its id."""
        ...

    async def update_card(
        self, channel: str, message_id: str, card: CardView | EscalationView | AnnouncementView
    ) -> None:
        """Replace a posted card with the current view."""
        ...

    async def find_card(self, channel: str, case_id: int) -> str | None:
        """Return the message id of a card of this case already in the channel, if the
        platform can tell (used when a post's outcome is unknown)."""
        ...

    @property
    def finds_cards(self) -> bool:
        """Whether `find_card` can look (else a post whose answer was lost and is posted
        again may leave a copy in the channel)."""
        ...

    async def find_announcement(self, channel: str, announcement_id: int) -> str | None:
        """Return the message id of an announcement's copy already in the channel, if the
        platform can tell (used when a post's outcome is unknown)."""
        ...

    async def post_note(self, channel: str, note: Note, *, thread: str | None = None) -> str:
        """Post a note in a card's thread (or the channel); return its message id."""
        ...

    async def update_note(self, channel: str, message_id: str, note: Note) -> None:
        """Replace a posted note's text (a live count, say); an edit that changes nothing
        is no error."""
        ...

    async def pin(self, channel: str, message_id: str) -> None:
        """Pin a message in a channel."""
        ...

    async def unpin(self, channel: str, message_id: str) -> None:
        """Unpin a message in a channel (one that is not pinned is left as it is)."""
        ...

    async def message_person(self, person: Person, note: Note) -> bool:
        """Send a person a direct message; False if the platform does not know them."""
        ...

    async def direct(self, recipient: str, note: Note) -> None:
        """Send a direct message to a user id of this platform."""
        ...

    async def post_file(
        self, channel: str, filename: str, content: bytes, note: Note, *, image: bool = False
    ) -> None:
        """Post a file (the digest as Markdown, a report's CSV or chart) with a note."""
        ...


@dataclass(frozen=True)
class Published:
    """A reply the source accepted: its id there (so that its echo is a duplicate) and link."""

    external_id: str | None = None
    url: str | None = None


# A PublishFailed's `reason` when the platform suspects a bot (VK's captcha, error 14).
ANTI_SPAM = "anti_spam"


class PublishFailed(Exception):
    """The source did not take the reply; the message says why, and `reason` names a
    kind the caller acts on ("anti_spam": the platform suspects a bot, e.g. VK's
    captcha, so bulk sending must stop)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class Publisher(Protocol):
    """Publishes the team's reply where the customer wrote (for sources that can)."""

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Post `text` as a reply to the mention `to`, or raise PublishFailed."""
        ...


@runtime_checkable
class PicturePublisher(Protocol):
    """A publisher whose platform takes pictures with replies."""

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits | None:
        """Return what the platform takes (size, types, caption length) with a reply to
        `to` (the customer's mention, when known); None when this source cannot publish
        pictures (a token is missing), or not there (an Instagram comment)."""
        ...

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        """Post the picture with `text` as a reply to `to`, or raise PublishFailed."""
        ...


class RateBudgets(Protocol):
    """Rate budgets shared by every process."""

    async def acquire(self, limits: Sequence[RateLimit]) -> float:
        """Take one call from every limit if all have room and return 0; else take
        nothing and return the seconds to wait."""
        ...

    async def book(self, limits: Sequence[RateLimit], *, within: float) -> Booking:
        """Take the first slot every limit has, if it comes within `within` seconds
        (the caller then waits for it); else take nothing."""
        ...

    async def sent(self, limits: Sequence[RateLimit], booking: Booking) -> None:
        """Tell the budgets that a booked call went out now: one that went later than
        its token was counted from moves its buckets on by as much (the platform's
        own buckets count it from when it arrived)."""
        ...

    async def hold_off(self, key: str, seconds: float) -> None:
        """Let nothing through under `key` for `seconds` (the platform said 429)."""
        ...

    async def held(self, keys: Collection[str]) -> dict[str, float]:
        """Return the keys among these that are held off now, with the seconds left."""
        ...


class EscalationRepository(Protocol):
    """Stores escalations, the cases they link and their events."""

    async def add(self, escalation: Escalation) -> None:
        """Store a new escalation (with its linked cases) and set its id."""
        ...

    async def get(self, escalation_id: int) -> Escalation:
        """Return the escalation, or raise EscalationNotFound."""
        ...

    async def save(self, escalation: Escalation) -> None:
        """Store a changed escalation if it is still at the version it was read at."""
        ...

    async def add_events(self, new: Sequence[EscalationEvent]) -> None:
        """Append escalation events."""
        ...

    async def events_for(self, escalation_ids: Collection[int]) -> dict[int, list[EscalationEvent]]:
        """Return the events of several escalations, each list in order."""
        ...

    async def find(
        self, *, raised_since: datetime | None = None, raised_before: datetime | None = None,
        states: Collection[str] = (), categories: Collection[str] = (), limit: int = 200,
    ) -> list[Escalation]:
        """Return escalations, newest first, filtered."""
        ...

    async def list_due(self, now: datetime, *, limit: int) -> list[Escalation]:
        """Return escalations whose next reminder or hand-over is due."""
        ...

    async def latest_for_cases(self, case_ids: Collection[int]) -> dict[int, Escalation]:
        """Return the newest escalation of each of these cases."""
        ...


class NoticeRepository(Protocol):
    """Direct messages waiting to be sent."""

    async def add(self, new: Sequence[Notice]) -> None:
        """Store notices to send."""
        ...

    async def pending(self, *, messengers: Collection[str], limit: int) -> list[Notice]:
        """Return unsent, unclaimed notices, oldest first."""
        ...

    async def claim(self, notice: Notice, *, at: datetime) -> bool:
        """Take a notice for sending; False if another worker took it."""
        ...

    async def release(self, notice: Notice) -> None:
        """Give a claimed notice back after a failed send."""
        ...

    async def sent(self, notice: Notice, *, at: datetime) -> None:
        """Record a notice as sent."""
        ...


class JobRepository(Protocol):
    """Records which scheduled job ran for which period, so that each runs once."""

    async def claim(self, job: str, period: str, *, at: datetime) -> bool:
        """Take the run of `job` for `period`; False if it ran (or runs) elsewhere."""
        ...

    async def release(self, job: str, period: str) -> None:
        """Give a run back after it failed, so that a later tick tries again."""
        ...


class WebhookRepository(Protocol):
    """Webhook deliveries waiting to go out."""

    async def add(self, new: Sequence[WebhookDelivery]) -> None:
        """Store deliveries to make."""
        ...

    async def due(self, now: datetime, *, limit: int) -> list[WebhookDelivery]:
        """Return unsent deliveries whose time has come, oldest first."""
        ...

    async def lease(self, delivery: WebhookDelivery, *, until: datetime) -> bool:
        """Take a delivery until `until`; False if another worker took it."""
        ...

    async def save(self, delivery: WebhookDelivery) -> None:
        """Store a delivery's outcome."""
        ...


class DeliveryFailed(Exception):
    """A webhook was not taken; the message says why."""


class WebhookSender(Protocol):
    """POSTs signed JSON to other systems."""

    async def post(self, url: str, body: Mapping[str, Any]) -> None:
        """POST the body, or raise DeliveryFailed."""
        ...


class ReportRepository(Protocol):
    """Reports over the cases' facts."""

    def facts(self, period: Period) -> AsyncIterator[CaseFacts]:
        """Yield the period's cases' facts, in publication order."""
        ...

    async def report(self, period: Period, *, now: datetime) -> Report:
        """Return the period's report."""
        ...

    async def topic_counts(self, period: Period) -> dict[str, int]:
        """Count the period's cases per topic (a case under each of its topics)."""
        ...

    async def answer_forms(self, period: Period) -> dict[str, int]:
        """Count the answers given in the period by their form."""
        ...

    async def answer_forms_of(self, case_ids: list[int]) -> dict[int, list[str]]:
        """Return the forms of each case's answers, in the order they were given."""
        ...


class SourceStateRepository(Protocol):
    """Each source's cursor and health."""

    async def get(self, name: str) -> SourceState:
        """Return a source's state (a fresh one if it has none yet)."""
        ...

    async def save(self, state: SourceState) -> None:
        """Store the state if nobody changed it since it was read, else raise
        ConcurrentUpdate."""
        ...

    async def add_delivery(self, name: str, delivery: Delivery) -> SourceState:
        """Add a pushed source's delivery to its health in one step, whatever else is
        added at the same time (no read first, nothing to lose to a race); return the
        state as it is now."""
        ...

    async def move_alert(self, name: str, *, was: Alert, to: Alert,
                         version: int | None = None) -> bool:
        """Set the source's alert to `to` if it is still `was` (and, given a version,
        the state is still that version); tell whether it was."""
        ...

    async def all(self) -> list[SourceState]:
        """Return every source's state."""
        ...


class Poller(Protocol):
    """A source that is asked for what is new."""

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Fetch what is new since `cursor`, or raise SourceUnavailable."""
        ...


class IncidentRepository(Protocol):
    """Incidents, their linked cases and their timelines."""

    async def counts(self, start: datetime, end: datetime) -> dict[tuple[str, str | None], int]:
        """Count the cases published in [start, end) per topic (place None) and per
        topic and place."""
        ...

    async def first_cases(self, topics: Collection[str]) -> dict[str, datetime]:
        """Return when the first case of each topic was published (its history)."""
        ...

    async def matching(self, topic: str, place: str | None, *, since: datetime,
                       unlinked_of: int | None = None) -> list[tuple[int, datetime]]:
        """Return the open cases of a topic (in a place) published since `since`, with
        their publication times; with `unlinked_of`, only those never linked to that
        incident."""
        ...

    async def add(self, incident: Incident) -> bool:
        """Store a new open incident and set its id; False if one of its topic and place
        is open already."""
        ...

    async def get(self, incident_id: int) -> Incident:
        """Return the incident, or raise IncidentNotFound."""
        ...

    async def save(self, incident: Incident) -> None:
        """Store a changed incident if it is still at the version it was read at."""
        ...

    async def list_open(self) -> list[Incident]:
        """Return the open incidents."""
        ...

    async def resolved_since(self, since: datetime) -> list[Incident]:
        """Return the incidents resolved since `since`."""
        ...

    async def detected_between(self, start: datetime, end: datetime
                               ) -> tuple[list[Incident], dict[int, int]]:
        """Return the incidents detected in [start, end) with their linked cases' counts."""
        ...

    async def list_recent(self, *, since: datetime, limit: int) -> list[Incident]:
        """Return the open incidents and those detected since `since`, newest first."""
        ...

    async def link(self, incident_id: int, case_ids: Collection[int], *, by: str,
                   at: datetime) -> list[int]:
        """Link cases never linked before; return those linked now."""
        ...

    async def unremove(self, incident_id: int, case_ids: Collection[int]) -> None:
        """Forget that these cases were taken out (a lead adds them back)."""
        ...

    async def remove(self, incident_id: int, case_ids: Collection[int], *,
                     at: datetime) -> list[int]:
        """Take linked cases out; return those taken out now."""
        ...

    async def case_ids(self, incident_id: int) -> list[int]:
        """Return the cases linked (and not taken out), in order of joining."""
        ...

    async def set_send(self, incident_id: int, case_id: int, send: Send, status: Reply, *,
                       at: datetime | None = None) -> bool:
        """Set a linked case's status of the answer or follow-up if it has none yet
        (`sending`: take it, `at` the start of its lease); False if it had one."""
        ...

    async def publishing(self, incident_id: int, case_id: int, send: Send, *,
                         at: datetime) -> None:
        """Record that a taken send's call to the platform begins now (its lease anew)."""
        ...

    async def end_send(self, incident_id: int, case_id: int, send: Send, status: Reply, *,
                       at: datetime | None, since: datetime) -> bool:
        """Record a send's outcome (`at`: when it went out) if it is still the one taken
        or begun at `since`; False if another pass settled it."""
        ...

    async def stale_sends(self, *, before: datetime) -> list[StaleSend]:
        """Return the sends taken or begun before `before` and never settled."""
        ...

    async def requeue(self, send: StaleSend) -> bool:
        """Give a stale send that never reached the platform back to the queue; False
        if another pass did."""
        ...

    async def sent_since(self, source: str, since: datetime) -> int:
        """Count the bulk replies (answers and follow-ups) sent to, or maybe sent to, a
        source's cases since `since`."""
        ...

    async def closing(self) -> list[Incident]:
        """Return the resolved incidents with linked cases not yet closed."""
        ...

    async def unclosed(self, incident_id: int) -> list[int]:
        """Return the linked cases of an incident not yet closed."""
        ...

    async def close(self, incident_id: int, case_id: int, *, at: datetime) -> bool:
        """Take the closing of a linked case; False if it was taken."""
        ...

    async def replies(self, incident_id: int, send: Send = ...) -> dict[int, str | None]:
        """Return each linked case's status of the answer (or of the follow-up)."""
        ...

    async def of_cases(self, case_ids: Collection[int]) -> dict[int, int]:
        """Return the incident each case is linked to (the newest)."""
        ...

    async def add_events(self, new: Sequence[IncidentEvent]) -> None:
        """Append moments to incidents' timelines."""
        ...

    async def events_for(self, incident_id: int) -> list[IncidentEvent]:
        """Return an incident's timeline in order."""
        ...


class UnitOfWork(Protocol):
    """One transaction over the repositories; `async with uow:` begins it.

    Leaving the block without `commit()` rolls back. The same unit of work may be
    entered again afterwards, which begins a new transaction.
    """

    cases: CaseRepository
    mentions: MentionRepository
    events: EventRepository
    cards: CardRepository
    escalations: EscalationRepository
    notices: NoticeRepository
    jobs: JobRepository
    webhooks: WebhookRepository
    reports: ReportRepository
    sources: SourceStateRepository
    announcements: AnnouncementRepository
    incidents: IncidentRepository

    async def __aenter__(self) -> Self:
        """Begin a transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the transaction, rolling back what was not committed."""
        ...

    async def commit(self) -> None:
        """Commit the transaction."""
        ...
