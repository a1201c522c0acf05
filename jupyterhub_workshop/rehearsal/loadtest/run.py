"""`jupyterhub-workshop loadtest`: rehearse a workshop with the real login cards.

Each simulated participant takes one card from ``cards.csv`` and does what a person does
(see :mod:`.participant`): log in through the form, start the
server and follow it until it answers, start a kernel, run code over the kernel websocket and
check the output, optionally stop the server. Cards the accounts file says cannot sign in now
(revoked, outside their window) are skipped and reported apart: they are no failure of the hub.
Arrivals spread over ``--ramp`` seconds. While it
runs, a live line shows users per stage; afterwards a report gives p50/p95/max per step,
errors grouped by kind and totals, as text and optionally JSON, CSV and a plot. The exit code
is 1 when any participant failed, so a rehearsal can gate a deployment.

Works against the local demo hub (``jupyterhub-workshop demo``) and any deployment that uses
the workshop authenticator, by URL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from ...files import write_atomically
from ...login.accounts import load_accounts
from ...login.overlay import DESK_FILE_NAME, merge
from ...progress import Progress
from ...times import now_utc
from ...wording import count
from .notebook import Lesson, check_unique, parse_think, read_notebook, server_notebook_path
from .notebook_report import notebook_section, render_notebook_text
from .plot import check_plot_path, write_plot
from .report import (
    UserResult,
    arrival_offsets,
    build_report,
    describe_skipped,
    render_csv,
    render_text,
    stage_status,
)

DEFAULT_CODE = "print(6 * 7)"
DEFAULT_EXPECT = "42"
KEEPALIVE_SECONDS = 3.0  # below configurable-http-proxy's (node's) 5 s idle timeout


def normalize_url(url: str) -> str:
    """The hub's public base URL without a trailing slash (``.../hub/`` is accepted too)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url {url!r}: expected http(s)://host[:port][/prefix]")
    path = parts.path.rstrip("/")
    if path.endswith("/hub"):
        path = path[: -len("/hub")]
    return f"{parts.scheme}://{parts.netloc}{path}"


#: why a card is skipped whose password the card desk changed (its printed one no longer works)
REISSUED = "reissued at the card desk"


def why_not_now(account, now: datetime) -> str | None:
    """Why a card cannot sign in at ``now`` by its account ("revoked", "expired at ...",
    "works from ..."), None if it can or its account is unknown (the hub's answer tells)."""
    if account is None:
        return None
    return "revoked" if account.revoked else account.window_note(now)


def accounts_as_the_hub_sees_them(accounts_path: Path) -> tuple[dict, frozenset]:
    """The accounts file with the card desk's changes merged over it when the desk file lies
    beside it (the demo's layout), and the cards the desk reissued: their printed passwords no
    longer work, so they are skipped rather than failed."""
    book = load_accounts(accounts_path)
    desk_path = accounts_path.parent / DESK_FILE_NAME
    if not desk_path.is_file():
        return dict(book), frozenset()
    desk = load_accounts(desk_path)
    reissued = frozenset(
        name
        for name, account in desk.items()
        if name in book and account.password_hash != book[name].password_hash
    )
    return dict(merge(book, desk)), reissued


def pick_cards(
    cards: list,
    users: int,
    accounts: Mapping | None = None,
    now: datetime | None = None,
    reissued: frozenset = frozenset(),
) -> tuple[list, list[tuple[str, str]]]:
    """The first ``users`` cards that can sign in at ``now``, participants before instructors
    (file order within each), and the cards passed over on the way, with why: revoked or
    outside their window in ``accounts`` (username -> Account). A revoked card is not a failure
    of the hub, so it is not tried."""
    if users < 1:
        raise ValueError("--users must be at least 1")
    ordered = [c for c in cards if c.role != "instructor"] + [c for c in cards if c.role == "instructor"]
    now = now or now_utc()
    picked, skipped = [], []
    for card in ordered:
        if len(picked) == users:
            break
        why = REISSUED if card.username in reissued else why_not_now((accounts or {}).get(card.username), now)
        if why is None:
            picked.append(card)
        else:
            skipped.append((card.username, why))
    if len(picked) < users:
        have = count(len(picked), "card") + (" that can sign in now" if skipped else "")
        more = f" ({count(len(skipped), 'card')} skipped: {describe_skipped(skipped)})" if skipped else ""
        raise ValueError(f"--users {users}: the cards file has only {have}{more}")
    return picked, skipped


