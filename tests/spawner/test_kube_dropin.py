"""WorkshopKubeSpawner as a drop-in KubeSpawner.

KubeSpawner 7.1.0's own unit tests, run with WorkshopKubeSpawner in its place, found two things
these tests keep fixed: a ``profile_list`` assigned after the spawner is built (a list or a dict)
broke the options form with ``TypeError: 'list' object is not callable`` and escaped the group
filter, and the home setup's ``WORKSHOP_*`` variables leaked into the ``environment`` trait. The
rest compares with plain KubeSpawner on the same configuration.

To run KubeSpawner's suite again (e.g. for a new KubeSpawner): ``git archive`` its tag from
github.com/jupyterhub/kubespawner into a scratch directory outside this repository, add a
``conftest.py`` beside its ``tests/`` that sets ``KUBECONFIG`` to a kubeconfig whose server
nothing listens on (its conftest loads one at import; the tests needing a cluster then skip)
and replaces ``kubespawner.KubeSpawner`` with ``WorkshopKubeSpawner``, and run pytest there
with its own test pins (``pytest-asyncio<0.23``; ``kubernetes<37``, whose ``ApiClient`` still
serializes kubernetes_asyncio models) and this repository on ``PYTHONPATH``; on JupyterHub 6 its
synchronous ``ssl_app`` fixture needs an event loop running. 7.1.0 on JupyterHub 6.1: 187 passed,
as with plain KubeSpawner; 20 need a cluster.
"""

import kubespawner
import pytest
from kubespawner import KubeSpawner
from traitlets.config import Config

from jupyterhub_workshop.spawner.kube import WorkshopKubeSpawner

from ..harness.users import User

pytestmark = pytest.mark.jh55  # kubespawner 7.0 / JupyterHub 5.5 too

# KubeSpawner 7.1 added profile_list given as a dict keyed by slug
DICT_PROFILES = tuple(int(part) for part in kubespawner.__version__.split(".")[:2]) >= (7, 1)

PROFILES = [
    {"display_name": "Python", "slug": "python", "kubespawner_override": {"image": "python:1"}},
    {
        "display_name": "GPU",
        "slug": "gpu",
        "kubespawner_override": {"image": "gpu:1", "cpu_limit": 8.0},
        "allowed_groups": ["instructors"],
    },
    {"display_name": "R", "slug": "r", "kubespawner_override": {"image": "r:1"}},
]


def spawner_for(groups, cls=WorkshopKubeSpawner, **config):
    return cls(_mock=True, user=User("ws001", groups), **config)


def as_dict(profiles):
    # keys sorted differently from the list order: KubeSpawner offers a dict by sorted key
    return {f"{i}-{p['slug']}": p for i, p in zip((2, 0, 1), profiles)}


def slugs(profiles):
    return [p["slug"] for p in profiles]


def given_later(kind):
    """PROFILES as a hook would assign them: a list, a dict, a function or a coroutine."""
    if kind == "list":
        return list(PROFILES)
    if kind == "dict":
        if not DICT_PROFILES:
            pytest.skip(f"kubespawner {kubespawner.__version__} takes no dict profile_list (7.1 does)")
        return as_dict(PROFILES)
    if kind == "callable":
        return lambda spawner: list(PROFILES)

    async def profiles(spawner):
        return list(PROFILES)

    return profiles


def expected_order(kind):
    return ["gpu", "r", "python"] if kind == "dict" else ["python", "gpu", "r"]


@pytest.mark.parametrize("kind", ["list", "dict", "callable", "coroutine"])
async def test_profile_list_assigned_after_the_spawner_is_built_is_filtered_by_group(kind):
    participant, instructor = spawner_for(["participants"]), spawner_for(["instructors"])
    for spawner in (participant, instructor):
        spawner.profile_list = given_later(kind)
    order = expected_order(kind)

    form = await participant.get_options_form()  # was TypeError: 'list' object is not callable
    assert 'value="python"' in form and 'value="r"' in form and "gpu" not in form
    assert slugs(await participant.offered_profiles()) == [s for s in order if s != "gpu"]
    assert 'value="gpu"' in await instructor.get_options_form()
    assert slugs(await instructor.offered_profiles()) == order

    participant.user_options = {"profile": "gpu"}
    with pytest.raises(ValueError, match="gpu"):
        await participant.load_user_options()
    instructor.user_options = {"profile": "gpu"}
    await instructor.load_user_options()
    assert (instructor.image, instructor.cpu_limit) == ("gpu:1", 8.0)


