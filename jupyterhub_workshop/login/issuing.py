"""Issuing login cards: new workshop accounts with fresh passwords, written as a set.

``generate`` creates a directory's accounts and cards; ``add`` appends late attendees without
touching existing accounts. Cards are written before accounts, so a failure part-way never
leaves the hub with accounts whose passwords nobody has. ``revoke`` and ``restore`` flip one
flag of existing accounts and nothing else.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import write_atomically
from ..wording import count
from .accounts import Account, AccountBook, load_accounts, save_accounts, username_problem
from .passwords import generate_password, hash_many
from .printing import Card, cards_csv, cards_html, read_cards_csv

if TYPE_CHECKING:
    from ..progress import Progress

ACCOUNTS_NAME = "accounts.yaml"
CARDS_CSV_NAME = "cards.csv"
CARDS_HTML_NAME = "cards.html"
# cards hold plaintext passwords: a directory of them is easy to commit by mistake
GITIGNORE = """\
# Written by `jupyterhub-workshop credentials`: the cards hold plaintext passwords.
cards.csv
cards*.html
"""


@dataclass(frozen=True)
class Batch:
    """What to issue: counts, naming and validity window."""

    prefix: str
    participants: int = 0
    instructors: int = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def check(self) -> None:
        if self.participants < 0 or self.instructors < 0:
            raise ValueError("counts must not be negative")
        if self.participants + self.instructors == 0:
            raise ValueError("nothing to issue: give --count and/or --instructors")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("--valid-until must be later than --valid-from")


def _next_number(existing: AccountBook, stem: str) -> int:
    pattern = re.compile(re.escape(stem) + r"(\d+)$")
    numbers = [int(m.group(1)) for name in existing if (m := pattern.match(name))]
    return max(numbers, default=0) + 1


def new_usernames(existing: AccountBook, stem: str, how_many: int, width: int) -> list[str]:
    """``how_many`` names ``stem`` + number, numbered after the highest existing one."""
    start = _next_number(existing, stem)
    names = [f"{stem}{n:0{width}d}" for n in range(start, start + how_many)]
    for name in names:
        if (why := username_problem(name)) is not None:
            raise ValueError(f"prefix {stem!r} gives invalid usernames: {why}")
        if name in existing:
            raise ValueError(f"username {name} already exists")
    return names


def issue(
    batch: Batch,
    existing: AccountBook = AccountBook(),
    workers: int | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> tuple[list[Account], list[Card]]:
    """New accounts and their cards. Participants are PREFIX001..., instructors PREFIXinstructor01...

    ``progress(n)`` opens a display for the ``n`` password hashes (e.g. a ``Progress``).
    """
    batch.check()
    width = max(3, len(str(batch.participants)))
    plan = [
        (name, "participant") for name in new_usernames(existing, batch.prefix, batch.participants, width)
    ]
    plan += [
        (name, "instructor")
        for name in new_usernames(existing, f"{batch.prefix}instructor", batch.instructors, 2)
    ]
    passwords = [generate_password() for _ in plan]
    workers = workers or os.cpu_count() or 1
    if progress is None:
        hashes = hash_many(passwords, workers)
    else:
        with progress(len(passwords)) as bar:  # shown only while hashing: not before a refusal
            hashes = hash_many(passwords, workers, bar.update)
    accounts = [
        Account(name, digest, role, batch.valid_from, batch.valid_until)
        for (name, role), digest in zip(plan, hashes)
    ]
    cards = [Card(name, password, role) for (name, role), password in zip(plan, passwords)]
    return accounts, cards


def generate(
    out: Path,
    batch: Batch,
    title: str = "",
    hub_url: str = "",
    force: bool = False,
    progress: Callable[[int], Progress] | None = None,
) -> list[Card]:
    """Create ``out/accounts.yaml``, ``out/cards.csv`` and ``out/cards.html``."""
    out = Path(out)
    if (out / ACCOUNTS_NAME).exists() and not force:
        raise FileExistsError(
            f"{out / ACCOUNTS_NAME} already exists; use `credentials add` for more accounts "
            "or --force to replace every account"
        )
    out.mkdir(parents=True, exist_ok=True)
    accounts, cards = issue(batch, progress=progress)
    keep_out_of_git(out)
    write_atomically(out / CARDS_CSV_NAME, cards_csv(cards))
    write_atomically(
        out / CARDS_HTML_NAME, cards_html(cards, title, hub_url, batch.valid_from, batch.valid_until)
    )
    save_accounts(out / ACCOUNTS_NAME, accounts, title, hub_url)
    return cards


def add(
    out: Path,
    batch: Batch,
    title: str = "",
    hub_url: str = "",
    progress: Callable[[int], Progress] | None = None,
) -> tuple[list[Card], Path]:
    """Append accounts for late attendees; returns their cards and the HTML file to print.

    Existing accounts are kept byte for byte in meaning; if no window is given, the new
    accounts take the window all existing accounts share (if they share one), and without a
    title or hub URL the cards print those given when the cards were generated.
    """
    out = Path(out)
    existing = load_accounts(out / ACCOUNTS_NAME)
    title, hub_url = title or existing.title, hub_url or existing.hub_url
    if batch.valid_from is None and batch.valid_until is None:
        windows = {(a.valid_from, a.valid_until) for a in existing.values()}
        if len(windows) == 1:
            valid_from, valid_until = windows.pop()
            batch = Batch(batch.prefix, batch.participants, batch.instructors, valid_from, valid_until)
    accounts, cards = issue(batch, existing, progress=progress)

    csv_path = out / CARDS_CSV_NAME
    all_cards = (read_cards_csv(csv_path) if csv_path.exists() else []) + cards
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    added_html = out / f"cards-added-{stamp}.html"
    keep_out_of_git(out)
    write_atomically(csv_path, cards_csv(all_cards))
    write_atomically(added_html, cards_html(cards, title, hub_url, batch.valid_from, batch.valid_until))
    save_accounts(out / ACCOUNTS_NAME, list(existing.values()) + accounts, title, hub_url)
    return cards, added_html


def show_merged(accounts_file: Path, desk_file: Path, export: Path | None) -> int:
    """Print what the card desk changed over ``accounts_file``; write the merged book to
    ``export`` if given."""
    from . import overlay

    book = load_accounts(accounts_file)
    desk = load_accounts(desk_file) if Path(desk_file).exists() else AccountBook()
    merged = overlay.merge(book, desk)
    print(f"As the hub sees them: {merged.summary()}")
    for name, account in merged.items():
        before = book.get(name)
        if before is None:
            change = "added at the desk"
        elif account.password_hash != before.password_hash:
            change = "reissued at the desk (new password)"
        elif account.revoked and not before.revoked:
            change = "revoked at the desk"
        else:
            continue
        print(f"  {name}: {change}{' (revoked)' if account.revoked and 'revoked' not in change else ''}")
    if export:
        save_accounts(export, merged.values(), merged.title, merged.hub_url)
        print(f"Wrote the merged accounts to {export}")
    return 0


def keep_out_of_git(out: Path) -> None:
    """A ``.gitignore`` for the cards in ``out``, unless one is there already (then a warning if
    it does not mention them)."""
    ignore = out / ".gitignore"
    if not ignore.exists():
        write_atomically(ignore, GITIGNORE, mode=0o644)
    elif CARDS_CSV_NAME not in ignore.read_text(encoding="utf-8", errors="replace"):
        print(
            f"warning: {ignore} does not ignore {CARDS_CSV_NAME}; the cards hold plaintext passwords: "
            "do not commit them",
            file=sys.stderr,
        )


def revoke_or_restore(action: str, path: Path, usernames: list[str]) -> int:
    """``credentials revoke|restore``: write the change (if any) and say what happened to each
    name; a card revoked already is said so, not revoked again."""
    from ..times import now_utc
    from .accounts import restore, revoke

    book = load_accounts(path)
    names = list(dict.fromkeys(usernames))  # each once, in the order given
    if action == "restore":
        save_accounts(path, restore(book, names, now_utc()), book.title, book.hub_url)
        cards = "its card signs" if len(names) == 1 else "their cards sign"
        print(f"Restored {', '.join(names)} in {path}: {cards} in again within seconds, same password.")
        return 0
    accounts = revoke(book, names)  # first: an unknown name changes nothing
    already = [n for n in names if book[n].revoked]
    fresh = [n for n in names if n not in already]
    if fresh:
        save_accounts(path, accounts, book.title, book.hub_url)
        print(f"Revoked {', '.join(fresh)} in {path}; the hub stops accepting them within seconds.")
    if already:
        were = "was" if len(already) == 1 else "were"
        print(
            f"{', '.join(already)} {were} already revoked (undo with `credentials restore`); "
            + ("left as is." if fresh else "nothing changed.")
        )
    return 0


# --- command line: `jupyterhub-workshop credentials ...` ----------------------------------


def add_arguments(parser, typed_time) -> None:
    """The ``credentials`` subcommands; ``typed_time`` parses --valid-from/--valid-until."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def batch_args(p):
        p.add_argument("--count", type=int, default=0, help="participant accounts to create")
        p.add_argument(
            "--prefix",
            required=True,
            help="username prefix: participants are PREFIX001..., instructors PREFIXinstructor01...",
        )
        p.add_argument(
            "--instructors",
            type=int,
            default=0,
            help="instructor accounts to create (in addition to --count)",
        )
        p.add_argument(
            "--valid-from",
            type=typed_time,
            help="ISO 8601 time the cards start working, e.g. 2026-07-14T08:00:00-06:00",
        )
        p.add_argument("--valid-until", type=typed_time, help="ISO 8601 time the cards stop working")
        p.add_argument(
            "--title",
            default="",
            help="workshop title printed on the cards (add: default, the one given to generate)",
        )
        p.add_argument(
            "--hub-url",
            default="",
            help="hub URL printed on the cards (add: default, the one given to generate)",
        )

    gen = actions.add_parser("generate", help="create accounts.yaml, cards.csv and cards.html")
    batch_args(gen)
    gen.add_argument("--out", required=True, type=Path, help="directory to write into")
    gen.add_argument(
        "--force", action="store_true", help="replace an existing accounts.yaml (all old cards stop working)"
    )

    more = actions.add_parser(
        "add", help="append accounts for late attendees; existing accounts are unchanged"
    )
    batch_args(more)
    more.add_argument(
        "--out", required=True, type=Path, help="directory holding accounts.yaml (and cards.csv)"
    )

    rev = actions.add_parser("revoke", help="revoke accounts (e.g. a lost card)")
    rev.add_argument("--accounts", required=True, type=Path, help="the accounts.yaml file")
    rev.add_argument("usernames", nargs="+", help="usernames to revoke")

    back = actions.add_parser("restore", help="undo a revoke: the same card (same password) signs in again")
    back.add_argument("--accounts", required=True, type=Path, help="the accounts.yaml file")
    back.add_argument("usernames", nargs="+", help="revoked usernames to restore")

    show = actions.add_parser(
        "show",
        help="the accounts as the hub sees them: the accounts file with the card desk's changes merged over it",
    )
    show.add_argument("--accounts", required=True, type=Path, help="the organizer's accounts.yaml file")
    show.add_argument(
        "--hub",
        required=True,
        type=Path,
        metavar="DESK_FILE",
        help="the hub's card desk file (WorkshopAuthenticator.desk_file, e.g. copied from the hub's volume)",
    )
    show.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the merged accounts to FILE (an accounts file: use it as your copy from now on)",
    )

    check = actions.add_parser("check", help="validate an accounts file; exit 1 naming every bad line")
    check.add_argument("file", type=Path, help="the accounts.yaml file to check")


