"""What a workshop pod needs, as plain data: pure functions of the user's groups and the config.

The results are what KubeSpawner builds a pod from (volumes, mounts, environment, the postStart
hook, PVC settings, profiles), in its own shapes, so it builds the manifest as it would from config.
Entries this module adds are named ``workshop-*``; applying the plan again replaces them rather
than piling up copies, and leaves everything else (z2jh's or the operator's) in place.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from . import home_setup
from .common import in_any

STORAGE_MODES = ("dynamic", "static", "none")
# a Kubernetes quantity, as the chart's values.schema.json has it (tests/chart/test_settings_agree.py)
CAPACITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
PREFIX = "workshop-"
HOME_VOLUME = PREFIX + "home"
SHARED_VOLUME = PREFIX + "shared"
README_VOLUME = PREFIX + "readme"


def _from_settings(cls, config: dict, what: str):
    """``cls(**config)``, refusing keys it does not have with a message naming the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown {what} setting(s) {unknown}; known: {sorted(known)}")
    return cls(**config)


@dataclass(frozen=True)
class HomeStorage:
    """Where a user's home lives.

    - ``dynamic``: a PVC per user (``claim-{username}``) of ``storage_class`` and ``capacity``;
    - ``static``: one existing ReadWriteMany ``claim`` (e.g. NFS), a ``sub_path`` per user;
    - ``none``: the container's own disk, lost when the server stops.
    """

    mode: str = "dynamic"
    storage_class: str | None = None
    capacity: str = "10Gi"
    claim: str = ""
    sub_path: str = "{username}"

    @classmethod
    def from_config(cls, config: dict) -> HomeStorage:
        storage = _from_settings(cls, config, "home storage")
        if storage.mode not in STORAGE_MODES:
            raise ValueError(f"home storage mode {storage.mode!r} must be one of {', '.join(STORAGE_MODES)}")
        if storage.mode == "dynamic" and CAPACITY.fullmatch(str(storage.capacity)) is None:
            raise ValueError(f"home storage capacity {storage.capacity!r} is not a size such as 10Gi")
        if storage.mode == "static" and not storage.claim:
            raise ValueError("home storage mode 'static' needs 'claim': an existing ReadWriteMany PVC")
        return storage


@dataclass(frozen=True)
class SharedData:
    """The one shared data volume: an NFS export or an existing ReadWriteMany claim."""

    nfs_server: str = ""
    nfs_path: str = "/"
    claim: str = ""
    mount_path: str = "/srv/shared"
    writable_mount_path: str = "/srv/shared-readwrite"

    @classmethod
    def from_config(cls, config: dict) -> SharedData | None:
        if not config:
            return None
        shared = _from_settings(cls, config, "shared data")
        if bool(shared.nfs_server) == bool(shared.claim):
            raise ValueError("shared data needs exactly one of 'nfs_server' (with 'nfs_path') or 'claim'")
        return shared

    def volume(self) -> dict:
        if self.claim:
            return {"name": SHARED_VOLUME, "persistentVolumeClaim": {"claimName": self.claim}}
        return {"name": SHARED_VOLUME, "nfs": {"server": self.nfs_server, "path": self.nfs_path}}


@dataclass(frozen=True)
class Readme:
    """The quickstart README: a ConfigMap key mounted read-only into the pod."""

    config_map: str = ""
    key: str = "README.md"
    mount_dir: str = "/etc/workshop/readme"
    name_in_home: str = "README.md"


@dataclass
class PodPlan:
    """KubeSpawner trait values for one user's pod."""

    volumes: list = field(default_factory=list)
    volume_mounts: list = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    storage_pvc_ensure: bool = False
    storage_class: str | None = None
    storage_capacity: str | None = None


def home_storage_for(groups: Iterable[str], base: HomeStorage, by_group: dict[str, dict]) -> HomeStorage:
    """``base`` with the settings of the first group in ``by_group`` the user belongs to."""
    groups = set(groups)
    for group, overrides in by_group.items():
        if group in groups:
            merged = {f.name: getattr(base, f.name) for f in fields(base)} | dict(overrides)
            return HomeStorage.from_config(merged)
    return base


