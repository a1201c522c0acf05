"""Helpers for the Helm chart tests: render with the embedded Helm engine, and run the hub-side
configuration (helm-chart/files/workshop_config.py) the way Zero to JupyterHub's hub does.

No helm binary and no cluster: `helm_python` (helm-python-sdk) embeds Helm's engine. The z2jh
dependency is not downloaded here, so a render holds this chart's own templates only; what we
hand to z2jh is checked as values.
"""

from __future__ import annotations

import base64
import copy
import functools
import sys
import types
from collections.abc import Mapping
from pathlib import Path

import helm_python

from tests.harness.users import User
import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm-chart"
CI_DIR = CHART / "ci"
GLUE = CHART / "files" / "workshop_config.py"
RELEASE, NAMESPACE = "workshop", "hackweek"


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(str(CHART))


def ci_values(name: str) -> dict:
    return yaml.safe_load((CI_DIR / name).read_text()) or {}


def deep_merge(base: Mapping, override: Mapping) -> dict:
    merged = dict(copy.deepcopy(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render(values: dict | None = None) -> dict[str, str]:
    """Template path → rendered text (Helm validates values.schema.json first)."""
    return chart().render(values or {}, name=RELEASE, namespace=NAMESPACE)


def manifests(rendered: dict[str, str]) -> list[dict]:
    """Every Kubernetes object in a render (NOTES.txt and empty templates left out)."""
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [obj for obj in yaml.safe_load_all(text) if obj]
    return objects


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found among {[(o['kind'], o['metadata']['name']) for o in objects]}"
    return matches[0]


def secret_data(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def named(items: list[dict], name: str) -> dict:
    matches = [item for item in items or [] if item.get("name") == name]
    assert len(matches) == 1, f"{name!r}: {len(matches)} entries"
    return matches[0]


# --- the hub side ------------------------------------------------------------------------

def hub_values(values: dict | None = None) -> dict:
    """What z2jh's hub reads with get_config(): the jupyterhub subchart's values (as z2jh's own
    Secret `hub` carries them, with Chart and Release), merged with the values.yaml key of the
    Secret named by hub.existingSecret — here the one this chart renders."""
    merged = chart().merge_values(values or {})
    subchart = copy.deepcopy(merged["jupyterhub"])
    subchart["Chart"] = {"Name": "jupyterhub", "Version": "4.4.0"}
    subchart["Release"] = {"Name": RELEASE, "Namespace": NAMESPACE, "Service": "Helm"}
    objects = manifests(render(values))
    settings = find(objects, "Secret", subchart["hub"]["existingSecret"])
    return deep_merge(subchart, yaml.safe_load(secret_data(settings)["values.yaml"]))


def fake_z2jh(config: dict, names: dict | None = None) -> types.ModuleType:
    """A stand-in for z2jh.py, the module z2jh's hub imports its helpers from."""
    module = types.ModuleType("z2jh")
    names = {"hub": "hub", "proxy-public": "proxy-public", **(names or {})}

    def get_config(key, default=None):
        value = config
        for level in key.split("."):
            if not isinstance(value, dict) or level not in value:
                return default
            value = value[level]
        return value

    def get_name(name):
        return names[name]

    module.get_config, module.get_name = get_config, get_name
    return module


def z2jh_like_config(config: dict) -> Config:
    """The parts of the hub configuration z2jh sets up *before* it loads jupyterhub_config.d/
    that the workshop configuration builds on (a small stand-in written for these tests, not
    z2jh's code): the KubeSpawner default, volumes and mounts as dicts keyed by name (from
    singleuser.storage.extraVolumes/extraVolumeMounts; its own home volume only with
    storage.type dynamic/static), services from hub.services with their API tokens, roles from
    hub.loadRoles, and the hub.config pass-through."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    single = config.get("singleuser") or {}
    storage = single.get("storage") or {}
    assert storage.get("type") == "none", "the stand-in only knows z2jh without a home volume"
    volumes, mounts = storage.get("extraVolumes") or {}, storage.get("extraVolumeMounts") or {}
    if isinstance(volumes, list):
        volumes = {volume["name"]: volume for volume in volumes}
    if isinstance(mounts, list):
        mounts = {f"{i}-{mount['name']}": mount for i, mount in enumerate(mounts)}
    c.KubeSpawner.volumes, c.KubeSpawner.volume_mounts = volumes, mounts
    if single.get("cmd"):
        c.Spawner.cmd = single["cmd"]
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    hub = config.get("hub") or {}
    for key, service in (hub.get("services") or {}).items():
        service = dict(service or {})
        service.setdefault("name", key)
        service.pop("apiToken", None)
        service["api_token"] = f"token-of-{key}"  # z2jh: from its Secret `hub`
        c.JupyterHub.services.append(service)
    for key, role in (hub.get("loadRoles") or {}).items():
        role = dict(role)
        role.setdefault("name", key)
        c.JupyterHub.load_roles.append(role)
    if hub.get("templateVars"):
        c.JupyterHub.template_vars = dict(hub["templateVars"])
    for section, settings in (hub.get("config") or {}).items():
        c[section].update(copy.deepcopy(settings))
    return c


def run_glue(config: dict, c: Config | None = None, names: dict | None = None) -> Config:
    """Execute helm-chart/files/workshop_config.py as z2jh does with jupyterhub_config.d files:
    exec() of the file's source in a namespace holding the config object `c`."""
    c = z2jh_like_config(config) if c is None else c
    saved = sys.modules.get("z2jh")
    sys.modules["z2jh"] = fake_z2jh(config, names)
    try:
        namespace = {"c": c, "__name__": "workshop_config"}
        exec(compile(GLUE.read_text(), GLUE.name, "exec"), namespace)
    finally:
        if saved is None:
            sys.modules.pop("z2jh", None)
        else:
            sys.modules["z2jh"] = saved
    assert set(namespace) <= {"c", "__name__", "__builtins__"}, f"names leaked into z2jh's globals: {set(namespace)}"
    return c


async def user_pod(c: Config, username: str, groups: list[str], profile: str | None = None):
    """The pod (and home claim) manifest the configured workshop spawner makes for a user."""
    from jupyterhub_workshop.spawner.kube import WorkshopKubeSpawner

    spawner = WorkshopKubeSpawner(_mock=True, user=User(username, groups), config=c)
    if profile:
        spawner.user_options = {"profile": profile}
    await spawner.load_user_options()
    serialize = spawner.api.api_client.sanitize_for_serialization
    pod = serialize(await spawner.get_pod_manifest())
    pvc = serialize(spawner.get_pvc_manifest()) if spawner.storage_pvc_ensure else None
    return spawner, pod, pvc
