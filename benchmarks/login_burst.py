"""N simultaneous form logins against a real hub + proxy: workshop cards vs shared-password.

Each simulated person opens the login page first, then all press "Sign in" together. A person
told "busy" waits the Retry-After it was given and presses again. Meanwhile a probe asks
/hub/health every 50 ms, to show whether the hub keeps answering others during the burst.

    PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python benchmarks/login_burst.py --users 400

Goal: all logins succeed; p95 and total time each <= 2x shared-password's in the same run;
/hub/health p99 <= 500 ms during the burst.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyterhub_workshop.login.issuing import Batch, generate  # noqa: E402
from jupyterhub_workshop.login.printing import read_cards_csv  # noqa: E402
from jupyterhub_workshop.rehearsal.loadtest.run import KEEPALIVE_SECONDS  # noqa: E402
from tests.harness.browser import XSRF_FIELD  # noqa: E402
from tests.harness.hub import HubProcess  # noqa: E402

SHARED_PASSWORD = "the-one-shared-password"


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def one_person(connector, url, username, password, start: asyncio.Event, stats):
    async with aiohttp.ClientSession(
        connector=connector, connector_owner=False, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as s:
        async with s.get(f"{url}/hub/login") as r:
            xsrf = XSRF_FIELD.search(await r.text()).group(1)
        await start.wait()
        began = time.perf_counter()
        while True:
            try:
                r = await s.post(
                    f"{url}/hub/login",
                    allow_redirects=False,
                    data={"username": username, "password": password, "_xsrf": xsrf},
                )
                await r.read()
            except aiohttp.ClientError:
                # a dropped connection: a person presses "Sign in" again
                stats["dropped"] += 1
                if stats["dropped"] > 10 * len(stats["latency"]) + 50:
                    stats["failed"] += 1
                    return
                await asyncio.sleep(1)
                continue
            async with r:
                if r.status == 302:
                    stats["latency"].append(time.perf_counter() - began)
                    stats["events"].append((time.perf_counter(), "ok"))
                    return
                if r.status == 503 and "Retry-After" in r.headers:
                    stats["busy"] += 1
                    stats["events"].append((time.perf_counter(), "busy"))
                    await asyncio.sleep(float(r.headers["Retry-After"]))
                    continue
                stats["failed"] += 1
                return


async def health_probe(url, stop: asyncio.Event, latencies, timeline):
    async with aiohttp.ClientSession() as s:
        while not stop.is_set():
            began = time.perf_counter()
            async with s.get(f"{url}/hub/health") as r:
                await r.read()
            latencies.append(time.perf_counter() - began)
            timeline.append((began, latencies[-1]))
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass


async def burst(url, logins, timeline=False):
    stats = {"latency": [], "busy": 0, "failed": 0, "dropped": 0, "events": []}
    health, health_timeline = [], []
    start, stop = asyncio.Event(), asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
    people = [asyncio.create_task(one_person(connector, url, u, p, start, stats)) for u, p in logins]
    await asyncio.sleep(0.5)  # let every page load finish, so the burst is only the sign-ins
    probe = asyncio.create_task(health_probe(url, stop, health, health_timeline))
    began = time.perf_counter()
    start.set()
    await asyncio.gather(*people)
    total = time.perf_counter() - began
    stop.set()
    await probe
    await connector.close()
    if timeline:
        print_timeline(began, stats["events"], health_timeline)
    return {
        "ok": len(stats["latency"]),
        "failed": stats["failed"],
        "busy": stats["busy"],
        "dropped": stats["dropped"],
        "total": total,
        "p50": percentile(stats["latency"], 50),
        "p95": percentile(stats["latency"], 95),
        "max": max(stats["latency"], default=float("nan")),
        "health_p99": percentile(health, 99),
        "health_n": len(health),
    }


def print_timeline(began, events, health, step=0.5):
    """Per time slice of the burst: sign-ins completed, busy answers, slowest health answer."""
    end = max([t for t, _ in events] + [t + d for t, d in health] + [began])
    print(f"{'t (s)':>6} {'ok':>4} {'busy':>5} {'health max (ms)':>16}")
    t = began
    while t < end:
        ok = sum(1 for at, kind in events if t <= at < t + step and kind == "ok")
        busy = sum(1 for at, kind in events if t <= at < t + step and kind == "busy")
        slowest = max((d for at, d in health if t <= at < t + step), default=None)
        shown = f"{1000 * slowest:16.0f}" if slowest is not None else f"{'':>16}"
        print(f"{t - began:6.1f} {ok:4d} {busy:5d} {shown}")
        t += step


def run(name, workdir, config, logins, timeline=False):
    hub = HubProcess(workdir, config)
    hub.config_text = hub.config_text.replace(
        'c.JupyterHub.log_level = "DEBUG"', 'c.JupyterHub.log_level = "WARN"'
    )
    hub.start()
    try:
        result = asyncio.run(burst(hub.url, logins, timeline))
    finally:
        hub.stop()
    print(
        f"{name:16} ok {result['ok']:4d}/{len(logins)}  failed {result['failed']:3d}  busy answers {result['busy']:5d}  dropped {result['dropped']:3d}  "
        f"total {result['total']:6.2f}s  p50 {result['p50']:6.2f}s  p95 {result['p95']:6.2f}s  "
        f"max {result['max']:6.2f}s  /hub/health p99 {1000 * result['health_p99']:7.1f} ms (n={result['health_n']})"
    )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print sign-ins, busy answers and health latency per half second",
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=None, help="WorkshopAuthenticator.max_logins_in_flight"
    )
    parser.add_argument(
        "--concurrent", type=int, default=None, help="WorkshopAuthenticator.concurrent_logins"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"Generating {args.users} cards ...", file=sys.stderr)
        generate(tmp / "cards", Batch("bench", args.users))
        cards = read_cards_csv(tmp / "cards" / "cards.csv")
        extra = (
            f"c.WorkshopAuthenticator.max_logins_in_flight = {args.max_in_flight}\n"
            if args.max_in_flight
            else ""
        )
        extra += f"c.WorkshopAuthenticator.concurrent_logins = {args.concurrent}\n" if args.concurrent else ""
        ours = run(
            "workshop",
            tmp / "workshop",
            f"""
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = "{tmp / "cards" / "accounts.yaml"}"
{extra}""",
            [(c.username, c.password) for c in cards],
            args.timeline,
        )
        base = run(
            "shared-password",
            tmp / "shared",
            f"""
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = "{SHARED_PASSWORD}"
c.Authenticator.allow_all = True
""",
            [(c.username, SHARED_PASSWORD) for c in cards],
            args.timeline,
        )
    print(
        f"ratio workshop/shared-password: p95 {ours['p95'] / base['p95']:.2f}  total {ours['total'] / base['total']:.2f}  "
        f"health p99 {ours['health_p99'] / base['health_p99']:.2f}   "
        f"(goal: all ok, p95 and total <= 2.0, health p99 <= 500 ms: "
        f"{'met' if ours['ok'] == args.users and ours['p95'] <= 2 * base['p95'] and ours['total'] <= 2 * base['total'] and ours['health_p99'] <= 0.5 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
