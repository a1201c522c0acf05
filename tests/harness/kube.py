"""Kubernetes emulated over HTTP on loopback, so the *real* KubeSpawner can spawn servers here.

No cluster and no container engine exist on the test machines.  This module provides:

* :class:`KubeAPIServer` — an API server speaking the real Kubernetes REST paths and JSON that
  ``kubernetes_asyncio`` (and therefore KubeSpawner) uses.  It subclasses kmock 0.8's
  ``KubernetesEmulator`` (pin ``kmock==0.8``: it builds on its object store and error types)
  and replaces its request path for resource requests: kmock matches every request by scanning
  its ever-growing request log, treats only ``?watch=true`` (not ``True``) as a watch, ignores
  selectors, stamps nothing, and replays a watch *before* subscribing to live events.  Here:
  ``watch=True|true|1``; ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
  ``k in (a,b)``, ``k notin (a,b)``) and ``fieldSelector`` (``path=v``, ``path!=v``);
  ``metadata.namespace/uid/creationTimestamp/resourceVersion/generation`` on create, a new
  ``resourceVersion`` on every change; ``kind: <Kind>List`` with a list ``resourceVersion``;
  watches subscribe first and then replay (atomically: the event loop does not switch between
  the two); ``resourceVersion``/``timeoutSeconds`` on watches; merge, strategic-merge
  (approximated as merge) and JSON patches; PUT; ``/status`` subresources; graceful pod
  deletion (``deletionTimestamp`` until the kubelet has killed the process); finalizers.
  Non-resource paths (``/version``, ``/api``, discovery) fall through to kmock.

* :class:`Kubelet` — runs pods as local processes on loopback addresses ``127.0.A.B``
  (from ``127.0.1.1`` upwards; never ``127.0.0.1``), emulates ``postStart`` hooks, volume
  mounts (as directories), PVC binding with a configurable delay, and pod deletion.

* :func:`write_kubeconfig` — a kubeconfig pointing at the emulator (no auth).

* :class:`KubeHarness` — runs both in a background thread with its own event loop, so sync
  tests and fixtures can use them; ``start()``/``stop()`` or a ``with`` block.

Typical use with a separate hub process (see ``tests/harness/hub.py``)::

    with KubeHarness(tmp_path / "kube", pvc_bind_delay=1.0) as kube:
        hub = HubProcess(tmp_path / "hub", config, env=kube.env).start()   # env = {"KUBECONFIG": ...}
        ...
        kube.pod_paths("jupyter-alice")       # {"/home/jovyan": "<root>/volumes/claim-alice", ...}
        kube.post_start("jupyter-alice")      # {"exit_code": 0, "output": "...", ...}

Filesystem layout under ``root``::

    root/kubeconfig.yaml
    root/pods/<pod>/container.log             stdout+stderr of the pod's process
    root/pods/<pod>/rootfs/<path>             pod paths that are neither mounted nor under HOME
    root/homes/<pod>                          the pod's HOME when no volume is mounted there
    root/volumes/<claimName>[/<subPath>]      persistentVolumeClaim volumes (outlive the pod)
    root/volumes/emptydir-<pod>-<volume>      emptyDir; configmap-<name>, secret-<name>, hostpath-<path>

**HOME and working directory rule.**  The pod-side home path ``H`` is the container's env
``HOME`` (a plain ``value``) if set, else the container's ``workingDir``, else ``/home/jovyan``.
Pod paths translate to local paths through the container's ``volumeMounts`` (longest matching
``mountPath`` wins, ``subPath`` honoured); a path under ``H`` that no mount covers lives in
``root/homes/<pod>``; anything else in ``root/pods/<pod>/rootfs``.  The process gets
``HOME=translate(H)`` and runs in ``translate(workingDir or H)``.  So with KubeSpawner's usual
home PVC mounted at ``/home/jovyan``, ``$HOME`` *is* the PVC's directory.  Processes also get
``KUBE_HARNESS_MOUNTS`` (JSON ``{mountPath: local_dir}``), ``KUBE_HARNESS_ROOTFS``,
``KUBE_HARNESS_POD_NAME`` and ``KUBE_HARNESS_POD_IP``.  Hook commands are not rewritten: write
them against ``$HOME`` (as z2jh users should anyway), not literal pod paths.

In-process KubeSpawner (not the main use): ``kubernetes_asyncio`` reads ``$KUBECONFIG`` when it
is imported and KubeSpawner caches its config, clients and reflectors at class level, so set
``KUBECONFIG`` before anything imports it and call :func:`reset_kubespawner` between tests.  For
direct client access use :meth:`KubeHarness.api_client`, which configures a client from the
kubeconfig without touching global state.

Limits: one node; no restarts (``restartPolicy`` is ignored: an exited container leaves the pod
``Succeeded``/``Failed``); no readiness probes (ready once postStart succeeded); only ``exec``
postStart hooks; ``valueFrom``/``envFrom`` are not resolved; strategic-merge patches are applied
as JSON merge patches (lists replace); a watch does not send ``DELETED`` when an object stops
matching its label selector; PVC data stays on disk when the PVC is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
import datetime
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp.web
import attrs
import kmock
import yaml

log = logging.getLogger("kube-harness")

# ---------------------------------------------------------------------------------------------
# small helpers


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# plural -> Kind for the kinds this harness meets; others are guessed from the plural.
KINDS = {
    "pods": "Pod",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "persistentvolumes": "PersistentVolume",
    "events": "Event",
    "secrets": "Secret",
    "services": "Service",
    "endpoints": "Endpoints",
    "configmaps": "ConfigMap",
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "ingresses": "Ingress",
    "networkpolicies": "NetworkPolicy",
    "nodes": "Node",
}
CORE_PLURALS = {
    "pods", "persistentvolumeclaims", "persistentvolumes", "events", "secrets", "services",
    "endpoints", "configmaps", "namespaces", "serviceaccounts", "nodes",
}


def kind_of(plural: str) -> str:
    if plural in KINDS:
        return KINDS[plural]
    singular = plural[:-1] if plural.endswith("s") else plural
    return singular[:1].upper() + singular[1:]


def as_resource(res: Any) -> kmock.resource:
    """``'pods'`` (core plurals), ``'v1/pods'``, ``'networking.k8s.io/v1/ingresses'`` or a resource."""
    if isinstance(res, kmock.resource):
        return res
    if isinstance(res, str) and "/" not in res and "." not in res:
        if res in CORE_PLURALS:
            return kmock.resource("", "v1", res)
    return kmock.resource(res)


def _api_version(res: kmock.resource) -> str:
    return f"{res.group}/{res.version}" if res.group else res.version


def _json_pointer_parts(pointer: str) -> list[str]:
    if pointer == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``None`` deletes, dicts merge, everything else replaces)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Any, ops: list[dict]) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    doc = copy.deepcopy(doc)

    def parent_of(pointer):
        parts = _json_pointer_parts(pointer)
        if not parts:
            raise ValueError("cannot address the document root")
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(pointer):
        node = doc
        for part in _json_pointer_parts(pointer):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "test":
            if get(path) != op.get("value"):
                raise ValueError(f"test failed at {path}")
            continue
        if kind in ("move", "copy"):
            value = copy.deepcopy(get(op["from"]))
            if kind == "move":
                node, key = parent_of(op["from"])
                if isinstance(node, list):
                    node.pop(int(key))
                else:
                    del node[key]
            kind = "add"
        else:
            value = copy.deepcopy(op.get("value"))
        node, key = parent_of(path)
        if isinstance(node, list):
            index = len(node) if key == "-" else int(key)
            if kind == "add":
                node.insert(index, value)
            elif kind == "remove":
                node.pop(index)
            elif kind == "replace":
                node[index] = value
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and key not in node:
                    raise KeyError(path)
                node[key] = value
            elif kind == "remove":
                del node[key]
    return doc


# ---------------------------------------------------------------------------------------------
# selectors

def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


_SET_TERM = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_TERM = re.compile(r"^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$")
_EXISTS_TERM = re.compile(r"^(!?)\s*([^\s!=()]+)$")


class SelectorError(ValueError):
    pass


def parse_label_selector(selector: str | None) -> Callable[[dict], bool]:
    """A predicate over a labels dict; supports equality, set and existence terms."""
    if not selector:
        return lambda labels: True
    checks: list[Callable[[dict], bool]] = []
    for term in _split_terms(selector):
        if m := _SET_TERM.match(term):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                checks.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                checks.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
        elif m := _EQ_TERM.match(term):
            key, op, value = m.groups()
            if op == "!=":
                checks.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                checks.append(lambda lb, k=key, v=value: k in lb and lb[k] == v)
        elif m := _EXISTS_TERM.match(term):
            negate, key = m.groups()
            if negate:
                checks.append(lambda lb, k=key: k not in lb)
            else:
                checks.append(lambda lb, k=key: k in lb)
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(check(labels) for check in checks)


def _field_value(obj: dict, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(selector: str | None) -> Callable[[dict], bool]:
    """A predicate over a whole object; ``path=value``, ``path==value``, ``path!=value``."""
    if not selector:
        return lambda obj: True
    checks: list[Callable[[dict], bool]] = []
    for term in _split_terms(selector):
        m = _EQ_TERM.match(term)
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
        path, op, value = m.groups()
        if op == "!=":
            checks.append(lambda o, p=path, v=value: _field_value(o, p) != v)
        else:
            checks.append(lambda o, p=path, v=value: _field_value(o, p) == v)
    return lambda obj: all(check(obj) for check in checks)


# ---------------------------------------------------------------------------------------------
# the API server

class ApiError(Exception):
    """Rendered as a Kubernetes ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "details": self.details, "code": self.code,
        }


