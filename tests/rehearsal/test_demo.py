"""`jupyterhub-workshop demo`: the README's first command, end to end."""

import json
import os
import re
import shlex
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
from ..harness.hub import free_port, poll, stop_process_group, wait_for
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


def test_the_organizers_commands_are_printed_for_the_demos_files(tmp_path, capsys):
    from traitlets.config import Config

    from jupyterhub_workshop.cli import build_parser

    config = demo.prepare(tmp_path, port=8123)
    commands = printed_commands(capsys.readouterr().out)
    prog = demo.program()
    parse = build_parser().parse_args
    args = {name: parse(argv[len(prog) :]) for name, argv in commands.items()}
    assert [commands[name][: len(prog)] for name in commands] == [prog] * 6
    assert args["credentials add"].out == tmp_path and args["credentials add"].prefix == "demo"
    for name in ("credentials revoke", "credentials restore"):
        assert args[name].accounts == tmp_path / "accounts.yaml" and args[name].usernames == ["demo002"]
    assert args["credentials check"].file == tmp_path / "accounts.yaml"
    assert (
        args["loadtest"].cards == tmp_path / "cards.csv" and args["loadtest"].url == "http://127.0.0.1:8123/"
    )
    c = Config()
    exec(config.read_text(), {"get_config": lambda: c})
    settings = json.loads((tmp_path / "workshop-service.json").read_text())["WorkshopService"]
    assert args["usage export"].db == settings["db_url"]  # the service's own database


@pytest.mark.parametrize("euid, expected", [(0, ["--allow-root"]), (1000, [])])
def test_config_allows_root_only_when_running_as_root(tmp_path, monkeypatch, euid, expected):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    config = demo.demo_config(tmp_path, "127.0.0.1", 8000, "/usr/bin/chp")
    assert f"c.Spawner.args = {expected!r}" in config
    compile(config, "jupyterhub_config.py", "exec")  # valid Python


