import io
import tarfile

import pytest

from jupyterhub_workshop.homes import listing, tarball

from .helpers import assert_same_tree, fill_home


def archive_bytes(home, name="claim-x"):
    out = io.BytesIO()
    sha, size = tarball.write(home, name, listing.scan(home), out)
    return out.getvalue(), sha, size


def test_the_same_home_gives_the_same_bytes_and_reads_back_equal(tmp_path):
    home = fill_home(tmp_path / "home")
    first, sha, size = archive_bytes(home)
    second, _, _ = archive_bytes(home)
    assert first == second and size == len(first)
    found, sha_read, size_read = tarball.read(io.BytesIO(first), "claim-x")
    assert (sha_read, size_read) == (sha, size)
    assert listing.differences(listing.with_contents(home, listing.scan(home)).entries, found.entries) == []


def test_members_are_in_a_folder_of_the_home_and_links_stay_links(tmp_path):
    home = fill_home(tmp_path / "home")
    data, _, _ = archive_bytes(home)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert all(name == "claim-x" or name.startswith("claim-x/") for name in members)
    assert members["claim-x/outside"].issym() and members["claim-x/outside"].linkname == "/etc/hostname"
    assert members["claim-x/données/résumé — 日本語.txt"].isreg()
    assert members["claim-x/run me.sh"].mode == 0o755
    assert members["claim-x/outside"].uname == ""  # no names from this machine's user database


def test_restore_gives_the_home_back_byte_for_byte(tmp_path):
    home = fill_home(tmp_path / "home")
    data, _, _ = archive_bytes(home)
    made = tarball.restore(io.BytesIO(data), "claim-x", tmp_path / "restored")
    assert made == len(listing.scan(home).entries)
    assert_same_tree(tmp_path / "restored", home)
    with pytest.raises(ValueError, match="not empty"):
        tarball.restore(io.BytesIO(data), "claim-x", tmp_path / "restored")


def test_reading_refuses_members_outside_the_home(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("claim-x/../../etc/evil")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValueError, match="not inside claim-x/"):
        tarball.read(io.BytesIO(out.getvalue()), "claim-x")
    with pytest.raises(ValueError, match="not inside claim-x/"):
        tarball.restore(io.BytesIO(out.getvalue()), "claim-x", tmp_path / "r")


def test_restore_refuses_writing_through_a_link_of_the_archive(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        link = tarfile.TarInfo("claim-x/escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "elsewhere")
        tar.addfile(link)
        tar.addfile(tarfile.TarInfo("claim-x/escape/file"), io.BytesIO(b""))
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="under a symbolic link"):
        tarball.restore(io.BytesIO(out.getvalue()), "claim-x", tmp_path / "r")
    assert not any((tmp_path / "elsewhere").iterdir())


def test_restore_keeps_the_sticky_bit_and_shared_write_never_setuid_and_read_only_folders_fill(tmp_path):
    import os
    import stat

    home = tmp_path / "home"
    runtime = home / ".local" / "share" / "jupyter" / "runtime"  # as Jupyter makes it: 1700
    runtime.mkdir(parents=True)
    (runtime / "jupyter_cookie_secret").write_text("s\n")
    runtime.chmod(0o1700)
    shared = home / "group project"
    shared.mkdir()
    (shared / "notes.md").write_text("ours\n")
    (shared / "notes.md").chmod(0o664)
    shared.chmod(0o2775)  # setgid folder: restored 0775
    tool = home / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o4755)  # setuid: restored 0755
    frozen = home / "frozen"
    frozen.mkdir()
    (frozen / "kept.txt").write_text("kept\n")
    frozen.chmod(0o555)
    os.utime(frozen, (1_600_000_000, 1_600_000_000))
    data, _, _ = archive_bytes(home)
    frozen.chmod(0o755)  # so that pytest can clean up

    into = tmp_path / "restored"
    tarball.restore(io.BytesIO(data), "claim-x", into)

    def mode(path):
        return stat.S_IMODE(path.lstat().st_mode)

    assert mode(into / ".local/share/jupyter/runtime") == 0o1700
    assert mode(into / "group project") == 0o775 and mode(into / "group project/notes.md") == 0o664
    assert mode(into / "tool") == 0o755
    assert mode(into / "frozen") == 0o555 and (into / "frozen" / "kept.txt").read_text() == "kept\n"
    assert (into / "frozen").stat().st_mtime == 1_600_000_000
    (into / "frozen").chmod(0o755)
