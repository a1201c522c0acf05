"""``homes archive`` to a directory (as on a volume claim): verified, resumable, nothing half-written."""

import json
import shutil

import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.homes import archive, tarball
from jupyterhub_workshop.homes.destinations import Directory

from .helpers import assert_same_tree, fill_home


@pytest.fixture
def homes(tmp_path):
    root = tmp_path / "homes"
    for i, name in enumerate(["claim-ws001", "claim-ws002", "claim-wsinstructor01"]):
        fill_home(root / name, seed=i)
    return root


def test_archive_verify_restore_and_resume(homes, tmp_path, capsys):
    dest = tmp_path / "archive"
    dest.mkdir()
    assert main(["homes", "archive", "--homes", str(homes), "--to", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert "3 homes archived and verified" in out and "0 failed" in out
    assert "Archiving homes" in err  # progress
    assert sorted(p.name for p in dest.iterdir()) == [
        "claim-ws001.tar.gz",
        "claim-ws002.tar.gz",
        "claim-wsinstructor01.tar.gz",
        "manifest.json",
    ]
    manifest = json.loads((dest / "manifest.json").read_text())
    record = manifest["homes"][0]
    assert record["home"] == "claim-ws001" and record["files"] == 5 and record["symlinks"] == 3
    assert record["bytes"] == sum(
        p.stat().st_size for p in (homes / "claim-ws001").rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert len(record["sha256"]) == 64

    assert main(["homes", "verify", "--homes", str(homes), "--archive", str(dest), "--read"]) == 0
    assert "3 of 3 homes covered" in capsys.readouterr().out
    # bit rot on the archive's disk: same size, so only reading it back shows it
    good = (dest / "claim-ws001.tar.gz").read_bytes()
    middle = len(good) // 2
    (dest / "claim-ws001.tar.gz").write_bytes(
        good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :]
    )
    assert main(["homes", "verify", "--homes", str(homes), "--archive", str(dest)]) == 0
    capsys.readouterr()
    assert main(["homes", "verify", "--homes", str(homes), "--archive", str(dest), "--read"]) == 1
    out, err = capsys.readouterr()
    assert "2 of 3 homes covered" in out and "claim-ws001: claim-ws001.tar.gz" in err
    (dest / "claim-ws001.tar.gz").write_bytes(good)

    restored = tmp_path / "restored"
    assert main(["homes", "restore", "--archive", str(dest), "claim-ws002", "--into", str(restored)]) == 0
    assert_same_tree(restored, homes / "claim-ws002")

    # a second run skips what is verified and unchanged, and archives what changed
    before = (dest / "claim-ws001.tar.gz").stat().st_mtime_ns
    (homes / "claim-ws002" / "late work.py").write_text("print('after the archive')\n")
    assert main(["homes", "archive", "--homes", str(homes), "--to", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert "1 home archived and verified" in out and "2 verified before and unchanged" in out
    assert "claim-ws002: changed since its archive was verified" in out
    assert (dest / "claim-ws001.tar.gz").stat().st_mtime_ns == before


def test_a_home_that_cannot_be_read_is_reported_and_the_others_are_archived(homes, tmp_path, capsys):
    dest = tmp_path / "archive"
    dest.mkdir()
    found = archive.homes_in(homes)
    shutil.rmtree(homes / "claim-ws002")  # gone between listing and archiving
    out = archive.archive_homes(found, Directory(dest), log=lambda _: None)
    assert out.archived == ["claim-ws001", "claim-wsinstructor01"]
    assert [home for home, _ in out.failed] == ["claim-ws002"]
    assert not list(dest.glob("*.partial"))

    # verify names the home not covered, and deleting is refused
    fill_home(homes / "claim-ws002")
    assert main(["homes", "verify", "--homes", str(homes), "--archive", str(dest)]) == 1
    assert "claim-ws002: no verified archive" in capsys.readouterr().err
    assert main(["homes", "delete", "--homes", str(homes), "--archive", str(dest), "--yes"]) == 1
    assert "refused: nothing deleted" in capsys.readouterr().err
    assert sorted(p.name for p in homes.iterdir()) == ["claim-ws001", "claim-ws002", "claim-wsinstructor01"]


def test_delete_directories_only_when_archived_and_unchanged(homes, tmp_path, capsys):
    dest = tmp_path / "archive"
    dest.mkdir()
    assert main(["homes", "delete", "--homes", str(homes), "--yes"]) == 1
    assert "--archive DEST" in capsys.readouterr().err
    assert main(["homes", "archive", "--homes", str(homes), "--to", str(dest)]) == 0
    (homes / "claim-ws001" / "my notebook.ipynb").write_text("{}")
    assert main(["homes", "delete", "--homes", str(homes), "--archive", str(dest), "--yes"]) == 1
    assert "claim-ws001: changed since its archive was verified" in capsys.readouterr().err
    assert main(["homes", "archive", "--homes", str(homes), "--to", str(dest)]) == 0
    assert main(["homes", "delete", "--homes", str(homes), "--archive", str(dest)]) == 0
    assert "would delete 3 homes" in capsys.readouterr().out
    assert len(list(homes.iterdir())) == 3
    assert main(["homes", "delete", "--homes", str(homes), "--archive", str(dest), "--yes"]) == 0
    assert list(homes.iterdir()) == []


def test_the_archives_may_not_go_among_the_homes(homes, capsys):
    assert main(["homes", "archive", "--homes", str(homes), "--to", str(homes / "claim-ws001")]) == 1
    assert "inside" in capsys.readouterr().err


class FullDisk(Directory):
    """The organizer's claim, full at the worst moment: as the new archive would replace the old."""

    def promote(self, name):
        raise OSError(28, "No space left on device")


def test_a_failure_never_replaces_a_verified_archive_and_the_next_run_resumes(homes, tmp_path):
    dest = tmp_path / "archive"
    dest.mkdir()
    found = archive.homes_in(homes)
    first = archive.archive_homes(found, Directory(dest), log=lambda _: None)
    assert len(first.archived) == 3
    old = (dest / "claim-ws002.tar.gz").read_bytes()
    manifest = (dest / "manifest.json").read_text()

    (homes / "claim-ws002" / "late work.py").write_text("print('after the archive')\n")
    second = archive.archive_homes(found, FullDisk(dest), log=lambda _: None)
    assert second.skipped == ["claim-ws001", "claim-wsinstructor01"]
    assert [(home, "No space left" in why) for home, why in second.failed] == [("claim-ws002", True)]
    assert (dest / "claim-ws002.tar.gz").read_bytes() == old
    assert (dest / "manifest.json").read_text() == manifest
    assert not list(dest.glob("*.partial"))

    third = archive.archive_homes(found, Directory(dest), log=lambda _: None)
    assert third.archived == ["claim-ws002"] and not third.failed
    restored = tmp_path / "restored"
    with Directory(dest).open("claim-ws002.tar.gz") as stream:
        tarball.restore(stream, "claim-ws002", restored)
    assert_same_tree(restored, homes / "claim-ws002")
