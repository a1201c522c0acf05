"""Workshop accounts: the records in ``accounts.yaml`` and how they are read and written.

The accounts file is the hub's allow list. It holds password *hashes* only; the plaintext
passwords exist solely on the organizer's cards (``cards.csv`` / ``cards.html``).

Every problem found while reading a file is reported with the file name and line, all at
once, so an organizer can fix a hand-edited file in one go.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import argon2
import yaml

from ..files import write_atomically
from ..times import parse_typed_time
from ..wording import count

ROLES = ("participant", "instructor")
FILE_VERSION = 1
ACCOUNT_KEYS = ("username", "role", "hash", "valid_from", "valid_until", "revoked")

# Card usernames are typed from a printed card on any keyboard and become parts of pod and
# volume names on Kubernetes: keep them short, lowercase ASCII.
USERNAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,38}[a-z0-9])?$")

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Account:
    """One login card's account as the hub sees it."""

    username: str
    password_hash: str
    role: str = "participant"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    revoked: bool = False
    line: int = 0  # where the record starts in its file (1-based), 0 if not from a file

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"

    def in_window(self, now: datetime) -> bool:
        """Whether ``now`` lies inside the account's validity window."""
        return self.window_note(now) is None

    def usable_at(self, now: datetime) -> bool:
        """Whether this account may sign in at ``now``: not revoked and inside its window."""
        return not self.revoked and self.in_window(now)

    def window_note(self, now: datetime) -> str | None:
        """Why ``now`` is outside the window ("works from ...", "expired at ..."), or None."""
        return window_note(self.valid_from, self.valid_until, now)


def window_note(valid_from: datetime | None, valid_until: datetime | None, now: datetime) -> str | None:
    """Why ``now`` is outside the validity window from ``valid_from`` (inclusive) to
    ``valid_until`` (exclusive), or None: the one rule for a card's window, also for a card
    as the hub last saw it (:mod:`.seen`)."""
    if valid_from is not None and now < valid_from:
        return f"works from {valid_from.isoformat(' ', 'minutes')}"
    if valid_until is not None and now >= valid_until:
        return f"expired at {valid_until.isoformat(' ', 'minutes')}"
    return None


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


class AccountsFileError(ValueError):
    """An accounts file that cannot be used; ``problems`` names each bad line."""

    def __init__(self, path: str | os.PathLike, problems: list[Problem]):
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}:{p.line}: {p.message}" for p in problems]
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"accounts file {self.path} has {len(problems)} {noun}:\n  " + "\n  ".join(lines))


