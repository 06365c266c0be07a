"""The team's configuration as the domain sees it: brands, SLA, sources, channels, people.

These are plain frozen dataclasses; `socialcare.settings` validates the TOML config
file straight into them (the `__pydantic_config__` attributes are read there and
make unknown keys an error, so a typo in the config is named instead of ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from socialcare.bot.announcements.audiences import Audience
from socialcare.bot.answers.calculators import Calculator
from socialcare.bot.model import Tier
from socialcare.bot.sla import SlaConfig
from socialcare.bot.understanding.model import Brand, Language, Place, Topic

__all__ = ["Brand", "Channel", "Person", "Place", "Role", "Source", "Team", "Topic"]

_STRICT = {"extra": "forbid"}


class Role(StrEnum):
    """What a person does in the team, and so what they may do in socialcare."""

    AGENT = "agent"
    LEAD = "lead"
    DIRECTOR = "director"
    ADMIN = "admin"
    SECOND_LINE = "second_line"  # works in a second-line team (billing, network, …)


@dataclass(frozen=True)
class Source:
    """A place mentions come from, and how fast they must be answered."""

    __pydantic_config__ = _STRICT

    name: str
    kind: str
    platform: str
    tier: Tier
    poll_seconds: int = 300
    # Tell the team when nothing has come from this source for this long.
    silent_minutes: int | None = None
    # A disabled source is checked with the config but not run.
    enabled: bool = True
    # Every item from this source is about this brand (the brand's own shop reviews,
    # comments under its own videos), whether or not it names it.
    brand: str | None = None
    # The timezone of the dates the source writes without one ("вчера в 14:30");
    # none = the team's.
    timezone: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # An incident's official answer goes out as the reply to this source's linked cases
    # (opt-in: X's automation rules forbid bulk identical replies), at most this many
    # an hour.
    incident_replies: bool = False
    incident_replies_per_hour: int = 100

    def __post_init__(self) -> None:
        if self.incident_replies_per_hour < 1:
            raise ValueError("incident_replies_per_hour: at least 1")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown {self.timezone!r}; use an IANA name such "
                                 "as 'Asia/Almaty'") from None
        if self.poll_seconds <= 0:
            raise ValueError("poll_seconds: must be a positive number of seconds")
        if self.silent_minutes is not None and self.silent_minutes <= 0:
            raise ValueError("silent_minutes: must be a positive number of minutes")


@dataclass(frozen=True)
class Channel:
    """A team channel that receives cards; empty filters mean every case."""

    __pydantic_config__ = _STRICT

    messenger: Literal["slack", "telegram"]
    id: str
    name: str | None = None
    brands: tuple[str, ...] = ()
    tiers: tuple[Tier, ...] = ()
    platforms: tuple[str, ...] = ()

    def routes(self, *, brand: str, tier: Tier, platform: str) -> bool:
        """Tell whether a case with these attributes gets a card here."""
        return (
            (not self.brands or brand in self.brands)
            and (not self.tiers or tier in self.tiers)
            and (not self.platforms or platform in self.platforms)
        )


@dataclass(frozen=True)
class Person:
    """Someone in the roster; only they may act on cases."""

    __pydantic_config__ = _STRICT

    id: str
    name: str
    role: Role = Role.AGENT
    slack: str | None = None
    telegram: int | None = None
    areas: tuple[str, ...] = ()
    # For second-line people: the name of their team in `second_line`.
    team: str | None = None
    # Working hours in the team's timezone, "09:00-18:00" (may pass midnight:
    # "20:00-08:00"); none = always. Shift leads are pinged only while on duty, and
    # only agents on shift count as speaking a language.
    hours: str | None = None
    # The languages the person answers in ("ru", "kk", "en"); none = every language.
    languages: tuple[Language, ...] = ()

    def __post_init__(self) -> None:
        if self.slack is None and self.telegram is None:
            raise ValueError("slack, telegram: at least one user id is needed")
        if self.hours is not None and _HOURS.fullmatch(self.hours) is None:
            raise ValueError(f"hours: {self.hours!r} is not like '09:00-18:00'")

    def speaks(self, language: str | None) -> bool:
        """Tell whether the person answers mentions in this language."""
        return not self.languages or language is None or language in self.languages

    def on_duty(self, local: time) -> bool:
        """Tell whether the person works at this local time of day."""
        if self.hours is None:
            return True
        start, end = (time.fromisoformat(part) for part in self.hours.split("-"))
        return start <= local < end if start <= end else local >= start or local < end

    @property
    def works_cases(self) -> bool:
        """Tell whether this person claims and answers cases."""
        return self.role in (Role.AGENT, Role.LEAD, Role.ADMIN)

    @property
    def leads(self) -> bool:
        """Tell whether this person may overrule a claim."""
        return self.role in (Role.LEAD, Role.ADMIN)

    @property
    def reads_team_figures(self) -> bool:
        """Tell whether this person may read the team's figures — reports, other agents'
        figures, escalation lists, the digest — in the chat and the console alike.

        Shift leads, directors and admins may; agents read their own figures and the
        queue, and the second line neither."""
        return self.role in (Role.LEAD, Role.DIRECTOR, Role.ADMIN)


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class EscalationConfig:
    """How escalations travel: reminders, hand-over chains, the weekly digest."""

    __pydantic_config__ = _STRICT

    critical_repeat_minutes: int = 10
    critical_handover_minutes: int = 30
    # Per responsibility area, the directors in the order a critical escalation
    # passes to when nobody acknowledges it; "default" for everything else.
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Where the weekly digest goes (the directors' channels).
    channels: tuple[Channel, ...] = ()
    digest_day: str = "monday"
    digest_time: str = "09:00"

    def __post_init__(self) -> None:
        if self.critical_repeat_minutes <= 0 or self.critical_handover_minutes <= 0:
            raise ValueError("critical_repeat_minutes, critical_handover_minutes: must be "
                             "positive numbers of minutes")
        if self.digest_day not in _WEEKDAYS:
            raise ValueError(f"digest_day: one of {', '.join(_WEEKDAYS)}")
        try:
            time.fromisoformat(self.digest_time)
        except ValueError:
            raise ValueError(f"digest_time: {self.digest_time!r} is not like '09:00'") from None

    @property
    def repeat(self) -> timedelta:
        """Return how often an unacknowledged critical escalation is re-sent."""
        return timedelta(minutes=self.critical_repeat_minutes)

    @property
    def handover(self) -> timedelta:
        """Return how long a director has before a critical escalation passes on."""
        return timedelta(minutes=self.critical_handover_minutes)

    @property
    def digest_weekday(self) -> int:
        """Return the digest's weekday, Monday = 0."""
        return _WEEKDAYS.index(self.digest_day)

    def chain_for(self, area: str | None) -> tuple[str, ...]:
        """Return the hand-over chain of an area (or the default chain)."""
        return self.chains.get(area or "default") or self.chains.get("default", ())


