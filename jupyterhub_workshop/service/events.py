"""The hub's server events, from the hub to the workshop service through a spool file.

JupyterHub emits ``server-action`` events (``action`` start|stop, ``username``, ``servername``)
through its ``EventLogger`` right after it has started or stopped a server, whoever asked
(a user's page, the REST API, so the service's own culls too). It emits none when a server dies
on its own: the service's periodic pass reconciles those.

How they travel: the hub configuration installs :class:`ServerEventSpool`, a
``logging.handlers.RotatingFileHandler``, in ``c.EventLogger.handlers``
(:func:`jupyterhub_workshop.hubconfig.services.install_server_events`). The hub appends one JSON
line per event to a spool file on its own disk (a managed service runs beside the hub, in the
same container under the Helm chart). The service reads new lines with :class:`EventSpoolReader`
and stores how far it got in its usage database, in the same transaction as the sessions the
events open and close: events written while the service restarts wait in the file, and none is
applied twice.

- **The hub is never blocked or broken by it**: one short ``write()`` of a line to a local file
  per start or stop (no ``fsync``); a failing write is logged as one warning line in the hub's
  log, never raised (the next pass reconciles what it missed).
- **Bounded**: when the file reaches ``max_bytes`` the handler renames it to ``FILE.1`` (replacing
  the previous one) and starts a new one. The reader finishes ``FILE.1`` from where it stopped
  before it reads the new file, so nothing is lost unless the file turns over twice while the
  service is down (16 MiB by default, about 70,000 events; the reader then logs a warning).
- **Private**: the file is created owner-only (it names users).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..times import UTC, parse_machine_time

SERVER_ACTION = "https://schema.jupyter.org/jupyterhub/events/server-action"
ACTIONS = ("start", "stop")

#: Spool file size at which the hub starts a new file (the previous one is kept as FILE.1).
DEFAULT_MAX_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ServerEvent:
    """A server the hub started or stopped, at the time it did."""

    at: datetime  # aware UTC
    action: str  # "start" or "stop"
    user: str
    server: str  # "" for the default server

    @property
    def key(self) -> tuple[str, str]:
        return (self.user, self.server)


def parse_timestamp(text: str) -> datetime:
    """jupyter_events' ``__timestamp__`` in UTC."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"event timestamp {text!r} is not a time")
    return parse_machine_time(text).astimezone(UTC)


def parse_event(line: str | bytes) -> ServerEvent | None:
    """The server event on one spool line; None for another schema's event.

    ValueError for a line that is not a well-formed server-action event.
    """
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("__schema__") != SERVER_ACTION:
        return None
    action, user, server = data.get("action"), data.get("username"), data.get("servername")
    if action not in ACTIONS or not isinstance(user, str) or not isinstance(server, str):
        raise ValueError(f"not a server-action event: {data!r}")
    return ServerEvent(parse_timestamp(data.get("__timestamp__")), action, user, server)


# --- the hub's side -------------------------------------------------------------------------