class AccountBook(Mapping[str, Account]):
    """Accounts by username, read-only; with what the cards of this file print (the workshop's
    title and the hub's URL), so cards added later match the first ones."""

    def __init__(self, accounts: Iterable[Account] = (), title: str = "", hub_url: str = ""):
        self._accounts = {a.username: a for a in accounts}
        self.title = title
        self.hub_url = hub_url

    def __getitem__(self, username: str) -> Account:
        return self._accounts[username]

    def __iter__(self) -> Iterator[str]:
        return iter(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)

    def summary(self) -> str:
        instructors = sum(a.is_instructor for a in self.values())
        revoked = sum(a.revoked for a in self.values())
        return (
            f"{count(len(self), 'account')} ({count(len(self) - instructors, 'participant')}, "
            f"{count(instructors, 'instructor')}, {revoked} revoked)"
        )


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be a card username, or None if it can."""
    if not username:
        return "username is empty"
    if not username.isascii():
        return (
            f"username {username!r} has non-ASCII characters; card usernames must be typeable "
            "on any keyboard (a-z, 0-9, '.', '_', '-')"
        )
    if username != username.lower():
        return f"username {username!r} must be lowercase (the hub lowercases login names)"
    if not USERNAME_PATTERN.match(username):
        return (
            f"username {username!r} must be 1-40 characters of a-z, 0-9, '.', '_', '-', "
            "starting and ending with a letter or digit"
        )
    return None


def hash_problem(password_hash: str) -> str | None:
    """Why ``password_hash`` is not a usable argon2id hash, or None."""
    if not password_hash.startswith("$argon2id$"):
        return "hash must be an argon2id hash (starting with $argon2id$); plaintext is never accepted"
    try:
        argon2.extract_parameters(password_hash)
    except argon2.exceptions.InvalidHashError:
        return "hash is not a well-formed argon2id hash"
    return None


# --- reading -----------------------------------------------------------------------------


def _scalar(node: yaml.Node) -> str | None:
    """The text of a scalar node, None for YAML null."""
    if node.tag == _NULL_TAG:
        return None
    return node.value


def _parse_account(item: yaml.Node, problems: list[Problem]) -> Account | None:
    line = item.start_mark.line + 1
    if not isinstance(item, yaml.MappingNode):
        problems.append(Problem(line, "each account must be a mapping with username, role, hash, ..."))
        return None
    fields: dict[str, str | None] = {}
    bad = False
    for key_node, value_node in item.value:
        key = key_node.value
        key_line = key_node.start_mark.line + 1
        if key not in ACCOUNT_KEYS:
            problems.append(Problem(key_line, f"unknown key {key!r} (allowed: {', '.join(ACCOUNT_KEYS)})"))
            bad = True
            continue
        if key in fields:
            problems.append(Problem(key_line, f"key {key!r} given twice"))
            bad = True
            continue
        if not isinstance(value_node, yaml.ScalarNode):
            problems.append(Problem(key_line, f"{key} must be a single value"))
            bad = True
            continue
        if key == "revoked" and value_node.tag not in (_BOOL_TAG, _NULL_TAG):
            problems.append(Problem(key_line, f"revoked must be true or false, not {value_node.value!r}"))
            bad = True
            continue
        fields[key] = _scalar(value_node)

    username = fields.get("username")
    if username is None:
        problems.append(Problem(line, "account has no username"))
        bad = True
    elif (why := username_problem(username)) is not None:
        problems.append(Problem(line, why))
        bad = True

    password_hash = fields.get("hash")
    if password_hash is None:
        problems.append(Problem(line, f"account {username!r} has no hash"))
        bad = True
    elif (why := hash_problem(password_hash)) is not None:
        problems.append(Problem(line, f"account {username!r}: {why}"))
        bad = True

    role = fields.get("role") or "participant"
    if role not in ROLES:
        problems.append(Problem(line, f"role {role!r} must be one of {', '.join(ROLES)}"))
        bad = True

    window: dict[str, datetime | None] = {}
    for key in ("valid_from", "valid_until"):
        text = fields.get(key)
        window[key] = None
        if text:
            try:
                window[key] = parse_typed_time(text)
            except ValueError as e:
                problems.append(Problem(line, f"{key}: {e}"))
                bad = True
    if window["valid_from"] and window["valid_until"] and window["valid_until"] <= window["valid_from"]:
        problems.append(Problem(line, "valid_until must be later than valid_from"))
        bad = True

    if bad:
        return None
    revoked = (fields.get("revoked") or "false").lower() in ("true", "yes", "on")
    return Account(
        username=username,
        password_hash=password_hash,
        role=role,
        valid_from=window["valid_from"],
        valid_until=window["valid_until"],
        revoked=revoked,
        line=line,
    )


def parse_accounts(text: str, path: str | os.PathLike = "<accounts>") -> AccountBook:
    """Parse the text of an accounts file; raise :class:`AccountsFileError` listing every problem."""
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise AccountsFileError(path, [Problem(line, f"invalid YAML: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise AccountsFileError(path, [Problem(1, f"invalid YAML: {e}")]) from None

    if root is None or not isinstance(root, yaml.MappingNode):
        raise AccountsFileError(
            path, [Problem(1, "expected a mapping with 'version: 1' and an 'accounts:' list")]
        )

    problems: list[Problem] = []
    items: yaml.SequenceNode | None = None
    card_details = {"title": "", "hub_url": ""}
    for key_node, value_node in root.value:
        key_line = key_node.start_mark.line + 1
        if key_node.value == "version":
            if value_node.value != str(FILE_VERSION):
                problems.append(
                    Problem(key_line, f"unsupported version {value_node.value!r} (expected {FILE_VERSION})")
                )
        elif key_node.value == "accounts":
            if isinstance(value_node, yaml.SequenceNode):
                items = value_node
            elif isinstance(value_node, yaml.ScalarNode) and value_node.tag == _NULL_TAG:
                items = yaml.SequenceNode("tag:yaml.org,2002:seq", [])  # `accounts:` left empty
            else:
                problems.append(Problem(key_line, "accounts must be a list"))
        elif key_node.value in card_details:
            if isinstance(value_node, yaml.ScalarNode) and value_node.tag != _NULL_TAG:
                card_details[key_node.value] = value_node.value
            elif not (isinstance(value_node, yaml.ScalarNode) and value_node.tag == _NULL_TAG):
                problems.append(Problem(key_line, f"{key_node.value} must be a single value"))
        else:
            problems.append(Problem(key_line, f"unknown top-level key {key_node.value!r}"))
    if items is None and not problems:
        problems.append(Problem(1, "no 'accounts:' list"))

    accounts: list[Account] = []
    first_line: dict[str, int] = {}
    for item in items.value if items is not None else []:
        account = _parse_account(item, problems)
        if account is None:
            continue
        if account.username in first_line:
            problems.append(
                Problem(
                    account.line,
                    f"duplicate username {account.username!r} (first on line {first_line[account.username]})",
                )
            )
            continue
        first_line[account.username] = account.line
        accounts.append(account)

    if problems:
        problems.sort(key=lambda p: p.line)
        raise AccountsFileError(path, problems)
    return AccountBook(accounts, **card_details)


def load_accounts(path: str | os.PathLike) -> AccountBook:
    """Read and validate an accounts file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AccountsFileError(
            path,
            [Problem(0, "file not found; create it with `jupyterhub-workshop credentials generate`")],
        ) from None
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise AccountsFileError(path, [Problem(line, "file is not valid UTF-8")]) from None
    return parse_accounts(text, path)