def _not_found(res: kmock.resource, name: str) -> ApiError:
    what = f"{res.plural}.{res.group}" if res.group else res.plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": res.plural})


class _Watcher:
    __slots__ = ("namespace", "name", "labels", "fields", "queue")

    def __init__(self, namespace, name, labels, fields):
        self.namespace, self.name, self.labels, self.fields = namespace, name, labels, fields
        self.queue: asyncio.Queue = asyncio.Queue()

    def matches(self, obj: dict) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and meta.get("name") != self.name:
            return False
        return self.labels(meta.get("labels") or {}) and self.fields(obj)


Listener = Callable[[str, kmock.resource, dict], None]


@attrs.define(kw_only=True)
class KubeAPIServer(kmock.KubernetesEmulator):
    """kmock's ``KubernetesEmulator`` with the fixes KubeSpawner needs (see the module doc).

    All state lives in the event loop that serves it; call the methods below from that loop
    (``KubeHarness`` has thread-safe wrappers).  Objects are also visible the kmock way,
    ``api.objects['v1/pods', 'default', 'jupyter-x']`` with ``.history`` of all versions, but
    change them through :meth:`create`/:meth:`patch`/:meth:`delete` so watchers hear about it.
    """

    history_size: int = 10000  # watch events kept for resuming watches at a resourceVersion
    default_namespace: str = "default"

    request_count: int = attrs.field(default=0, init=False)
    recent_requests: collections.deque = attrs.field(factory=lambda: collections.deque(maxlen=200), init=False)
    deletion_hooks: dict = attrs.field(factory=dict, init=False)  # plural -> async fn(obj)
    _rv: int = attrs.field(default=0, init=False)
    _live: dict = attrs.field(factory=dict, init=False)  # resource -> {(ns, name): kmock Object}
    _watchers: dict = attrs.field(factory=dict, init=False)  # resource -> set[_Watcher]
    _events: collections.deque = attrs.field(factory=collections.deque, init=False)
    _events_dropped_rv: int = attrs.field(default=0, init=False)
    _listeners: list = attrs.field(factory=list, init=False)
    _hook_tasks: dict = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for ns in dict.fromkeys(["default", "kube-system", self.default_namespace]):
            self.create("namespaces", {"metadata": {"name": ns}})

    # ---- store -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def add_listener(self, listener: Listener) -> None:
        """``listener(event_type, resource, obj)`` is called synchronously on every change."""
        self._listeners.append(listener)

    def _emit(self, res: kmock.resource, event_type: str, obj: dict) -> None:
        event = {"type": event_type, "object": obj}
        if len(self._events) >= self.history_size:
            self._events_dropped_rv = self._events.popleft()[0]
        self._events.append((int(obj["metadata"]["resourceVersion"]), res, event))
        for watcher in self._watchers.get(res, ()):
            if watcher.matches(obj):
                watcher.queue.put_nowait(event)
        for listener in list(self._listeners):
            try:
                listener(event_type, res, obj)
            except Exception:  # a broken listener must not break the API
                log.exception("listener failed for %s %s", event_type, res.plural)

    def _store(self, res: kmock.resource, ns: str | None, name: str, obj: dict) -> None:
        key = (res, ns, name)
        if key in self._objects:
            self._objects[key].history.append(obj)
        else:
            self._objects[key] = obj
        self._live.setdefault(res, {})[(ns, name)] = self._objects[key]

    def _current(self, res: kmock.resource, ns: str | None, name: str) -> dict | None:
        entry = self._live.get(res, {}).get((ns, name))
        return None if entry is None else entry.last.raw

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict:
        res = as_resource(res)
        obj = self._current(res, namespace, name)
        if obj is None:
            raise _not_found(res, name)
        return obj

    def find(self, res: Any, name: str, namespace: str | None = None) -> dict | None:
        return self._current(as_resource(res), namespace, name)

    def list(self, res: Any, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        res = as_resource(res)
        labels, fields = parse_label_selector(label_selector), parse_field_selector(field_selector)
        items = []
        for (ns, _), entry in self._live.get(res, {}).items():
            if namespace is not None and ns != namespace:
                continue
            obj = entry.last.raw
            if labels(obj.get("metadata", {}).get("labels") or {}) and fields(obj):
                items.append(obj)
        return items

    def create(self, res: Any, body: dict, namespace: str | None = None, *, dry_run: bool = False) -> dict:
        res = as_resource(res)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        ns = namespace if namespace is not None else meta.get("namespace")
        if res.plural == "namespaces":
            ns = None
        elif ns is None and res.plural not in ("persistentvolumes", "nodes"):
            ns = self.default_namespace
        if namespace is not None and meta.get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        name = meta.get("name")
        if not name:
            if meta.get("generateName"):
                name = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, "Invalid", f"{kind_of(res.plural)} is invalid: metadata.name: Required value")
        if self._current(res, ns, name) is not None:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            raise ApiError(409, "AlreadyExists", f'{what} "{name}" already exists', {"name": name, "kind": res.plural})
        obj.setdefault("apiVersion", _api_version(res))
        obj.setdefault("kind", kind_of(res.plural))
        meta["name"] = name
        if ns is not None:
            meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        if res.plural == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
            obj["status"].setdefault("qosClass", "BestEffort")
        elif res.plural == "persistentvolumeclaims":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif res.plural == "namespaces":
            obj.setdefault("status", {}).setdefault("phase", "Active")
        if dry_run:
            meta["resourceVersion"] = str(self._rv)
            return obj
        meta["resourceVersion"] = self._next_rv()
        self._store(res, ns, name, obj)
        self._emit(res, "ADDED", obj)
        return obj

    def _replace_stored(self, res, ns, name, new: dict) -> dict:
        old = self._current(res, ns, name)
        if old is not None and old.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(res, ns, name, new)
        self._emit(res, "MODIFIED", new)
        self._maybe_finalize(res, ns, name)
        return self._current(res, ns, name) or new

    def _keep_identity(self, old: dict, new: dict) -> dict:
        meta = new.setdefault("metadata", {})
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        new.setdefault("apiVersion", old.get("apiVersion"))
        new.setdefault("kind", old.get("kind"))
        return new

    def patch(self, res: Any, name: str, patch: Any, namespace: str | None = None, *,
              subresource: str | None = None, patch_type: str = "merge") -> dict:
        """``patch_type``: ``merge`` (also used for strategic-merge and apply) or ``json``."""
        res = as_resource(res)
        old = self._current(res, namespace, name)
        if old is None:
            raise _not_found(res, name)
        try:
            if patch_type == "json":
                new = json_patch(old, patch)
            else:
                new = merge_patch(old, patch)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {e}")
        if subresource == "status":
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
        # (the real API ignores status in main-resource patches; we are lenient and apply it)
        new = self._keep_identity(old, new)
        return self._replace_stored(res, namespace, name, new)

    def replace(self, res: Any, name: str, body: dict, namespace: str | None = None, *,
                subresource: str | None = None) -> dict:
        res = as_resource(res)
        old = self._current(res, namespace, name)
        if old is None:
            raise _not_found(res, name)
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": '
                           "the object has been modified; please apply your changes to the latest version and try again")
        if subresource == "status":
            new = {**copy.deepcopy(old), "status": copy.deepcopy(body.get("status", {}))}
        else:
            new = copy.deepcopy(body)
            if res.plural == "pods" and "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        new = self._keep_identity(old, new)
        return self._replace_stored(res, namespace, name, new)

    def delete(self, res: Any, name: str, namespace: str | None = None, *,
               grace_period_seconds: int | None = None) -> dict:
        """Delete; pods (with a kubelet) and objects with finalizers get a ``deletionTimestamp`` first."""
        res = as_resource(res)
        old = self._current(res, namespace, name)
        if old is None:
            raise _not_found(res, name)
        hook = self.deletion_hooks.get(res.plural)
        finalizers = old["metadata"].get("finalizers") or []
        if hook is None and not finalizers:
            return self._remove(res, namespace, name)
        obj = old
        if not old["metadata"].get("deletionTimestamp"):
            if grace_period_seconds is None:
                grace_period_seconds = int((old.get("spec") or {}).get("terminationGracePeriodSeconds", 30)) \
                    if res.plural == "pods" else 0
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = grace_period_seconds
            new["metadata"]["resourceVersion"] = self._next_rv()
            self._store(res, namespace, name, new)
            self._emit(res, "MODIFIED", new)
            obj = new
        key = (res, namespace, name)
        if hook is not None:
            task = self._hook_tasks.get(key)
            if task is None:
                self._hook_tasks[key] = asyncio.get_running_loop().create_task(
                    self._run_deletion_hook(key, hook, obj, grace_period_seconds))
            elif grace_period_seconds == 0:
                expedite = getattr(hook, "expedite", None)
                if expedite:
                    expedite(obj)
        return obj

    async def _run_deletion_hook(self, key, hook, obj, grace) -> None:
        try:
            await hook(obj, grace)
        except Exception:
            log.exception("deletion hook failed for %s", key[2])
        finally:
            self._hook_tasks.pop(key, None)
            self._maybe_finalize(*key)

    def _maybe_finalize(self, res, ns, name) -> None:
        obj = self._current(res, ns, name)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if obj["metadata"].get("finalizers") or (res, ns, name) in self._hook_tasks:
            return
        self._remove(res, ns, name)

    def _remove(self, res, ns, name) -> dict:
        old = self._current(res, ns, name)
        if old is None:
            raise _not_found(res, name)
        final = copy.deepcopy(old)
        final["metadata"]["resourceVersion"] = self._next_rv()
        entry = self._live[res].pop((ns, name))
        entry.history.append(final)
        entry.delete()  # kmock's soft deletion: history stays, `.deleted` is True
        self._emit(res, "DELETED", final)
        return final

    # ---- HTTP ----------------------------------------------------------------------------

    @staticmethod
    def _parse_path(path: str):
        """(resource, namespace, name, subresource, legacy_watch) or None for non-resource paths."""
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        legacy_watch = False
        if rest and rest[0] == "watch":
            legacy_watch, rest = True, rest[1:]
        if not rest:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, rest = rest[0], rest[1:]
        name = rest[0] if rest else None
        sub = "/".join(rest[1:]) or None
        return kmock.resource(group, version, plural), namespace, name, sub, legacy_watch

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self.request_count += 1
        self.recent_requests.append((raw.method, raw.path_qs))
        parsed = self._parse_path(raw.path)
        if parsed is None:
            # discovery and other non-resource paths: kmock's own (DSL-driven) handling.
            # Its request log is scanned per request, so keep it short.
            try:
                return await super().__call__(raw)
            finally:
                del self._requests[:-50]
        try:
            return await self._serve(raw, *parsed)
        except ApiError as e:
            return aiohttp.web.json_response(e.status(), status=e.code)
        except SelectorError as e:
            return aiohttp.web.json_response(ApiError(400, "BadRequest", str(e)).status(), status=400)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # report server bugs to the client as a Status
            log.exception("kube API error for %s %s", raw.method, raw.path_qs)
            err = ApiError(500, "InternalError", f"{type(e).__name__}: {e}")
            return aiohttp.web.json_response(err.status(), status=500)

    async def _serve(self, raw, res, ns, name, sub, legacy_watch):
        q = raw.query
        method = raw.method
        body: Any = None
        data = await raw.read()
        if data:
            try:
                body = json.loads(data)
            except ValueError:
                if "yaml" in (raw.content_type or ""):
                    body = yaml.safe_load(data)
                else:
                    raise ApiError(400, "BadRequest", "the request body is not valid JSON")
        dry_run = bool(q.get("dryRun"))

        if method == "GET":
            watch = legacy_watch or q.get("watch", "").lower() in ("true", "1")
            if watch:
                return await self._serve_watch(raw, res, ns, name, q)
            if name is None:
                items = self.list(res, ns, q.get("labelSelector"), q.get("fieldSelector"))
                return aiohttp.web.json_response({
                    "kind": f"{kind_of(res.plural)}List",
                    "apiVersion": _api_version(res),
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                })
            if sub not in (None, "status"):
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({sub})")
            return aiohttp.web.json_response(self.get(res, name, ns))
        if method == "POST" and name is None:
            obj = self.create(res, body, ns, dry_run=dry_run)
            return aiohttp.web.json_response(obj, status=201)
        if method == "PATCH" and name is not None:
            ctype = raw.content_type or ""
            patch_type = "json" if ctype == "application/json-patch+json" else "merge"
            if patch_type == "json" and not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            if dry_run:
                return aiohttp.web.json_response(self.get(res, name, ns))
            return aiohttp.web.json_response(self.patch(res, name, body, ns, subresource=sub, patch_type=patch_type))
        if method == "PUT" and name is not None:
            if dry_run:
                return aiohttp.web.json_response(body)
            return aiohttp.web.json_response(self.replace(res, name, body or {}, ns, subresource=sub))
        if method == "DELETE":
            grace = q.get("gracePeriodSeconds")
            if grace is None and isinstance(body, dict):
                grace = body.get("gracePeriodSeconds")
            grace = None if grace is None else int(grace)
            if name is None:  # deletecollection
                deleted = []
                for obj in self.list(res, ns, q.get("labelSelector"), q.get("fieldSelector")):
                    meta = obj["metadata"]
                    deleted.append(self.delete(res, meta["name"], meta.get("namespace"), grace_period_seconds=grace))
                return aiohttp.web.json_response({
                    "kind": f"{kind_of(res.plural)}List", "apiVersion": _api_version(res),
                    "metadata": {"resourceVersion": str(self._rv)}, "items": deleted,
                })
            if dry_run:
                return aiohttp.web.json_response(self.get(res, name, ns))
            return aiohttp.web.json_response(self.delete(res, name, ns, grace_period_seconds=grace))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {raw.path}")

    async def _serve_watch(self, raw, res, ns, name, q) -> aiohttp.web.StreamResponse:
        try:
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(q.get("fieldSelector"))
        except SelectorError as e:
            raise ApiError(400, "BadRequest", str(e))
        timeout = q.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        watcher = _Watcher(ns, name, labels, fields)
        # Subscribe first, then take the replay snapshot.  Both happen without an await in
        # between, so no change can fall into a gap (kmock 0.8 replays before subscribing).
        self._watchers.setdefault(res, set()).add(watcher)
        try:
            rv_param = q.get("resourceVersion") or "0"
            try:
                since = int(rv_param)
            except ValueError:
                since = 0
            if since > 0:
                if since < self._events_dropped_rv:
                    gone = ApiError(410, "Expired", f"too old resource version: {since} ({self._events_dropped_rv})")
                    initial = [{"type": "ERROR", "object": gone.status()}]
                else:
                    initial = [ev for (rv, r, ev) in self._events
                               if rv > since and r == res and watcher.matches(ev["object"])]
            else:
                initial = [{"type": "ADDED", "object": obj}
                           for (obj_ns, obj_name), entry in list(self._live.get(res, {}).items())
                           for obj in [entry.last.raw]
                           if watcher.matches(obj)]

            response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(raw)
            for event in initial:
                await response.write(json.dumps(event).encode() + b"\n")
            if initial and initial[0]["type"] == "ERROR":
                await response.write_eof()
                return response
            while True:
                wait = 5.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), wait)
                except asyncio.TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        break
                    continue
                if event is None:  # server shutting down
                    break
                chunk, closing = [event], False
                while not watcher.queue.empty():  # batch whatever queued meanwhile
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        closing = True
                        break
                    chunk.append(nxt)
                await response.write(b"".join(json.dumps(ev).encode() + b"\n" for ev in chunk))
                if closing:
                    break
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
        finally:
            self._watchers.get(res, set()).discard(watcher)

    def close_watches(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)


