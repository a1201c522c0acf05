"""Attendance from the accounts file and the hub's user models, without a hub."""

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

from jupyterhub_workshop.login.accounts import Account
from jupyterhub_workshop.service.attendance import attendance, attendance_csv, card_uses

T0 = datetime(2026, 7, 14, 15, 0, tzinfo=UTC)


def account(name: str, role: str = "participant", revoked: bool = False) -> Account:
    return Account(name, "$argon2id$not-checked-here", role=role, revoked=revoked)


def hub_user(name: str, created: datetime, active: bool = True, admin: bool = False) -> dict:
    return {
        "kind": "user",
        "name": name,
        "admin": admin,
        "created": created.isoformat().replace("+00:00", "Z"),
        "last_activity": (created + timedelta(minutes=1)).isoformat() if active else None,
        "servers": {},
    }


ACCOUNTS = [
    account("p01"),
    account("p02"),
    account("p03", revoked=True),  # lost card, revoked after its holder had signed in
    account("p04", revoked=True),  # revoked before anyone used it
    account("p05"),
    account("i01", role="instructor"),
    account("i02", role="instructor"),
]
HUB_USERS = [
    hub_user("p02", T0 + timedelta(minutes=12)),
    hub_user("p01", T0 + timedelta(minutes=3)),
    hub_user("p03", T0 + timedelta(minutes=40)),
    hub_user("i01", T0 - timedelta(hours=1)),
    # made at hub start (admin_users), never signed in
    hub_user("p05", T0 - timedelta(days=1), active=False, admin=True),
    # signed in, never had a server nor came back to the hub: a sign-in all the same
    hub_user("i02", T0 + timedelta(minutes=5), active=False),
    hub_user("organizer", T0 - timedelta(days=2)),  # a hub user without a card
]


def test_each_card_signed_in_or_not_with_its_first_sign_in():
    uses = {u.username: u for u in card_uses(ACCOUNTS, HUB_USERS)}
    assert list(uses) == ["p01", "p02", "p03", "p04", "p05", "i01", "i02"]  # the file's order, cards only
    assert uses["p01"].signed_in and uses["p01"].first_sign_in == T0 + timedelta(minutes=3)
    assert uses["p03"].signed_in and uses["p03"].revoked
    assert not uses["p04"].signed_in and uses["p04"].first_sign_in is None and uses["p04"].revoked
    assert not uses["p05"].signed_in and uses["p05"].first_sign_in is None  # an admin the hub made
    assert uses["i02"].signed_in and uses["i02"].first_sign_in == T0 + timedelta(minutes=5)  # sign-in is use


def test_an_admin_named_in_the_config_signed_in_once_active():
    made = hub_user("p01", T0 - timedelta(days=1), active=False, admin=True)
    [use] = card_uses([account("p01")], [made])
    assert not use.signed_in
    [use] = card_uses([account("p01")], [{**made, "last_activity": T0.isoformat()}])
    assert use.signed_in and use.first_sign_in == T0 - timedelta(days=1)  # when the hub made it


def test_counts_per_role_and_in_all():
    rows = {r.role: r for r in attendance(card_uses(ACCOUNTS, HUB_USERS))}
    assert list(rows) == ["participant", "instructor", "all"]
    p, i, everyone = rows["participant"], rows["instructor"], rows["all"]
    assert (p.issued, p.signed_in, p.never_signed_in, p.revoked) == (5, 3, 2, 2)
    assert (p.first_sign_in, p.last_first_sign_in) == (T0 + timedelta(minutes=3), T0 + timedelta(minutes=40))
    assert (i.issued, i.signed_in, i.never_signed_in, i.revoked) == (2, 2, 0, 0)
    assert (everyone.issued, everyone.signed_in, everyone.never_signed_in, everyone.revoked) == (7, 5, 2, 2)
    assert everyone.first_sign_in == T0 - timedelta(hours=1)


def test_no_cards_or_no_hub_users():
    assert [
        (r.role, r.issued, r.signed_in, r.first_sign_in) for r in attendance(card_uses([], HUB_USERS))
    ] == [
        ("participant", 0, 0, None),
        ("instructor", 0, 0, None),
        ("all", 0, 0, None),
    ]
    rows = attendance(card_uses(ACCOUNTS, []))
    assert [(r.issued, r.signed_in, r.never_signed_in) for r in rows] == [(5, 0, 5), (2, 0, 2), (7, 0, 7)]


def test_first_sign_in_from_any_offset_is_utc():
    denver = timezone(timedelta(hours=-6))
    user = {"name": "p01", "created": "2026-07-14T09:00:00-06:00", "last_activity": "2026-07-14T09:01:00Z"}
    [use] = card_uses([account("p01")], [user])
    assert use.first_sign_in == datetime(2026, 7, 14, 9, tzinfo=denver) and use.first_sign_in.tzinfo is UTC


def test_csv_has_a_line_per_card():
    text = attendance_csv(card_uses(ACCOUNTS, HUB_USERS))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["username", "role", "signed_in", "first_sign_in", "revoked"]
    assert rows[1] == ["p01", "participant", "true", "2026-07-14T15:03:00Z", "false"]
    assert rows[3] == ["p03", "participant", "true", "2026-07-14T15:40:00Z", "true"]
    assert rows[4] == ["p04", "participant", "false", "", "true"]
    assert rows[5] == ["p05", "participant", "false", "", "false"]
    assert rows[7] == ["i02", "instructor", "true", "2026-07-14T15:05:00Z", "false"]
    assert len(rows) == 1 + len(ACCOUNTS)
