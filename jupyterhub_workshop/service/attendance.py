"""Attendance: how many login cards were issued, used at least once, never used and revoked,
per role (participant, instructor), from the accounts file and the hub's users.

Pure: the service reads the accounts file and lists the hub's users, these functions decide.

A card counts as used when the hub has a user of its name who has been active: the hub adds a
user at their first sign-in (the user model's ``created``, the first sign-in time here) and
records activity from the requests that follow it. A user the hub made without a sign-in (one
named in ``admin_users`` is made at hub start) has no activity until they sign in, so the card
is not counted as used before that; its first sign-in then shows as the time the hub made it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..login.accounts import ROLES, Account
from ..times import as_utc, parse_machine_time

CSV_COLUMNS = ("username", "role", "used", "first_sign_in", "revoked")
ALL = "all"


@dataclass(frozen=True)
class CardUse:
    """One card of the accounts file and what the hub knows of it."""

    username: str
    role: str
    revoked: bool
    used: bool
    first_sign_in: datetime | None  # None: never used (or the hub did not say when)


@dataclass(frozen=True)
class AttendanceRow:
    """The counts of one role, or of every card (role ``"all"``)."""

    role: str
    issued: int
    used: int
    never_used: int
    revoked: int
    first_sign_in: datetime | None  # the earliest first sign-in of the role's cards
    last_first_sign_in: datetime | None  # the latest: when the last of them arrived


def card_uses(accounts: Iterable[Account], hub_users: Iterable[Mapping]) -> list[CardUse]:
    """Each card of ``accounts`` (in the file's order) with its use, from the hub's user models
    (``name``, ``created``, ``last_activity``; other hub users are not cards and are left out)."""
    hub = {user.get("name"): user for user in hub_users}
    uses = []
    for account in accounts:
        user = hub.get(account.username)
        used = user is not None and bool(user.get("last_activity"))
        created = parse_machine_time(user.get("created")) if used else None
        uses.append(
            CardUse(
                username=account.username,
                role=account.role,
                revoked=account.revoked,
                used=used,
                first_sign_in=as_utc(created) if created else None,
            )
        )
    return uses


def _row(role: str, uses: Sequence[CardUse]) -> AttendanceRow:
    firsts = [u.first_sign_in for u in uses if u.first_sign_in is not None]
    used = sum(u.used for u in uses)
    return AttendanceRow(
        role=role,
        issued=len(uses),
        used=used,
        never_used=len(uses) - used,
        revoked=sum(u.revoked for u in uses),
        first_sign_in=min(firsts, default=None),
        last_first_sign_in=max(firsts, default=None),
    )


def attendance(uses: Sequence[CardUse]) -> list[AttendanceRow]:
    """A row per role (participant, instructor; a role with no cards still has its row of
    zeros) and one for every card, ``"all"``, last."""
    rows = [_row(role, [u for u in uses if u.role == role]) for role in ROLES]
    return [*rows, _row(ALL, uses)]


def _time(moment: datetime | None) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z") if moment else ""


def attendance_csv(uses: Sequence[CardUse]) -> str:
    """A line per card: ``username,role,used,first_sign_in,revoked`` (times ISO 8601 UTC with a
    ``Z``, as in ``usage.csv``; ``true``/``false``), in the accounts file's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for u in uses:
        writer.writerow(
            (u.username, u.role, str(u.used).lower(), _time(u.first_sign_in), str(u.revoked).lower())
        )
    return buffer.getvalue()
