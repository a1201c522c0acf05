"""Login cards for the organizer: ``cards.csv`` (the record) and ``cards.html`` (to print)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2

CSV_HEADER = ("username", "password", "role")
CARDS_PER_PAGE = 8
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Card:
    username: str
    password: str
    role: str = "participant"


def cards_csv(cards: Iterable[Card]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for card in cards:
        writer.writerow((card.username, card.password, card.role))
    return out.getvalue()


def read_cards_csv(path: str | Path) -> list[Card]:
    """Read ``cards.csv``; ValueError names the line of a malformed row."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
            raise ValueError(f"{path}:1: expected header {','.join(CSV_HEADER)}")
        cards = []
        for row in reader:
            if not row:
                continue
            if len(row) != 3:
                raise ValueError(f"{path}:{reader.line_num}: expected 3 columns, got {len(row)}")
            cards.append(Card(*row))
        return cards


def validity_text(valid_from: datetime | None, valid_until: datetime | None) -> str:
    """When a card works, for the card: in the UTC offset the organizer gave, which is the
    venue's, so it reads as the clock on the wall."""

    def when(moment: datetime, offset: bool) -> str:
        text = f"{moment:%a %d %b %Y, %H:%M}"
        if not offset:
            return text
        utc_offset = moment.isoformat()[-6:]  # "-06:00"
        return f"{text} (UTC{'' if utc_offset == '+00:00' else utc_offset})"

    if valid_from and valid_until:
        same_offset = valid_from.utcoffset() == valid_until.utcoffset()
        return f"Works {when(valid_from, not same_offset)} to {when(valid_until, True)}"
    if valid_from:
        return f"Works from {when(valid_from, True)}"
    if valid_until:
        return f"Works until {when(valid_until, True)}"
    return ""


def cards_html(
    cards: Iterable[Card],
    title: str = "",
    hub_url: str = "",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> str:
    """Printable cards, several per A4 or Letter page, with cut lines; black and white safe."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    cards = list(cards)
    pages = [cards[i : i + CARDS_PER_PAGE] for i in range(0, len(cards), CARDS_PER_PAGE)]
    return env.get_template("cards.html").render(
        pages=pages, title=title, hub_url=hub_url, validity=validity_text(valid_from, valid_until)
    )
