"""Report charts as PNG pictures, drawn off-screen with matplotlib.

`matplotlib.figure.Figure` with the Agg canvas, never pyplot: no global state, no
display. Each chart is a Figure first (`reaction_figure`, `volume_figure`, which the
rendering tests measure), then a PNG. The app draws them in a short-lived process of
their own (`draw`): matplotlib and a drawing take some 50 MB that a process keeps for
good once it has them, so the serving process never loads it, and the drawing's CPU
work leaves its event loop alone.

What makes them read at a glance, in either language: counts on whole-number axes
that start at 0, one shared label under side-by-side panels (two long ones would
collide), bars never thinner than a few pixels nor wider than a week's day, the SLA
line named where it stands, an empty period saying so, and the period and the team's
timezone in the title.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import pickle
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from socialcare.bot.catalog import Catalog
from socialcare.bot.model import Tier
from socialcare.bot.reports import HISTOGRAM_CAP, Report
from socialcare.bot.team import Team

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
_COLOURS = {"main": "#3b6fd8", "extra": "#7a4fc4"}
_SLA = "#d62728"
_SHARE = "#2ca02c"
_VOLUME = "#9db4e8"
_MUTED = "#6b7280"
# Reaction panels hold at most this many bars: a bar stays several pixels wide.
MAX_BARS = 30
_BIN_MINUTES = (1, 2, 5, 10, 15, 20, 30, 60)
# The volume chart is laid out for at least a week: one day is one bar, not a wall.
MIN_DAY_SLOTS = 7
# At most this many day labels under the volume chart; the others stay unlabelled.
MAX_DAY_LABELS = 10
# Up to this many days, each bar says its count.
LABELLED_BARS = 14


CHARTS = ("reaction", "volume")


class ChartsFailed(RuntimeError):
    """The drawing process failed."""


async def draw(report: Report, *, team: Team, catalog: Catalog,
               charts: Sequence[str] = CHARTS) -> dict[str, bytes]:
    """Draw the report's charts (of `CHARTS`) as PNGs, by name, in a process of their own.

    The report, the team and the catalog go to `python -m socialcare.adapters.charts`
    pickled on its standard input (a child of this process, running this code); the
    pictures come back the same way."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await child.communicate(pickle.dumps((report, team, catalog, tuple(charts))))
    except BaseException:  # cancelled: the drawing is not wanted any more
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise ChartsFailed(f"drawing the charts failed ({child.returncode}): {last[0]}")
    drawn: dict[str, bytes] = pickle.loads(out)
    return drawn


def _draw_from_stdin() -> None:
    """The drawing process: read what `draw` sent, write the pictures back."""
    report, team, catalog, charts = pickle.load(sys.stdin.buffer)
    drawers = {"reaction": lambda: reaction_chart(report, team=team, catalog=catalog),
               "volume": lambda: volume_chart(report, catalog=catalog)}
    sys.stdout.buffer.write(pickle.dumps({name: drawers[name]() for name in charts}))


def reaction_chart(report: Report, *, team: Team, catalog: Catalog) -> bytes:
    """Reaction times per tier as histograms, each with its SLA as a red line (PNG)."""
    return _png(reaction_figure(report, team=team, catalog=catalog))


def volume_chart(report: Report, *, catalog: Catalog) -> bytes:
    """Cases per day as bars, with the share answered within the SLA as a line (PNG)."""
    return _png(volume_figure(report, catalog=catalog))


def reaction_figure(report: Report, *, team: Team, catalog: Catalog) -> Figure:
    """Draw the reaction-time histograms, one panel per tier."""
    from matplotlib.figure import Figure  # 30 MB: loaded with the first chart

    figure = Figure(figsize=(9, 4.6), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, len(Tier), squeeze=False)[0]
    for ax, tier in zip(axes, Tier, strict=True):
        minutes = team.sla.for_tier(tier).first_response_minutes
        buckets = report.histogram.get(tier.value, {})
        _reaction_panel(ax, buckets, minutes=minutes, colour=_COLOURS[tier.value],
                        catalog=catalog)
        ax.set_title(catalog(f"report.tier_{tier.value}", minutes=minutes), fontsize=11)
    axes[0].set_ylabel(catalog("chart.cases"))
    figure.supxlabel(catalog("chart.minutes", cap=HISTOGRAM_CAP), fontsize=10)
    figure.suptitle(_title("chart.reaction_title", report, catalog), fontsize=12)
    return figure


