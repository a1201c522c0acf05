"""Who is asking, and may they: bearer tokens and RBAC, as kube-apiserver decides them.

Off unless asked for (``KubeAPIServer(tokens=..., authorize=True)``): the emulator then answers
401 to a request without a known bearer token and 403 to a resource request that no Role or
ClusterRole bound to the caller allows, with the real API server's message. The rules come from
the RBAC objects stored in the emulator itself (``Role``/``RoleBinding`` in a namespace,
``ClusterRole``/``ClusterRoleBinding`` for all), so a chart's rendered RBAC is what is enforced.

Covered: verbs from the HTTP method (get, list, watch, create, update, patch, delete,
deletecollection), subresources (``pods/status``), ``resourceNames``, ``*`` wildcards, subjects
of kind ServiceAccount, User and Group (a service account's groups included), and
``system:masters`` bypassing RBAC as on a real cluster. Not covered: aggregated ClusterRoles,
``nonResourceURLs`` rules (non-resource paths such as ``/version`` are open to every
authenticated caller, as ``system:discovery`` makes them), impersonation, admission.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kmock

ADMIN_GROUP = "system:masters"
ROLES = kmock.resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = kmock.resource("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTER_ROLES = kmock.resource("rbac.authorization.k8s.io", "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = kmock.resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings")


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = field(default=("system:authenticated",))


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The identity a service account's token carries."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


def admin_user(name: str = "kube-harness:admin") -> UserInfo:
    return UserInfo(name, (ADMIN_GROUP, "system:authenticated"))


def request_verb(method: str, name: str | None, watch: bool) -> str:
    """The RBAC verb of a resource request."""
    if method in ("GET", "HEAD"):
        return "watch" if watch else ("get" if name else "list")
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, method.lower())


def _subject_matches(subject: dict, user: UserInfo, binding_namespace: str | None) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    if kind == "User":
        return user.name == subject.get("name")
    if kind == "Group":
        return subject.get("name") in user.groups
    return False


def _rule_allows(rule: dict, verb: str, group: str, resource: str, name: str | None) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    if not (has("verbs", verb) and has("apiGroups", group) and has("resources", resource)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def _bound_rules(api, binding: dict, binding_namespace: str | None) -> list[dict]:
    ref = binding.get("roleRef") or {}
    if ref.get("kind") == "Role" and binding_namespace is not None:
        role = api.find(ROLES, ref.get("name", ""), binding_namespace)
    elif ref.get("kind") == "ClusterRole":
        role = api.find(CLUSTER_ROLES, ref.get("name", ""), None)
    else:
        role = None
    return list((role or {}).get("rules") or [])


def allowed(
    api,
    user: UserInfo,
    verb: str,
    res: kmock.resource,
    namespace: str | None,
    name: str | None,
    subresource: str | None = None,
) -> bool:
    """Whether RBAC objects stored in ``api`` allow ``user`` this request."""
    if ADMIN_GROUP in user.groups:
        return True
    resource = f"{res.plural}/{subresource}" if subresource else res.plural
    bindings = [(b, None) for b in api.list(CLUSTER_ROLE_BINDINGS)]
    if namespace is not None:
        bindings += [(b, namespace) for b in api.list(ROLE_BINDINGS, namespace)]
    for binding, binding_namespace in bindings:
        if not any(_subject_matches(s, user, binding_namespace) for s in binding.get("subjects") or []):
            continue
        for rule in _bound_rules(api, binding, binding_namespace):
            if _rule_allows(rule, verb, res.group, resource, name):
                return True
    return False


def forbidden_message(
    user: UserInfo,
    verb: str,
    res: kmock.resource,
    namespace: str | None,
    name: str | None,
    subresource: str | None = None,
) -> str:
    """kube-apiserver's wording of a 403."""
    resource = f"{res.plural}/{subresource}" if subresource else res.plural
    what = f'{resource} "{name}"' if name else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (
        f'{what} is forbidden: User "{user.name}" cannot {verb} resource "{resource}" '
        f'in API group "{res.group}"{where}'
    )
