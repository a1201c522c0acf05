import json
import stat
import sys
from datetime import UTC, datetime

import pytest
from traitlets import TraitError

from jupyterhub_workshop.hubconfig.services import (
    ROLE_SCOPES,
    night_warning,
    service_config,
    workshop_roles,
    workshop_service,
)
from jupyterhub_workshop.service.app import WorkshopService

pytestmark = pytest.mark.jh55  # the hub image runs JupyterHub 5.5: this runs there


def test_service_entry_runs_the_service_on_its_config_file(tmp_path):
    path = tmp_path / "workshop-service.json"
    entry = workshop_service(
        {"idle_timeout": 1800, "exempt_groups": []},
        path,
        url="http://127.0.0.1:10123",
        environment={"WORKSHOP_DB_URL": "postgresql://u:pw@db/w"},
    )
    assert entry["url"] == "http://127.0.0.1:10123" and entry["display"] is True
    assert entry["command"] == [sys.executable, "-m", "jupyterhub_workshop.service", "--config", str(path)]
    assert entry["environment"] == {"WORKSHOP_DB_URL": "postgresql://u:pw@db/w"}  # secrets by environment
    assert json.loads(path.read_text()) == {"WorkshopService": {"idle_timeout": 1800, "exempt_groups": []}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "pw" not in path.read_text()


def test_roles_are_least_privilege():
    roles = {r["name"]: r for r in workshop_roles()}
    assert roles["workshop-service"]["scopes"] == ROLE_SCOPES
    assert not any(s.startswith(("admin", "delete:users", "tokens")) for s in ROLE_SCOPES)
    # read:users is the one scope that shows `created` (first sign-ins, for attendance); it holds
    # the name, groups and activity the culler reads, and nothing of auth state or tokens
    assert {"read:users", "list:users", "read:servers", "delete:servers"} == set(ROLE_SCOPES)
    assert "access:services!service=workshop" in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]


async def test_the_service_reads_its_file_and_the_command_line_still_wins(tmp_path):
    path = tmp_path / "workshop-service.json"
    settings = {
        "db_url": f"sqlite:///{tmp_path / 'usage.sqlite'}",
        "idle_timeout": 1800,
        "exempt_groups": [],
        "staff_groups": ["instructors", "staff"],
        "night_start": "7:00",
        "night_end": "9:30",
        "timezone": "Europe/Berlin",
        "dry_run": True,
        "price_per_node_hour": 0.384,
    }
    entry = workshop_service(settings, path)
    service = WorkshopService()
    service.initialize([*entry["command"][3:], "--timeout=60"])
    try:
        assert service.idle_timeout == 60  # the command line over the file, as with any traitlets app
        assert service.exempt_groups == [] and service.staff_groups == ["instructors", "staff"]
        assert service.dry_run is True and service.price_per_node_hour == 0.384
        assert service.policy.night.describe() == "07:00–09:30 (Europe/Berlin)"
        assert service.store.safe_url.endswith("usage.sqlite")
    finally:
        service.hub.close()
        service.store.close()


def test_the_service_refuses_a_missing_or_broken_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        WorkshopService().initialize(["--config", str(tmp_path / "nowhere.json")])
    broken = tmp_path / "broken.json"
    broken.write_text('{"WorkshopService": {"idle_timeout": 60,}}')
    with pytest.raises(ValueError):
        WorkshopService().initialize(["--config", str(broken)])


@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"idle_timout": 60}, ValueError, "unknown workshop service setting(s) ['idle_timout']"),
        (
            {"idle_timeout": "an hour"},
            TraitError,
            "'idle_timeout' trait of a WorkshopService instance expected an int",
        ),
        ({"night_start": "22:00", "night_end": "22:00"}, ValueError, "it needs a duration"),
        (
            {"night_start": "22:00", "night_end": "06:00", "timezone": "America/Denvr"},
            ValueError,
            "unknown time zone",
        ),
        ({"db_url": "postgresql+psycopg://workshop:s3cret@db/workshop"}, ValueError, "WORKSHOP_DB_URL"),
        ({"api_token": "abc"}, ValueError, "JUPYTERHUB_API_TOKEN"),
    ],
    ids=["unknown-key", "wrong-type", "empty-night", "unknown-zone", "db-password", "api-token"],
)
def test_settings_are_checked_by_the_service_itself_before_anything_is_written(
    tmp_path, settings, error, message
):
    with pytest.raises(error) as refused:
        workshop_service(settings, tmp_path / "workshop-service.json")
    assert message in str(refused.value)
    assert not list(tmp_path.iterdir())


