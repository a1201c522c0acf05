"""Admission of logins during a rush: how many are in flight, whose turn it is, when the
refused should come back.

A crowd pressing "Sign in" together must not stall the hub. So at most ``limit`` logins are
admitted at once; ``concurrent`` of them are processed (password check plus the hub's own
sign-in work), the rest wait their turn in arrival order with the request held open, which
costs the hub nothing. Beyond the limit a login is refused at once with a ``Retry-After``
spread so that the refused come back at the pace the hub can serve them.

Bookkeeping only: the login handler and the authenticator do the HTTP around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable


class RetryTickets:
    """Retry-After seconds for refused logins, spread over the time the hub needs to serve them.

    Everyone refused in the same instant would otherwise come back in the same instant, and
    the hub would spend that moment turning most of them away again instead of answering
    others. So each refusal gets the next free "slot": after the logins already admitted
    have drained, one login's service time after the previous refusal's slot.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._next_free = 0.0

    def ticket(self, admitted: int, seconds_per_login: float) -> int:
        """Seconds (at least 1) a refused login should wait, given ``admitted`` logins ahead
        of it and the hub's current time per login."""
        now = self.clock()
        slot = max(self._next_free, now + admitted * seconds_per_login)
        self._next_free = slot + seconds_per_login
        return max(1, math.ceil(slot - now))


class Admission:
    """Logins in flight, their turns, and the Retry-After of those refused.

    ``seconds_per_login`` is the first guess of the hub's time per login; it becomes a moving
    average of measured turns. Guess low: a refusal told to come back too early costs a second
    cheap refusal, one told to come back too late leaves the hub idle.
    """

    def __init__(
        self,
        limit: int,
        concurrent: int,
        seconds_per_login: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit = limit
        self.concurrent = max(1, concurrent)
        self.in_flight = 0
        self.seconds_per_login = seconds_per_login
        self._clock = clock
        self._turns = asyncio.Semaphore(self.concurrent)
        self._tickets = RetryTickets(clock)

    def try_admit(self) -> bool:
        """Admit one login (``release`` it when done), or False when ``limit`` are in flight."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def turn(self):
        """Wait for one of the ``concurrent`` turns, in arrival order, and time it."""
        async with self._turns:
            started = self._clock()
            try:
                yield
            finally:
                per_login = (self._clock() - started) / self.concurrent
                self.seconds_per_login += 0.1 * (per_login - self.seconds_per_login)

    def retry_after(self) -> int:
        """Seconds a refused login should wait: its fair turn behind everyone admitted or
        refused before it. At least 1."""
        return self._tickets.ticket(self.in_flight, self.seconds_per_login)
