"""Helpers for the Helm chart tests: render the whole chart (ours and Zero to JupyterHub 4.4.0's
templates) with the embedded Helm engine, and run the hub's configuration the way z2jh's hub
container does, from the rendered objects.

No helm binary and no cluster: `helm_python` (helm-python-sdk) embeds Helm's engine. The z2jh
chart comes from helm-chart/charts/, else from the copy beside the repository (../shared/charts/),
else it is fetched from its chart repository into helm-chart/charts/ (see ``z2jh.py``); it is
copied into a temporary copy of our chart for loading, never into the repository.
"""

from __future__ import annotations

import base64
import builtins
import fnmatch
import functools
import glob
import io
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import helm_python
import pytest
import yaml
from traitlets.config import Config

from tests.chart import z2jh
from tests.chart.z2jh import Z2JH_VERSION
from tests.harness.users import User

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm-chart"
CI_DIR = CHART / "ci"
GLUE = CHART / "files" / "workshop_config.py"
RELEASE, NAMESPACE = "workshop", "hackweek"
HUB_ETC = "/usr/local/etc/jupyterhub"
DB_URL = "postgresql+psycopg://workshop:pw@db:5432/workshop"
# Secrets the organizer makes with kubectl, for the values files that name them
ORGANIZER_SECRETS = {
    "workshop-accounts": {"accounts.yaml": "version: 1\naccounts: []\n"},
    "workshop-db": {"url": DB_URL},
}


def z2jh_source() -> Path | None:
    """helm-chart/charts/ if it holds z2jh, else the shared copy of its chart archive, else
    helm-chart/charts/ after fetching it; None when none of these worked (``z2jh.source``)."""
    return z2jh.source()[0]


def chart_copy(where: Path) -> Path:
    """A copy of helm-chart/ under ``where`` with z2jh in its charts/ (symlinked files copied)."""
    source, words = z2jh.source()
    if source is None:
        pytest.skip(words)
    target = where / "jupyterhub-workshop"
    fetched = source == CHART / "charts"
    shutil.copytree(CHART, target, ignore=None if fetched else shutil.ignore_patterns("charts"))
    if not fetched:
        (target / "charts").mkdir()
        shutil.copy(source, target / "charts")
    [dep] = helm_python.dependency_list(str(target))
    assert dep["status"] in {"ok", "unpacked"}, dep
    return target


