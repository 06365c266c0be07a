"""The directors' weekly digest: the week's escalations by category, and its SLA.

The week runs Monday 00:00 to Monday 00:00 in the team's timezone. An escalation
belongs to the week it was raised in; a case to the week its customer published in.
The digest reads as the agenda of the directors' weekly meeting, and goes out as a
chat summary with the full agenda attached as a Markdown file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from socialcare.bot.cards import display_name
from socialcare.bot.catalog import Catalog
from socialcare.bot.escalations import Category, Escalation
from socialcare.bot.incidents import IncidentFigures, figures_lines
from socialcare.bot.incidents import figures as incident_figures
from socialcare.bot.metrics import SlaTally, case_figures, sla_by_tier
from socialcare.bot.model import Tier
from socialcare.bot.ports import UnitOfWork
from socialcare.bot.report_text import change, topic_title
from socialcare.bot.reports import Period
from socialcare.bot.team import Team


@dataclass(frozen=True)
class Week:
    """One Monday-to-Monday week in the team's timezone."""

    monday: date
    zone: ZoneInfo

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Week:
        """Return the week a moment falls in."""
        local = moment.astimezone(zone).date()
        return cls(local - timedelta(days=local.weekday()), zone)

    @property
    def start(self) -> datetime:
        """Return Monday 00:00 of the week, aware."""
        return datetime.combine(self.monday, time(), self.zone)

    @property
    def end(self) -> datetime:
        """Return the next Monday 00:00, aware."""
        return datetime.combine(self.monday + timedelta(days=7), time(), self.zone)

    @property
    def key(self) -> str:
        """Return the ISO week, e.g. 2026-W48."""
        year, number, _ = self.monday.isocalendar()
        return f"{year}-W{number:02d}"

    def previous(self) -> Week:
        """Return the week before."""
        return Week(self.monday - timedelta(days=7), self.zone)

    @property
    def period(self) -> Period:
        """Return the week as a report period."""
        return Period(self.monday, self.monday + timedelta(days=6), self.zone, "week")


@dataclass(frozen=True)
class Digest:
    """A week's escalations per category, and its SLA per tier."""

    week: Week
    escalations: dict[Category, list[Escalation]]
    sla: dict[Tier, SlaTally]
    # Cases per topic this week and the week before ("what is growing").
    topics: dict[str, int] = field(default_factory=dict)
    previous_topics: dict[str, int] = field(default_factory=dict)
    incidents: IncidentFigures | None = None


async def build_digest(week: Week, *, uow: UnitOfWork, now: datetime) -> Digest:
    """Collect the week's escalations and compute its SLA figures from the events."""
    async with uow:
        raised = await uow.escalations.find(raised_since=week.start, raised_before=week.end,
                                            limit=10_000)
        case_ids = await uow.cases.published_between(week.start, week.end)
        events = await uow.events.for_cases(case_ids)
        topics = await uow.reports.topic_counts(week.period)
        previous_topics = await uow.reports.topic_counts(week.previous().period)
        found, linked = await uow.incidents.detected_between(week.start, week.end)
    by_category: dict[Category, list[Escalation]] = {c: [] for c in Category}
    for escalation in sorted(raised, key=lambda e: e.raised_at):
        by_category[escalation.category].append(escalation)
    figures = [case_figures(events[i], now=now) for i in case_ids if events.get(i)]
    return Digest(week=week, escalations=by_category, sla=sla_by_tier(figures),
                  topics=topics, previous_topics=previous_topics,
                  incidents=incident_figures(found, linked))


