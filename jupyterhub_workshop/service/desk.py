"""The card desk: reissue, revoke, restore and add login cards from the admin page.

Decisions are plain functions (who may do what to which card, whether a request is sane,
whether a staff member is within their rate); :class:`Desk` is the thin IO around them: it
reads the organizer's accounts file and the desk file, writes the desk file (atomically), and
returns the new cards, whose passwords exist only in the answer to the request that made them.

The desk never writes the organizer's accounts file: its changes live in the desk file, which
the authenticator merges over the accounts file (:mod:`jupyterhub_workshop.login.overlay`).
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ..login import overlay
from ..login.accounts import Account, AccountBook, load_accounts, save_accounts
from ..login.issuing import Batch, issue
from ..login.passwords import generate_password, hash_password
from ..login.printing import Card

ACTIONS = ("reissue", "revoke", "restore", "add")
MAX_LATE_CARDS = 100  # one desk action: 100 hashes take a few seconds on one core


class DeskRefusal(Exception):
    """A desk request that is refused, with the sentence to show (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Staff:
    """Who is at the desk, as the hub says."""

    name: str
    admin: bool
    groups: frozenset[str]


def desk_role(staff: Staff, desk_groups: Iterable[str]) -> str | None:
    """``"admin"`` (every card), ``"desk"`` (participant cards only) or None (no desk)."""
    if staff.admin:
        return "admin"
    if staff.groups & set(desk_groups):
        return "desk"
    return None


def may_act(staff: Staff, desk_groups: Iterable[str], card: Account | None, action: str) -> str | None:
    """Why ``staff`` may not do ``action`` to ``card``, or None if they may. Instructor cards
    are hub admins: reissuing one hands over an admin account, so only hub admins may."""
    if action not in ACTIONS:
        return f"Unknown action {action!r}."
    role = desk_role(staff, desk_groups)
    if role is None:
        return "Only hub admins and the card desk's groups may use the card desk."
    if action == "add":
        return None
    if card is None:
        return "No card has that username."
    if card.is_instructor and role != "admin":
        return f"{card.username} is an instructor's card: only a hub admin may change it."
    return None


def check_change(
    file_book: AccountBook, desk_book: AccountBook, username: str, action: str, now: datetime
) -> str | None:
    """Why ``action`` on ``username`` makes no sense now (nothing to restore, say), or None."""
    merged = overlay.merge(file_book, desk_book)
    card = merged.get(username)
    if card is None:
        return f"No card has the username {username!r}."
    in_file = file_book.get(username)
    if action == "revoke" and card.revoked:
        return f"{username} is already revoked."
    if action in ("restore", "reissue") and in_file is not None and in_file.revoked:
        return (
            f"{username} is revoked in the organizer's accounts file; only the organizer can bring "
            "it back (`credentials restore`), the desk does not undo their revocation."
        )
    if action == "restore" and not card.revoked:
        return f"{username} is not revoked."
    return None


def late_batch(book: AccountBook, how_many: int, valid_until: datetime | None, now: datetime) -> Batch:
    """N participant cards like the first ones: their prefix followed by ``late`` (``ws`` gives
    ``wslate001``...: the organizer's next ``credentials add`` numbers ``ws`` cards and never
    makes one of the desk's names), their shared window (or a new end), numbered after the
    highest; DeskRefusal saying what is wrong."""
    if how_many < 1:
        raise DeskRefusal("Give a number of late cards: at least 1.")
    if how_many > MAX_LATE_CARDS:
        raise DeskRefusal(f"At most {MAX_LATE_CARDS} late cards at a time.")
    participants = [a for a in book.values() if not a.is_instructor]
    stems = collections.Counter(re.sub(r"\d+$", "", a.username) for a in participants)
    if not stems:
        raise DeskRefusal("There are no participant cards to follow; generate cards with the CLI first.")
    prefix = stems.most_common(1)[0][0] + "late"
    windows = collections.Counter((a.valid_from, a.valid_until) for a in participants)
    valid_from, shared_until = windows.most_common(1)[0][0]
    valid_until = valid_until or shared_until
    if valid_until is not None and valid_until <= now:
        raise DeskRefusal(f"The cards' window ends in the past ({valid_until.isoformat(' ', 'minutes')}).")
    if valid_from and valid_until and valid_until <= valid_from:
        raise DeskRefusal("The window must end after it starts.")
    return Batch(prefix, how_many, 0, valid_from, valid_until)


class RateLimit:
    """At most ``per_minute`` desk actions per staff member in any 60 s (clock injected)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._times: dict[str, collections.deque] = {}

    def retry_after(self, who: str) -> float:
        """Seconds until ``who`` may act again; 0 if now."""
        times = self._times.setdefault(who, collections.deque())
        now = self.clock()
        while times and times[0] <= now - 60:
            times.popleft()
        return 0.0 if len(times) < self.per_minute else times[0] + 60 - now

    def record(self, who: str) -> None:
        self._times.setdefault(who, collections.deque()).append(self.clock())


class Confirmations:
    """One-time confirmation tokens: a desk action runs only with the token from its
    confirmation page, once (a double submit finds it used). Tokens expire."""

    def __init__(self, ttl: float = 600, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, tuple[float, str, tuple]] = {}

    def issue(self, who: str, request: tuple) -> str:
        now = self.clock()
        for token in [t for t, (at, _, _) in self._pending.items() if at < now - self.ttl]:
            del self._pending[token]
        token = secrets.token_urlsafe(24)
        self._pending[token] = (now, who, request)
        return token

    def take(self, token: str, who: str, request: tuple) -> bool:
        """Whether ``token`` confirms ``request`` by ``who``; it is used up either way."""
        for known in list(self._pending):
            if secrets.compare_digest(known, token):
                at, owner, wanted = self._pending.pop(known)
                return owner == who and wanted == request and at >= self.clock() - self.ttl
        return False


@dataclass
class Outcome:
    """What a desk action did: the cards it touched and any new cards (passwords shown once)."""

    cards: list[str]
    new_cards: list[Card]
    detail: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class Desk:
    """The files behind the desk: the organizer's accounts file (read) and the desk file (written)."""

    def __init__(self, accounts_file: str, desk_file: str):
        self.accounts_file = accounts_file
        self.desk_file = desk_file
        self.lock = asyncio.Lock()

    def books(self) -> tuple[AccountBook, AccountBook]:
        file_book = load_accounts(self.accounts_file)
        desk_book = load_accounts(self.desk_file) if os.path.exists(self.desk_file) else AccountBook()
        return file_book, desk_book

    def merged(self) -> AccountBook:
        return overlay.merge(*self.books())

    def _save(self, file_book: AccountBook, desk_book: AccountBook, records: list[Account]) -> None:
        save_accounts(
            self.desk_file, overlay.with_changes(desk_book, records), file_book.title, file_book.hub_url
        )

    def apply(
        self, action: str, username: str, how_many: int, valid_until: datetime | None, now: datetime
    ) -> Outcome:
        """Do one desk action (blocking: hashing and file IO; run it off the event loop)."""
        file_book, desk_book = self.books()
        merged = overlay.merge(file_book, desk_book)
        if action == "add":
            batch = late_batch(merged, how_many, valid_until, now)
            accounts, cards = issue(batch, merged, workers=1)
            self._save(file_book, desk_book, accounts)
            return Outcome(
                [a.username for a in accounts],
                cards,
                f"{len(accounts)} late cards",
                batch.valid_from,
                batch.valid_until,
            )
        why = check_change(file_book, desk_book, username, action, now)
        if why:
            raise DeskRefusal(why, 409)
        card = merged[username]
        if action == "reissue":
            password = generate_password()
            record = replace(card, password_hash=hash_password(password), revoked=False)
            self._save(file_book, desk_book, [record])
            return Outcome(
                [username],
                [Card(username, password, card.role)],
                "new password",
                card.valid_from,
                card.valid_until,
            )
        record = replace(card, revoked=action == "revoke")
        self._save(file_book, desk_book, [record])
        return Outcome([username], [], "")
