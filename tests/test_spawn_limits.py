import pytest

from jupyterhub_workshop.spawn_limits import spawn_limits


def test_a_class_of_320_in_ten_minutes():
    # 32 arrivals a minute; on a cold cluster each spawn waits 5 min for a node plus 30 s to start
    cold = spawn_limits(320, 10, 30, 5, prewarmed=False, capacity=336)
    assert cold.spawn_seconds == 330 and cold.pending_at_once == pytest.approx(176)
    assert cold.concurrent_spawn_limit == 320  # all of them: z2jh's 64 turned most away
    assert (cold.concurrent_from, cold.burst_spawns, cold.people) == ("people", 352, 320)
    assert cold.start_timeout == 450
    warm = spawn_limits(320, 10, 30, 5, prewarmed=True, capacity=336)
    assert warm.pending_at_once == pytest.approx(16) and warm.concurrent_spawn_limit == 32
    assert warm.concurrent_from == "bursts"
    assert (warm.active_server_limit, warm.start_timeout, warm.http_timeout) == (336, 150, 60)


def test_small_and_slow_crowds_keep_a_floor():
    few = spawn_limits(8, 30, 20, 5, prewarmed=True, capacity=8)
    assert few.concurrent_spawn_limit == 10 and few.active_server_limit == 8
    assert (few.concurrent_from, few.burst_spawns) == ("minimum", 1)
    assert spawn_limits(0, 10, 30, 5, prewarmed=True, capacity=0).concurrent_spawn_limit == 10


def test_impossible_inputs_are_refused():
    with pytest.raises(ValueError):
        spawn_limits(10, 0, 30, 5, prewarmed=True, capacity=10)
