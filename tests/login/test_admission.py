import asyncio

from jupyterhub_workshop.login.admission import Admission, RetryTickets


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_admits_up_to_its_limit():
    admission = Admission(limit=2, concurrent=1, seconds_per_login=0.02)
    assert admission.try_admit() and admission.try_admit()
    assert not admission.try_admit()
    admission.release()
    assert admission.try_admit()


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


def test_a_full_line_asks_logins_to_come_back_later_in_turn():
    admission = Admission(limit=0, concurrent=1, seconds_per_login=0.02, clock=Clock())
    assert not admission.try_admit()
    first, second = admission.retry_after(), admission.retry_after()
    assert 1 <= first <= second


async def test_admitted_logins_take_turns_in_arrival_order():
    admission = Admission(limit=10, concurrent=2, seconds_per_login=0.02)
    turns = admission.concurrent
    order = []
    entered = [asyncio.Event() for _ in range(turns + 2)]
    holds = [asyncio.Event() for _ in range(turns + 2)]

    async def login(i):
        async with admission.turn():
            order.append(i)
            entered[i].set()
            await holds[i].wait()

    tasks = [asyncio.create_task(login(i)) for i in range(len(holds))]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered[:turns])), 5)
    assert order == list(range(turns))  # every task has started by now: the rest wait
    holds[0].set()  # one turn frees: the next in line, not any other, takes it
    await asyncio.wait_for(entered[turns].wait(), 5)
    assert order == list(range(turns + 1))
    for hold in holds:
        hold.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == list(range(len(holds)))


async def test_turns_are_timed_into_the_time_per_login():
    clock = Clock()
    admission = Admission(limit=10, concurrent=1, seconds_per_login=1.0, clock=clock)
    async with admission.turn():
        clock.now += 0.5
    # a moving average: a tenth of the way from the guess to the measured 0.5 s
    assert abs(admission.seconds_per_login - 0.95) < 1e-9
