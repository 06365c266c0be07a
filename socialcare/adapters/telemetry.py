"""Prometheus metrics of one process, served on `GET /metrics`."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    exposition,
    generate_latest,
)

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST


class Telemetry:
    """The counters and gauges socialcare exports; one registry per app, no globals."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the output
        self.registry = CollectorRegistry()
        self.mentions = Counter(
            "socialcare_mentions", "Mentions ingested, by source and outcome.",
            ["source", "outcome", "reason"], registry=self.registry,
        )
        self.source_polls = Counter(
            "socialcare_source_polls", "Polls of a source, by outcome (ok or failed).",
            ["source", "outcome"], registry=self.registry,
        )
        self.source_lag = Gauge(
            "socialcare_source_lag_seconds",
            "From the newest item's publication to its collection, by source.", ["source"],
            registry=self.registry,
        )
        self.queued = Counter(
            "socialcare_mentions_queued", "Mentions handed to the workers through the queue.",
            registry=self.registry,
        )
        self.inbox = Gauge(
            "socialcare_inbox_mentions", "Mentions waiting in the queue for a worker.",
            registry=self.registry,
        )
        self.inbox_unknown_source = Gauge(
            "socialcare_inbox_unknown_source_mentions",
            "Queued mentions kept because a worker's config does not know their source.",
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "socialcare_inbox_dead_letters",
            "Queued mentions set aside because they could not be stored (socialcare inbox).",
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "socialcare_inbox_dead_lettered",
            "Queued mentions this process set aside as dead letters.", registry=self.registry,
        )
        self.sla_points = Counter(
            "socialcare_sla_points", "SLA points fired, by tier, clock and kind.",
            ["tier", "clock", "point"], registry=self.registry,
        )
        self.time_to_card = Histogram(
            "socialcare_time_to_card_seconds",
            "From the customer publishing to the card in a channel.", ["messenger", "tier"],
            buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600),
            registry=self.registry,
        )
        self.card_syncs = Counter(
            "socialcare_card_syncs", "Card syncs by outcome.", ["outcome"],
            registry=self.registry,
        )
        self.messenger_calls = Counter(
            "socialcare_messenger_calls", "Messenger API calls, by outcome (429 = rate_limited).",
            ["messenger", "method", "outcome"], registry=self.registry,
        )
        self.possible_doubles = Counter(
            "socialcare_card_possible_doubles",
            "Cards posted again after an attempt whose answer was lost, where the messenger "
            "cannot be searched for it (Telegram): each may have left a copy in the chat.",
            ["messenger"], registry=self.registry,
        )
        self.doubles_removed = Counter(
            "socialcare_card_doubles_removed",
            "Copies of a card (left by a post whose answer was lost) deleted when clicked.",
            ["messenger"], registry=self.registry,
        )
        self.cases = Gauge(
            "socialcare_cases", "Cases by state.", ["state"], registry=self.registry,
        )
        self.queue_lag = Gauge(
            "socialcare_card_queue_lag_seconds",
            "How long the most overdue card has waited to be synced.", registry=self.registry,
        )
        self.open_cases = Gauge(
            "socialcare_open_cases", "Open cases, by tier.", ["tier"], registry=self.registry,
        )

    def messenger_call(self, messenger: str, method: str, outcome: str) -> None:
        """Count one messenger API call."""
        self.messenger_calls.labels(messenger, method, outcome).inc()

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format."""
        return generate_latest(self.registry)
