from datetime import datetime, timezone

from jupyterhub_workshop.hubconfig.services import ROLE_SCOPES, night_warning, workshop_roles, workshop_service


def test_service_entry_is_managed_displayed_and_least_privilege():
    entry = workshop_service(port=10123, args=["--dry-run"])
    assert entry["url"] == "http://127.0.0.1:10123" and entry["display"] is True
    assert entry["command"][-2:] == ["jupyterhub_workshop.service", "--dry-run"]
    roles = {r["name"]: r for r in workshop_roles()}
    assert roles["workshop-service"]["scopes"] == ROLE_SCOPES
    assert not any(s.startswith(("admin", "delete:users", "tokens")) for s in ROLE_SCOPES)
    assert "access:services!service=workshop" in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]


class Spawner:
    def __init__(self, active):
        self.active = active


class User:
    def __init__(self, running):
        self.spawners = {"": Spawner(running)}


def test_night_warning_banner_shows_only_near_and_during_the_night():
    # 22:00-06:00 in Denver (UTC-7 in July): the window starts 04:00 UTC
    now = {"t": datetime(2026, 7, 15, 3, 0, tzinfo=timezone.utc)}
    banner = night_warning("22:00", "06:00", "America/Denver", warn_before=1800, clock=lambda: now["t"])
    assert banner(User(True)) == ""  # an hour before: too early
    now["t"] = datetime(2026, 7, 15, 3, 45, tzinfo=timezone.utc)
    text = banner(User(True))
    assert "stopped at 22:00 (America/Denver) tonight" in text and '<a href="/services/workshop/">' in text
    assert banner(User(False)) == "" and banner(None) == ""  # nothing running, nothing to warn about
    now["t"] = datetime(2026, 7, 15, 9, 0, tzinfo=timezone.utc)  # 03:00 local, inside
    assert "being stopped for the night" in banner(User(True))
