from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from jupyterhub_workshop.times import as_utc, local_days, parse_machine_time, parse_typed_time, typed_time

UTC = UTC


def test_typed_times_need_an_offset():
    assert parse_typed_time("2026-07-14T08:00:00Z") == datetime(2026, 7, 14, 8, tzinfo=UTC)
    assert parse_typed_time("2026-07-14T08:00:00z") == datetime(2026, 7, 14, 8, tzinfo=UTC)
    assert parse_typed_time(" 2026-07-14T08:00:00-06:00 ").utcoffset() == timedelta(hours=-6)
    with pytest.raises(ValueError, match="no UTC offset.*2026-07-14T08:00:00-06:00 or 2026-07-14T08:00:00Z"):
        parse_typed_time("2026-07-14T08:00:00")
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_typed_time("2026-07-14")  # a date alone is a naive midnight
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_typed_time("14/07/2026")


def test_machine_times_are_read_as_written():
    assert parse_machine_time("2026-07-14T08:00:00.123456Z") == datetime(
        2026, 7, 14, 8, 0, 0, 123456, tzinfo=UTC
    )
    assert parse_machine_time("2026-07-14T08:00:00+02:00").utcoffset() == timedelta(hours=2)
    assert parse_machine_time(None) is None and parse_machine_time("") is None
    # jupyter_events' habit (an offset and a Z), and a time with neither: both UTC
    assert parse_machine_time("2026-07-14T08:00:00.5+00:00Z") == datetime(
        2026, 7, 14, 8, 0, 0, 500000, tzinfo=UTC
    )
    assert parse_machine_time("2026-07-14T08:00:00") == datetime(2026, 7, 14, 8, tzinfo=UTC)


def test_utc_refuses_naive_times_and_names_them():
    denver = datetime(2026, 7, 14, 8, tzinfo=timezone(timedelta(hours=-6)))
    assert as_utc(denver) == datetime(2026, 7, 14, 14, tzinfo=UTC)
    with pytest.raises(ValueError, match="started must be timezone-aware"):
        as_utc(datetime(2026, 7, 14, 8), "started")
    with pytest.raises(TypeError, match="must be a datetime"):
        as_utc("2026-07-14")


def test_local_days_run_midnight_to_midnight_on_the_wall_clock_and_read_back_as_typed():
    denver = ZoneInfo("America/Denver")
    start, end = local_days(date(2026, 3, 8), date(2026, 3, 8), denver)  # spring forward
    assert (typed_time(start), typed_time(end)) == ("2026-03-08T00:00-07:00", "2026-03-09T00:00-06:00")
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    assert parse_typed_time(typed_time(start)) == start
    start, end = local_days(date(2026, 7, 14), date(2026, 7, 16), ZoneInfo("UTC"))
    assert (typed_time(start), typed_time(end)) == ("2026-07-14T00:00Z", "2026-07-17T00:00Z")
    with pytest.raises(ValueError):
        typed_time(datetime(2026, 7, 14))  # naive: no offset to type
