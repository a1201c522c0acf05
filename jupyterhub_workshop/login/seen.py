"""What the hub last saw of each card, so that a card changed while the hub was down is treated
like a change it noticed while running.

While the hub runs, the authenticator compares the accounts before and after each reload. A card
revoked or reissued while the hub is down (``credentials revoke`` then a ``helm upgrade`` that
restarts it, the desk file changed during a restart) has no "before" in memory: its old login cookie, tokens and
running server would survive the restart. So the hub keeps, on its own volume, what it last saw
of each card, and compares the accounts with that at start-up by the same rule.

What is kept is what the rule needs and no more: a digest of the password hash (a reissue changes
it; the hash itself stays in the accounts files only, and the digest of a salted argon2id hash
lets nobody test a password), the revoked flag and the validity window (to know whether the card
could sign in when last seen, so that extending a window or restoring a card ends no session).
Everything here is pure; the authenticator reads and writes the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ..times import format_machine_time, parse_machine_time
from .accounts import AccountBook, window_note

#: The file's default name: in the hub's working directory, its data directory
#: (``/srv/jupyterhub`` on Zero to JupyterHub, the state directory of the demo).
SEEN_FILE_NAME = "workshop-cards-seen.json"
SEEN_VERSION = 1
_DIGEST_CONTEXT = b"jupyterhub-workshop seen card v1\0"


@dataclass(frozen=True)
class SeenCard:
    """A card as the hub last saw it."""

    password: str  # password_digest() of its hash
    revoked: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return not self.revoked and window_note(self.valid_from, self.valid_until, now) is None


def password_digest(password_hash: str) -> str:
    """128 bits of SHA-256 over the hash: tells a reissued card from an unchanged one. The hash
    carries its own random salt, so the digest says nothing about the password."""
    return hashlib.sha256(_DIGEST_CONTEXT + password_hash.encode()).hexdigest()[:32]


def remember(book: AccountBook) -> dict[str, SeenCard]:
    """What to keep of ``book``."""
    return {
        name: SeenCard(password_digest(a.password_hash), a.revoked, a.valid_from, a.valid_until)
        for name, a in book.items()
    }


def cards_to_end(seen: Mapping[str, SeenCard], after: AccountBook, now: datetime) -> list[str]:
    """Usernames whose sessions must end now that the accounts are ``after``: cards that could
    sign in as last seen and can no longer (revoked, removed, moved out of their window), and
    cards whose password changed (reissued). Sorted, for stable logs. The one rule, for a
    reload while the hub runs (``overlay.changed_cards``) and for its start-up."""
    ended = []
    for name, old in seen.items():
        if not old.usable_at(now):
            continue
        new = after.get(name)
        if (
            new is None
            or not new.usable_at(now)
            # digests of hashes, not secrets, but compared as if they were
            or not hmac.compare_digest(old.password, password_digest(new.password_hash))
        ):
            ended.append(name)
    return sorted(ended)


def dump_seen(seen: Mapping[str, SeenCard]) -> str:
    """The file's text: JSON, each card as [password digest, revoked, valid_from, valid_until]."""

    def when(moment):
        return None if moment is None else format_machine_time(moment)

    cards = {
        name: [c.password, c.revoked, when(c.valid_from), when(c.valid_until)] for name, c in seen.items()
    }
    return json.dumps({"version": SEEN_VERSION, "cards": cards}) + "\n"


def parse_seen(text: str) -> dict[str, SeenCard]:
    """The cards of a file :func:`dump_seen` wrote; ValueError saying what is wrong otherwise."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("version") != SEEN_VERSION:
        raise ValueError(f"not version {SEEN_VERSION} of the file")
    cards = data.get("cards")
    if not isinstance(cards, dict):
        raise ValueError("no 'cards' mapping")
    seen = {}
    for name, record in cards.items():
        try:
            password, revoked, *window = record
            if not (
                isinstance(password, str)
                and isinstance(revoked, bool)
                and len(window) == 2
                and all(w is None or isinstance(w, str) for w in window)
            ):
                raise TypeError
            seen[name] = SeenCard(password, revoked, *map(parse_machine_time, window))
        except (TypeError, ValueError):
            raise ValueError(f"the record of {name!r} is not [digest, revoked, from, until]") from None
    return seen
