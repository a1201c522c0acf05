import os

from jupyterhub_workshop.homes import listing
from jupyterhub_workshop.homes.listing import Entry

from .helpers import OUTSIDE, fill_home


def test_scan_lists_links_as_links_and_skips_what_cannot_be_archived(tmp_path):
    home = fill_home(tmp_path / "home")
    os.mkfifo(home / "a pipe")
    found = listing.scan(home)
    kinds = {e.path: e.kind for e in found.entries}
    assert kinds["outside"] == "symlink" and kinds["dangling"] == "symlink"
    assert kinds["données/résumé — 日本語.txt"] == "file"
    assert kinds["empty folder"] == "dir"
    assert {e.path: e.target for e in found.entries}["outside"] == OUTSIDE
    assert found.skipped == ("a pipe",)
    assert [e.path for e in found.entries] == sorted(e.path for e in found.entries)
    assert found.files == 5


def test_fingerprint_changes_with_any_touch_and_only_then(tmp_path):
    home = fill_home(tmp_path / "home")
    before = listing.fingerprint(listing.scan(home))
    assert listing.fingerprint(listing.scan(home)) == before
    os.utime(home / "my notebook.ipynb", ns=(1, 1))
    assert listing.fingerprint(listing.scan(home)) != before


def test_differences_name_what_differs():
    home = [Entry("a", "file", 0o644, 1, sha256="x"), Entry("b", "symlink", 0o777, target="/etc")]
    assert listing.differences(home, home) == []
    archived = [Entry("a", "file", 0o644, 1, sha256="y"), Entry("c", "dir", 0o755)]
    assert listing.differences(home, archived) == [
        "'b' is in the home but not in the archive",
        "'c' is in the archive but not in the home",
        "'a' differs (sha256)",
    ]
