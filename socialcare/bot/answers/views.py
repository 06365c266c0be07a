"""A comparison as a table of words and figures in the team's language: the one source
of both the text an agent sends and the picture drawn from it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from socialcare.bot.answers.calculators import Comparison
from socialcare.bot.catalog import Catalog


@dataclass(frozen=True)
class ComparisonTable:
    """What a comparison shows: a title, the usage, the rows, the conclusion."""

    title: str
    usage: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    # Which row is the customer's current tariff, and which the cheapest.
    current: int
    cheapest: int
    summary: str


def money(amount: Decimal, currency: str = "") -> str:
    """Write an amount as people read it: no cents when there are none."""
    shown = f"{amount:.0f}" if amount == amount.to_integral_value() else f"{amount:.2f}"
    return f"{shown} {currency}".strip()


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def comparison_table(comparison: Comparison, text: Catalog) -> ComparisonTable:
    """Lay the comparison out in rows, cheapest first."""
    calc = comparison.calculator
    cur = calc.currency
    fees = {t.name: t.fee for t in calc.tariffs}
    rows = []
    for row in comparison.rows:
        name = row.tariff + (text("calc.now_mark") if row.tariff == comparison.current else "")
        if row.cost is None:
            rows.append((name, money(fees[row.tariff], cur), text("calc.does_not_fit"), "—", "—"))
            continue
        beyond = money(sum(row.extras.values(), Decimal(0)), cur)
        saving = "—" if row.saving is None or row.tariff == comparison.current \
            else money(row.saving, cur)
        rows.append((name, money(fees[row.tariff], cur), beyond, money(row.cost, cur), saving))
    best, now = comparison.cheapest, comparison.current_row
    if best.cost is None:
        summary = text("calc.none_fits")
    elif best.tariff == comparison.current or (best.saving is not None and best.saving <= 0):
        summary = text("calc.already_cheapest", tariff=comparison.current,
                       cost=money(now.cost or Decimal(0), cur))
    elif now.cost is None:
        summary = text("calc.current_does_not_fit", tariff=comparison.current,
                       best=best.tariff, cost=money(best.cost, cur))
    else:
        summary = text("calc.cheapest", best=best.tariff, cost=money(best.cost, cur),
                       saving=money(best.saving or Decimal(0), cur),
                       tariff=comparison.current, now=money(now.cost, cur))
    usage = ", ".join(f"{unit} {_number(value)}" for unit, value in comparison.usage.items())
    names = [r.tariff for r in comparison.rows]
    return ComparisonTable(
        title=calc.title or calc.name, usage=text("calc.usage", usage=usage),
        header=(text("calc.tariff"), text("calc.fee"), text("calc.beyond"),
                text("calc.total"), text("calc.saving")),
        rows=tuple(rows), current=names.index(comparison.current),
        cheapest=0, summary=summary,
    )


def comparison_text(table: ComparisonTable) -> str:
    """Write the table as the text of a reply."""
    lines = [f"{table.title}. {table.usage}"]
    head = table.header
    for name, fee, beyond, total, saving in table.rows:
        if total == "—":
            lines.append(f"• {name}: {beyond}")
            continue
        line = f"• {name}: {total} ({head[1]} {fee}, {head[2]} {beyond})"
        if saving != "—":
            line += f"; {head[4]} {saving}"
        lines.append(line)
    lines.append(table.summary)
    return "\n".join(lines)
