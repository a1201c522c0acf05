"""The values the k3s job of .github/workflows/test.yml installs the chart with: they render with
the real z2jh 4.4.0, and the hub and every user pod run the images the job built and imported
(never pulled), behind the NodePort the job's checks use."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from .helpers import ROOT, find, manifests, render, run_hub_configuration, user_pod

VALUES = ROOT / ".github" / "k3s-values.yaml"
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"


def job_script() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["k3s"]["steps"]
    return "\n".join(step.get("run", "") for step in steps)


@pytest.mark.jh55  # the hub image runs JupyterHub 5.5 and KubeSpawner 7.0
async def test_the_k3s_job_installs_the_images_it_built(tmp_path):
    objects = manifests(render(yaml.safe_load(VALUES.read_text())))
    for obj in objects:
        assert kubernetes_validate.validate(obj, "1.32", strict=True)
    script = job_script()
    built = set(re.findall(r"-t (ci\.local/[\w-]+:\w+)", script))
    imported = set(re.findall(r"ci\.local/[\w-]+:\w+", script.split("docker save", 1)[1].split("\n")[0]))
    assert built == imported == {"ci.local/workshop-hub:ci", "ci.local/workshop-singleuser:ci"}

    hub = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    assert (hub["image"], hub["imagePullPolicy"]) == ("ci.local/workshop-hub:ci", "Never")
    c = run_hub_configuration(objects, tmp_path)
    _, pod, _ = await user_pod(c, "ci001", ["participants"])
    container = pod["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == ("ci.local/workshop-singleuser:ci", "Never")

    proxy = find(objects, "Service", "proxy-public")["spec"]
    assert proxy["type"] == "NodePort" and proxy["ports"][0]["nodePort"] == 30080
    # the cards' URL, the load test and the deployment check
    assert script.count("http://127.0.0.1:30080/") == 3
