"""The benchmark's figures: one row each, printed as a table and saved as JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Figure:
    """One measured figure: its median over the runs, its target, and the runs behind it."""

    key: str  # the letter and a short name, e.g. "a. ingest PostgreSQL"
    value: float | None  # None: not measured (skipped or failed; `note` says why)
    unit: str
    target: str = ""  # e.g. "≥ 500"; empty when the figure has none
    met: bool | None = None  # None when there is no target or no value
    runs: tuple[float, ...] = ()
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> str:
        """Return the value with its unit, as the table shows it."""
        if self.value is None:
            return "—"
        if self.unit == "×":
            return f"{self.value:.2f} ×"
        digits = 0 if abs(self.value) >= 100 else 1 if abs(self.value) >= 10 else 2
        return f"{self.value:,.{digits}f} {self.unit}"


def at_least(key: str, runs: Sequence[float], unit: str, target: float | None = None,
             **extra: Any) -> Figure:
    """Return the figure of `runs` (median), met when it reaches `target`."""
    return _figure(key, runs, unit, target, lambda v, t: v >= t, "≥", **extra)


def at_most(key: str, runs: Sequence[float], unit: str, target: float | None = None,
            **extra: Any) -> Figure:
    """Return the figure of `runs` (median), met when it stays within `target`."""
    return _figure(key, runs, unit, target, lambda v, t: v <= t, "≤", **extra)


def _figure(key: str, runs: Sequence[float], unit: str, target: float | None,
            meets: Any, sign: str, **extra: Any) -> Figure:
    if not runs:
        return Figure(key, None, unit, f"{sign} {target:g} {unit}" if target else "",
                      **extra)
    value = statistics.median(runs)
    return Figure(
        key, value, unit, target=f"{sign} {target:g} {unit}" if target is not None else "",
        met=None if target is None else bool(meets(value, target)),
        runs=tuple(round(r, 4) for r in runs), **extra,
    )


def percentile(values: Sequence[float], p: float) -> float:
    """Return the p-th percentile (0-100), interpolated like SQL's percentile_cont."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def render(figures: Sequence[Figure]) -> str:
    """Lay the figures out as a plain-text table, with notes under it."""
    rows = [("figure", "value", "target", "met?")]
    for figure in figures:
        met = "—" if figure.met is None else "yes" if figure.met else "NO"
        rows.append((figure.key, figure.shown(), figure.target or "—", met))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(
            cell.ljust(width) if i in (0, 2) else cell.rjust(width) if i == 1 else cell
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    notes = [f"  {f.key}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def markdown(figures: Sequence[Figure]) -> str:
    """Lay the figures out as a Markdown table (for the README)."""
    lines = ["| figure | value | target | met? |", "| --- | ---: | --- | --- |"]
    for figure in figures:
        met = "—" if figure.met is None else "yes" if figure.met else "**no**"
        lines.append(f"| {figure.key} | {figure.shown()} | {figure.target or '—'} | {met} |")
    return "\n".join(lines)


def save(figures: Sequence[Figure], meta: dict[str, Any], name: str = "latest.json") -> Path:
    """Write the figures and the run's circumstances to benchmarks/results/`name`."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    body = {**meta, "figures": [asdict(figure) for figure in figures]}
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n")
    return path
