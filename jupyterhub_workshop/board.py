"""The board: staff announcements and why each participant's server last stopped, in one small
JSON file the service writes (atomically) and the hub reads on its pages.

The hub never asks the service per page view: :class:`BoardReader` re-reads the file only when
its modification time or size changes (one ``stat`` per page otherwise), and what a page shows
is decided here by plain functions with the time passed in.

    {"announcements": [{"id": "…", "text": "…", "posted": "2026-…Z", "expires": null, "by": "…"}],
     "stops": {"ws001": {"reason": "night", "at": "2026-…Z", "server": ""}}}

The file is the record (it lives on the hub's persistent volume, so it survives restarts of
both); it is readable by everyone in the hub's pod (0644): nothing in it is secret — every
participant sees the announcements, and a stop's reason is no more than the hub's own log says.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

from .files import write_atomically

#: the board file's name: on the hub's volume beside the events file (chart), in the demo's state
BOARD_FILE_NAME = "workshop-board.json"
MAX_TEXT = 500  # characters: a banner, not a page
MAX_ANNOUNCEMENTS = 10  # shown at once; posting an eleventh drops the oldest
URL = re.compile(r"https?://[^\s<>\"'`]+")
TRAILING = ".,;:!?)]}'\""  # punctuation after a URL in a sentence is not part of it


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass(frozen=True)
class Announcement:
    id: str
    text: str
    posted: datetime
    expires: datetime | None = None
    by: str = ""

    def showing(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires

    def html(self) -> str:
        return linkify(self.text)


@dataclass(frozen=True)
class Stop:
    """A participant's server stopped without them: why (a culler reason or what the cluster
    said of the pod) and when."""

    reason: str
    at: datetime
    server: str = ""


@dataclass(frozen=True)
class Board:
    announcements: tuple[Announcement, ...] = ()
    stops: dict[str, Stop] = field(default_factory=dict)

    def showing(self, now: datetime) -> list[Announcement]:
        """The announcements not expired at ``now``, newest first."""
        return sorted((a for a in self.announcements if a.showing(now)), key=lambda a: a.posted, reverse=True)

    def post(self, text: str, now: datetime, expires: datetime | None = None, by: str = "") -> Board:
        """With a new announcement (expired ones dropped; at most MAX_ANNOUNCEMENTS, newest kept)."""
        text = " ".join(text.split())
        if not text:
            raise ValueError("An announcement needs some text.")
        if len(text) > MAX_TEXT:
            raise ValueError(f"An announcement is at most {MAX_TEXT} characters (this one is {len(text)}).")
        if expires is not None and expires <= now:
            raise ValueError("The expiry is in the past: the announcement would never show.")
        new = Announcement(secrets.token_hex(6), text, now, expires, by)
        kept = [new, *self.showing(now)][:MAX_ANNOUNCEMENTS]
        return replace(self, announcements=tuple(kept))

    def remove(self, announcement_id: str) -> Board:
        return replace(self, announcements=tuple(a for a in self.announcements if a.id != announcement_id))

    def stopped(self, user: str, stop: Stop) -> Board:
        return replace(self, stops={**self.stops, user: stop})

    def dumps(self) -> str:
        doc = {
            "announcements": [
                {**asdict(a), "posted": _text(a.posted), "expires": _text(a.expires)}
                for a in self.announcements
            ],
            "stops": {user: {**asdict(s), "at": _text(s.at)} for user, s in sorted(self.stops.items())},
        }
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> Board:
        doc = json.loads(text) if text.strip() else {}
        announcements = tuple(
            Announcement(
                str(a["id"]),
                str(a["text"]),
                _time(a["posted"]),
                _time(a.get("expires")),
                str(a.get("by", "")),
            )
            for a in doc.get("announcements", [])
        )
        stops = {
            str(user): Stop(str(s["reason"]), _time(s["at"]), str(s.get("server", "")))
            for user, s in (doc.get("stops") or {}).items()
        }
        return cls(announcements, stops)


def linkify(text: str) -> str:
    """``text`` as HTML: everything escaped, plain http(s) URLs made links (nothing else is)."""
    out, last = [], 0
    for match in URL.finditer(text):
        url = match.group(0).rstrip(TRAILING)
        end = match.start() + len(url)
        out.append(escape(text[last : match.start()]))
        out.append(f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{escape(url)}</a>')
        last = end
    out.append(escape(text[last:]))
    return "".join(out)


def banner(board: Board, now: datetime) -> str:
    """The announcements showing at ``now`` as the hub's banner HTML (newest first)."""
    return "<br>".join(f'<span class="workshop-announcement">{a.html()}</span>' for a in board.showing(now))


# --- stop notices ------------------------------------------------------------------------------

