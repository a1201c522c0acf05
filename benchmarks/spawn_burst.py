"""N simultaneous spawns on the emulated cluster: WorkshopKubeSpawner vs plain KubeSpawner.

Both hubs run as real processes against the same emulated Kubernetes API; the kubelet runs
JupyterHub's mock single-user server in each pod, so the figure measures the spawner and not
notebook start-up. The plain KubeSpawner is configured like z2jh's default (a dynamic home
PVC); the workshop spawner adds its home setup hook, shared data, README ConfigMap and the
home-claim watcher.

    PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python benchmarks/spawn_burst.py --users 100

Goal: every server ready; p95 time to ready, workshop / plain <= 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.hub import HubProcess, wait_for  # noqa: E402
from tests.harness.kube import KubeHarness  # noqa: E402

COMMON = f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.log_level = "WARN"
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.JupyterHub.concurrent_spawn_limit = 0
c.KubeSpawner.namespace = "default"
c.KubeSpawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.KubeSpawner.start_timeout = 600
c.KubeSpawner.http_timeout = 600
# the emulated API server shares 2 cores with 100 starting pods: give its answers time, or
# KubeSpawner gives up on a create that did succeed (and leaves the pod behind)
c.KubeSpawner.k8s_api_request_timeout = 30
c.KubeSpawner.k8s_api_request_retry_timeout = 300
c.KubeSpawner.pvc_name_template = "claim-{{username}}"
"""

PLAIN = (
    COMMON
    + """
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
# z2jh's default home: a dynamic PVC per user
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "10Gi"
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
"""
)

WORKSHOP = (
    COMMON
    + """
c.JupyterHub.spawner_class = "workshop"
c.WorkshopKubeSpawner.home_storage = {"mode": "dynamic", "capacity": "10Gi"}
c.WorkshopKubeSpawner.readme_config_map = "workshop-readme"
c.WorkshopKubeSpawner.shared_data = {"nfs_server": "nfs.example.org", "nfs_path": "/export/shared"}
"""
)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


async def burst(hub: HubProcess, names: list[str], timeout: float) -> dict[str, float]:
    headers = {"Authorization": f"token {hub.api_token}"}
    api = f"{hub.url}/hub/api"
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=0)) as s:
        for name in names:
            async with s.post(f"{api}/users/{name}") as r:
                assert r.status in (201, 409), await r.text()

        async def spawn(name):
            async with s.post(f"{api}/users/{name}/server", json={}) as r:
                assert r.status in (201, 202), await r.text()

        began = time.perf_counter()
        await asyncio.gather(*(spawn(n) for n in names))
        ready_at: dict[str, float] = {}
        while len(ready_at) < len(names) and time.perf_counter() - began < timeout:
            async with s.get(f"{api}/users?state=ready&limit=200") as r:
                for user in await r.json():
                    if user["name"] not in ready_at:
                        ready_at[user["name"]] = time.perf_counter() - began
            await asyncio.sleep(0.25)

        async def stop(name):
            async with s.delete(f"{api}/users/{name}/server") as r:
                await r.read()

        await asyncio.gather(*(stop(n) for n in names))
    return ready_at


def run(label: str, kube: KubeHarness, workdir: Path, config: str, names: list[str], timeout: float) -> dict:
    hub = HubProcess(workdir, config, env=kube.env)
    hub.config_text = hub.config_text.replace('c.JupyterHub.log_level = "DEBUG"', "")
    hub.start()
    try:
        ready = asyncio.run(burst(hub, names, timeout))
        wait_for(lambda: not kube.list("pods"), 120, 0.5, message="all pods to be deleted")
    finally:
        hub.stop()
    times = list(ready.values())
    result = {
        "ready": len(times),
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "max": max(times, default=float("nan")),
    }
    print(
        f"{label:10} ready {result['ready']:4d}/{len(names)}  p50 {result['p50']:6.1f}s  "
        f"p95 {result['p95']:6.1f}s  max {result['max']:6.1f}s",
        flush=True,
    )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        KubeHarness(Path(tmp) / "kube", mocksu=True, pvc_bind_delay=0) as kube,
    ):
        kube.create("configmaps", {"metadata": {"name": "workshop-readme"}, "data": {"README.md": "# hi\n"}})
        plain = run(
            "plain",
            kube,
            Path(tmp) / "plain",
            PLAIN,
            [f"plain{i:03d}" for i in range(args.users)],
            args.timeout,
        )
        ours = run(
            "workshop",
            kube,
            Path(tmp) / "workshop",
            WORKSHOP,
            [f"ws{i:03d}" for i in range(args.users)],
            args.timeout,
        )
    ok = ours["ready"] == plain["ready"] == args.users
    ratio = ours["p95"] / plain["p95"]
    print(
        f"ratio workshop/plain: p50 {ours['p50'] / plain['p50']:.2f}  p95 {ratio:.2f}   "
        f"(goal: all ready, p95 ratio <= 1.2: {'met' if ok and ratio <= 1.2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
