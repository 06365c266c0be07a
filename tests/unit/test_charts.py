"""The report charts as drawn, measured on the canvas: in English and Russian, for an
empty period, one day and a month — whole-number counts from 0, no text over another,
bars wide enough to see, the SLA named, the period and the timezone in the title; and
drawn for the app in a process of their own, which the app's never loads matplotlib."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text

from socialcare.adapters.charts import (
    ChartsFailed,
    draw,
    reaction_chart,
    reaction_figure,
    volume_figure,
)
from socialcare.bot.reports import HISTOGRAM_CAP, Day, Report, aggregate, parse_period
from socialcare.settings import load_catalog
from tests.conftest import ROOT, make_team

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TEAM = make_team()
ARTIFACTS = ROOT / "tests" / "artifacts"
MIN_BAR_PIXELS = 4


def _report(kind: str) -> Report:
    """An empty day, one busy day, or a month of varied days."""
    period = parse_period({"empty": "today", "day": "today", "month": "month"}[kind],
                          now=NOW, zone=TEAM.zone)
    report = aggregate([], period=period, now=NOW)
    if kind == "empty":
        return report
    rng = random.Random(7)
    days = [Day(d.day, cases=(n := rng.choice([0, 3, 12, 40, 85, 130])),
                met=(met := rng.randint(0, n)), missed=rng.randint(0, n - met))
            for d in report.days]
    main = {rng.randint(0, 40): rng.randint(1, 60) for _ in range(25)}
    extra = {rng.randint(0, HISTOGRAM_CAP): rng.randint(1, 9) for _ in range(30)}
    extra[HISTOGRAM_CAP] = 4  # answered after two hours and more
    return dataclasses.replace(report, days=days, histogram={"main": main, "extra": extra})


def _boxes(figure: Figure) -> Iterator[tuple[Text, tuple[float, float, float, float]]]:
    """Every text drawn on the figure, with its box on the canvas in pixels."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    hidden = _undrawn_tick_labels(figure)
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in hidden:
            continue
        box = text.get_window_extent(renderer)
        yield text, (box.x0, box.y0, box.x1, box.y1)


def _undrawn_tick_labels(figure: Figure) -> set[int]:
    """Tick labels outside their axis's view are laid out but never drawn."""
    hidden = set()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
             ) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _figures(kind: str, language: str) -> dict[str, Figure]:
    catalog = load_catalog(language)
    report = _report(kind)
    return {"reaction": reaction_figure(report, team=TEAM, catalog=catalog),
            "volume": volume_figure(report, catalog=catalog)}


CASES = [(kind, language) for kind in ("empty", "day", "month") for language in ("en", "ru")]


@pytest.mark.parametrize(("kind", "language"), CASES)
def test_no_text_of_a_chart_lies_over_another(kind: str, language: str) -> None:
    for name, figure in _figures(kind, language).items():
        boxes = list(_boxes(figure))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        figure.savefig(ARTIFACTS / f"chart-{name}-{kind}-{language}.png")
        width, height = figure.canvas.get_width_height()
        for text, (x0, y0, x1, y1) in boxes:
            assert x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height, \
                (name, text.get_text(), "is cut off")
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert _overlap(box_a, box_b) == 0, (name, a.get_text(), b.get_text())


@pytest.mark.parametrize(("kind", "language"), CASES)
def test_counts_are_whole_numbers_from_zero(kind: str, language: str) -> None:
    cases = load_catalog(language)("chart.cases")
    for name, figure in _figures(kind, language).items():
        FigureCanvasAgg(figure).draw()
        counting = [ax for ax in figure.axes if ax.get_ylabel() == cases]
        assert counting, name
        for ax in counting:
            low, high = ax.get_ylim()
            ticks = [t for t in ax.get_yticks() if low <= t <= high]
            assert low == 0, (name, low)
            assert high >= 1, (name, high)
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), (name, ticks)


@pytest.mark.parametrize(("kind", "language"), CASES)
def test_bars_are_wide_enough_to_see_and_one_day_is_not_a_wall(kind: str,
                                                                language: str) -> None:
    seen = 0
    for name, figure in _figures(kind, language).items():
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw(renderer)
        for ax in figure.axes:
            bars = [bar for container in ax.containers if isinstance(container, BarContainer)
                    for bar in container.patches if bar.get_height() > 0]
            plot_width = ax.get_window_extent(renderer).width
            for bar in bars:
                width = bar.get_window_extent(renderer).width
                assert width >= MIN_BAR_PIXELS, (name, width)
                assert width <= plot_width / 6, (name, width, plot_width)
            seen += len(bars)
    assert seen > 0 if kind != "empty" else seen == 0


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_title_names_the_period_and_the_timezone_and_the_sla_line_is_named(
    language: str,
) -> None:
    catalog = load_catalog(language)
    for name, figure in _figures("month", language).items():
        title = figure.get_suptitle()
        assert "01.11–30.11.2026" in title and "Asia/Almaty" in title, (name, title)
    texts = [t.get_text() for t, _ in _boxes(_figures("day", language)["reaction"])]
    assert catalog("chart.sla_line", minutes=15) in texts
    assert catalog("chart.sla_line", minutes=60) in texts


@pytest.mark.parametrize("language", ["en", "ru"])
def test_an_empty_period_says_so(language: str) -> None:
    catalog = load_catalog(language)
    figures = _figures("empty", language)

    reaction = [t.get_text() for t, _ in _boxes(figures["reaction"])]
    volume = [t.get_text() for t, _ in _boxes(figures["volume"])]

    assert reaction.count(catalog("chart.no_answers")) == 2
    assert volume.count(catalog("chart.no_cases")) == 1


def test_a_chart_is_a_png() -> None:
    png = reaction_chart(_report("day"), team=TEAM, catalog=load_catalog("en"))

    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# Draws both charts through `draw` in a fresh interpreter; prints whether it loaded
# matplotlib itself and what came back.
_DRAW_APART = """
import asyncio, json, sys
from datetime import UTC, datetime
from socialcare.adapters.charts import draw
from socialcare.bot.reports import aggregate, parse_period
from socialcare.settings import load_catalog
from tests.conftest import make_team
team, now = make_team(), datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
report = aggregate([], period=parse_period("month", now=now, zone=team.zone), now=now)
drawn = asyncio.run(draw(report, team=team, catalog=load_catalog("ru")))
print(json.dumps({"matplotlib": "matplotlib" in sys.modules,
                  "charts": {name: png[:8].hex() for name, png in drawn.items()}}))
"""


def test_the_app_draws_its_charts_in_a_process_of_their_own() -> None:
    done = subprocess.run([sys.executable, "-c", _DRAW_APART], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])

    png = b"\x89PNG\r\n\x1a\n".hex()
    assert seen == {"matplotlib": False, "charts": {"reaction": png, "volume": png}}


async def test_one_chart_is_drawn_alone_and_a_failed_drawing_says_why() -> None:
    drawn = await draw(_report("day"), team=TEAM, catalog=load_catalog("en"),
                       charts=("volume",))
    assert list(drawn) == ["volume"] and drawn["volume"][:4] == b"\x89PNG"

    with pytest.raises(ChartsFailed, match="KeyError"):
        await draw(_report("day"), team=TEAM, catalog=load_catalog("en"), charts=("pie",))


async def test_a_drawing_no_longer_wanted_is_stopped() -> None:
    task = asyncio.create_task(draw(_report("month"), team=TEAM,
                                    catalog=load_catalog("en")))
    await asyncio.sleep(0.2)  # the drawing process has started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
