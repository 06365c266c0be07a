"""Domain errors: each carries a reason a person can read.

The English message is for logs and tests; `key` and `params` let each transport
show the reason from the team's message catalog.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A command the domain refused, with a reason fit to show the person who sent it."""

    def __init__(self, message: str, *, key: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


class CaseNotFound(DomainError):
    """No case has this id."""

    def __init__(self, case_id: int) -> None:
        super().__init__(f"There is no case #{case_id}.", key="error.no_case", case=case_id)
        self.case_id = case_id


class EscalationNotFound(DomainError):
    """No escalation has this id."""

    def __init__(self, escalation_id: int) -> None:
        super().__init__(f"There is no escalation #{escalation_id}.",
                         key="error.no_escalation", escalation=escalation_id)


class IncidentNotFound(DomainError):
    """No incident has this id."""

    def __init__(self, incident_id: int) -> None:
        super().__init__(f"There is no incident #{incident_id}.",
                         key="error.no_incident", incident=incident_id)


class InvalidTransition(DomainError):
    """The case's state does not allow this action."""

    def __init__(self, case_id: int | None, action: str, state: str) -> None:
        super().__init__(
            f"Case #{case_id} is {state}: it cannot be {action}.",
            key="error.invalid_transition", case=case_id, action=action, state=state,
        )
        self.case_id = case_id
        self.action = action
        self.state = state


class AlreadyClaimed(DomainError):
    """Someone holds the case already."""

    def __init__(self, case_id: int | None, by: str) -> None:
        super().__init__(
            f"Case #{case_id} is already claimed by {by}.",
            key="error.already_claimed", case=case_id, by=by,
        )
        self.case_id = case_id
        self.by = by


class NotAllowed(DomainError):
    """The person may not do this; `key` says which rule refused them."""


class TeamFiguresOnly(NotAllowed):
    """The team's figures are for leads, directors and admins (`Person.reads_team_figures`)."""

    def __init__(self) -> None:
        super().__init__("Only shift leads, directors and admins read the team's figures; "
                         "agents read their own and the queue.", key="error.team_figures")


class ConcurrentUpdate(Exception):
    """The case changed after it was read; the command must be retried on fresh state.

    Raised by storage, handled by the service layer: it never reaches a person.
    """


class DuplicateMention(Exception):
    """Another worker stored the same mention first; the batch must be read again.

    Raised by storage on the (source, external id) unique key; the pipeline retries,
    and the retry reports the mention as a duplicate.
    """


class AnnouncementNotFound(DomainError):
    """No announcement has this id."""

    def __init__(self, announcement_id: int) -> None:
        super().__init__(f"There is no announcement #{announcement_id}.",
                         key="error.no_announcement", id=announcement_id)
