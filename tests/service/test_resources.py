"""Each server's memory and CPU: quantities, near the limit, the sort, pod metrics matched to
servers (pure), and the local twin's process tree (real processes)."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from jupyterhub_workshop.rehearsal.plan.quantities import kube_quantity
from jupyterhub_workshop.service.resource_sources import ProcessTree, match_pods
from jupyterhub_workshop.service.resources import (
    Usage,
    count_near_limit,
    memory_order,
    memory_text,
    near_limit,
    pod_memory_limit,
    pod_usage,
)

GIB = 2**30


@pytest.mark.parametrize(
    "text, value",
    [
        ("123456Ki", 123456 * 1024),
        ("12m", 0.012),
        ("250000n", 0.00025),
        ("15u", 0.000015),
        ("2", 2.0),
        ("2Gi", 2 * GIB),
        ("2G", 2e9),
        ("512Mi", 512 * 2**20),
        ("1e9", 1e9),
        ("1.5", 1.5),
    ],
)
def test_kubernetes_quantities(text, value):
    assert kube_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "12 parsecs", "Ki", "1.2.3", "5MB"])
def test_what_is_not_a_quantity_is_refused(text):
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        kube_quantity(text)


@pytest.mark.parametrize(
    "memory, limit, near",
    [(900, 1000, True), (899, 1000, False), (1000, 1000, True), (5 * GIB, None, False)],
)
def test_near_the_limit_is_ninety_percent_or_more_of_it(memory, limit, near):
    assert near_limit(Usage(int(memory), limit, 0.1)) is near
    assert near_limit(None) is False


def test_sorting_by_memory_puts_the_nearest_their_limit_first_then_the_unlimited_then_the_unknown():
    usages = {
        "half": Usage(GIB, 2 * GIB, 0.1),
        "full": Usage(int(1.9 * GIB), 2 * GIB, 0.1),
        "big-unlimited": Usage(4 * GIB, None, 0.1),
        "small-unlimited": Usage(GIB, None, 0.1),
        "unknown": None,
    }
    order = sorted(usages, key=lambda k: memory_order(usages[k]))
    assert order == ["full", "half", "big-unlimited", "small-unlimited", "unknown"]
    assert count_near_limit(usages.values()) == 1
    assert memory_text(usages["half"]) == "1.0 GiB / 2.0 GiB (50%)"
    assert memory_text(usages["small-unlimited"]) == "1.0 GiB"


def server_pod(name, user, server="", limits=None):
    return {
        "metadata": {
            "name": name,
            "annotations": {
                "hub.jupyter.org/username": user,
                **({"hub.jupyter.org/servername": server} if server else {}),
            },
        },
        "spec": {"containers": [{"name": "notebook", "resources": {"limits": limits} if limits else {}}]},
    }


def test_pod_metrics_are_matched_to_servers_by_pod_name_and_the_users_annotation():
    pods = [
        server_pod("jupyter-ana", "ana", limits={"memory": "2Gi", "cpu": "1"}),
        server_pod("jupyter-b-2eo--gpu", "b.o", "gpu"),
        server_pod("jupyter-cy", "cy", limits={"memory": "1Gi"}),  # no metrics yet: a new pod
    ]
    metrics = [
        {
            "metadata": {"name": "jupyter-ana"},
            "containers": [{"name": "notebook", "usage": {"cpu": "250m", "memory": "1887437Ki"}}],
        },
        {
            "metadata": {"name": "jupyter-b-2eo--gpu"},
            "containers": [
                {"name": "notebook", "usage": {"cpu": "1", "memory": "1Gi"}},
                {"name": "sidecar", "usage": {"cpu": "500000n", "memory": "1024Ki"}},
            ],
        },
        {"metadata": {"name": "jupyter-prewarm-x"}, "containers": []},  # not a server
    ]
    found = match_pods(pods, metrics)
    assert set(found) == {("ana", ""), ("b.o", "gpu")}
    assert found["ana", ""] == Usage(1887437 * 1024, 2 * GIB, 0.25)
    assert near_limit(found["ana", ""])
    assert found["b.o", "gpu"] == Usage(GIB + 1024 * 1024, None, pytest.approx(1.0005))
    assert pod_memory_limit([{"resources": {"limits": {"memory": "1Gi"}}}, {"resources": {}}]) is None
    assert pod_usage([]) == (0, 0.0)


HOG = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "b = bytearray(60 * 2**20); import sys; sys.stdin.read()"],
                         stdin=subprocess.PIPE)
b = bytearray(40 * 2**20)
print("ready", flush=True)
sys.stdin.read()
child.stdin.close(); child.wait()
"""


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


async def test_the_local_twin_reads_a_servers_process_tree_within_ten_percent(tmp_path):
    """A "server" with a "kernel" child, noted as the local spawner notes it."""
    server = subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert server.stdout.readline() == b"ready\n"
        root = psutil.Process(server.pid)
        while len(root.children()) < 1 or tree_rss(server.pid) < 100 * 2**20:  # the child's bytearray
            psutil.wait_procs(root.children(), timeout=0.05)
        (tmp_path / "ana%2F.json").write_text(
            f'{{"user": "ana", "server": "", "pid": {server.pid}, "mem_limit": {110 * 2**20}}}'
        )
        (tmp_path / "gone.json").write_text(
            '{"user": "gone", "server": "", "pid": 999999999, "mem_limit": null}'
        )
        (tmp_path / "half.json").write_text('{"user": ')  # being written
        tree = ProcessTree(str(tmp_path))
        found = await tree.usage()
        expected = tree_rss(server.pid)
        assert set(found.usage) == {("ana", "")} and not found.error
        usage = found.usage["ana", ""]
        assert usage.memory == pytest.approx(expected, rel=0.10)
        assert usage.memory > 100 * 2**20  # the kernel's memory counts: the whole tree
        assert usage.limit == 110 * 2**20 and near_limit(usage)
        assert usage.cpu is not None and usage.cpu >= 0
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    assert await ProcessTree(str(tmp_path / "none")).usage() == type(found)({})