@dataclass(frozen=True)
class SecondLineTeam:
    """A second-line team cases are handed to: billing, network, the call centre."""

    __pydantic_config__ = _STRICT

    name: str
    title: str
    channels: tuple[Channel, ...] = ()
    # The team's ticket system: each hand-off is POSTed there as signed JSON.
    webhook_url: str | None = None
    # "callback": the call centre. It gets call-back tasks with the customer's number
    # (the one place besides the agent that sees it) and marks them done or unreachable.
    kind: Literal["tickets", "callback"] = "tickets"

    def __post_init__(self) -> None:
        if not self.channels and not self.webhook_url:
            raise ValueError("channels, webhook_url: a team needs a channel or a webhook")
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("webhook_url: must be an http(s) URL")


@dataclass(frozen=True)
class ReportSchedule:
    """Where and when the daily, weekly and monthly reports go."""

    __pydantic_config__ = _STRICT

    channels: tuple[Channel, ...] = ()
    daily_time: str = "09:00"  # yesterday's report, every day at this time
    weekly_day: str = "monday"  # last week's, on this day at daily_time
    monthly_day: int = 1  # last month's, on this day of the month at daily_time

    def __post_init__(self) -> None:
        if self.weekly_day not in _WEEKDAYS:
            raise ValueError(f"weekly_day: one of {', '.join(_WEEKDAYS)}")
        if not 1 <= self.monthly_day <= 28:
            raise ValueError("monthly_day: a day from 1 to 28 (every month has it)")
        try:
            time.fromisoformat(self.daily_time)
        except ValueError:
            raise ValueError(f"daily_time: {self.daily_time!r} is not like '09:00'") from None

    @property
    def at(self) -> time:
        """Return the time of day the reports go out."""
        return time.fromisoformat(self.daily_time)


