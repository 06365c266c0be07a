"""Free text people type (replies, notes, reasons, commands' arguments): what is kept.

Control characters other than tab and line breaks are nobody's words; NUL among them
cannot be stored by PostgreSQL at all (text or JSON). They are dropped wherever text
comes in — a mention's, by the pipeline; a person's, by the commands of the domain
below — so that every back end keeps the same text.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_controls(value: str) -> str:
    """Return the text without control characters (tab and line breaks are kept)."""
    return CONTROL.sub("", value)


def clean_fields(command: Any) -> None:
    """Drop control characters from every text field of a frozen dataclass command
    (and from the texts of its tuples), in place; for its `__post_init__`."""
    for field in fields(command):
        value = getattr(command, field.name)
        if isinstance(value, str):
            cleaned: Any = without_controls(value)
        elif isinstance(value, tuple) and any(isinstance(v, str) for v in value):
            cleaned = tuple(without_controls(v) if isinstance(v, str) else v for v in value)
        else:
            continue
        if cleaned != value:
            object.__setattr__(command, field.name, cleaned)