def test_config_document_is_what_the_service_reads_back():
    # tuples become lists, as the service will see them after JSON
    assert service_config({"exempt_groups": ("instructors",), "db_url": "sqlite:///x.sqlite"}) == {
        "WorkshopService": {"exempt_groups": ["instructors"], "db_url": "sqlite:///x.sqlite"}
    }


class Spawner:
    def __init__(self, active):
        self.active = active


class User:
    def __init__(self, running):
        self.spawners = {"": Spawner(running)}


def test_night_warning_banner_shows_only_near_and_during_the_night():
    # 22:00-06:00 in Denver (UTC-7 in July): the window starts 04:00 UTC
    now = {"t": datetime(2026, 7, 15, 3, 0, tzinfo=UTC)}
    banner = night_warning("22:00", "06:00", "America/Denver", warn_before=1800, clock=lambda: now["t"])
    assert banner(User(True)) == ""  # an hour before: too early
    now["t"] = datetime(2026, 7, 15, 3, 45, tzinfo=UTC)
    text = banner(User(True))
    assert "stopped at 22:00 (America/Denver) tonight" in text and '<a href="/services/workshop/">' in text
    assert banner(User(False)) == "" and banner(None) == ""  # nothing running, nothing to warn about
    now["t"] = datetime(2026, 7, 15, 9, 0, tzinfo=UTC)  # 03:00 local, inside
    assert "being stopped for the night" in banner(User(True))


def test_the_service_and_the_hub_handler_name_the_same_events_file(tmp_path, monkeypatch):
    from traitlets.config import Config

    from jupyterhub_workshop.hubconfig.services import install_server_events

    monkeypatch.chdir(tmp_path)  # a relative name, resolved where the hub runs
    c = Config()
    workshop_service({"idle_timeout": 600}, tmp_path / "service.json", events_file="spool/events.jsonl")
    handler = install_server_events(c, "spool/events.jsonl")
    setting = json.loads((tmp_path / "service.json").read_text())["WorkshopService"]["events_file"]
    assert setting == handler.baseFilename == str(tmp_path / "spool" / "events.jsonl")
    assert c.EventLogger.handlers == [handler]
    assert not (tmp_path / "spool").exists()  # nothing is written until the hub's first event


def test_the_board_banner_tells_a_participant_their_running_server_was_restarted(tmp_path):
    from datetime import timedelta
    from types import SimpleNamespace

    from jupyterhub_workshop.board import Board, Restart, Stop, save_board
    from jupyterhub_workshop.hubconfig.services import board_banner

    at = datetime(2026, 7, 14, 20, 2, tzinfo=UTC)  # 14:02 in Denver
    path = tmp_path / "board.json"
    board = Board().restarted("ws001", Restart("OOMKilled", at, "", "uid", 1, at + timedelta(hours=1)), at)
    save_board(path, board.post("Lunch at noon", at).stopped("ws002", Stop("idle", at)))
    clock = [at + timedelta(minutes=3)]
    banner = board_banner(path, "America/Denver", clock=lambda: clock[0])

    def user(name, started, active=True):
        # what the banner reads of the hub's User: its spawners' ORM start time (naive UTC) and state
        orm = SimpleNamespace(started=started.replace(tzinfo=None))
        return SimpleNamespace(name=name, spawners={"": SimpleNamespace(orm_spawner=orm, active=active)})

    morning = at - timedelta(hours=5)
    shown = banner(user("ws001", morning))
    assert shown.startswith(
        '<span class="workshop-restart">Your server ran out of memory at 14:02 and was restarted: '
        "the notebooks&#x27; kernels were stopped, your files are safe."
    )
    assert shown.endswith('<span class="workshop-announcement">Lunch at noon</span>')
    # never for someone else, nor after a new start, nor once stopped, nor after its time
    assert "workshop-restart" not in banner(user("ws003", morning))
    assert "workshop-restart" not in banner(user("ws001", at + timedelta(minutes=1)))
    assert "workshop-restart" not in banner(user("ws001", morning, active=False))
    clock[0] = at + timedelta(minutes=61)
    assert "workshop-restart" not in banner(user("ws001", morning))
    assert "workshop-restart" not in banner(None) and "Lunch at noon" in banner(None)
    # the stop notice of another participant is unchanged
    assert "workshop-stop" in banner(user("ws002", morning - timedelta(hours=1), active=False))
