"""The service's Prometheus metrics: conventions, continuing after a restart, the histogram."""

import math
import re
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from jupyterhub_workshop.service.metrics import WorkshopMetrics

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def families(metrics: WorkshopMetrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}


def test_metrics_follow_prometheus_conventions():
    metrics = WorkshopMetrics(price_per_node_hour=0.384, currency="EUR")
    found = families(metrics)
    # what only grows is a counter (exposed as ..._total), in base units
    for name in ("workshop_culls", "workshop_node_seconds", "workshop_cost"):
        assert found[name].type == "counter", name
    assert found["workshop_session_duration_seconds"].type == "histogram"
    assert found["workshop_active_users"].type == "gauge"
    assert not any(re.search(r"hours?\b", name) for name in found)
    # the hub exports running servers itself; ours would only duplicate jupyterhub_running_servers
    assert "workshop_running_servers" not in found
    # the gauge says how it differs from the hub's own
    assert "jupyterhub_active_users" in found["workshop_active_users"].documentation
    text = metrics.render().decode()
    assert 'workshop_cost_total{currency="EUR"} 0.0' in text
    for reason in ("idle", "night", "max-age"):
        assert f'workshop_culls_total{{reason="{reason}"}} 0.0' in text


def test_counters_continue_from_the_store_and_price_node_seconds():
    metrics = WorkshopMetrics(price_per_node_hour=0.384)
    metrics.load({"idle": 3, "night": 12}, node_seconds=36000.0)
    metrics.session_closed(600.0, "night")
    metrics.session_closed(7200.0, "user")  # not a cull
    metrics.set_node_seconds(39600.0)
    metrics.set_node_seconds(39000.0)  # a counter never goes down
    text = metrics.render().decode()
    assert 'workshop_culls_total{reason="night"} 13.0' in text
    assert 'workshop_culls_total{reason="idle"} 3.0' in text
    assert 'workshop_culls_total{reason="max-age"} 0.0' in text
    assert "workshop_session_duration_seconds_count 2.0" in text
    assert "workshop_node_seconds_total 39600.0" in text
    cost = families(metrics)["workshop_cost"].samples[0]
    assert cost.labels == {"currency": "USD"} and math.isclose(cost.value, 11.0 * 0.384)