# ---------------------------------------------------------------------------------------------
# the kubelet

PODS = kmock.resource("", "v1", "pods")
PVCS = kmock.resource("", "v1", "persistentvolumeclaims")
EVENTS = kmock.resource("", "v1", "events")

# a pod annotation "true"/"false" overrides Kubelet.mocksu for that pod
# (e.g. KubeSpawner's extra_annotations in one profile)
MOCKSU_ANNOTATION = "kube-harness/mocksu"

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_vars(text: str, env: dict) -> str:
    """Kubernetes ``$(VAR)`` expansion: known vars expand, unknown stay, ``$$`` escapes."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR_REF.sub(sub, text)


@dataclass
class PodRecord:
    """What the kubelet knows about one pod (kept after deletion until a pod of that name returns)."""
    namespace: str
    name: str
    uid: str
    root: Path  # root/pods/<pod>
    state: str = "pending"  # pending | waiting-for-volumes | starting | running | failed | exited | terminated
    ip: str | None = None
    port: int | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    home: Path | None = None
    pod_home: str = "/home/jovyan"
    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath -> local dir
    ignored_env: list[str] = field(default_factory=list)  # valueFrom entries not resolved
    post_start: dict | None = None  # {"command", "exit_code", "output", "timed_out", "seconds"}
    exit_code: int | None = None
    pid: int | None = None
    started_at: float | None = None
    running_at: float | None = None
    proc: Any = field(default=None, repr=False)
    hook_proc: Any = field(default=None, repr=False)
    task: Any = field(default=None, repr=False)
    terminating: bool = False

    @property
    def log_path(self) -> Path:
        return self.root / "container.log"

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    def translate(self, pod_path: str) -> Path:
        """Where a path inside the pod lives on the local disk."""
        pod_path = "/" + pod_path.strip("/")
        best = None
        for mount_path in self.mounts:
            mp = "/" + mount_path.strip("/")
            if pod_path == mp or pod_path.startswith(mp.rstrip("/") + "/"):
                if best is None or len(mp) > len(best[0]):
                    best = (mp, self.mounts[mount_path])
        if best is not None:
            rest = pod_path[len(best[0]):].strip("/")
            return best[1] / rest if rest else best[1]
        home = "/" + self.pod_home.strip("/")
        homes = self.root.parent.parent / "homes" / self.name
        if pod_path == home or pod_path.startswith(home.rstrip("/") + "/"):
            rest = pod_path[len(home):].strip("/")
            return homes / rest if rest else homes
        return self.rootfs / pod_path.strip("/")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def snapshot(self) -> dict:
        return {
            "namespace": self.namespace, "name": self.name, "uid": self.uid, "state": self.state,
            "ip": self.ip, "port": self.port, "pid": self.pid, "argv": list(self.argv),
            "env": dict(self.env), "cwd": self.cwd, "home": self.home, "pod_home": self.pod_home,
            "mounts": dict(self.mounts), "post_start": copy.deepcopy(self.post_start),
            "exit_code": self.exit_code, "alive": self.alive(), "log_path": self.log_path,
            "ignored_env": list(self.ignored_env),
        }


class IPPool:
    """127.0.A.B, A in 1..255, B in 1..254, handed out in order; freed ones reused after wrap-around."""

    def __init__(self):
        self._next = 0
        self._free: list[int] = []
        self._used: set[int] = set()

    @staticmethod
    def address(index: int) -> str:
        return f"127.0.{1 + index // 254}.{1 + index % 254}"

    def allocate(self) -> str:
        if self._next < 255 * 254:
            index, self._next = self._next, self._next + 1
        elif self._free:
            index = min(self._free)
            self._free.remove(index)
        else:
            raise RuntimeError("out of loopback pod addresses")
        self._used.add(index)
        return self.address(index)

    def release(self, ip: str) -> None:
        a, b = (int(x) for x in ip.split(".")[2:])
        index = (a - 1) * 254 + (b - 1)
        if index in self._used:
            self._used.remove(index)
            self._free.append(index)

    @property
    def in_use(self) -> set[str]:
        return {self.address(i) for i in self._used}


class Kubelet:
    """Runs the emulator's pods as local processes (one node, ``kube-harness``).

    * ``pvc_bind_delay``: seconds until a new PVC is ``Bound`` (``None`` = never; bind by hand
      with :meth:`bind_pvc`).  Pods mounting an unbound or missing PVC stay ``Pending`` with a
      ``FailedScheduling`` event and their process is not started until it binds.
    * ``mocksu``: run ``python -m jupyterhub.tests.mocksu`` (a minimal single-user stand-in that
      listens on ``JUPYTERHUB_SERVICE_URL``) instead of the container's command; a pod annotation
      ``kube-harness/mocksu: "true"|"false"`` overrides it per pod.
    * ``image_entrypoint``/``image_cmd``: what "the image" supplies when the container has no
      ``command``/``args`` (default: no entrypoint, ``python -m jupyterhub.singleuser``);
      KubeSpawner puts ``Spawner.cmd + args`` into ``args``.
    * ``post_start_timeout``: seconds a ``postStart`` exec hook may run (a timeout is a failure).
    * ``termination_grace_cap``: upper bound on the SIGTERM→SIGKILL wait at pod deletion.
    """

    def __init__(self, api: KubeAPIServer, root: Path, *, pvc_bind_delay: float | None = 0.0,
                 mocksu: bool = False, post_start_timeout: float = 30.0, default_port: int = 8888,
                 default_home: str = "/home/jovyan", termination_grace_cap: float = 10.0,
                 python: str = sys.executable, image_entrypoint: list[str] | None = None,
                 image_cmd: list[str] | None = None,
                 base_env: dict[str, str] | None = None, emit_events: bool = True,
                 node_name: str = "kube-harness"):
        self.api = api
        self.root = Path(root)
        self.pvc_bind_delay = pvc_bind_delay
        self.mocksu = mocksu
        self.post_start_timeout = post_start_timeout
        self.default_port = default_port
        self.default_home = default_home
        self.termination_grace_cap = termination_grace_cap
        self.python = python
        # what "the image" would supply: no ENTRYPOINT (tini just execs its arguments) and the
        # single-user server as CMD; Kubernetes' command/args rules apply on top
        self.image_entrypoint = list(image_entrypoint or [])
        self.image_cmd = list(image_cmd or [python, "-m", "jupyterhub.singleuser"])
        self.emit_events = emit_events
        self.node_name = node_name
        if base_env is None:
            base_env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "TMPDIR")
                        if k in os.environ}
            bindir = str(Path(python).parent)
            base_env["PATH"] = os.pathsep.join([bindir, base_env.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
            base_env.setdefault("LANG", "C.UTF-8")
        self.base_env = base_env
        self.pods: dict[tuple[str, str], PodRecord] = {}
        self.ips = IPPool()
        self._pvc_cond: asyncio.Condition | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task] = set()
        self._closing = False

    # ---- wiring ------------------------------------------------------------------------

    def attach(self) -> None:
        """Subscribe to the API server (call inside its event loop)."""
        self._pvc_cond = asyncio.Condition()
        self.api.add_listener(self._on_change)
        hook = self._terminate_pod
        self.api.deletion_hooks["pods"] = hook
        for obj in self.api.list(PVCS):
            self._on_change("ADDED", PVCS, obj)
        for obj in self.api.list(PODS):
            self._on_change("ADDED", PODS, obj)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_change(self, event_type: str, res: kmock.resource, obj: dict) -> None:
        if self._closing:
            return
        meta = obj["metadata"]
        if res == PVCS:
            if event_type == "ADDED" and (obj.get("status") or {}).get("phase") != "Bound":
                if self.pvc_bind_delay is not None:
                    handle = asyncio.get_running_loop().call_later(
                        max(0.0, self.pvc_bind_delay), self._bind_if_same,
                        meta.get("namespace"), meta["name"], meta["uid"])
                    self._timers.append(handle)
            self._spawn(self._notify_pvc())
        elif res == PODS:
            key = (meta.get("namespace"), meta["name"])
            rec = self.pods.get(key)
            if event_type == "ADDED" and (rec is None or rec.uid != meta["uid"]):
                rec = PodRecord(namespace=key[0], name=key[1], uid=meta["uid"],
                                root=self.root / "pods" / key[1])
                self.pods[key] = rec
                rec.task = self._spawn(self._run_pod(rec, obj))
            elif event_type == "DELETED" and rec is not None and rec.uid == meta["uid"] and not rec.terminating:
                # removed without the graceful path (e.g. a test removed it directly)
                self._spawn(self._terminate_pod(obj, 0))

    async def _notify_pvc(self) -> None:
        async with self._pvc_cond:
            self._pvc_cond.notify_all()

    # ---- PVCs --------------------------------------------------------------------------

    def _bind_if_same(self, namespace, name, uid) -> None:
        obj = self.api.find(PVCS, name, namespace)
        if obj is not None and obj["metadata"]["uid"] == uid:
            self.bind_pvc(name, namespace)

    def bind_pvc(self, name: str, namespace: str = "default") -> dict:
        """Mark a PVC ``Bound`` now (creates its directory)."""
        obj = self.api.get(PVCS, name, namespace)
        if (obj.get("status") or {}).get("phase") == "Bound":
            return obj
        spec = obj.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi"
        self.volume_dir(name).mkdir(parents=True, exist_ok=True)
        return self.api.patch(PVCS, name, {
            "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {"volumeName": f"pvc-{obj['metadata']['uid']}"},
            "status": {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                       "capacity": {"storage": storage}},
        }, namespace)

    def volume_dir(self, source_name: str, sub_path: str | None = None) -> Path:
        path = self.root / "volumes" / source_name
        return path / sub_path.strip("/") if sub_path else path

    def _pvc_bound(self, namespace: str, claim: str) -> bool:
        obj = self.api.find(PVCS, claim, namespace)
        return obj is not None and (obj.get("status") or {}).get("phase") == "Bound"

    # ---- pod lifecycle -------------------------------------------------------------------

    def _live_pod(self, rec: PodRecord) -> dict | None:
        obj = self.api.find(PODS, rec.name, rec.namespace)
        if obj is None or obj["metadata"]["uid"] != rec.uid:
            return None
        return obj

    def _patch_pod(self, rec: PodRecord, patch: dict, subresource: str | None = "status") -> None:
        if self._live_pod(rec) is None:
            return
        self.api.patch(PODS, rec.name, patch, rec.namespace, subresource=subresource)

    def _event(self, rec: PodRecord, reason: str, message: str, type_: str = "Normal",
               component: str = "kubelet", container: str | None = None) -> None:
        if not self.emit_events:
            return
        now = _now()
        involved = {"kind": "Pod", "namespace": rec.namespace, "name": rec.name, "uid": rec.uid,
                    "apiVersion": "v1"}
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        self.api.create(EVENTS, {
            "metadata": {"name": f"{rec.name}.{uuid.uuid4().hex[:16]}", "namespace": rec.namespace},
            "involvedObject": involved, "reason": reason, "message": message, "type": type_,
            "source": {"component": component, "host": self.node_name},
            "firstTimestamp": now, "lastTimestamp": now, "eventTime": None, "count": 1,
            "reportingComponent": component, "reportingInstance": self.node_name,
        }, rec.namespace)

    def _resolve_volumes(self, rec: PodRecord, spec: dict, container: dict) -> dict[str, Path]:
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounts: dict[str, Path] = {}
        for vm in container.get("volumeMounts") or []:
            vol = volumes.get(vm["name"], {})
            if "persistentVolumeClaim" in vol:
                source = vol["persistentVolumeClaim"]["claimName"]
            elif "configMap" in vol:
                source = f"configmap-{vol['configMap'].get('name', vm['name'])}"
            elif "secret" in vol:
                source = f"secret-{vol['secret'].get('secretName', vm['name'])}"
            elif "hostPath" in vol:
                source = "hostpath-" + vol["hostPath"].get("path", "").strip("/").replace("/", "_")
            elif "emptyDir" in vol:
                source = f"emptydir-{rec.name}-{vm['name']}"
            else:
                source = vm["name"]
            local = self.volume_dir(source, vm.get("subPath"))
            local.mkdir(parents=True, exist_ok=True)
            self._materialize(rec, vol, self.volume_dir(source))
            mounts[vm["mountPath"]] = local
        return mounts

    @staticmethod
    def _under_mount(rec: PodRecord, pod_path: str) -> bool:
        return any(pod_path == mp or pod_path.startswith(mp.rstrip("/") + "/") for mp in rec.mounts)

    def _materialize(self, rec: PodRecord, vol: dict, local: Path) -> None:
        """Write configMap/secret keys as files, as the real kubelet does."""
        if "configMap" in vol:
            obj = self.api.find("configmaps", vol["configMap"].get("name", ""), rec.namespace)
            if obj:
                for key, value in (obj.get("data") or {}).items():
                    (local / key).write_text(value)
                for key, value in (obj.get("binaryData") or {}).items():
                    (local / key).write_bytes(base64.b64decode(value))
        elif "secret" in vol:
            obj = self.api.find("secrets", vol["secret"].get("secretName", ""), rec.namespace)
            if obj:
                for key, value in (obj.get("data") or {}).items():
                    (local / key).write_bytes(base64.b64decode(value))
                for key, value in (obj.get("stringData") or {}).items():
                    (local / key).write_text(value)

    def _container_status(self, container: dict, *, ready: bool, state: dict, started: bool) -> dict:
        return {
            "name": container.get("name", "notebook"), "ready": ready, "started": started,
            "restartCount": 0, "image": container.get("image", "kube-harness/local"),
            "imageID": "", "containerID": f"harness://{uuid.uuid4().hex[:12]}", "state": state,
            "lastState": {},
        }

    async def _run_pod(self, rec: PodRecord, pod: dict) -> None:
        try:
            await self._run_pod_inner(rec, pod)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("kubelet failed to run pod %s", rec.name)
            rec.state = "failed"
            with contextlib.suppress(Exception):
                self._event(rec, "Failed", f"kube-harness kubelet error: {e}", "Warning")
                self._patch_pod(rec, {"status": {"phase": "Failed", "reason": "KubeletError", "message": str(e)}})

    async def _run_pod_inner(self, rec: PodRecord, pod: dict) -> None:
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or [{}]
        container = containers[0]
        cname = container.get("name", "notebook")

        # 1. scheduling: every PVC the pod mounts must exist and be Bound
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes") or []
                  if v.get("persistentVolumeClaim")]
        if claims:
            announced = False
            async with self._pvc_cond:
                while True:
                    unbound = [c for c in claims if not self._pvc_bound(rec.namespace, c)]
                    if not unbound:
                        break
                    if not announced:
                        announced = True
                        rec.state = "waiting-for-volumes"
                        missing = [c for c in unbound if self.api.find(PVCS, c, rec.namespace) is None]
                        message = (f'persistentvolumeclaim "{missing[0]}" not found' if missing else
                                   "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
                        self._patch_pod(rec, {"status": {"phase": "Pending", "conditions": [{
                            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": message, "lastTransitionTime": _now(), "lastProbeTime": None}]}})
                        self._event(rec, "FailedScheduling", message, "Warning", component="default-scheduler")
                    await self._pvc_cond.wait()
        if self._live_pod(rec) is None:
            return

        # 2. "sandbox": address, directories, environment
        rec.state = "starting"
        rec.ip = self.ips.allocate()
        ports = container.get("ports") or []
        rec.port = int(ports[0]["containerPort"]) if ports and ports[0].get("containerPort") else self.default_port
        rec.root.mkdir(parents=True, exist_ok=True)
        rec.rootfs.mkdir(parents=True, exist_ok=True)
        rec.mounts = self._resolve_volumes(rec, spec, container)

        pod_env: dict[str, str] = {}
        for entry in container.get("env") or []:
            if "valueFrom" in entry and "value" not in entry:
                rec.ignored_env.append(entry["name"])
                continue
            pod_env[entry["name"]] = expand_vars(str(entry.get("value") or ""), pod_env)
        rec.pod_home = pod_env.get("HOME") or container.get("workingDir") or self.default_home
        rec.home = rec.translate(rec.pod_home)
        rec.home.mkdir(parents=True, exist_ok=True)
        rec.cwd = rec.translate(container["workingDir"]) if container.get("workingDir") else rec.home
        rec.cwd.mkdir(parents=True, exist_ok=True)

        service_url = pod_env.get("JUPYTERHUB_SERVICE_URL")
        if service_url:
            parts = urlsplit(service_url)
            service_url = urlunsplit(("http", f"{rec.ip}:{rec.port}", parts.path, parts.query, parts.fragment))
        else:
            service_url = f"http://{rec.ip}:{rec.port}"
        # processes cannot really see mounts at their pod paths: an env value naming a path
        # inside a mount is handed over as the mount's local directory instead
        mounted_env = {
            key: str(rec.translate(value)) for key, value in pod_env.items()
            if key != "HOME" and value.startswith("/") and self._under_mount(rec, value)
        }
        env = {
            **self.base_env,
            "HOSTNAME": rec.name,
            **pod_env,
            **mounted_env,
            "HOME": str(rec.home),
            "JUPYTERHUB_SERVICE_URL": service_url,
            "KUBE_HARNESS_POD_NAME": rec.name,
            "KUBE_HARNESS_POD_IP": rec.ip,
            "KUBE_HARNESS_ROOTFS": str(rec.rootfs),
            "KUBE_HARNESS_MOUNTS": json.dumps({k: str(v) for k, v in rec.mounts.items()}),
        }
        rec.env = env
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        mocksu = {"true": True, "false": False}.get(str(annotations.get(MOCKSU_ANNOTATION, "")).lower(), self.mocksu)
        if mocksu:
            argv = [self.python, "-m", "jupyterhub.tests.mocksu"]
        else:
            # Kubernetes: command replaces the image ENTRYPOINT, args replace its CMD, and a
            # command without args drops CMD (KubeSpawner puts its cmd in args)
            command = [expand_vars(str(a), pod_env) for a in container.get("command") or []]
            args = [expand_vars(str(a), pod_env) for a in container.get("args") or []]
            if command:
                argv = command + args
            else:
                argv = self.image_entrypoint + (args or self.image_cmd)
        rec.argv = argv

        self._patch_pod(rec, {
            "spec": {"nodeName": self.node_name},
            "status": {"phase": "Pending", "hostIP": "127.0.0.1", "podIP": rec.ip, "podIPs": [{"ip": rec.ip}],
                       "startTime": _now(),
                       "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _now(),
                                       "lastProbeTime": None}],
                       "containerStatuses": [self._container_status(
                           container, ready=False, started=False,
                           state={"waiting": {"reason": "ContainerCreating"}})]},
        }, subresource=None)
        self._event(rec, "Scheduled", f"Successfully assigned {rec.namespace}/{rec.name} to {self.node_name}",
                    component="default-scheduler")
        if self._live_pod(rec) is None or rec.terminating:
            return

        # 3. the container process
        with open(rec.log_path, "ab") as logf:
            try:
                rec.proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=str(rec.cwd), env=env, stdin=asyncio.subprocess.DEVNULL,
                    stdout=logf, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            except OSError as e:
                rec.state = "failed"
                rec.exit_code = 128
                self._event(rec, "Failed", f"Error: failed to start container {cname!r}: {e}", "Warning",
                            container=cname)
                self._patch_pod(rec, {"status": {"phase": "Failed", "containerStatuses": [self._container_status(
                    container, ready=False, started=False,
                    state={"terminated": {"exitCode": 128, "reason": "StartError", "message": str(e),
                                          "startedAt": None, "finishedAt": _now()}})]}})
                return
        rec.pid = rec.proc.pid
        rec.started_at = time.monotonic()
        started = _now()
        self._event(rec, "Started", f"Started container {cname}", container=cname)

        # 4. postStart: runs next to the process; the container is not Running until it is done
        hook = ((container.get("lifecycle") or {}).get("postStart") or {})
        if hook:
            result = await self._run_post_start(rec, hook)
            rec.post_start = result
            summary = {"exitCode": result["exit_code"], "timedOut": result["timed_out"],
                       "output": result["output"][-1000:]}
            self._patch_pod(rec, {"metadata": {"annotations": {"kube-harness/post-start": json.dumps(summary)}}},
                            subresource=None)
            if rec.terminating or self._live_pod(rec) is None:
                return
            if result["exit_code"] != 0:
                await self._kill(rec, 0)
                rec.state = "failed"
                rec.exit_code = 137
                why = ("timed out" if result["timed_out"] else f"exited with {result['exit_code']}")
                message = (f"Exec lifecycle hook ({result['command']}) for Container {cname!r} in Pod "
                           f"{rec.name!r} failed - error: command {why}, message: {result['output'][-500:]!r}")
                self._event(rec, "FailedPostStartHook", message, "Warning", container=cname)
                self._patch_pod(rec, {"status": {
                    "phase": "Failed",
                    "conditions": [{"type": "PodScheduled", "status": "True"},
                                   {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                                   {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"}],
                    "containerStatuses": [self._container_status(container, ready=False, started=False, state={
                        "terminated": {"exitCode": 137, "reason": "PostStartHookError", "message": message,
                                       "startedAt": started, "finishedAt": _now()}})]}})
                return

        if rec.proc.returncode is None:
            rec.state = "running"
            rec.running_at = time.monotonic()
            now = _now()
            self._patch_pod(rec, {"status": {
                "phase": "Running",
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": now, "lastProbeTime": None}
                               for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                "containerStatuses": [self._container_status(
                    container, ready=True, started=True, state={"running": {"startedAt": started}})]}})

        # 5. watch the process; an exit without deletion terminates the container
        code = await rec.proc.wait()
        if rec.terminating:
            return
        rec.exit_code = code
        rec.state = "exited"
        self._event(rec, "BackOff" if code else "Completed", f"Container {cname} exited with {code}",
                    "Warning" if code else "Normal", container=cname)
        self._patch_pod(rec, {"status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"},
                           {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"},
                           {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [self._container_status(container, ready=False, started=False, state={
                "terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                               "startedAt": started, "finishedAt": _now()}})]}})

    async def _run_post_start(self, rec: PodRecord, hook: dict) -> dict:
        command = ((hook.get("exec") or {}).get("command")) or []
        t0 = time.monotonic()
        if not command:
            return {"command": hook, "exit_code": None, "output": "only exec postStart hooks are emulated",
                    "timed_out": False, "seconds": 0.0, "unsupported": True}
        timed_out = False
        try:
            rec.hook_proc = await asyncio.create_subprocess_exec(
                *command, cwd=str(rec.cwd), env=rec.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return {"command": command, "exit_code": 126, "output": str(e), "timed_out": False,
                    "seconds": time.monotonic() - t0}
        proc = rec.hook_proc
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.post_start_timeout)
        except asyncio.TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            out = b""
        rec.hook_proc = None
        code = proc.returncode if not timed_out else 137
        return {"command": command, "exit_code": code, "output": (out or b"").decode(errors="replace"),
                "timed_out": timed_out, "seconds": time.monotonic() - t0}

    async def _kill(self, rec: PodRecord, grace: float) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` (capped) seconds; reap it."""
        for proc in (rec.hook_proc, rec.proc):
            if proc is None or proc.returncode is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), max(0.0, min(grace, self.termination_grace_cap)) or 5.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            # leftovers in the group (children that ignored SIGTERM)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _terminate_pod(self, obj: dict, grace: int | None) -> None:
        """The API server's deletion hook: stop the container, free the address."""
        meta = obj["metadata"]
        rec = self.pods.get((meta.get("namespace"), meta["name"]))
        if rec is None or rec.uid != meta["uid"]:
            return
        rec.terminating = True
        if rec.proc is not None and rec.proc.returncode is None:
            self._event(rec, "Killing", f"Stopping container {rec.name}", container=None)
        await self._kill(rec, float(grace or 0))
        task = rec.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._kill(rec, 0)  # in case the task started something while being cancelled
        if rec.ip:
            self.ips.release(rec.ip)
        if rec.proc is not None:
            rec.exit_code = rec.proc.returncode
        rec.state = "terminated"

    async def shutdown(self) -> None:
        """Kill every pod process (used when the harness stops)."""
        self._closing = True
        for handle in self._timers:
            handle.cancel()
        for rec in list(self.pods.values()):
            rec.terminating = True
            await self._kill(rec, 0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for rec in self.pods.values():
            await self._kill(rec, 0)
            if rec.state != "terminated":
                rec.state = "terminated"

    # ---- queries -----------------------------------------------------------------------

    def record(self, name: str, namespace: str = "default") -> PodRecord:
        try:
            return self.pods[(namespace, name)]
        except KeyError:
            raise KeyError(f"the kubelet has not seen pod {namespace}/{name}") from None


# ---------------------------------------------------------------------------------------------
# kubeconfig

def write_kubeconfig(path: str | os.PathLike, server: str, *, namespace: str = "default",
                     name: str = "kube-harness") -> Path:
    """Write a kubeconfig for ``server`` (e.g. ``http://127.0.0.1:PORT``), no auth; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def reset_kubespawner() -> None:
    """For in-process KubeSpawner tests: stop its class-level reflectors and drop its cached
    config and clients, so the next spawner talks to the current emulator.  (Set ``KUBECONFIG``
    before ``kubernetes_asyncio`` is first imported, or ``c.KubeSpawner.k8s_api_host = kube.url``
    with some kubeconfig present; stop the hub before the harness.)"""
    from kubespawner import KubeSpawner, clients

    await KubeSpawner._stop_all_reflectors()
    clients.load_config.cache_clear()
    clients._client_cache.clear()


# ---------------------------------------------------------------------------------------------
# the thread-hosted harness

class KubeHarness:
    """Emulated API server + kubelet on a loopback port, served from a background thread.

    ``KubeHarness(root, pvc_bind_delay=1.0, mocksu=True).start()`` … ``.stop()``, or use it as a
    context manager.  ``env`` is what the hub process needs (``{"KUBECONFIG": path}``).
    All sync methods are thread-safe (they run in the harness's loop and return copies).
    """

    def __init__(self, root: str | os.PathLike, *, namespace: str = "default", host: str = "127.0.0.1",
                 port: int = 0, kubelet: bool = True, pvc_bind_delay: float | None = 0.0,
                 mocksu: bool = False, post_start_timeout: float = 30.0, **kubelet_options):
        self.root = Path(root)
        self.namespace = namespace
        self.host, self._port = host, port
        self._with_kubelet = kubelet
        self._kubelet_options = dict(pvc_bind_delay=pvc_bind_delay, mocksu=mocksu,
                                     post_start_timeout=post_start_timeout, **kubelet_options)
        self.api: KubeAPIServer | None = None
        self.kubelet: Kubelet | None = None
        self.kubeconfig: Path | None = None
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: aiohttp.web.BaseRunner | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def start(self) -> "KubeHarness":
        if self._thread is not None:
            raise RuntimeError("already started")
        self.root.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-harness", daemon=True)
        self._thread.start()
        try:
            self.run(self._astart(), timeout=30)
        except BaseException:
            self.stop()
            raise
        self.kubeconfig = write_kubeconfig(self.root / "kubeconfig.yaml", self.url, namespace=self.namespace)
        return self

    async def _astart(self) -> None:
        self.api = KubeAPIServer(default_namespace=self.namespace)
        await self.api.__aenter__()
        server = aiohttp.web.Server(self.api, handler_cancellation=True)
        self._runner = aiohttp.web.ServerRunner(server, shutdown_timeout=2.0)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self._with_kubelet:
            self.kubelet = Kubelet(self.api, self.root, **self._kubelet_options)
            self.kubelet.attach()

    async def _astop(self) -> None:
        if self.kubelet is not None:
            await self.kubelet.shutdown()
        if self.api is not None:
            self.api.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.api is not None and self.api.active:
            await self.api.__aexit__(None, None, None)

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._loop.is_running():
            try:
                self.run(self._astop(), timeout=60)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> "KubeHarness":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- running things in the harness loop ------------------------------------------------

    def run(self, coro, timeout: float | None = 30):
        """Run a coroutine in the harness loop and return its result."""
        if self._loop is None:
            raise RuntimeError("the harness is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable, *args, **kwargs):
        """Run a plain function in the harness loop (where all state lives); return its result."""
        async def _call():
            return fn(*args, **kwargs)
        return self.run(_call())

    @contextlib.asynccontextmanager
    async def api_client(self):
        """A ``kubernetes_asyncio`` ``ApiClient`` for the caller's loop, configured from our kubeconfig."""
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            yield api

    # ---- objects (copies) ---------------------------------------------------------------

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict | None:
        ns = self.namespace if namespace is None else namespace
        return copy.deepcopy(self.call(lambda: self.api.find(res, name, ns)))

    def list(self, res: Any, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        return copy.deepcopy(self.call(self.api.list, res, namespace, label_selector, field_selector))

    def create(self, res: Any, obj: dict, namespace: str | None = None) -> dict:
        ns = self.namespace if namespace is None else namespace
        return copy.deepcopy(self.call(self.api.create, res, obj, ns))

    def patch(self, res: Any, name: str, patch: Any, namespace: str | None = None, **kw) -> dict:
        ns = self.namespace if namespace is None else namespace
        return copy.deepcopy(self.call(self.api.patch, res, name, patch, ns, **kw))

    def delete(self, res: Any, name: str, namespace: str | None = None,
               grace_period_seconds: int | None = None) -> dict:
        ns = self.namespace if namespace is None else namespace
        return copy.deepcopy(self.call(self.api.delete, res, name, ns, grace_period_seconds=grace_period_seconds))

    # ---- kubelet views ------------------------------------------------------------------

    def _rec(self, name: str, namespace: str | None) -> PodRecord:
        if self.kubelet is None:
            raise RuntimeError("started without a kubelet")
        return self.kubelet.record(name, self.namespace if namespace is None else namespace)

    def pod(self, name: str, namespace: str | None = None) -> dict:
        """The kubelet's view of a pod: state, ip, port, pid, argv, env, cwd, home, mounts, post_start…"""
        return self.call(lambda: self._rec(name, namespace).snapshot())

    def pod_paths(self, name: str, namespace: str | None = None) -> dict[str, Path]:
        """``{mountPath: local directory}`` for the pod's first container, plus its HOME path."""
        def paths():
            rec = self._rec(name, namespace)
            result = dict(rec.mounts)
            if rec.home is not None:
                result.setdefault(rec.pod_home, rec.home)
            return result
        return self.call(paths)

    def translate(self, name: str, pod_path: str, namespace: str | None = None) -> Path:
        """The local directory/file that plays ``pod_path`` inside the pod."""
        return self.call(lambda: self._rec(name, namespace).translate(pod_path))

    def pod_home(self, name: str, namespace: str | None = None) -> Path:
        return self.call(lambda: self._rec(name, namespace).home)

    def pod_ip(self, name: str, namespace: str | None = None) -> str | None:
        return self.call(lambda: self._rec(name, namespace).ip)

    def pod_pid(self, name: str, namespace: str | None = None) -> int | None:
        return self.call(lambda: self._rec(name, namespace).pid)

    def pod_alive(self, name: str, namespace: str | None = None) -> bool:
        return self.call(lambda: self._rec(name, namespace).alive())

    def pod_log(self, name: str, namespace: str | None = None) -> str:
        path = self.call(lambda: self._rec(name, namespace).log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def post_start(self, name: str, namespace: str | None = None) -> dict | None:
        """``{"command", "exit_code", "output", "timed_out", "seconds"}`` or ``None`` (no hook / not yet)."""
        return self.call(lambda: copy.deepcopy(self._rec(name, namespace).post_start))

    def events(self, pod_name: str | None = None, namespace: str | None = None) -> list[dict]:
        selector = f"involvedObject.name={pod_name}" if pod_name else None
        return self.list("events", self.namespace if namespace is None else namespace, field_selector=selector)

    # ---- PVCs / settings ------------------------------------------------------------------

    def pvc_path(self, claim_name: str, sub_path: str | None = None) -> Path:
        return self.root / "volumes" / claim_name / (sub_path or "")

    def bind_pvc(self, name: str, namespace: str | None = None) -> dict:
        ns = self.namespace if namespace is None else namespace
        return copy.deepcopy(self.call(self.kubelet.bind_pvc, name, ns))

    @property
    def pvc_bind_delay(self) -> float | None:
        return self.kubelet.pvc_bind_delay if self.kubelet else self._kubelet_options["pvc_bind_delay"]

    @pvc_bind_delay.setter
    def pvc_bind_delay(self, value: float | None) -> None:
        self._kubelet_options["pvc_bind_delay"] = value
        if self.kubelet is not None:
            self.call(setattr, self.kubelet, "pvc_bind_delay", value)

    @property
    def mocksu(self) -> bool:
        return self.kubelet.mocksu if self.kubelet else self._kubelet_options["mocksu"]

    @mocksu.setter
    def mocksu(self, value: bool) -> None:
        self._kubelet_options["mocksu"] = value
        if self.kubelet is not None:
            self.call(setattr, self.kubelet, "mocksu", value)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
                 message: str = "condition"):
        """Poll ``predicate`` (called in the test thread) until truthy."""
        from .hub import wait_for

        return wait_for(predicate, timeout, interval, message)

    def wait_pod_phase(self, name: str, phase: str, timeout: float = 30.0, namespace: str | None = None) -> dict:
        def check():
            pod = self.get("pods", name, namespace)
            return pod if pod and (pod.get("status") or {}).get("phase") == phase else None
        return self.wait_for(check, timeout, message=f"pod {name} to be {phase}")
