"""The tally of running servers and active users between samples, and its peaks."""

from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.service.tally import TallySample, UsageTally

T0 = datetime(2026, 7, 14, 9, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_crowd_between_two_samples_is_its_peak():
    tally = UsageTally(WINDOW)
    tally.refresh({}, at(0))
    assert tally.take(at(0)) == TallySample(0, 0, 0, 0)
    # ten short sessions between two passes, at most five at once
    for i in range(5):
        tally.started((f"u{i}", ""), at(1 + i))
    for i in range(3):
        tally.stopped((f"u{i}", ""), at(10 + i))
    for i in range(5, 8):
        tally.started((f"u{i}", ""), at(15 + i))
    for i in range(3, 8):
        tally.stopped((f"u{i}", ""), at(30 + i))
    tally.started(("u8", ""), at(40))
    tally.started(("u9", ""), at(41))
    tally.stopped(("u8", ""), at(42))
    tally.stopped(("u9", ""), at(43))
    assert tally.take(at(60)) == TallySample(0, 0, 5, 5)  # the pass sees none; the peak is kept
    assert tally.take(at(120)) == TallySample(0, 0, 0, 0)  # and starts again


def test_active_users_follow_their_last_activity():
    tally = UsageTally(WINDOW)
    tally.refresh(
        {("a", ""): at(0), ("a", "gpu"): at(-30), ("b", ""): at(-700), ("c", ""): None},
        at(0),
    )
    assert tally.counts(at(0)) == (1, 4)  # a (two servers, one user); b idle too long; c never active
    assert tally.counts(at(601)) == (0, 4)
    tally.started(("d", ""), at(60))  # a server just started counts as active
    assert tally.counts(at(60)) == (2, 5)
    sample = tally.take(at(700))
    assert (sample.active_users, sample.running_servers) == (0, 5)  # a and d have dropped out
    assert (sample.peak_active_users, sample.peak_running_servers) == (2, 5)


def test_times_before_the_last_refresh_count_at_the_refresh():
    tally = UsageTally(WINDOW)
    tally.refresh({("a", ""): at(100), ("b", ""): at(100)}, at(100))
    tally.take(at(100))
    # an event read after the listing that already showed it: counted as of the listing
    tally.started(("a", ""), at(50))
    tally.stopped(("b", ""), at(60))
    assert tally.counts(at(100)) == (1, 1)
    assert tally.take(at(110)) == TallySample(1, 1, 2, 2)


def test_the_window_must_be_positive():
    with pytest.raises(ValueError):
        UsageTally(timedelta(0))
