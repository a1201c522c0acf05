"""What `jupyterhub-workshop loadtest` leaves out, on a freshly installed hub: an instructor signs
in with a generated card and finds the workshop service in the Services menu, opens its admin
page (through the hub's OAuth), and both metrics endpoints answer.

    python3 .github/scripts/deployment_check.py --url http://127.0.0.1:30080/ --cards cards/cards.csv

Standard library only. Exits 1 naming the first check that failed.
"""

from __future__ import annotations

import argparse
import csv
import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

XSRF = re.compile(r"""<input[^>]*name=["']_xsrf["'][^>]*value=["']([^"']+)["']""")
# what a browser sends when a person opens a page
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}


class CheckFailed(Exception):
    pass


class Browser:
    """Cookies kept, redirects followed (the OAuth dance of the service's page included)."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def fetch(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        """(status, final URL, body) of a GET, or of a form POST when ``data`` is given."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers=NAVIGATE)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.url, e.read().decode(errors="replace")


def expect(what: str, condition: bool, detail: str = "") -> None:
    if not condition:
        raise CheckFailed(f"{what}{': ' + detail if detail else ''}")
    print(f"ok: {what}")


def instructor_card(cards_csv: str) -> tuple[str, str]:
    with open(cards_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["role"] == "instructor":
                return row["username"], row["password"]
    raise CheckFailed(f"{cards_csv} has no instructor card (credentials generate --instructors 1)")


def check(url: str, cards_csv: str) -> None:
    username, password = instructor_card(cards_csv)
    hub = Browser(url)

    status, _, page = hub.fetch("/hub/login")
    expect("the login page answers", status == 200, f"HTTP {status}")
    form = XSRF.search(page)
    expect("the login page has the workshop's form", form is not None and 'name="password"' in page)
    # `next`: land on the home page, where a GET of /hub/spawn would start a server
    status, landed, page = hub.fetch(
        "/hub/login?next=" + urllib.parse.quote("/hub/home"),
        {"username": username, "password": password, "_xsrf": form.group(1)},
    )
    expect(f"{username} signs in with the card", status == 200 and landed.endswith("/hub/home"), landed)

    menu = page.find(">Services</a>")
    expect("the home page has a Services menu", menu >= 0)
    expect(
        "the Services menu links the workshop service",
        'href="/services/workshop/"' in page[menu:],
        "no /services/workshop/ entry after the Services menu",
    )

    status, landed, page = hub.fetch("/services/workshop/")
    expect("the instructor opens the admin page", status == 200, f"HTTP {status} at {landed}")
    expect(
        "the admin page shows its sections",
        "Running servers" in page and "Usage" in page,
        page[:300],
    )

    anonymous = Browser(url)  # Prometheus holds no cookie
    status, _, text = anonymous.fetch("/services/workshop/metrics")
    expect("the service's metrics answer without a login", status == 200, f"HTTP {status}")
    expect("the service's metrics hold its gauges", "workshop_active_users" in text)
    status, _, text = anonymous.fetch("/hub/metrics")
    expect("the hub's metrics answer (authenticatePrometheus: false)", status == 200, f"HTTP {status}")
    expect("the hub's metrics count running servers", "jupyterhub_running_servers" in text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the hub's public URL")
    parser.add_argument("--cards", required=True, help="cards.csv from `credentials generate`")
    args = parser.parse_args(argv)
    try:
        check(args.url, args.cards)
    except CheckFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
