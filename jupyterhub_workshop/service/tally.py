"""Running servers and active users between two samples, with their peaks: pure bookkeeping.

A sample is taken once a pass, but a class that starts and stops between two passes never
shows in a value read at pass time. The tally follows every start and stop the service learns
of (the hub's events, as they are applied to the usage records) and keeps the highest counts
since the last sample; the pass refreshes it from the hub's own listing and takes the sample.

Definitions (the same at pass time and between passes):

- **running servers**: servers with an open session (ready, or being stopped);
- **active users**: users with a running server whose last activity is within ``window`` of
  the moment counted. A server the hub has just started counts as active at its start.

Times passed in may lag the last refresh (events read after the listing that already shows
their effect); they are counted at the refresh time, so a count never mixes two moments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..times import as_utc

Key = tuple[str, str]  # (user, server name)


@dataclass(frozen=True)
class TallySample:
    active_users: int  # at the moment of the sample
    running_servers: int
    peak_active_users: int  # the highest since the previous sample, this moment included
    peak_running_servers: int


class UsageTally:
    def __init__(self, window: timedelta):
        if window <= timedelta(0):
            raise ValueError("the active window must be positive")
        self.window = window
        self.running: dict[Key, datetime | None] = {}  # server -> its last activity, if known
        self.as_of: datetime | None = None
        self.peak_active = 0
        self.peak_running = 0

    def counts(self, at: datetime) -> tuple[int, int]:
        """(active users, running servers) at ``at``."""
        since = as_utc(at) - self.window
        active = {user for (user, _), seen in self.running.items() if seen is not None and seen >= since}
        return len(active), len(self.running)

    def _at(self, at: datetime) -> datetime:
        at = as_utc(at)
        return at if self.as_of is None or at > self.as_of else self.as_of

    def _note(self, at: datetime) -> None:
        active, running = self.counts(at)
        self.peak_active = max(self.peak_active, active)
        self.peak_running = max(self.peak_running, running)
        self.as_of = at

    def refresh(self, running: Mapping[Key, datetime | None], at: datetime) -> None:
        """The servers running at ``at`` and their last activity, as the hub lists them."""
        at = self._at(at)
        self.running = {key: (as_utc(seen) if seen else None) for key, seen in running.items()}
        self._note(at)

    def started(self, key: Key, at: datetime) -> None:
        at = self._at(at)
        seen = self.running.get(key)
        self.running[key] = at if seen is None or seen < at else seen
        self._note(at)

    def stopped(self, key: Key, at: datetime) -> None:
        # a stop lowers both counts: no new peak; the moment still moves on
        self.as_of = self._at(at)
        self.running.pop(key, None)

    def take(self, at: datetime) -> TallySample:
        """The sample at ``at``: counts now and the peaks since the last sample; the peaks
        start again from the counts now."""
        at = self._at(at)
        self._note(at)
        active, running = self.counts(at)
        sample = TallySample(active, running, self.peak_active, self.peak_running)
        self.peak_active, self.peak_running = active, running
        return sample
