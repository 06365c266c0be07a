"""What an announcement says in each place: a chat copy, a mail, a webhook body, and
its status for the lead — in the team's language; adapters escape and lay them out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from socialcare.bot.actions import AnnouncementAction, AnnouncementActionKind
from socialcare.bot.announcements.figures import (
    AnnouncementFigures,
    AudienceStanding,
    Place,
    PlaceState,
)
from socialcare.bot.announcements.model import Announcement, AnnouncementState, Copy, Outlet
from socialcare.bot.announcements.ports import Mail
from socialcare.bot.cards import display_name
from socialcare.bot.catalog import Catalog
from socialcare.bot.team import Team

EXCERPT = 80
NAMES_SHOWN = 15


@dataclass(frozen=True)
class AnnouncementButton:
    """A button of an announcement's chat copy."""

    action: AnnouncementAction
    label: str


@dataclass(frozen=True)
class AnnouncementView:
    """Everything a chat copy shows; messenger adapters lay it out and escape it."""

    announcement_id: int
    title: str  # "📣 Announcement #3 · Saule"
    text: str  # raw: written by a lead, may quote a customer
    status: tuple[str, ...]  # "In force until 25.11 18:00", "✏️ Corrected at 10:20"
    state: AnnouncementState
    in_force: bool
    buttons: tuple[AnnouncementButton, ...]
    fallback: str  # the notification text: "📣 Saule: …"


def when(at: datetime, zone: ZoneInfo, now: datetime) -> str:
    """Return a moment as the team reads it: the time today, else with the date."""
    local = at.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return local.strftime("%H:%M")
    return local.strftime("%d.%m.%Y %H:%M")


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """Return the first words of a text, on one line."""
    words = " ".join(text.split())
    return words if len(words) <= limit else words[:limit].rstrip() + "…"


def _status(a: Announcement, *, team: Team, catalog: Catalog, now: datetime) -> list[str]:
    zone = team.zone
    lines = []
    if a.corrected_at is not None:
        lines.append(catalog("announcement.corrected", time=when(a.corrected_at, zone, now)))
    if a.state is AnnouncementState.WITHDRAWN and a.ended_at is not None:
        lines.append(catalog("announcement.withdrawn", time=when(a.ended_at, zone, now),
                             who=display_name(a.ended_by or "", team, catalog)))
    elif not a.in_force(now):
        lines.append(catalog("announcement.expired",
                             time=when(a.ended_at or a.until or now, zone, now)))
    elif a.until is not None:
        lines.append(catalog("announcement.until", time=when(a.until, zone, now)))
    else:
        lines.append(catalog("announcement.in_force"))
    return lines


def render_copy(a: Announcement, *, team: Team, catalog: Catalog,
                now: datetime) -> AnnouncementView:
    """Build the chat copy of an announcement as of `now`."""
    assert a.id is not None
    who = display_name(a.author, team, catalog)
    live = a.in_force(now)
    return AnnouncementView(
        announcement_id=a.id,
        title=catalog("announcement.title", id=a.id, who=who),
        text=a.text,
        status=tuple(_status(a, team=team, catalog=catalog, now=now)),
        state=a.state,
        in_force=live,
        buttons=(AnnouncementButton(AnnouncementAction(AnnouncementActionKind.GOT_IT, a.id),
                                    catalog("announcement.got_it")),) if live else (),
        fallback=catalog("announce.note", who=who, text=excerpt(a.text, 300)),
    )


def _mail_key(a: Announcement, address: str, revision: int | None) -> str:
    digest = hashlib.sha256(address.casefold().encode()).hexdigest()[:12]
    return f"announcement-{a.id}-{digest}" if revision is None else \
        f"announcement-{a.id}-r{revision}-{digest}"


def mail_for(a: Announcement, copy: Copy, *, team: Team, catalog: Catalog,
             now: datetime) -> Mail | None:
    """Return the mail a mailbox needs to be in step with the announcement: the
    announcement, its correction or its withdrawal — or None (nothing to tell: it
    expired, or ended before the first mail went)."""
    if copy.revision_sent == 0:
        if not a.in_force(now):
            return None
        kind, key, follows = "new", _mail_key(a, copy.address, None), None
    elif a.state is AnnouncementState.WITHDRAWN:
        kind = "withdrawn"
    elif a.in_force(now):
        kind = "corrected"
    else:
        return None
    if kind != "new":
        key, follows = _mail_key(a, copy.address, a.revision), _mail_key(a, copy.address, None)
    zone = team.zone
    who = display_name(a.author, team, catalog)
    audience = team.audience(copy.audience)
    details = [catalog("announcement.mail.from", who=who,
                       time=when(a.created_at, zone, now)),
               *_status(a, team=team, catalog=catalog, now=now)]
    if audience is not None:
        details.append(catalog("announcement.mail.audience", audience=audience.label))
    return Mail(
        to=copy.address,
        subject=catalog(f"announcement.mail.subject_{kind}", id=a.id, excerpt=excerpt(a.text, 60)),
        heading=catalog(f"announcement.mail.heading_{kind}", id=a.id),
        body=a.text,
        details=tuple(details),
        footer=catalog("announcement.mail.footer"),
        language=catalog.language,
        key=key,
        follows=follows,
    )


