"""The ingest queue's command line for an admin: `socialcare inbox list|retry|drop ID`.

Dead letters are queued mentions the workers could not store after several tries
(see `storage/dead_letters.py`). `retry` stores one now through the pipeline — after
a fix, or once the config knows its source — and `drop` deletes it for good.
"""

from __future__ import annotations

import sys
from typing import TextIO

from socialcare.bot.pipeline import IngestResult, Outcome
from socialcare.deps import Deps
from socialcare.storage.dead_letters import DeadLetter, DeadLetters
from socialcare.storage.queue import from_json

MAX_REASON_SHOWN = 100


async def list_letters(deps: Deps, out: TextIO) -> int:
    """Print the dead letters, and the mentions kept for a source a worker did not know."""
    letters = await DeadLetters(deps.engine).all()
    zone = deps.team.zone
    if not letters:
        print("no dead letters", file=out)
    else:
        rows = [("id", "source", "external id", "tries", "set aside", "reason")]
        for letter in letters:
            reason = " ".join(letter.reason.split())
            rows.append((
                str(letter.id), letter.source, (letter.external_id or "-")[:40],
                str(letter.tries), letter.set_aside_at.astimezone(zone).strftime("%d.%m %H:%M"),
                reason[:MAX_REASON_SHOWN] + ("…" if len(reason) > MAX_REASON_SHOWN else ""),
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                  .rstrip(), file=out)
        print(f"({len(letters)} dead letter(s), times in {deps.team.timezone}; "
              f"`socialcare inbox retry ID` stores one, `socialcare inbox drop ID` deletes it)",
              file=out)
    if deps.queue is not None:
        for source, (count, since) in (await deps.queue.unknown_sources()).items():
            print(f"{count} queued mention(s) of source {source!r} wait for a worker whose "
                  f"config knows the source (since "
                  f"{since.astimezone(zone).strftime('%d.%m %H:%M')})", file=out)
    return 0


async def retry(deps: Deps, letter_id: int, out: TextIO) -> int:
    """Store a dead letter now; on success it leaves the dead letters. Exit code."""
    letters = DeadLetters(deps.engine)
    letter = await letters.get(letter_id)
    if letter is None:
        return _no_such(letter_id, "retry")
    try:
        raw = from_json(letter.mention)
        [result] = await deps.pipeline.ingest([raw], uow=deps.uow())
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        await letters.failed_again(letter.id, reason=reason, now=deps.clock.now())
        print(f"socialcare inbox retry: dead letter {letter.id} still cannot be stored "
              f"({_short(reason)}); it stays", file=sys.stderr)
        return 1
    await letters.drop(letter.id)
    print(f"dead letter {letter.id} ({letter.source} {raw.external_id}): {_outcome(result)}",
          file=out)
    return 0


async def drop(deps: Deps, letter_id: int, out: TextIO) -> int:
    """Delete a dead letter for good. Exit code."""
    letters = DeadLetters(deps.engine)
    letter = await letters.get(letter_id)
    if letter is None or not await letters.drop(letter_id):
        return _no_such(letter_id, "drop")
    print(f"dead letter {letter.id} ({_named(letter)}) dropped", file=out)
    return 0


def _outcome(result: IngestResult) -> str:
    if result.outcome is Outcome.CREATED:
        return f"stored, case #{result.case_id}"
    if result.outcome is Outcome.JOINED:
        return f"stored, joined case #{result.case_id}"
    return f"dropped ({result.reason.value if result.reason is not None else 'no reason'})"


def _named(letter: DeadLetter) -> str:
    return f"{letter.source} {letter.external_id or '(unreadable)'}"


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason[:MAX_REASON_SHOWN] + ("…" if len(reason) > MAX_REASON_SHOWN else "")


def _no_such(letter_id: int, command: str) -> int:
    print(f"socialcare inbox {command}: no dead letter {letter_id} "
          f"(`socialcare inbox list` shows them)", file=sys.stderr)
    return 2
