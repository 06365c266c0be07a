"""A report in words, the same in every messenger: the team reads it at a glance."""

from __future__ import annotations

from collections.abc import Mapping

from socialcare.bot.answers.forms import AnswerForm
from socialcare.bot.cards import display_name
from socialcare.bot.catalog import Catalog
from socialcare.bot.reports import NONE, Group, Report, Stat
from socialcare.bot.team import Team

# The breakdowns shown when the report is not asked for one.
DEFAULT_BREAKDOWNS = ("tier", "platform", "topic")
AGENTS_SHOWN = 10
GROUPS_SHOWN = 12


def duration(seconds: float | None, catalog: Catalog) -> str:
    """Return a duration as people say it: 45 s, 6 min, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return catalog("duration.seconds", seconds=max(0, round(seconds)))
    minutes = round(seconds / 60)
    if minutes < 60:
        return catalog("duration.minutes", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return catalog("duration.hours", hours=hours, minutes=minutes)
    return catalog("duration.days", days=hours // 24, hours=hours % 24)


# `duration`'s precision as one ordered integer per shown value: whole seconds below a
# minute, whole minutes below two days, whole hours above. Roll-ups count durations by
# it (the SQL twin is in `socialcare.storage.rollups`): a percentile found in the counts
# is right to the precision every report shows it at.
_MINUTES_FROM, _HOURS_FROM = 1_000, 100_000
_DAYS_MINUTES = 48 * 60


def shown_bucket(seconds: float) -> int:
    """Return the bucket of a duration: two durations `duration` shows alike share it,
    and a longer duration never has a smaller one."""
    if seconds < 60:
        return max(0, round(seconds))
    minutes = round(seconds / 60)
    if minutes < _DAYS_MINUTES:
        return _MINUTES_FROM + minutes
    return _HOURS_FROM + minutes // 60


def bucket_seconds(bucket: int) -> float:
    """Return a duration in the bucket (shown as every duration in it is)."""
    if bucket < 60:
        return float(bucket)
    if bucket == 60:  # 59.5 s up to a minute: "60 s"
        return 59.75
    if bucket < _HOURS_FROM:
        return 60.0 * (bucket - _MINUTES_FROM)
    return 3600.0 * (bucket - _HOURS_FROM)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """Return an interval that holds every duration of the bucket (and a little more:
    the caller checks the bucket itself)."""
    if bucket <= 60:
        return (float("-inf") if bucket == 0 else bucket - 1.0, bucket + 1.0)
    if bucket < _HOURS_FROM:
        minutes = bucket - _MINUTES_FROM
        return 60.0 * minutes - 31, 60.0 * minutes + 31
    hours = bucket - _HOURS_FROM
    return 3600.0 * hours - 31, 3600.0 * (hours + 1) + 31


def share(part: float | None) -> str:
    """Return a share as a whole percentage, or a dash for none."""
    return "—" if part is None else f"{round(part * 100)}%"


def _stat(stat: Stat, catalog: Catalog) -> str:
    return catalog("report.stat", median=duration(stat.median, catalog),
                   p90=duration(stat.p90, catalog))


def _group_line(group: Group, label: str, catalog: Catalog) -> str:
    return catalog(
        "report.group", name=label, cases=group.cases, reaction=_stat(group.reaction, catalog),
        share=share(group.met_share), met=group.met, missed=group.missed,
        pending=group.pending, dismissed=share(group.dismissed / group.cases
                                                if group.cases else None),
    )


def render_report(
    report: Report,
    *,
    team: Team,
    catalog: Catalog,
    breakdowns: tuple[str, ...] = DEFAULT_BREAKDOWNS,
    links: Mapping[int, str] | None = None,
) -> str:
    """Return the report's text; `links` gives the original of the worst cases."""
    text = catalog
    total = report.total
    name = report.period.name  # a range of dates is its own name in every language
    if text.has(f"report.period_name.{name}"):
        name = text(f"report.period_name.{name}")
    lines = [text("report.title", period=report.period.label, name=name,
                  cases=total.cases,
                  dismissed=share(total.dismissed / total.cases if total.cases else None))]
    lines.append(text("report.reaction_all", reaction=_stat(total.reaction, text),
                      share=share(total.met_share), met=total.met, missed=total.missed,
                      pending=total.pending))
    for dimension in breakdowns:
        groups = report.groups.get(dimension, [])
        if not groups or (dimension == "topic" and not team.topics):
            continue
        lines.append(text(f"report.by_{dimension}"))
        for group in groups[:GROUPS_SHOWN]:
            label = _label(dimension, group.key, team, text)
            if dimension == "topic":
                label = text("report.topic_change", topic=label, change=change(
                    group.cases, report.previous_topics.get(group.key, 0), text))
            lines.append("  " + _group_line(group, label, text))
    lines.append(text("report.lag", stat=_stat(report.collector_lag, text)))
    lines.append(text("report.resolution", stat=_stat(report.resolution, text)))
    if report.resolved:
        parts = " · ".join(f"{k}: {share(v / report.resolved)}"
                           for k, v in report.messages.items())
        lines.append(text("report.messages", parts=parts,
                          within_two=share(report.within_messages(2))))
    else:
        lines.append(text("report.messages_none"))
    worst = ", ".join(
        f"#{b.case_id} (+{duration(b.overdue_seconds, text)})"
        + (f" {links[b.case_id]}" if links and links.get(b.case_id) else "")
        for b in report.worst
    )
    lines.append(text("report.breaches", count=report.breaches, worst=worst or "—"))
    agents = [g for g in report.groups.get("agent", [])
              if not g.key.startswith(("brand:", "customer:"))][:AGENTS_SHOWN]
    if agents:
        lines.append(text("report.agents"))
        lines += ["  " + text("report.agent", name=display_name(g.key, team, text),
                              answered=g.reaction.count,
                              median=duration(g.reaction.median, text))
                  for g in agents]
    if report.answers:
        lines.append(text("report.answers", parts=answer_shares(report.answers, text)))
    if report.escalations:
        lines.append(text("report.escalations", parts=" · ".join(
            f"{text(f'category.{k}')}: {v}" for k, v in sorted(report.escalations.items()))))
    return "\n".join(lines)


