"""Prometheus metrics of the workshop service (prometheus-client, own registry).

Everything is kept up to date as the service works, so a scrape only formats numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SESSION_BUCKETS = (300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400)
CULL_REASONS = ("idle", "night", "max-age")


class WorkshopMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, price_per_node_hour: float = 0.0):
        self.registry = CollectorRegistry(auto_describe=True)
        self.price_per_node_hour = price_per_node_hour
        self.running_servers = Gauge(
            "workshop_running_servers", "Single-user servers running now.", registry=self.registry
        )
        self.active_users = Gauge(
            "workshop_active_users",
            "Users active within the service's active window.",
            registry=self.registry,
        )
        self.culls = Counter(
            "workshop_culls",
            "Servers stopped by the workshop service, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in CULL_REASONS:
            self.culls.labels(reason)
        self.session_duration = Histogram(
            "workshop_session_duration_seconds",
            "Length of finished sessions.",
            buckets=SESSION_BUCKETS,
            registry=self.registry,
        )
        self.node_hours = Gauge(
            "workshop_node_hours",
            "Node-hours used so far (running servers / users per node).",
            registry=self.registry,
        )
        self.cost = Gauge(
            "workshop_cost", "Cost so far: node-hours times the price per node-hour.", registry=self.registry
        )

    def load(self, culls_by_reason: dict[str, int], durations: Iterable[float], node_hours: float) -> None:
        """Seed from the store after a (re)start, so counters continue where they were."""
        for reason, count in culls_by_reason.items():
            self.culls.labels(reason).inc(count)
        for seconds in durations:
            self.session_duration.observe(seconds)
        self.set_node_hours(node_hours)

    def session_duration_counts(self) -> list[tuple[float, int]]:
        """Finished sessions per duration bucket: (upper bound in seconds, count), the last
        bound infinite. The admin page's histogram reads this instead of the database."""
        cumulative = [
            (float(sample.labels["le"]), int(sample.value))
            for metric in self.session_duration.collect()
            for sample in metric.samples
            if sample.name.endswith("_bucket")
        ]
        counts, below = [], 0
        for bound, total in cumulative:
            counts.append((bound, total - below))
            below = total
        return counts

    def set_node_hours(self, node_hours: float) -> None:
        self.node_hours.set(node_hours)
        self.cost.set(node_hours * self.price_per_node_hour)

    def render(self) -> bytes:
        return generate_latest(self.registry)