def _reaction_panel(ax: Axes, buckets: dict[int, int], *, minutes: int, colour: str,
                    catalog: Catalog) -> None:
    span = min(max([minutes * 2, *(m + 1 for m in buckets)]), HISTOGRAM_CAP + 1)
    width = next((b for b in _BIN_MINUTES if span / b <= MAX_BARS), _BIN_MINUTES[-1])
    bins: dict[int, int] = {}
    for minute, count in buckets.items():
        start = min(minute, HISTOGRAM_CAP) // width * width
        bins[start] = bins.get(start, 0) + count
    starts = sorted(bins)
    ax.bar(starts, [bins[s] for s in starts], width=width * 0.85, align="edge",
           color=colour)
    right = math.ceil(span / width) * width
    ax.set_xlim(0, right)
    ax.axvspan(0, minutes, color=_SHARE, alpha=0.07, linewidth=0)  # within the SLA
    ax.axvline(minutes, color=_SLA, linewidth=2)
    _count_axis(ax, max(bins.values(), default=0))
    # Named at its top, on the side with more room.
    left_side = minutes > right * 0.6
    ax.annotate(catalog("chart.sla_line", minutes=minutes), xy=(minutes, 1),
                xycoords=("data", "axes fraction"), xytext=(-4 if left_side else 4, -4),
                textcoords="offset points", ha="right" if left_side else "left", va="top",
                color=_SLA, fontsize=9,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})
    if not bins:
        _empty(ax, catalog("chart.no_answers"))
    _plain(ax)


def volume_figure(report: Report, *, catalog: Catalog) -> Figure:
    """Draw the cases per day with the share answered within the SLA."""
    from matplotlib.figure import Figure  # 30 MB: loaded with the first chart
    from matplotlib.ticker import PercentFormatter

    figure = Figure(figsize=(9, 4.4), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    days = report.days
    xs = list(range(len(days)))
    counts = [day.cases for day in days]
    bars = ax.bar(xs, counts, width=0.7, color=_VOLUME, label=catalog("chart.cases"))
    # Fewer than a week of days sit in the middle of a week's width.
    slots = max(len(days), MIN_DAY_SLOTS)
    margin = (slots - len(days)) / 2
    ax.set_xlim(-0.5 - margin, len(days) - 0.5 + margin)
    step = max(1, math.ceil(len(days) / MAX_DAY_LABELS))
    ax.set_xticks(xs[::step], [day.day.strftime("%d.%m") for day in days[::step]])
    ax.set_ylabel(catalog("chart.cases"))
    _count_axis(ax, max(counts, default=0))
    if len(days) <= LABELLED_BARS and any(counts):
        ax.bar_label(bars, [str(n) if n else "" for n in counts], padding=2, fontsize=8,
                     color=_MUTED)
    _plain(ax)
    shares = ax.twinx()
    values = [day.met / (day.met + day.missed) * 100 if day.met + day.missed else math.nan
              for day in days]
    [line] = shares.plot(xs, values, color=_SHARE, marker="o",
                         label=catalog("chart.met_share"))
    shares.set_ylim(0, 105)
    shares.set_yticks([0, 25, 50, 75, 100])
    shares.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    shares.set_ylabel(catalog("chart.met_share"))
    shares.tick_params(labelsize=9)
    shares.spines["top"].set_visible(False)
    figure.legend([bars, line], [catalog("chart.cases"), catalog("chart.met_share")],
                  loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    if not any(counts):
        _empty(ax, catalog("chart.no_cases"))
    figure.suptitle(_title("chart.volume_title", report, catalog), fontsize=12)
    return figure


def _count_axis(ax: Axes, highest: int) -> None:
    """Count on whole numbers from 0, with room above the highest bar."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=2))
    ax.set_ylim(0, max(highest * 1.2, 1))


def _empty(ax: Axes, words: str) -> None:
    ax.text(0.5, 0.5, words, transform=ax.transAxes, ha="center", va="center",
            color=_MUTED, fontsize=10, zorder=5,
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "none"})


def _plain(ax: Axes) -> None:
    """Light horizontal guides, no box around the plot."""
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=9)


def _title(key: str, report: Report, catalog: Catalog) -> str:
    period = report.period
    return catalog(key, period=period.label, zone=period.zone.key)


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


if __name__ == "__main__":
    _draw_from_stdin()
