from jupyterhub_workshop.throttle import AdmissionGate, BackoffPolicy, FailureTracker, RetryTickets


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
    tracker = FailureTracker(BackoffPolicy(free_failures=1, base_delay=5, forget_after=100), clock, max_entries=2)
    tracker.record_failure("a")
    clock.now += 101
    assert tracker.retry_after("a") == 0  # forgotten
    for name in ("a", "b", "c"):
        tracker.record_failure(name)
    assert tracker.retry_after("a") == 0  # evicted, oldest first
    assert tracker.retry_after("c") == 5


def test_gate_admits_up_to_its_limit():
    gate = AdmissionGate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    gate.leave()
    assert gate.try_enter()


def test_retry_tickets_are_at_least_one_second_and_wait_for_the_admitted():
    clock = Clock()
    assert RetryTickets(clock).ticket(0, 0.02) == 1
    assert RetryTickets(clock).ticket(100, 0.02) == 2  # 100 logins ahead at 20 ms each


def test_a_refused_crowd_is_spread_over_the_time_to_serve_it():
    clock = Clock()
    tickets = RetryTickets(clock)
    waits = [tickets.ticket(100, 0.02) for _ in range(300)]
    # 100 admitted then 300 refused at 20 ms each: the last comes back after 8 s, not with the first
    assert waits[0] == 2 and waits[-1] == 8
    assert waits == sorted(waits)
    assert max(waits.count(w) for w in set(waits)) <= 50  # never more than a second's worth at once
    clock.now += 60  # long after the rush the queue of promises has drained
    assert tickets.ticket(0, 0.02) == 1