# --- writing -----------------------------------------------------------------------------

_HEADER = """\
# jupyterhub-workshop accounts: the hub's allow list. Password hashes only, never plaintext.
# Manage with `jupyterhub-workshop credentials add|revoke|restore|check`; one account per line.
"""


def dump_accounts(accounts: Iterable[Account], title: str = "", hub_url: str = "") -> str:
    """Serialize accounts, one flow mapping per line, so a revoke is a one-line diff; ``title``
    and ``hub_url`` are what the cards print."""
    lines = [_HEADER, f"version: {FILE_VERSION}\n"]
    # JSON scalars are valid YAML flow scalars and quote everything that needs it.
    lines += [
        f"{key}: {json.dumps(value)}\n" for key, value in (("title", title), ("hub_url", hub_url)) if value
    ]
    header_lines = len(lines)
    lines.append("accounts:\n")
    for a in accounts:
        fields = {
            "username": a.username,
            "role": a.role,
            "hash": a.password_hash,
            "valid_from": a.valid_from and a.valid_from.isoformat(),
            "valid_until": a.valid_until and a.valid_until.isoformat(),
        }
        body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items())
        lines.append(f"- {{{body}, revoked: {'true' if a.revoked else 'false'}}}\n")
    if len(lines) == header_lines + 1:
        lines[-1] = "accounts: []\n"
    return "".join(lines)


def save_accounts(
    path: str | os.PathLike, accounts: Iterable[Account], title: str = "", hub_url: str = ""
) -> None:
    # the hub needs to read it; hashes are not secrets of the same order as cards
    write_atomically(path, dump_accounts(accounts, title, hub_url), mode=0o644)


def _known(book: AccountBook, usernames: Iterable[str]) -> set[str]:
    wanted = set(usernames)
    missing = sorted(wanted - set(book))
    if missing:
        raise KeyError(", ".join(missing))
    return wanted


def revoke(book: AccountBook, usernames: Iterable[str]) -> list[Account]:
    """The accounts of ``book`` with ``usernames`` revoked; KeyError names unknown ones."""
    wanted = _known(book, usernames)
    return [replace(a, revoked=True) if a.username in wanted else a for a in book.values()]


def restore(book: AccountBook, usernames: Iterable[str], now: datetime) -> list[Account]:
    """The accounts of ``book`` with ``usernames`` no longer revoked, and nothing else changed
    (the hash above all: the card in the participant's hand works again). KeyError names
    unknown ones; ValueError those not revoked, saying when a card is outside its window
    instead (restoring cannot help it), so a mistyped name changes nothing."""
    wanted = _known(book, usernames)
    problems = []
    for name in sorted(wanted):
        account = book[name]
        if not account.revoked:
            note = account.window_note(now)
            problems.append(f"{name} is not revoked" + (f" (its card {note})" if note else ""))
    if problems:
        raise ValueError("; ".join(problems) + "; nothing restored")
    return [replace(a, revoked=False) if a.username in wanted else a for a in book.values()]
