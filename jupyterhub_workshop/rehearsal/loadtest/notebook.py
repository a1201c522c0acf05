"""The notebooks a simulated participant runs: reading them, their cells, think times (pure).

A notebook is read with nbformat (any version nbformat reads, validated) into a :class:`Lesson`:
its code cells in order, numbered by their position in the notebook (markdown cells count, so
"cell 7" is the seventh cell an organizer sees), and the kernel its metadata asks for.
Nothing here talks to a server; :mod:`.participant` uploads and runs what this returns.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class NotebookError(ValueError):
    """A notebook the load test cannot run; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Cell:
    key: str  # "lesson1.ipynb:7": notebook name and the cell's 1-based position
    number: int  # 1-based position among all the notebook's cells
    source: str

    @property
    def headline(self) -> str:
        """The cell's first non-empty line, shortened: how a report names it next to its number."""
        line = next((s.strip() for s in self.source.splitlines() if s.strip()), "")
        return line if len(line) <= 60 else line[:57] + "..."


@dataclass(frozen=True)
class Lesson:
    name: str  # the file name, how cells are keyed
    server_path: str  # where it is on the server (contents API path, relative to the home)
    kernel_name: str  # the kernelspec the notebook's metadata names ("" when it names none)
    cells: tuple[Cell, ...]
    content: dict | None = None  # the notebook (nbformat 4 JSON) to upload; None: already on the server


def lesson_from_json(data: dict | str, name: str, server_path: str, upload: bool) -> Lesson:
    """A :class:`Lesson` from a notebook's JSON (text or parsed), validated with nbformat.

    Raises :class:`NotebookError` for anything that is not a valid notebook, and for a notebook
    without code cells (an empty rehearsal would measure nothing).
    """
    import nbformat

    try:
        text = data if isinstance(data, str) else json.dumps(data)
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except (nbformat.ValidationError, nbformat.reader.NotJSONError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotebookError(f"{name}: not a valid Jupyter notebook ({first[:200]})") from None
    cells = tuple(
        Cell(f"{name}:{i + 1}", i + 1, c.source)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.source.strip()
    )
    if not cells:
        raise NotebookError(f"{name}: the notebook has no code cells to run")
    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or ""
    return Lesson(name, server_path, kernel, cells, dict(nb) if upload else None)


def read_notebook(path: str | Path) -> Lesson:
    """A notebook file on this machine, to upload into each participant's home under its name."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NotebookError(f"{path}: not a valid Jupyter notebook (not UTF-8 text)") from None
    except OSError as e:
        raise NotebookError(f"{path}: cannot read it ({e.strerror or e})") from None
    if path.suffix != ".ipynb":
        raise NotebookError(f"{path}: a notebook's name ends in .ipynb")
    return lesson_from_json(text, path.name, path.name, upload=True)


def server_notebook_path(text: str) -> str:
    """``--notebook-path``: a path on the server relative to the participant's home."""
    p = PurePosixPath(text.strip())
    if not text.strip() or p.is_absolute() or ".." in p.parts:
        raise NotebookError(
            f"--notebook-path {text!r}: give a path relative to the participant's home, e.g. shared/lesson1.ipynb"
        )
    if p.suffix != ".ipynb":
        raise NotebookError(f"--notebook-path {text!r}: a notebook's name ends in .ipynb")
    return str(p)


def check_unique(names: list[str]) -> None:
    """Cells are keyed by notebook name: two notebooks of one name would mix their cells."""
    seen = set()
    for name in names:
        if name in seen:
            raise NotebookError(f"two notebooks are named {name}: rename one (cells are reported by name)")
        seen.add(name)


def parse_think(text: str) -> tuple[float, float]:
    """``--think``: ``5-20`` (seconds, drawn per cell), ``5`` (always 5) or ``0``."""
    raw = text.strip()
    low, sep, high = raw.partition("-")
    try:
        lo = float(low)
        hi = float(high) if sep else lo
    except ValueError:
        raise ValueError(f"--think {text!r}: expected seconds or a range, e.g. 5-20") from None
    if lo < 0 or hi < lo:
        raise ValueError(f"--think {text!r}: expected 0 <= low <= high, e.g. 5-20")
    return lo, hi


def think_times(seed: int | None, who: str, cells: int, think: tuple[float, float]) -> list[float]:
    """Seconds a participant thinks before each of its ``cells`` cells (none before the first),
    drawn uniformly in ``think``; the same for the same seed and participant, different between
    participants, so a crowd does not press Shift+Enter in step."""
    lo, hi = think
    rng = random.Random(f"{seed}:{who}")
    return [0.0] + [lo if hi == lo else rng.uniform(lo, hi) for _ in range(max(0, cells - 1))]