def plan_pod(
    groups: Iterable[str],
    storage: HomeStorage,
    shared: SharedData | None,
    readme: Readme,
    home_mount_path: str,
    shared_writer_groups: Iterable[str],
) -> PodPlan:
    """Everything the workshop adds to a user's pod."""
    plan = PodPlan()
    if storage.mode == "dynamic":
        plan.storage_pvc_ensure = True
        plan.storage_class = storage.storage_class
        plan.storage_capacity = storage.capacity
        plan.volumes.append({"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": "{pvc_name}"}})
        plan.volume_mounts.append({"name": HOME_VOLUME, "mountPath": home_mount_path})
    elif storage.mode == "static":
        plan.volumes.append({"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": storage.claim}})
        plan.volume_mounts.append(
            {"name": HOME_VOLUME, "mountPath": home_mount_path, "subPath": storage.sub_path}
        )

    shared_dir = shared_rw_dir = None
    if shared is not None:
        plan.volumes.append(shared.volume())
        shared_dir = shared.mount_path
        plan.volume_mounts.append({"name": SHARED_VOLUME, "mountPath": shared.mount_path, "readOnly": True})
        if in_any(groups, shared_writer_groups):
            # a second, writable view for tutorial leads: notebooks use ~/shared for everyone,
            # and writes are deliberate (2i2c and Berkeley run it this way)
            shared_rw_dir = shared.writable_mount_path
            plan.volume_mounts.append({"name": SHARED_VOLUME, "mountPath": shared_rw_dir})

    readme_source = None
    if readme.config_map:
        plan.volumes.append(
            {
                "name": README_VOLUME,
                # optional: a missing ConfigMap must not keep anyone's server from starting
                "configMap": {"name": readme.config_map, "optional": True},
            }
        )
        plan.volume_mounts.append({"name": README_VOLUME, "mountPath": readme.mount_dir, "readOnly": True})
        readme_source = f"{readme.mount_dir}/{readme.key}"

    plan.environment = home_setup.environment(readme_source, readme.name_in_home, shared_dir, shared_rw_dir)
    return plan


# After the home setup, the operator's own postStart command (z2jh's singleuser.lifecycleHooks),
# given as the arguments "$@". `exec` in a subshell runs it as Kubernetes would: a program found
# on PATH, never a shell builtin or function. Its output replaces ~/.workshop/post-start.log; a
# failure is logged and the hook still exits 0, since a failing postStart hook kills the
# container and the user only sees a spawn that never finishes (z2jh issues 1606, 1618, 1972).
OPERATOR_POST_START = r"""
home=${HOME:-/home/jovyan}
mkdir -p "$home/.workshop" 2>/dev/null
out="$home/.workshop/post-start.log"
true 2>/dev/null >"$out" || out=/dev/null
( exec "$@" ) >>"$out" 2>&1 </dev/null
status=$?
if [ "$status" -eq 0 ]; then
  what="ran the postStart command $1"
else
  what="the postStart command $1 exited $status; the server starts anyway (output: ~/.workshop/post-start.log)"
fi
printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" "$what" >>"$home/.workshop/setup.log" 2>/dev/null
exit 0
"""
# $0 of the combined hook: names the hook in `ps` and in sh's own error messages
POST_START_NAME = "workshop-post-start"


def _post_start_key(hooks: Mapping) -> str | None:
    # KubeSpawner accepts Kubernetes' camelCase and the Python client's snake_case keys
    found = [key for key in ("postStart", "post_start") if hooks.get(key)]
    if len(found) > 1:
        raise ValueError(f"lifecycle_hooks has both postStart and post_start: {dict(hooks)!r}; give one")
    return found[0] if found else None


