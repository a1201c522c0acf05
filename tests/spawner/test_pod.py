"""Workshop pod plans (pure) and the manifests WorkshopKubeSpawner builds from them."""

import kubernetes_validate
import pytest

from jupyterhub_workshop.spawner.pod import (
    HomeStorage,
    Readme,
    SharedData,
    home_storage_for,
    merge_named,
    plan_pod,
    profiles_for,
)

from ..harness.users import User

pytestmark = pytest.mark.jh55  # kubespawner 7.0 / JupyterHub 5.5 too

NFS = SharedData(nfs_server="10.0.0.5", nfs_path="/export/shared")
README = Readme(config_map="workshop-readme")


def mounts_by_path(plan):
    return {m["mountPath"]: m for m in plan.volume_mounts}


def test_participant_sees_shared_data_read_only():
    plan = plan_pod(["participants"], HomeStorage(), NFS, README, "/home/jovyan", ["instructors"])
    mounts = mounts_by_path(plan)
    assert mounts["/srv/shared"]["readOnly"] is True
    assert "/srv/shared-readwrite" not in mounts
    assert plan.environment["WORKSHOP_SHARED_DIR"] == "/srv/shared"
    assert "WORKSHOP_SHARED_RW_DIR" not in plan.environment


def test_instructor_also_gets_a_writable_view():
    plan = plan_pod(["instructors"], HomeStorage(), NFS, README, "/home/jovyan", ["instructors"])
    mounts = mounts_by_path(plan)
    assert mounts["/srv/shared"]["readOnly"] is True
    assert mounts["/srv/shared-readwrite"].get("readOnly", False) is False
    assert mounts["/srv/shared-readwrite"]["name"] == mounts["/srv/shared"]["name"]
    assert plan.environment["WORKSHOP_SHARED_RW_DIR"] == "/srv/shared-readwrite"


@pytest.mark.parametrize(
    "storage, volume, mount_extra, ensure",
    [
        (
            HomeStorage(storage_class="rook-ceph", capacity="5Gi"),
            {"persistentVolumeClaim": {"claimName": "{pvc_name}"}},
            {},
            True,
        ),
        (
            HomeStorage(mode="static", claim="nfs-homes"),
            {"persistentVolumeClaim": {"claimName": "nfs-homes"}},
            {"subPath": "{username}"},
            False,
        ),
        (HomeStorage(mode="none"), None, None, False),
    ],
)
def test_storage_modes(storage, volume, mount_extra, ensure):
    plan = plan_pod([], storage, None, Readme(), "/home/jovyan", ["instructors"])
    home = [v for v in plan.volumes if v["name"] == "workshop-home"]
    assert plan.storage_pvc_ensure is ensure
    if volume is None:
        assert home == [] and "/home/jovyan" not in mounts_by_path(plan)
    else:
        assert home == [{"name": "workshop-home", **volume}]
        assert mounts_by_path(plan)["/home/jovyan"] == {
            "name": "workshop-home",
            "mountPath": "/home/jovyan",
            **mount_extra,
        }
    if ensure:
        assert (plan.storage_class, plan.storage_capacity) == ("rook-ceph", "5Gi")


def test_bad_storage_and_shared_config_is_refused_clearly():
    with pytest.raises(ValueError, match="must be one of dynamic, static, none"):
        HomeStorage.from_config({"mode": "nfs"})
    with pytest.raises(ValueError, match="needs 'claim'"):
        HomeStorage.from_config({"mode": "static"})
    with pytest.raises(ValueError, match="unknown home storage setting"):
        HomeStorage.from_config({"size": "1Gi"})
    with pytest.raises(ValueError, match="capacity '10 GB' is not a size"):
        HomeStorage.from_config({"mode": "dynamic", "capacity": "10 GB"})
    with pytest.raises(ValueError, match="exactly one of"):
        SharedData.from_config({"nfs_server": "a", "claim": "b"})
    assert SharedData.from_config({}) is None


def test_group_storage_overrides_merge_over_the_base():
    base = HomeStorage(storage_class="standard")
    by_group = {"instructors": {"storage_class": "fast"}, "staff": {"mode": "none"}}
    assert home_storage_for(["instructors"], base, by_group).storage_class == "fast"
    assert home_storage_for(["participants"], base, by_group) is base


def test_merge_replaces_our_entries_and_mounts_at_our_paths():
    existing = [
        {"name": "z2jh-home", "mountPath": "/home/jovyan"},
        {"name": "workshop-shared", "mountPath": "/old"},
        {"name": "keep", "mountPath": "/data"},
    ]
    merged = merge_named(existing, [{"name": "workshop-home", "mountPath": "/home/jovyan"}], ["/home/jovyan"])
    assert merged == [
        {"name": "keep", "mountPath": "/data"},
        {"name": "workshop-home", "mountPath": "/home/jovyan"},
    ]
    assert (
        merge_named(merged, [{"name": "workshop-home", "mountPath": "/home/jovyan"}], ["/home/jovyan"])
        == merged
    )


def test_merge_accepts_kubespawners_dict_form():
    existing = {"data": {"persistentVolumeClaim": {"claimName": "d"}}, "workshop-home": {"emptyDir": {}}}
    merged = merge_named(existing, [{"name": "workshop-home", "emptyDir": {}}])
    assert merged == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
        {"name": "workshop-home", "emptyDir": {}},
    ]


