"""Times, one set of rules for the whole package.

Two kinds of text become times here:

- **typed by a person** (card validity windows, schedules, export ranges, ``--start``): ISO 8601
  with an explicit UTC offset (``Z`` allowed). A time without an offset is refused rather than
  guessed: the hub, the cluster and the organizer's laptop rarely share a time zone, and a card
  that opens an hour late at the door is worse than an error now.
- **written by a machine** (the hub's REST API, our own database): ISO 8601 that always carries
  its offset; read as is.

And wall-clock times of the workshop's own day (the night window, the sessions of a schedule):
``H:MM``/``HH:MM`` in a named IANA zone, because the venue's offset changes with summer time.

Every time handed around inside the package is timezone-aware.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EXAMPLE = "2026-07-14T08:00:00-06:00"


def parse_typed_time(text: str) -> datetime:
    """A time a person typed: ISO 8601 with an explicit offset; ValueError says what to write."""
    value = str(text).strip()
    if value.endswith("z"):
        value = value[:-1] + "Z"  # typed lower-case; Python reads only the capital
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (expected e.g. {EXAMPLE})") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add one, e.g. {value}-06:00 or {value}Z")
    return parsed


def aware(moment: datetime, what: str = "time") -> datetime:
    """``moment`` itself if it carries an offset; ValueError naming ``what`` otherwise."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment


def as_utc(moment: datetime, what: str = "time") -> datetime:
    """``moment`` in UTC; naive times are refused (ValueError naming ``what``)."""
    aware(moment, what)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def parse_machine_time(text: str | None) -> datetime | None:
    """A time a program wrote (the hub's API, its events, our database); None for empty.

    They carry their offset, except in two habits read as UTC, which is what they mean:
    jupyter_events writes an offset *and* a ``Z`` (``...+00:00Z``), and a time with neither.
    """
    if not text:
        return None
    if text.endswith("Z") and ("+" in text[10:] or "-" in text[10:]):
        text = text[:-1]
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_machine_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (``2026-07-14T09:00:00Z``), as the exports write times."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def now_utc() -> datetime:
    return datetime.now(UTC)


def local_days(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From midnight starting ``first`` to midnight ending ``last``, wall-clock days in ``zone``
    (23 or 25 hours long when the clocks change)."""
    return datetime.combine(first, time(0), zone), datetime.combine(last + timedelta(days=1), time(0), zone)


def typed_time(moment: datetime) -> str:
    """``moment`` as a person would type it (what :func:`parse_typed_time` reads): to the minute,
    with its offset, ``Z`` for UTC."""
    text = aware(moment).isoformat(timespec="minutes")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# The same rules as the chart's values.schema.json (tests/chart/test_settings_agree.py holds
# them together): ASCII H:MM or HH:MM, and a zone as Area/Location or UTC. Abbreviations such as
# MST and offsets such as Etc/GMT+7 are refused: they have no summer time, and a window set in
# one would start an hour off for half the year.
CLOCK_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
ZONE_NAME = re.compile(
    r"UTC|Etc/UTC|(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific)"
    r"/[A-Z][A-Za-z0-9_+-]*(/[A-Z][A-Za-z0-9_+-]*)?"
)


def parse_clock_time(value: str, what: str) -> time:
    """A wall-clock time such as ``22:00``; ValueError naming ``what`` otherwise."""
    match = CLOCK_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{what} {value!r} is not a 24-hour HH:MM time such as '22:00'")
    return time(int(match[1]), int(match[2]))


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (Area/Location or UTC); ValueError saying what to write."""
    try:
        if not isinstance(name, str) or ZONE_NAME.fullmatch(name) is None:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA Area/Location name such as 'America/Denver' (or UTC)"
        ) from None
