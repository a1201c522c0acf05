"""z2jh settings of the operator's own that would quietly undo the workshop: refused when the
chart renders, with a message naming the value; the forms that work still render.

- hub.command / hub.args that keep z2jh's jupyterhub_config.py from loading: it is what loads
  the workshop configuration from jupyterhub_config.d/, so without it the hub would run with
  z2jh's defaults (dummy logins) and nothing of the workshop.
- a postStart hook that cannot run beside the workshop's home setup (anything but an exec
  command); an exec command runs after the home setup, checked here through z2jh's own hub
  configuration down to the user's pod.
"""

from __future__ import annotations

import helm_python
import kubernetes_validate
import pytest

from jupyterhub_workshop.spawner import home_setup
from jupyterhub_workshop.spawner.pod import POST_START_NAME

from .helpers import ci_values, deep_merge, find, manifests, render, run_hub_configuration, user_pod

CONFIG = "/usr/local/etc/jupyterhub/jupyterhub_config.py"
GITPULLER = ["gitpuller", "https://github.com/org/materials", "main", "materials"]


def with_jupyterhub(change: dict) -> dict:
    return deep_merge(ci_values("minimal-values.yaml"), {"jupyterhub": change})


def refusal(change: dict) -> str:
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render(with_jupyterhub(change))
    return str(refused.value)


# --- the hub's command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    "hub, problem",
    [
        ({"args": ["jupyterhub", "--debug"]}, "it passes jupyterhub no --config"),
        (
            {"args": ["jupyterhub", "--config", "/srv/jupyterhub/my_config.py"]},
            "it loads /srv/jupyterhub/my_config.py instead",
        ),
        # the last flag wins, as in jupyterhub
        ({"args": ["jupyterhub", "-f", CONFIG, "--config=/etc/other.py"]}, "it loads /etc/other.py instead"),
        # a shell runs the string after -c: z2jh's default arguments become its $0, $1, ...
        ({"command": ["sh", "-c"]}, 'the shell sh runs only the string after -c: "jupyterhub"'),
        (
            {"command": ["/bin/bash", "-ec", "jupyterhub --upgrade-db"]},
            'the shell /bin/bash runs only the string after -c: "jupyterhub --upgrade-db"',
        ),
        (
            {"args": ["sh", "-c", "jupyterhub --debug", "--config", CONFIG]},
            "it passes jupyterhub no --config",
        ),
    ],
)
def test_a_hub_command_line_without_z2jhs_configuration_is_refused(hub, problem):
    message = refusal({"hub": hub})
    assert "jupyterhub.hub.command and jupyterhub.hub.args would start the hub as [" in message
    assert problem in message
    assert f"Keep --config {CONFIG} in the jupyterhub command line" in message


@pytest.mark.parametrize(
    "hub",
    [
        {},
        # z2jh's documented example of hub.args
        {"args": ["jupyterhub", "--config", CONFIG, "--debug", "--upgrade-db"]},
        {"args": ["jupyterhub", f"--config={CONFIG}"]},
        {"args": ["jupyterhub", "-f", CONFIG]},
        {"args": ["jupyterhub", f"--JupyterHub.config_file={CONFIG}"]},
        {"command": ["sh", "-c"], "args": [f"jupyterhub --config '{CONFIG}' --upgrade-db"]},
        # a wrapper that passes its arguments on ("$@"), or an entrypoint script
        {"command": ["bash", "-ec", 'ulimit -n 4096; exec "$@"', "--"]},
        {"command": ["/usr/local/bin/hub-entrypoint.sh"]},
        {"command": ["tini", "-g", "--"]},
    ],
)
def test_command_lines_that_load_z2jhs_configuration_render(hub):
    objects = manifests(render(with_jupyterhub({"hub": hub})))
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    assert container.get("command", ["tini", "--"]) == hub.get("command", ["tini", "--"])
    assert container["args"][: len(hub.get("args", []))] == hub.get("args", [])


def test_the_refusal_reads_the_command_line_as_z2jh_renders_it():
    """Without hub.args, z2jh runs `jupyterhub --config …` after hub.command: the check's model
    of the default is the Deployment z2jh renders."""
    objects = manifests(render(with_jupyterhub({})))
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container  # the image's ENTRYPOINT: tini --
    assert container["args"][:3] == ["jupyterhub", "--config", CONFIG]


# --- postStart hooks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "post_start",
    [
        {"httpGet": {"path": "/api", "port": 8888}},
        {"tcpSocket": {"port": 8888}},
        {"sleep": {"seconds": 5}},
        {"exec": {"command": []}},
        {"exec": {"command": "gitpuller https://github.com/org/materials"}},
        {"exec": {"command": ["gitpuller", 3]}},
    ],
)
def test_a_post_start_hook_that_cannot_run_beside_the_home_setup_is_refused(post_start):
    message = refusal({"singleuser": {"lifecycleHooks": {"postStart": post_start}}})
    assert "jupyterhub.singleuser.lifecycleHooks.postStart is {" in message
    assert "give jupyterhub.singleuser.lifecycleHooks.postStart.exec.command as a list" in message


def test_the_same_through_hub_config_is_refused_naming_it():
    hooks = {"lifecycle_hooks": {"post_start": {"httpGet": {"port": 8888}}}}
    message = refusal({"hub": {"config": {"KubeSpawner": hooks}}})
    assert (
        'jupyterhub.hub.config.KubeSpawner.lifecycle_hooks.post_start is {"httpGet":{"port":8888}}' in message
    )


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_an_exec_post_start_runs_after_the_home_setup_in_the_users_pod(tmp_path):
    pre_stop = {"exec": {"command": ["sh", "-c", "echo bye"]}}
    values = with_jupyterhub(
        {
            "singleuser": {
                "lifecycleHooks": {"postStart": {"exec": {"command": GITPULLER}}, "preStop": pre_stop}
            }
        }
    )
    c = run_hub_configuration(manifests(render(values)), tmp_path)
    _, pod, _ = await user_pod(c, "ws001", ["participants"])
    assert kubernetes_validate.validate(pod, "1.32", strict=True)
    lifecycle = pod["spec"]["containers"][0]["lifecycle"]
    command = lifecycle["postStart"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"] and home_setup.SCRIPT in command[2]
    assert command[3:] == [POST_START_NAME, *GITPULLER]
    assert lifecycle["preStop"] == pre_stop