def operator_post_start(hooks: Mapping) -> list[str]:
    """The exec command of the postStart hook in ``hooks`` (``[]``: none).

    Only an ``exec`` hook with a command can run after the home setup; anything else
    (``httpGet``, ``tcpSocket``, ``sleep``) is refused with a message naming the value.
    """
    key = _post_start_key(hooks)
    if key is None:
        return []
    hook = hooks[key]
    handler = hook.get("exec") if isinstance(hook, Mapping) and set(hook) == {"exec"} else None
    command = handler.get("command") if isinstance(handler, Mapping) else None
    if not command or not isinstance(command, list) or not all(isinstance(part, str) for part in command):
        raise ValueError(
            f"lifecycle_hooks {key} {hook!r} cannot run beside the workshop's home setup: the "
            "workshop spawner's postStart hook runs the home setup and then an exec command of "
            "yours, so give {'exec': {'command': [program, args...]}} (in z2jh: "
            "singleuser.lifecycleHooks.postStart.exec.command)"
        )
    return list(command)


def with_home_setup(hooks: Mapping) -> dict:
    """KubeSpawner ``lifecycle_hooks`` with the home setup as the postStart hook.

    Kubernetes runs one postStart handler per container, so an operator's exec postStart
    command runs inside ours, after the home setup (the home is ready when it starts: it may
    use ``~/shared`` or add files beside the README), with its arguments passed through
    unchanged. Other hooks (``preStop``) are kept as given.
    """
    theirs = operator_post_start(hooks)
    kept = {
        key: copy.deepcopy(value) for key, value in hooks.items() if key not in ("postStart", "post_start")
    }
    if not theirs:
        command = home_setup.command()
    else:
        # the home setup in a subshell: its closing `exit 0` ends only the subshell
        command = ["sh", "-c", f"({home_setup.SCRIPT})\n{OPERATOR_POST_START}", POST_START_NAME, *theirs]
    return {**kept, "postStart": {"exec": {"command": command}}}


def merge_named(existing: list | dict, additions: list, replaced_mount_paths: Iterable[str] = ()) -> list:
    """``existing`` without earlier workshop entries (and mounts at paths we now own), plus ``additions``.

    ``existing`` may also be KubeSpawner's dict form (keyed by name, as z2jh passes it).
    """
    if isinstance(existing, dict):
        existing = [{"name": key, **value} for key, value in sorted(existing.items())]
    paths = set(replaced_mount_paths)
    kept = [
        item
        for item in existing
        if not str(item.get("name", "")).startswith(PREFIX) and item.get("mountPath") not in paths
    ]
    return kept + copy.deepcopy(additions)


def profile_entries(configured) -> list[dict]:
    """A ``profile_list`` value as a list of profiles. KubeSpawner 7.1 also takes a dict keyed
    by slug, offered in the order of its sorted keys, as here."""
    if not configured:
        return []
    if isinstance(configured, Mapping):
        return [configured[key] for key in sorted(configured)]
    return list(configured)


def profiles_for(groups: Iterable[str], profiles: list[dict]) -> list[dict]:
    """The profiles this user may choose: those without ``allowed_groups`` or sharing a group.

    ``allowed_groups`` is ours, so it is removed before KubeSpawner sees the profile.
    """
    groups = set(groups)
    offered = []
    for profile in profiles:
        allowed = profile.get("allowed_groups")
        if allowed is None or groups & set(allowed):
            offered.append({k: copy.deepcopy(v) for k, v in profile.items() if k != "allowed_groups"})
    return offered


def high_performance_profile(
    node_selector: dict | None = None,
    tolerations: list | None = None,
    gpus: int = 0,
    allowed_groups: Iterable[str] = ("instructors",),
    display_name: str = "High performance",
    description: str = "A node of its own, for heavier computations",
    **resources,
) -> dict:
    """A profile placing the server on its own node pool (optionally with GPUs)."""
    override = dict(resources)
    if node_selector:
        override["node_selector"] = dict(node_selector)
    if tolerations:
        override["tolerations"] = list(tolerations)
    if gpus:
        override["extra_resource_limits"] = {"nvidia.com/gpu": str(gpus)}
        override["extra_resource_guarantees"] = {"nvidia.com/gpu": str(gpus)}
    return {
        "display_name": display_name,
        "slug": "high-performance",
        "description": description,
        "kubespawner_override": override,
        "allowed_groups": list(allowed_groups),
    }
