"""The emulated API server: an object store with resourceVersions, watches and HTTP routing."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from .auth import UserInfo, allowed, forbidden_message, request_verb
from .patches import json_patch, merge_patch
from .resources import (
    CLUSTER_SCOPED_PLURALS,
    api_version,
    as_resource,
    kind_of,
    qualified_plural,
    timestamp,
)
from .selectors import (
    Predicate,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

log = logging.getLogger("kube-harness")

Listener = Callable[[str, kmock.resource, dict], None]

METRICS_GROUP = "metrics.k8s.io"

# a watch wakes this often to notice a client that went away
_WATCH_POLL_SECONDS = 5.0

# (group, plural) of the kinds with a ``scale`` subresource (an ``autoscaling/v1`` Scale)
SCALABLE = {
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("", "replicationcontrollers"),
}


class ApiError(Exception):
    """Rendered as a Kubernetes ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }

    def response(self) -> aiohttp.web.Response:
        return aiohttp.web.json_response(self.status(), status=self.code)


def not_found(res: kmock.resource, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified_plural(res)} "{name}" not found', {"name": name, "kind": res.plural}
    )


class Watcher:
    """One open watch: what it selects, and the queue its events wait in (``None`` = close)."""

    __slots__ = ("namespace", "name", "labels", "fields", "queue")

    def __init__(self, namespace: str | None, name: str | None, labels: Predicate, fields: Predicate):
        self.namespace, self.name, self.labels, self.fields = namespace, name, labels, fields
        self.queue: asyncio.Queue = asyncio.Queue()

    def matches(self, obj: dict) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and meta.get("name") != self.name:
            return False
        return self.labels(meta.get("labels") or {}) and self.fields(obj)


def _event_line(event: dict) -> bytes:
    return json.dumps(event).encode() + b"\n"


