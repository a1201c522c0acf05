"""The board: staff announcements and why each participant's server last stopped, in one small
JSON file the service writes (atomically) and the hub reads on its pages.

The hub never asks the service per page view: :class:`BoardReader` re-reads the file only when
its modification time or size changes (one ``stat`` per page otherwise), and what a page shows
is decided here by plain functions with the time passed in.

    {"announcements": [{"id": "…", "text": "…", "posted": "2026-…Z", "expires": null, "by": "…"}],
     "stops": {"ws001": {"reason": "night", "at": "2026-…Z", "server": ""}},
     "restarts": {"ws002": {"reason": "OOMKilled", "at": "2026-…Z", "server": "", "pod": "<uid>",
                            "count": 1, "until": "2026-…Z"}}}

``restarts`` (a server the cluster restarted in place, noted by the hub's spawner) came after
the first release: earlier versions read a board with it (they ignore what they do not know)
and drop it when they rewrite the file — at worst a restart notice is not shown.

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
class Restart:
    """A participant's server the cluster restarted in place (its container ended, the pod
    stayed): why (the container's last termination reason) and when it ended; the pod (its
    uid) and its ``restartCount`` then, which say whether a later look is news; ``until``: when
    the notice stops showing."""

    reason: str
    at: datetime
    server: str = ""
    pod: str = ""
    count: int = 1
    until: datetime | None = None


@dataclass(frozen=True)
class Board:
    announcements: tuple[Announcement, ...] = ()
    stops: dict[str, Stop] = field(default_factory=dict)
    restarts: dict[str, Restart] = field(default_factory=dict)

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

    def restarted(self, user: str, restart: Restart, now: datetime) -> Board:
        """With ``user``'s latest restart noted (replacing theirs), and the notices past their
        ``until`` dropped: the file keeps at most one per participant, and only live ones."""
        kept = {u: r for u, r in self.restarts.items() if r.until is None or r.until > now}
        return replace(self, restarts={**kept, user: restart})

    def dumps(self) -> str:
        doc = {
            "announcements": [
                {**asdict(a), "posted": _text(a.posted), "expires": _text(a.expires)}
                for a in self.announcements
            ],
            "stops": {user: {**asdict(s), "at": _text(s.at)} for user, s in sorted(self.stops.items())},
        }
        if self.restarts:  # only when there are any: a board without them reads as before
            doc["restarts"] = {
                user: {**asdict(r), "at": _text(r.at), "until": _text(r.until)}
                for user, r in sorted(self.restarts.items())
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
        restarts = {
            str(user): Restart(
                str(r["reason"]),
                _time(r["at"]),
                str(r.get("server", "")),
                str(r.get("pod", "")),
                int(r.get("count", 1)),
                _time(r.get("until")),
            )
            for user, r in (doc.get("restarts") or {}).items()
        }
        return cls(announcements, stops, restarts)


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


def _when(at: datetime, zone: str, now: datetime | None) -> str:
    """A notice's time in the workshop's zone, with the day when not today."""
    local = at.astimezone(ZoneInfo(zone or "UTC"))
    if now is not None and now.astimezone(local.tzinfo).date() != local.date():
        return f"{local:%H:%M} on {local:%A}"
    return f"{local:%H:%M}"


def stop_sentence(stop: Stop, zone: str = "UTC", now: datetime | None = None) -> str:
    """The plain-words sentence a participant reads after their server stopped without them,
    its time in the workshop's zone (with the day when not today)."""
    when = _when(stop.at, zone, now)
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


# --- restart notices ---------------------------------------------------------------------------

#: what happened to a server restarted in place, by its container's last termination reason
RESTARTED = {
    "OOMKilled": "ran out of memory",
    "Error": "crashed",
    "Completed": "ended by itself",
}
DEFAULT_RESTARTED = "ended unexpectedly"


def pod_restart(pod: dict | None, server: str = "") -> Restart | None:
    """The last in-place restart of a pod's notebook container, as the pod says it: its
    ``restartCount``, ``lastState.terminated`` (reason, ``finishedAt``) and the pod's uid; None
    when it has not restarted (or the pod does not say when its container ended)."""
    if pod is None:
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    notebook = next((c for c in statuses if c.get("name") == "notebook"), None)
    if notebook is None or not notebook.get("restartCount"):
        return None
    ended = (notebook.get("lastState") or {}).get("terminated") or {}
    at = _time(ended.get("finishedAt"))
    if at is None:
        return None
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    return Restart(str(ended.get("reason") or "unknown"), at, server, uid, int(notebook["restartCount"]))


def restart_is_news(
    restart: Restart | None, seen: tuple[str, int] | None, now: datetime, recent: timedelta
) -> bool:
    """Whether ``restart`` (what the pod says now) is one to note, given ``seen``: the (pod uid,
    restart count) last looked at — by this spawner, or noted on the board before a hub restart.
    Counts go up within a pod and start again at 0 in a new one, so a count above the seen one
    in the same pod is news. Of a pod nothing is known of (the board lost it, or it restarted
    only while the hub was down), only a restart within ``recent`` is: one the notice would
    still show; an old one would not be news to anybody."""
    if restart is None:
        return False
    if seen is not None and seen[0] == restart.pod:
        return restart.count > seen[1]
    return now - restart.at <= recent


def restart_sentence(restart: Restart, zone: str = "UTC", now: datetime | None = None) -> str:
    """The plain-words sentence a participant reads while their restarted server runs: what
    happened and when, what it cost them (the kernels, not the files), what to do."""
    what = RESTARTED.get(restart.reason, DEFAULT_RESTARTED)
    sentence = (
        f"Your server {what} at {_when(restart.at, zone, now)} and was restarted: the notebooks' "
        "kernels were stopped, your files are safe."
    )
    if restart.count > 1:
        sentence += f" It has restarted {restart.count} times since you started it."
    if restart.reason == "OOMKilled":
        return sentence + " Save your work and close notebooks you do not need."
    return sentence + " Save your work and run your notebooks again."


def restart_to_show(restart: Restart | None, started: datetime | None, active: bool, now: datetime) -> bool:
    """Shown while the restarted server runs: the user has a server ``active``, ``started``
    before the restart (a server started since is another run: old news), and ``now`` is before
    the notice's ``until``."""
    if restart is None or not active:
        return False
    if started is not None and started > restart.at:
        return False
    return restart.until is None or now < restart.until


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
