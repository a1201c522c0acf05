"""Small helpers for tests that drive the emulator directly."""

from __future__ import annotations

import os


def pod_manifest(name, *, labels=None, volumes=None, mounts=None, env=None, post_start=None) -> dict:
    """A one-container pod shaped like KubeSpawner's (port 8888, container ``notebook``)."""
    container = {
        "name": "notebook",
        "image": "example/notebook",
        "ports": [{"name": "notebook-port", "containerPort": 8888}],
        "env": env or [],
        "volumeMounts": mounts or [],
    }
    if post_start:
        container["lifecycle"] = {"postStart": {"exec": {"command": post_start}}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [container], "volumes": volumes or [], "restartPolicy": "OnFailure"},
    }


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
