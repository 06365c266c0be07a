"""Report charts as PNG pictures, drawn off-screen with matplotlib.

`matplotlib.figure.Figure` with the Agg canvas, never pyplot: no global state, no
display, safe to draw in a worker thread.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from socialcare.bot.catalog import Catalog
from socialcare.bot.model import Tier
from socialcare.bot.reports import HISTOGRAM_CAP, Report
from socialcare.bot.team import Team

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_COLOURS = {"main": "#3b6fd8", "extra": "#7a4fc4"}


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def reaction_chart(report: Report, *, team: Team, catalog: Catalog) -> bytes:
    """Reaction times per tier as histograms, each with its SLA as a red line."""
    from matplotlib.figure import Figure  # 30 MB: loaded with the first chart

    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots(1, len(Tier), sharey=False, squeeze=False)[0]
    for ax, tier in zip(axes, Tier, strict=True):
        minutes = team.sla.for_tier(tier).first_response_minutes
        buckets = report.histogram.get(tier.value, {})
        xs = sorted(buckets)
        ax.bar(xs, [buckets[x] for x in xs], width=0.9, color=_COLOURS[tier.value])
        ax.axvline(minutes, color="#d62728", linewidth=2,
                   label=catalog("chart.sla_line", minutes=minutes))
        ax.set_title(catalog(f"report.tier_{tier.value}", minutes=minutes))
        ax.set_xlabel(catalog("chart.minutes", cap=HISTOGRAM_CAP))
        ax.set_xlim(left=-1, right=max([minutes * 2, *xs, 1]) + 1)
        ax.legend(loc="upper right")
    axes[0].set_ylabel(catalog("chart.cases"))
    figure.suptitle(catalog("chart.reaction_title", period=report.period.label))
    return _png(figure)


def volume_chart(report: Report, *, catalog: Catalog) -> bytes:
    """Cases per day as bars, with the share answered within the SLA as a line."""
    from matplotlib.figure import Figure  # 30 MB: loaded with the first chart

    figure = Figure(figsize=(8, 4))
    ax = figure.subplots()
    # Days at positions 0, 1, …, labelled "29.11": labels as x values read as numbers.
    xs = list(range(len(report.days)))
    ax.bar(xs, [day.cases for day in report.days], color="#9db4e8",
           label=catalog("chart.cases"))
    ax.set_xticks(xs, [day.day.strftime("%d.%m") for day in report.days])
    ax.set_ylabel(catalog("chart.cases"))
    ax.set_ylim(bottom=0)
    shares = ax.twinx()
    values = [day.met / (day.met + day.missed) * 100 if day.met + day.missed else None
              for day in report.days]
    shares.plot(xs, [v if v is not None else float("nan") for v in values],
                color="#2ca02c", marker="o", label=catalog("chart.met_share"))
    shares.set_ylim(0, 105)
    shares.set_ylabel(catalog("chart.met_share"))
    ax.set_title(catalog("chart.volume_title", period=report.period.label))
    if len(xs) > 10:
        ax.tick_params(axis="x", labelrotation=60)
    return _png(figure)
