from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.login.accounts import Account, AccountBook
from jupyterhub_workshop.login.overlay import changed_cards, merge, with_changes
from jupyterhub_workshop.login.seen import cards_to_end, dump_seen, parse_seen, remember

NOW = datetime(2026, 7, 14, 9, tzinfo=UTC)


def book(*accounts, title="Hackweek"):
    return AccountBook(accounts, title=title, hub_url="https://hub.example")


def acc(name, h="$argon2id$old", **kw):
    return Account(name, h, **kw)


def test_the_desks_new_password_wins_and_the_file_keeps_role_and_window():
    window = {"valid_from": NOW - timedelta(hours=1), "valid_until": NOW + timedelta(hours=8)}
    merged = merge(book(acc("ws001", role="instructor", **window)), book(acc("ws001", "$argon2id$new")))
    assert merged["ws001"] == acc("ws001", "$argon2id$new", role="instructor", **window)
    assert (merged.title, merged.hub_url) == ("Hackweek", "https://hub.example")


def test_a_revocation_in_either_file_holds():
    assert merge(book(acc("a", revoked=True)), book(acc("a", revoked=False)))["a"].revoked
    assert merge(book(acc("a")), book(acc("a", revoked=True)))["a"].revoked
    assert not merge(book(acc("a")), book(acc("a")))["a"].revoked


def test_late_cards_from_the_desk_are_added_and_an_empty_desk_changes_nothing():
    merged = merge(book(acc("ws001")), book(acc("ws002", "$argon2id$late")))
    assert list(merged) == ["ws001", "ws002"] and merged["ws002"].password_hash == "$argon2id$late"
    file_book = book(acc("ws001"), acc("ws002", revoked=True))
    assert dict(merge(file_book, AccountBook())) == dict(file_book)


# one rule for a change noticed while the hub runs and for one made while it was down, which
# the hub compares at start with what it last saw of each card
@pytest.mark.parametrize(
    "changed",
    [
        changed_cards,
        lambda before, after, now: cards_to_end(parse_seen(dump_seen(remember(before))), after, now),
    ],
    ids=["while running", "while the hub was down"],
)
def test_changed_cards_are_the_revoked_the_reissued_the_removed_and_the_expired(changed):
    before = book(
        acc("keep"),
        acc("revoke"),
        acc("reissue"),
        acc("remove"),
        acc("expire"),
        acc("was-revoked", revoked=True),
        acc("was-early", valid_from=NOW + timedelta(hours=1)),
    )
    after = book(
        acc("keep"),
        acc("revoke", revoked=True),
        acc("reissue", "$argon2id$new"),
        acc("expire", valid_until=NOW),
        # a card that could not sign in before held no session to end
        acc("was-revoked", "$argon2id$new", revoked=True),
        acc("was-early", "$argon2id$new"),
        acc("new-late-card"),
    )
    assert changed(before, after, NOW) == ["expire", "reissue", "remove", "revoke"]
    # restoring a card, adding one or extending its window ends nobody's session (and going
    # back, "was-early" moves out of its window and the late card is removed)
    assert changed(after, before, NOW) == ["new-late-card", "reissue", "was-early"]


def test_with_changes_replaces_in_place_and_appends():
    desk = book(acc("a"), acc("b"))
    records = with_changes(desk, [replace(desk["a"], revoked=True), acc("c")])
    assert [(r.username, r.revoked) for r in records] == [("a", True), ("b", False), ("c", False)]
