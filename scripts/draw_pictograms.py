"""Draw the two example pictograms that config.example.toml's saved replies carry.

    .venv/bin/python scripts/draw_pictograms.py   # writes pictures/*.png

Made for the project with matplotlib (no copied artwork): a phone with the steps to
set up mobile internet (APN), and a card of USSD codes. Replace them with your own.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

OUT = Path(__file__).resolve().parent.parent / "pictures"
BLUE, GREY, INK = "#3b6fd8", "#e8edf7", "#1f2937"


def apn_setup() -> Figure:
    """A phone and the four steps to set up the APN."""
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, 60)
    axes.set_ylim(0, 40)
    axes.axis("off")
    axes.add_patch(FancyBboxPatch((4, 4), 16, 32, boxstyle="round,pad=0.6",
                                  facecolor=GREY, edgecolor=INK, linewidth=2))
    axes.add_patch(Circle((12, 6.5), 1.2, facecolor="white", edgecolor=INK))
    for y, width in ((30, 10), (26, 8), (22, 11), (18, 7)):
        axes.add_patch(FancyBboxPatch((7, y), width, 2, boxstyle="round,pad=0.2",
                                      facecolor=BLUE, edgecolor="none"))
    axes.text(30, 35, "Mobile internet: APN", fontsize=15, weight="bold", color=INK)
    steps = ("Settings → Mobile network", "Access Point Names (APN)",
             "Add: APN = internet", "Save, restart the phone")
    for n, step in enumerate(steps, start=1):
        y = 29 - (n - 1) * 6.5
        axes.add_patch(Circle((27, y + 0.8), 1.8, facecolor=BLUE, edgecolor="none"))
        axes.text(27, y + 0.8, str(n), fontsize=12, color="white", ha="center", va="center",
                  weight="bold")
        axes.text(30.5, y, step, fontsize=11.5, color=INK)
    return figure


def ussd_codes() -> Figure:
    """A card of the codes customers ask for most."""
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, 60)
    axes.set_ylim(0, 40)
    axes.axis("off")
    axes.text(4, 34, "USSD codes", fontsize=16, weight="bold", color=INK)
    rows = (("*100#", "Balance"), ("*111#", "Remaining minutes and GB"),
            ("*122#", "Your tariff"), ("*133#", "Top up by card"))
    for n, (code, meaning) in enumerate(rows):
        y = 26 - n * 7
        axes.add_patch(FancyBboxPatch((4, y), 14, 4.5, boxstyle="round,pad=0.4",
                                      facecolor=BLUE, edgecolor="none"))
        axes.text(11, y + 2.2, code, fontsize=14, color="white", ha="center", va="center",
                  family="monospace", weight="bold")
        axes.text(22, y + 2.2, meaning, fontsize=12, color=INK, va="center")
    axes.text(4, 1.5, "Example codes: put your operator's own.", fontsize=9, color="#6b7280")
    return figure


def main() -> None:
    """Write both pictograms as PNG."""
    OUT.mkdir(exist_ok=True)
    for name, figure in (("apn-setup", apn_setup()), ("ussd-codes", ussd_codes())):
        FigureCanvasAgg(figure)
        figure.savefig(OUT / f"{name}.png", format="png")
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
