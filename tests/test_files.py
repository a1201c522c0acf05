import pytest

from jupyterhub_workshop.files import write_atomically


def test_atomic_write_sets_mode(tmp_path):
    write_atomically(tmp_path / "secret.csv", "x")
    assert (tmp_path / "secret.csv").stat().st_mode & 0o777 == 0o600
    write_atomically(tmp_path / "public.yaml", "y", mode=0o644)
    assert (tmp_path / "public.yaml").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "accounts.yaml"
    write_atomically(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["accounts.yaml"]
