"""Naming Kubernetes resources: plurals, kinds, apiVersions, and the timestamp format."""

from __future__ import annotations

import datetime
from typing import Any

import kmock

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
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "replicationcontrollers": "ReplicationController",
}
CORE_PLURALS = {
    "pods",
    "persistentvolumeclaims",
    "persistentvolumes",
    "events",
    "secrets",
    "services",
    "endpoints",
    "configmaps",
    "namespaces",
    "serviceaccounts",
    "nodes",
}
# kinds that live outside any namespace
CLUSTER_SCOPED_PLURALS = {
    "namespaces",
    "persistentvolumes",
    "nodes",
    "clusterroles",
    "clusterrolebindings",
    "priorityclasses",
    "storageclasses",
}

PODS = kmock.resource("", "v1", "pods")
PVCS = kmock.resource("", "v1", "persistentvolumeclaims")
EVENTS = kmock.resource("", "v1", "events")


def kind_of(plural: str) -> str:
    if plural in KINDS:
        return KINDS[plural]
    singular = plural[:-1] if plural.endswith("s") else plural
    return singular[:1].upper() + singular[1:]


def plural_of(kind: str) -> str:
    """The resource (plural) of a kind: ``Deployment`` -> ``deployments``, ``NetworkPolicy`` ->
    ``networkpolicies``, ``PriorityClass`` -> ``priorityclasses``."""
    for plural, known in KINDS.items():
        if known == kind:
            return plural
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def resource_of(obj: dict) -> kmock.resource:
    """The resource an object (with ``apiVersion`` and ``kind``) is stored as."""
    group, _, version = obj["apiVersion"].rpartition("/")
    return kmock.resource(group, version, plural_of(obj["kind"]))


def as_resource(res: Any) -> kmock.resource:
    """``'pods'`` (core plurals), ``'v1/pods'``, ``'networking.k8s.io/v1/ingresses'`` or a resource."""
    if isinstance(res, kmock.resource):
        return res
    if isinstance(res, str) and "/" not in res and "." not in res:
        if res in CORE_PLURALS:
            return kmock.resource("", "v1", res)
    return kmock.resource(res)


def api_version(res: kmock.resource) -> str:
    return f"{res.group}/{res.version}" if res.group else res.version


def qualified_plural(res: kmock.resource) -> str:
    """How the API names a resource in its messages: ``pods``, ``ingresses.networking.k8s.io``."""
    return f"{res.plural}.{res.group}" if res.group else res.plural


def timestamp() -> str:
    """Now, as Kubernetes writes times (RFC 3339, UTC, whole seconds)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
