"""The home-setup script, run with a real `sh` against ordinary and hostile inputs."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from jupyterhub_workshop.spawner import home_setup

pytestmark = pytest.mark.jh55  # kubespawner 7.0 / JupyterHub 5.5 too

HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch PWNED)",
    "`touch PWNED`",
    "a b  c",
    "new\nline",
    "-rf",
    "; touch PWNED",
]


def run(home: Path, cwd: Path, **env) -> subprocess.CompletedProcess:
    full = {"PATH": os.environ["PATH"], "HOME": str(home)}
    full.update({k: str(v) for k, v in env.items()})
    return subprocess.run(home_setup.command(), env=full, cwd=cwd, capture_output=True, timeout=10)


def setup_env(src: Path, shared: Path | None = None, rw: Path | None = None, name="README.md") -> dict:
    return home_setup.environment(str(src), name, str(shared) if shared else None, str(rw) if rw else None)


@pytest.fixture
def world(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "README.md").write_text("# Welcome v1\n")
    return tmp_path


def log(home: Path) -> str:
    return (home / ".workshop" / "setup.log").read_text()


def test_copies_readme_links_shared_and_logs(world):
    home = world / "home"
    started = time.monotonic()
    result = run(home, world, **setup_env(world / "src" / "README.md", world / "shared"))
    assert time.monotonic() - started < 1.0
    assert result.returncode == 0 and result.stdout == b""
    assert (home / "README.md").read_text() == "# Welcome v1\n"
    assert os.readlink(home / "shared") == str(world / "shared")
    assert not (home / "shared-readwrite").exists()
    assert "copied the workshop README" in log(home) and "linked ~/shared" in log(home)


def test_second_run_changes_nothing(world):
    home = world / "home"
    env = setup_env(world / "src" / "README.md", world / "shared")
    run(home, world, **env)
    before = {p.name: p.stat().st_mtime_ns for p in home.iterdir() if p.name != ".workshop"}
    assert run(home, world, **env).returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in home.iterdir() if p.name != ".workshop"} == before
    assert "README is up to date" in log(home)


def test_user_edits_are_kept_and_the_new_version_goes_beside(world):
    home, src = world / "home", world / "src" / "README.md"
    env = setup_env(src)
    run(home, world, **env)
    (home / "README.md").write_text("# Welcome v1\nmy notes\n")
    src.write_text("# Welcome v2\n")
    assert run(home, world, **env).returncode == 0
    assert (home / "README.md").read_text() == "# Welcome v1\nmy notes\n"
    assert (home / "README-updated.md").read_text() == "# Welcome v2\n"
    assert "has your changes" in log(home)


def test_unedited_readme_follows_the_source(world):
    home, src = world / "home", world / "src" / "README.md"
    run(home, world, **setup_env(src))
    src.write_text("# Welcome v2\n")
    run(home, world, **setup_env(src))
    assert (home / "README.md").read_text() == "# Welcome v2\n"
    assert not (home / "README-updated.md").exists()


def test_never_replaces_a_users_own_shared(world):
    home = world / "home"
    (home / "shared").mkdir()
    (home / "shared" / "mine.txt").write_text("keep")
    assert run(home, world, **setup_env(world / "src" / "README.md", world / "shared")).returncode == 0
    assert (home / "shared" / "mine.txt").read_text() == "keep" and not (home / "shared").is_symlink()
    assert "exists and is yours" in log(home)


def test_missing_shared_mount_and_missing_source_are_fine(world):
    home = world / "home"
    result = run(home, world, **setup_env(world / "src" / "nope.md", world / "not-mounted"))
    assert result.returncode == 0
    assert not (home / "shared").exists() and not (home / "README.md").exists()
    assert "not mounted" in log(home) and "not found" in log(home)


def test_writers_get_a_readwrite_link(world):
    home = world / "home"
    run(home, world, **setup_env(world / "src" / "README.md", world / "shared", rw=world / "shared"))
    assert os.readlink(home / "shared-readwrite") == str(world / "shared")


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs a non-root user or setpriv"
)
def test_read_only_home_still_exits_zero(world):
    home = world / "home"
    home.chmod(0o555)
    cmd = home_setup.command()
    if os.geteuid() == 0:  # root ignores permissions: drop to nobody
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        **setup_env(world / "src" / "README.md", world / "shared"),
    }
    world.chmod(0o755)
    result = subprocess.run(cmd, env=env, cwd="/", capture_output=True, timeout=10)
    assert result.returncode == 0
    assert not (home / "README.md").exists()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_are_data_never_code(tmp_path, hostile):
    home = tmp_path / f"home {hostile}"
    home.mkdir()
    shared = tmp_path / f"shared {hostile}"
    shared.mkdir()
    src = tmp_path / f"src {hostile}.md"
    src.write_text("hello\n")
    name = hostile.replace("/", "_").replace("\n", "_") or "x"
    result = run(home, tmp_path, **setup_env(src, shared, name=name), JUPYTERHUB_USER=hostile)
    assert result.returncode == 0
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()
    assert (home / name).read_text() == "hello\n"
    assert os.readlink(home / "shared") == str(shared)


def test_readme_name_with_a_slash_is_refused(world):
    home = world / "home"
    assert run(home, world, **setup_env(world / "src" / "README.md", name="../escape.md")).returncode == 0
    assert not (world / "escape.md").exists()
    assert "plain file name" in log(home)


def test_script_text_holds_no_configuration():
    env = home_setup.environment("/etc/zz/QUICK.md", "QUICK.md", "/srv/zz-shared", "/srv/zz-rw")
    assert all(value not in home_setup.SCRIPT for value in env.values())
    assert home_setup.command()[:2] == ["sh", "-c"]