async def show_every(interval: float, show, stop: asyncio.Event) -> None:
    """Call ``show()`` every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            show()


async def run_crowd(
    options,
    cards: list,
    *,
    ramp: float = 0.0,
    seed: int | None = 0,
    stream: TextIO | None = None,
    interval: float | None = None,
    label: str = "users finished",
) -> tuple[list, list, float, dict]:
    """Run every participant; return their results, the stage transitions, the duration and the
    lessons as run (server path -> :class:`~.notebook.Lesson`, cells read where they were)."""
    import aiohttp

    from .participant import Participant

    n = len(cards)
    results = [UserResult(c.username) for c in cards]
    stage_of = ["waiting"] * n
    transitions: list[tuple[float, int, str]] = []
    lessons: dict = {}
    offsets = arrival_offsets(n, ramp, seed)
    began = time.monotonic()

    def snapshot() -> tuple[int, str]:
        """Users finished, and the status line: users per stage and retries."""
        counts = Counter(stage_of)
        retries = sum(sum(r.retries.values()) for r in results)
        return counts["done"] + counts["failed"], stage_status(counts, retries)

    # idle connections are dropped before the proxy drops them: reusing a connection the
    # proxy has just closed fails the request
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS)

    async def participant(i: int) -> None:
        await asyncio.sleep(max(0.0, began + offsets[i] - time.monotonic()))  # the arrival schedule
        r = results[i]
        r.started = time.monotonic() - began

        def on_stage(stage: str) -> None:
            stage_of[i] = stage
            transitions.append((time.monotonic() - began, i, stage))

        p = Participant(options, cards[i].username, cards[i].password, r, connector, on_stage)
        try:
            await p.run()
        finally:
            await p.close()
        for path, lesson in p.lessons.items():
            lessons.setdefault(path, lesson)
        if r.error is None:
            r.finished = time.monotonic() - began

    with Progress(n, label, file=stream, interval=interval, status=snapshot()[1]) as bar:
        stop = asyncio.Event()
        shown = asyncio.create_task(show_every(bar.mininterval, lambda: bar.show(*snapshot()), stop))
        try:
            await asyncio.gather(*(participant(i) for i in range(n)))
        finally:
            stop.set()
            await shown
            await connector.close()
        bar.show(*snapshot())
    return results, transitions, time.monotonic() - began, lessons


async def run_loadtest(
    options,
    cards: list,
    *,
    ramp: float = 0.0,
    seed: int | None = 0,
    stream: TextIO | None = None,
    interval: float | None = None,
    settings: dict | None = None,
    baseline: bool = False,
    skipped: list[tuple[str, str]] = (),
) -> dict:
    """Run every participant and return the report (see ``report.build_report``).

    With notebooks (``options.lessons``) and ``baseline``, the first card's participant runs the
    notebooks alone first (the lead, without think time), then the crowd; the report gains the
    notebook section (:func:`.notebook_report.notebook_section`)."""
    lead = None
    if options.lessons and baseline:
        lead_options = dataclasses.replace(options, think=(0.0, 0.0))
        (lead,), _, _, lead_lessons = await run_crowd(
            lead_options, cards[:1], stream=stream, interval=interval, label="the lead alone"
        )
        if lead.error is not None and lead.error.step == "login":
            raise CardsError(
                f"the lead's card {lead.username} could not sign in ({lead.error.kind}: {lead.error.detail}); "
                "do the cards belong to this hub?"
            )
        if lead.error is not None:  # what fails alone fails for everyone: no crowd for it
            raise LeadFailed(
                f"the lead ({lead.username}) could not run the notebooks alone, at {lead.error.step}: "
                f"{lead.error.kind}: {lead.error.detail}; the crowd was not started"
            )
    results, transitions, duration, lessons = await run_crowd(
        options, cards, ramp=ramp, seed=seed, stream=stream, interval=interval
    )
    report = build_report(
        results,
        url=options.url,
        duration=duration,
        settings=settings or {},
        transitions=transitions,
        skipped=skipped,
    )
    if options.lessons:
        if lead is not None:
            lessons = {**lessons, **lead_lessons}
        ran = [lessons.get(lesson.server_path, lesson) for lesson in options.lessons]
        report.update(
            notebook_section(
                ran,
                lead,
                results,
                {
                    "think": list(options.think),
                    "cell_timeout": options.cell_timeout,
                    "stop_on_error": options.stop_on_error,
                    "baseline": baseline,
                },
                options.sample_interval,
            )
        )
    return report


class CardsError(ValueError):
    """The cards do not work on this hub: nothing to rehearse."""


class LeadFailed(RuntimeError):
    """The lead could not get through the notebooks alone: a crowd would only fail the same way."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Simulate workshop participants with the real login cards: log in through the form, start "
        "the server, start a kernel, run code over its websocket and check the output, stop the "
        "server; or, with --notebook, run the tutorial's notebooks cell by cell (the lead alone first) "
        "and measure each server's memory and CPU. Exit code 1 when any participant failed (with "
        "notebooks: failed a cell the lead passed, or reached the memory limit)."
    )
    parser.add_argument("--url", required=True, help="the hub's public URL, e.g. https://hub.example.org/")
    parser.add_argument(
        "--cards",
        required=True,
        type=Path,
        help="cards.csv from `credentials generate` (username,password,role)",
    )
    parser.add_argument(
        "--accounts",
        type=Path,
        metavar="ACCOUNTS.yaml",
        help="the hub's accounts file: cards revoked or outside their validity window there are "
        "skipped and counted apart, not failed (default: accounts.yaml beside the cards file, "
        "if there is one)",
    )
    parser.add_argument(
        "--users",
        required=True,
        type=int,
        metavar="N",
        help="simulated participants: the first N cards that can sign in, participants before instructors",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="spread arrivals over this many seconds, one at a random moment in each "
        "equal slot (default: 60; 0: everyone at once)",
    )
    parser.add_argument(
        "--code",
        default=DEFAULT_CODE,
        help=f"code each participant runs in a new kernel (default: {DEFAULT_CODE!r}); "
        "an empty string skips the kernel and code steps",
    )
    parser.add_argument(
        "--expect",
        default=None,
        help=f"text the code's output must contain (default: {DEFAULT_EXPECT!r} for the default "
        "code, otherwise only that it runs without error)",
    )
    parser.add_argument(
        "--iterations", type=int, default=1, metavar="K", help="runs of the code per participant"
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument(
        "--stop",
        dest="stop",
        action="store_true",
        default=True,
        help="stop each server the test started, at the end (default); a card whose server was already "
        "running (someone is using it) is used but left running",
    )
    stop.add_argument(
        "--keep",
        dest="stop",
        action="store_false",
        help="leave the servers running (kernels are still shut down)",
    )
    parser.add_argument(
        "--kernel", default=None, metavar="NAME", help="kernel name (default: the server's default)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    parser.add_argument("--csv", type=Path, metavar="OUT", help="write per-step statistics as CSV")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.svg",
        help="write a timeline of users per stage, stacked: SVG (OUT.svg) or an HTML page "
        "holding it (OUT.html); no PNG",
    )
    parser.add_argument(
        "--spawn-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="per participant, from pressing start to the server answering, waits for "
        "Retry-After included (default: 300)",
    )
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="every other step: login (with its Retry-After waits), kernel start, one code "
        "run, stop (default: 120)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed of the arrival and think times (default: 0)"
    )

    nb = parser.add_argument_group(
        "the tutorial's notebooks",
        "each participant runs every code cell of these notebooks in order over the kernel websocket, "
        "as JupyterLab does; the fixed --code snippet is not run",
    )
    nb.add_argument(
        "--notebook",
        action="append",
        type=Path,
        default=[],
        metavar="FILE.ipynb",
        help="a notebook on this machine, uploaded into each participant's home under its name "
        "(repeat for several, run in order)",
    )
    nb.add_argument(
        "--notebook-path",
        action="append",
        default=[],
        metavar="PATH",
        help="a notebook already on the servers, relative to the home, e.g. shared/lesson1.ipynb "
        "(repeatable; runs after the --notebook files)",
    )
    nb.add_argument(
        "--think",
        default="5-20",
        metavar="LOW-HIGH",
        help="seconds a participant pauses before each cell, drawn per cell (default: 5-20; 0: none)",
    )
    nb.add_argument(
        "--cell-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="a cell running longer is interrupted and recorded as timed out (default: 300)",
    )
    nb.add_argument(
        "--stop-on-error",
        action="store_true",
        help="a participant stops at its first failing cell (default: record it and go on)",
    )
    nb.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the lead (the first card) runs the notebooks alone before the crowd; crowd latencies "
        "are reported as ratios to the lead's (default: on)",
    )
    nb.add_argument(
        "--sample-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often each server's memory and CPU are read from jupyter-resource-usage "
        "(and after every cell; default: 2, 0: not at all)",
    )
    nb.add_argument(
        "--html",
        type=Path,
        metavar="OUT.html",
        help="write the report as an HTML page with charts (per-cell latency, errors, memory and CPU, stages)",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how often the live display updates (default: 0.5 on a terminal; otherwise 5, "
        "a line only when something changed)",
    )


def lessons_from_args(args) -> tuple:
    """The notebooks to run, read and checked before anyone signs in."""
    lessons = [read_notebook(p) for p in args.notebook]
    for text in args.notebook_path:
        path = server_notebook_path(text)
        lessons.append(Lesson(path.rsplit("/", 1)[-1], path, "", ()))
    check_unique([lesson.name for lesson in lessons])
    return tuple(lessons)


def write_reports(args, report: dict) -> None:
    """The files asked for, each written whole or not at all."""
    from .html import render_html

    if args.json:
        write_atomically(args.json, json.dumps(report, indent=2) + "\n", 0o644)
    if args.csv:
        write_atomically(args.csv, render_csv(report), 0o644)
    if args.plot:
        write_plot(
            args.plot,
            report["timeline"],
            f"users per stage: {report['users']} users, {report['failed']} failed, {report['duration']:.1f}s",
        )
    if args.html:
        write_atomically(args.html, render_html(report), 0o644)


def run(args, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from ...login.issuing import ACCOUNTS_NAME
    from ...login.printing import read_cards_csv
    from .participant import Options

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        url = normalize_url(args.url)
        lessons = lessons_from_args(args)
        think = parse_think(args.think)
        accounts = args.accounts
        if accounts is None and (args.cards.parent / ACCOUNTS_NAME).is_file():
            accounts = args.cards.parent / ACCOUNTS_NAME  # written beside the cards by `credentials`
        book, reissued = (
            accounts_as_the_hub_sees_them(accounts) if accounts is not None else (None, frozenset())
        )
        cards, skipped = pick_cards(read_cards_csv(args.cards), args.users, book, reissued=reissued)
        if args.iterations < 1:
            raise ValueError("--iterations must be at least 1")
        if args.ramp < 0:
            raise ValueError("--ramp cannot be negative")
        if args.cell_timeout <= 0:
            raise ValueError("--cell-timeout must be more than 0")
        if args.sample_interval < 0:
            raise ValueError("--sample-interval cannot be negative")
        if args.progress_interval is not None and args.progress_interval <= 0:
            raise ValueError("--progress-interval must be more than 0")
        if args.plot:
            check_plot_path(args.plot)
        if args.html and args.html.suffix.lower() != ".html":
            raise ValueError(f"--html {args.html}: name the page .html")
        if args.html and not lessons:
            raise ValueError("--html draws the notebook rehearsal: give --notebook or --notebook-path")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=err)
        return 2
    code = "" if lessons else (args.code if args.code.strip() else "")
    expect = (
        args.expect if args.expect is not None else (DEFAULT_EXPECT if args.code == DEFAULT_CODE else None)
    )
    options = Options(
        url=url,
        code=code,
        expect=expect if code else None,
        iterations=args.iterations,
        stop=args.stop,
        kernel_name=args.kernel,
        login_timeout=args.step_timeout,
        spawn_timeout=args.spawn_timeout,
        kernel_timeout=args.step_timeout,
        code_timeout=args.step_timeout,
        stop_timeout=args.step_timeout,
        lessons=lessons,
        think=think,
        seed=args.seed,
        cell_timeout=args.cell_timeout,
        stop_on_error=args.stop_on_error,
        sample_interval=args.sample_interval,
    )
    settings = {
        "ramp": args.ramp,
        "code": code,
        "expect": options.expect,
        "iterations": args.iterations,
        "stop": args.stop,
        "kernel": args.kernel,
        "seed": args.seed,
        "cards": str(args.cards),
        "notebooks": [lesson.server_path for lesson in lessons],
        "accounts": None if accounts is None else str(accounts),
    }
    if skipped:
        print(
            f"Skipping {count(len(skipped), 'card')} that cannot sign in now by {accounts} "
            f"({describe_skipped(skipped)}): not tried, not counted as failures",
            file=err,
        )
    try:
        report = asyncio.run(
            run_loadtest(
                options,
                cards,
                ramp=args.ramp,
                seed=args.seed,
                stream=err,
                interval=args.progress_interval,
                settings=settings,
                baseline=args.baseline,
                skipped=skipped,
            )
        )
    except CardsError as e:
        print(f"error: {e}", file=err)
        return 2
    except LeadFailed as e:
        print(f"error: {e}", file=err)
        return 1
    except KeyboardInterrupt:
        print("interrupted: some servers may still be running", file=err)
        return 130
    out.write(render_text(report))
    if lessons:
        out.write(render_notebook_text(report))
    write_reports(args, report)
    if lessons:
        return 0 if report["verdict"]["ok"] else 1
    return 0 if report["failed"] == 0 else 1
