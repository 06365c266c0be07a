"""Reports from the chat: `/report`, `/agent`, `/sla` — the same in every messenger."""

from __future__ import annotations

import asyncio

from socialcare.adapters.charts import draw
from socialcare.adapters.spreadsheet import cases_csv
from socialcare.bot.announcements.views import figures_lines
from socialcare.bot.errors import TeamFiguresOnly
from socialcare.bot.report_text import DEFAULT_BREAKDOWNS, duration, render_report, share
from socialcare.bot.reports import BadPeriod, Period, Report, parse_period
from socialcare.bot.team import Person
from socialcare.deps import Deps
from socialcare.handlers import announcing, incidenting
from socialcare.handlers.chat import Attachment, ChatReply
from socialcare.handlers.escalating import person_named

BREAKDOWNS = ("tier", "platform", "brand", "topic", "language")


async def build(period: Period, deps: Deps) -> tuple[Report, dict[int, str]]:
    """Return the period's report and the original links of its worst cases."""
    async with deps.uow() as uow:
        report = await uow.reports.report(period, now=deps.clock.now())
        firsts = await uow.mentions.first_of([b.case_id for b in report.worst])
    return report, {case_id: m.url for case_id, m in firsts.items() if m.url}


async def report_reply(period: Period, deps: Deps, *, breakdowns: tuple[str, ...],
                       csv: bool) -> ChatReply:
    """Return the report's text with its charts (and the cases as CSV if asked)."""
    report, links = await build(period, deps)
    # Formatting a big report and writing CSV are CPU work: off the event loop (and the
    # charts are drawn in a process of their own).
    text = await asyncio.to_thread(render_report, report, team=deps.team,
                                   catalog=deps.catalog, breakdowns=breakdowns, links=links)
    told = figures_lines(await announcing.figures(period, deps), team=deps.team,
                         catalog=deps.catalog)
    told += incidenting.figures_lines(
        await incidenting.figures(period.start, period.end, deps), deps)
    if told:
        text += "\n" + "\n".join(told)
    charts = await draw(report, team=deps.team, catalog=deps.catalog)
    name = period.name.replace("..", "_")
    attachments = [Attachment(f"{chart}-{name}.png", png, image=True)
                   for chart, png in charts.items()]
    if csv:
        async with deps.uow() as uow:
            facts = [fact async for fact in uow.reports.facts(period)]
            forms = await uow.reports.answer_forms_of([f.case_id for f in facts])
        attachments.append(Attachment(f"cases-{name}.csv", await asyncio.to_thread(
            cases_csv, facts, now=deps.clock.now(), zone=deps.team.zone, forms=forms)))
    return ChatReply(text, attachments=tuple(attachments))


async def run_report(args: str, deps: Deps) -> ChatReply:
    """Run `/report [period] [tier | platform | brand | topic | language] [csv]`."""
    period_word, breakdowns, csv = "", DEFAULT_BREAKDOWNS, False
    for word in args.casefold().split():
        if word == "csv":
            csv = True
        elif word in BREAKDOWNS:
            breakdowns = (word,)
        elif not period_word:
            period_word = word
        else:
            return ChatReply(deps.catalog("usage.report"))
    try:
        period = parse_period(period_word, now=deps.clock.now(), zone=deps.team.zone)
    except BadPeriod:
        return ChatReply(deps.catalog("usage.report"))
    return await report_reply(period, deps, breakdowns=breakdowns, csv=csv)


async def run_agent(args: str, person: Person, deps: Deps) -> ChatReply:
    """Run `/agent [@someone] [period]`: one agent's figures (default: your own, this week;
    someone else's for those who read the team's figures)."""
    text = deps.catalog
    agent, period_word = person, "week"
    for word in args.split():
        if word.startswith(("@", "<@")):
            found = person_named(deps.team, word)
            if found is None:
                return ChatReply(text("usage.agent"))
            agent = found
        else:
            period_word = word
    if agent.id != person.id and not person.reads_team_figures:
        raise TeamFiguresOnly()
    try:
        period = parse_period(period_word, now=deps.clock.now(), zone=deps.team.zone)
    except BadPeriod:
        return ChatReply(text("usage.agent"))
    report, _ = await build(period, deps)
    group = next((g for g in report.groups["agent"] if g.key == agent.id), None)
    if group is None:
        return ChatReply(text("report.agent_none", name=agent.name, period=period.label))
    return ChatReply(text(
        "report.agent_card", name=agent.name, period=period.label,
        answered=group.reaction.count, median=duration(group.reaction.median, text),
        p90=duration(group.reaction.p90, text), share=share(group.met_share), met=group.met,
        missed=group.missed,
    ))


async def run_sla(deps: Deps) -> ChatReply:
    """Run `/sla`: open cases per tier, how many are in the warning zone, how many overdue."""
    text = deps.catalog
    now = deps.clock.now()
    async with deps.uow() as uow:
        open_cases = await uow.cases.list_open(limit=100_000)
    lines = [text("sla.now.title")]
    for tier in ("main", "extra"):
        policy = deps.team.sla.main if tier == "main" else deps.team.sla.extra
        warning_at = policy.warning_points[-1] if policy.warning_points else 1.0
        mine = [c for c in open_cases if c.tier.value == tier]
        waiting = [c for c in mine if c.awaits_response and c.response_due_at
                   and c.response_started_at]
        overdue = [c for c in waiting if c.response_due_at and c.response_due_at <= now]
        warning = [c for c in waiting if c not in overdue and c.response_due_at
                   and c.response_started_at and now >= c.response_started_at
                   + (c.response_due_at - c.response_started_at) * warning_at]
        oldest = min((c.response_due_at for c in overdue if c.response_due_at), default=None)
        lines.append(text(
            f"sla.now.{tier}", minutes=policy.first_response_minutes, open=len(mine),
            waiting=len(waiting), warning=len(warning), overdue=len(overdue),
            worst=duration((now - oldest).total_seconds(), text) if oldest else "—",
        ))
    with_team = [c for c in open_cases if c.handoff_team]
    if with_team:
        lines.append(text("sla.now.second_line", count=len(with_team)))
    return ChatReply("\n".join(lines))