def test_profiles_are_offered_by_group():
    profiles = [{"display_name": "Standard"}, {"display_name": "Big", "allowed_groups": ["instructors"]}]
    assert [p["display_name"] for p in profiles_for(["participants"], profiles)] == ["Standard"]
    offered = profiles_for(["instructors"], profiles)
    assert [p["display_name"] for p in offered] == ["Standard", "Big"]
    assert all("allowed_groups" not in p for p in offered)


# --- manifests from the real KubeSpawner subclass ----------------------------------------


async def manifest(groups, **config):
    from jupyterhub_workshop.spawner.kube import WorkshopKubeSpawner

    spawner = WorkshopKubeSpawner(_mock=True, user=User("ws001", groups), **config)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    pod_dict = spawner.api.api_client.sanitize_for_serialization(pod)
    pvc_dict = spawner.api.api_client.sanitize_for_serialization(spawner.get_pvc_manifest())
    return spawner, pod_dict, pvc_dict


def container_mounts(pod):
    return {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}


@pytest.mark.parametrize("groups, writable", [(["participants"], False), (["instructors"], True)])
async def test_manifests_validate_and_differ_by_role(groups, writable):
    spawner, pod, pvc = await manifest(
        groups,
        shared_data={"nfs_server": "10.0.0.5", "nfs_path": "/export"},
        readme_config_map="workshop-readme",
        home_storage={"mode": "dynamic", "storage_class": "rook-ceph", "capacity": "5Gi"},
    )
    assert kubernetes_validate.validate(pod, "1.32", strict=True)
    assert kubernetes_validate.validate(pvc, "1.32", strict=True)
    mounts = container_mounts(pod)
    assert mounts["/srv/shared"]["readOnly"] is True
    assert ("/srv/shared-readwrite" in mounts) is writable
    assert pvc["spec"]["storageClassName"] == "rook-ceph"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["workshop-home"]["persistentVolumeClaim"]["claimName"] == "claim-ws001"
    assert volumes["workshop-readme"]["configMap"] == {"name": "workshop-readme", "optional": True}
    hook = pod["spec"]["containers"][0]["lifecycle"]["postStart"]["exec"]["command"]
    assert hook[:2] == ["sh", "-c"] and "ws001" not in hook[2]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["WORKSHOP_README_SOURCE"] == "/etc/workshop/readme/README.md"
    assert "--MappingKernelManager.cull_idle_timeout=3600" in pod["spec"]["containers"][0]["args"]
    # applying the plan again (a restart) does not pile up volumes
    spawner.apply_workshop_plan()
    assert len([v for v in spawner.volumes if v["name"] == "workshop-home"]) == 1


@pytest.mark.parametrize("storage", [{"mode": "static", "claim": "nfs-homes"}, {"mode": "none"}])
async def test_other_storage_modes_validate(storage):
    spawner, pod, _ = await manifest(
        ["participants"], home_storage=storage, shared_data={"claim": "shared-rwx"}
    )
    assert kubernetes_validate.validate(pod, "1.32", strict=True)
    assert spawner.storage_pvc_ensure is False
    mounts = container_mounts(pod)
    if storage["mode"] == "static":
        assert mounts["/home/jovyan"]["subPath"] == "ws001"
    else:
        assert "/home/jovyan" not in mounts


async def test_high_performance_profile_only_for_allowed_groups():
    config = {
        "high_performance": {
            "node_selector": {"pool": "big"},
            "gpus": 1,
            "tolerations": [{"key": "big", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "cpu_guarantee": 1.75,
        "cpu_limit": 4,
        "mem_guarantee": "7G",
        "mem_limit": "8G",
    }
    participant, _, _ = await manifest(["participants"], **config)
    assert await participant.offered_profiles() == [
        {
            "display_name": "Standard",
            "slug": "standard",
            "default": True,
            "description": "The workshop's usual server",
        }
    ]
    instructor, pod, _ = await manifest(["instructors"], **config)
    assert [p["slug"] for p in await instructor.offered_profiles()] == ["standard", "high-performance"]
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": 1.75, "memory": 7 * 2**30}
    assert resources["limits"] == {"cpu": 4, "memory": 8 * 2**30}

    instructor.user_options = {"profile": "high-performance"}
    await instructor.load_user_options()
    pod = instructor.api.api_client.sanitize_for_serialization(await instructor.get_pod_manifest())
    assert kubernetes_validate.validate(pod, "1.32", strict=True)
    assert pod["spec"]["nodeSelector"] == {"pool": "big"}
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"

    participant.user_options = {"profile": "high-performance"}
    with pytest.raises(ValueError):
        await participant.load_user_options()


async def test_no_form_unless_there_is_a_choice():
    config = {"high_performance": {"node_selector": {"pool": "big"}}}
    participant, _, _ = await manifest(["participants"], **config)
    assert await participant.get_options_form() == ""
    instructor, _, _ = await manifest(["instructors"], **config)
    form = await instructor.get_options_form()
    assert "high-performance" in form and "Standard" in form
