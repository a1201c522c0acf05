"""The ``jupyterhub-workshop`` command: one argparse tree, thin around the package's modules.

Each command's options are declared by the module that does the work (``add_arguments``) and
run by it (``run``); this module only assembles the tree and turns expected errors into a
message and an exit code. The workshop service has a command of its own,
``jupyterhub-workshop-service``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .homes import command as homes
from .login import issuing
from .rehearsal import demo
from .rehearsal.loadtest import run as loadtest
from .rehearsal.plan import cli as plan
from .service import report, usage
from .times import parse_typed_time


def typed_time(text: str):
    """argparse type for a time a person types (ISO 8601 with an offset)."""
    try:
        return parse_typed_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyterhub-workshop", description="Run a hands-on workshop on JupyterHub."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    credentials = commands.add_parser("credentials", help="create and manage login cards")
    issuing.add_arguments(credentials, typed_time)
    credentials.set_defaults(run=issuing.run)

    usage_parser = commands.add_parser("usage", help="usage records of the workshop service")
    usage.add_arguments(usage_parser, typed_time)
    usage_parser.set_defaults(run=usage.run)

    homes_parser = commands.add_parser(
        "homes", help="after the workshop: archive every home, verify, restore, delete only what is archived"
    )
    homes.add_arguments(homes_parser)
    homes_parser.set_defaults(run=homes.run)

    final = commands.add_parser(
        "report", help="the final report: one printable page (HTML) and its day-by-day CSV"
    )
    report.add_arguments(final)
    final.set_defaults(run=report.run)

    rehearse = commands.add_parser(
        "loadtest", help="rehearse: simulated participants log in with the real cards, spawn, run code"
    )
    loadtest.add_arguments(rehearse)
    rehearse.set_defaults(run=loadtest.run)

    sizing = commands.add_parser("plan", help="users per node, nodes, node-hours and cost for an event")
    plan.add_arguments(sizing)
    sizing.set_defaults(run=plan.run)

    local = commands.add_parser("demo", help="run a local workshop hub on 127.0.0.1 (no cluster needed)")
    local.add_argument("--port", type=int, default=8000, help="port to listen on (a port in use is refused)")
    local.add_argument("--ip", default="127.0.0.1", help="address to listen on")
    local.add_argument(
        "--state-dir",
        type=Path,
        default=Path("workshop-demo"),
        help="where accounts, cards, the hub database and homes live",
    )
    local.set_defaults(run=demo.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return args.run(args)
    except (ValueError, OSError) as e:  # bad input files and values: a message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
