"""`/calc CASE tariff=CURRENT minutes=300 gb=20`: every tariff priced for a customer's
usage, as text and a table picture, dropped into the case's reply form."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from socialcare.bot.answers.calculators import Calculate, calculate
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.answers.views import ComparisonTable, comparison_table, comparison_text
from socialcare.bot.errors import DomainError
from socialcare.deps import Deps
from socialcare.handlers.chat import Attachment, ChatReply, ReplyDraft, describe_error

_CASE_ID = re.compile(r"#?([1-9][0-9]{0,17})")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,31})=(\S{1,40})")
# No usage of a month is larger; a bigger figure is a typo.
MAX_USAGE = Decimal(10) ** 9
CALCULATION = "calculation"


class BadCalc(ValueError):
    """The command's arguments are not `CASE tariff=NAME UNIT=AMOUNT …`."""


def parse_calc(args: str) -> tuple[int, Calculate]:
    """Read `/calc`'s arguments, or raise BadCalc."""
    parts = args.split()
    found = _CASE_ID.fullmatch(parts[0]) if parts else None
    if found is None:
        raise BadCalc(args)
    given: dict[str, str] = {}
    for part in parts[1:]:
        pair = _PAIR.fullmatch(part)
        if pair is None or pair[1].casefold() in given:
            raise BadCalc(part)
        given[pair[1].casefold()] = pair[2]
    tariff = given.pop("tariff", None)
    if tariff is None:
        raise BadCalc("no tariff")
    calculator = given.pop("calc", None)
    usage: dict[str, Decimal] = {}
    for unit, value in given.items():
        try:
            amount = Decimal(value.replace(",", "."))
        except InvalidOperation:
            raise BadCalc(value) from None
        if not amount.is_finite() or amount > MAX_USAGE:
            raise BadCalc(value)
        usage[unit] = amount
    return int(found[1]), Calculate(tariff, usage, calculator)


@dataclass(frozen=True)
class Prepared:
    """A calculation for a case, its text written, its picture not drawn yet."""

    case_id: int
    table: ComparisonTable
    text: str


async def prepare_calc(args: str, deps: Deps) -> Prepared | ChatReply:
    """Read the arguments and price the tariffs (quick: no picture yet); a usage line or
    a refusal's reason as the reply otherwise."""
    try:
        case_id, cmd = parse_calc(args)
    except BadCalc:
        return ChatReply(deps.catalog("usage.calc"))
    try:
        comparison = calculate(cmd, calculators=deps.team.calculators)
        async with deps.uow() as uow:
            await uow.cases.get(case_id)  # the case must exist
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    table = comparison_table(comparison, deps.catalog)
    return Prepared(case_id, table, comparison_text(table))


async def picture(prepared: Prepared) -> Attachment:
    """Draw the comparison table; tens of milliseconds of CPU, so off the event loop."""
    from socialcare.adapters.calc_picture import comparison_png

    png = await asyncio.to_thread(comparison_png, prepared.table)
    return Attachment(f"calc-{prepared.case_id}.png", png, image=True)


async def reply_picture(args: str, deps: Deps) -> Picture | None:
    """Draw the comparison of `/calc ARGS` again, as the picture that goes with the
    case's reply; None if the arguments no longer price (the table changed)."""
    prepared = await prepare_calc(args, deps)
    if isinstance(prepared, ChatReply):
        return None
    drawn = await picture(prepared)
    return Picture(drawn.filename, drawn.content)


def reply_of(prepared: Prepared, deps: Deps, *, args: str = "",
             attachments: tuple[Attachment, ...] = ()) -> ChatReply:
    """Return what the agent is told: the figures, and that they are in the reply form."""
    return ChatReply(prepared.text + "\n\n" + deps.catalog("calc.ready", id=prepared.case_id),
                     attachments=attachments,
                     draft=ReplyDraft(prepared.case_id, prepared.text, CALCULATION, args))


async def run_calc(args: str, deps: Deps) -> ChatReply:
    """Compare the tariffs for the case's customer: the text and the picture, for the
    case's reply form."""
    prepared = await prepare_calc(args, deps)
    if isinstance(prepared, ChatReply):
        return prepared
    return reply_of(prepared, deps, args=args, attachments=(await picture(prepared),))
