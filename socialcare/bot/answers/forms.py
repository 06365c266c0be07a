"""The form an answer takes, recorded on the answer's event and counted in reports."""

from __future__ import annotations

from enum import StrEnum


class AnswerForm(StrEnum):
    """How the agent answered: in words, with a picture, by a call back, by a calculation."""

    TEXT = "text"
    PICTURE = "picture"
    CALLBACK = "callback"
    CALCULATION = "calculation"


def form_of(data: object) -> AnswerForm:
    """Return the form an answer event records; answers from before forms were text."""
    try:
        return AnswerForm(str(data)) if data is not None else AnswerForm.TEXT
    except ValueError:
        return AnswerForm.TEXT
