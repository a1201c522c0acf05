"""A dependency-free progress display: a bar on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None):
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._next_line_at = 0.25  # plain-line mode: report at 25 %, 50 %, ...

    def __call__(self, n: int = 1) -> None:
        self.done += n
        fraction = self.done / self.total
        if self.tty:
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            if self.done >= self.total:
                self.stream.write(f"  {time.monotonic() - self.started:.1f}s\n")
            self.stream.flush()
        elif fraction >= self._next_line_at or self.done >= self.total:
            self.stream.write(
                f"{self.label}: {self.done}/{self.total} ({time.monotonic() - self.started:.1f}s)\n"
            )
            self.stream.flush()
            while self._next_line_at <= fraction:
                self._next_line_at += 0.25