def answer_shares(answers: dict[str, int], text: Catalog) -> str:
    """Return the answers by form with each one's share: "text 6 (75%) · calculation 2
    (25%)", in the forms' order."""
    total = sum(answers.values())
    order = [f.value for f in AnswerForm]
    forms = sorted(answers, key=lambda f: (order.index(f) if f in order else len(order), f))
    return " · ".join(
        f"{text(f'answer_form.{f}') if f in order else f} {answers[f]} "
        f"({round(100 * answers[f] / total)}%)" for f in forms if answers[f])


def change(now: int, before: int, text: Catalog) -> str:
    """Return a count's change against the period before: "+5 (+50%)", "−2 (−20%)",
    "new"."""
    if before == 0:
        return text("report.new") if now else "±0"
    delta = now - before
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    return f"{sign}{abs(delta)} ({sign}{round(abs(delta) * 100 / before)}%)"


def topic_title(key: str, team: Team, text: Catalog) -> str:
    """Return how a topic is shown in reports: its title, or "no topic"."""
    if key == NONE:
        return text("command.topics_none")
    topic = team.topic(key)
    return topic.title if topic else key


def _label(dimension: str, key: str, team: Team, text: Catalog) -> str:
    if dimension == "tier":
        minutes = team.sla.main.first_response_minutes if key == "main" \
            else team.sla.extra.first_response_minutes
        return text(f"report.tier_{key}", minutes=minutes)
    if dimension == "platform":
        return text(f"platform.{key}") if text.has(f"platform.{key}") else key
    if dimension == "agent":
        return display_name(key, team, text)
    if dimension == "topic":
        return topic_title(key, team, text)
    if dimension == "language":
        return text(f"language.{key}") if text.has(f"language.{key}") else key
    return key
