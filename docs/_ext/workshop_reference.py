"""Reference pages generated from the code at build time, and the checks that keep them whole.

Directives (usable from MyST as ```{workshop-chart-values}``` and so on):

- ``workshop-chart-values``: every key under ``workshop:`` in ``helm-chart/values.schema.json``
  with its type, its default from ``helm-chart/values.yaml`` and its description.
- ``workshop-metrics``: the workshop service's Prometheus metrics, from the collectors
  :class:`~jupyterhub_workshop.service.metrics.WorkshopMetrics` registers (name, type, labels, help).
- ``workshop-endpoints``: the workshop service's HTTP endpoints, from the tornado routes
  :func:`~jupyterhub_workshop.service.web.make_app` builds (path, methods, the handler's docstring).

Checks, each a Sphinx warning (so ``-W`` fails the build) naming exactly what lacks help:

- every ``config=True`` trait defined in the package (any ``Configurable`` subclass in any module
  of ``jupyterhub_workshop``) has help text, and every such class is documented by an
  ``autoconfigurable`` directive somewhere in the site;
- every argument and option of ``jupyterhub-workshop`` (the whole argparse tree of
  ``jupyterhub_workshop.cli.build_parser``) has help text;
- every property in the chart's schema under ``workshop:`` has a description;
- every service endpoint's handler and every metric has a description.

Nothing generated is committed: a trait, option, chart value, metric or endpoint added to the
code appears in the site at the next build, or fails it for want of help text.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import re
import types
from pathlib import Path

import yaml
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "helm-chart" / "values.schema.json"
VALUES = ROOT / "helm-chart" / "values.yaml"
DASHBOARD = ROOT / "helm-chart" / "files" / "grafana-dashboard.json"
PACKAGE = "jupyterhub_workshop"


# --------------------------------------------------------------------------------------------
# what the code holds


def package_configurables() -> list[type]:
    """Every traitlets Configurable class defined in the package, with its own config traits."""
    from traitlets.config import Configurable

    package = importlib.import_module(PACKAGE)
    found = []
    for module_info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        name = module_info.name
        if ".migrations" in name or name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Configurable)
                and value.__module__ == module.__name__
                and value.class_own_traits(config=True)
            ):
                found.append(value)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def traits_without_help() -> list[str]:
    return [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls in package_configurables()
        for name, trait in sorted(cls.class_own_traits(config=True).items())
        if not (trait.help or "").strip()
    ]


def argparse_actions(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    """(command path, action) for every action of the tree, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield path + (name,), ("command", helps.get(name))
                yield from argparse_actions(sub, path + (name,))
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield path, action


def options_without_help() -> list[str]:
    from jupyterhub_workshop.cli import build_parser

    missing = []
    for path, action in argparse_actions(build_parser(), ("jupyterhub-workshop",)):
        if isinstance(action, tuple):  # a sub-command and its help
            if not (action[1] or "").strip():
                missing.append(f"the command '{' '.join(path)}'")
        elif not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            if action.help == argparse.SUPPRESS:
                continue
            what = "/".join(action.option_strings) or action.dest
            missing.append(f"'{what}' of '{' '.join(path)}'")
    return missing


