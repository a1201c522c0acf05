from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.login.accounts import Account, AccountBook
from jupyterhub_workshop.service.desk import (
    Confirmations,
    DeskRefusal,
    RateLimit,
    Staff,
    check_change,
    late_batch,
    may_act,
)
from jupyterhub_workshop.service.store import UsageStore

NOW = datetime(2026, 7, 14, 9, tzinfo=UTC)
ADMIN = Staff("boss", True, frozenset())
DESK = Staff("helper", False, frozenset({"instructors"}))
NOBODY = Staff("ws001", False, frozenset({"other"}))
PARTICIPANT = Account("ws001", "$argon2id$x")
INSTRUCTOR = Account("wsinstructor01", "$argon2id$x", role="instructor")


def test_admins_may_change_every_card_the_desk_group_participant_cards_only():
    groups = ["instructors"]
    assert may_act(ADMIN, groups, INSTRUCTOR, "reissue") is None
    assert may_act(DESK, groups, PARTICIPANT, "reissue") is None
    assert may_act(DESK, groups, None, "add") is None
    assert "only a hub admin" in may_act(DESK, groups, INSTRUCTOR, "revoke")
    assert "Only hub admins" in may_act(NOBODY, groups, PARTICIPANT, "revoke")
    assert may_act(ADMIN, groups, None, "revoke") == "No card has that username."
    assert "Unknown" in may_act(ADMIN, groups, PARTICIPANT, "delete")


def test_changes_that_make_no_sense_are_refused():
    file_book = AccountBook([PARTICIPANT, Account("ws002", "$argon2id$x", revoked=True)])
    desk_book = AccountBook([Account("ws001", "$argon2id$y", revoked=True)])
    assert check_change(file_book, desk_book, "ws001", "revoke", NOW) == "ws001 is already revoked."
    assert check_change(file_book, desk_book, "ws001", "restore", NOW) is None
    assert "organizer's accounts file" in check_change(file_book, desk_book, "ws002", "restore", NOW)
    assert "organizer's accounts file" in check_change(file_book, desk_book, "ws002", "reissue", NOW)
    assert check_change(file_book, AccountBook(), "ws001", "restore", NOW) == "ws001 is not revoked."
    assert "No card" in check_change(file_book, desk_book, "ghost", "revoke", NOW)


def test_late_cards_follow_the_first_ones():
    end = NOW + timedelta(hours=8)
    book = AccountBook(
        [Account(f"ws{n:03d}", "$argon2id$x", valid_from=NOW, valid_until=end) for n in (1, 2, 3)]
        + [INSTRUCTOR]
    )
    batch = late_batch(book, 2, None, NOW)
    assert (batch.prefix, batch.participants, batch.valid_from, batch.valid_until) == ("wslate", 2, NOW, end)
    assert late_batch(book, 1, end + timedelta(hours=1), NOW).valid_until == end + timedelta(hours=1)
    for how_many, until, message in [
        (0, None, "at least 1"),
        (10_000, None, "At most 100"),
        (1, NOW - timedelta(minutes=1), "ends in the past"),
    ]:
        with pytest.raises(DeskRefusal, match=message):
            late_batch(book, how_many, until, NOW)
    with pytest.raises(DeskRefusal, match="ends in the past"):
        late_batch(book, 1, None, end + timedelta(minutes=1))  # the first cards' window is over


def test_rate_limit_per_staff_member_in_any_minute():
    now = [0.0]
    rate = RateLimit(2, clock=lambda: now[0])
    rate.record("a")
    rate.record("a")
    assert rate.retry_after("a") == 60 and rate.retry_after("b") == 0
    now[0] = 30
    assert rate.retry_after("a") == 30
    now[0] = 60
    assert rate.retry_after("a") == 0


def test_a_confirmation_is_used_once_by_its_owner_for_its_request_before_it_expires():
    now = [0.0]
    confirmations = Confirmations(ttl=600, clock=lambda: now[0])
    token = confirmations.issue("a", ("revoke", "ws001"))
    assert confirmations.take(token, "a", ("revoke", "ws001"))
    assert not confirmations.take(token, "a", ("revoke", "ws001"))
    assert not confirmations.take(confirmations.issue("a", ("revoke", "ws001")), "b", ("revoke", "ws001"))
    assert not confirmations.take(confirmations.issue("a", ("revoke", "ws001")), "a", ("revoke", "ws002"))
    late = confirmations.issue("a", ("revoke", "ws001"))
    now[0] = 601
    assert not confirmations.take(late, "a", ("revoke", "ws001"))


def test_the_audit_is_kept_newest_first(db_url):
    with UsageStore(db_url) as store:
        store.record_desk_action(NOW, "boss", "reissue", ["ws001"], "new password")
        store.record_desk_action(
            NOW + timedelta(seconds=1), "helper", "add", ["ws005", "ws006"], "2 late cards"
        )
        rows = store.desk_audit()
        assert [(r.staff, r.action, r.cards) for r in rows] == [
            ("helper", "add", "ws005 ws006"),
            ("boss", "reissue", "ws001"),
        ]
        assert rows[1].at == NOW
        assert len(store.desk_audit(1)) == 1
