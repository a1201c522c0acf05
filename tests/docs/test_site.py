"""The README is a front door into docs/, and the docs' own checks catch what they promise to."""

from __future__ import annotations

import argparse
import re
import sys

import pytest
from traitlets import Integer, Unicode
from traitlets.config import Configurable

from tests.docs.runner import DOCS, ROOT
from tests.docs.screenshots import SCREENSHOTS, made_by

BROWSER_TEST = "tests/service/test_e2e.py::test_admin_page_reads_well_in_headless_chromium_at_1280_and_400_px"


def section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def test_readme_set_up_is_exactly_the_two_commands():
    setup = section((ROOT / "README.md").read_text(), "Set up")
    commands = re.findall(r"^```sh\n(.*?)```", setup, re.M | re.S)
    assert [c.strip() for c in commands] == ["scripts/dev demo", "scripts/dev test"]


def test_readme_links_and_images_exist():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/_static/screenshots/admin-page.png" in local
    assert len(local) > 20
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_every_screenshot_in_the_docs_was_made_by_the_browser_test():
    shots = sorted(SCREENSHOTS.glob("*.png"))
    assert shots, f"no screenshots in {SCREENSHOTS}"
    for shot in shots:
        assert made_by(shot) == BROWSER_TEST, (
            f"{shot} was not made by the browser test (made by: {made_by(shot)})"
        )
    referenced = set(
        re.findall(r"screenshots/([\w.-]+\.png)", "".join(p.read_text() for p in DOCS.rglob("*.md")))
    )
    assert referenced <= {s.name for s in shots}


@pytest.fixture
def reference():
    pytest.importorskip("sphinx", reason="the docs extra (scripts/dev docs installs it)")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import workshop_reference

        yield workshop_reference
    finally:
        sys.path.remove(str(DOCS / "_ext"))


def test_the_package_has_help_for_every_trait_option_and_chart_value(reference):
    assert reference.traits_without_help() == []
    assert reference.options_without_help() == []
    assert reference.values_without_description() == []
    names = {f"{c.__module__}.{c.__name__}" for c in reference.package_configurables()}
    assert {
        "jupyterhub_workshop.login.authenticator.WorkshopAuthenticator",
        "jupyterhub_workshop.spawner.kube.WorkshopKubeSpawner",
        "jupyterhub_workshop.spawner.local.WorkshopLocalSpawner",
        "jupyterhub_workshop.service.app.WorkshopService",
    } <= names


def test_a_trait_without_help_is_named(reference, monkeypatch):
    from jupyterhub_workshop.login import authenticator

    class Careless(Configurable):
        documented = Integer(1, help="Has help.").tag(config=True)
        forgotten = Unicode("").tag(config=True)

    Careless.__module__ = authenticator.__name__
    monkeypatch.setattr(authenticator, "Careless", Careless, raising=False)
    assert reference.traits_without_help() == ["jupyterhub_workshop.login.authenticator.Careless.forgotten"]


def test_an_option_or_command_without_help_is_named(reference, monkeypatch):
    from jupyterhub_workshop import cli

    real = cli.build_parser

    def careless():
        parser = real()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices["plan"].add_argument("--guess", type=int)
        commands.add_parser("mystery")
        return parser

    monkeypatch.setattr(cli, "build_parser", careless)
    assert reference.options_without_help() == [
        "'--guess' of 'jupyterhub-workshop plan'",
        "the command 'jupyterhub-workshop mystery'",
    ]


def test_a_chart_value_without_description_is_named(reference, monkeypatch):
    schema = reference.workshop_schema()
    schema["properties"]["cull"]["properties"]["newKnob"] = {"type": "integer"}
    monkeypatch.setattr(reference, "workshop_schema", lambda: schema)
    assert reference.values_without_description() == ["workshop.cull.newKnob"]


def test_generated_reference_lists_what_the_code_has(reference):
    metrics = {m["name"]: m for m in reference.service_metrics()}
    assert metrics["workshop_culls_total"]["type"] == "counter"
    assert metrics["workshop_culls_total"]["labels"] == ["reason"]
    assert metrics["workshop_session_duration_seconds"]["type"] == "histogram"
    assert metrics["workshop_session_duration_seconds"]["labels"] == []
    paths = {e["path"]: e for e in reference.service_endpoints()}
    assert paths["/services/workshop/opt-out"]["methods"] == ["POST"]
    assert paths["/services/workshop/usage.{csv,json}"]["methods"] == ["GET"]
    assert all(e["doc"] for e in paths.values())
