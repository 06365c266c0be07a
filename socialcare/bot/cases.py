"""Commands on cases: claim, release, answer, resolve, dismiss.

Each command checks the roster, applies one transition of `lifecycle` and stores the
case with its event in one transaction. Storage applies the change only if the case
is still at the version it was read at; if someone else changed it meanwhile, the
command runs again on the fresh case — and then either succeeds or gets the domain's
reason (for a second claim: who won).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from socialcare.bot import lifecycle
from socialcare.bot.answers.forms import AnswerForm
from socialcare.bot.answers.pictures import Picture, PictureLimits, check_picture
from socialcare.bot.errors import ConcurrentUpdate, DomainError, NotAllowed
from socialcare.bot.model import Author, Case, Event, Mention
from socialcare.bot.ports import Clock, PicturePublisher, Publisher, PublishFailed, UnitOfWork
from socialcare.bot.team import Person, Source, Team
from socialcare.bot.text import clean_fields

ATTEMPTS = 8


@dataclass(frozen=True)
class Claim:
    """Take a case."""

    case_id: int
    actor: str


@dataclass(frozen=True)
class Release:
    """Put a claimed case back in the queue."""

    case_id: int
    actor: str


@dataclass(frozen=True)
class MarkAnswered:
    """Record that the agent answered the customer (on the platform or from the chat)."""

    case_id: int
    actor: str
    text: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        clean_fields(self)  # no NUL or other control characters in what people type


@dataclass(frozen=True)
class Reply:
    """Publish the agent's answer where the customer wrote, and record it.

    `announcement_id` marks a reply begun from an announcement's official answer: the
    announcement must still be in force, and the case counts as answered with it.
    `form` is the form of the answer (a calculation, …), recorded on its event."""

    case_id: int
    actor: str
    text: str
    announcement_id: int | None = None
    form: AnswerForm = AnswerForm.TEXT
    # A picture published with the text (the text is its caption where the platform
    # has captions); the answer's form is then a picture.
    picture: Picture | None = None

    def __post_init__(self) -> None:
        clean_fields(self)  # no NUL or other control characters in what people type


@dataclass(frozen=True)
class Resolve:
    """Close an answered case."""

    case_id: int
    actor: str


@dataclass(frozen=True)
class Dismiss:
    """Close a case that needs no answer."""

    case_id: int
    actor: str
    reason: str = "not for us"

    def __post_init__(self) -> None:
        clean_fields(self)  # no NUL or other control characters in what people type


@dataclass(frozen=True)
class Changed:
    """A case after a command, with the events the command appended."""

    case: Case
    events: list[Event]


def worker(team: Team, person_id: str) -> Person:
    """Return the roster entry of someone who may work cases, or refuse."""
    person = team.person(person_id)
    if person is None:
        raise NotAllowed("You are not in this team's roster, so you cannot act on cases.",
                         key="error.not_in_roster")
    if not person.works_cases:
        raise NotAllowed(f"{person.name} is a {person.role.value}: cases are worked by agents.",
                         key="error.not_a_worker", role=person.role.value)
    return person


def _holder_or_lead(case: Case, person: Person, action: str) -> None:
    if case.claimed_by not in (None, person.id) and not person.leads:
        raise NotAllowed(
            f"Case #{case.id} is claimed by {case.claimed_by}: only they or a shift lead "
            f"can {action} it.",
            key="error.holder_only", case=case.id, by=case.claimed_by, action=action,
        )


async def change(
    case_id: int, apply: Callable[[Case, datetime], list[Event]], *, uow: UnitOfWork,
    clock: Clock, after: Callable[[UnitOfWork, Case, datetime], Awaitable[None]] | None = None,
) -> Changed:
    """Apply a change to a case and store it with its events, retrying on a concurrent
    change; `after` stores what else the change brings, in the same transaction."""
    for _ in range(ATTEMPTS):
        at = clock.now()
        async with uow:
            case = await uow.cases.get(case_id)
            events = apply(case, at)
            try:
                await uow.cases.save(case)
            except ConcurrentUpdate:
                continue
            if after is not None:
                await after(uow, case, at)
            await uow.cards.mark_changed([case], at=at)
            await uow.events.add(events)
            await uow.commit()
            return Changed(case, events)
    raise ConcurrentUpdate(f"case #{case_id} kept changing; gave up after {ATTEMPTS} attempts")


async def claim(cmd: Claim, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Give the case to the person; exactly one of several concurrent claims wins."""
    person = worker(team, cmd.actor)
    return await change(
        cmd.case_id, lambda case, at: [lifecycle.claim(case, by=person.id, at=at)],
        uow=uow, clock=clock,
    )


