"""The ``jupyterhub-workshop`` command: thin argument parsing around the package's modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def _time(text: str):
    from .accounts import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_batch_args(p: argparse.ArgumentParser, prefix_required: bool) -> None:
    p.add_argument("--count", type=int, default=0, help="participant accounts to create")
    p.add_argument("--prefix", required=prefix_required, default=None,
                   help="username prefix: participants are PREFIX001..., instructors PREFIXinstructor01...")
    p.add_argument("--instructors", type=int, default=0, help="instructor accounts to create (in addition to --count)")
    p.add_argument("--valid-from", type=_time, help="ISO 8601 time the cards start working, e.g. 2026-07-14T08:00:00-06:00")
    p.add_argument("--valid-until", type=_time, help="ISO 8601 time the cards stop working")
    p.add_argument("--title", default="", help="workshop title printed on the cards")
    p.add_argument("--hub-url", default="", help="hub URL printed on the cards")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupyterhub-workshop", description="Run a hands-on workshop on JupyterHub.")
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    creds = commands.add_parser("credentials", help="create and manage login cards")
    creds_commands = creds.add_subparsers(dest="action", required=True)

    gen = creds_commands.add_parser("generate", help="create accounts.yaml, cards.csv and cards.html")
    _add_batch_args(gen, prefix_required=True)
    gen.add_argument("--out", required=True, type=Path, help="directory to write into")
    gen.add_argument("--force", action="store_true", help="replace an existing accounts.yaml (all old cards stop working)")

    add = creds_commands.add_parser("add", help="append accounts for late attendees; existing accounts are unchanged")
    _add_batch_args(add, prefix_required=True)
    add.add_argument("--out", required=True, type=Path, help="directory holding accounts.yaml (and cards.csv)")

    rev = creds_commands.add_parser("revoke", help="revoke accounts (e.g. a lost card)")
    rev.add_argument("--accounts", required=True, type=Path, help="the accounts.yaml file")
    rev.add_argument("usernames", nargs="+", help="usernames to revoke")

    check = creds_commands.add_parser("check", help="validate an accounts file; exit 1 naming every bad line")
    check.add_argument("file", type=Path)

    service = commands.add_parser(
        "service", add_help=False,
        help="run the workshop hub service (culling, usage, admin page); --help-all lists its options")
    service.add_argument("service_args", nargs=argparse.REMAINDER)

    commands.add_parser("loadtest", add_help=False,
                        help="rehearse: simulated participants log in with the real cards, spawn, run code")
    commands.add_parser("plan", add_help=False, help="users per node, nodes, node-hours and cost for an event")

    usage = commands.add_parser("usage", help="usage records of the workshop service")
    usage_commands = usage.add_subparsers(dest="action", required=True)
    export = usage_commands.add_parser("export", help="write recorded sessions as CSV or JSON")
    export.add_argument("--db", required=True, help="SQLAlchemy URL of the service database, e.g. sqlite:///workshop-usage.sqlite")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--start", type=_time, help="only sessions overlapping from this ISO 8601 time")
    export.add_argument("--end", type=_time, help="... until this ISO 8601 time")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")

    demo = commands.add_parser("demo", help="run a local workshop hub on 127.0.0.1 (no cluster needed)")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--ip", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--state-dir", default="workshop-demo", help="where accounts, cards, the hub database and homes live")
    return parser


def _credentials(args) -> int:
    from .accounts import load_accounts, revoke, save_accounts
    from .credentials import Batch, add, generate
    from .progress import Progress

    if args.action == "check":
        book = load_accounts(args.file)
        print(f"{args.file}: OK, {book.summary()}")
        return 0
    if args.action == "revoke":
        book = load_accounts(args.accounts)
        try:
            accounts = revoke(book, args.usernames)
        except KeyError as e:
            print(f"error: no such account: {e.args[0]}", file=sys.stderr)
            return 1
        save_accounts(args.accounts, accounts)
        print(f"Revoked {', '.join(args.usernames)} in {args.accounts}; the hub stops accepting them within seconds.")
        return 0

    batch = Batch(args.prefix, args.count, args.instructors, args.valid_from, args.valid_until)
    batch.check()
    progress = Progress(args.count + args.instructors, "Hashing passwords")
    if args.action == "generate":
        cards = generate(args.out, batch, args.title, args.hub_url, args.force, progress)
        print(f"Wrote {len(cards)} accounts to {args.out / 'accounts.yaml'} (hashes only, for the hub)")
        print(f"Cards: {args.out / 'cards.html'} to print, {args.out / 'cards.csv'} for your records (keep private)")
    else:
        cards, html = add(args.out, batch, args.title, args.hub_url, progress)
        print(f"Added {len(cards)} accounts to {args.out / 'accounts.yaml'}; print {html}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["service"]:
        # the service is a traitlets Application: its options (and --help-all) are its own
        from .service.app import main as service_main

        service_main(argv[1:])
        return 0
    if argv[:1] in (["loadtest"], ["plan"]):
        # rehearsal tools parse their own options
        from importlib import import_module

        return import_module(f".{argv[0]}", __package__).main(argv[1:])
    args = build_parser().parse_args(argv)
    from .accounts import AccountsFileError

    try:
        if args.command == "credentials":
            return _credentials(args)
        if args.command == "usage":
            from .service.usage import export

            out = open(args.out, "w", newline="") if args.out else sys.stdout
            try:
                count = export(args.db, args.format, out, args.start, args.end)
            finally:
                if args.out:
                    out.close()
            print(f"{count} sessions", file=sys.stderr)
            return 0
        if args.command == "demo":
            from . import demo

            demo.run(args.state_dir, args.ip, args.port)
            return 0
    except AccountsFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
