"""The service's settings: bounds like the chart's schema, the configuration file, the command line."""

import json

import pytest
from traitlets import TraitError
from traitlets.config import Config

from jupyterhub_workshop.service.app import WorkshopService


@pytest.mark.parametrize(
    "settings",
    [
        {"idle_timeout": -1},
        {"max_age": -60},
        {"cull_every": 0},
        {"cull_every": -5},
        {"concurrency": 0},
        {"users_per_node": -1},
        {"price_per_node_hour": -0.5},
        {"active_window": 0},
    ],
)
def test_out_of_range_settings_are_refused(settings):
    with pytest.raises(TraitError):
        WorkshopService(config=Config({"WorkshopService": settings}))


def test_the_command_line_wins_over_the_configuration_file(tmp_path):
    config = tmp_path / "service.json"
    config.write_text(
        json.dumps(
            {
                "WorkshopService": {
                    "idle_timeout": 600,
                    "night_start": "22:00",
                    "night_end": "06:00",
                    "dry_run": True,
                }
            }
        )
    )
    service = WorkshopService()
    service.initialize(
        [f"--config={config}", "--timeout=1200", f"--db-url=sqlite:///{tmp_path / 'u.sqlite'}"]
    )
    try:
        assert service.idle_timeout == 1200 and service.dry_run and service.policy.night is not None
    finally:
        service.store.close()


def test_a_missing_configuration_file_stops_the_service(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        WorkshopService().initialize([f"--config={tmp_path / 'nowhere.json'}"])
