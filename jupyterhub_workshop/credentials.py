"""Issuing login cards: new workshop accounts with fresh passwords, written as a set.

``generate`` creates a directory's accounts and cards; ``add`` appends late attendees without
touching existing accounts. Cards are written before accounts, so a failure part-way never
leaves the hub with accounts whose passwords nobody has.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .accounts import (
    Account,
    AccountBook,
    load_accounts,
    save_accounts,
    username_problem,
    write_atomically,
)
from .cards import Card, cards_csv, cards_html, read_cards_csv
from .passwords import generate_password, hash_many

ACCOUNTS_NAME = "accounts.yaml"
CARDS_CSV_NAME = "cards.csv"
CARDS_HTML_NAME = "cards.html"


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


def new_usernames(existing: AccountBook, stem: str, count: int, width: int) -> list[str]:
    """``count`` names ``stem`` + number, numbered after the highest existing one."""
    start = _next_number(existing, stem)
    names = [f"{stem}{n:0{width}d}" for n in range(start, start + count)]
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
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Account], list[Card]]:
    """New accounts and their cards. Participants are PREFIX001..., instructors PREFIXinstructor01..."""
    batch.check()
    width = max(3, len(str(batch.participants)))
    plan = [(name, "participant") for name in new_usernames(existing, batch.prefix, batch.participants, width)]
    plan += [
        (name, "instructor")
        for name in new_usernames(existing, f"{batch.prefix}instructor", batch.instructors, 2)
    ]
    passwords = [generate_password() for _ in plan]
    hashes = hash_many(passwords, workers or os.cpu_count() or 1, progress)
    accounts = [
        Account(name, digest, role, batch.valid_from, batch.valid_until)
        for (name, role), digest in zip(plan, hashes)
    ]
    cards = [Card(name, password, role) for (name, role), password in zip(plan, passwords)]
    return accounts, cards


def generate(out: Path, batch: Batch, title: str = "", hub_url: str = "", force: bool = False,
             progress: Callable[[int], None] | None = None) -> list[Card]:
    """Create ``out/accounts.yaml``, ``out/cards.csv`` and ``out/cards.html``."""
    out = Path(out)
    if (out / ACCOUNTS_NAME).exists() and not force:
        raise FileExistsError(
            f"{out / ACCOUNTS_NAME} already exists; use `credentials add` for more accounts "
            "or --force to replace every account"
        )
    out.mkdir(parents=True, exist_ok=True)
    accounts, cards = issue(batch, progress=progress)
    write_atomically(out / CARDS_CSV_NAME, cards_csv(cards))
    write_atomically(out / CARDS_HTML_NAME, cards_html(cards, title=title, hub_url=hub_url))
    save_accounts(out / ACCOUNTS_NAME, accounts)
    return cards


def add(out: Path, batch: Batch, title: str = "", hub_url: str = "",
        progress: Callable[[int], None] | None = None) -> tuple[list[Card], Path]:
    """Append accounts for late attendees; returns their cards and the HTML file to print.

    Existing accounts are kept byte for byte in meaning; if no window is given, the new
    accounts take the window all existing accounts share (if they share one).
    """
    out = Path(out)
    existing = load_accounts(out / ACCOUNTS_NAME)
    if batch.valid_from is None and batch.valid_until is None:
        windows = {(a.valid_from, a.valid_until) for a in existing.values()}
        if len(windows) == 1:
            valid_from, valid_until = windows.pop()
            batch = Batch(batch.prefix, batch.participants, batch.instructors, valid_from, valid_until)
    accounts, cards = issue(batch, existing, progress=progress)

    csv_path = out / CARDS_CSV_NAME
    all_cards = (read_cards_csv(csv_path) if csv_path.exists() else []) + cards
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    added_html = out / f"cards-added-{stamp}.html"
    write_atomically(csv_path, cards_csv(all_cards))
    write_atomically(added_html, cards_html(cards, title=title, hub_url=hub_url))
    save_accounts(out / ACCOUNTS_NAME, list(existing.values()) + accounts)
    return cards, added_html
