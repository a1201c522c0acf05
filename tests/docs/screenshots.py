"""Screenshots for the documentation, made by the browser tests and committed.

A screenshot the docs show must exist on a clean clone (Read the Docs and `scripts/dev docs` run
no browser), so the file is committed; to keep it honest, the test that takes it writes it with a
``tEXt`` chunk naming the test (``made-by``), and tests check the committed file carries one. A
browser test refreshes the file when ``WORKSHOP_REFRESH_SCREENSHOTS=1`` (or when it is missing),
and otherwise fails when the page's layout no longer matches it (another width, or a height that
changed by more than a quarter): then refresh and commit.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "_static" / "screenshots"
KEY = b"made-by"
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunks(data: bytes):
    """(type, payload) of each chunk of a PNG."""
    assert data[:8] == SIGNATURE, "not a PNG"
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        yield kind, data[at + 8 : at + 8 + length]
        at += 12 + length


def size(data: bytes) -> tuple[int, int]:
    kind, header = next(chunks(data))
    assert kind == b"IHDR"
    return struct.unpack(">II", header[:8])


def made_by(path: Path) -> str | None:
    """The test that wrote a screenshot, from its tEXt chunk; None for any other PNG."""
    for kind, payload in chunks(path.read_bytes()):
        if kind == b"tEXt" and payload.startswith(KEY + b"\0"):
            return payload[len(KEY) + 1 :].decode("latin-1")
    return None


def with_note(data: bytes, note: str) -> bytes:
    """The PNG with a tEXt chunk ``made-by: note`` after its header chunk."""
    payload = KEY + b"\0" + note.encode("latin-1")
    chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + payload) & 0xFFFFFFFF)
    header_end = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    return data[:header_end] + chunk + data[header_end:]


def publish(shot: Path, name: str, test: str) -> Path:
    """Write ``shot`` as the docs' screenshot ``name`` when asked to (or when there is none);
    check the committed one was made by ``test`` and still matches the page's layout."""
    target = SCREENSHOTS / name
    data = shot.read_bytes()
    if os.environ.get("WORKSHOP_REFRESH_SCREENSHOTS") == "1" or not target.exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target.write_bytes(with_note(data, test))
    assert made_by(target) == test, (
        f"{target} was not made by {test}: refresh it (WORKSHOP_REFRESH_SCREENSHOTS=1)"
    )
    (width, height), (committed_width, committed_height) = size(data), size(target.read_bytes())
    assert committed_width == width and abs(committed_height - height) <= height / 4, (
        f"{target} ({committed_width}x{committed_height}) no longer matches the page ({width}x{height}): "
        "run this test with WORKSHOP_REFRESH_SCREENSHOTS=1 and commit the new screenshot"
    )
    return target
