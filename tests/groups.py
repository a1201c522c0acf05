"""Which groups of tests ``scripts/dev test`` will run here, and why the others will not.

    python -m tests.groups [--python312 PATH] [-- PYTEST_ARGS...]

prints one line, e.g. ``will run: unit, e2e, chart (z2jh 4.4.0 from ../shared), rehearsal;
will skip: postgres (WORKSHOP_TEST_POSTGRES_URL not set)``, fetching z2jh first when it is not
here (``tests/chart/z2jh.py``). Exit status 0 when the deployment rehearsal will run (so its
environments are worth building), 3 when it will not. ``--python312`` is the Python 3.12 that
builds those environments (empty: none found).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from tests.chart import z2jh
from tests.deploy.needs import machine_blockers

ROOT = Path(__file__).resolve().parents[1]
REHEARSAL = ROOT / "tests" / "deploy" / "test_rehearsal.py"
POSTGRES_ENV = "WORKSHOP_TEST_POSTGRES_URL"
WILL_NOT_RUN = 3
# pytest options whose value is the next argument (not a path to collect)
TAKES_VALUE = {
    "-k",
    "-m",
    "-p",
    "-c",
    "-o",
    "-W",
    "-r",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--rootdir",
    "--basetemp",
    "--confcutdir",
    "--junitxml",
    "--maxfail",
    "--tb",
}


def selects(pytest_args: list[str], test_file: Path) -> bool:
    """Whether pytest, given these arguments, may collect ``test_file``: no paths given, or a
    path at or above it (``-k``/``-m`` filters are not read: they may select it)."""
    paths = []
    for before, arg in zip([None, *pytest_args], pytest_args):
        if arg.startswith("-") or before in TAKES_VALUE:
            continue
        path = Path(arg.split("::", 1)[0])
        if path.exists():
            paths.append(path.resolve())
    return not paths or any(test_file == p or p in test_file.parents for p in paths)


def postgres() -> str | None:
    """Why the PostgreSQL store tests will skip, or None (the server answers within 3 s)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return f"{POSTGRES_ENV} not set"
    import sqlalchemy as sa

    from jupyterhub_workshop.service.store import normalize_url

    try:
        engine = sa.create_engine(normalize_url(url), connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as e:  # any driver or connection error: the tests skip the same way
        return f"nothing answers at {url}: {type(e).__name__}"
    return None


def plan(python312: str | None, pytest_args: list[str]) -> tuple[list[str], list[str], bool]:
    """(groups that will run, groups that will not with why, whether the rehearsal runs)."""
    run, skip = ["unit"], []
    if shutil.which("configurable-http-proxy"):
        run.append("e2e")
    else:
        skip.append("e2e (configurable-http-proxy not on PATH)")
    path, words = z2jh.source()
    if path is not None:
        run.append(f"chart ({words})")
    else:
        skip.append(f"chart ({words})")
    blockers = [] if path is None else machine_blockers()  # the chart's reason is said once
    if path is None:
        blockers.append("no chart")
    if not python312:
        blockers.append("no Python 3.12: set PYTHON312")
    if not selects(pytest_args, REHEARSAL):
        blockers = ["not among the tests selected"]
    rehearsal = not blockers
    if rehearsal:
        run.append("rehearsal")
    else:
        skip.append(f"rehearsal ({'; '.join(blockers)})")
    reason = postgres()
    if reason is None:
        run.append("postgres")
    else:
        skip.append(f"postgres ({reason})")
    if any(os.path.exists(p) for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")):
        run.append("browser")
    else:
        skip.append("browser (Chromium not installed)")
    return run, skip, rehearsal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.groups", description=__doc__.split("\n\n")[0])
    parser.add_argument("--python312", default="", help="the Python 3.12 for the rehearsal's environments")
    parser.add_argument("pytest_args", nargs="*", help="what scripts/dev test passes on to pytest")
    args = parser.parse_args(argv)
    run, skip, rehearsal = plan(args.python312 or None, args.pytest_args)
    line = f"will run: {', '.join(run)}"
    if skip:
        line += f"; will skip: {', '.join(skip)}"
    print(line, flush=True)
    return 0 if rehearsal else WILL_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
