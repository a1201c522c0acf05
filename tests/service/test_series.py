from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.service.series import bucket_peaks, slice_index, slice_seconds

T0 = datetime(2026, 7, 14, tzinfo=UTC)


def test_slices_are_equal_and_the_last_instant_is_in_the_last():
    width = slice_seconds(T0, T0 + timedelta(hours=1), 4)
    assert width == 900
    assert [slice_index(s, width, 4) for s in (0, 899.9, 900, 3599, 3600)] == [0, 0, 1, 3, 3]
    assert slice_seconds(T0, T0, 10) == 1.0  # a single instant
    with pytest.raises(ValueError):
        slice_seconds(T0, T0, 0)


def test_bucket_peaks_keep_each_slices_highest_values_in_any_order():
    # a year of minutes, out of order, two series: reduced to 100 points keeping the peaks
    points = [(T0 + timedelta(minutes=m), (m % 50, 1)) for m in range(525_600)]
    points = points[60:] + points[:60]
    spike = T0 + timedelta(days=200, minutes=7)
    points.append((spike, (999, 2)))
    peaks = bucket_peaks(iter(points), T0, T0 + timedelta(minutes=525_599), 100)
    assert len(peaks) == 100
    assert [at for at, _ in peaks] == sorted(at for at, _ in peaks) and peaks[0][0] == T0
    ((slice_start, _),) = [(at, v) for at, v in peaks if v == (999, 2)]
    assert slice_start <= spike < slice_start + timedelta(days=365 / 100)
    assert all(values == (49, 1) for _, values in peaks if values != (999, 2))
    assert bucket_peaks([(T0, (5,))], T0, T0, 10) == [(T0, (5,))]