def run(args) -> int:
    from ..progress import Progress

    if args.action == "check":
        book = load_accounts(args.file)
        print(f"{args.file}: OK, {book.summary()}")
        return 0
    if args.action == "show":
        return show_merged(args.accounts, args.hub, args.export)
    if args.action in ("revoke", "restore"):
        try:
            return revoke_or_restore(args.action, args.accounts, args.usernames)
        except KeyError as e:
            print(f"error: no such account: {e.args[0]}", file=sys.stderr)
            return 1

    batch = Batch(args.prefix, args.count, args.instructors, args.valid_from, args.valid_until)
    batch.check()
    progress = functools.partial(Progress, desc="Hashing passwords")
    if args.action == "generate":
        cards = generate(args.out, batch, args.title, args.hub_url, args.force, progress)
        print(
            f"Wrote {count(len(cards), 'account')} to {args.out / ACCOUNTS_NAME} (hashes only, for the hub)"
        )
        print(
            f"Cards: {args.out / CARDS_HTML_NAME} to print, {args.out / CARDS_CSV_NAME} for your records (keep private)"
        )
    else:
        cards, html = add(args.out, batch, args.title, args.hub_url, progress)
        print(f"Added {count(len(cards), 'account')} to {args.out / ACCOUNTS_NAME}; print {html}")
    return 0
