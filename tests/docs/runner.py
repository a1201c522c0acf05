"""The docs' runnable blocks: fenced code in docs/**/*.md preceded by a marker comment.

    <!-- ci: run -->          ```sh / ```console / ```python: run it; it must exit 0
    <!-- ci: background -->   ```sh: start it (the demo hub) and wait until it answers
    <!-- ci: config -->       ```python: a jupyterhub_config.py snippet: executed with `c`,
                              every `c.Class.trait` it sets must be a config trait of that class
    <!-- ci: values -->       ```yaml: chart values: rendered with the chart (and z2jh)

The comment is invisible on GitHub and in the built site. Blocks of one page run in order, in
one temporary directory, like a reader going down the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^<!--\s*ci:\s*(run|background|config|values)\s*-->\s*$")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w-]*)")
KINDS = {"run", "background", "config", "values"}


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the first line of code, 1-based
    kind: str
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The marked blocks of a page, in order. A marker not followed by a fence is an error."""
    lines = page.read_text().splitlines()
    found, pending = [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        if marker:
            pending = (marker.group(1), i + 1)
            i += 1
            continue
        fence = FENCE.match(line)
        if fence:
            close = fence.group(1)
            body, j = [], i + 1
            while j < len(lines) and not lines[j].startswith(close):
                body.append(lines[j])
                j += 1
            if pending:
                found.append(
                    Block(
                        str(page.relative_to(ROOT)), i + 2, pending[0], fence.group(2), "\n".join(body) + "\n"
                    )
                )
                pending = None
            i = j + 1
            continue
        if pending and line.strip():
            raise ValueError(
                f"{page}:{pending[1]}: a '<!-- ci: {pending[0]} -->' marker not followed by a code block"
            )
        i += 1
    return found


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
