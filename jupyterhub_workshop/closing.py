"""When the workshop ends: the closing time and what follows from it, as plain functions of the
settings and a clock. One home for the rule, used by the authenticator (sign-in), the hub's
pages (the banner), the service (the servers to stop, the admin page) and the chart's hub
configuration.

- From ``notice`` (default two days) before the closing time, every hub page carries a banner:
  "This hub closes on Fri 17 Jul at 18:00 (America/Denver). Download your work: <link>".
- At the closing time, participants can no longer sign in (the ``message`` says the workshop
  has ended and how to reach the organizers), and the service stops every running server with
  the reason ``closed``. Nothing is deleted: homes stay where they are for the archive.
- Staff (instructors, admins) may still sign in afterwards, to read the final report and check
  the archive; a server one of them starts after the closing time is theirs to use (it is
  stopped by the usual idle and night rules, not again as ``closed``).

Times: the closing time is typed by a person, so it must carry its offset (:mod:`.times`); it is
shown in the workshop's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from .times import as_utc, parse_typed_time, time_zone

DEFAULT_NOTICE_DAYS = 2.0
DEFAULT_MESSAGE = (
    "This workshop has ended and its hub is closed. Your files are kept: ask the organizers for "
    "a copy of your work."
)


@dataclass(frozen=True)
class Closing:
    """The hub's closing time and how it is announced."""

    at: datetime  # aware
    notice: timedelta = timedelta(days=DEFAULT_NOTICE_DAYS)
    zone: str = "UTC"  # where the time is shown
    message: str = DEFAULT_MESSAGE  # shown to those refused at sign-in afterwards

    def __post_init__(self):
        object.__setattr__(self, "at", as_utc(self.at, "closing time"))
        if self.notice < timedelta(0):
            raise ValueError("the closing notice cannot be negative")
        time_zone(self.zone)

    @classmethod
    def parse(
        cls,
        text: str,
        notice_days: float = DEFAULT_NOTICE_DAYS,
        zone: str = "UTC",
        message: str = "",
    ) -> Closing | None:
        """From settings: ``text`` an ISO 8601 time with an offset (empty: no closing);
        ValueError naming ``closing`` otherwise."""
        if not text:
            return None
        try:
            at = parse_typed_time(text)
        except ValueError as e:
            raise ValueError(f"closing: {e}") from None
        if notice_days is None or notice_days < 0:
            raise ValueError(f"closing notice days {notice_days!r} must be 0 or more")
        return cls(at, timedelta(days=notice_days), zone or "UTC", message or DEFAULT_MESSAGE)

    def closed(self, now: datetime) -> bool:
        """Whether the hub is closed at ``now``."""
        return as_utc(now, "now") >= self.at

    def announced(self, now: datetime) -> bool:
        """Whether the banner is shown at ``now``: from ``notice`` before the closing until it."""
        now = as_utc(now, "now")
        return self.at - self.notice <= now < self.at

    def local(self) -> str:
        """'Fri 17 Jul at 18:00 (America/Denver)'."""
        moment = self.at.astimezone(time_zone(self.zone))
        return f"{moment:%a %d %b} at {moment:%H:%M} ({self.zone})"

    def banner(self, download_url: str | None) -> str:
        """The banner's HTML; the download link only for someone signed in."""
        text = f"This hub closes on {escape(self.local())}."
        if download_url:
            text += (
                f' Download your work: <a href="{escape(download_url)}">your whole home as one archive</a>.'
            )
        return text


def closing_trait_value(text: str) -> str:
    """``text`` if it is a closing time :meth:`Closing.parse` takes (or empty), else the
    TraitError the authenticator's and the service's ``closing`` traits raise."""
    from traitlets import TraitError

    try:
        Closing.parse(text)
    except ValueError as e:
        raise TraitError(str(e)) from None
    return text


def may_sign_in(closing: Closing | None, staff: bool, now: datetime) -> bool:
    """Whether someone may sign in at ``now``: anyone before the closing, staff after it."""
    return closing is None or staff or not closing.closed(now)


def stopped_at_closing(closing: Closing | None, staff: bool, started: datetime | None, now: datetime) -> bool:
    """Whether a running server is stopped as ``closed`` at ``now``: once the hub is closed,
    every server that started before the closing time, and any participant's server."""
    if closing is None or not closing.closed(now):
        return False
    return not staff or started is None or as_utc(started) < closing.at