async def release(cmd: Release, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Return the case to the queue; only its holder or a lead may."""
    person = worker(team, cmd.actor)

    def apply(case: Case, at: datetime) -> list[Event]:
        _holder_or_lead(case, person, "release")
        policy = team.sla.for_tier(case.tier)
        return [lifecycle.release(case, by=person.id, at=at, policy=policy)]

    return await change(cmd.case_id, apply, uow=uow, clock=clock)


async def mark_answered(
    cmd: MarkAnswered, *, uow: UnitOfWork, clock: Clock, team: Team
) -> Changed:
    """Record the agent's answer; the first one stops the first-response clock."""
    person = worker(team, cmd.actor)

    def apply(case: Case, at: datetime) -> list[Event]:
        _holder_or_lead(case, person, "answer")
        return [lifecycle.answer(
            case, by=person.id, at=at, policy=team.sla.for_tier(case.tier),
            text=cmd.text, url=cmd.url,
        )]

    return await change(cmd.case_id, apply, uow=uow, clock=clock)


async def reply(
    cmd: Reply,
    *,
    uow: UnitOfWork,
    clock: Clock,
    team: Team,
    publishers: Mapping[str, Publisher],
    before_publish: Callable[[], Awaitable[None]] | None = None,
) -> Changed:
    """Publish the answer at the source, then record it as the agent's message.

    Everything that could refuse the answer is checked before it is published, so
    that a refused reply never reaches the customer. `before_publish` runs after the
    checks, just before the call to the source (a bulk sender records there that the
    reply may be out from now on).
    """
    person = worker(team, cmd.actor)
    text = cmd.text.strip()
    if not text:
        raise DomainError("The reply is empty.", key="error.empty_reply")
    async with uow:
        case = await uow.cases.get(cmd.case_id)
        thread = await uow.mentions.for_case(cmd.case_id)
        official = None if cmd.announcement_id is None else \
            await uow.announcements.get(cmd.announcement_id)
    if official is not None and not official.in_force(clock.now()):
        raise DomainError(f"Announcement #{official.id} is no longer in force.",
                          key="error.announcement_ended", id=official.id)
    _holder_or_lead(case, person, "answer")
    lifecycle.check(case, "answered")
    publisher = publishers.get(case.source)
    source = team.source(case.source)
    if publisher is None or source is None:
        raise DomainError(f"Source {case.source!r} cannot publish replies.",
                          key="error.cannot_publish", source=case.source)
    customer = [m for m in thread if not m.from_brand]
    form = cmd.form
    picture = cmd.picture
    if picture is not None:
        limits = _picture_limits(publisher, source, customer[-1])
        if limits is None:
            # A source that takes text only: the agent was told so in the reply form,
            # the text goes alone and the case records the text only.
            picture = None
        else:
            check_picture(picture, text, limits, source=case.source)
            form = AnswerForm.PICTURE if form is AnswerForm.TEXT else form
    if before_publish is not None:
        await before_publish()
    try:
        if picture is not None and isinstance(publisher, PicturePublisher):
            published = await publisher.publish_picture(source, customer[-1], text, picture)
        else:
            published = await publisher.publish(source, customer[-1], text)
    except PublishFailed as failure:
        raise DomainError(f"The source refused the reply: {failure}",
                          key="error.publish_failed", reason=str(failure)) from failure
    now = clock.now()
    echo = [] if published.external_id is None else [Mention(
        source=case.source, external_id=published.external_id, platform=case.platform,
        text=text, published_at=now, collected_at=now, thread_key=case.thread_key,
        url=published.url, from_brand=True, case_id=case.id,
        author=Author(name=person.name),
    )]

    def apply(case: Case, at: datetime) -> list[Event]:
        _holder_or_lead(case, person, "answer")
        return [lifecycle.answer(
            case, by=person.id, at=at, policy=team.sla.for_tier(case.tier), text=text,
            url=published.url, mention=published.external_id, announcement=cmd.announcement_id,
            form=form.value, picture=None if picture is None else picture.filename,
        )]

    async def store_echo(uow: UnitOfWork, case: Case, at: datetime) -> None:
        # The platform may have sent our reply back already: then it is stored.
        keys = {(m.source, m.external_id) for m in echo}
        await uow.mentions.reserve(keys)
        stored = await uow.mentions.existing(keys)
        await uow.mentions.add([m for m in echo if (m.source, m.external_id) not in stored])
        if cmd.announcement_id is not None and case.id is not None:
            await uow.announcements.record_answer(cmd.announcement_id, case.id, by=person.id,
                                                  at=at)

    return await change(cmd.case_id, apply, uow=uow, clock=clock, after=store_echo)


def _picture_limits(publisher: Publisher, source: Source,
                    to: Mention | None) -> PictureLimits | None:
    if not isinstance(publisher, PicturePublisher):
        return None
    return publisher.picture_limits(source, to)


@dataclass(frozen=True)
class Pictures:
    """Whether a case's source publishes pictures with replies (`limits` None: text only)."""

    source: str
    limits: PictureLimits | None

    @property
    def text_only(self) -> bool:
        """Tell whether a picture attached to a reply would be left out."""
        return self.limits is None


async def find_pictures(case_id: int, *, uow: UnitOfWork, team: Team,
                        publishers: Mapping[str, Publisher]) -> Pictures:
    """Return what the case's source takes, for the reply form to say before sending."""
    async with uow:
        case = await uow.cases.get(case_id)
        thread = await uow.mentions.for_case(case_id)
    publisher, source = publishers.get(case.source), team.source(case.source)
    if publisher is None or source is None:
        return Pictures(case.source, None)
    customer = [m for m in thread if not m.from_brand]
    return Pictures(case.source, _picture_limits(publisher, source,
                                                 customer[-1] if customer else None))


async def resolve(cmd: Resolve, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Close an answered case."""
    person = worker(team, cmd.actor)

    def apply(case: Case, at: datetime) -> list[Event]:
        _holder_or_lead(case, person, "resolve")
        policy = team.sla.for_tier(case.tier)
        return [lifecycle.resolve(case, by=person.id, at=at, policy=policy)]

    return await change(cmd.case_id, apply, uow=uow, clock=clock)


async def dismiss(cmd: Dismiss, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Close a case that needs no answer."""
    person = worker(team, cmd.actor)

    def apply(case: Case, at: datetime) -> list[Event]:
        _holder_or_lead(case, person, "dismiss")
        policy = team.sla.for_tier(case.tier)
        return [lifecycle.dismiss(
            case, by=person.id, at=at, policy=policy, reason=cmd.reason
        )]

    return await change(cmd.case_id, apply, uow=uow, clock=clock)
