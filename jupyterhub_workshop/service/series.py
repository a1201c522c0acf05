"""Reducing a long time series to what a chart can show: the peaks of equal time slices.

A chart is a few hundred pixels wide; a year of one-minute samples is half a million points.
Peaks are kept (not averages) because capacity is planned for the busiest moment. The store
does the same reduction in SQL where it can (``UsageStore.sample_peaks``); this is the
definition, and the fallback for databases without a usable date arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta


def slice_seconds(first: datetime, last: datetime, slices: int) -> float:
    """Width of each of ``slices`` equal slices of [first, last]; 1 s when they coincide."""
    if slices < 1:
        raise ValueError("slices must be at least 1")
    span = (last - first).total_seconds()
    return span / slices if span > 0 else 1.0


def slice_index(seconds_after_first: float, width: float, slices: int) -> int:
    """The slice a point falls in; the last instant belongs to the last slice."""
    return min(slices - 1, max(0, int(seconds_after_first // width)))


def add_peak(peaks: dict[int, tuple], index: int, values: tuple) -> None:
    """Fold ``values`` into slice ``index``, keeping the highest of each."""
    held = peaks.get(index)
    peaks[index] = values if held is None else tuple(map(max, held, values))


def peaks_in_order(peaks: dict[int, tuple], first: datetime, width: float) -> list[tuple[datetime, tuple]]:
    """(start of the slice, its peaks) for each non-empty slice, in time order."""
    return [(first + timedelta(seconds=index * width), peaks[index]) for index in sorted(peaks)]


def bucket_peaks(
    points: Iterable[tuple[datetime, tuple[float, ...]]], first: datetime, last: datetime, slices: int
) -> list[tuple[datetime, tuple[float, ...]]]:
    """For each non-empty slice of [first, last], its start and the highest of each value,
    in time order. Several series (a tuple of values per point) are reduced in one pass.

    Points may arrive in any order and are not kept, so a year of samples costs no memory.
    """
    width = slice_seconds(first, last, slices)
    peaks: dict[int, tuple[float, ...]] = {}
    for at, values in points:
        add_peak(peaks, slice_index((at - first).total_seconds(), width, slices), values)
    return peaks_in_order(peaks, first, width)
