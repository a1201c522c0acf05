import pytest

from jupyterhub_workshop.homes.manifest import (
    Manifest,
    Record,
    check_home_name,
    coverage,
    may_delete,
    why_archive,
)


def record(home, fingerprint="f1", size=100):
    return Record(
        home, f"{home}.tar.gz", "0" * 64, size, 3, 1, 2, 50, fingerprint, "2026-07-17T20:00:00Z", "u"
    )


def test_why_archive():
    r = record("claim-a")
    assert why_archive(None, "f1", None) == "not archived yet"
    assert why_archive(r, "f2", 100) == "changed since its archive was verified"
    assert why_archive(r, "f1", None) == "its archive claim-a.tar.gz is missing"
    assert "not the 100 verified" in why_archive(r, "f1", 99)
    assert why_archive(r, "f1", 100) is None


def test_manifest_round_trip_and_refusals():
    m = Manifest().with_record(record("claim-b")).with_record(record("claim-a"))
    text = m.dumps()
    assert text.index("claim-a") < text.index("claim-b")
    assert Manifest.loads(text) == m
    with pytest.raises(ValueError, match="not JSON"):
        Manifest.loads("{")
    with pytest.raises(ValueError, match="not a jupyterhub-workshop"):
        Manifest.loads('{"homes": []}')


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x.partial"])
def test_names_that_cannot_name_an_archive(name):
    with pytest.raises(ValueError):
        check_home_name(name)


def test_coverage_and_the_delete_decision():
    m = Manifest().with_record(record("claim-a")).with_record(record("claim-b"))
    stored = {"claim-a.tar.gz": 100, "claim-b.tar.gz": 7}
    cover = coverage(["claim-a", "claim-b", "claim-c"], m, stored)
    assert cover.covered == ("claim-a",)
    assert cover.missing == ("claim-c",)
    assert cover.damaged == (("claim-b", "its archive claim-b.tar.gz is 7 bytes, not 100"),)
    assert not cover.complete
    changed = coverage(["claim-a"], m, stored, {"claim-a": "other"})
    assert changed.damaged == (("claim-a", "changed since its archive was verified"),)

    refused = may_delete(["claim-a", "claim-c"], cover, {"claim-a": ["jupyter-a"]}, False)
    assert not refused.allowed
    assert refused.reasons == (
        "claim-a is in use by jupyter-a: stop those servers first",
        "claim-c has no verified archive",
        "claim-b: its archive claim-b.tar.gz is 7 bytes, not 100",
    )
    assert may_delete(["claim-a"], coverage(["claim-a"], m, stored), {}, False).allowed
    assert may_delete(["claim-a"], None, {}, False).reasons == ("no archive manifest was found",)
    # saying there is no archive never lets a home in use go
    assert may_delete(["claim-c"], None, {}, True).allowed
    assert not may_delete(["claim-a"], None, {"claim-a": ["p"]}, True).allowed
