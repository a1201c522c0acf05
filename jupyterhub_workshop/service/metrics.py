"""Prometheus metrics of the workshop service (prometheus-client, own registry).

Named and typed by Prometheus' conventions: what only grows is a counter (``..._total``), in
base units (seconds, not hours). Everything is kept up to date as the service works, so a
scrape only formats numbers. At start the counters continue from the usage database (two
aggregate queries, not a replay of the records); the session-duration histogram counts the
sessions that end while this process runs, like any Prometheus histogram (``rate()`` and
``increase()`` take restarts in their stride). The admin page's duration chart reads the
database instead (``UsageStore.duration_histogram``).

Running servers are not exported: the hub's own ``jupyterhub_running_servers`` counts the same
servers (scrape the hub's ``/hub/metrics``). ``workshop_active_users`` is not
``jupyterhub_active_users{period}``: see its help text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .store import CULL_REASONS

SESSION_BUCKETS = (300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400)


class WorkshopMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, price_per_node_hour: float = 0.0, currency: str = "USD"):
        self.registry = CollectorRegistry(auto_describe=True)
        self.price_per_node_hour = price_per_node_hour
        self.currency = currency
        self.active_users = Gauge(
            "workshop_active_users",
            "Users with a running server that was active within the service's active window "
            "(active_window, default 10 min), as of the service's last pass. Unlike the hub's "
            "jupyterhub_active_users{period}, which counts users active in the last 24h/7d/30d "
            "whether or not a server runs.",
            registry=self.registry,
        )
        self.culls = Counter(
            "workshop_culls",
            "Servers stopped by the workshop service, by reason (idle, night, max-age, closed): sessions a "
            "cull closed, each counted once (also across crashes, retried stops and restarts); "
            "continues from the usage database at start. Dry runs stop nothing and count nothing.",
            ["reason"],
            registry=self.registry,
        )
        for reason in CULL_REASONS:
            self.culls.labels(reason)
        self.session_duration = Histogram(
            "workshop_session_duration_seconds",
            "Length of the sessions that ended while this service process ran.",
            buckets=SESSION_BUCKETS,
            registry=self.registry,
        )
        self.node_seconds = Counter(
            "workshop_node_seconds",
            "Node-seconds used so far: nodes needed for the running servers (running servers / "
            "users_per_node, rounded up) over time, from the service's samples. 0 unless "
            "users_per_node is set.",
            registry=self.registry,
        )
        self.cost = Counter(
            "workshop_cost",
            "Cost so far: node-seconds / 3600 times price_per_node_hour, in the currency of the "
            "label. 0 unless users_per_node and price_per_node_hour are set.",
            ["currency"],
            registry=self.registry,
        )
        self.cost.labels(currency)
        self.prewarm_placeholders = Gauge(
            "workshop_prewarm_placeholders",
            "Node-sized placeholder pods kept for pre-warm: the replicas of the placeholder "
            "Deployment (prewarm_deployment) as last read or set through its scale subresource; "
            "without a Deployment, the count the service decided. 0 without a schedule.",
            registry=self.registry,
        )
        self.prewarm_active = Gauge(
            "workshop_prewarm_active",
            "1 inside a pre-warm stretch (prewarm_lead before a session's start until prewarm_hold "
            "after it), else 0.",
            registry=self.registry,
        )
        self.near_memory_limit = Gauge(
            "workshop_servers_near_memory_limit",
            "Servers using 90% or more of their memory limit, as last read (server_resources: "
            "the metrics API's pod metrics on Kubernetes, the process tree on the local twin; every "
            "near_limit_every seconds and at each admin page view). 0 without server_resources.",
            registry=self.registry,
        )
        self._node_seconds = 0.0
        # the admin page's duration chart (until it reads UsageStore.duration_histogram itself)

    def load(self, culls_by_reason: dict[str, int], node_seconds: float = 0.0) -> None:
        """Continue from the usage database after a (re)start: culls so far by reason, and the
        node-seconds so far."""
        for reason, count in culls_by_reason.items():
            self.culls.labels(reason).inc(count)
        self.set_node_seconds(node_seconds)

    def session_closed(self, seconds: float, reason: str | None) -> None:
        """A session ended after ``seconds``; ``reason`` a cull's reason counts one cull."""
        self.session_duration.observe(max(0.0, seconds))
        if reason in CULL_REASONS:
            self.culls.labels(reason).inc()

    def set_node_seconds(self, node_seconds: float) -> None:
        """Move the node-seconds (and cost) counters up to ``node_seconds`` so far."""
        grown = node_seconds - self._node_seconds
        if grown <= 0:
            return
        self._node_seconds = node_seconds
        self.node_seconds.inc(grown)
        if self.price_per_node_hour > 0:
            self.cost.labels(self.currency).inc(grown / 3600.0 * self.price_per_node_hour)

    def render(self) -> bytes:
        return generate_latest(self.registry)
