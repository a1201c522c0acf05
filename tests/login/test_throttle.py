from jupyterhub_workshop.login.throttle import BackoffPolicy, FailureTracker


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_backoff_engages_after_free_failures_doubles_and_caps():
    policy = BackoffPolicy(free_failures=3, base_delay=2, max_delay=10)
    assert [policy.delay_after(n) for n in range(1, 8)] == [0, 0, 2, 4, 8, 10, 10]


def test_tracker_releases_after_the_delay_and_success_clears():
    clock = Clock()
    tracker = FailureTracker(BackoffPolicy(free_failures=2, base_delay=5, max_delay=60), clock)
    tracker.record_failure("ws001")
    assert tracker.retry_after("ws001") == 0
    tracker.record_failure("ws001")
    assert tracker.retry_after("ws001") == 5
    clock.now += 4
    assert tracker.retry_after("ws001") == 1
    clock.now += 1
    assert tracker.retry_after("ws001") == 0
    tracker.record_failure("ws001")
    assert tracker.retry_after("ws001") == 10
    tracker.record_success("ws001")
    assert tracker.retry_after("ws001") == 0
    assert tracker.retry_after("someone-else") == 0


def test_tracker_forgets_old_failures_and_bounds_memory():
    clock = Clock()
    tracker = FailureTracker(
        BackoffPolicy(free_failures=1, base_delay=5, forget_after=100), clock, max_entries=2
    )
    tracker.record_failure("a")
    clock.now += 101
    assert tracker.retry_after("a") == 0  # forgotten
    for name in ("a", "b", "c"):
        tracker.record_failure(name)
    assert tracker.retry_after("a") == 0  # evicted, oldest first
    assert tracker.retry_after("c") == 5