def webhook_body(a: Announcement, copy: Copy, *, team: Team, catalog: Catalog,
                 now: datetime) -> dict[str, Any] | None:
    """Return the JSON a knowledge base or CRM gets for the announcement as it stands,
    or None if it ended before they heard of it."""
    live = a.in_force(now)
    if copy.revision_sent == 0 and not live:
        return None
    if a.state is AnnouncementState.WITHDRAWN:
        event = "withdrawn"
    elif not live:
        event = "expired"
    else:
        event = "corrected" if a.corrected_at is not None else "published"
    return {
        "event": f"announcement.{event}",
        # The same for every retry of this revision to this audience: receivers dedupe.
        "delivery": f"{a.id}-{copy.audience}-{a.revision}",
        "id": a.id,
        "revision": a.revision,
        "audience": copy.audience,
        "state": "active" if live else "withdrawn" if event == "withdrawn" else "expired",
        "text": a.text,
        "author": display_name(a.author, team, catalog),
        "published_at": _stamp(a.created_at),
        "corrected_at": _stamp(a.corrected_at),
        "ended_at": _stamp(a.ended_at if a.ended_at else (a.until if not live else None)),
        "until": _stamp(a.until),
        "keywords": list(a.keywords),
        "topics": list(a.topics),
        "language": catalog.language,
    }


def _stamp(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _place_text(place: Place, *, team: Team, catalog: Catalog, now: datetime) -> str:
    outlet = catalog(f"announcement.outlet.{place.outlet.value}")
    if place.state == PlaceState.DELIVERED:
        return catalog("announcement.place.delivered", outlet=outlet)
    if place.state == PlaceState.PENDING:
        return catalog("announcement.place.pending", outlet=outlet)
    retry = when(place.next_try_at, team.zone, now) if place.next_try_at else "—"
    key = "failing" if place.state == PlaceState.FAILING else "gave_up"
    return catalog(f"announcement.place.{key}", outlet=outlet, address=place.address,
                   attempts=place.attempts, error=place.error or "—", retry=retry)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" +{len(names) - NAMES_SHOWN}" if len(names) > NAMES_SHOWN else "")


def audience_text(stand: AudienceStanding, *, team: Team, catalog: Catalog,
                  now: datetime) -> list[str]:
    """Return an audience's lines of the status: where it went, who has it."""
    places = " · ".join(_place_text(p, team=team, catalog=catalog, now=now)
                        for p in stand.places) or "—"
    lines = [catalog("announcement.status.audience", audience=_label(stand.name, team, catalog),
                     places=places)]
    if not stand.has_chats:
        lines.append("  " + catalog("announcement.status.no_receipts"))
        return lines
    lines.append("  " + catalog("announcement.status.acknowledged",
                                count=len(stand.acknowledged), members=stand.members,
                                names=_names(stand.acknowledged) or "—"))
    if stand.others:
        lines.append("  " + catalog("announcement.status.others", names=_names(stand.others)))
    if stand.missing:
        lines.append("  " + catalog("announcement.status.missing",
                                    names=_names([m.name for m in stand.missing])))
    return lines


def status_text(a: Announcement, stands: Sequence[AudienceStanding], answered: int, *,
                team: Team, catalog: Catalog, now: datetime) -> str:
    """Return `/announcement N`: the announcement, then per audience where it went, who
    acknowledged and who of the members has not; the cases answered with it."""
    assert a.id is not None
    lines = [render_copy(a, team=team, catalog=catalog, now=now).title, a.text,
             *_status(a, team=team, catalog=catalog, now=now)]
    if a.keywords or a.topics:
        lines.append(catalog("announcement.status.matches",
                             keywords=", ".join(a.keywords) or "—",
                             topics=", ".join(a.topics) or "—"))
    for stand in stands:
        lines += audience_text(stand, team=team, catalog=catalog, now=now)
    lines.append(catalog("announcement.status.answered", count=answered))
    if a.in_force(now):
        lines.append(catalog("announcement.status.actions", id=a.id))
    return "\n".join(lines)


def list_text(announcements: Sequence[Announcement], *, team: Team, catalog: Catalog,
              now: datetime) -> str:
    """Return `/announcements`: the ones in force, newest first."""
    if not announcements:
        return catalog("announcement.list_empty")
    lines = [catalog("announcement.list_title", count=len(announcements))]
    for a in announcements:
        lines.append(catalog(
            "announcement.list_line", id=a.id, who=display_name(a.author, team, catalog),
            time=when(a.created_at, team.zone, now),
            audiences=", ".join(_label(name, team, catalog) for name in a.audiences),
            excerpt=excerpt(a.text)))
    return "\n".join(lines)


def _label(name: str, team: Team, catalog: Catalog) -> str:
    audience = team.audience(name)
    return audience.label if audience else catalog("announcement.team")


def figures_lines(figures: Sequence[AnnouncementFigures], *, team: Team,
                  catalog: Catalog) -> list[str]:
    """Return the report's lines on the period's announcements."""
    if not figures:
        return []
    lines = [catalog("report.announcements", count=len(figures))]
    for f in figures:
        share = f.acknowledged_share
        lines.append("  " + catalog(
            "report.announcement", id=f.announcement.id, excerpt=excerpt(f.announcement.text, 50),
            audiences=", ".join(_label(name, team, catalog) for name in f.audiences),
            acknowledged=f.acknowledged, members=f.members,
            share="—" if share is None else f"{round(share * 100)}%", answered=f.answered))
    return lines


def outlet_of(messenger: str) -> Outlet:
    """Return the outlet of a messenger's chat copies."""
    return Outlet(messenger)