async def test_hooks_can_assign_and_read_profile_list_at_any_time():
    """An auth_state_hook choosing profiles, a pre_spawn_hook narrowing them down by reading
    the list: both see and set plain values, and the group filter still applies."""

    def auth_state_hook(spawner, auth_state):
        spawner.profile_list = [p for p in PROFILES if p["slug"] in auth_state["profiles"]]

    def pre_spawn_hook(spawner):
        spawner.profile_list = [p for p in spawner.profile_list if p["slug"] != "r"]

    config = {"auth_state_hook": auth_state_hook, "pre_spawn_hook": pre_spawn_hook}
    participant = spawner_for(["participants"], **config)
    await participant.run_auth_state_hook({"profiles": ["python", "gpu", "r"]})
    assert slugs(participant.profile_list) == ["python", "gpu", "r"]  # what the hook assigned
    assert slugs(await participant.offered_profiles()) == ["python", "r"]

    participant.run_pre_spawn_hook()
    assert await participant.get_options_form() == ""  # one profile left: nothing to choose
    participant.user_options = {}
    await participant.load_user_options()
    assert participant.image == "python:1"
    assert slugs(participant.profile_list) == ["python", "gpu"]  # still what was assigned


async def test_configured_profiles_are_applied_as_kubespawner_applies_them():
    """Without allowed_groups in play, each profile's overrides are KubeSpawner's own."""
    profiles = [
        {
            "display_name": "Small",
            "slug": "small",
            "kubespawner_override": {"cpu_limit": 1.0, "environment": {"SIZE": "small"}},
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "a": {"display_name": "A", "kubespawner_override": {"image": "a:1"}},
                        "b": {"display_name": "B", "default": True, "kubespawner_override": {"image": "b:1"}},
                    },
                }
            },
        },
        {"display_name": "Big", "slug": "big", "kubespawner_override": {"mem_limit": "8G"}},
    ]
    for user_options in ({}, {"profile": "small", "image": "a"}, {"profile": "big"}):
        spawners = [spawner_for([], cls, profile_list=profiles) for cls in (KubeSpawner, WorkshopKubeSpawner)]
        for spawner in spawners:
            spawner.user_options = dict(user_options)
            await spawner.load_user_options()
        plain, ours = spawners
        traits = ("image", "cpu_limit", "mem_limit", "environment")
        assert {t: getattr(ours, t) for t in traits} == {t: getattr(plain, t) for t in traits}, user_options


async def test_the_environment_trait_stays_as_configured():
    """The home setup's variables go into the pod through get_env(), not into the trait that
    operators, profiles (``kubespawner_override``) and hooks read and merge into."""
    spawner = spawner_for(
        ["instructors"],
        environment={"MINE": "1"},
        profile_list=[
            {"display_name": "P", "slug": "p", "kubespawner_override": {"environment": {"P": "2"}}}
        ],
        shared_data={"claim": "shared"},
        readme_config_map="workshop-readme",
    )
    await spawner.load_user_options()
    assert spawner.environment == {"MINE": "1", "P": "2"}
    env = {e.name: e.value for e in (await spawner.get_pod_manifest()).spec.containers[0].env}
    assert env["MINE"] == "1" and env["P"] == "2"
    assert env["WORKSHOP_SHARED_RW_DIR"] == "/srv/shared-readwrite"  # an instructor
    assert env["WORKSHOP_README_SOURCE"] == "/etc/workshop/readme/README.md"

    spawner.user.groups = []  # left the writers between two starts: no stale variable
    await spawner.load_user_options()
    env = {e.name: e.value for e in (await spawner.get_pod_manifest()).spec.containers[0].env}
    assert "WORKSHOP_SHARED_RW_DIR" not in env and env["WORKSHOP_SHARED_DIR"] == "/srv/shared"


async def test_config_on_kubespawner_reaches_the_workshop_spawner():
    c = Config()
    c.KubeSpawner.profile_list = PROFILES
    c.KubeSpawner.environment = {"A": "1"}
    spawner = WorkshopKubeSpawner(_mock=True, user=User("ws001", []), config=c)
    assert spawner.profile_list == PROFILES and spawner.environment == {"A": "1"}
