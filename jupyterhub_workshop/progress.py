"""Progress of a command on stderr, with tqdm: redrawn in place on a terminal, and a plain line
now and then where output is kept (CI logs, pipes), never carriage returns there.

Card generation counts hashed passwords with :meth:`Progress.update`; the load test sets the
count of finished users and a status (users per stage) with :meth:`Progress.show`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

TERMINAL_INTERVAL = 0.5  # seconds between redraws
PLAIN_INTERVAL = 5.0  # seconds between plain lines: a log should stay readable

TERMINAL_FORMAT = "{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class PlainLines:
    """A file for tqdm that turns each in-place redraw (``"\\r" + line + padding``) into a line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Progress(tqdm):
    """A tqdm bar for this package's commands (a context manager, like tqdm).

    On a terminal it is redrawn in place; elsewhere each redraw is a plain line, printed only
    when the count or the status (shown after the count) changed since the last line.
    :meth:`update` redraws at most every ``interval`` seconds (default: 0.5 on a terminal, 5
    elsewhere); :meth:`show` redraws at once, for a caller that keeps that pace itself.
    """

    monitor_interval = 0  # tqdm's monitor thread would redraw from another thread

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        file: TextIO | None = None,
        interval: float | None = None,
        status: str = "",
        unit: str = "it",
        unit_scale: bool = False,
    ):
        file = file if file is not None else sys.stderr
        self.terminal = is_terminal(file)
        self._last_line: tuple | None = None
        if interval is None:
            interval = TERMINAL_INTERVAL if self.terminal else PLAIN_INTERVAL
        super().__init__(
            total=total,
            desc=desc,
            file=file if self.terminal else PlainLines(file),
            mininterval=interval,
            disable=False,  # tqdm's default disables itself when not on a terminal
            dynamic_ncols=self.terminal,
            bar_format=TERMINAL_FORMAT if self.terminal else PLAIN_FORMAT,
            postfix=status or None,
            unit=unit,
            unit_scale=unit_scale,
            unit_divisor=1024 if unit == "B" else 1000,
        )

    def show(self, n: int, status: str = "") -> None:
        """Set the count and the status, and redraw."""
        self.n = n
        self.set_postfix_str(status, refresh=False)
        self.refresh()

    def display(self, msg=None, pos=None):
        # in a log, a line that says the same again (only the clock moved) is noise
        if not self.terminal:
            line = (self.n, self.postfix)
            if line == self._last_line:
                return True
            self._last_line = line
        return super().display(msg, pos)
