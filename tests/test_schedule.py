"""The workshop's timetable and the pre-warm decision: a pure function of schedule and clock."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jupyterhub_workshop.schedule import (
    Schedule,
    next_prewarm,
    placeholders_for,
    prewarm_period,
    warm_users,
)
from jupyterhub_workshop.times import UTC

DENVER = ZoneInfo("America/Denver")
WEEK = Schedule.parse(
    {
        "timeZone": "America/Denver",
        "from": "2026-07-13",
        "until": "2026-07-16",
        "sessions": [{"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "17:00"}],
    }
)


def denver(month, day, hour, minute=0, year=2026):
    return datetime(year, month, day, hour, minute, tzinfo=DENVER)


def test_sessions_happen_on_their_days_in_the_workshops_zone():
    starts = [o.start.astimezone(DENVER) for o in WEEK.occurrences(denver(7, 1, 0), denver(8, 1, 0))]
    assert starts == [denver(7, d, 9) for d in (13, 14, 15, 16)]  # Mon-Thu, bounded by from/until
    first, *_ = WEEK.occurrences(denver(7, 13, 0), denver(7, 14, 0))
    assert (first.start, first.end) == (
        datetime(2026, 7, 13, 15, tzinfo=UTC),
        datetime(2026, 7, 13, 23, tzinfo=UTC),
    )
    assert WEEK.span() == (date(2026, 7, 13), date(2026, 7, 16))


@pytest.mark.parametrize(
    "now, warm",
    [
        (denver(7, 13, 8, 39), 0),  # before the lead
        (denver(7, 13, 8, 40), 300),  # 20 min before 09:00: keep capacity for all expected
        (denver(7, 13, 9, 29), 300),
        (denver(7, 13, 9, 30), 0),  # 30 min after the start the arrivals are in
        (denver(7, 13, 12, 0), 0),  # inside the session but past the hold: nothing extra
        (denver(7, 17, 8, 50), 0),  # Friday: no session
        (denver(7, 20, 8, 50), 0),  # the next Monday is past `until`
    ],
)
def test_warm_from_lead_until_hold(now, warm):
    assert warm_users(WEEK, now, expected=320, running=20) == warm


def test_only_the_people_without_a_server_are_kept_warm_for():
    now = denver(7, 14, 9, 5)
    assert warm_users(WEEK, now, expected=320, running=0) == 320
    assert warm_users(WEEK, now, expected=320, running=250) == 70
    assert warm_users(WEEK, now, expected=320, running=400) == 0  # more came than expected
    assert warm_users(WEEK, now, expected=320, running=-3) == 320


def test_sessions_past_midnight_and_their_next_day():
    night = Schedule.parse(
        {
            "timeZone": "Europe/Berlin",
            "sessions": [{"days": ["2026-07-15"], "start": "22:00", "end": "02:00"}],
        }
    )
    berlin = ZoneInfo("Europe/Berlin")
    (occurrence,) = night.occurrences(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC))
    assert (occurrence.start.astimezone(berlin), occurrence.end.astimezone(berlin)) == (
        datetime(2026, 7, 15, 22, tzinfo=berlin),
        datetime(2026, 7, 16, 2, tzinfo=berlin),
    )
    assert warm_users(night, datetime(2026, 7, 15, 21, 45, tzinfo=berlin), 10, 0) == 10
    assert warm_users(night, datetime(2026, 7, 16, 0, 15, tzinfo=berlin), 10, 0) == 0  # after midnight: held


def test_across_daylight_saving_changes():
    daily = Schedule.parse(
        {"timeZone": "America/Denver", "sessions": [{"days": ["Sun"], "start": "09:00", "end": "12:00"}]}
    )
    # spring forward (2026-03-08) and fall back (2026-11-01): 09:00 local each time, UTC moves
    spring = list(daily.occurrences(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)))
    assert [o.start.astimezone(DENVER).hour for o in spring] == [9, 9]
    assert [o.start.hour for o in spring] == [16, 15]  # MST then MDT
    fall = list(daily.occurrences(datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)))
    assert [o.start.hour for o in fall] == [15, 16]
    assert warm_users(daily, datetime(2026, 3, 8, 14, 45, tzinfo=UTC), 5, 0) == 5  # 08:45 MDT
    assert warm_users(daily, datetime(2026, 3, 8, 13, 45, tzinfo=UTC), 5, 0) == 0  # 07:45 MDT (08:45 MST)
    # a session in the hour that spring-forward skips starts after the gap (02:30 -> 03:30 MDT)
    gap = Schedule.parse(
        {
            "timeZone": "America/Denver",
            "sessions": [{"days": ["2026-03-08"], "start": "02:30", "end": "04:00"}],
        }
    )
    (occurrence,) = gap.occurrences(datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    assert occurrence.start.astimezone(DENVER) == datetime(2026, 3, 8, 3, 30, tzinfo=DENVER)


def test_a_session_may_expect_its_own_crowd():
    week = Schedule.parse(
        {
            "timeZone": "America/Denver",
            "expected": 300,
            "sessions": [
                {"days": ["2026-07-13"], "start": "09:00", "end": "17:00"},
                {"days": ["2026-07-14"], "start": "09:00", "end": "12:00", "expected": 40},
            ],
        }
    )
    assert warm_users(week, denver(7, 13, 8, 50), expected=999, running=0) == 300  # the schedule's
    assert warm_users(week, denver(7, 14, 8, 50), expected=999, running=10) == 30  # the session's


def test_a_clock_that_jumps_gets_the_answer_for_its_new_time():
    # no state carried between calls: a laptop resumed hours later, or NTP stepping back
    times = [denver(7, 13, 8, 45), denver(7, 13, 15, 0), denver(7, 13, 8, 50), denver(7, 14, 8, 41)]
    assert [warm_users(WEEK, t, 100, 0) for t in times] == [100, 0, 100, 100]


def test_the_current_and_next_prewarm_for_the_admin_page():
    assert prewarm_period(WEEK, denver(7, 13, 9, 0)) == (
        denver(7, 13, 8, 40).astimezone(UTC),
        denver(7, 13, 9, 30).astimezone(UTC),
    )
    assert next_prewarm(WEEK, denver(7, 13, 12, 0))[0] == denver(7, 14, 8, 40).astimezone(UTC)
    assert next_prewarm(WEEK, denver(7, 16, 12, 0)) is None  # the workshop is over
    custom = next_prewarm(WEEK, denver(7, 13, 7, 0), lead=timedelta(hours=1), hold=timedelta(0))
    assert custom == (denver(7, 13, 8, 0).astimezone(UTC), denver(7, 13, 9, 0).astimezone(UTC))


def test_placeholders_are_node_sized():
    assert placeholders_for(320, 4) == 80
    assert placeholders_for(321, 4) == 81
    assert placeholders_for(0, 4) == 0 and placeholders_for(-5, 4) == 0
    with pytest.raises(ValueError):
        placeholders_for(10, 0)


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "expected a mapping"),
        ({"sessions": []}, "sessions: expected a list"),
        (
            {"timeZone": "MST", "sessions": [{"days": ["Mon"], "start": "9:00", "end": "17:00"}]},
            "timeZone: unknown time zone 'MST'",
        ),
        (
            {"sessions": [{"days": ["Monday"], "start": "9:00", "end": "17:00"}]},
            r"sessions\[0\].days: 'Monday' is neither a weekday",
        ),
        (
            {"sessions": [{"days": ["Mon"], "start": "9", "end": "17:00"}]},
            r"sessions\[0\].start '9' is not a 24-hour",
        ),
        ({"sessions": [{"days": ["Mon"], "start": "9:00", "end": "9:00"}]}, "needs a duration"),
        (
            {"sessions": [{"days": ["Mon"], "start": "9:00", "end": "17:00", "users": 3}]},
            r"unknown key\(s\) \['users'\]",
        ),
        (
            {
                "from": "2026-07-20",
                "until": "2026-07-13",
                "sessions": [{"days": ["Mon"], "start": "9:00", "end": "17:00"}],
            },
            "until .* is before from",
        ),
        ({"expected": -1, "sessions": [{"days": ["Mon"], "start": "9:00", "end": "17:00"}]}, "expected: -1"),
        ({"timezone": "UTC", "sessions": []}, r"unknown key\(s\) \['timezone'\]"),
    ],
)
def test_bad_schedules_say_where_and_what(data, message):
    with pytest.raises(ValueError, match=message):
        Schedule.parse(data)


def test_weekday_sessions_without_bounds_cannot_be_planned():
    endless = Schedule.parse({"sessions": [{"days": ["Mon"], "start": "9:00", "end": "17:00"}]})
    with pytest.raises(ValueError, match="need `from` and `until`"):
        endless.span()
    assert warm_users(endless, datetime(2026, 7, 13, 8, 45, tzinfo=UTC), 3, 0) == 3  # the service needs none