def schema_properties(node: dict, path: str):
    """(dotted path, schema) of every property below ``node``, array items included."""
    for key, child in (node.get("properties") or {}).items():
        yield f"{path}.{key}", child
        yield from schema_properties(child, f"{path}.{key}")
    items = node.get("items")
    if isinstance(items, dict):
        yield from schema_properties(items, f"{path}[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from schema_properties(extra, f"{path}.<name>")


def workshop_schema() -> dict:
    return json.loads(SCHEMA.read_text())["properties"]["workshop"]


def values_without_description() -> list[str]:
    return [
        path for path, node in schema_properties(workshop_schema(), "workshop") if not node.get("description")
    ]


def service_metrics() -> list[dict]:
    """The service's metrics as Prometheus exposes them: name, type, labels, help."""
    from jupyterhub_workshop.service.metrics import WorkshopMetrics

    metrics = []
    for family in WorkshopMetrics().registry.collect():
        labels = sorted(
            {label for sample in family.samples for label in sample.labels if label not in ("le", "quantile")}
        )
        name = family.name + ("_total" if family.type == "counter" else "")
        metrics.append({"name": name, "type": family.type, "labels": labels, "help": family.documentation})
    return sorted(metrics, key=lambda m: m["name"])


def service_endpoints() -> list[dict]:
    """The service's routes as make_app builds them (under its prefix), with their handlers."""
    from jupyterhub_workshop.service import web

    service = types.SimpleNamespace(
        service_name="workshop",
        api_token="docs-build",
        api_url="http://127.0.0.1:8081/hub/api",
        accounts_file="",
        board_file="",
        metrics_token="",
    )
    saved = os.environ.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    try:
        app = web.make_app(service)
    finally:
        if saved is not None:
            os.environ["JUPYTERHUB_SERVICE_PREFIX"] = saved
    endpoints = []
    for rule in app.wildcard_router.rules:
        handler = rule.target
        pattern = rule.matcher.regex.pattern.rstrip("$")
        path = re.sub(r"\\(.)", r"\1", pattern)
        path = path.replace("(csv|json)", "{csv,json}")
        methods = [
            m.upper()
            for m in ("get", "post", "put", "patch", "delete")
            if getattr(handler, m) is not getattr(web.web.RequestHandler, m)
        ]
        doc = inspect.getdoc(handler) if "__doc__" in vars(handler) else None
        endpoints.append(
            {
                "path": path,
                "methods": methods,
                "handler": f"{handler.__module__}.{handler.__qualname__}",
                "doc": doc,
            }
        )
    return endpoints


# --------------------------------------------------------------------------------------------
# directives


def _type_of(node: dict) -> str:
    kinds = node.get("type")
    if isinstance(kinds, list):
        return " or ".join(kinds)
    if kinds:
        return kinds
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            return " or ".join(_type_of(option) for option in node[combinator] if _type_of(option))
    return "" if "enum" not in node else "one of " + ", ".join(json.dumps(v) for v in node["enum"])


def _default(values: dict, path: str):
    """The value at a dotted path of values.yaml, and whether there is one."""
    node = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None, False
        node = node[key]
    return node, True


def _rst(text: str) -> str:
    """Schema descriptions are written with Markdown's `code`: make it reST's ``code``."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


class _GeneratedDirective(SphinxDirective):
    has_content = False

    def parse_rst(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.name), self.content_offset, container)
        return container.children

    def literal(self, text: str) -> str:
        return "``" + text.replace("`", "'") + "``" if text else ""


class ChartValues(_GeneratedDirective):
    """Every ``workshop:`` chart value: path, type, default, description; a rubric per block."""

    def run(self):
        self.env.note_dependency(str(SCHEMA))
        self.env.note_dependency(str(VALUES))
        values = yaml.safe_load(VALUES.read_text())
        lines = []
        for path, node in schema_properties(workshop_schema(), "workshop"):
            if path.count(".") == 1 and node.get("properties"):
                lines += [f".. rubric:: {path}", ""]
            lines += [f".. _chart-value-{path}:", ""]
            facts = []
            if _type_of(node):
                facts.append(f"*type* {_type_of(node)}")
            if "enum" in node:
                facts.append("*one of* " + ", ".join(self.literal(json.dumps(v)) for v in node["enum"]))
            default, has_default = _default(values, path)
            if has_default and not (isinstance(default, dict) and default):
                facts.append("*default* " + self.literal(json.dumps(default)))
            for bound in ("minimum", "maximum"):
                if bound in node:
                    facts.append(f"*{bound}* " + self.literal(str(node[bound])))
            body = _rst(" ".join((node.get("description") or "").split()))
            lines += [f"``{path}``"]  # a definition list: the term, then its indented definition
            lines += ["   " + " · ".join(facts)] if facts else []
            lines += ["", "   " + body, ""]
        return self.parse_rst(lines)


class Metrics(_GeneratedDirective):
    def run(self):
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 10 12 48", ""]
        lines += ["   * - name", "     - type", "     - labels", "     - meaning"]
        for metric in service_metrics():
            lines += [
                f"   * - ``{metric['name']}``",
                f"     - {metric['type']}",
                "     - " + (", ".join(f"``{label}``" for label in metric["labels"]) or "—"),
                "     - " + _rst(" ".join(metric["help"].split()).replace("*", r"\*")),
            ]
        return self.parse_rst(lines)


class Endpoints(_GeneratedDirective):
    def run(self):
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 10 60", ""]
        lines += ["   * - path", "     - methods", "     - what it does"]
        for endpoint in service_endpoints():
            doc = " ".join((endpoint["doc"] or "").split("\n\n")[0].split())
            lines += [
                f"   * - ``{endpoint['path']}``",
                "     - " + ", ".join(endpoint["methods"]),
                "     - " + _rst(doc),
            ]
        return self.parse_rst(lines)


class DashboardPanels(_GeneratedDirective):
    """The Grafana dashboard's panels and their queries, from helm-chart/files/grafana-dashboard.json."""

    def run(self):
        self.env.note_dependency(str(DASHBOARD))
        dashboard = json.loads(DASHBOARD.read_text())
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", ""]
        lines += ["   * - panel", "     - queries"]
        for panel in dashboard.get("panels", []):
            queries = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
            if panel.get("type") == "row" or not queries:
                lines += [f"   * - **{panel.get('title', '')}**", "     -"]
                continue
            lines += [f"   * - {panel.get('title', '')}", "     - " + "; ".join(f"``{q}``" for q in queries)]
        return self.parse_rst(lines)


class OtherConfigurables(_GeneratedDirective):
    """``autoconfigurable`` for every configurable class of the package not in ``:exclude:``
    (those have pages of their own), so a new one is in the reference from its first build."""

    option_spec = {"exclude": lambda text: {name.strip() for name in text.split(",") if name.strip()}}

    def run(self):
        exclude = self.options.get("exclude", set())
        lines = []
        for cls in package_configurables():
            name = f"{cls.__module__}.{cls.__name__}"
            if name in exclude or cls.__name__.endswith("Mixin"):
                continue
            lines += [f".. autoconfigurable:: {name}", ""]
        if not lines:
            lines = ["Every configurable class of the package is on a page of its own (above)."]
        return self.parse_rst(lines)


class AppOptions(_GeneratedDirective):
    """The short options of a traitlets application (``aliases`` and ``flags``):
    ``{workshop-app-options} module.Class``."""

    required_arguments = 1

    def run(self):
        module, _, name = self.arguments[0].rpartition(".")
        app = getattr(importlib.import_module(module), name)
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", ""]
        lines += ["   * - option", "     - sets"]
        for alias, target in sorted(app.aliases.items()):
            target = target[0] if isinstance(target, tuple) else target
            lines += [f"   * - ``--{alias}=...``", f"     - ``{target}``"]
        for flag, (_, help_text) in sorted(app.flags.items()):
            lines += [f"   * - ``--{flag}``", "     - " + _rst(" ".join(help_text.split()))]
        return self.parse_rst(lines)


class Constant(_GeneratedDirective):
    """A constant of the package as an inline literal: ``{workshop-constant} module.NAME``.
    Sequences are joined with commas (CSV headers, key lists)."""

    required_arguments = 1

    def run(self):
        module, _, name = self.arguments[0].rpartition(".")
        value = getattr(importlib.import_module(module), name)
        text = ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)
        return [nodes.literal_block(text, text)]


