"""The service's settings: bounds like the chart's schema, the configuration file, the command line."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from traitlets import TraitError
from traitlets.config import Config

from jupyterhub_workshop.service.app import WorkshopService

from ..harness.hub import free_port, http_status, wait_for


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
        {"events_poll_interval": 0},
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


# --- stopping cleanly: the service as a process, signalled in the middle of a pass -----------


class StallingHub:
    """A hub API that never answers the user listing (a pass stays in flight) until closed."""

    def __init__(self):
        self.released = threading.Event()
        self.listings = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.listings += 1
                outer.released.wait(60)
                self.send_response(503)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling_hub():
    hub = StallingHub()
    yield hub
    hub.close()


@pytest.mark.parametrize(
    "signum, ignore_sigint",
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "SIGINT-after-inheriting-ignore", "SIGTERM-after-inheriting-ignore"],
)
def test_the_service_stops_within_two_seconds_without_a_traceback(
    tmp_path, stalling_hub, signum, ignore_sigint
):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterhub_workshop.service",
        f"--db-url=sqlite:///{tmp_path / 'usage.sqlite'}",
        f"--WorkshopService.events_file={tmp_path / 'events.jsonl'}",
        "--cull-every=0.2",
        "--log-level=INFO",
    ]
    if ignore_sigint:
        # as a script starts a job in the background: the job inherits "ignore SIGINT"
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    env = {
        **os.environ,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_API_URL": stalling_hub.url,
        "JUPYTERHUB_API_TOKEN": "not-a-real-token",
    }
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True
        )
    try:
        metrics = f"http://127.0.0.1:{port}/services/workshop/metrics"
        wait_for(lambda: http_status(metrics) == 200, 60, message="the service to listen")
        wait_for(lambda: stalling_hub.listings > 0, 30, message="a pass waiting on the hub")
        sent = time.monotonic()
        proc.send_signal(signum)
        code = proc.wait(10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = stderr.read_text()
    assert took <= 2.0, f"took {took:.2f}s to stop"
    assert code == 0, text
    assert "Traceback" not in text and "Workshop service stopping" in text
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of it is left
