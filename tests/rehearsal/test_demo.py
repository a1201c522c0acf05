"""`jupyterhub-workshop demo`: the README's first command, end to end."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from yarl import URL

from jupyterhub_workshop.login.printing import read_cards_csv
from jupyterhub_workshop.rehearsal import demo

from ..harness.browser import login, new_session
from ..harness.hub import free_port, http_status, poll, stop_process_group, wait_for
from ..service.test_desk_e2e import PASSWORD, confirm, do


def test_prepare_creates_cards_once_and_keeps_them(tmp_path, capsys):
    demo.prepare(tmp_path, port=8123)
    first = read_cards_csv(tmp_path / "cards.csv")
    out = capsys.readouterr().out
    assert len(first) == demo.DEMO_PARTICIPANTS + demo.DEMO_INSTRUCTORS
    assert f"participant:  username {first[0].username}  password {first[0].password}" in out
    assert "instructor:" in out and "Open http" not in out  # said once the hub answers
    demo.prepare(tmp_path, port=8123)
    assert read_cards_csv(tmp_path / "cards.csv") == first
    assert "Creating demo accounts" not in capsys.readouterr().out


@pytest.mark.parametrize("euid, expected", [(0, ["--allow-root"]), (1000, [])])
def test_config_allows_root_only_when_running_as_root(tmp_path, monkeypatch, euid, expected):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    config = demo.demo_config(tmp_path, "127.0.0.1", 8000, "/usr/bin/chp")
    assert f"c.Spawner.args = {expected!r}" in config
    compile(config, "jupyterhub_config.py", "exec")  # valid Python


@pytest.mark.e2e
async def test_demo_hub_logs_in_a_card_and_starts_its_server(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterhub_workshop.cli",
            "demo",
            "--port",
            str(port),
            "--state-dir",
            str(state),
        ],
        stdout=open(tmp_path / "demo.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready():
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            return http_status(f"{url}/hub/api/") == 200

        wait_for(ready, 60, message="the demo hub")
        printed = wait_for(
            lambda: "Open http" in (text := (tmp_path / "demo.log").read_text()) and text,
            10,
            message="the demo to say where to go",
        )
        username, password = re.search(r"participant:\s+username (\S+)\s+password (\S+)", printed).groups()
        assert (state / "cards.html").exists()

        async with new_session() as s:
            assert (await login(s, url, username, password)).ok
            async with s.get(f"{url}/hub/spawn") as r:  # what the home page's button does
                assert r.status == 200

            def lab_open_for(session):
                async def lab_open():
                    # while starting, the hub answers with its spawn-pending page instead
                    async with session.get(f"{url}/user/{username}/lab") as r:
                        return r.status == 200 and r.url.path == f"/user/{username}/lab"

                return lab_open

            await poll(lab_open_for(s), 90, message="JupyterLab through the proxy")

            # the workshop service runs too: a participant gets the opt-out page
            async with s.get(f"{url}/services/workshop/") as r:
                assert r.status == 200 and "Keep my server tonight" in await r.text()
        home = state / "homes" / username
        assert (home / "README.md").read_text() == (state / "README.md").read_text()
        assert os.readlink(home / "shared") == str(state / "shared")

        # the card desk: the instructor reissues the participant's card; the old password and the
        # open session end, the new password signs in to the same home
        instructor = next(c for c in read_cards_csv(state / "cards.csv") if c.role == "instructor")
        service = SimpleNamespace(service_url=f"{url}/services/workshop/")
        async with new_session() as staff, new_session() as participant:
            assert (await login(staff, url, instructor.username, instructor.password)).ok
            assert (await login(participant, url, username, password)).ok
            fields = {"action": "reissue", "username": username}
            status, _, token = await confirm(staff, service, **fields)
            assert status == 200
            status, _, page = await do(staff, service, token, **fields)
            assert status == 200
            [new_password] = PASSWORD.findall(page)

            async def signed_out():
                async with participant.get(f"{url}/hub/home", allow_redirects=False) as r:
                    return r.status == 302

            await poll(signed_out, 30, message="the participant's session to end")

            async def server_stopped():
                xsrf = staff.cookie_jar.filter_cookies(URL(f"{url}/hub/"))["_xsrf"].value
                async with staff.get(f"{url}/hub/api/users/{username}", headers={"X-XSRFToken": xsrf}) as r:
                    return r.status == 200 and (await r.json())["servers"] == {}

            await poll(server_stopped, 30, message="the participant's server to stop")
        assert (state / "accounts-desk.yaml").exists()
        async with new_session() as s:
            assert not (await login(s, url, username, password)).ok
        async with new_session() as s:
            assert (await login(s, url, username, new_password)).ok
            async with s.get(f"{url}/hub/spawn") as r:
                assert r.status == 200
            await poll(lab_open_for(s), 90, message="JupyterLab again with the new password")
            async with s.get(f"{url}/user/{username}/api/contents/README.md") as r:
                assert r.status == 200  # the same home

        # a SIGTERM to the demo (a script, or Ctrl-C) stops the hub and all it started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(45) == 0
        wait_for(lambda: not processes_of(state), 10, message="the hub, proxy, service and server to be gone")
    finally:
        stop_process_group(proc)
        for pid in processes_of(state):
            os.kill(pid, signal.SIGKILL)


def processes_of(state) -> list[int]:
    """Processes whose command line or working directory is in the demo's state directory."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(state) in cmdline or cwd.startswith(str(state)):
            found.append(int(entry))
    return found


@pytest.mark.e2e
def test_a_taken_port_stops_the_demo_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyterhub_workshop.cli",
                "demo",
                "--port",
                str(port),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and f"--port {port + 1}" in result.stderr
    assert not processes_of(tmp_path / "state")


def test_config_hands_the_service_its_settings_in_a_private_file(tmp_path):
    from traitlets.config import Config

    c = Config()
    exec(demo.demo_config(tmp_path, "127.0.0.1", 8000, "/usr/bin/chp"), {"get_config": lambda: c})
    [service] = c.JupyterHub.services
    path = tmp_path / "workshop-service.json"
    assert service["command"][-2:] == ["--config", str(path)]  # nothing else on its command line
    assert (path.stat().st_mode & 0o777) == 0o600
    settings = json.loads(path.read_text())["WorkshopService"]
    assert settings["db_url"] == f"sqlite:///{tmp_path / 'workshop-usage.sqlite'}"
    assert (settings["night_start"], settings["night_end"]) == ("22:00", "06:00")
    assert settings["accounts_file"] == str(tmp_path / "accounts.yaml")  # attendance on the admin page
    # the hub's server events reach the service through a spool file in the state directory
    spool = str(tmp_path / "workshop-events.jsonl")
    assert settings["events_file"] == spool
    assert [h.baseFilename for h in c.EventLogger.handlers] == [spool]


@pytest.mark.parametrize(
    "tz, zone",
    [
        ("America/Denver", "America/Denver"),
        (":Europe/Berlin", "Europe/Berlin"),
        ("US/Mountain", "UTC"),
        ("MST", "UTC"),
        ("Nowhere/Atlantis", "UTC"),
    ],
)
def test_the_demo_night_window_uses_a_zone_the_service_accepts(monkeypatch, tz, zone):
    monkeypatch.setenv("TZ", tz)
    assert demo.local_timezone() == zone
