"""The command line as a transport: files in, tables out, through the domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TextIO

from socialcare.adapters.collectors.mention_json import parse_lines
from socialcare.bot import sla
from socialcare.bot.model import Case
from socialcare.bot.pipeline import Outcome
from socialcare.deps import Deps

INGEST_BATCH = 500


async def ingest_file(deps: Deps, stream: Iterable[str], out: TextIO) -> int:
    """Load JSON Lines mentions; nothing is stored if any line is bad. Return an exit code."""
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


def _time_left(case: Case, deps: Deps) -> str:
    left = sla.time_left(case, deps.clock.now())
    if left is None:
        return case.state.value
    minutes = int(abs(left) / timedelta(minutes=1))
    return f"{minutes} min left" if left >= timedelta(0) else f"overdue {minutes} min"


async def print_cases(deps: Deps, out: TextIO, *, limit: int) -> int:
    """Print the open cases, earliest deadline first."""
    async with deps.uow() as uow:
        cases = await uow.cases.list_open(limit=limit)
        firsts = await uow.mentions.first_of([c.id for c in cases if c.id is not None])
    if not cases:
        print("no open cases", file=out)
        return 0
    zone = deps.team.zone
    rows = [("#", "state", "tier", "platform", "brand", "due", "time left", "holder", "author",
             "text")]
    for case in cases:
        first = firsts.get(case.id) if case.id is not None else None
        due = case.response_due_at.astimezone(zone).strftime("%d.%m %H:%M") \
            if case.response_due_at else "-"
        author = (first.author.handle or first.author.name or "-") if first else "-"
        text = " ".join((first.text if first else "").split())
        rows.append((
            str(case.id), case.state.value, case.tier.value, case.platform, case.brand, due,
            _time_left(case, deps), case.claimed_by or "-", author[:24],
            text[:50] + ("…" if len(text) > 50 else ""),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip(), file=out)
    print(f"({len(cases)} open, times in {deps.team.timezone})", file=out)
    return 0
