"""One cull pass over a hub with 5,000 users and 2,000 running servers: ours vs jupyterhub-idle-culler.

Both run against the same real hub (servers from a process-less spawner) through the same
counting HTTP hop, in the same run, with a timeout no server has reached — the common pass
that lists everything and stops nothing. Ours is timed twice: its first pass (which records
2,000 new sessions) and a steady-state pass. The hub writes its server events to a spool
file as configured for the service (``install_server_events``), and ours reads it, as deployed.

    PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python benchmarks/cull_pass.py

Needs `pip install jupyterhub-idle-culler`. Goal: steady pass time ratio (ours / idle-culler) <= 1.0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.faulty import FaultyProxy  # noqa: E402
from tests.harness.hub import HubProcess, free_port  # noqa: E402


class AlwaysUp(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


async def populate(hub: HubProcess, users: int, running: int) -> int:
    headers = {"Authorization": f"token {hub.api_token}"}
    api = f"{hub.url}/hub/api"
    names = [f"u{i:05d}" for i in range(users)]
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=50)) as s:
        for i in range(0, users, 1000):
            async with s.post(f"{api}/users", json={"usernames": names[i : i + 1000]}) as r:
                assert r.status == 201, await r.text()

        async def spawn(name):
            async with s.post(f"{api}/users/{name}/server", json={}) as r:
                assert r.status in (201, 202), await r.text()

        for i in range(0, running, 200):
            await asyncio.gather(*(spawn(n) for n in names[i : i + 200]))

        async def servers() -> tuple[int, int]:
            """(ready, still starting or stopping), from the listing's items: its total counts
            users with any active server, ready or not."""
            ready = pending = offset = 0
            while offset is not None:
                async with s.get(
                    f"{api}/users?state=active&offset={offset}&limit=200",
                    headers={"Accept": "application/jupyterhub-pagination+json"},
                ) as r:
                    page = await r.json()
                for user in page["items"]:
                    for server in user["servers"].values():
                        ready += bool(server["ready"])
                        pending += bool(server["pending"])
                following = page["_pagination"]["next"]
                offset = following["offset"] if following else None
            return ready, pending

        # wait until no spawn is pending any more (a few may fail on an overloaded 2-core box)
        deadline = time.monotonic() + 900
        while (counts := await servers())[1]:
            assert time.monotonic() < deadline, "spawns still pending"
            await asyncio.sleep(1)
        return counts[0]


async def our_pass(api_url: str, token: str, db: Path, events: Path, timeout: int) -> tuple[float, float]:
    from jupyterhub_workshop.service.app import WorkshopService

    os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"] = api_url, token
    service = WorkshopService()
    service.initialize(
        [
            f"--db-url=sqlite:///{db}",
            f"--timeout={timeout}",
            f"--WorkshopService.events_file={events}",
            "--log-level=WARN",
        ]
    )
    started = time.perf_counter()
    await service.culler.run_pass()
    first = time.perf_counter() - started
    steady = []
    for _ in range(3):  # the hub has periodic work of its own (activity, polls): take the median
        started = time.perf_counter()
        await service.culler.run_pass()
        steady.append(time.perf_counter() - started)
    service.hub.close()
    service.store.close()
    return first, sorted(steady)[1]


async def idle_culler_pass(api_url: str, token: str, timeout: int) -> float:
    from jupyterhub_idle_culler import cull_idle

    times = []
    for _ in range(3):
        started = time.perf_counter()
        await cull_idle(
            url=api_url,
            api_token=token,
            inactive_limit=timeout,
            logger=logging.getLogger("idle-culler"),
            concurrency=10,
            api_page_size=200,
        )
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--running", type=int, default=2000)
    args = parser.parse_args()
    timeout = 86400
    endpoint = ThreadingHTTPServer(("127.0.0.1", free_port()), AlwaysUp)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {
            "NULL_SPAWNER_URL": f"http://127.0.0.1:{endpoint.server_port}",
            "PYTHONPATH": f"{ROOT / 'benchmarks'}:{os.environ.get('PYTHONPATH', '')}",
        }
        events = tmp / "workshop-events.jsonl"
        hub = HubProcess(
            tmp / "hub",
            f"""
from jupyterhub_workshop.hubconfig.services import install_server_events
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "null_spawner.NullSpawner"
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
install_server_events(c, {str(events)!r})
""",
            env=env,
        )
        hub.config_text = hub.config_text.replace(
            'c.JupyterHub.log_level = "DEBUG"', 'c.JupyterHub.log_level = "WARN"'
        )
        hub.start()
        counter = FaultyProxy(f"http://127.0.0.1:{hub.hub_port}").start()
        try:
            print(f"Populating {args.users} users, {args.running} running servers ...", file=sys.stderr)
            started = time.perf_counter()
            ready = asyncio.run(populate(hub, args.users, args.running))
            print(f"  took {time.perf_counter() - started:.0f}s; {ready} servers ready", file=sys.stderr)
            api_url = f"{counter.url}/hub/api"
            mark = len(counter.seen)
            first, steady = asyncio.run(
                our_pass(api_url, hub.api_token, tmp / "usage.sqlite", events, timeout)
            )
            spooled = len(events.read_text().splitlines()) if events.exists() else 0
            ours_requests = (len(counter.seen) - mark) / 4
            mark = len(counter.seen)
            theirs = asyncio.run(idle_culler_pass(api_url, hub.api_token, timeout))
            their_requests = (len(counter.seen) - mark) / 3
        finally:
            counter.stop()
            hub.stop()
            endpoint.shutdown()
    print(f"hub: {args.users} users, {ready} running servers ({spooled} server events in the spool)")
    print(
        f"workshop service   first pass {first:6.2f}s (records {ready} sessions)  "
        f"steady pass (median of 3) {steady:6.2f}s  requests/pass {ours_requests:.0f}"
    )
    print(f"idle-culler 2.0    pass (median of 3) {theirs:6.2f}s  requests/pass {their_requests:.0f}")
    ratio = steady / theirs
    print(
        f"ratio ours/idle-culler: steady {ratio:.2f}  first {first / theirs:.2f}   "
        f"(goal: steady <= 1.0: {'met' if ratio <= 1.0 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