@attrs.define(kw_only=True)
class KubeAPIServer(kmock.KubernetesEmulator):
    """kmock's ``KubernetesEmulator`` with the fixes KubeSpawner needs (see the package doc).

    All state lives in the event loop that serves it; call the methods below from that loop
    (``KubeHarness`` has thread-safe wrappers).  Objects are also visible the kmock way,
    ``api.objects['v1/pods', 'default', 'jupyter-x']`` with ``.history`` of all versions, but
    change them through :meth:`create`/:meth:`patch`/:meth:`delete` so watchers hear about it.
    """

    history_size: int = 10000  # watch events kept for resuming watches at a resourceVersion
    default_namespace: str = "default"
    # Authentication: bearer token -> who it is (see ``auth``). None (the default): no
    # authentication, every request is served. Add tokens while serving with ``tokens[t] = user``.
    tokens: dict | None = None
    # RBAC from the stored Role/RoleBinding/ClusterRole/ClusterRoleBinding objects (needs tokens)
    authorize: bool = False
    # metrics-server: pod -> its containers' usage ([{"name", "usage": {"cpu", "memory"}}], None
    # if it has no metrics yet); the kubelet's by KubeHarness(metrics_server=True). None: the
    # cluster has no metrics-server, and metrics.k8s.io answers 404 as such a cluster does.
    pod_metrics: Callable[[dict], list | None] | None = None

    request_count: int = attrs.field(default=0, init=False)
    recent_requests: collections.deque = attrs.field(
        factory=lambda: collections.deque(maxlen=200), init=False
    )
    deletion_hooks: dict = attrs.field(factory=dict, init=False)  # plural -> async fn(obj, grace)
    # with tokens: requests served per user name, and every refused request
    # ({"code", "method", "path", "user", "message"}), so a test can insist that none was refused
    requests_by_user: collections.Counter = attrs.field(factory=collections.Counter, init=False)
    refused: list = attrs.field(factory=list, init=False)
    _rv: int = attrs.field(default=0, init=False)
    _live: dict = attrs.field(factory=dict, init=False)  # resource -> {(ns, name): kmock Object}
    _watchers: dict = attrs.field(factory=dict, init=False)  # resource -> set[Watcher]
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
            raise not_found(res, name)
        return obj

    def find(self, res: Any, name: str, namespace: str | None = None) -> dict | None:
        return self._current(as_resource(res), namespace, name)

    def list(
        self,
        res: Any,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
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
        if res.plural in CLUSTER_SCOPED_PLURALS:
            ns = None
        elif ns is None and res.plural not in CLUSTER_SCOPED_PLURALS:
            ns = self.default_namespace
        if namespace is not None and meta.get("namespace") not in (None, namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        name = meta.get("name")
        if not name:
            if meta.get("generateName"):
                name = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(
                    422, "Invalid", f"{kind_of(res.plural)} is invalid: metadata.name: Required value"
                )
        if self._current(res, ns, name) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{qualified_plural(res)} "{name}" already exists',
                {"name": name, "kind": res.plural},
            )
        obj.setdefault("apiVersion", api_version(res))
        obj.setdefault("kind", kind_of(res.plural))
        meta["name"] = name
        if ns is not None:
            meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp()
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        self._set_initial_status(res, obj)
        if dry_run:
            meta["resourceVersion"] = str(self._rv)
            return obj
        meta["resourceVersion"] = self._next_rv()
        self._store(res, ns, name, obj)
        self._emit(res, "ADDED", obj)
        return obj

    @staticmethod
    def _set_initial_status(res: kmock.resource, obj: dict) -> None:
        """The status fields the control plane fills in when these kinds are created."""
        if res.plural == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
            obj["status"].setdefault("qosClass", "BestEffort")
        elif res.plural == "persistentvolumeclaims":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif res.plural == "namespaces":
            obj.setdefault("status", {}).setdefault("phase", "Active")

    def _replace_stored(self, res: kmock.resource, ns: str | None, name: str, new: dict) -> dict:
        old = self._current(res, ns, name)
        if old is not None and old.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(res, ns, name, new)
        self._emit(res, "MODIFIED", new)
        self._maybe_finalize(res, ns, name)
        return self._current(res, ns, name) or new

    @staticmethod
    def _keep_identity(old: dict, new: dict) -> dict:
        """Clients cannot change who an object is, only what it says."""
        meta = new.setdefault("metadata", {})
        for key in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        new.setdefault("apiVersion", old.get("apiVersion"))
        new.setdefault("kind", old.get("kind"))
        return new

    def patch(
        self,
        res: Any,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        patch_type: str = "merge",
    ) -> dict:
        """``patch_type``: ``merge`` (also used for strategic-merge and apply) or ``json``."""
        res = as_resource(res)
        old = self._current(res, namespace, name)
        if old is None:
            raise not_found(res, name)
        try:
            if patch_type == "json":
                new = json_patch(old, patch)
            else:
                new = merge_patch(old, patch)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from None
        if subresource == "status":
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
        # (the real API ignores status in main-resource patches; we are lenient and apply it)
        new = self._keep_identity(old, new)
        return self._replace_stored(res, namespace, name, new)

    def replace(
        self, res: Any, name: str, body: dict, namespace: str | None = None, *, subresource: str | None = None
    ) -> dict:
        res = as_resource(res)
        old = self._current(res, namespace, name)
        if old is None:
            raise not_found(res, name)
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res.plural} "{name}": '
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if subresource == "status":
            new = {**copy.deepcopy(old), "status": copy.deepcopy(body.get("status", {}))}
        else:
            new = copy.deepcopy(body)
            if res.plural == "pods" and "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        new = self._keep_identity(old, new)
        return self._replace_stored(res, namespace, name, new)

    # ---- the scale subresource -------------------------------------------------------------

    @staticmethod
    def _scalable(res: kmock.resource, name: str) -> None:
        if (res.group, res.plural) not in SCALABLE:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource ({res.plural}/{name}/scale)",
            )

    @staticmethod
    def scale_view(res: kmock.resource, obj: dict) -> dict:
        """The ``autoscaling/v1`` Scale of a Deployment (StatefulSet, ReplicaSet,
        ReplicationController): its identity, ``spec.replicas`` (1 when unset, as the API
        defaults it), and ``status.replicas`` with the selector as a string."""
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        selector = spec.get("selector") or {}
        labels = selector if res.group == "" else (selector.get("matchLabels") or {})
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta
            },
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            },
        }

    def get_scale(self, res: Any, name: str, namespace: str | None = None) -> dict:
        res = as_resource(res)
        self._scalable(res, name)
        return self.scale_view(res, self.get(res, name, namespace))

    def set_scale(
        self,
        res: Any,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: str | None = None,
    ) -> dict:
        """Change ``spec.replicas`` through the scale subresource and return the new Scale.

        ``patch_type`` ``merge`` or ``json`` patches the Scale; None replaces it (PUT, with a
        409 for a stale ``metadata.resourceVersion``). Only ``spec.replicas`` of the object
        changes (a new resourceVersion and generation, a ``MODIFIED`` event); the same count
        again changes nothing, as the real API server skips a no-op update."""
        res = as_resource(res)
        self._scalable(res, name)
        old = self.get(res, name, namespace)
        current = self.scale_view(res, old)
        try:
            if patch_type == "json":
                wanted = json_patch(current, body)
            elif patch_type is not None:
                wanted = merge_patch(current, body)
            else:
                wanted = body if isinstance(body, dict) else {}
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from None
        if patch_type is None:
            wanted_rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {qualified_plural(res)} "{name}": '
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
        replicas = (wanted.get("spec") or {}).get("replicas") if isinstance(wanted, dict) else None
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {json.dumps(replicas)}: '
                "must be greater than or equal to 0",
            )
        if replicas == current["spec"]["replicas"] and "replicas" in (old.get("spec") or {}):
            return current
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["replicas"] = replicas
        return self.scale_view(res, self._replace_stored(res, namespace, name, new))

    # ---- deletion ----------------------------------------------------------------------

    def delete(
        self, res: Any, name: str, namespace: str | None = None, *, grace_period_seconds: int | None = None
    ) -> dict:
        """Delete; pods (with a kubelet) and objects with finalizers get a ``deletionTimestamp`` first."""
        res = as_resource(res)
        old = self._current(res, namespace, name)
        if old is None:
            raise not_found(res, name)
        hook = self.deletion_hooks.get(res.plural)
        finalizers = old["metadata"].get("finalizers") or []
        if hook is None and not finalizers:
            return self._remove(res, namespace, name)
        obj = old
        if not old["metadata"].get("deletionTimestamp"):
            if grace_period_seconds is None:
                grace_period_seconds = (
                    int((old.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
                    if res.plural == "pods"
                    else 0
                )
            obj = self._mark_deleting(res, namespace, name, old, grace_period_seconds)
        key = (res, namespace, name)
        if hook is not None and key not in self._hook_tasks:
            self._hook_tasks[key] = asyncio.get_running_loop().create_task(
                self._run_deletion_hook(key, hook, obj, grace_period_seconds)
            )
        return obj

    def _mark_deleting(self, res: kmock.resource, ns: str | None, name: str, old: dict, grace: int) -> dict:
        """Graceful deletion starts by stamping ``deletionTimestamp``, which watchers see."""
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = timestamp()
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(res, ns, name, new)
        self._emit(res, "MODIFIED", new)
        return new

    async def _run_deletion_hook(self, key: tuple, hook: Callable, obj: dict, grace: int | None) -> None:
        try:
            await hook(obj, grace)
        except Exception:
            log.exception("deletion hook failed for %s", key[2])
        finally:
            self._hook_tasks.pop(key, None)
            self._maybe_finalize(*key)

    def _maybe_finalize(self, res: kmock.resource, ns: str | None, name: str) -> None:
        """Remove an object being deleted once no finalizer and no deletion hook holds it."""
        obj = self._current(res, ns, name)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if obj["metadata"].get("finalizers") or (res, ns, name) in self._hook_tasks:
            return
        self._remove(res, ns, name)

    def _remove(self, res: kmock.resource, ns: str | None, name: str) -> dict:
        old = self._current(res, ns, name)
        if old is None:
            raise not_found(res, name)
        final = copy.deepcopy(old)
        final["metadata"]["resourceVersion"] = self._next_rv()
        entry = self._live[res].pop((ns, name))
        entry.history.append(final)
        entry.delete()  # kmock's soft deletion: history stays, `.deleted` is True
        self._emit(res, "DELETED", final)
        return final

    # ---- HTTP: routing -------------------------------------------------------------------

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

    def _authenticate(self, raw: aiohttp.web.BaseRequest) -> UserInfo | None:
        scheme, _, token = (raw.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        user = self.tokens.get(token.strip())
        return UserInfo(user) if isinstance(user, str) else user

    def _refuse(self, raw, error: ApiError, user: UserInfo | None) -> aiohttp.web.Response:
        self.refused.append(
            {
                "code": error.code,
                "method": raw.method,
                "path": raw.path_qs,
                "user": user.name if user else None,
                "message": error.message,
            }
        )
        log.warning("kube API refused %s %s: %s", raw.method, raw.path_qs, error.message)
        return error.response()

    def _check_access(self, raw: aiohttp.web.BaseRequest, parsed) -> aiohttp.web.Response | None:
        """401/403 as kube-apiserver answers them, or None to serve the request."""
        if self.tokens is None:
            return None
        user = self._authenticate(raw)
        if user is None:
            return self._refuse(raw, ApiError(401, "Unauthorized", "Unauthorized"), None)
        self.requests_by_user[user.name] += 1
        if parsed is None or not self.authorize:
            return None
        res, ns, name, sub, legacy_watch = parsed
        watch = legacy_watch or raw.query.get("watch", "").lower() in ("true", "1")
        verb = request_verb(raw.method, name, watch)
        if allowed(self, user, verb, res, ns, name, sub):
            return None
        message = forbidden_message(user, verb, res, ns, name, sub)
        details = {"kind": res.plural, **({"name": name} if name else {})}
        return self._refuse(raw, ApiError(403, "Forbidden", message, details), user)

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self.request_count += 1
        self.recent_requests.append((raw.method, raw.path_qs))
        parsed = self._parse_path(raw.path)
        refusal = self._check_access(raw, parsed)
        if refusal is not None:
            return refusal
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
            return e.response()
        except SelectorError as e:
            return ApiError(400, "BadRequest", str(e)).response()
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # report server bugs to the client as a Status
            log.exception("kube API error for %s %s", raw.method, raw.path_qs)
            return ApiError(500, "InternalError", f"{type(e).__name__}: {e}").response()

    @staticmethod
    async def _read_body(raw: aiohttp.web.BaseRequest) -> Any:
        data = await raw.read()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            if "yaml" in (raw.content_type or ""):
                return yaml.safe_load(data)
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None

    async def _serve(self, raw, res, ns, name, sub, legacy_watch) -> aiohttp.web.StreamResponse:
        body = await self._read_body(raw)
        query = raw.query
        dry_run = bool(query.get("dryRun"))
        method = raw.method
        if res.group == METRICS_GROUP:
            return self._serve_metrics(method, res, ns, name)
        if method == "GET":
            if legacy_watch or query.get("watch", "").lower() in ("true", "1"):
                return await self._serve_watch(raw, res, ns, name, query)
            return self._serve_get(res, ns, name, sub, query)
        if method == "POST" and name is None:
            return aiohttp.web.json_response(self.create(res, body, ns, dry_run=dry_run), status=201)
        if method == "PATCH" and name is not None:
            return self._serve_patch(raw, res, ns, name, sub, body, dry_run)
        if method == "PUT" and name is not None:
            if sub == "scale":
                if dry_run:
                    return aiohttp.web.json_response(self.get_scale(res, name, ns))
                return aiohttp.web.json_response(self.set_scale(res, name, body, ns))
            if dry_run:
                return aiohttp.web.json_response(body)
            return aiohttp.web.json_response(self.replace(res, name, body or {}, ns, subresource=sub))
        if method == "DELETE":
            return self._serve_delete(res, ns, name, body, query, dry_run)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {raw.path}")

    def _list_response(self, res: kmock.resource, items: list[dict]) -> aiohttp.web.Response:
        return aiohttp.web.json_response(
            {
                "kind": f"{kind_of(res.plural)}List",
                "apiVersion": api_version(res),
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }
        )

    def _serve_get(self, res, ns, name, sub, query) -> aiohttp.web.Response:
        if name is None:
            return self._list_response(
                res, self.list(res, ns, query.get("labelSelector"), query.get("fieldSelector"))
            )
        if sub == "scale":
            return aiohttp.web.json_response(self.get_scale(res, name, ns))
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({sub})")
        return aiohttp.web.json_response(self.get(res, name, ns))

    def _serve_metrics(self, method, res, ns, name) -> aiohttp.web.Response:
        """``metrics.k8s.io/v1beta1`` pod metrics as metrics-server serves them (read-only):
        a ``PodMetrics`` per running pod with usage, ``PodMetricsList`` for a list."""
        if self.pod_metrics is None or res.version != "v1beta1" or res.plural not in ("pods", "nodes"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {METRICS_GROUP}")
        items = []
        if res.plural == "pods":
            for pod in self.list("pods", ns):
                containers = self.pod_metrics(pod)
                if containers is None:
                    continue
                meta = pod["metadata"]
                items.append(
                    {
                        "metadata": {
                            "name": meta["name"],
                            "namespace": meta.get("namespace"),
                            "labels": dict(meta.get("labels") or {}),
                            "creationTimestamp": timestamp(),
                        },
                        "timestamp": timestamp(),
                        "window": "10s",
                        "containers": containers,
                    }
                )
        kind = "PodMetrics" if res.plural == "pods" else "NodeMetrics"
        if name is not None:
            found = next((i for i in items if i["metadata"]["name"] == name), None)
            if found is None:
                raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
            return aiohttp.web.json_response(
                {"kind": kind, "apiVersion": f"{METRICS_GROUP}/v1beta1", **found}
            )
        return aiohttp.web.json_response(
            {
                "kind": f"{kind}List",
                "apiVersion": f"{METRICS_GROUP}/v1beta1",
                "metadata": {},
                "items": [{"kind": kind, "apiVersion": f"{METRICS_GROUP}/v1beta1", **i} for i in items],
            }
        )

    def _serve_patch(self, raw, res, ns, name, sub, body, dry_run) -> aiohttp.web.Response:
        patch_type = "json" if (raw.content_type or "") == "application/json-patch+json" else "merge"
        if patch_type == "json" and not isinstance(body, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        if sub == "scale":
            if dry_run:
                return aiohttp.web.json_response(self.get_scale(res, name, ns))
            return aiohttp.web.json_response(self.set_scale(res, name, body, ns, patch_type=patch_type))
        if dry_run:
            return aiohttp.web.json_response(self.get(res, name, ns))
        return aiohttp.web.json_response(
            self.patch(res, name, body, ns, subresource=sub, patch_type=patch_type)
        )

    def _serve_delete(self, res, ns, name, body, query, dry_run) -> aiohttp.web.Response:
        grace = query.get("gracePeriodSeconds")
        if grace is None and isinstance(body, dict):
            grace = body.get("gracePeriodSeconds")
        grace = None if grace is None else int(grace)
        if name is None:  # deletecollection
            deleted = [
                self.delete(
                    res, obj["metadata"]["name"], obj["metadata"].get("namespace"), grace_period_seconds=grace
                )
                for obj in self.list(res, ns, query.get("labelSelector"), query.get("fieldSelector"))
            ]
            return self._list_response(res, deleted)
        if dry_run:
            return aiohttp.web.json_response(self.get(res, name, ns))
        return aiohttp.web.json_response(self.delete(res, name, ns, grace_period_seconds=grace))

    # ---- HTTP: watches -------------------------------------------------------------------

    async def _serve_watch(self, raw, res, ns, name, query) -> aiohttp.web.StreamResponse:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        watcher = Watcher(ns, name, labels, fields)
        # Subscribe first, then take the replay snapshot.  Both happen without an await in
        # between, so no change can fall into a gap (kmock 0.8 replays before subscribing).
        self._watchers.setdefault(res, set()).add(watcher)
        try:
            backlog = self._watch_backlog(res, watcher, query.get("resourceVersion"))
            response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(raw)
            for event in backlog:
                await response.write(_event_line(event))
            if backlog and backlog[0]["type"] == "ERROR":
                await response.write_eof()
                return response
            await self._stream_events(raw, response, watcher, deadline)
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
        finally:
            self._watchers.get(res, set()).discard(watcher)

    def _watch_backlog(
        self, res: kmock.resource, watcher: Watcher, resource_version: str | None
    ) -> list[dict]:
        """What a new watch sends first: the changes after ``resourceVersion`` if one is given
        (410 Expired if they are no longer kept), else every current object as ``ADDED``."""
        try:
            since = int(resource_version or "0")
        except ValueError:
            since = 0
        if since <= 0:
            return [
                {"type": "ADDED", "object": entry.last.raw}
                for entry in list(self._live.get(res, {}).values())
                if watcher.matches(entry.last.raw)
            ]
        if since < self._events_dropped_rv:
            gone = ApiError(410, "Expired", f"too old resource version: {since} ({self._events_dropped_rv})")
            return [{"type": "ERROR", "object": gone.status()}]
        return [
            event
            for (rv, event_res, event) in self._events
            if rv > since and event_res == res and watcher.matches(event["object"])
        ]

    async def _stream_events(
        self, raw, response: aiohttp.web.StreamResponse, watcher: Watcher, deadline: float | None
    ) -> None:
        """Forward the watcher's events until the deadline, the client leaves or the server closes."""
        while True:
            wait = _WATCH_POLL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            try:
                event = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if raw.transport is None or raw.transport.is_closing():
                    return
                continue
            if event is None:  # server shutting down
                return
            chunk, closing = [event], False
            while not watcher.queue.empty():  # batch whatever queued meanwhile
                queued = watcher.queue.get_nowait()
                if queued is None:
                    closing = True
                    break
                chunk.append(queued)
            await response.write(b"".join(_event_line(ev) for ev in chunk))
            if closing:
                return

    def close_watches(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
