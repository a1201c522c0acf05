"""Sphinx configuration of the jupyterhub-workshop documentation (built by `scripts/dev docs`)."""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

import jupyterhub_workshop  # noqa: E402  (the package documented, installed in the environment)

project = "jupyterhub-workshop"
author = "jupyterhub-workshop contributors"
copyright = "jupyterhub-workshop contributors"
version = release = jupyterhub_workshop.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "autodoc_traits",
    "sphinxarg.ext",
    "workshop_reference",
]

# options and code-like words stay as typed: no en-dashes for "--", no curly quotes
smartquotes = False

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "substitution", "tasklist"]
myst_heading_anchors = 3

# References to our own objects must resolve (-n); those into JupyterHub, KubeSpawner, traitlets
# and the standard library come from their docstrings and are not ours to fix.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!jupyterhub_workshop\.).*"),
    # the spawners' shared base: its traits are listed under each spawner
    ("py:class", "jupyterhub_workshop.spawner.common.WorkshopSpawnerMixin"),
]

autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": False}

html_theme = "pydata_sphinx_theme"
html_title = "jupyterhub-workshop"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"changelog": []}
