"""Every values file in helm-chart/ci/, installed on a fresh emulated cluster: the hub starts
from z2jh's configuration, answers /hub/health through the proxy, and the workshop service
serves its metrics where the chart tells Prometheus to look. Runs inside the rehearsal's
namespaces (test_rehearsal.py)."""

from __future__ import annotations

import pytest

from tests.chart.helpers import CI_DIR, ci_values
from tests.harness.hub import http_status, wait_for

from .inside import hosts_file, make_cards, organizer_secrets, run_dir
from .install import Installation

VALUES_FILES = sorted(p.name for p in CI_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def accounts_yaml():
    return make_cards(run_dir() / "values-cards", prefix="ci", participants=1, instructors=1)[0]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_hub_starts_and_answers_health(values_file, accounts_yaml):
    values = ci_values(values_file)
    installation = Installation(
        run_dir() / values_file.removesuffix(".yaml"), values, organizer_secrets(accounts_yaml), hosts_file()
    )
    installation.start()
    try:
        assert http_status(f"{installation.hub_url}/hub/health") == 200
        wait_for(
            lambda: http_status(f"{installation.hub_url}/hub/api/") == 200,
            60,
            message="the hub's API via the proxy",
        )
        annotations = installation.service("workshop-metrics")["metadata"]["annotations"]
        metrics = installation.service_url("workshop-metrics", int(annotations["prometheus.io/port"]))
        wait_for(
            lambda: http_status(metrics + annotations["prometheus.io/path"]) == 200,
            60,
            message="the workshop service's metrics",
        )
        volume = installation.cluster.pvc_path("hub-db-dir")
        from_secret = (values.get("workshop", {}).get("service", {}).get("database") or {}).get(
            "existingSecret"
        )
        # usage records where the Secret's URL says (via WORKSHOP_DB_URL), else the chart's SQLite file
        expected = "usage-from-secret.sqlite" if from_secret else "workshop-usage.sqlite"
        assert (volume / expected).exists(), sorted(p.name for p in volume.iterdir())
        assert "Traceback" not in installation.pods["hub"].log_text()
        assert installation.cluster.refused() == []
    finally:
        codes = installation.stop()
    assert codes["hub"] == 0
