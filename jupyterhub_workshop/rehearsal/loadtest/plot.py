"""The load test's plot without a plotting library: users per stage over time, stacked bars.

The figure is a list of rectangles and text lines; :func:`png_bytes` rasterizes it (zlib and
struct, a 3x5 pixel font) and :func:`svg_text` writes it as SVG. :func:`write_plot` picks by
the file name: ``.svg`` gives SVG, anything else PNG.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path


COLORS = {
    "waiting": (200, 200, 200),
    "login": (66, 133, 244),
    "spawn": (251, 188, 5),
    "kernel": (155, 89, 182),
    "code": (52, 168, 83),
    "stop": (0, 172, 193),
    "done": (190, 225, 190),
    "failed": (234, 67, 53),
}
INK = (40, 40, 40)
PAPER = (255, 255, 255)
# bottom of the stack first: finished users accumulate at the bottom, arrivals wait on top
STACK_ORDER = ("failed", "done", "stop", "code", "kernel", "spawn", "login", "waiting")

_FONT = """
a .#. #.# ### #.# #.#
b ##. #.# ##. #.# ##.
c .## #.. #.. #.. .##
d ##. #.# #.# #.# ##.
e ### #.. ##. #.. ###
f ### #.. ##. #.. #..
g .## #.. #.# #.# .##
h #.# #.# ### #.# #.#
i ### .#. .#. .#. ###
j ..# ..# ..# #.# .#.
k #.# #.# ##. #.# #.#
l #.. #.. #.. #.. ###
m #.# ### ### #.# #.#
n ##. #.# #.# #.# #.#
o .#. #.# #.# #.# .#.
p ##. #.# ##. #.. #..
q .#. #.# #.# ##. .##
r ##. #.# ##. #.# #.#
s .## #.. .#. ..# ##.
t ### .#. .#. .#. .#.
u #.# #.# #.# #.# ###
v #.# #.# #.# #.# .#.
w #.# #.# ### ### #.#
x #.# #.# .#. #.# #.#
y #.# #.# .#. .#. .#.
z ### ..# .#. #.. ###
0 ### #.# #.# #.# ###
1 .#. ##. .#. .#. ###
2 ##. ..# .#. #.. ###
3 ##. ..# .#. ..# ##.
4 #.# #.# ### ..# ..#
5 ### #.. ##. ..# ##.
6 .## #.. ### #.# ###
7 ### ..# .#. .#. .#.
8 ### #.# ### #.# ###
9 ### #.# ### ..# ##.
. ... ... ... ... .#.
: ... .#. ... .#. ...
- ... ... ### ... ...
/ ..# ..# .#. #.. #..
( .#. #.. #.. #.. .#.
) .#. ..# ..# ..# .#.
, ... ... ... .#. #..
= ... ### ... ### ...
% #.# ..# .#. #.. #.#
_ ... ... ... ... ###
"""
# a 3x5 pixel font: character, then its five rows
_GLYPHS = {line[0]: line[2:].replace(" ", "") for line in _FONT.strip().splitlines()}
_GLYPHS[" "] = "." * 15


@dataclass
class Rect:
    x: int
    y: int
    w: int
    h: int
    color: tuple[int, int, int]


@dataclass
class Text:
    x: int
    y: int
    text: str
    color: tuple[int, int, int] = INK
    scale: int = 2


def figure(tl: dict, title: str, width: int = 900, height: int = 420) -> tuple[int, int, list]:
    """Rectangles and text lines of the stacked-bar timeline (``tl`` from ``loadtest_report.timeline``)."""
    items: list = [Rect(0, 0, width, height, PAPER)]
    left, right, top, bottom = 60, width - 170, 40, height - 50
    pw, ph = right - left, bottom - top
    stages = tl["stages"]
    samples = tl["samples"]
    total = max((sum(row[1:]) for row in samples), default=0) or 1
    n = max(len(samples), 1)
    for i, row in enumerate(samples):
        counts = dict(zip(stages, row[1:]))
        x0 = left + (i * pw) // n
        x1 = left + ((i + 1) * pw) // n
        y = bottom
        for stage in STACK_ORDER:
            c = counts.get(stage, 0)
            if not c:
                continue
            h = round(c * ph / total)
            if h:
                items.append(Rect(x0, y - h, max(1, x1 - x0), h, COLORS[stage]))
            y -= h
    # axes and labels
    items.append(Rect(left - 1, top, 1, ph + 1, INK))
    items.append(Rect(left - 1, bottom, pw + 1, 1, INK))
    items.append(Text(left, 12, title))
    items.append(Text(8, top, f"{total}"))
    items.append(Text(8, bottom - 10, "0"))
    items.append(Text(8, top + ph // 2 - 5, "users"))
    end = samples[-1][0] if samples else 0
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = left + int(frac * pw)
        items.append(Rect(x, bottom, 1, 5, INK))
        label = f"{end * frac:.0f}s" if end >= 10 else f"{end * frac:.1f}s"
        items.append(Text(max(0, x - 4 * len(label)), bottom + 10, label))
    for j, stage in enumerate(reversed(STACK_ORDER)):
        y = top + j * 24
        items.append(Rect(right + 20, y, 16, 16, COLORS[stage]))
        items.append(Text(right + 44, y + 3, stage))
    return width, height, items


def _rasterize(width: int, height: int, items: list) -> bytearray:
    pix = bytearray(PAPER * (width * height))

    def fill(x: int, y: int, w: int, h: int, color) -> None:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * width + x0) * 3
            pix[start:start + len(row)] = row

    for it in items:
        if isinstance(it, Rect):
            fill(it.x, it.y, it.w, it.h, it.color)
        else:
            cx = it.x
            for ch in it.text.lower():
                glyph = _GLYPHS.get(ch, _GLYPHS[" "])
                for r in range(5):
                    for c in range(3):
                        if glyph[r * 3 + c] == "#":
                            fill(cx + c * it.scale, it.y + r * it.scale, it.scale, it.scale, it.color)
                cx += 4 * it.scale
    return pix


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, items: list) -> bytes:
    pix = _rasterize(width, height, items)
    stride = width * 3
    raw = b"".join(b"\x00" + bytes(pix[y * stride:(y + 1) * stride]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b""))


def svg_text(width: int, height: int, items: list) -> str:
    from xml.sax.saxutils import escape

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">']
    for it in items:
        if isinstance(it, Rect):
            out.append(f'<rect x="{it.x}" y="{it.y}" width="{it.w}" height="{it.h}" fill="rgb{it.color}"/>')
        else:
            out.append(f'<text x="{it.x}" y="{it.y + 5 * it.scale}" font-size="{6 * it.scale}" '
                       f'fill="rgb{it.color}">{escape(it.text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_plot(path: str | Path, tl: dict, title: str) -> None:
    path = Path(path)
    width, height, items = figure(tl, title)
    if path.suffix.lower() == ".svg":
        path.write_text(svg_text(width, height, items), encoding="utf-8")
    else:
        path.write_bytes(png_bytes(width, height, items))


def read_png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Decode what :func:`png_bytes` writes (8-bit RGB, filter 0): width, height, RGB bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3 + 1
    return width, height, b"".join(raw[y * stride + 1:(y + 1) * stride] for y in range(height))