@dataclass(frozen=True)
class IncidentConfig:
    """When a surge of one topic (in one place) becomes an incident."""

    __pydantic_config__ = _STRICT

    enabled: bool = True
    # A surge: at least min_cases new cases in window_minutes ...
    min_cases: int = 20
    window_minutes: int = 15
    # ... and at least factor × the usual number for that hour of the week, the
    # average of the same hour over the past baseline_weeks weeks.
    factor: float = 4.0
    baseline_weeks: int = 4
    # With fewer weeks of history than this (a new install), min_cases alone decides.
    history_weeks: int = 2
    # How often the scheduler looks.
    check_seconds: int = 30
    # Sample texts shown on the incident.
    samples: int = 3

    def __post_init__(self) -> None:
        if self.min_cases < 2:
            raise ValueError("min_cases: at least 2 (one case is not a surge)")
        if not 1 <= self.window_minutes <= 24 * 60:
            raise ValueError("window_minutes: from 1 to 1440 minutes")
        if self.factor < 1:
            raise ValueError("factor: at least 1 (the usual level itself)")
        if not 1 <= self.history_weeks <= self.baseline_weeks <= 52:
            raise ValueError("baseline_weeks, history_weeks: 1 ≤ history_weeks ≤ "
                             "baseline_weeks ≤ 52")
        if not 5 <= self.check_seconds <= 3600:
            raise ValueError("check_seconds: from 5 to 3600 seconds")
        if not 0 <= self.samples <= 10:
            raise ValueError("samples: from 0 to 10")

    @property
    def window(self) -> timedelta:
        """Return the surge window."""
        return timedelta(minutes=self.window_minutes)


@dataclass(frozen=True)
class SavedReply:
    """A ready answer agents pick in the reply form, so that everyone says it alike."""

    __pydantic_config__ = _STRICT

    title: str
    text: str
    # A picture published with the text (a file next to the config: "how to set up
    # APN"); the config loader makes the path absolute and checks the file.
    image: str | None = None


