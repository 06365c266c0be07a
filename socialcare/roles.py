"""The parts of the work a `socialcare run` process can take on (`--role`)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A part of the work a process takes on; any number of processes may share one."""

    COLLECTORS = "collectors"  # poll sources; take pushed mentions (/ingest, /meta)
    WORKERS = "workers"  # ingest: mentions into cases (and the queue the others fill)
    MESSENGERS = "messengers"  # Slack and Telegram: clicks, commands, cards
    SCHEDULER = "scheduler"  # SLA points, escalation steps, digests, reports, hand-offs


ALL_ROLES = frozenset(Role)