def start_demo(port: int, state, log) -> subprocess.Popen:
    return subprocess.Popen(
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
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_open(proc: subprocess.Popen, log, timeout: float = 90) -> str:
    """The demo's output once it says where to go (it asks the hub itself; asking through the
    proxy here would put 404s in the log)."""

    def said_open():
        text = log.read_text()
        assert proc.poll() is None, text[-3000:]
        return "Open http" in text and text

    return wait_for(said_open, timeout, message="the demo to say where to go")


def printed_commands(text: str) -> dict[str, list[str]]:
    """The organizer's commands the demo printed, by subcommand ("credentials add", "loadtest")."""
    block = text.split("The README's commands during the event", 1)[1].split("\n")[1:]
    commands = {}
    for line in block:
        if not line.startswith("  "):
            break
        if not line.startswith("  #"):
            argv = shlex.split(line)
            words = argv[len(demo.program()) :][:2]
            key = "loadtest" if words[0] == "loadtest" else " ".join(words)
            commands[key] = argv
    return commands


def quiet_start(text: str) -> None:
    # the demo asks the hub and the proxy's API whether they are up, never the proxy's
    # public port before its route exists (a red 404, or an ECONNREFUSED stack trace)
    start = text.split("Open http", 1)[0]
    assert "404 GET" not in start and "ECONNREFUSED" not in start, start[-3000:]


@pytest.mark.e2e
async def test_the_demo_as_an_organizer_uses_it(tmp_path):
    """Start, sign in and start a server; stop; start again at once on the same port; run the
    commands it prints, verbatim."""
    port = free_port()
    state = tmp_path / "state"
    url = f"http://127.0.0.1:{port}"
    proc = start_demo(port, state, tmp_path / "demo.log")
    held = None
    try:
        printed = wait_until_open(proc, tmp_path / "demo.log")
        quiet_start(printed)
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
        # the server's process is noted for the admin page's memory and CPU
        assert json.loads((state / demo.SERVER_PIDS / f"{username}%2F.json").read_text())["user"] == username
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

        # a browser's idle keep-alive connection: the stopping proxy closes it first, so the
        # port is left with a connection in TIME_WAIT, as after any real use
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"GET /hub/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert held.recv(100).startswith(b"HTTP/1.1 200")

        # a SIGTERM to the demo (a script, or Ctrl-C) stops the hub and all it started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(45) == 0
        wait_for(lambda: not processes_of(state), 10, message="the hub, proxy, service and server to be gone")
        held.settimeout(10)
        while held.recv(65536):  # read to the proxy's end (unread data would make close() a reset)
            pass
        held.close()
        wait_for(lambda: time_wait_on(port), 5, message="the proxy's connection in TIME_WAIT")
    finally:
        if held is not None:
            held.close()
        stop_process_group(proc)
        for pid in processes_of(state):
            os.kill(pid, signal.SIGKILL)

    # started again at once on the same port: not refused, the same cards
    proc = start_demo(port, state, tmp_path / "demo2.log")
    try:
        printed = wait_until_open(proc, tmp_path / "demo2.log")
        quiet_start(printed)
        assert "Creating demo accounts" not in printed
        # the sample login printed is a card that still works: not the one reissued at the desk
        sample = re.search(r"participant:\s+username (\S+)\s+password (\S+)", printed).groups()
        assert sample[0] != username
        async with new_session() as s:
            assert (await login(s, url, *sample)).ok
        commands = printed_commands(printed)
        assert set(commands) == {
            "credentials add",
            "credentials revoke",
            "credentials restore",
            "credentials check",
            "usage export",
            "loadtest",
        }

        def run(name):
            done = subprocess.run(commands[name], capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, f"{commands[name]}\n{done.stdout}\n{done.stderr}"
            return done.stdout + done.stderr

        assert f"{state / 'accounts.yaml'}: OK, 22 accounts" in run("credentials check")
        assert "Added 2 accounts" in run("credentials add")
        assert len(read_cards_csv(state / "cards.csv")) == 24
        lost = commands["credentials revoke"][-1]
        card = next(c for c in read_cards_csv(state / "cards.csv") if c.username == lost)
        assert lost != username  # the sample login keeps working
        assert f"Revoked {lost}" in run("credentials revoke")
        async with new_session() as s:
            assert not (await login(s, url, lost, card.password)).ok

        out = run("loadtest")  # the revoked card is skipped, not failed
        assert (
            f"Skipping 2 cards that cannot sign in now by {state / 'accounts.yaml'} "
            f"(reissued at the card desk: {username}; revoked: {lost})" in out
        )
        assert f"succeeded {demo.LOADTEST_USERS}/{demo.LOADTEST_USERS}, failed 0" in out

        assert f"Restored {lost}" in run("credentials restore")
        async with new_session() as s:
            assert (await login(s, url, lost, card.password)).ok  # the same card, live

        assert "session" in run("usage export")
        exported = (state / "usage.csv").read_text()
        assert exported.startswith("user,") and f"\n{username}," in exported  # the first run's server

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(45) == 0
        wait_for(
            lambda: not processes_of(state), 10, message="the hub, proxy, service and servers to be gone"
        )
    finally:
        stop_process_group(proc)
        for pid in processes_of(state):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.e2e
def test_a_stop_during_the_start_waits_for_the_hub_and_leaves_nothing(tmp_path):
    # JupyterHub handles SIGTERM only once started; before, it would die leaving its proxy and
    # the workshop service running, and the port taken
    state = tmp_path / "state"
    log = tmp_path / "demo.log"
    proc = start_demo(free_port(), state, log)
    try:
        wait_for(lambda: "Starting proxy" in log.read_text(), 60, message="the hub to start its proxy")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        assert "Stopping as soon as the hub has started" in log.read_text()
        wait_for(lambda: not processes_of(state), 10, message="the hub, proxy and service to be gone")
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


def time_wait_on(port: int) -> bool:
    """Whether a TCP connection with local port ``port`` is in TIME_WAIT (state 06)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "06":
                    return True
    return False


def test_a_port_left_in_time_wait_is_free_and_a_listening_one_is_not():
    # a server socket as node (the proxy) makes it: SO_REUSEADDR, which its connections inherit
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    try:
        assert demo.port_in_use("127.0.0.1", port)  # something listens: refused
        served.close()  # the server closes first, as a stopping proxy does: TIME_WAIT on its side
        listener.close()
        assert client.recv(1) == b""
        client.close()
        wait_for(lambda: time_wait_on(port), 5, message="the connection to enter TIME_WAIT")
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # what the check used to do: it saw the port as taken
        assert not demo.port_in_use("127.0.0.1", port)
    finally:
        for s in (client, served, listener):
            s.close()


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
    # what the hub last saw of each card, in the state directory whatever the working directory
    assert c.WorkshopAuthenticator.seen_file == str(tmp_path / "workshop-cards-seen.json")


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
