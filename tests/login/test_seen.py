"""What the hub last saw of each card, and which cards changed since (pure)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.login.accounts import Account, AccountBook
from jupyterhub_workshop.login.seen import (
    SeenCard,
    cards_to_end,
    dump_seen,
    parse_seen,
    password_digest,
    remember,
)

NOW = datetime(2026, 7, 14, 9, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"


def book(*accounts):
    return AccountBook(accounts)


def acc(name, h=HASH, **kw):
    return Account(name, h, **kw)


def test_the_file_keeps_a_digest_of_the_hash_never_the_hash():
    text = dump_seen(remember(book(acc("ws001"))))
    assert HASH not in text and "argon2" not in text
    assert password_digest(HASH) in text and len(password_digest(HASH)) == 32
    assert password_digest(HASH) != password_digest(HASH + "x")


def test_what_is_written_reads_back_the_same():
    denver = timezone(timedelta(hours=-6))
    seen = remember(
        book(
            acc("ws001"),
            acc("ws002", revoked=True),
            acc("ws003", valid_from=datetime(2026, 7, 14, 8, tzinfo=denver), valid_until=NOW),
        )
    )
    back = parse_seen(dump_seen(seen))
    assert back == seen
    assert parse_seen(dump_seen({})) == {}


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("[]", "not version 1"),
        ('{"version": 2, "cards": {}}', "not version 1"),
        ('{"version": 1}', "no 'cards'"),
        ('{"version": 1, "cards": {"a": "digest"}}', "record of 'a'"),
        ('{"version": 1, "cards": {"a": ["d", "no", null, null]}}', "record of 'a'"),
        ('{"version": 1, "cards": {"a": ["d", false, null]}}', "record of 'a'"),
        ('{"version": 1, "cards": {"a": ["d", false, 3, null]}}', "record of 'a'"),
        ('{"version": 1, "cards": {"a": ["d", false, "yesterday", null]}}', "record of 'a'"),
    ],
)
def test_a_file_not_ours_is_refused_saying_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_seen(text)


def test_restoring_a_card_or_extending_its_window_ends_no_session():
    seen = remember(book(acc("ws001", revoked=True), acc("ws002", valid_until=NOW + timedelta(hours=1))))
    after = book(acc("ws001"), acc("ws002", valid_until=NOW + timedelta(days=1)))
    assert cards_to_end(seen, after, NOW) == []


def test_a_card_that_expired_by_itself_is_left_to_the_auth_refresh():
    # nothing changed: the hub signs the holder out at the next refresh, as while running
    seen = remember(book(acc("ws001", valid_until=NOW)))
    assert cards_to_end(seen, book(acc("ws001", valid_until=NOW)), NOW) == []


def test_nothing_known_ends_nothing():
    assert cards_to_end({}, book(acc("ws001"), acc("ws002", revoked=True)), NOW) == []


def test_a_seen_card_is_usable_by_the_accounts_window_rule():
    card = SeenCard("d", valid_from=NOW, valid_until=NOW + timedelta(hours=1))
    assert card.usable_at(NOW) and not card.usable_at(NOW - timedelta(seconds=1))
    assert not card.usable_at(NOW + timedelta(hours=1))
    assert not SeenCard("d", revoked=True).usable_at(NOW)
