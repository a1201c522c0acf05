"""The load test client is not the bottleneck: 400 simulated participants from one process.

A real hub + proxy with the workshop authenticator on 400 generated cards; servers come from
a spawner with no processes (benchmarks/null_spawner.py: every server is one always-up HTTP
endpoint, run in a separate process), so each participant logs in through the form, starts its
server, follows the progress stream, opens the server through the proxy and stops it again
(`loadtest --code ""`). The client's own CPU time per simulated participant is printed next to
the hub's (and the proxy's), measured over the same run.

    PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python benchmarks/loadtest_client.py --users 400

Goal: every participant logs in, and the client spends at most a quarter of the hub's CPU time
per participant and less than half of one core (so it could drive several such hubs). Failures
later in the journey are the hub's under this load; the hub's logged errors are printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyterhub_workshop.login.issuing import Batch, generate  # noqa: E402
from jupyterhub_workshop.login.printing import read_cards_csv  # noqa: E402
from jupyterhub_workshop.rehearsal.loadtest.participant import Options  # noqa: E402
from jupyterhub_workshop.rehearsal.loadtest.report import render_text  # noqa: E402
from jupyterhub_workshop.rehearsal.loadtest.run import pick_cards, run_loadtest  # noqa: E402
from tests.harness.hub import HubProcess, free_port, http_status, wait_for  # noqa: E402

ALWAYS_UP = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class AlwaysUp(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), AlwaysUp).serve_forever()
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds over which participants arrive")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"Generating {args.users} cards ...", file=sys.stderr)
        generate(tmp / "cards", Batch("bench", args.users))
        cards, _ = pick_cards(read_cards_csv(tmp / "cards" / "cards.csv"), args.users)

        port = free_port()
        endpoint = subprocess.Popen([sys.executable, "-c", ALWAYS_UP, str(port)])
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/") == 200, 10, message="the server endpoint")
        hub = HubProcess(
            tmp / "hub",
            textwrap.dedent(f"""
            c.JupyterHub.authenticator_class = "workshop"
            c.WorkshopAuthenticator.accounts_file = "{tmp / "cards" / "accounts.yaml"}"
            c.JupyterHub.spawner_class = "null_spawner.NullSpawner"
            c.JupyterHub.concurrent_spawn_limit = 0
            c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
            """),
            env={
                "NULL_SPAWNER_URL": f"http://127.0.0.1:{port}",
                "PYTHONPATH": f"{ROOT / 'benchmarks'}:{os.environ.get('PYTHONPATH', '')}",
            },
        )
        hub.config_text = hub.config_text.replace(
            'c.JupyterHub.log_level = "DEBUG"', 'c.JupyterHub.log_level = "WARN"'
        )
        hub.start()
        try:
            proxy = children(hub.proc.pid)
            hub_before = cpu_seconds(hub.proc.pid)
            proxy_before = sum(cpu_seconds(p) for p in proxy)
            client_before = time.process_time()
            wall_before = time.perf_counter()
            options = Options(url=hub.url, code="", stop=True)
            with open(os.devnull, "w") as quiet:
                report = asyncio.run(
                    run_loadtest(
                        options,
                        cards,
                        ramp=args.ramp,
                        stream=quiet,
                        settings={"ramp": args.ramp, "code": "", "stop": True},
                    )
                )
            wall = time.perf_counter() - wall_before
            client = time.process_time() - client_before
            hub_cpu = cpu_seconds(hub.proc.pid) - hub_before
            proxy_cpu = sum(cpu_seconds(p) for p in proxy) - proxy_before
            hub_errors = Counter(
                re.sub(r"\b(bench\d+|[0-9a-f]{32})\b", "*", line.split("]", 1)[-1].strip())[:160]
                for line in hub.log_text().splitlines()
                if line.startswith("[E ")
            )
        finally:
            hub.stop()
            endpoint.terminate()
            endpoint.wait(10)

    print(render_text(report))
    if hub_errors:
        print("hub errors logged (the hub's side of any failure above):")
        for message, count in hub_errors.most_common(5):
            print(f"  {count:4d} x {message}")
        print()
    n = args.users
    print(f"{'':10} {'CPU s':>8} {'ms/user':>8} {'of a core':>9}")
    for name, cpu in (("client", client), ("hub", hub_cpu), ("proxy", proxy_cpu)):
        print(f"{name:10} {cpu:8.2f} {1000 * cpu / n:8.2f} {100 * cpu / wall:8.0f}%")
    ratio = client / hub_cpu if hub_cpu else float("inf")
    logins = report["steps"]["login"]
    met = logins["count"] == n and ratio <= 0.25 and client / wall < 0.5
    print(
        f"wall {wall:.1f}s for {n} participants (login, spawn, open, stop); "
        f"{report['succeeded']} went all the way, {logins['count']} logged in"
    )
    print(
        f"ratio client/hub CPU per participant: {ratio:.3f}   "
        f"(goal: all {n} logged in, <= 0.25, client < 50% of a core: {'met' if met else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
