"""The command line as a transport: files in, tables out, through the domain."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TextIO

from socialcare.bot import sla
from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.model import Case, Mention, Priority

if TYPE_CHECKING:
    # Types only: the protocols' module is a tenth of `socialcare cases`'s own start.
    from socialcare.bot.ports import CaseRepository, MentionRepository
    from socialcare.bot.team import Team
    from socialcare.deps import Deps

INGEST_BATCH = 500
URGENT = "🔥"


async def ingest_file(deps: Deps, stream: Iterable[str], out: TextIO) -> int:
    """Load JSON Lines mentions; nothing is stored if any line is bad. Return an exit code."""
    from socialcare.adapters.collectors.mention_json import parse_lines
    from socialcare.bot.pipeline import Outcome

    raws, problems = parse_lines(stream, sources={s.name for s in deps.team.sources},
                                   now=deps.clock.now())
    if problems:
        for problem in problems[:20]:
            print(problem, file=out)
        if len(problems) > 20:
            print(f"… and {len(problems) - 20} more", file=out)
        print("nothing was stored: fix the lines above and run again", file=out)
        return 2
    totals: dict[str, int] = {}
    for start in range(0, len(raws), INGEST_BATCH):
        batch = raws[start:start + INGEST_BATCH]
        for raw, result in zip(
            batch, await deps.pipeline.ingest(batch, uow=deps.uow()), strict=True
        ):
            label = result.outcome.value
            if result.outcome is Outcome.DROPPED and result.reason is not None:
                label = f"dropped ({result.reason.value})"
            totals[label] = totals.get(label, 0) + 1
            deps.telemetry.mentions.labels(
                raw.source, result.outcome.value, result.reason.value if result.reason else ""
            ).inc()
    summary = ", ".join(f"{count} {label}" for label, count in sorted(totals.items()))
    print(f"{len(raws)} mention(s): {summary or 'none'}", file=out)
    return 0


def _time_left(case: Case, now: datetime) -> str:
    left = sla.time_left(case, now)
    if left is None:
        return case.state.value
    minutes = int(abs(left) / timedelta(minutes=1))
    return f"{minutes} min left" if left >= timedelta(0) else f"overdue {minutes} min"


def _width(cell: str) -> int:
    """Return how many columns a terminal gives a cell (an emoji takes two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in cell)


@dataclass(frozen=True)
class OpenCases:
    """The open cases to list: at most the limit of them, how many are open in all, and
    each listed case's first mention."""

    listed: Sequence[Case]
    total: int
    firsts: Mapping[int, Mention]


async def read_open_cases(cases: CaseRepository, mentions: MentionRepository, *,
                          limit: int) -> OpenCases:
    """Read the open cases to list, earliest deadline first (urgent first among equal ones)."""
    listed = await cases.list_open(limit=limit)
    total = sum((await cases.count_open()).values())
    firsts = await mentions.first_of([c.id for c in listed if c.id is not None])
    return OpenCases(listed, total, firsts)


def print_cases(found: OpenCases, *, team: Team, now: datetime, out: TextIO,
                limit: int) -> int:
    """Print the open cases as a table, in the order they were read. Return an exit code."""
    listed, total, firsts = found.listed, found.total, found.firsts
    if not listed:
        print("no open cases", file=out)
        return 0
    rows = [("#", "state", "tier", "platform", "brand", "due", "time left", "holder", "author",
             "text")]
    for case in listed:
        first = firsts.get(case.id) if case.id is not None else None
        due = case.response_due_at.astimezone(team.zone).strftime("%d.%m %H:%M") \
            if case.response_due_at else "-"
        author = (first.author.handle or first.author.name or "-") if first else "-"
        state = case.state.value + (f" {URGENT}" if case.priority is Priority.URGENT else "")
        rows.append((
            str(case.id), state, case.tier.value, case.platform, case.brand, due,
            _time_left(case, now), case.claimed_by or "-", author[:24],
            shared_excerpt(first.text if first else None, 50),
        ))
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell + " " * (width - _width(cell))
                        for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
    shown = f"{len(listed)} open" if len(listed) == total \
        else f"{len(listed)} of {total} open shown (--limit {limit})"
    print(f"({shown}, times in {team.timezone})", file=out)
    return 0
