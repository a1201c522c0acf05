"""Attendance: how many login cards were issued, signed in at least once, never signed in and
revoked, per role (participant, instructor), from the accounts file and the hub's users.

Pure: the service reads the accounts file and lists the hub's users, these functions decide.

Signing in is using a card, whether or not a server followed: the hub adds a user at their
first sign-in (the user model's ``created``, the first sign-in time here), so a card whose name
the hub has signed in. The one user the hub makes without a sign-in is an admin named in
``admin_users`` (made at hub start): an admin the hub has never seen active has not signed in.
Such a user's first sign-in then shows as the time the hub made it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..login.accounts import ROLES, Account
from ..times import as_utc, format_machine_time, parse_machine_time

CSV_COLUMNS = ("username", "role", "signed_in", "first_sign_in", "revoked")
ALL = "all"


@dataclass(frozen=True)
class CardUse:
    """One card of the accounts file and what the hub knows of it."""

    username: str
    role: str
    revoked: bool
    signed_in: bool  # at least once
    first_sign_in: datetime | None  # None: never signed in (or the hub did not say when)


@dataclass(frozen=True)
class AttendanceRow:
    """The counts of one role, or of every card (role ``"all"``)."""

    role: str
    issued: int
    signed_in: int  # at least once
    never_signed_in: int
    revoked: int
    first_sign_in: datetime | None  # the earliest first sign-in of the role's cards
    last_first_sign_in: datetime | None  # the latest: when the last of them arrived


def signed_in(user: Mapping | None) -> bool:
    """Whether a hub user model (``admin``, ``last_activity``) stands for a sign-in: every user
    the hub has, except an admin it made at its start (``admin_users``) and never saw active."""
    if user is None:
        return False
    return bool(user.get("last_activity")) or not user.get("admin")


def card_uses(accounts: Iterable[Account], hub_users: Iterable[Mapping]) -> list[CardUse]:
    """Each card of ``accounts`` (in the file's order) with its sign-in, from the hub's user
    models (``name``, ``admin``, ``created``, ``last_activity``; other hub users are not cards
    and are left out)."""
    hub = {user.get("name"): user for user in hub_users}
    uses = []
    for account in accounts:
        user = hub.get(account.username)
        came = signed_in(user)
        created = parse_machine_time(user.get("created")) if came else None
        uses.append(
            CardUse(
                username=account.username,
                role=account.role,
                revoked=account.revoked,
                signed_in=came,
                first_sign_in=as_utc(created) if created else None,
            )
        )
    return uses


def _row(role: str, uses: Sequence[CardUse]) -> AttendanceRow:
    firsts = [u.first_sign_in for u in uses if u.first_sign_in is not None]
    came = sum(u.signed_in for u in uses)
    return AttendanceRow(
        role=role,
        issued=len(uses),
        signed_in=came,
        never_signed_in=len(uses) - came,
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
    return format_machine_time(moment) if moment else ""


def attendance_csv(uses: Sequence[CardUse]) -> str:
    """A line per card: ``username,role,signed_in,first_sign_in,revoked`` (times ISO 8601 UTC with a
    ``Z``, as in ``usage.csv``; ``true``/``false``), in the accounts file's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for u in uses:
        writer.writerow(
            (u.username, u.role, str(u.signed_in).lower(), _time(u.first_sign_in), str(u.revoked).lower())
        )
    return buffer.getvalue()
