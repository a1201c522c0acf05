from datetime import UTC, datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.login.printing import Card, cards_csv, cards_html, read_cards_csv, validity_text


def test_csv_round_trip(tmp_path):
    cards = [Card("ws001", "abc", "participant"), Card("ws002", 'd,e"f', "instructor")]
    path = tmp_path / "cards.csv"
    path.write_text(cards_csv(cards))
    assert path.read_text().splitlines()[0] == "username,password,role"
    assert read_cards_csv(path) == cards


def test_csv_errors_name_the_line(tmp_path):
    path = tmp_path / "cards.csv"
    path.write_text("username,password,role\nws001,abc\n")
    with pytest.raises(ValueError, match=r"cards.csv:2: expected 3 columns"):
        read_cards_csv(path)


def test_html_pages_cut_lines_title_url_and_escaping():
    cards = [Card(f"ws{i:03d}", "pw<b>", "instructor" if i == 0 else "participant") for i in range(9)]
    html = cards_html(cards, title="ESIP <2026>", hub_url="https://hub.example.org/")
    assert html.count('<section class="page">') == 2  # 8 per page
    assert html.count('<article class="card">') == 9
    assert "dashed" in html  # cut lines
    assert "ESIP &lt;2026&gt;" in html and "pw&lt;b&gt;" in html and "<b>" not in html.split("<body>")[1]
    assert "https://hub.example.org/" in html
    assert html.count(">instructor<") == 1


def test_cards_say_when_they_work_in_the_organizers_offset():
    denver = timezone(timedelta(hours=-6))
    start, end = datetime(2026, 7, 14, 8, tzinfo=denver), datetime(2026, 7, 16, 18, tzinfo=denver)
    assert validity_text(start, end) == "Works Tue 14 Jul 2026, 08:00 to Thu 16 Jul 2026, 18:00 (UTC-06:00)"
    assert validity_text(start.astimezone(UTC), None) == "Works from Tue 14 Jul 2026, 14:00 (UTC)"
    assert validity_text(None, end) == "Works until Thu 16 Jul 2026, 18:00 (UTC-06:00)"
    assert validity_text(None, None) == ""
    html = cards_html([Card("ws001", "pw")], valid_from=start, valid_until=end)
    assert "Works Tue 14 Jul 2026, 08:00 to" in html
    assert "validity" not in cards_html([Card("ws001", "pw")])
