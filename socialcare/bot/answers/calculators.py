"""Price calculators: what each tariff of a table would cost a customer for their usage.

A calculator is a named table from the config (`[[calculators]]`): each tariff has a
monthly fee, what it includes per unit (minutes, GB, SMS, or any units the table
names) and a price per unit beyond that. A unit a tariff has no extra price for is not
sold beyond what it includes: for a usage above that, the tariff does not fit. No
brand's figures live in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from socialcare.bot.errors import DomainError

_STRICT = {"extra": "forbid"}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Tariff:
    """One row of a price table."""

    __pydantic_config__ = _STRICT

    name: str
    fee: Decimal
    included: Mapping[str, Decimal] = field(default_factory=dict)
    # Price of one unit beyond what is included; a unit absent here is not sold beyond.
    extra: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fee < 0:
            raise ValueError(f"tariff {self.name!r}: fee must not be negative")
        for what, table in (("included", self.included), ("extra", self.extra)):
            negative = [unit for unit, value in table.items() if value < 0]
            if negative:
                raise ValueError(f"tariff {self.name!r}: {what} {negative} must not be negative")


@dataclass(frozen=True)
class Calculator:
    """A named price table that `/calc` compares tariffs with."""

    __pydantic_config__ = _STRICT

    name: str
    # The units a usage is given in, in the order they are shown ("minutes", "gb", …).
    units: tuple[str, ...]
    tariffs: tuple[Tariff, ...]
    title: str = ""
    currency: str = ""

    def __post_init__(self) -> None:
        if not self.units:
            raise ValueError(f"calculators: {self.name!r} needs units")
        if len(self.tariffs) < 2:
            raise ValueError(f"calculators: {self.name!r} needs two tariffs at least")
        names = [t.name.casefold() for t in self.tariffs]
        if len(set(names)) != len(names):
            raise ValueError(f"calculators: {self.name!r} names a tariff twice")
        for tariff in self.tariffs:
            strange = (set(tariff.included) | set(tariff.extra)) - set(self.units)
            if strange:
                raise ValueError(f"calculators: {self.name!r} tariff {tariff.name!r} names "
                                 f"units {sorted(strange)} that are not in units")

    def tariff(self, name: str) -> Tariff | None:
        """Return the tariff with this name (in any letter case)."""
        wanted = name.casefold()
        return next((t for t in self.tariffs if t.name.casefold() == wanted), None)


@dataclass(frozen=True)
class Costed:
    """What one tariff would cost for the usage; `cost` None: it does not fit."""

    tariff: str
    cost: Decimal | None
    # What the usage beyond the included costs, per unit (only units that cost extra).
    extras: Mapping[str, Decimal]
    # The current tariff's cost minus this one's (positive: cheaper than now).
    saving: Decimal | None


@dataclass(frozen=True)
class Comparison:
    """Every tariff of a table priced for one usage, cheapest first."""

    calculator: Calculator
    current: str
    usage: Mapping[str, Decimal]
    rows: tuple[Costed, ...]

    @property
    def current_row(self) -> Costed:
        """Return the row of the customer's current tariff."""
        return next(r for r in self.rows if r.tariff == self.current)

    @property
    def cheapest(self) -> Costed:
        """Return the cheapest tariff that fits the usage."""
        return self.rows[0]


@dataclass(frozen=True)
class Calculate:
    """Price every tariff of a calculator for a customer's usage."""

    current: str
    usage: Mapping[str, Decimal]
    calculator: str | None = None


def find_calculator(calculators: tuple[Calculator, ...], name: str | None) -> Calculator:
    """Return the calculator named (or the only one), or refuse."""
    if not calculators:
        raise DomainError("No calculators are configured.", key="error.no_calculators")
    if name is None:
        if len(calculators) == 1:
            return calculators[0]
        raise DomainError("Name the calculator.", key="error.which_calculator",
                          choices=", ".join(c.name for c in calculators))
    found = next((c for c in calculators if c.name.casefold() == name.casefold()), None)
    if found is None:
        raise DomainError(f"No calculator {name!r}.", key="error.unknown_calculator",
                          name=name, choices=", ".join(c.name for c in calculators))
    return found


def cost_of(tariff: Tariff, usage: Mapping[str, Decimal]) -> tuple[Decimal | None,
                                                                     dict[str, Decimal]]:
    """Return the tariff's monthly cost for the usage (None if it does not sell that
    much) and what each unit beyond the included costs."""
    extras: dict[str, Decimal] = {}
    for unit, used in usage.items():
        beyond = used - tariff.included.get(unit, Decimal(0))
        if beyond <= 0:
            continue
        price = tariff.extra.get(unit)
        if price is None:
            return None, {}
        extras[unit] = (beyond * price).quantize(CENT)
    return (tariff.fee + sum(extras.values(), Decimal(0))).quantize(CENT), extras


def calculate(cmd: Calculate, *, calculators: tuple[Calculator, ...]) -> Comparison:
    """Price every tariff for the usage and compare it with the current one."""
    calculator = find_calculator(calculators, cmd.calculator)
    current = calculator.tariff(cmd.current)
    if current is None:
        raise DomainError(f"No tariff {cmd.current!r}.", key="error.unknown_tariff",
                          name=cmd.current,
                          choices=", ".join(t.name for t in calculator.tariffs))
    strange = [unit for unit in cmd.usage if unit not in calculator.units]
    if strange:
        raise DomainError(f"Unknown units {strange}.", key="error.unknown_units",
                          units=", ".join(strange), choices=", ".join(calculator.units))
    if any(value < 0 for value in cmd.usage.values()):
        raise DomainError("A usage is negative.", key="error.negative_usage")
    usage = {unit: cmd.usage.get(unit, Decimal(0)) for unit in calculator.units}
    priced = [(t.name, *cost_of(t, usage)) for t in calculator.tariffs]
    now = next(cost for name, cost, _ in priced if name == current.name)
    rows = [Costed(name, cost, extras,
                   None if cost is None or now is None else now - cost)
            for name, cost, extras in priced]
    # Cheapest first; tariffs that do not fit last, in the table's order.
    order = {t.name: i for i, t in enumerate(calculator.tariffs)}
    rows.sort(key=lambda r: (r.cost is None, r.cost or 0, order[r.tariff]))
    return Comparison(calculator, current.name, usage, tuple(rows))
