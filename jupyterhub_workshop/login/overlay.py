"""The card desk's changes, kept beside the organizer's accounts file and merged over it.

The organizer's ``accounts.yaml`` (a Secret on Kubernetes, a local file on the demo) is theirs:
the hub never writes it. What staff do at the card desk on the admin page — reissue a lost
card, revoke or restore one, add late cards — goes into a second file in the same format, the
*desk file*, on the hub's own volume. The authenticator reads both and merges them:

- a card only in the desk file is a late card added at the desk (the whole record counts);
- for a card in both, the desk's password hash wins (a reissued card keeps its new password
  whatever the organizer's file says), and the card is revoked if *either* file revokes it:
  a revocation from the CLI or the desk is never undone by the other;
- the organizer's file decides everything else (role, window).

So a ``helm upgrade`` with the original accounts, a hub restart or the organizer's next
``credentials`` run cannot bring back a reissued card's old password or un-revoke a card.
Everything here is pure; reading and writing the files is the callers' (one stat and parse).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from .accounts import Account, AccountBook
from .seen import cards_to_end, remember

#: The desk file's name: beside the accounts file on the demo, on the hub's volume in the chart.
DESK_FILE_NAME = "accounts-desk.yaml"


def merge(file_book: AccountBook, desk_book: AccountBook) -> AccountBook:
    """The accounts as the hub sees them: the desk's changes over the organizer's file."""
    merged: dict[str, Account] = {}
    for name, account in file_book.items():
        desk = desk_book.get(name)
        if desk is not None:
            account = replace(
                account, password_hash=desk.password_hash, revoked=account.revoked or desk.revoked
            )
        merged[name] = account
    for name, desk in desk_book.items():
        if name not in merged:
            merged[name] = desk
    return AccountBook(
        merged.values(),
        title=file_book.title or desk_book.title,
        hub_url=file_book.hub_url or desk_book.hub_url,
    )


def changed_cards(before: AccountBook, after: AccountBook, now: datetime) -> list[str]:
    """Usernames whose sessions must end after the accounts went from ``before`` to ``after``:
    cards that could sign in before and can no longer (revoked, removed, moved out of their
    window), and cards whose password changed (reissued). Sorted, for stable logs. The same
    rule as a start-up's comparison with what the hub last saw (:func:`.seen.cards_to_end`)."""
    return cards_to_end(remember(before), after, now)


def with_changes(desk_book: AccountBook, records: Iterable[Account]) -> list[Account]:
    """The desk file's records with ``records`` put in (replacing any of the same username),
    in the desk file's order, new ones last."""
    records = {a.username: a for a in records}
    kept = [records.pop(a.username, a) for a in desk_book.values()]
    return kept + list(records.values())
