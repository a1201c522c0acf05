from datetime import UTC, datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.times import as_utc, parse_machine_time, parse_typed_time

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
