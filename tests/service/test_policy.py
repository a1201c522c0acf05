"""The culling decision: idle, max age and the night window, exemptions, opt-outs, DST."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from jupyterhub_workshop.service.policy import (
    IDLE,
    MAX_AGE,
    NIGHT,
    CullPolicy,
    NightWindow,
    ServerInfo,
    cull_time,
    decide,
    warning,
)


def containing(window, now):
    """The window that holds ``now``, or None (the service needs only ``next``)."""
    start, end = window.next(now)
    return (start, end) if start <= now else None


DENVER = ZoneInfo("America/Denver")
UTC = UTC
NIGHTS = NightWindow.parse("22:00", "06:00", "America/Denver")
EARLY_HOURS = NightWindow.parse("01:00", "05:00", "America/Denver")
# Night-only policy, so tests of the window are not disturbed by idle culling.
NIGHT_ONLY = CullPolicy(idle_timeout=None, night=NIGHTS, exempt_groups=frozenset({"instructors"}))


def denver(month, day, hour, minute=0, *, year=2026, fold=0):
    return datetime(year, month, day, hour, minute, tzinfo=DENVER, fold=fold)


# A Tuesday afternoon in May (MDT, UTC-6), well away from DST changes.
AFTERNOON = denver(5, 12, 15, 0)


def server(
    user="alice",
    name="",
    *,
    admin=False,
    groups=(),
    started=None,
    idle=timedelta(0),
    now=AFTERNOON,
    ready=True,
):
    """A ready server started 10 min before ``now`` (unless given) and last active ``idle`` ago."""
    now_utc = now.astimezone(UTC)
    return ServerInfo(
        user=user,
        name=name,
        admin=admin,
        groups=frozenset(groups),
        started=started if started is not None else now_utc - max(idle, timedelta(minutes=10)),
        last_activity=now_utc - idle,
        ready=ready,
    )


def culled(decisions):
    return {(d.server.user, d.server.name): d.reason for d in decisions}


# --- idle -----------------------------------------------------------------------------------


def test_idle_server_is_culled_with_a_readable_detail():
    [decision] = decide([server(idle=timedelta(hours=1, minutes=12))], set(), CullPolicy(), AFTERNOON)
    assert decision.reason == IDLE
    assert decision.detail == "idle for 1 h 12 min (limit 1 h)"


def test_server_not_yet_idle_long_enough_is_kept():
    assert decide([server(idle=timedelta(minutes=59))], set(), CullPolicy(), AFTERNOON) == []


def test_idle_limit_is_inclusive():
    assert culled(decide([server(idle=timedelta(hours=1))], set(), CullPolicy(), AFTERNOON)) == {
        ("alice", ""): IDLE
    }


def test_idle_falls_back_to_start_time_when_never_active():
    never_active = ServerInfo(
        "alice", "", False, frozenset(), AFTERNOON - timedelta(hours=2), last_activity=None, ready=True
    )
    assert culled(decide([never_active], set(), CullPolicy(), AFTERNOON)) == {("alice", ""): IDLE}


@pytest.mark.parametrize("timeout", [None, timedelta(0), timedelta(minutes=-5)])
def test_idle_culling_is_off_without_a_positive_timeout(timeout):
    policy = CullPolicy(idle_timeout=timeout)
    assert decide([server(idle=timedelta(hours=5))], set(), policy, AFTERNOON) == []
    assert cull_time(server(idle=timedelta(hours=5)), False, policy, AFTERNOON) is None


def test_idle_time_is_real_elapsed_time_across_spring_forward():
    # 01:30 MST to 03:10 MDT on 2026-03-08 is 40 minutes, though the wall clock moved 1 h 40.
    last_active = denver(3, 8, 1, 30)
    now = denver(3, 8, 3, 10)
    sleepy = ServerInfo("alice", "", False, frozenset(), last_active, last_active, ready=True)
    assert decide([sleepy], set(), CullPolicy(), now) == []
    assert cull_time(sleepy, False, CullPolicy(), now) == (datetime(2026, 3, 8, 9, 30, tzinfo=UTC), IDLE)


# --- max age --------------------------------------------------------------------------------


def test_server_older_than_max_age_is_culled_even_when_active():
    policy = CullPolicy(max_age=timedelta(hours=8))
    old = server(started=AFTERNOON - timedelta(hours=9), idle=timedelta(minutes=1))
    young = server("bob", started=AFTERNOON - timedelta(hours=7), idle=timedelta(minutes=1))
    [decision] = decide([old, young], set(), policy, AFTERNOON)
    assert (decision.server.user, decision.reason) == ("alice", MAX_AGE)
    assert decision.detail == "running for 9 h (limit 8 h)"


def test_max_age_is_real_elapsed_time_across_spring_forward():
    # Started 20:00 MST on 2026-03-07 (03:00 UTC); eight hours later is 11:00 UTC, 05:00 MDT.
    started = denver(3, 7, 20, 0)
    overnight = ServerInfo("alice", "", False, frozenset(), started, last_activity=None, ready=True)
    policy = CullPolicy(idle_timeout=None, max_age=timedelta(hours=8))
    assert decide([overnight], set(), policy, denver(3, 8, 4, 30)) == []
    assert cull_time(overnight, False, policy, denver(3, 8, 4, 30)) == (
        datetime(2026, 3, 8, 11, tzinfo=UTC),
        MAX_AGE,
    )


# --- the night window -----------------------------------------------------------------------


def test_night_cull_inside_the_window_but_not_before_it():
    active = server(idle=timedelta(minutes=1), now=denver(5, 12, 23, 30))
    assert culled(decide([active], set(), NIGHT_ONLY, denver(5, 12, 23, 30))) == {("alice", ""): NIGHT}
    assert decide([active], set(), NIGHT_ONLY, denver(5, 12, 21, 59)) == []
    [decision] = decide([active], set(), NIGHT_ONLY, denver(5, 12, 22, 0))
    assert decision.detail == "night shutdown 22:00–06:00 (America/Denver)"


def test_window_across_midnight_is_one_night_for_opt_outs():
    evening, after_midnight = denver(5, 12, 23, 30), denver(5, 13, 2, 0)
    assert (
        NIGHTS.night_of(AFTERNOON)
        == NIGHTS.night_of(evening)
        == NIGHTS.night_of(after_midnight)
        == date(2026, 5, 12)
    )
    assert NIGHTS.night_of(denver(5, 13, 6, 0)) == date(2026, 5, 13)  # the end is exclusive

    # Alice opts out at 15:00; the service looks opt-outs up by the night it is culling.
    opt_outs = {NIGHTS.night_of(AFTERNOON): {"alice"}}
    for now in (evening, after_midnight):
        servers = [server("alice", now=now), server("bob", now=now)]
        tonight = opt_outs.get(NIGHTS.night_of(now), set())
        assert culled(decide(servers, tonight, NIGHT_ONLY, now)) == {("bob", ""): NIGHT}

    # The opt-out does not carry over to the next night.
    next_night = denver(5, 13, 23, 0)
    assert opt_outs.get(NIGHTS.night_of(next_night), set()) == set()


def test_window_not_crossing_midnight():
    # 01:00-05:00 MDT is 07:00-11:00 UTC.
    night = (datetime(2026, 5, 13, 7, tzinfo=UTC), datetime(2026, 5, 13, 11, tzinfo=UTC))
    assert containing(EARLY_HOURS, denver(5, 13, 0, 59)) is None
    assert containing(EARLY_HOURS, denver(5, 13, 1, 0)) == night
    assert containing(EARLY_HOURS, denver(5, 13, 4, 59)) == night
    assert containing(EARLY_HOURS, denver(5, 13, 5, 0)) is None
    assert EARLY_HOURS.next(denver(5, 12, 23, 0)) == night
    # An opt-out in the afternoon is for the window starting after midnight.
    assert EARLY_HOURS.night_of(AFTERNOON) == EARLY_HOURS.night_of(denver(5, 13, 2, 0)) == date(2026, 5, 13)
    assert EARLY_HOURS.night_of(denver(5, 13, 5, 0)) == date(2026, 5, 14)

    policy = CullPolicy(idle_timeout=None, night=EARLY_HOURS)
    assert decide([server()], set(), policy, denver(5, 12, 23, 0)) == []
    assert culled(decide([server()], set(), policy, denver(5, 13, 3, 0))) == {("alice", ""): NIGHT}


def test_opted_out_exempt_group_and_admin_survive_the_night_but_a_neighbour_does_not():
    servers = [
        server("alice"),
        server("ian", groups={"instructors"}),
        server("root", admin=True),
        server("bob", groups={"participants"}),
    ]
    assert culled(decide(servers, {"alice"}, NIGHT_ONLY, denver(5, 12, 23, 0))) == {("bob", ""): NIGHT}


def test_admins_are_night_culled_when_not_exempt():
    policy = CullPolicy(idle_timeout=None, night=NIGHTS, exempt_admins=False)
    assert culled(decide([server("root", admin=True)], set(), policy, denver(5, 12, 23, 0))) == {
        ("root", ""): NIGHT
    }


def test_exempt_users_are_still_idle_culled():
    instructor = server("ian", groups={"instructors"}, idle=timedelta(hours=3))
    policy = CullPolicy(exempt_groups=frozenset({"instructors"}))
    assert culled(decide([instructor], set(), policy, AFTERNOON)) == {("ian", ""): IDLE}


def test_named_servers_are_decided_separately():
    servers = [server("alice", idle=timedelta(hours=2)), server("alice", "gpu", idle=timedelta(minutes=5))]
    assert culled(decide(servers, set(), CullPolicy(), AFTERNOON)) == {("alice", ""): IDLE}
    at_night = CullPolicy(night=NIGHTS)
    evening = denver(5, 12, 23, 0)
    servers = [server("alice", now=evening), server("alice", "gpu", now=evening)]
    assert culled(decide(servers, set(), at_night, evening)) == {
        ("alice", ""): NIGHT,
        ("alice", "gpu"): NIGHT,
    }


def test_pending_servers_are_never_culled():
    now = denver(5, 12, 23, 0)
    pending = server(idle=timedelta(hours=5), started=now - timedelta(hours=30), now=now, ready=False)
    policy = CullPolicy(night=NIGHTS, max_age=timedelta(hours=8))
    assert decide([pending], set(), policy, now) == []
    assert cull_time(pending, False, policy, now) is None


@pytest.mark.parametrize(
    "now, reason",
    [(denver(5, 12, 23, 0), NIGHT), (denver(5, 12, 21, 0), MAX_AGE)],
)
def test_strongest_reason_is_reported(now, reason):
    everything = server(idle=timedelta(hours=2), started=now - timedelta(hours=10), now=now)
    policy = CullPolicy(night=NIGHTS, max_age=timedelta(hours=8))
    [decision] = decide([everything], set(), policy, now)
    assert decision.reason == reason


def test_idle_is_reported_when_nothing_stronger_applies():
    now = denver(5, 12, 21, 0)
    policy = CullPolicy(night=NIGHTS, max_age=timedelta(hours=8))
    assert culled(decide([server(idle=timedelta(hours=2), now=now)], set(), policy, now)) == {
        ("alice", ""): IDLE
    }


# --- cull_time ------------------------------------------------------------------------------


def test_cull_time_is_the_earliest_of_idle_and_night():
    policy = CullPolicy(night=NIGHTS)
    soon_idle = server(idle=timedelta(minutes=30), now=denver(5, 12, 21, 0))
    assert cull_time(soon_idle, False, policy, denver(5, 12, 21, 0)) == (denver(5, 12, 21, 30), IDLE)
    busy = server(idle=timedelta(minutes=10), now=denver(5, 12, 21, 50))
    assert cull_time(busy, False, policy, denver(5, 12, 21, 50)) == (denver(5, 12, 22, 0), NIGHT)


def test_cull_time_is_none_when_exempt_and_no_idle_limit():
    assert cull_time(server("ian", groups={"instructors"}), False, NIGHT_ONLY, AFTERNOON) is None
    assert cull_time(server("bob"), False, NIGHT_ONLY, AFTERNOON) == (denver(5, 12, 22, 0), NIGHT)


def test_cull_time_for_an_opted_out_user_is_the_following_night():
    evening = denver(5, 12, 23, 0)
    assert cull_time(server(now=evening), True, NIGHT_ONLY, evening) == (denver(5, 13, 22, 0), NIGHT)


def test_cull_time_of_an_overdue_server_is_now_with_the_reason_decide_gives():
    now = denver(5, 12, 23, 0)
    overdue = server(idle=timedelta(hours=2), started=now - timedelta(hours=10), now=now)
    policy = CullPolicy(night=NIGHTS, max_age=timedelta(hours=8))
    [decision] = decide([overdue], set(), policy, now)
    assert cull_time(overdue, False, policy, now) == (now, decision.reason) == (now, NIGHT)


# --- warning --------------------------------------------------------------------------------


def test_warning_appears_within_warn_before_and_not_earlier():
    assert warning(True, False, False, NIGHT_ONLY, denver(5, 12, 21, 29)) is None
    assert warning(True, False, False, NIGHT_ONLY, denver(5, 12, 21, 30)) == (
        "Running servers are stopped at 22:00 (America/Denver) tonight. To keep yours running, opt out for tonight."
    )
    during = warning(True, False, False, NIGHT_ONLY, denver(5, 13, 2, 0))
    assert during is not None and "until 06:00 (America/Denver)" in during
    assert warning(True, False, False, NIGHT_ONLY, denver(5, 13, 6, 0)) is None


def test_warning_respects_a_custom_warn_before():
    policy = CullPolicy(night=NIGHTS, warn_before=timedelta(hours=2))
    assert warning(True, False, False, policy, denver(5, 12, 20, 0)) is not None
    assert warning(True, False, False, policy, denver(5, 12, 19, 59)) is None


@pytest.mark.parametrize(
    "running, opted_out, exempt, policy",
    [
        (True, True, False, NIGHT_ONLY),
        (True, False, True, NIGHT_ONLY),
        (False, False, False, NIGHT_ONLY),
        (True, False, False, CullPolicy()),  # no night window configured
    ],
)
def test_no_warning_for_users_the_night_cull_will_not_touch(running, opted_out, exempt, policy):
    assert warning(True, False, False, NIGHT_ONLY, denver(5, 12, 21, 45)) is not None
    assert warning(running, opted_out, exempt, policy, denver(5, 12, 21, 45)) is None


# --- configuration --------------------------------------------------------------------------


def test_parse_reads_24_hour_times():
    assert NightWindow.parse("22:00", "6:30", "America/Denver") == NightWindow(
        time(22), time(6, 30), "America/Denver"
    )


@pytest.mark.parametrize("bad", ["25:00", "7pm", "22:60", "", "22"])
def test_parse_rejects_bad_times_by_name(bad):
    with pytest.raises(ValueError, match=f"start '{bad}'"):
        NightWindow.parse(bad, "06:00", "America/Denver")
    with pytest.raises(ValueError, match=f"end '{bad}'"):
        NightWindow.parse("22:00", bad, "America/Denver")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "", "../etc/passwd"])
def test_unknown_time_zone_is_rejected(zone):
    with pytest.raises(ValueError, match=f"unknown time zone '{zone}'"):
        NightWindow.parse("22:00", "06:00", zone)


def test_window_needs_a_duration():
    with pytest.raises(ValueError, match="starts and ends at 22:00"):
        NightWindow.parse("22:00", "22:00", "America/Denver")


def test_naive_datetimes_are_rejected():
    naive = datetime(2026, 5, 12, 23, 0)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        decide([server()], set(), CullPolicy(), naive)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        containing(NIGHTS, naive)
    with pytest.raises(ValueError, match="alice/ last_activity must be timezone-aware"):
        unaware = ServerInfo("alice", "", False, frozenset(), AFTERNOON, naive, ready=True)
        decide([unaware], set(), CullPolicy(), AFTERNOON)


# --- daylight saving time (America/Denver: 2026-03-08 spring forward, 2026-11-01 fall back) -


def test_night_across_spring_forward_is_seven_hours():
    # 22:00 MST (UTC-7) to 06:00 MDT (UTC-6).
    start, end = datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert containing(NIGHTS, denver(3, 8, 5, 30)) == (start, end)
    assert containing(NIGHTS, denver(3, 8, 6, 30)) is None  # 12:30 UTC: over, by the new offset
    assert NIGHTS.night_of(denver(3, 8, 5, 30)) == date(2026, 3, 7)
    now = denver(3, 8, 5, 59)
    assert culled(decide([server(now=now)], set(), NIGHT_ONLY, now)) == {("alice", ""): NIGHT}


def test_night_across_fall_back_is_nine_hours():
    # 22:00 MDT (UTC-6) to 06:00 MST (UTC-7).
    start, end = datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 1, 13, tzinfo=UTC)
    assert NIGHTS.next(denver(10, 31, 15, 0)) == (start, end)
    assert containing(NIGHTS, denver(11, 1, 5, 30)) == (start, end)  # 12:30 UTC: still night
    assert NIGHTS.night_of(denver(11, 1, 5, 30)) == date(2026, 10, 31)
    assert warning(True, False, False, NIGHT_ONLY, denver(11, 1, 5, 30)) == (
        "Running servers are being stopped for the night, until 06:00 (America/Denver). "
        "To keep yours running, opt out for tonight."
    )


def test_window_starting_in_the_repeated_hour_starts_at_its_first_occurrence():
    # 01:00 happens twice on 2026-11-01: first at 07:00 UTC (MDT), then at 08:00 UTC (MST).
    start, end = datetime(2026, 11, 1, 7, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert containing(EARLY_HOURS, denver(11, 1, 1, 30, fold=0)) == (start, end)
    assert containing(EARLY_HOURS, denver(11, 1, 1, 30, fold=1)) == (start, end)
    assert containing(EARLY_HOURS, denver(11, 1, 0, 59)) is None


def test_window_starting_in_the_skipped_hour_starts_after_the_gap():
    # 02:30 does not exist on 2026-03-08; zoneinfo reads it on the old offset: 09:30 UTC, 03:30 MDT.
    window = NightWindow.parse("02:30", "05:00", "America/Denver")
    assert containing(window, denver(3, 8, 3, 15)) is None
    assert containing(window, denver(3, 8, 3, 30)) == (
        datetime(2026, 3, 8, 9, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 11, 0, tzinfo=UTC),
    )