def digest_markdown(digest: Digest, *, team: Team, catalog: Catalog) -> str:
    """Return the digest as a Markdown agenda."""
    text = catalog
    week = digest.week
    sunday = week.monday + timedelta(days=6)
    title = text("digest.title", week=week.key, start=week.monday.strftime("%d.%m"),
                 end=sunday.strftime("%d.%m.%Y"))
    lines = [f"# {title}", ""]
    for category, escalations in digest.escalations.items():
        lines += [f"## {text(f'category.{category.value}').capitalize()} ({len(escalations)})",
                  ""]
        if not escalations:
            lines += [text("digest.none"), ""]
        for e in escalations:
            lines.append(f"### #{e.id}. {_md(' '.join(e.problem.split()))}")
            lines.append("")
            lines.append(text("digest.item", director=display_name(e.director, team, text),
                              state=text(f"escalation_state.{e.state.value}"),
                              cases=len(e.case_ids)))
            for number, option in enumerate(e.options, start=1):
                lines.append(f"{number}. {_md(option)}")
            if e.decision:
                lines += ["", f"**{text('digest.decision')}:** {_md(e.decision)}"]
            lines.append("")
    lines += [f"## {text('digest.sla')}", ""]
    lines += [f"- {line}" for line in sla_lines(digest, catalog=catalog, team=team)]
    topics = topic_lines(digest, catalog=catalog, team=team)
    if topics:
        lines += ["", f"## {text('digest.topics')}", ""]
        lines += [f"- {_md(line)}" for line in topics]
    if digest.incidents is not None and digest.incidents.count:
        lines += ["", f"## {text('digest.incidents')}", ""]
        lines += [f"- {_md(line)}" for line in figures_lines(digest.incidents, catalog)]
    return "\n".join(lines) + "\n"


def digest_summary(digest: Digest, *, team: Team, catalog: Catalog) -> str:
    """Return the chat message that goes with the Markdown file."""
    text = catalog
    counts = ", ".join(
        f"{text(f'category.{c.value}')}: {len(items)}" for c, items in digest.escalations.items()
    )
    topics = topic_lines(digest, catalog=catalog, team=team)
    return "\n".join([text("digest.summary", week=digest.week.key, counts=counts),
                      *sla_lines(digest, catalog=catalog, team=team),
                      *(figures_lines(digest.incidents, catalog) if digest.incidents else []),
                      *([text("digest.topics") + ":", *(f"  {t}" for t in topics)]
                        if topics else [])])


def topic_lines(digest: Digest, *, catalog: Catalog, team: Team) -> list[str]:
    """Return the week's cases per topic, most first, each with its change against the
    week before (topics that had cases only the week before too)."""
    if not team.topics:
        return []
    keys = sorted(set(digest.topics) | set(digest.previous_topics),
                  key=lambda k: (-digest.topics.get(k, 0), k))
    return [catalog("digest.topic", topic=topic_title(key, team, catalog),
                    cases=digest.topics.get(key, 0),
                    change=change(digest.topics.get(key, 0), digest.previous_topics.get(key, 0),
                                  catalog))
            for key in keys]


def sla_lines(digest: Digest, *, catalog: Catalog, team: Team) -> list[str]:
    """Return the week's SLA per tier, one line each."""
    lines = []
    for tier in Tier:
        tally = digest.sla[tier]
        share = tally.met_share
        lines.append(catalog(
            f"digest.sla_{tier.value}", minutes=team.sla.for_tier(tier).first_response_minutes,
            share="—" if share is None else f"{round(share * 100)}%", met=tally.met,
            missed=tally.missed, pending=tally.pending,
        ))
    return lines


def _md(text: str) -> str:
    """Keep agents' and customers' words from becoming Markdown markup."""
    for mark in ("\\", "*", "_", "`", "#", "[", "]", "<", ">", "|"):
        text = text.replace(mark, "\\" + mark)
    return text


def due_digest(team: Team, now: datetime) -> Week | None:
    """Return the week whose digest is due by now: the week before the current one, once
    this week's digest day and time have come."""
    zone = team.zone
    this_week = Week.of(now, zone)
    config = team.escalation
    moment = datetime.combine(this_week.monday + timedelta(days=config.digest_weekday),
                              time.fromisoformat(config.digest_time), zone)
    return this_week.previous() if now >= moment else None
