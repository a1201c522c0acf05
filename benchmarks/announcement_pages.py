"""The hub's home page with three announcements vs none, under the login burst's load.

One real hub + proxy with workshop cards and the board banner (the hub reads the board file
only when it changes). In alternating rounds — no announcement, then three — a burst of card
logins runs (as in login_burst.py: everyone presses "Sign in" together, busy answers waited
out) while signed-in people reload /hub/home; each home page's time is recorded.

    PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python benchmarks/announcement_pages.py

Goal: home page p95 with three announcements <= 1.05x without.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.login_burst import one_person, percentile  # noqa: E402
from jupyterhub_workshop.board import Board, save_board  # noqa: E402
from jupyterhub_workshop.login.issuing import Batch, generate  # noqa: E402
from jupyterhub_workshop.login.printing import read_cards_csv  # noqa: E402
from jupyterhub_workshop.rehearsal.loadtest.run import KEEPALIVE_SECONDS  # noqa: E402
from tests.harness.browser import login  # noqa: E402
from tests.harness.hub import HubProcess  # noqa: E402

ANNOUNCEMENTS = [
    "Welcome! Slides and data: https://example.org/hackweek/slides — the schedule is on the wiki.",
    "Lunch is served in the atrium from 12:00; the afternoon tutorial starts at 13:15 sharp.",
    "Coffee break until 10:30. Save your notebooks: servers idle for an hour are stopped.",
]


async def readers(url, sessions, stop: asyncio.Event, times: list[float]):
    async def reader(s):
        while not stop.is_set():
            began = time.perf_counter()
            async with s.get(f"{url}/hub/home") as r:
                page = await r.text()
                assert r.status == 200, r.status
            times.append(time.perf_counter() - began)
            assert ("workshop-announcement" in page) == bool(readers.expect)

    await asyncio.gather(*(reader(s) for s in sessions))


async def round_(url, sessions, logins, expect: bool) -> list[float]:
    readers.expect = expect
    times: list[float] = []
    stats = {"latency": [], "busy": 0, "failed": 0, "dropped": 0, "events": []}
    start, stop = asyncio.Event(), asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
    people = [asyncio.create_task(one_person(connector, url, u, p, start, stats)) for u, p in logins]
    await asyncio.sleep(0.5)  # the login pages loaded: the burst is only the sign-ins
    reading = asyncio.create_task(readers(url, sessions, stop, times))
    start.set()
    await asyncio.gather(*people)
    stop.set()
    await reading
    await connector.close()
    if stats["failed"]:
        raise SystemExit(f"{stats['failed']} logins failed")
    return times


async def measure(hub, board_file, cards, args):
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(args.readers)]
    try:
        for s, card in zip(sessions, cards[: args.readers], strict=True):
            assert (await login(s, hub.url, card.username, card.password)).ok
        burst = [(c.username, c.password) for c in cards[args.readers :]]
        three = Board()
        for n, text in enumerate(ANNOUNCEMENTS):
            three = three.post(text, datetime(2026, 7, 14, 9, n, tzinfo=UTC))
        without, with_three = [], []
        for _ in range(args.rounds):
            save_board(board_file, Board())
            without += await round_(hub.url, sessions, burst, False)
            save_board(board_file, three)
            with_three += await round_(hub.url, sessions, burst, True)
        return without, with_three
    finally:
        for s in sessions:
            await s.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200, help="logins in each round's burst")
    parser.add_argument("--readers", type=int, default=10, help="signed-in people reloading /hub/home")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate(tmp / "cards", Batch("bench", args.users + args.readers))
        cards = read_cards_csv(tmp / "cards" / "cards.csv")
        board_file = tmp / "workshop-board.json"
        hub = HubProcess(
            tmp / "hub",
            f"""
from jupyterhub_workshop.hubconfig.services import board_banner
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = "{tmp / "cards" / "accounts.yaml"}"
c.JupyterHub.template_vars = {{"announcement": board_banner({str(board_file)!r}, "America/Denver")}}
""",
        )
        hub.config_text = hub.config_text.replace(
            'c.JupyterHub.log_level = "DEBUG"', 'c.JupyterHub.log_level = "WARN"'
        )
        hub.start()
        try:
            without, with_three = asyncio.run(measure(hub, board_file, cards, args))
        finally:
            hub.stop()
    for name, times in (("no announcement", without), ("three announcements", with_three)):
        print(
            f"{name:20} home pages {len(times):5d}  p50 {1000 * percentile(times, 50):7.1f} ms  "
            f"p95 {1000 * percentile(times, 95):7.1f} ms  (during {args.rounds} bursts of {args.users} logins)"
        )
    ratio = percentile(with_three, 95) / percentile(without, 95)
    print(f"p95 ratio (three / none): {ratio:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
