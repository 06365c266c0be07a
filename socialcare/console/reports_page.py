"""The reports page: `/report`'s figures and charts for a period, its cases as CSV, the
period's escalations and the directors' weekly digest — from the chat's report code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from socialcare.adapters.charts import draw
from socialcare.adapters.spreadsheet import cases_csv
from socialcare.bot.announcements.views import figures_lines
from socialcare.bot.cards import display_name
from socialcare.bot.digest import Digest, Week, build_digest, digest_markdown, sla_lines
from socialcare.bot.escalations import Escalation
from socialcare.bot.model import Tier
from socialcare.bot.report_text import change, duration, render_report, share, topic_title
from socialcare.bot.reports import (
    FIRST_DAY,
    LAST_DAY,
    Group,
    Period,
    Report,
    parse_period,
)
from socialcare.deps import Deps
from socialcare.handlers import announcing, reporting

PERIODS = ("today", "yesterday", "week", "month")
DIMENSIONS = ("tier", "platform", "brand", "agent", "topic", "language")
ESCALATIONS_SHOWN = 100


@dataclass(frozen=True)
class GroupRow:
    """One line of a breakdown table."""

    label: str
    cases: int
    median: str
    p90: str
    share: str
    met: int
    missed: int
    pending: int
    dismissed: str


@dataclass(frozen=True)
class ReportsPage:
    """Everything the reports page shows."""

    period: Period
    summary: list[str]
    tables: list[tuple[str, list[GroupRow]]]
    escalations: list[Escalation]
    digest: Digest
    digest_lines: list[str]
    week: str
    last_week: bool


def period_of(query: dict[str, str] | Any, deps: Deps) -> Period:
    """Return the period a page's query names (`period`, or `from` and `to`); raise
    `socialcare.bot.reports.BadPeriod` for a wrong one."""
    word = str(query.get("period", "") or "today")
    first, last = str(query.get("from", "")), str(query.get("to", ""))
    if first and last:
        word = f"{first}..{last}"
    return parse_period(word, now=deps.clock.now(), zone=deps.team.zone)


def week_of(word: str, deps: Deps) -> Week:
    """Return the digest's week: this one, the last one, or the week of a date."""
    now = deps.clock.now()
    this_week = Week.of(now, deps.team.zone)
    if word == "last":
        return this_week.previous()
    try:
        day = date.fromisoformat(word)
    except ValueError:
        return this_week
    if not FIRST_DAY <= day <= LAST_DAY:
        return this_week
    return Week.of(datetime.combine(day, time(12), deps.team.zone), deps.team.zone)


def _rows(report: Report, dimension: str, deps: Deps) -> list[GroupRow]:
    text = deps.catalog

    def label(group: Group) -> str:
        if dimension == "tier":
            minutes = deps.team.sla.for_tier(Tier(group.key)).first_response_minutes
            return text(f"report.tier_{group.key}", minutes=minutes)
        if dimension == "platform" and text.has(f"platform.{group.key}"):
            return text(f"platform.{group.key}")
        if dimension == "agent":
            return display_name(group.key, deps.team, text)
        if dimension == "topic":
            return text("report.topic_change", topic=topic_title(group.key, deps.team, text),
                        change=change(group.cases, report.previous_topics.get(group.key, 0),
                                      text))
        if dimension == "language" and text.has(f"language.{group.key}"):
            return text(f"language.{group.key}")
        return group.key

    return [GroupRow(
        label=label(g), cases=g.cases, median=duration(g.reaction.median, text),
        p90=duration(g.reaction.p90, text), share=share(g.met_share), met=g.met,
        missed=g.missed, pending=g.pending,
        dismissed=share(g.dismissed / g.cases if g.cases else None),
    ) for g in report.groups.get(dimension, [])
        # The brand's own account answering on the platform is not an agent.
        if dimension != "agent" or not g.key.startswith(("brand:", "customer:"))]


async def reports_page(period: Period, week: Week, deps: Deps) -> ReportsPage:
    """Read the period's report, its escalations and the week's digest."""
    report, links = await reporting.build(period, deps)
    async with deps.uow() as uow:
        raised = await uow.escalations.find(raised_since=period.start,
                                            raised_before=period.end,
                                            limit=ESCALATIONS_SHOWN)
    digest = await build_digest(week, uow=deps.uow(), now=deps.clock.now())
    summary = (await asyncio.to_thread(render_report, report, team=deps.team,
                                       catalog=deps.catalog, breakdowns=(),
                                       links=links)).splitlines()
    summary += figures_lines(await announcing.figures(period, deps), team=deps.team,
                             catalog=deps.catalog)
    return ReportsPage(
        period=period, summary=summary,
        tables=[(deps.catalog(f"console.reports.by_{d}"), _rows(report, d, deps))
                for d in DIMENSIONS if d != "topic" or deps.team.topics],
        escalations=raised, digest=digest,
        digest_lines=sla_lines(digest, catalog=deps.catalog, team=deps.team),
        week=week.key,
        last_week=week == Week.of(deps.clock.now(), deps.team.zone).previous(),
    )


async def chart(name: str, period: Period, deps: Deps) -> bytes:
    """Draw one of the report's charts (of `charts.CHARTS`) as PNG, in a process of its
    own."""
    report, _ = await reporting.build(period, deps)
    drawn = await draw(report, team=deps.team, catalog=deps.catalog, charts=(name,))
    return drawn[name]


async def csv_file(period: Period, deps: Deps) -> bytes:
    """Return the period's cases as CSV, as `/report … csv` attaches them."""
    async with deps.uow() as uow:
        facts = [fact async for fact in uow.reports.facts(period)]
        forms = await uow.reports.answer_forms_of([f.case_id for f in facts])
    return await asyncio.to_thread(cases_csv, facts, now=deps.clock.now(), zone=deps.team.zone,
                                   forms=forms)


async def digest_file(week: Week, deps: Deps) -> bytes:
    """Return the week's digest agenda as Markdown, as `/digest` attaches it."""
    made = await build_digest(week, uow=deps.uow(), now=deps.clock.now())
    text = await asyncio.to_thread(digest_markdown, made, team=deps.team, catalog=deps.catalog)
    return text.encode()

