"""An operator's postStart hook (z2jh's singleuser.lifecycleHooks) beside the home setup.

Kubernetes runs one postStart handler per container: the workshop's runs the home setup, then
the operator's exec command with its arguments unchanged; a failure of theirs is logged, not
fatal. The combined hook is run here with a real ``sh``.
"""

import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from jupyterhub_workshop.spawner import home_setup
from jupyterhub_workshop.spawner.kube import WorkshopKubeSpawner
from jupyterhub_workshop.spawner.pod import POST_START_NAME, with_home_setup

from ..harness.users import User

pytestmark = pytest.mark.jh55  # kubespawner 7.0 / JupyterHub 5.5 too

GITPULLER = ["gitpuller", "https://github.com/org/materials", "main", "materials"]
PRE_STOP = {"exec": {"command": ["sh", "-c", "echo bye"]}}


async def pod_for(**config):
    spawner = WorkshopKubeSpawner(_mock=True, user=User("ws001", ["participants"]), **config)
    await spawner.load_user_options()
    pod = spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())
    return spawner, pod


def lifecycle(pod):
    return pod["spec"]["containers"][0]["lifecycle"]


@pytest.mark.parametrize("key", ["postStart", "post_start"])  # KubeSpawner takes either spelling
async def test_an_operators_exec_post_start_runs_after_the_home_setup(key):
    hooks = {key: {"exec": {"command": GITPULLER}}, "preStop": PRE_STOP}
    spawner, pod = await pod_for(lifecycle_hooks=hooks, readme_config_map="workshop-readme")
    assert kubernetes_validate.validate(pod, "1.32", strict=True)
    command = lifecycle(pod)["postStart"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"] and home_setup.SCRIPT in command[2]
    assert command[3:] == [POST_START_NAME, *GITPULLER]  # "$0", then theirs, as given
    assert lifecycle(pod)["preStop"] == PRE_STOP
    assert spawner.lifecycle_hooks == hooks  # the trait stays as configured
    # a restart builds the same hook, not one wrapped twice
    await spawner.load_user_options()
    again = spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())
    assert lifecycle(again) == lifecycle(pod)


async def test_without_an_operator_hook_the_post_start_is_the_home_setup():
    _, pod = await pod_for(lifecycle_hooks={"preStop": PRE_STOP})
    assert lifecycle(pod) == {"postStart": {"exec": {"command": home_setup.command()}}, "preStop": PRE_STOP}


@pytest.mark.parametrize(
    "post_start",
    [
        {"httpGet": {"path": "/warm-up", "port": 8888}},
        {"tcpSocket": {"port": 8888}},
        {"sleep": {"seconds": 5}},
        {"exec": {"command": []}},
        {"exec": {"command": "gitpuller https://github.com/org/materials"}},
    ],
)
async def test_a_post_start_that_cannot_run_beside_ours_is_refused_naming_it(post_start):
    spawner = WorkshopKubeSpawner(
        _mock=True, user=User("ws001", []), lifecycle_hooks={"postStart": post_start}
    )
    await spawner.load_user_options()
    with pytest.raises(ValueError) as refused:
        await spawner.get_pod_manifest()
    assert repr(post_start) in str(refused.value)
    assert "singleuser.lifecycleHooks.postStart.exec.command" in str(refused.value)


def test_both_spellings_at_once_are_refused():
    hook = {"exec": {"command": ["true"]}}
    with pytest.raises(ValueError, match="both postStart and post_start"):
        with_home_setup({"postStart": hook, "post_start": hook})


# --- the combined hook, run -----------------------------------------------------------------


@pytest.fixture
def world(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "README.md").write_text("# Welcome\n")
    return tmp_path


def run_hook(world: Path, theirs: list[str], home: Path | None = None) -> subprocess.CompletedProcess:
    command = with_home_setup({"postStart": {"exec": {"command": theirs}}})["postStart"]["exec"]["command"]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home or world / "home"),
        **home_setup.environment(str(world / "README.md"), "README.md", str(world / "shared")),
    }
    return subprocess.run(command, env=env, cwd=world, capture_output=True, text=True, timeout=20)


def setup_log(home: Path) -> str:
    return (home / ".workshop" / "setup.log").read_text()


def test_theirs_finds_the_home_ready_and_gets_its_arguments_unchanged(world):
    home = world / "home"
    hostile = 'it\'s "$(touch PWNED)" `touch PWNED`; a  b\nnew line'
    probe = 'ls "$HOME" > "$HOME/.workshop/seen"; printf %s "$1" > "$HOME/arg"; echo probed'
    done = run_hook(world, ["sh", "-c", probe, "probe", hostile])
    assert done.returncode == 0 and done.stdout == ""
    assert (home / ".workshop" / "seen").read_text().split() == ["README.md", "shared"]  # ours ran first
    assert (home / "arg").read_text() == hostile
    assert not list(world.rglob("PWNED"))
    assert (home / ".workshop" / "post-start.log").read_text() == "probed\n"
    assert setup_log(home).splitlines()[-1].endswith("ran the postStart command sh")


@pytest.mark.parametrize(
    "theirs, status",
    [
        (["sh", "-c", "echo cannot reach github >&2; exit 3"], 3),
        (["no-such-program-here"], 127),
        (["exit", "4"], 127),  # run as Kubernetes runs it: a program on PATH, never a builtin
    ],
)
def test_a_failure_of_theirs_is_logged_and_does_not_fail_the_hook(world, theirs, status):
    home = world / "home"
    done = run_hook(world, theirs)
    assert done.returncode == 0  # a failing postStart would kill the container
    assert (home / "README.md").read_text() == "# Welcome\n"
    last = setup_log(home).splitlines()[-1]
    assert f"the postStart command {theirs[0]} exited {status}; the server starts anyway" in last
    if status == 3:
        assert (home / ".workshop" / "post-start.log").read_text() == "cannot reach github\n"


def test_each_start_replaces_the_output_of_the_last(world):
    run_hook(world, ["sh", "-c", "echo first"])
    run_hook(world, ["sh", "-c", "echo second"])
    assert (world / "home" / ".workshop" / "post-start.log").read_text() == "second\n"


def test_theirs_still_runs_when_the_home_cannot_be_written(world):
    (world / "not-a-directory").write_text("")  # nothing can be created below a file, not even by root
    home = world / "not-a-directory" / "home"
    done = run_hook(world, ["sh", "-c", 'echo ran > "$0"', str(world / "ran")], home=home)
    assert done.returncode == 0
    assert (world / "ran").read_text() == "ran\n"
