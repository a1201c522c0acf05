"""The documentation's commands and snippets run: every block marked ``<!-- ci: ... -->`` in
docs/**/*.md (and the README's configuration example) is executed here, page by page, the way a
reader would go down the page (see tests/docs/runner.py for the markers).

Pages that start the demo hub get a real hub on a free port, in a temporary directory; the
hub and everything it started are stopped at the end of the page, and the test fails if any
process is left that works in that directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from traitlets import HasTraits, TraitError
from traitlets.config import Config

from tests.docs.runner import ROOT, Block, blocks, pages
from tests.harness.hub import free_port, http_status, wait_for

RUNNABLE = [page for page in pages() if any(b.kind in ("run", "background") for b in blocks(page))]
CONFIGS = [b for page in [*pages(), ROOT / "README.md"] for b in blocks(page) if b.kind == "config"]
VALUES = [b for page in pages() for b in blocks(page) if b.kind == "values"]
DEMO_PORT = "8000"  # the demo's default, as the pages show it


def env() -> dict:
    """The pages' commands run in this environment's jupyterhub-workshop, with the proxy."""
    path = [str(Path(sys.executable).parent), str(ROOT / "node_modules" / ".bin"), os.environ["PATH"]]
    return {**os.environ, "PATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1"}


def test_every_marker_is_on_a_block_it_can_run():
    for page in [*pages(), ROOT / "README.md"]:
        for block in blocks(page):  # raises for a marker without a block
            expected = {
                "run": {"sh", "python"},
                "background": {"sh"},
                "config": {"python"},
                "values": {"yaml"},
            }
            assert block.language in expected[block.kind], (
                f"{block.where}: {block.kind} on ```{block.language}"
            )
    # the first-workshop tutorial is the one with a hub
    assert any(Path(p).name == "laptop.md" for p in map(str, RUNNABLE))


def processes_in(directory: Path) -> list[str]:
    """Processes whose working directory or command line is inside ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found


class Reader:
    """Runs a page's blocks in one directory, the demo hub in the background if the page starts it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = str(free_port())
        self.background: list[tuple[Block, subprocess.Popen, Path]] = []

    def localize(self, code: str) -> str:
        return code.replace(f"127.0.0.1:{DEMO_PORT}", f"127.0.0.1:{self.port}")

    def start(self, block: Block) -> None:
        command = block.code.strip()
        # `scripts/dev demo` is set-up (the .venv and the proxy, done: this test runs in them)
        # followed by `exec jupyterhub-workshop demo`; run that, on a free port, state in here
        command = re.sub(r"^scripts/dev demo\b", "jupyterhub-workshop demo", command)
        assert "\n" not in command, f"{block.where}: one background command per block"
        command += f" --port {self.port} --state-dir {self.workdir / 'workshop-demo'}"
        log = self.workdir / f"background-{len(self.background)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.workdir,
                env=env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((block, proc, log))
        url = f"http://127.0.0.1:{self.port}"
        wait_for(
            lambda: f"Open {url}/" in log.read_text() and http_status(f"{url}/hub/api/") == 200,
            120,
            message=f"{block.where}: the hub to say 'Open {url}/' and answer",
            failed=lambda: proc.poll() is not None and f"exited {proc.returncode}:\n{log.read_text()}",
        )

    def run(self, block: Block) -> None:
        code = self.localize(block.code)
        command = (
            ["bash", "-euo", "pipefail", "-c", code]
            if block.language == "sh"
            else [sys.executable, "-c", code]
        )
        done = subprocess.run(
            command,
            cwd=self.workdir,
            env=env(),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (
            f"{block.where} exited {done.returncode}:\n{block.code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )

    def stop(self) -> None:
        """Ctrl-C's counterpart: SIGTERM to the demo, which stops all it started."""
        for block, proc, log in self.background:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    raise AssertionError(f"{block.where}: did not stop within 60 s of SIGTERM") from None
            assert proc.returncode == 0, f"{block.where} exited {proc.returncode}:\n{log.read_text()}"


@pytest.mark.e2e
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_from_top_to_bottom(page, tmp_path):
    reader = Reader(tmp_path)
    try:
        for block in blocks(page):
            if block.kind == "background":
                reader.start(block)
            elif block.kind == "run":
                reader.run(block)
    finally:
        reader.stop()
    assert not processes_in(tmp_path), f"left running: {processes_in(tmp_path)}"


def config_classes() -> dict[str, type]:
    """Classes a jupyterhub_config.py may configure: the hub's, its plug-ins', ours."""
    from jupyter_events import EventLogger
    from jupyterhub.app import JupyterHub
    from kubespawner import KubeSpawner

    from jupyterhub_workshop.login.authenticator import WorkshopAuthenticator
    from jupyterhub_workshop.service.app import WorkshopService
    from jupyterhub_workshop.spawner.kube import WorkshopKubeSpawner
    from jupyterhub_workshop.spawner.local import WorkshopLocalSpawner

    classes = [
        JupyterHub,
        EventLogger,
        KubeSpawner,
        WorkshopAuthenticator,
        WorkshopService,
        WorkshopKubeSpawner,
    ]
    classes += [WorkshopLocalSpawner, *JupyterHub().classes]
    return {cls.__name__: cls for cls in classes}


@pytest.mark.parametrize("block", CONFIGS, ids=lambda b: b.where)
def test_configuration_snippet_sets_only_real_traits(block, tmp_path):
    c = Config()
    # the hub's own directory (where a snippet writes the service's settings) is a temporary one here
    code = textwrap.dedent(block.code).replace("/srv/jupyterhub/", f"{tmp_path}/")
    exec(compile(code, block.where, "exec"), {"c": c, "get_config": lambda: c})
    assert c, f"{block.where} sets nothing"
    known = config_classes()
    for section, settings in c.items():
        assert section in known, f"{block.where}: no configurable class {section}"
        traits = known[section].class_traits(config=True)
        unknown = sorted(set(settings) - set(traits))
        assert not unknown, f"{block.where}: {section} has no config trait {', '.join(unknown)}"
        probe = HasTraits()  # validation needs an object with traits; the value is what is checked
        for name, value in settings.items():
            try:
                traits[name]._validate(probe, value)
            except TraitError as e:
                raise AssertionError(f"{block.where}: {section}.{name}: {e}") from None


@pytest.mark.parametrize("block", VALUES, ids=lambda b: b.where)
def test_chart_values_render_with_the_chart(block):
    from tests.chart.helpers import manifests, render

    values = yaml.safe_load(block.code)
    objects = manifests(render(values))  # Helm applies both schemas, the chart its refusals
    assert any(o["kind"] == "Deployment" and o["metadata"]["name"] == "hub" for o in objects)