@functools.cache
def chart() -> helm_python.Chart:
    """The whole chart, loaded into memory (the temporary copy is gone afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        full = helm_python.Chart.load(str(chart_copy(Path(tmp))))
    assert [(d["name"], d["version"]) for d in full.dependencies] == [("jupyterhub", Z2JH_VERSION)]
    return full


def ci_values(name: str) -> dict:
    return yaml.safe_load((CI_DIR / name).read_text()) or {}


def deep_merge(base: Mapping, override: Mapping) -> dict:
    merged = {key: value for key, value in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(values: dict | None = None, revision: int = 1) -> dict[str, str]:
    """Template path → rendered text (Helm validates both charts' values.schema.json first);
    ``revision`` above 1 renders an upgrade to that revision."""
    return chart().render(
        values or {},
        name=RELEASE,
        namespace=NAMESPACE,
        revision=revision,
        is_install=revision == 1,
        is_upgrade=revision > 1,
    )


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
    assert len(matches) == 1, (
        f"{kind}/{name}: {len(matches)} found among {[(o['kind'], o['metadata']['name']) for o in objects]}"
    )
    return matches[0]


def secret_data(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def named(items: list[dict], name: str) -> dict:
    matches = [item for item in items or [] if item.get("name") == name]
    assert len(matches) == 1, f"{name!r}: {len(matches)} entries"
    return matches[0]


# --- the hub container, from the rendered objects -------------------------------------------


class HubFiles:
    """The files the hub Deployment mounts, read from the rendered ConfigMaps and Secrets (and
    ``secrets``: Secrets the organizer makes, by name and key)."""

    def __init__(self, objects: list[dict], secrets: Mapping[str, Mapping[str, str]] = ORGANIZER_SECRETS):
        secrets = dict(secrets)
        hub = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in hub["volumes"]}
        self.files: dict[str, str] = {}
        for mount in hub["containers"][0]["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                data = find(objects, "ConfigMap", volume["configMap"]["name"]).get("data") or {}
            elif "secret" in volume:
                name = volume["secret"]["secretName"]
                rendered = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name]
                if rendered:
                    data = secret_data(rendered[0])
                elif name in secrets:
                    data = secrets[name]
                else:
                    assert volume["secret"].get("optional"), f"the hub pod would wait for Secret {name}"
                    continue
            else:
                continue  # the database volume, empty at first start
            assert "items" not in (volume.get("configMap") or volume.get("secret")), volume
            if mount.get("subPath"):
                self.files[mount["mountPath"]] = data[mount["subPath"]]
            else:
                for key, text in data.items():
                    self.files[f"{mount['mountPath'].rstrip('/')}/{key}"] = text

    def exists(self, path) -> bool:
        return os.fspath(path) in self.files

    def isdir(self, path) -> bool:
        prefix = os.fspath(path).rstrip("/") + "/"
        return any(name.startswith(prefix) for name in self.files)

    def glob(self, pattern) -> list[str]:
        return sorted(name for name in self.files if fnmatch.fnmatch(name, pattern))

    def open(self, path, *args, **kwargs):
        if os.fspath(path) in self.files:
            return io.StringIO(self.files[os.fspath(path)])
        return builtins.open(path, *args, **kwargs)


class _Overlay:
    """A module seen through some replaced attributes."""

    def __init__(self, real, **replaced):
        self._real, self._replaced = real, replaced

    def __getattr__(self, name):
        return self._replaced[name] if name in self._replaced else getattr(self._real, name)


def hub_builtins(files: HubFiles) -> dict:
    """Builtins for code compiled as the hub container's files: `open`, and `os`/`glob` when
    imported, see ``files`` at their paths (everything else is this machine's)."""
    overlays = {
        "os": _Overlay(os, path=_Overlay(os.path, exists=files.exists, isdir=files.isdir)),
        "glob": _Overlay(glob, glob=files.glob),
    }

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in overlays:
            return overlays[name]
        return builtins.__import__(name, globals, locals, fromlist, level)

    return {**vars(builtins), "open": files.open, "__import__": importer}


def hub_environment(
    objects: list[dict], secrets: Mapping[str, Mapping[str, str]] = ORGANIZER_SECRETS
) -> dict[str, str | None]:
    """The hub container's environment: its env entries (None: an optional Secret that is
    missing, so the variable is unset), and Kubernetes' service links."""
    secrets = dict(secrets)
    env = {}
    for service in (o for o in objects if o["kind"] == "Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = "10.96.0.10"
        env[f"{prefix}_SERVICE_PORT"] = str(service["spec"]["ports"][0]["port"])
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace", source
            env[entry["name"]] = NAMESPACE
            continue
        ref = source["secretKeyRef"]
        rendered = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"]]
        data = secret_data(rendered[0]) if rendered else secrets.get(ref["name"])
        if data is None and ref.get("optional"):
            env[entry["name"]] = None
            continue
        env[entry["name"]] = data[ref["key"]]
    return env


@contextmanager
def _module(name: str, module: types.ModuleType):
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        yield module
    finally:
        if saved is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved


def run_hub_configuration(
    objects: list[dict], tmp: Path, secrets: Mapping[str, Mapping[str, str]] = ORGANIZER_SECRETS
) -> Config:
    """The hub's configuration as z2jh 4.4.0's hub container loads it: z2jh's own
    jupyterhub_config.py and z2jh.py, unmodified from the rendered ConfigMap `hub`, over the
    files the hub Deployment mounts (the values in Secret `hub`, ours in the existing Secret,
    jupyterhub_config.d/) and its environment. What z2jh's hub would do process-wide (select
    the curl HTTP client, put its directory on sys.path) is undone afterwards, and temporary
    files (the workshop service's configuration) go under ``tmp``."""
    from tornado.httpclient import AsyncHTTPClient

    files = HubFiles(objects, secrets)
    hub_builtins_ = hub_builtins(files)
    z2jh = types.ModuleType("z2jh")
    z2jh.__file__ = f"{HUB_ETC}/z2jh.py"
    z2jh.__dict__["__builtins__"] = hub_builtins_
    exec(compile(files.files[z2jh.__file__], z2jh.__file__, "exec"), z2jh.__dict__)

    c = Config()
    config_file = f"{HUB_ETC}/jupyterhub_config.py"
    namespace = {"c": c, "get_config": lambda: c, "__file__": config_file, "__builtins__": hub_builtins_}
    with ExitStack() as stack:
        environment = hub_environment(objects, secrets)
        stack.enter_context(
            mock.patch.dict(os.environ, {k: v for k, v in environment.items() if v is not None})
        )
        for name in (k for k, v in environment.items() if v is None):  # e.g. this shell's WORKSHOP_DB_URL
            if name in os.environ:
                stack.callback(os.environ.__setitem__, name, os.environ.pop(name))
        # only this key: patch.dict would also drop every module first imported meanwhile
        stack.enter_context(_module("z2jh", z2jh))
        stack.enter_context(mock.patch.object(sys, "path", list(sys.path)))
        stack.enter_context(mock.patch.object(tempfile, "tempdir", str(tmp)))
        # the hub image has pycurl; z2jh makes every AsyncHTTPClient a curl client
        curl = stack.enter_context(mock.patch.object(AsyncHTTPClient, "configure"))
        exec(compile(files.files[config_file], config_file, "exec"), namespace)
    curl.assert_called_once_with("tornado.curl_httpclient.CurlAsyncHTTPClient")
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
