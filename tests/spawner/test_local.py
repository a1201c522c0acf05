"""WorkshopLocalSpawner's home setup (the process start itself is covered by test_demo)."""

import os

import pytest

from jupyterhub_workshop.spawner.local import WorkshopLocalSpawner

pytestmark = pytest.mark.jh55  # kubespawner 7.0 / JupyterHub 5.5 too


class Group:
    def __init__(self, name):
        self.name = name


class User:
    def __init__(self, name, groups=()):
        self.name = name
        self.groups = [Group(g) for g in groups]


@pytest.fixture
def make(tmp_path):
    (tmp_path / "README.md").write_text("# hi\n")
    (tmp_path / "shared").mkdir()

    def make(name, groups=(), **config):
        return WorkshopLocalSpawner(
            user=User(name, groups),
            home_dir_template=str(tmp_path / "homes" / "{username}"),
            readme_file=str(tmp_path / "README.md"),
            shared_dir=str(tmp_path / "shared"),
            **config,
        )

    return make


async def test_participant_gets_readme_and_shared(make, tmp_path):
    spawner = make("ws001", ["participants"])
    await spawner.run_home_setup()
    home = tmp_path / "homes" / "ws001"
    assert (home / "README.md").read_text() == "# hi\n"
    assert os.readlink(home / "shared") == str(tmp_path / "shared")
    assert not (home / "shared-readwrite").exists()


async def test_instructor_also_gets_shared_readwrite(make, tmp_path):
    await make("lead", ["instructors"]).run_home_setup()
    assert os.readlink(tmp_path / "homes" / "lead" / "shared-readwrite") == str(tmp_path / "shared")


async def test_a_failing_setup_never_stops_the_start(make, tmp_path, caplog):
    spawner = make("ws002", home_setup_timeout=5)
    spawner.readme_file = str(tmp_path / "missing.md")
    (tmp_path / "homes").mkdir()
    (tmp_path / "homes" / "ws002").write_text("a file where the home should be")
    await spawner.run_home_setup()  # must not raise
    assert "Home setup for ws002 failed; starting anyway" in caplog.text


def test_kernel_culling_reaches_the_server_args(make):
    args = make("ws003", kernel_idle_timeout=1800).get_args()
    assert "--MappingKernelManager.cull_idle_timeout=1800" in args


async def test_the_server_process_is_noted_for_the_service_and_forgotten_at_stop(make, tmp_path):
    import subprocess
    import sys
    import threading

    from jupyterhub_workshop.service.resource_sources import ProcessTree

    pids = tmp_path / "pids"
    spawner = make("ws/004", pid_dir=str(pids), mem_limit="1G")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reaper = threading.Thread(target=proc.wait)  # reaped at once, as the hub's own children are
    reaper.start()
    try:
        spawner.pid = proc.pid  # what start() leaves (the hub's own process start is test_demo's)
        spawner.note_pid()
        [noted] = os.listdir(pids)
        assert noted == "ws%2F004%2F.json"
        found = (await ProcessTree(str(pids)).usage()).usage
        assert set(found) == {("ws/004", "")} and found["ws/004", ""].limit == 2**30
        await spawner.stop(now=True)
        reaper.join(timeout=10)
        assert proc.returncode is not None
        assert os.listdir(pids) == []
    finally:
        if proc.returncode is None:
            proc.kill()
        reaper.join()
