import pytest

from jupyterhub_workshop.rehearsal.plan.quantities import (
    GIB,
    MIB,
    format_memory,
    parse_cpu,
    parse_memory,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("7G", 7 * GIB),
        ("7Gi", 7 * GIB),
        ("7GB", 7 * GIB),
        ("512M", 512 * MIB),
        ("128Mi", 128 * MIB),
        ("1.5T", int(1.5 * 1024 * GIB)),
        ("10", 10 * GIB),
        ("0", 0),
        (2, 2 * GIB),
    ],
)
def test_memory_units_are_binary_like_jupyterhub(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["seven", "7X", "-1G", "G", "7 iG"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_memory(text)


def test_cpu_amounts():
    assert parse_cpu("1.75") == 1.75
    assert parse_cpu("500m") == 0.5
    for bad in ("-1", "one", "inf"):
        with pytest.raises(ValueError):
            parse_cpu(bad)


def test_memory_is_shown_in_gib_or_mib():
    assert format_memory(7 * GIB) == "7.0 GiB" and format_memory(512 * MIB) == "512 MiB"
