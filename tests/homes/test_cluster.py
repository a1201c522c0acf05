"""The cluster's side of homes (jupyterhub_workshop/homes/cluster.py) against the emulated API
server with RBAC: what a refusal says, and the Role that lifts it."""

from __future__ import annotations

import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.homes.cluster import refusal

from ..harness.kube import KubeHarness, write_kubeconfig

RBAC = "rbac.authorization.k8s.io/v1"


def test_a_refusal_is_one_line_with_the_apis_message_and_where_a_403s_permission_comes_from():
    body = b'{"kind": "Status", "message": "persistentvolumeclaims is forbidden: User \\"x\\" cannot list"}'
    error = str(refusal("list persistentvolumeclaims in namespace ws", 403, "Forbidden", body))
    assert error.startswith(
        "the Kubernetes API refused to list persistentvolumeclaims in namespace ws (403 Forbidden): "
        'persistentvolumeclaims is forbidden: User "x" cannot list — '
    )
    assert "Role workshop-archive" in error and "\n" not in error
    # no JSON body, another status: the status alone, and no talk of Roles
    error = str(refusal("list pods in namespace ws", 401, "Unauthorized", b"<html>"))
    assert error == "the Kubernetes API refused to list pods in namespace ws (401 Unauthorized)"


@pytest.mark.e2e
def test_listing_home_claims_without_the_permission_is_a_clear_error_and_with_its_role_works(
    tmp_path, monkeypatch, capsys
):
    with KubeHarness(tmp_path / "kube", namespace="ws", kubelet=False, tls=True, authorize=True) as kube:
        kube.create("serviceaccounts", {"metadata": {"name": "archiver"}})
        token = kube.service_account_token("archiver")
        config = write_kubeconfig(
            tmp_path / "kubeconfig", kube.url, namespace="ws", certificate_authority=kube.ca_file, token=token
        )
        monkeypatch.setenv("KUBECONFIG", str(config))
        archive = tmp_path / "archive"
        archive.mkdir()
        verify = ["homes", "verify", "--namespace", "ws", "--archive", str(archive)]

        assert main(verify) == 1
        err = capsys.readouterr().err
        assert err.startswith(
            "error: the Kubernetes API refused to list persistentvolumeclaims in namespace ws (403 Forbidden)"
        )
        assert err.count("\n") == 1 and "Traceback" not in err

        # the archive Job's Role: list claims, nothing else
        kube.create(
            f"{RBAC}/roles",
            {
                "metadata": {"name": "workshop-archive"},
                "rules": [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["list"]}],
            },
        )
        kube.create(
            f"{RBAC}/rolebindings",
            {
                "metadata": {"name": "workshop-archive"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "workshop-archive",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "archiver", "namespace": "ws"}],
            },
        )
        assert main(verify) == 0
        assert "0 of 0 homes covered" in capsys.readouterr().out
        # deleting needs more than the Job has: refused, nothing deleted, said in a line
        delete = ["homes", "delete", "--namespace", "ws", "--archive", str(archive)]
        assert main(delete) == 1
        assert "refused to list pods in namespace ws (403 Forbidden)" in capsys.readouterr().err