class ServerEventSpool(logging.handlers.RotatingFileHandler):
    """A ``c.EventLogger.handlers`` entry that appends the hub's server-action events to
    ``path`` as JSON lines, for the workshop service to read. Never raises into the hub."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES):
        # opened (and its folder made) at the first event, so configuring a hub touches no
        # disk; one previous file kept (FILE.1) for a reader that lags
        super().__init__(
            Path(path).absolute(), mode="a", maxBytes=max_bytes, backupCount=1, encoding="utf-8", delay=True
        )
        self.addFilter(lambda record: _schema_of(record) == SERVER_ACTION)

    def _open(self):
        os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
        # owner-only: the lines name users
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")

    def format(self, record: logging.LogRecord) -> str:
        # jupyter_events hands the event capsule over as the record's msg (a dict) and sets a
        # JSON formatter of its own; write the capsule as it is, one compact line
        if isinstance(record.msg, dict):
            return json.dumps(record.msg, separators=(",", ":"), ensure_ascii=False, default=str)
        return super().format(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints a traceback to stderr; one line in the hub's log is enough,
        # and nothing may reach the hub's request that started or stopped the server
        try:
            import sys

            error = sys.exc_info()[1]
            logging.getLogger("JupyterHub").warning(
                "Workshop event spool %s: could not write a server event (%s: %s); the workshop "
                "service's next pass will reconcile it",
                self.baseFilename,
                type(error).__name__,
                error,
            )
        except Exception:  # pragma: no cover - logging itself failing: give up quietly
            pass


def _schema_of(record: logging.LogRecord) -> str | None:
    return record.msg.get("__schema__") if isinstance(record.msg, dict) else None


# --- the service's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolPosition:
    """How far the service has read: which file, and the byte offset just after the last line
    applied. A file is named by its device, inode and a checksum of its first line (an inode
    number is reused once a file is deleted); "" names no file yet."""

    file_id: str
    offset: int


@dataclass(frozen=True)
class SpoolBatch:
    events: list[ServerEvent]
    position: SpoolPosition  # after this batch
    rejected: int = 0  # lines that were not well-formed events (logged)


class EventSpoolReader:
    """Reads the spool file's new lines from a :class:`SpoolPosition`, in batches.

    Each batch carries the position after it: store both in one transaction and a crash
    between batches neither loses nor repeats an event.
    """

    def __init__(
        self, path: str | os.PathLike, batch_bytes: int = 256 * 1024, log: logging.Logger | None = None
    ):
        self.path = Path(path).absolute()
        self.rotated = self.path.with_name(self.path.name + ".1")
        self.batch_bytes = batch_bytes
        self.log = log or logging.getLogger(__name__)

    @staticmethod
    def _open(path: Path):
        """(open file, its id) — the id None while the file has no complete line; (None, None)
        when there is no file."""
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return None, None
        stat = os.fstat(f.fileno())
        head = f.read(4096)
        cut = head.find(b"\n")
        if cut < 0 and len(head) < 4096:
            return f, None
        first = head[:cut] if cut >= 0 else head
        return f, f"{stat.st_dev}:{stat.st_ino}:{zlib.crc32(first):08x}"

    def start_position(self) -> SpoolPosition:
        """Where a service that has never read the spool starts: after the last complete line
        (older events are history from before its database; the first pass records what runs)."""
        current, current_id = self._open(self.path)
        if current is not None:
            with current:
                if current_id is not None:
                    size = os.fstat(current.fileno()).st_size
                    start = max(0, size - 64 * 1024)
                    current.seek(start)
                    tail = current.read(size - start)
                    return SpoolPosition(current_id, start + tail.rfind(b"\n") + 1)
        old, old_id = self._open(self.rotated)
        if old is not None:
            with old:
                if old_id is not None:  # the current file has no complete line yet: all of it is new
                    return SpoolPosition(old_id, os.fstat(old.fileno()).st_size)
        return SpoolPosition("", 0)

    def read(self, position: SpoolPosition) -> Iterator[SpoolBatch]:
        """Batches of the events after ``position``, oldest first."""
        current, current_id = self._open(self.path)
        try:
            if current_id is not None and current_id == position.file_id:
                offset = position.offset
                if offset > os.fstat(current.fileno()).st_size:
                    self.log.warning(
                        "Event spool %s is shorter than what was read: reading it again", self.path
                    )
                    offset = 0
                yield from self._batches(current, current_id, offset, finished=False)
                return
            # the file read last has been renamed to FILE.1 (or none had been read yet)
            old, old_id = self._open(self.rotated)
            if old is not None:
                with old:
                    if old_id is not None and old_id == position.file_id:
                        yield from self._batches(old, old_id, position.offset, finished=True)
                    elif old_id is not None:
                        if position.file_id:
                            self.log.warning(
                                "Event spool %s turned over twice since it was last read: events in "
                                "between are lost (the passes reconcile servers, not their times)",
                                self.path,
                            )
                        yield from self._batches(old, old_id, 0, finished=True)
            elif position.file_id and current_id is not None:
                self.log.warning("Event spool %s was replaced: reading the new one from its start", self.path)
            if current_id is not None:
                yield from self._batches(current, current_id, 0, finished=False, announce=True)
        finally:
            if current is not None:
                current.close()

    def _batches(self, f, file_id: str, offset: int, *, finished: bool, announce: bool = False):
        """Batches of complete lines from ``offset``; a ``finished`` file (no longer written)
        is read to its end, a last line without a newline included."""
        f.seek(offset)
        while True:
            chunk = f.read(self.batch_bytes)
            cut = chunk.rfind(b"\n")
            if not chunk or (cut < 0 and len(chunk) < self.batch_bytes and not finished):
                # the end, or a line still being written (wait for its end)
                if announce:  # the first look at this file: save that it is the one read now
                    yield SpoolBatch([], SpoolPosition(file_id, offset))
                return
            if cut >= 0 and not (finished and len(chunk) < self.batch_bytes):
                chunk = chunk[: cut + 1]
            # else: a finished file's unterminated last line, or one line longer than a batch:
            # consumed (and rejected) rather than waited for forever
            offset += len(chunk)
            f.seek(offset)
            events, rejected = [], 0
            for line in chunk.splitlines():
                if not line.strip():
                    continue
                try:
                    event = parse_event(line)
                except ValueError as e:
                    rejected += 1
                    self.log.warning("Event spool %s: skipped a line that is not an event (%s)", self.path, e)
                    continue
                if event is not None:
                    events.append(event)
            announce = False
            yield SpoolBatch(events, SpoolPosition(file_id, offset), rejected)
