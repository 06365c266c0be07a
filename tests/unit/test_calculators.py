"""`/calc`'s arithmetic against hand computations, and its text and picture showing the
same figures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from socialcare.adapters.calc_picture import comparison_figure, comparison_png
from socialcare.bot.answers.calculators import Calculate, Calculator, calculate
from socialcare.bot.answers.views import comparison_table, comparison_text
from socialcare.bot.errors import DomainError
from socialcare.settings import load_catalog

# A sample table (not any brand's): fee, included, price per unit beyond.
TABLE = {
    "name": "mobile", "title": "Mobile tariffs", "currency": "₸",
    "units": ["minutes", "gb", "sms"],
    "tariffs": [
        {"name": "Basic", "fee": 1990, "included": {"minutes": 200, "gb": 5, "sms": 50},
         "extra": {"minutes": 15, "gb": 400, "sms": 5}},
        {"name": "Plus", "fee": 3490, "included": {"minutes": 500, "gb": 20, "sms": 100},
         "extra": {"minutes": 12, "gb": 300, "sms": 2.5}},
        {"name": "Max", "fee": 5990, "included": {"minutes": 1000, "gb": 50, "sms": 300},
         "extra": {"minutes": 10, "gb": 250, "sms": 2}},
        # Sells no data beyond its 1 GB.
        {"name": "Local", "fee": 990, "included": {"minutes": 100, "gb": 1},
         "extra": {"minutes": 20, "sms": 5}},
    ],
}
CALC = TypeAdapter(Calculator).validate_python(TABLE)
EN = load_catalog("en")


def _calc(current: str, **usage: str) -> object:
    return calculate(Calculate(current, {k: Decimal(v) for k, v in usage.items()}),
                     calculators=(CALC,))


def test_heavy_data_user_on_basic_saves_6000_on_plus() -> None:
    # Basic: 1990 + (300-200)·15 + (20-5)·400 = 1990 + 1500 + 6000 = 9490.
    # Plus: 3490, all included. Max: 5990. Local: 20 GB > 1 GB, not sold.
    result = _calc("basic", minutes="300", gb="20")
    costs = {r.tariff: r.cost for r in result.rows}
    assert costs == {"Basic": Decimal("9490"), "Plus": Decimal("3490"),
                     "Max": Decimal("5990"), "Local": None}
    assert result.cheapest.tariff == "Plus"
    assert result.cheapest.saving == Decimal("6000")
    assert [r.tariff for r in result.rows] == ["Plus", "Max", "Basic", "Local"]


def test_light_user_on_plus_saves_2500_on_local() -> None:
    # Local: 990 (80 min ≤ 100, 0.5 GB ≤ 1). Basic 1990. Plus 3490. Max 5990.
    result = _calc("Plus", minutes="80", gb="0.5")
    assert result.cheapest.tariff == "Local"
    assert result.cheapest.cost == Decimal("990")
    assert result.cheapest.saving == Decimal("2500")


def test_fractional_usage_and_prices_on_plus_make_max_cheaper_by_352_50() -> None:
    # Plus: 3490 + (600-500)·12 + (25.5-20)·300 + (101-100)·2.5
    #      = 3490 + 1200 + 1650 + 2.5 = 6342.50.
    # Max: 5990 (all included). Basic: 1990 + 400·15 + 20.5·400 + 51·5 = 16445.
    result = _calc("Plus", minutes="600", gb="25.5", sms="101")
    costs = {r.tariff: r.cost for r in result.rows}
    assert costs["Plus"] == Decimal("6342.50")
    assert costs["Basic"] == Decimal("16445")
    assert result.cheapest.tariff == "Max"
    assert result.cheapest.saving == Decimal("352.50")


def test_the_current_tariff_can_already_be_the_cheapest() -> None:
    result = _calc("Plus", minutes="500", gb="20")
    assert result.cheapest.tariff == "Plus"
    summary = comparison_table(result, EN).summary
    assert "already the cheapest" in summary and "3490 ₸" in summary


def test_the_text_and_the_picture_show_the_same_figures() -> None:
    table = comparison_table(_calc("Basic", minutes="300", gb="20"), EN)
    written = comparison_text(table)
    figure = comparison_figure(table)
    cells = figure.axes[0].tables[0].get_celld()
    drawn = [[cells[row + 1, col].get_text().get_text() for col in range(5)]
             for row in range(len(table.rows))]
    assert drawn == [list(r) for r in table.rows]
    assert [cells[0, c].get_text().get_text() for c in range(5)] == list(table.header)
    for row in drawn:
        for figure_text in row:
            if figure_text != "—":
                assert figure_text in written
    assert "9490 ₸" in written and "6000 ₸" in written and "3490 ₸" in written
    assert "Cheapest: Plus at 3490 ₸ a month, 6000 ₸ less than Basic (9490 ₸)" in written
    png = comparison_png(table)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_table_is_written_in_the_teams_language() -> None:
    table = comparison_table(_calc("Basic", minutes="300", gb="20"), load_catalog("ru"))
    assert table.header[0] == "Тариф"
    assert "Выгоднее всего: Plus" in table.summary


@pytest.mark.parametrize(("current", "usage", "key"), [
    ("Gold", {"minutes": "1"}, "error.unknown_tariff"),
    ("Basic", {"hours": "1"}, "error.unknown_units"),
    ("Basic", {"gb": "-1"}, "error.negative_usage"),
])
def test_a_bad_calculation_is_refused_with_its_reason(
        current: str, usage: dict[str, str], key: str) -> None:
    with pytest.raises(DomainError) as refused:
        _calc(current, **usage)
    assert refused.value.key == key
    assert EN(key, **refused.value.params)


def test_no_calculator_or_an_ambiguous_one_is_refused() -> None:
    with pytest.raises(DomainError) as none:
        calculate(Calculate("Basic", {}), calculators=())
    assert none.value.key == "error.no_calculators"
    other = TypeAdapter(Calculator).validate_python({**TABLE, "name": "home"})
    with pytest.raises(DomainError) as which:
        calculate(Calculate("Basic", {}), calculators=(CALC, other))
    assert which.value.key == "error.which_calculator"
    found = calculate(Calculate("Basic", {}, calculator="HOME"), calculators=(CALC, other))
    assert found.calculator is other


@pytest.mark.parametrize("broken", [
    {**TABLE, "tariffs": TABLE["tariffs"][:1]},
    {**TABLE, "units": []},
    {**TABLE, "tariffs": [*TABLE["tariffs"], {"name": "plus", "fee": 1}]},
    {**TABLE, "tariffs": [*TABLE["tariffs"], {"name": "X", "fee": 1, "extra": {"tb": 1}}]},
    {**TABLE, "tariffs": [*TABLE["tariffs"], {"name": "X", "fee": -1}]},
    {**TABLE, "colour": "red"},
])
def test_a_broken_table_is_named_when_the_config_loads(broken: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Calculator).validate_python(broken)
