"""The workshop authenticator in a real jupyterhub process behind the real proxy, over HTTP."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.cli import main as cli
from jupyterhub_workshop.login.accounts import load_accounts, save_accounts
from jupyterhub_workshop.login.issuing import Batch, generate, issue
from jupyterhub_workshop.login.printing import read_cards_csv

from ..harness.browser import XSRF_FIELD, login, new_session
from ..harness.hub import HubProcess

pytestmark = [pytest.mark.e2e, pytest.mark.jh55]

AUTH_CONFIG = """
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = "{accounts}"
c.WorkshopAuthenticator.accounts_reload_interval = 0.2
c.WorkshopAuthenticator.failures_before_backoff = 3
c.WorkshopAuthenticator.backoff_base_seconds = 2
c.WorkshopAuthenticator.backoff_max_seconds = 4
"""


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    """A hub over a card directory: 8 participants, 2 instructors, plus cards outside their window."""
    root = tmp_path_factory.mktemp("workshop")
    cards_dir = root / "cards"
    generate(cards_dir, Batch("ws", 8, 2), title="Hackweek <2026>")  # the login page's title by default
    now = datetime.now(UTC)
    early, early_cards = issue(Batch("early", 1, valid_from=now + timedelta(days=1)))
    late, late_cards = issue(
        Batch("late", 1, valid_from=now - timedelta(days=2), valid_until=now - timedelta(days=1))
    )
    accounts = cards_dir / "accounts.yaml"
    book = load_accounts(accounts)
    save_accounts(accounts, [*book.values(), *early, *late], book.title)
    cards = {c.username: c for c in [*read_cards_csv(cards_dir / "cards.csv"), *early_cards, *late_cards]}
    hub = HubProcess(root / "hub", AUTH_CONFIG.format(accounts=accounts)).start()
    yield hub, cards_dir, cards
    hub.stop()


async def test_login_page_names_the_workshop_and_the_card(workshop):
    hub, _, _ = workshop
    async with new_session() as s, s.get(f"{hub.url}/hub/login") as r:
        page = await r.text()
    assert r.status == 200
    assert "Hackweek &lt;2026&gt;" in page
    assert "on your login card" in page
    assert 'name="_xsrf"' in page


async def test_card_login_works(workshop):
    hub, _, cards = workshop
    async with new_session() as s:
        result = await login(s, hub.url, "ws001", cards["ws001"].password)
        assert result.ok, result.text
        async with s.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
            assert r.status == 200
    user = hub.api("/users/ws001")
    assert user["admin"] is False and user["groups"] == []


async def test_login_without_xsrf_is_refused(workshop):
    hub, _, cards = workshop
    async with new_session() as s:
        await s.get(f"{hub.url}/hub/login")
        async with s.post(
            f"{hub.url}/hub/login",
            allow_redirects=False,
            data={"username": "ws002", "password": cards["ws002"].password},
        ) as r:
            assert r.status == 403


async def test_wrong_password_and_unknown_user_fail_alike(workshop):
    hub, _, _ = workshop
    async with new_session() as s:
        wrong = await login(s, hub.url, "ws003", "not-the-password")
        unknown = await login(s, hub.url, "nobody-at-all", "not-the-password")
    assert wrong.status == unknown.status == 403
    assert wrong.error_message() == unknown.error_message() == "Invalid username or password"


async def test_backoff_engages_then_releases_for_known_and_unknown_names(workshop):
    hub, _, cards = workshop
    async with new_session() as s:
        for name in ("ws004", "ghost"):
            for _ in range(3):
                assert (await login(s, hub.url, name, "wrong")).status == 403
        held = await login(s, hub.url, "ws004", cards["ws004"].password)
        ghost = await login(s, hub.url, "ghost", "wrong")
        assert held.status == ghost.status == 429
        assert "Too many failed sign-ins" in held.error_message()
        assert held.error_message().split(" Try")[0] == ghost.error_message().split(" Try")[0]
        assert 1 <= int(held.headers["Retry-After"]) <= 4
        held_at = time.monotonic()

        async def released():
            return (await login(s, hub.url, "ws004", cards["ws004"].password)).ok

        while not await released():
            assert time.monotonic() - held_at < 15, "backoff never released"
        assert time.monotonic() - held_at >= 0.5


async def test_revoke_and_add_take_effect_without_restart(workshop):
    hub, cards_dir, cards = workshop
    async with new_session() as s:
        assert (await login(s, hub.url, "ws005", cards["ws005"].password)).ok
    assert cli(["credentials", "revoke", "--accounts", str(cards_dir / "accounts.yaml"), "ws005"]) == 0
    assert cli(["credentials", "add", "--count", "1", "--prefix", "ws", "--out", str(cards_dir)]) == 0
    new_card = read_cards_csv(cards_dir / "cards.csv")[-1]
    assert new_card.username == "ws009"

    async def attempt(name, password):
        async with new_session() as s:
            return await login(s, hub.url, name, password)

    deadline = time.monotonic() + 10
    while (await attempt("ws005", cards["ws005"].password)).ok:
        assert time.monotonic() < deadline, "revoked card still logs in"
    while not (await attempt("ws009", new_card.password)).ok:
        assert time.monotonic() < deadline, "added card never logged in"


async def test_cards_outside_their_window_cannot_log_in(workshop):
    hub, _, cards = workshop
    async with new_session() as s:
        early = await login(s, hub.url, "early001", cards["early001"].password)
        late = await login(s, hub.url, "late001", cards["late001"].password)
    assert early.status == late.status == 403
    assert "works from" in early.error_message()
    assert "expired" in late.error_message()


async def test_instructors_are_admins_in_the_instructors_group(workshop):
    hub, _, cards = workshop
    async with new_session() as s:
        assert (await login(s, hub.url, "wsinstructor01", cards["wsinstructor01"].password)).ok
        async with s.get(f"{hub.url}/hub/admin", allow_redirects=False) as r:
            assert r.status == 200
    user = hub.api("/users/wsinstructor01")
    assert user["admin"] is True and user["groups"] == ["instructors"]
    assert "wsinstructor01" in hub.api("/groups/instructors")["users"]


async def test_overlong_password_fails_cleanly(workshop):
    hub, _, cards = workshop
    async with new_session() as s:
        result = await login(s, hub.url, "ws006", cards["ws006"].password + "x" * 100_000)
    assert result.status == 403
    assert result.error_message() == "Invalid username or password"


async def test_bad_reload_keeps_the_last_good_accounts(workshop):
    hub, cards_dir, cards = workshop
    accounts = cards_dir / "accounts.yaml"
    good = accounts.read_text()
    mark = len(hub.log_text())
    try:
        accounts.write_text(good.replace("version: 1", "version: 1\n  - broken: [", 1))
        async with new_session() as s:
            # a login makes the hub look at the file
            await login(s, hub.url, "ws007", "wrong")
            hub.wait_log(r"keeping the last good accounts", start=mark)
            assert (await login(s, hub.url, "ws007", cards["ws007"].password)).ok
        assert "accounts.yaml:" in hub.log_text()[mark:]
    finally:
        accounts.write_text(good)


def test_invalid_accounts_file_stops_the_hub_naming_file_and_line(tmp_path):
    bad = tmp_path / "accounts.yaml"
    bad.write_text('version: 1\naccounts:\n- {username: "ws001", hash: "$argon2id$v=19$nope"}\n')
    hub = HubProcess(tmp_path / "hub", AUTH_CONFIG.format(accounts=bad)).start(wait=False)
    try:
        assert hub.proc.wait(60) != 0
        assert f"{bad}:3: account 'ws001': hash is not a well-formed argon2id hash" in hub.log_text()
    finally:
        hub.stop()


async def test_a_crowd_beyond_the_cap_is_told_busy_then_everyone_gets_in(tmp_path):
    # one login processed at a time and one more waiting: a class pressing "Sign in" together
    # mostly meets the cheap busy page, comes back after its Retry-After, and gets in
    generate(tmp_path / "cards", Batch("crowd", 12))
    cards = read_cards_csv(tmp_path / "cards" / "cards.csv")
    hub = HubProcess(
        tmp_path / "hub",
        AUTH_CONFIG.format(accounts=tmp_path / "cards" / "accounts.yaml")
        + """
