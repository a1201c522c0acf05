"""Login throttling: per-account backoff after failed logins.

Pure bookkeeping with an injected clock; the authenticator does the IO around it.

Why backoff and not lockout: with 50+ bit card passwords an online guesser gains nothing from
a few guesses a minute, while a hard lockout would let anyone in the room lock a neighbour out.
So failures beyond a free allowance delay the *next* attempt exponentially, capped at a
minute, and a success clears the record. Unknown usernames are tracked exactly like real ones,
so backoff behaviour reveals nothing about which accounts exist.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    forget_after: float = 3600.0

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 32)
        return min(self.max_delay, self.base_delay * 2**exponent)


class FailureTracker:
    """Consecutive login failures per username, bounded in memory (oldest forgotten first)."""

    def __init__(
        self,
        policy: BackoffPolicy = BackoffPolicy(),
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ):
        self.policy = policy
        self.clock = clock
        self.max_entries = max_entries
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def _entry(self, key: str) -> tuple[int, float] | None:
        entry = self._failures.get(key)
        if entry is not None and self.clock() - entry[1] > self.policy.forget_after:
            del self._failures[key]
            return None
        return entry

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        entry = self._entry(key)
        if entry is None:
            return 0.0
        failures, last = entry
        return max(0.0, last + self.policy.delay_after(failures) - self.clock())

    def record_failure(self, key: str) -> None:
        entry = self._entry(key)
        failures = entry[0] + 1 if entry else 1
        self._failures[key] = (failures, self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)

    def record_success(self, key: str) -> None:
        self._failures.pop(key, None)