BY = {
    "idle": "because it had been idle",
    "night": "by the night-time shutdown",
    "max-age": "because it had reached the workshop's maximum running time",
    "closed": "because the workshop hub has closed",
    "OOMKilled": "because it ran out of memory (the notebook used more than the server's limit)",
    "Evicted": "by the cluster, which needed the room (the server was evicted)",
    "deleted": "outside the hub (its machine was replaced or the server was removed)",
    "Error": "because it ended unexpectedly (it crashed)",
    "Completed": "because it ended by itself",
}
DEFAULT_BY = "outside the hub"


def stop_sentence(stop: Stop, zone: str = "UTC", now: datetime | None = None) -> str:
    """The plain-words sentence a participant reads after their server stopped without them,
    its time in the workshop's zone (with the day when not today)."""
    local = stop.at.astimezone(ZoneInfo(zone or "UTC"))
    when = f"{local:%H:%M}"
    if now is not None and now.astimezone(local.tzinfo).date() != local.date():
        when = f"{local:%H:%M} on {local:%A}"
    by = BY.get(stop.reason, DEFAULT_BY)
    again = " — start it again below." if stop.reason != "closed" else "."
    return f"Your server was stopped at {when} {by}. Your files are safe{again}"


def stop_to_show(stop: Stop | None, last_started: datetime | None, active: bool) -> bool:
    """Shown once: until the participant next starts a server (``last_started`` after the stop,
    or a server ``active``, hides it; the service then removes the notice from the board as it
    reads the hub's start event). Not "until dismissed": a participant who has not started
    again still needs to know why their work is not running."""
    if stop is None or active:
        return False
    return last_started is None or last_started <= stop.at


def stop_history(
    stops: list[tuple[datetime, str, str]], noted: Stop | None, within: timedelta = timedelta(minutes=2)
) -> list[tuple[datetime, str]]:
    """A participant's last stops (stopped, reason, server; newest first) as (when, words), e.g.
    "stopped by the night-time shutdown". A stop the usage record calls ``unknown`` takes the
    board's reason when the board noted one for the same moment (the cluster said why)."""
    out = []
    for at, reason, _server in stops:
        if reason == "unknown" and noted is not None and abs(noted.at - at) <= within:
            reason = noted.reason
        out.append((at, f"stopped {BY.get(reason, DEFAULT_BY)}"))
    return out


def pod_stop_reason(pod: dict | None) -> str:
    """What the cluster says ended a user's pod the hub did not stop: ``deleted`` when the pod
    is gone (deleted, or its node replaced); ``Evicted`` from the pod's status; else the
    notebook container's termination reason (``OOMKilled``, ``Error``, ``Completed``), from its
    state or, after an in-place restart, its last state; ``unknown`` when nothing says."""
    if pod is None:
        return "deleted"
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        return "Evicted"
    statuses = status.get("containerStatuses") or []
    statuses = sorted(statuses, key=lambda c: c.get("name") != "notebook")  # the server's container first
    for key in ("state", "lastState"):
        for container in statuses:
            reason = ((container.get(key) or {}).get("terminated") or {}).get("reason")
            if reason:
                return reason
    return "unknown"


# --- the file ---------------------------------------------------------------------------------


def load_board(path: str | os.PathLike) -> Board:
    """The board in ``path``; an empty board when there is none yet."""
    try:
        return Board.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Board()


def save_board(path: str | os.PathLike, board: Board) -> None:
    """Write ``board`` atomically, readable by the hub (0644)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, board.dumps(), mode=0o644)


def update_board(path: str | os.PathLike, change) -> Board:
    """Load, ``change(board) -> board``, save, under an exclusive lock (``PATH.lock``): the
    service and the hub's spawner both note stops, and neither loses the other's. Saved only
    when something changed; returns the board as saved."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            before = load_board(path)
            after = change(before)
            if after != before:
                save_board(path, after)
            return after
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class BoardReader:
    """The board as the hub reads it: the file parsed again only when its mtime or size changed.
    A file that cannot be read or parsed shows as the last good board (or none)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._key = None
        self._board = Board()

    def read(self) -> Board:
        try:
            st = os.stat(self.path)
        except OSError:
            self._key, self._board = None, Board()
            return self._board
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._key:
            try:
                self._board = Board.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError, KeyError, TypeError):
                return self._board
            self._key = key
        return self._board


def expiry(minutes: str, now: datetime) -> datetime | None:
    """An expiry typed as minutes from now (empty: none)."""
    minutes = (minutes or "").strip()
    if not minutes:
        return None
    try:
        value = float(minutes)
    except ValueError:
        raise ValueError(f"Expires in: a number of minutes, not {minutes!r}.") from None
    if not 0 < value <= 7 * 24 * 60:
        raise ValueError("Expires in: between 1 minute and 7 days (10080 minutes).")
    return now + timedelta(minutes=value)