class ExampleAccounts(_GeneratedDirective):
    """An accounts file written by ``jupyterhub-workshop credentials generate`` at build time."""

    def run(self):
        import contextlib
        import io
        import tempfile

        from jupyterhub_workshop.cli import main

        argv = ["credentials", "generate", "--count", "2", "--instructors", "1", "--prefix", "esip"]
        argv += ["--valid-from", "2026-07-14T08:00:00-06:00", "--valid-until", "2026-07-16T18:00:00-06:00"]
        argv += ["--title", "ESIP Summer Meeting", "--hub-url", "https://hub.example.org/"]
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            with contextlib.redirect_stderr(io.StringIO()):
                if main(argv + ["--out", tmp]) != 0:
                    raise self.error("credentials generate failed")
            text = (Path(tmp) / "accounts.yaml").read_text()
        block = nodes.literal_block(text, text, language="yaml")
        return [block]


# --------------------------------------------------------------------------------------------
# checks


def _note_documented(app, what, name, obj, options, lines):
    if what == "configurable" or (what == "class" and inspect.isclass(obj)):
        app.env.workshop_documented = getattr(app.env, "workshop_documented", set()) | {
            f"{obj.__module__}.{obj.__name__}"
        }


def _merge(app, env, docnames, other):
    env.workshop_documented = getattr(env, "workshop_documented", set()) | getattr(
        other, "workshop_documented", set()
    )


def _skip_foreign_traits(app, what, name, obj, skip, options):
    """Document the traits the package defines; those inherited from JupyterHub or KubeSpawner
    are theirs (each class's page links to them)."""
    from traitlets import TraitType

    if isinstance(obj, TraitType):
        owner = getattr(obj, "this_class", None)
        if owner is not None and not owner.__module__.startswith(PACKAGE):
            return True
    return None


def _check(app, env):
    for trait in traits_without_help():
        logger.warning(
            f"the trait {trait} has no help text (give it help=...)", type="workshop", subtype="help"
        )
    for option in options_without_help():
        logger.warning(
            f"{option} has no help text (add_argument(..., help=...))", type="workshop", subtype="help"
        )
    for path in values_without_description():
        logger.warning(
            f"the chart value {path} has no description in helm-chart/values.schema.json",
            type="workshop",
            subtype="help",
        )
    for metric in service_metrics():
        if not metric["help"].strip():
            logger.warning(f"the metric {metric['name']} has no help text", type="workshop", subtype="help")
    for endpoint in service_endpoints():
        if not endpoint["doc"]:
            logger.warning(
                f"the service endpoint {endpoint['path']} ({endpoint['handler']}) has no docstring",
                type="workshop",
                subtype="help",
            )
    documented = getattr(env, "workshop_documented", set())
    for cls in package_configurables():
        name = f"{cls.__module__}.{cls.__name__}"
        if name not in documented and not name.endswith("Mixin"):
            logger.warning(
                f"the configurable {name} is in no reference page (add an autoconfigurable directive)",
                type="workshop",
                subtype="reference",
            )


def setup(app):
    app.add_directive("workshop-chart-values", ChartValues)
    app.add_directive("workshop-metrics", Metrics)
    app.add_directive("workshop-endpoints", Endpoints)
    app.add_directive("workshop-constant", Constant)
    app.add_directive("workshop-app-options", AppOptions)
    app.add_directive("workshop-other-configurables", OtherConfigurables)
    app.add_directive("workshop-dashboard-panels", DashboardPanels)
    app.add_directive("workshop-example-accounts", ExampleAccounts)
    app.connect("autodoc-process-docstring", _note_documented)
    app.connect("autodoc-skip-member", _skip_foreign_traits)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