c.WorkshopAuthenticator.concurrent_logins = 1
c.WorkshopAuthenticator.max_logins_in_flight = 2
""",
    ).start()
    busy_answers = []

    async def person(card):
        async with new_session() as s:
            async with s.get(f"{hub.url}/hub/login") as r:
                xsrf = XSRF_FIELD.search(await r.text()).group(1)
            await everyone_ready.wait()  # all pages loaded: everyone presses "Sign in" together
            while True:
                async with s.post(
                    f"{hub.url}/hub/login",
                    allow_redirects=False,
                    data={"username": card.username, "password": card.password, "_xsrf": xsrf},
                ) as r:
                    if r.status != 503:
                        return r.status
                    busy_answers.append((r.headers.get("Retry-After"), await r.text()))
                    await asyncio.sleep(int(r.headers["Retry-After"]))  # as the page asks

    try:
        everyone_ready = asyncio.Barrier(len(cards))
        people = [asyncio.create_task(person(card)) for card in cards]
        statuses = await asyncio.wait_for(asyncio.gather(*people), 120)
        assert statuses == [302] * len(cards)
        assert busy_answers, "with room for two, twelve at once must meet the busy page"
        assert all(int(retry) >= 1 for retry, _ in busy_answers)
        # the cheap page written before any hub work, not the hub's rendered login page
        assert all("Busy, please retry" in page and "Sign in</b> again" in page for _, page in busy_answers)
        assert {u["name"] for u in hub.api("/users")} >= {card.username for card in cards}
    finally:
        hub.stop()