@dataclass(frozen=True)
class Team:
    """Everything the domain needs to know about the team and what it watches."""

    __pydantic_config__ = _STRICT

    brands: tuple[Brand, ...]
    sources: tuple[Source, ...]
    timezone: str = "UTC"
    language: str = "en"
    sla: SlaConfig = field(default_factory=SlaConfig)
    urgent_keywords: tuple[str, ...] = ()
    channels: tuple[Channel, ...] = ()
    people: tuple[Person, ...] = ()
    saved_replies: tuple[SavedReply, ...] = ()
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    second_line: tuple[SecondLineTeam, ...] = ()
    reports: ReportSchedule = field(default_factory=ReportSchedule)
    # What mentions are about (contact reasons) and the places they name.
    topics: tuple[Topic, ...] = ()
    places: tuple[Place, ...] = ()
    # Service channels beyond the team that announcements reach (call centre, shops).
    audiences: tuple[Audience, ...] = ()
    incidents: IncidentConfig = field(default_factory=IncidentConfig)
    # Price tables `/calc` compares tariffs with.
    calculators: tuple[Calculator, ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone: unknown {self.timezone!r}; use an IANA name such as 'Asia/Almaty'"
            ) from None
        if not self.brands:
            raise ValueError("brands: at least one brand is needed")
        _unique("brands", "name", [b.name for b in self.brands])
        _unique("sources", "name", [s.name for s in self.sources])
        _unique("people", "id", [p.id for p in self.people])
        _unique("people", "slack", [p.slack for p in self.people if p.slack])
        _unique("people", "telegram", [str(p.telegram) for p in self.people if p.telegram])
        _unique("second_line", "name", [t.name for t in self.second_line])
        _unique("topics", "name", [t.name for t in self.topics])
        _unique("places", "name", [p.name for p in self.places])
        _unique("audiences", "name", [a.name for a in self.audiences])
        _unique("calculators", "name", [c.name for c in self.calculators])
        teams = {t.name for t in self.second_line}
        for topic in self.topics:
            if topic.second_line is not None and topic.second_line not in teams:
                raise ValueError(f"topics: {topic.name!r} names second_line "
                                 f"{topic.second_line!r}, which is not in second_line")
        for person in self.people:
            if person.role is Role.SECOND_LINE and person.team not in teams:
                raise ValueError(f"people: {person.id!r} is second_line but their team "
                                 f"{person.team!r} is not in second_line")
        directors = {p.id for p in self.people if p.role is Role.DIRECTOR}
        for area, chain in self.escalation.chains.items():
            strangers = [d for d in chain if d not in directors]
            if strangers:
                raise ValueError(f"escalation.chains.{area}: {strangers} are not directors "
                                 "of the roster")
        brand_names = {b.name for b in self.brands}
        for source in self.sources:
            if source.brand is not None and source.brand not in brand_names:
                raise ValueError(f"sources: {source.name!r} names brand {source.brand!r}, "
                                 "which is not in brands")
        for i, channel in enumerate(self.channels):
            unknown = set(channel.brands) - brand_names
            if unknown:
                raise ValueError(f"channels[{i}].brands: unknown brand(s) {sorted(unknown)}")

    @property
    def zone(self) -> ZoneInfo:
        """Return the team's timezone."""
        return ZoneInfo(self.timezone)

    def zone_of(self, source: Source) -> str:
        """Return the timezone a source's dates without one are written in."""
        return source.timezone or self.timezone

    def source(self, name: str) -> Source | None:
        """Return the source with this name."""
        return next((s for s in self.sources if s.name == name), None)

    def channels_for(self, *, brand: str, tier: Tier, platform: str) -> list[Channel]:
        """Return the channels that get a card for a case with these attributes."""
        return [c for c in self.channels if c.routes(brand=brand, tier=tier, platform=platform)]

    def channels_for_source(self, source: Source) -> list[Channel]:
        """Return the channels that get cards from a source (whatever the brand): where
        its health alerts go."""
        return [c for c in self.channels
                if (not c.tiers or source.tier in c.tiers)
                and (not c.platforms or source.platform in c.platforms)]

    def own_chats(self, messenger: str) -> set[str]:
        """Every chat the team itself uses in a messenger: cards, escalations, reports,
        second-line teams. Customers' messages are never collected from these."""
        channels = [*self.channels, *self.escalation.channels, *self.reports.channels,
                    *(c for t in self.second_line for c in t.channels)]
        chats = {c.id for c in channels if c.messenger == messenger}
        return chats | {c.id for a in self.audiences for c in a.channels
                        if c.messenger == messenger}

    def audience(self, name: str) -> Audience | None:
        """Return the audience with this name."""
        return next((a for a in self.audiences if a.name == name), None)

    def callback_team(self) -> SecondLineTeam | None:
        """Return the second-line team that calls customers back, if there is one."""
        return next((t for t in self.second_line if t.kind == "callback"), None)

    def second_line_team(self, name: str) -> SecondLineTeam | None:
        """Return the second-line team with this name."""
        return next((t for t in self.second_line if t.name == name), None)

    def second_line_of_channel(self, messenger: str, channel: str) -> SecondLineTeam | None:
        """Return the second-line team whose channel this is, if any."""
        return next((t for t in self.second_line for c in t.channels
                     if c.messenger == messenger and c.id == channel), None)

    def person(self, person_id: str) -> Person | None:
        """Return the person with this roster id."""
        return next((p for p in self.people if p.id == person_id), None)

    def leads_on_duty(self, at: datetime) -> list[Person]:
        """Return the shift leads working at this moment."""
        local = at.astimezone(self.zone).time()
        return [p for p in self.people if p.role is Role.LEAD and p.on_duty(local)]

    def topic(self, name: str) -> Topic | None:
        """Return the topic with this name."""
        return next((t for t in self.topics if t.name == name), None)

    def place(self, name: str) -> Place | None:
        """Return the place with this name."""
        return next((p for p in self.places if p.name == name), None)

    def on_shift(self, at: datetime) -> list[Person]:
        """Return the people who work cases and are working at this moment."""
        local = at.astimezone(self.zone).time()
        return [p for p in self.people if p.works_cases and p.on_duty(local)]

    def person_by_slack(self, user_id: str) -> Person | None:
        """Return the person with this Slack user id."""
        return next((p for p in self.people if p.slack == user_id), None)

    def person_by_telegram(self, user_id: int) -> Person | None:
        """Return the person with this Telegram user id."""
        return next((p for p in self.people if p.telegram == user_id), None)


_HOURS = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")


def _unique(table: str, key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{table}: {key} {value!r} appears twice")
        seen.add(value)
