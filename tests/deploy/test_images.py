"""The images' install steps and the rehearsal's environments agree (offline).

images/hub/Dockerfile installs this package over z2jh 4.4.0's hub image with
images/hub/constraints.txt; `scripts/dev test` builds .venv-hub from the same file the same way.
images/singleuser/Dockerfile installs images/singleuser/requirements.txt; `scripts/dev test`
builds .venv-singleuser from it the same way. The rehearsal runs in those environments, so it
tests what the images would run only while these hold.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .install import HUB_ENV, SINGLEUSER_ENV

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "images" / "hub"
SINGLEUSER = ROOT / "images" / "singleuser"
# facts about z2jh 4.4.0's hub image (its frozen images/hub/requirements.txt at the 4.4.0 tag)
Z2JH_HUB_PINS = {
    "jupyterhub": "5.5.0",
    "jupyterhub-kubespawner": "7.0.0",
    "kubernetes-asyncio": "36.1.0",
    "oauthenticator": "17.4.0",
    "jupyterhub-idle-culler": "1.4.0",
    "prometheus-client": "0.25.0",
    "psycopg2": "2.9.12",
    "pycurl": "7.46.0",
    "sqlalchemy": "2.0.50",
    "tornado": "6.5.7",
    "traitlets": "5.15.1",
    "jupyter-events": "0.12.1",
}


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a constraints or lock file (hash lines and comments skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", line):
            name = canonicalize_name(m.group(1))
            assert name not in found, f"{path.name}: {name} pinned twice"
            found[name] = m.group(2)
        else:
            assert not line.strip() or line.lstrip().startswith(("#", "--hash=")), f"{path.name}: {line!r}"
    return found


def dockerfile_steps(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        tuple((line.split(None, 1) + [""])[:2])
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def dev_test_case() -> str:
    """The `test)` case of scripts/dev (where the rehearsal's environments are built)."""
    text = (ROOT / "scripts" / "dev").read_text()
    return text[text.index("\n  test)") : text.index("\n    ;;", text.index("\n  test)"))]


def test_hub_constraints_are_z2jh_440s_hub_image():
    constraints = pins(HUB / "constraints.txt")
    assert {name: constraints.get(name) for name in Z2JH_HUB_PINS} == Z2JH_HUB_PINS
    assert len(constraints) > 80  # the whole frozen list, not a few names
    chart = yaml.safe_load((ROOT / "helm-chart" / "Chart.yaml").read_text())
    assert [d["version"] for d in chart["dependencies"] if d["name"] == "jupyterhub"] == ["4.4.0"]
    froms = [arg for op, arg in dockerfile_steps(HUB / "Dockerfile") if op == "FROM"]
    assert froms == ["quay.io/jupyterhub/k8s-hub:4.4.0"]
    # this package's own requirements are met by them (the image's JupyterHub stays)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in map(Requirement, project["dependencies"]):
        pinned = constraints.get(canonicalize_name(requirement.name))
        if pinned is not None:
            assert requirement.specifier.contains(pinned), (requirement, pinned)


def test_hub_image_and_rehearsal_install_the_package_the_same_way():
    steps = dockerfile_steps(HUB / "Dockerfile")
    [copy] = [arg for op, arg in steps if op == "COPY" and "constraints.txt" in arg]
    source, target = copy.split()
    assert source == "images/hub/constraints.txt"
    assert "!images/hub/constraints.txt" in (HUB / "Dockerfile.dockerignore").read_text().split()
    [run] = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    image = re.search(
        rf'PIP_CONSTRAINT={re.escape(target)} pip install --no-cache-dir "\S+(\[[\w,]+\])" (\S+)', run
    )
    assert image, run
    dev = re.search(
        r'PIP_CONSTRAINT=images/hub/constraints.txt quiet_pip \.venv-hub "\.venv-hub/image-src(\[[\w,]+\])" (\S+)',
        dev_test_case(),
    )
    assert dev, "scripts/dev test no longer installs .venv-hub as images/hub/Dockerfile does"
    assert dev.groups() == image.groups()  # the same extras, the same extra packages
    # from the files the image build copies in, not the working tree (stale build/ and all)
    copied = [
        arg.split()[:-1]
        for op, arg in steps
        if op == "COPY" and "/tmp/jupyterhub-workshop/" in arg.split()[-1]
    ]
    dev_copy = re.search(r"cp -R (.+) \.venv-hub/image-src/", dev_test_case())
    assert dev_copy and sorted(dev_copy.group(1).split()) == sorted(sum(copied, []))
    # .venv-hub starts as the base image: exactly the constraints, pycurl built as z2jh builds it
    assert 'quiet_pip .venv-hub --no-binary pycurl -r "$pins"' in dev_test_case()
    assert "pins=images/hub/constraints.txt" in dev_test_case()


def test_singleuser_image_and_rehearsal_install_the_lock_the_same_way():
    steps = dockerfile_steps(SINGLEUSER / "Dockerfile")
    [run] = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    assert "python3 -m venv /opt/workshop" in run
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt" in run
    assert "pins=images/singleuser/requirements.txt" in dev_test_case()
    assert 'quiet_pip .venv-singleuser --require-hashes --no-deps -r "$pins"' in dev_test_case()


def installed(env: Path) -> dict:
    """Python version, installed distributions and how this package is installed, in ``env``."""
    script = (
        "import json, sys, importlib.metadata as m\n"
        "dists = {d.metadata['Name']: d.version for d in m.distributions()}\n"
        "try:\n"
        "    direct = json.loads(m.distribution('jupyterhub-workshop').read_text('direct_url.json') or '{}')\n"
        "except m.PackageNotFoundError:\n"
        "    direct = None\n"
        "print(json.dumps({'python': sys.version_info[:2], 'dists': dists, 'direct': direct}))\n"
    )
    out = subprocess.run(
        [str(env / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("env", [HUB_ENV, SINGLEUSER_ENV], ids=["hub", "singleuser"])
def test_rehearsal_environments_hold_exactly_the_pinned_packages(env):
    if not (env / "bin" / "python").exists():
        pytest.skip(f"{env.name} is built by scripts/dev test (as root, with Python 3.12)")
    found = installed(env)
    assert found["python"] == [3, 12]
    versions = {canonicalize_name(name): version for name, version in found["dists"].items()}
    wanted = pins(HUB / "constraints.txt" if env == HUB_ENV else SINGLEUSER / "requirements.txt")
    assert {name: versions.get(name) for name in wanted} == wanted
    if env == HUB_ENV:
        # installed from the sources like the image does (a copy, not an editable link)
        assert found["direct"] is not None and not found["direct"].get("dir_info", {}).get("editable")
