"""Where the chart tests and the deployment rehearsal get Zero to JupyterHub 4.4.0.

In order: ``helm-chart/charts/`` (fetched before: ``helm dependency build helm-chart``, or
:func:`fetch`), the copy beside the repository (``../shared/charts/jupyterhub-4.4.0.tgz``),
else :func:`fetch` from the chart repository that ``helm-chart/Chart.lock`` names, once per
process. The archive lands in ``helm-chart/charts/`` (git-ignored), never in a commit.

:func:`fetch` is Helm's ``dependency build`` through the library the chart tests already use
(``helm_python``), in a child process that is killed after a timeout (the library's call has
none), after a quick look at the repository with a short timeout, so that a machine without
the internet learns why within seconds. Two checks Helm leaves half done are made here:
``Chart.lock`` must agree with ``Chart.yaml`` (Helm's own digest of both, :func:`lock_digest`;
Helm refuses a lock that disagrees, and so does this module, before any download), and the
downloaded archive must have the sha256 that the repository's ``index.yaml`` gives for that
version (Helm downloads whatever the URL serves, and leaves ``charts/`` empty without an error
when it is not a chart).

``python -m tests.chart.z2jh`` prints where the chart comes from (fetching it if needed), or why
there is none, and exits 1 then.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm-chart"
Z2JH = "jupyterhub"
Z2JH_VERSION = "4.4.0"
SHARED_Z2JH = ROOT.parent / "shared" / "charts" / f"{Z2JH}-{Z2JH_VERSION}.tgz"
PROBE_TIMEOUT = 5.0  # seconds: the repository's index answers, or it is unreachable
FETCH_TIMEOUT = 120.0  # seconds: Helm's dependency build (the whole index, then the archive)


# a real repository's index lists every version of every chart (megabytes): read it with libyaml
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Unavailable(Exception):
    """z2jh cannot be had here; the message says why (for a skip reason)."""


def lock_digest(requirements: list[dict], locked: list[dict]) -> str:
    """Chart.lock's ``digest`` as Helm computes it (``resolver.HashReq``): the sha256 of the JSON
    of [Chart.yaml's dependencies, the locked ones], serialized as Go serializes
    ``chart.Dependency`` (field order, empty fields left out, ``<>&`` escaped)."""

    def go(dep: dict) -> dict:
        fields = {
            "name": dep.get("name", ""),
            "version": dep.get("version"),
            "repository": dep.get("repository", ""),
            "condition": dep.get("condition"),
            "tags": dep.get("tags"),
            "enabled": dep.get("enabled"),
            "import-values": dep.get("import-values"),
            "alias": dep.get("alias"),
        }
        always = {"name", "repository"}
        return {key: value for key, value in fields.items() if key in always or value}

    text = json.dumps([[go(d) for d in requirements], [go(d) for d in locked]], separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def locked_z2jh(chart_dir: Path = CHART) -> dict:
    """z2jh's entry in ``Chart.lock``, after checking the lock agrees with ``Chart.yaml``."""
    requirements = (yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}).get("dependencies") or []
    lock_file = chart_dir / "Chart.lock"
    if not lock_file.is_file():
        raise Unavailable(f"{lock_file} is missing (helm dependency update {chart_dir.name} writes it)")
    lock = yaml.safe_load(lock_file.read_text()) or {}
    locked = lock.get("dependencies") or []
    if lock.get("digest") != lock_digest(requirements, locked):
        raise Unavailable(
            f"{lock_file} is out of sync with Chart.yaml's dependencies "
            f"(helm dependency update {chart_dir.name} rewrites it)"
        )
    matches = [d for d in locked if d.get("name") == Z2JH]
    if len(matches) != 1 or matches[0].get("version") != Z2JH_VERSION:
        raise Unavailable(f"{lock_file} does not lock {Z2JH} {Z2JH_VERSION}: {locked}")
    return matches[0]


