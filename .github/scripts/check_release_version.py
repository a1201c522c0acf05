"""Before a release is built: the git tag must be a plain X.Y.Z and the version of the package
(pyproject.toml, jupyterhub_workshop.__version__) and of the chart's appVersion. chartpress then
writes the same X.Y.Z as the chart's version and the images' tags, and the hub image's build
checks that the package it installs is that version.

    python3 .github/scripts/check_release_version.py 0.2.0

Standard library only. Exits 1 naming every disagreement.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the versions on which Python packaging (PEP 440) and Helm (SemVer 2) spell the same
PLAIN = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def versions() -> dict[str, str | None]:
    init = (ROOT / "jupyterhub_workshop" / "__init__.py").read_text()
    chart = (ROOT / "helm-chart" / "Chart.yaml").read_text()
    found = {
        "pyproject.toml [project] version": tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "version"
        ],
        "jupyterhub_workshop.__version__": re.search(r'^__version__ = "([^"]+)"', init, re.M),
        "helm-chart/Chart.yaml appVersion": re.search(r'^appVersion: "?([^"\s]+)"?\s*$', chart, re.M),
    }
    return {key: value.group(1) if isinstance(value, re.Match) else value for key, value in found.items()}


def problems(tag: str) -> list[str]:
    found = []
    if not PLAIN.fullmatch(tag):
        found.append(f"tag {tag!r} is not X.Y.Z (the one form a Python package and a Helm chart write alike)")
    for where, version in versions().items():
        if version != tag:
            found.append(f"{where} is {version!r}, not {tag!r}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(argv[0])
    for problem in found:
        print(f"release {argv[0]}: {problem}", file=sys.stderr)
    if not found:
        print(f"release {argv[0]}: package, chart appVersion and tag agree")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
