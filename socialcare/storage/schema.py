"""The database tables (SQLAlchemy Core); Alembic migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from socialcare.storage.rollups import COUNTS


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; SQLite, which has no zone, gets it back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only
Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

cases = Table(
    "cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("thread_key", String(512), nullable=False),
    Column("state", String(16), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_at", UTCDateTime()),
    Column("first_response_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("response_cycle", Integer, nullable=False),
    Column("response_started_at", UTCDateTime()),
    Column("response_due_at", UTCDateTime()),
    Column("response_alerts", Integer, nullable=False),
    Column("resolve_due_at", UTCDateTime()),
    Column("resolve_alerts", Integer, nullable=False),
    Column("next_alert_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    Column("handoff_team", String(64)),
    Column("handed_off_by", String(128)),
    Column("handed_off_at", UTCDateTime()),
    Column("language", String(8)),
    Column("topics", String(1000), nullable=False, server_default=""),  # comma-separated
    Column("places", String(1000), nullable=False, server_default=""),
    # The open queue, earliest deadline first.
    Index(None, "state", "response_due_at"),
    # The wallboard's first rows: per state and priority, in deadline order.
    Index("ix_cases_queue", "state", "priority", "response_due_at", "id"),
    # The SLA scheduler's "what is due now".
    Index(None, "next_alert_at"),
)

mentions = Table(
    "mentions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False),
    Column("source", String(200), nullable=False),
    Column("external_id", String(256), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("thread_key", String(512), nullable=False),
    Column("parent_id", String(256)),
    Column("url", Text),
    Column("author_id", String(256)),
    Column("author_name", String(512)),
    Column("author_handle", String(256)),
    Column("author_url", Text),
    Column("from_brand", Boolean, nullable=False),
    # The same source never makes the same mention twice, across restarts and workers.
    UniqueConstraint("source", "external_id"),
    Index(None, "source", "thread_key"),
    Index(None, "case_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("data", Json, nullable=False),
    Index(None, "case_id", "id"),
    Index(None, "kind", "at"),
)

cards = Table(
    "cards",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id")),
    Column("messenger", String(16), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("message_id", String(64)),
    Column("fingerprint", String(64)),
    Column("change_seq", Integer, nullable=False),
    Column("synced_seq", Integer, nullable=False),
    Column("due_at", UTCDateTime()),
    Column("rank", Integer, nullable=False),
    Column("deadline", UTCDateTime()),
    Column("posting_since", UTCDateTime()),
    Column("post_attempts", Integer, nullable=False),
    # Post attempts whose outcome is unknown (answer lost, process stopped mid-call):
    # each may have left a copy of the card that nobody knows of.
    Column("unsure_posts", Integer, nullable=False, server_default="0"),
    Column("posted_at", UTCDateTime()),
    Column("notified_event_id", BigInteger, nullable=False),
    Column("escalation_id", Id, ForeignKey("escalations.id")),
    UniqueConstraint("case_id", "messenger", "channel"),
    UniqueConstraint("escalation_id", "messenger", "channel"),
    # The dispatcher's "what must be synced now": the oldest due card; per channel, the
    # new and changed cards in the order they go out, and the SLA steps by due time —
    # each read in index order, however many cards wait.
    Index(None, "due_at"),
    Index("ix_cards_pressing", "messenger", "channel", "rank", "deadline", "id",
          postgresql_where=text("due_at IS NOT NULL AND rank < 2"),
          sqlite_where=text("due_at IS NOT NULL AND rank < 2")),
    Index("ix_cards_steps", "messenger", "channel", "due_at",
          postgresql_where=text("due_at IS NOT NULL AND rank = 2"),
          sqlite_where=text("due_at IS NOT NULL AND rank = 2")),
    # A click or a reply on a card finds its case.
    Index(None, "messenger", "channel", "message_id"),
)

escalations = Table(
    "escalations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("category", String(16), nullable=False),
    Column("problem", Text, nullable=False),
    Column("options", Json, nullable=False),
    Column("director", String(128), nullable=False),
    Column("raised_by", String(128), nullable=False),
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("assigned_at", UTCDateTime(), nullable=False),
    Column("area", String(128)),
    Column("state", String(16), nullable=False),
    Column("acknowledged_at", UTCDateTime()),
    Column("decided_at", UTCDateTime()),
    Column("decided_by", String(128)),
    Column("decision", Text),
    Column("closed_at", UTCDateTime()),
    Column("next_ping_at", UTCDateTime()),
    Column("pings", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Index(None, "next_ping_at"),
    Index(None, "raised_at"),
)

escalation_cases = Table(
    "escalation_cases",
    metadata,
    Column("escalation_id", Id, ForeignKey("escalations.id"), primary_key=True),
    Column("case_id", Id, ForeignKey("cases.id"), primary_key=True),
    Index(None, "case_id"),
)

escalation_events = Table(
    "escalation_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("escalation_id", Id, ForeignKey("escalations.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("data", Json, nullable=False),
    Index(None, "escalation_id", "id"),
)

notices = Table(
    "notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("messenger", String(16), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("params", Json, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("claimed_at", UTCDateTime()),
    Column("sent_at", UTCDateTime()),
    Index(None, "sent_at", "claimed_at"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("period", String(64), primary_key=True),
    Column("claimed_at", UTCDateTime(), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("body", Json, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_try_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("last_error", Text),
    Index(None, "next_try_at"),
)

# Each case's facts, established from its events by `socialcare.bot.metrics` and kept
# in step in the same transaction as the events: reports aggregate this table.
_WAITING_FACTS = "first_answer_at IS NULL AND dismissed_at IS NULL"
_LATE_FACTS = "first_answer_at > response_due_at"
_UNANSWERED_FACTS = ("first_answer_at IS NULL AND (dismissed_at IS NULL "
                     "OR dismissed_at > response_due_at)")

case_facts = Table(
    "case_facts",
    metadata,
    Column("case_id", Id, ForeignKey("cases.id"), primary_key=True),
    Column("tier", String(16), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("brand", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("response_due_at", UTCDateTime(), nullable=False),
    Column("standing", String(16), nullable=False),
    Column("first_answer_at", UTCDateTime()),
    Column("first_answer_by", String(256)),
    Column("resolved_at", UTCDateTime()),
    Column("messages_to_resolve", Integer),
    Column("second_line_seconds", Float, nullable=False),
    Column("with_second_line_since", UTCDateTime()),
    # The durations reports sort for their percentiles, kept ready.
    Column("reaction_seconds", Float),
    Column("lag_seconds", Float),
    Column("resolution_seconds", Float),
    Column("language", String(8)),
    Column("topics", String(1000), nullable=False, server_default=""),  # comma-separated
    Column("dismissed_at", UTCDateTime()),  # the last dismissal, if it stands
    Index(None, "published_at"),
    # The cases still waiting for a first answer, by deadline: the wallboard's pending.
    Index("ix_case_facts_waiting", "response_due_at", "published_at",
          postgresql_where=text(_WAITING_FACTS), sqlite_where=text(_WAITING_FACTS)),
    # The worst breaches of a period, read from their worst end (`storage.reports`).
    Index("ix_case_facts_late", text("(first_answer_at - response_due_at) DESC"), "case_id",
          postgresql_where=text(_LATE_FACTS), sqlite_where=text(_LATE_FACTS)),
    Index("ix_case_facts_unanswered", "response_due_at", "case_id",
          postgresql_where=text(_UNANSWERED_FACTS), sqlite_where=text(_UNANSWERED_FACTS)),
    # A percentile's neighbouring ranks, read exactly (`socialcare.storage.rollups`).
    *(Index(f"ix_case_facts_{c}", c)
      for c in ("reaction_seconds", "lag_seconds", "resolution_seconds")),
)

# The wallboard's counts as rows of changes, appended by triggers (migration 0020) and
# folded now and then (`socialcare.storage.wallboard`); a count is the sum of its rows.
wallboard_open = Table(
    "wallboard_open",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tier", String(16), nullable=False),
    Column("open", Integer, nullable=False),  # open cases
)

wallboard_sla = Table(
    "wallboard_sla",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # The quarter hour of publication and the minute of the first-response deadline,
    # counted from the Unix epoch.
    Column("quarter", BigInteger, nullable=False),
    Column("due_minute", BigInteger, nullable=False),
    Column("met", Integer, nullable=False),  # answered by the deadline
    Column("late", Integer, nullable=False),  # answered after it
    Column("waiting", Integer, nullable=False),  # unanswered, not dismissed
    Column("dismissed_late", Integer, nullable=False),  # unanswered, dismissed after it
    Index("ix_wallboard_sla_quarter", "quarter"),
)

# The report's roll-ups as rows of changes, appended by triggers on PostgreSQL (migration
# 0022) and folded now and then (`socialcare.storage.rollups`): a figure is the sum of
# its rows. `folded`: a row summed by a fold (the others are changes still to fold).
_FRESH_ROWS = "NOT folded"


def _rollup(name: str, unit: str, *columns: Column[Any]) -> Table:
    return Table(
        name, metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column(unit, BigInteger, nullable=False),  # of publication, from the Unix epoch
        Column("dimension", String(16), nullable=False),  # "all", "tier", "topic", …
        Column("key", String(256), nullable=False),
        *columns,
        Column("folded", Boolean, nullable=False, server_default=false()),
        Index(f"ix_{name}_{unit}", unit),
        Index(f"ix_{name}_fresh", "id", postgresql_where=text(_FRESH_ROWS),
              sqlite_where=text(_FRESH_ROWS)),
    )


report_counts = _rollup("report_counts", "quarter",
                        *(Column(name, Integer, nullable=False) for name in COUNTS))
report_durations = _rollup(
    "report_durations", "hour",
    Column("span", Integer, nullable=False),  # hours: 1 or 24 (a UTC day)
    Column("measure", String(16), nullable=False),  # reaction, lag, resolution, minute
    # `shown_bucket` of the duration; for "minute", the chart's capped minute.
    Column("bucket", Integer, nullable=False),
    Column("n", Integer, nullable=False),
)

# A case's topics and places, one row each, kept in step with its events like the
# facts: what reports break down by and what incident detection counts ("new cases of
# topic T in place P in the last 10 minutes" is an index range on each, joined).
case_topics = Table(
    "case_topics",
    metadata,
    Column("case_id", Id, ForeignKey("cases.id"), primary_key=True),
    Column("topic", String(64), primary_key=True),
    # When the customer published (the case's time; ingest puts a future or absurd
    # publication time at the collection time): incident detection counts by it.
    Column("published_at", UTCDateTime(), nullable=False),
    Index(None, "topic", "published_at"),
)

case_places = Table(
    "case_places",
    metadata,
    Column("case_id", Id, ForeignKey("cases.id"), primary_key=True),
    Column("place", String(64), primary_key=True),
    Column("published_at", UTCDateTime(), nullable=False),
    Index(None, "place", "published_at"),
)

source_states = Table(
    "source_states",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("cursor", Json, nullable=False),
    Column("last_success_at", UTCDateTime()),
    Column("last_error_at", UTCDateTime()),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False),
    Column("items_found", BigInteger, nullable=False),
    Column("last_item_at", UTCDateTime()),
    Column("lag_seconds", Float),
    Column("next_poll_at", UTCDateTime()),
    Column("alert", String(16), nullable=False),
    Column("note", Text),
    Column("version", Integer, nullable=False),
)

# Mentions handed from a collecting process to the workers (see storage/queue.py).
inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("mention", Json, nullable=False),
    Column("queued_at", UTCDateTime(), nullable=False),
    # Failed attempts to read or store it; past a few it goes to the dead letters.
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    # Set while a worker keeps it because its config does not know the source.
    Column("unknown_source_since", UTCDateTime()),
    Index("ix_inbox_queued_at", "queued_at"),
)

# Queued mentions that could not be stored after several tries: kept for an admin
# (`socialcare inbox list|retry|drop`), under their inbox row's id.
inbox_dead_letters = Table(
    "inbox_dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("source", String(200), nullable=False),
    Column("mention", Json, nullable=False),
    Column("queued_at", UTCDateTime(), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("set_aside_at", UTCDateTime(), nullable=False),
)

# The web console's sign-in (see storage/console.py). Only hashes of the secrets are
# kept: a copy of the database lets nobody sign in.
console_passwords = Table(
    "console_passwords",
    metadata,
    Column("person_id", String(128), primary_key=True),
    Column("hash", Text, nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
)

console_links = Table(
    "console_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    Index(None, "expires_at"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", String(128), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Index(None, "expires_at"),
)

# Access tokens that sources renewed (see storage/tokens.py): the newest of each chain,
# so a restart or another process does not fall back to the environment's stale one.
source_tokens = Table(
    "source_tokens",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("access_token", Text),
    Column("refresh_token", Text),
    Column("expires_at", UTCDateTime()),
    Column("renewed_at", UTCDateTime()),
    # SHA-256 of the environment's tokens the chain started from, and of earlier ones.
    Column("seed", String(64), nullable=False),
    Column("retired", Json, nullable=False),
    Column("version", Integer, nullable=False),
    # A renewal under way: who holds it and until when.
    Column("claim", String(32)),
    Column("claimed_until", UTCDateTime()),
    Column("failure", Text),
    Column("failed_at", UTCDateTime()),
)

# Announcements (see socialcare/bot/announcements/): each has a copy per place it goes
# (a chat message, a mailbox, a webhook), brought in step by the deliverer.
announcements = Table(
    "announcements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("text", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("until", UTCDateTime()),
    Column("audiences", Json, nullable=False),
    Column("keywords", Json, nullable=False),
    Column("topics", Json, nullable=False),
    Column("state", String(16), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("corrected_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("ended_by", String(128)),
    Column("reminded_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    Index(None, "state", "until"),
    Index(None, "created_at"),
)

announcement_copies = Table(
    "announcement_copies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("announcement_id", Id, ForeignKey("announcements.id"), nullable=False),
    Column("audience", String(64), nullable=False),
    Column("outlet", String(16), nullable=False),
    Column("address", String(512), nullable=False),
    Column("message_id", String(64)),
    Column("pinned", Boolean, nullable=False),
    Column("revision_sent", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime()),
    Column("gave_up_at", UTCDateTime()),
    Column("posting_since", UTCDateTime()),
    Column("leased_until", UTCDateTime()),
    Column("next_try_at", UTCDateTime()),
    Column("changes", Integer, nullable=False),
    # One copy per place; a Got it finds its copy by it.
    UniqueConstraint("announcement_id", "outlet", "address"),
    # The deliverer's "what is due now".
    Index(None, "next_try_at"),
)

announcement_receipts = Table(
    "announcement_receipts",
    metadata,
    Column("announcement_id", Id, ForeignKey("announcements.id"), primary_key=True),
    Column("messenger", String(16), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# Cases answered with an announcement's official answer, once each.
announcement_answers = Table(
    "announcement_answers",
    metadata,
    Column("announcement_id", Id, ForeignKey("announcements.id"), primary_key=True),
    Column("case_id", Id, ForeignKey("cases.id"), primary_key=True),
    Column("by", String(128), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

announcement_events = Table(
    "announcement_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("announcement_id", Id, ForeignKey("announcements.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("data", Json, nullable=False),
    Index(None, "announcement_id", "id"),
)

# Incidents: a surge of one topic (in one place). `open_key` is "topic|place" while the
# incident is open and NULL after: the unique index lets one open incident per topic and
# place exist, whichever scheduler detects it first.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("topic", String(64), nullable=False),
    Column("place", String(64)),
    Column("open_key", String(140)),
    Column("state", String(16), nullable=False),
    Column("explanation", Json, nullable=False),  # count, usual, window: the surge's figures
    Column("first_mention_at", UTCDateTime(), nullable=False),
    Column("detected_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime()),
    Column("answered_at", UTCDateTime()),
    Column("answer", Text),
    Column("answered_by", String(128)),
    Column("announcement_id", Id),
    Column("resolved_at", UTCDateTime()),
    Column("resolved_by", String(128)),
    Column("follow_up", Text),
    Column("escalation_id", Id),
    Column("version", Integer, nullable=False),
    Index(None, "state", "detected_at"),
    UniqueConstraint("open_key"),
)

# A case's place in an incident: `removed_at` keeps a case a lead took out from joining
# again; `reply` is how the official answer reached it (sent, by_hand, pending).
incident_cases = Table(
    "incident_cases",
    metadata,
    Column("incident_id", Id, ForeignKey("incidents.id"), primary_key=True),
    Column("case_id", Id, ForeignKey("cases.id"), primary_key=True),
    Column("joined_at", UTCDateTime(), nullable=False),
    Column("joined_by", String(128), nullable=False),
    Column("removed_at", UTCDateTime()),
    Column("reply", String(16)),
    Column("replied_at", UTCDateTime()),
    Column("closed_at", UTCDateTime()),
    # The follow-up of the incident's resolution, as `reply` is the official answer's.
    Column("follow_up", String(16)),
    Column("follow_up_at", UTCDateTime()),
    # When a send of either took the case (`sending`) or began publishing: a send older
    # than the lease was left by a stopped process and is recovered.
    Column("sending_at", UTCDateTime()),
    Index(None, "case_id"),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("data", Json, nullable=False),
    Index(None, "incident_id", "id"),
)