def fetched(chart_dir: Path = CHART) -> bool:
    """Whether ``chart_dir/charts/`` holds z2jh 4.4.0, as an archive or unpacked (what Helm's
    ``dependency list`` calls ok or unpacked; read here without loading Helm, which logs)."""
    charts = chart_dir / "charts"
    archive = charts / f"{Z2JH}-{Z2JH_VERSION}.tgz"
    try:
        if archive.is_file():
            with tarfile.open(archive) as tar:
                member = tar.extractfile(f"{Z2JH}/Chart.yaml")
                meta = yaml.safe_load(member.read()) if member else None
        else:
            meta = yaml.safe_load((charts / Z2JH / "Chart.yaml").read_text())
    except (OSError, KeyError, tarfile.TarError, yaml.YAMLError):
        return False
    return isinstance(meta, dict) and (meta.get("name"), str(meta.get("version"))) == (Z2JH, Z2JH_VERSION)


_BUILD = """\
import sys
import helm_python
helm_python.disable_logging()
helm_python.dependency_build(sys.argv[1])
"""


def fetch(
    chart_dir: Path = CHART, probe_timeout: float = PROBE_TIMEOUT, timeout: float = FETCH_TIMEOUT
) -> Path:
    """Fetch z2jh into ``chart_dir/charts/`` with Helm's ``dependency build`` (Chart.lock
    checked first, the archive's sha256 checked against the repository's index after); the
    archive's path, or :class:`Unavailable` saying why not."""
    dep = locked_z2jh(chart_dir)
    repository = dep["repository"].rstrip("/") + "/"
    try:
        with urllib.request.urlopen(repository + "index.yaml", timeout=probe_timeout) as answer:
            index = yaml.load(answer.read(), Loader=_Loader) or {}
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        reason = getattr(reason, "strerror", None) or reason
        raise Unavailable(f"{repository} is unreachable ({reason})") from None
    except yaml.YAMLError as e:
        raise Unavailable(f"{repository}index.yaml is not YAML ({e})") from None
    entries = [e for e in (index.get("entries") or {}).get(Z2JH) or [] if e.get("version") == Z2JH_VERSION]
    if not entries or not entries[0].get("digest"):
        raise Unavailable(f"{repository}index.yaml lists no {Z2JH} {Z2JH_VERSION} with a digest")
    expected = entries[0]["digest"].removeprefix("sha256:")
    try:
        build = subprocess.run(
            [sys.executable, "-c", _BUILD, str(chart_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"helm dependency build from {repository} took over {timeout:.0f} s") from None
    if build.returncode != 0:
        last = (build.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise Unavailable(f"helm dependency build from {repository} failed: {last}")
    archive = chart_dir / "charts" / f"{Z2JH}-{Z2JH_VERSION}.tgz"
    if not archive.is_file():
        raise Unavailable(f"helm dependency build from {repository} left no {archive.name} in charts/")
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    if actual != expected:
        archive.unlink()
        raise Unavailable(
            f"{repository}{archive.name} has sha256 {actual}, its index.yaml says {expected}: removed"
        )
    return archive


@functools.cache
def source() -> tuple[Path | None, str]:
    """Where z2jh comes from for this process: (``helm-chart/charts/`` or the shared archive,
    a few words saying which), or (None, why there is none). Fetches at most once."""
    if fetched():
        return CHART / "charts", f"z2jh {Z2JH_VERSION} from helm-chart/charts/"
    if SHARED_Z2JH.is_file():
        return SHARED_Z2JH, f"z2jh {Z2JH_VERSION} from ../shared"
    try:
        fetch()
    except Unavailable as e:
        return None, (
            f"no z2jh {Z2JH_VERSION}: not in helm-chart/charts/ nor at ../shared/charts/{SHARED_Z2JH.name}, "
            f"and fetching it failed: {e}"
        )
    return CHART / "charts", f"z2jh {Z2JH_VERSION} fetched into helm-chart/charts/"


def main() -> int:
    path, words = source()
    print(words)
    return 0 if path is not None else 1


if __name__ == "__main__":
    sys.exit(main())
