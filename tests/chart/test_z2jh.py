"""Getting Zero to JupyterHub 4.4.0 on a fresh clone (tests/chart/z2jh.py): Helm's dependency
build from a real HTTP chart repository on loopback, Chart.lock's digest as Helm computes it,
and clear, quick reasons when the repository cannot be had."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
import time
from pathlib import Path

import helm_python
import pytest
import yaml

from tests.chart import z2jh

CHART_YAML = """\
apiVersion: v2
name: wrapper
version: 0.1.0
dependencies:
  - name: jupyterhub
    version: {version}
    repository: {repository}
{extra}"""


class ChartRepository:
    """A Helm chart repository: a directory of archives and its index.yaml, served over HTTP on
    loopback; ``requests`` lists the paths asked for."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def index(self) -> dict:
        return helm_python.repo_index_generate(self.directory, base_url=self.url)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def package(where: Path, name: str, version: str, note: str = "") -> Path:
    """A small chart archive ``name-version.tgz`` (a stand-in where z2jh's contents don't matter)."""
    src = where / "src" / name
    (src / "templates").mkdir(parents=True)
    (src / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (src / "values.yaml").write_text(f"note: {note!r}\n")
    archive = Path(helm_python.package(src, destination=where))
    shutil.rmtree(where / "src")
    return archive


def wrapper(where: Path, repository: str, version: str = z2jh.Z2JH_VERSION, extra: str = "") -> Path:
    chart = where / "wrapper"
    chart.mkdir()
    (chart / "Chart.yaml").write_text(CHART_YAML.format(version=version, repository=repository, extra=extra))
    return chart


@functools.cache
def _z2jh_archive() -> Path | None:
    path, _ = z2jh.source()
    if path is None:
        return None
    archive = path if path.is_file() else path / f"jupyterhub-{z2jh.Z2JH_VERSION}.tgz"
    return archive if archive.is_file() else None


@pytest.fixture
def z2jh_archive() -> Path:
    archive = _z2jh_archive()
    if archive is None:
        pytest.skip(z2jh.source()[1])
    return archive


@pytest.mark.parametrize(
    "extra",
    # Go's JSON escapes <, > and & (a condition may hold any text)
    ["", "    alias: hub\n    condition: hub.enabled,a<b&c>d\n    tags: [front, back]\n"],
    ids=["plain", "alias-condition-tags"],
)
def test_lock_digest_is_the_one_helm_writes(tmp_path, extra):
    (tmp_path / "repo").mkdir()
    package(tmp_path / "repo", "jupyterhub", "4.4.0")
    with ChartRepository(tmp_path / "repo") as repo:
        repo.index()
        chart = wrapper(tmp_path, repo.url, extra=extra)
        helm_python.dependency_update(chart)
    lock = yaml.safe_load((chart / "Chart.lock").read_text())
    requirements = yaml.safe_load((chart / "Chart.yaml").read_text())["dependencies"]
    assert lock["digest"] == z2jh.lock_digest(requirements, lock["dependencies"])
    # and it changes with what Helm hashes
    assert z2jh.lock_digest(requirements, [{**lock["dependencies"][0], "version": "4.4.1"}]) != lock["digest"]


def test_the_committed_lock_agrees_with_chart_yaml():
    dep = z2jh.locked_z2jh(z2jh.CHART)
    [wanted] = yaml.safe_load((z2jh.CHART / "Chart.yaml").read_text())["dependencies"]
    assert (
        (dep["name"], dep["version"], dep["repository"])
        == (
            wanted["name"],
            wanted["version"],
            wanted["repository"],
        )
        == ("jupyterhub", "4.4.0", "https://jupyterhub.github.io/helm-chart/")
    )


def _locked(chart: Path, repository: str) -> None:
    """Chart.lock for ``chart`` as `helm dependency update` writes it (digest included)."""
    dep = {"name": "jupyterhub", "repository": repository, "version": z2jh.Z2JH_VERSION}
    requirements = yaml.safe_load((chart / "Chart.yaml").read_text())["dependencies"]
    lock = {
        "dependencies": [dep],
        "digest": z2jh.lock_digest(requirements, [dep]),
        "generated": "2026-12-06T10:00:00Z",
    }
    (chart / "Chart.lock").write_text(yaml.safe_dump(lock))


def test_fetch_from_a_chart_repository_on_loopback(tmp_path, z2jh_archive):
    (tmp_path / "repo").mkdir()
    shutil.copy(z2jh_archive, tmp_path / "repo")
    with ChartRepository(tmp_path / "repo") as repo:
        repo.index()
        chart = wrapper(tmp_path, repo.url)
        _locked(chart, repo.url)
        assert not z2jh.fetched(chart)
        archive = z2jh.fetch(chart)
    assert archive == chart / "charts" / "jupyterhub-4.4.0.tgz"
    assert archive.read_bytes() == z2jh_archive.read_bytes()
    assert z2jh.fetched(chart)
    assert [d["status"] for d in helm_python.dependency_list(chart)] == ["ok"]  # as Helm sees it
    assert "/index.yaml" in repo.requests and "/jupyterhub-4.4.0.tgz" in repo.requests


def test_fetch_refuses_an_archive_that_is_not_the_one_indexed(tmp_path):
    (tmp_path / "repo").mkdir()
    package(tmp_path / "repo", "jupyterhub", "4.4.0", note="the real one")
    with ChartRepository(tmp_path / "repo") as repo:
        index = repo.index()
        # the server now serves another archive under the indexed name (index.yaml unchanged)
        (tmp_path / "other").mkdir()
        other = package(tmp_path / "other", "jupyterhub", "4.4.0", note="another")
        shutil.copy(other, tmp_path / "repo" / other.name)
        chart = wrapper(tmp_path, repo.url)
        _locked(chart, repo.url)
        with pytest.raises(z2jh.Unavailable) as refused:
            z2jh.fetch(chart)
    indexed = index["entries"]["jupyterhub"][0]["digest"]
    served = hashlib.sha256(other.read_bytes()).hexdigest()
    assert str(refused.value) == (
        f"{repo.url}jupyterhub-4.4.0.tgz has sha256 {served}, its index.yaml says {indexed}: removed"
    )
    assert not (chart / "charts" / "jupyterhub-4.4.0.tgz").exists()
    assert not z2jh.fetched(chart)


def test_a_lock_out_of_sync_with_chart_yaml_is_refused_before_any_download(tmp_path):
    (tmp_path / "repo").mkdir()
    package(tmp_path / "repo", "jupyterhub", "4.4.0")
    with ChartRepository(tmp_path / "repo") as repo:
        repo.index()
        chart = wrapper(tmp_path, repo.url)
        _locked(chart, repo.url)
        text = (chart / "Chart.yaml").read_text()
        (chart / "Chart.yaml").write_text(text.replace("version: 4.4.0", "version: 4.3.0"))
        with pytest.raises(z2jh.Unavailable, match="Chart.lock is out of sync with Chart.yaml"):
            z2jh.fetch(chart)
        (chart / "Chart.lock").unlink()
        with pytest.raises(z2jh.Unavailable, match="Chart.lock is missing"):
            z2jh.fetch(chart)
    assert repo.requests == []


def test_a_refused_connection_says_so_at_once(tmp_path):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    chart = wrapper(tmp_path, url)
    _locked(chart, url)
    started = time.monotonic()
    with pytest.raises(z2jh.Unavailable) as refused:
        z2jh.fetch(chart)
    assert time.monotonic() - started < 2
    assert str(refused.value) == f"{url} is unreachable (Connection refused)"


def test_a_repository_that_never_answers_is_given_up_after_the_probe_timeout(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel does) and says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        chart = wrapper(tmp_path, url)
        _locked(chart, url)
        started = time.monotonic()
        with pytest.raises(z2jh.Unavailable) as gave_up:
            z2jh.fetch(chart, probe_timeout=0.5)
        took = time.monotonic() - started
    assert 0.5 <= took < 3
    assert str(gave_up.value) == f"{url} is unreachable (timed out)"
