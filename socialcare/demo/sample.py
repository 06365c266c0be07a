"""The demo's sample: mentions in the `socialcare ingest` format, each with when it
arrives and what the simulated shift does with it.

One JSON object a line (`mentions.jsonl`), the fields of `POST /ingest` without
`published_at`, plus:

    "at":   seconds after the demo starts when the mention arrives (divided by --speed)
    "lag":  seconds between the customer publishing and the mention arriving, as a
            collector's delay; it starts the SLA clock that much earlier
    "care": what the simulated agents do (see `Care`); on a follow-up only `reply`
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter
from pydantic.dataclasses import dataclass as checked

from socialcare.adapters.collectors.mention_json import parse_lines
from socialcare.bot.model import RawMention

MENTIONS = Path(__file__).parent / "mentions.jsonl"
# Stands in for the publication time while a line is checked; set when it arrives.
_PLACEHOLDER = datetime(2000, 1, 1, tzinfo=UTC)


class Fate(StrEnum):
    """What the simulated shift does with a case."""

    RESOLVE = "resolve"  # claim, answer, resolve
    ANSWER = "answer"  # claim, answer; then wait for the customer
    HOLD = "hold"  # claim and sit on it, until the claim expires
    DISMISS = "dismiss"  # close it as needing no answer
    LEAVE = "leave"  # nobody touches it: it breaches


@checked(frozen=True, config=ConfigDict(extra="forbid"))
class Care:
    """How the simulated shift treats a mention.

    On a case's first mention: `do`, by whom (`by`, else the next agent in turn), and
    after how many seconds it is claimed (`claim_after`, else a realistic delay). Each
    mention's `reply` is the answer published to it; without one the agent marks the
    case answered with `note`.
    """

    do: Fate = Fate.RESOLVE
    by: str | None = None
    reply: str | None = None
    note: str | None = None
    reason: str | None = None
    claim_after: float | None = None


@dataclass(frozen=True)
class Arrival:
    """A sample mention: when it arrives, how late, and how the shift treats it."""

    at: float
    lag: float
    mention: RawMention
    care: Care


class BadSample(ValueError):
    """The sample file is not what the demo expects; the message names the line."""


_CARE = TypeAdapter(Care)


def load(path: Path = MENTIONS, *, sources: set[str]) -> list[Arrival]:
    """Read and check the sample, in order of arrival; raise BadSample naming the line."""
    arrivals: list[Arrival] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}: line {number}"
        try:
            fields: dict[str, Any] = json.loads(line)
            at, lag = float(fields.pop("at")), float(fields.pop("lag"))
            care = _CARE.validate_python(fields.pop("care", {}))
        except (KeyError, TypeError, ValueError) as error:  # JSON and pydantic errors too
            raise BadSample(f"{where}: {error}") from None
        if at < 0 or lag < 0:
            raise BadSample(f"{where}: at and lag are seconds, not negative")
        mentions, problems = parse_lines(
            [json.dumps(fields | {"published_at": _PLACEHOLDER.isoformat()})], sources=sources,
            now=_PLACEHOLDER)
        if problems:
            raise BadSample(f"{where}: {problems[0].removeprefix('line 1: ')}")
        arrivals.append(Arrival(at=at, lag=lag, mention=mentions[0], care=care))
    return sorted(arrivals, key=lambda arrival: arrival.at)
