"""The card desk through its real pages: a real hub, the real proxy, the workshop service,
browser-like sessions signed in with cards (cookies, XSRF, the confirmation step)."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from yarl import URL

from jupyterhub_workshop.cli import main as cli
from jupyterhub_workshop.login.accounts import load_accounts
from jupyterhub_workshop.login.printing import read_cards_csv

from ..harness.browser import login, new_session
from ..harness.hub import poll
from .test_e2e import ServiceHub, accounts_file

pytestmark = [pytest.mark.e2e, pytest.mark.jh55]

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
TOKEN = re.compile(r'name="confirm" value="([^"]+)"')
PASSWORD = re.compile(r"<span class=\"label\">Password</span><span class=\"value\">([^<]+)</span>")


@pytest.fixture(scope="module")
def desk_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("desk")
    desk_file = root / "hub" / "accounts-desk.yaml"
    settings = {**accounts_file(root), "desk_file": str(desk_file), "cull_every": 3600}
    extra = f"c.WorkshopAuthenticator.desk_file = {str(desk_file)!r}\n"
    hub = ServiceHub(root, settings, extra_config=extra).start()
    hub.desk_file = desk_file
    yield hub
    hub.stop()


async def signed_in(hub, name, password=None):
    s = new_session()
    assert (await login(s, hub.url, name, password or hub.cards[name].password)).ok
    return s


async def confirm(s, hub, **fields):
    """Open the desk, ask for an action; the confirmation page's status, text and token."""
    async with s.get(hub.service_url + "desk") as r:
        page = await r.text()
        assert r.status == 200, page
    xsrf = XSRF.search(page).group(1)
    async with s.post(hub.service_url + "desk/confirm", data={"_xsrf": xsrf, **fields}) as r:
        text = await r.text()
        token = TOKEN.search(text)
        return r.status, text, (xsrf, token.group(1) if token else None)


async def do(s, hub, xsrf_token, **fields):
    xsrf, token = xsrf_token
    async with s.post(
        hub.service_url + "desk/do", data={"_xsrf": xsrf, "confirm": token, **fields}, allow_redirects=False
    ) as r:
        return r.status, dict(r.headers), await r.text()


def audit(hub):
    return hub.query("SELECT staff, action, cards FROM workshop_desk_audit ORDER BY id")


async def can_login(hub, name, password):
    async with new_session() as s:
        return (await login(s, hub.url, name, password)).ok


async def test_admin_reissues_a_card_once_and_only_the_new_password_works(desk_hub):
    hub = desk_hub
    victim = await signed_in(hub, "ws001")
    admin = await signed_in(hub, "ws004")  # a hub admin (admin_users)
    try:
        fields = {"action": "reissue", "username": "ws001"}
        status, text, token = await confirm(admin, hub, **fields)
        assert status == 200 and "Give <strong>ws001</strong> a new password?" in text
        assert audit(hub) == []  # asking changes nothing
        status, headers, page = await do(admin, hub, token, **fields)
        assert status == 200, page
        assert headers["Cache-Control"] == "no-store"
        assert 'http-equiv="refresh"' in page
        [password] = PASSWORD.findall(page)
        hub.reissued = password
        assert "ws001" in page and password != hub.cards["ws001"].password
        # a double submit does nothing more
        status, _, again = await do(admin, hub, token, **fields)
        assert status == 409 and "already used" in again
        assert audit(hub) == [("ws004", "reissue", "ws001")]
        # the old password is refused and its open session ends; the new one works
        started = time.monotonic()

        async def ended():
            async with victim.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
                return r.status == 302

        await poll(ended, 30, message="ws001's old session to end")
        print(f"desk reissue -> old session refused in {time.monotonic() - started:.2f} s")
        assert not await can_login(hub, "ws001", hub.cards["ws001"].password)
        assert await can_login(hub, "ws001", password)
        # the organizer's file is untouched; the desk file holds a hash, never the password
        assert load_accounts(hub.root / "cards" / "accounts.yaml")["ws001"].password_hash != (
            load_accounts(hub.desk_file)["ws001"].password_hash
        )
        assert password not in hub.desk_file.read_text()
    finally:
        await victim.close()
        await admin.close()


async def test_an_instructor_revokes_and_restores_participant_cards_only(desk_hub):
    hub = desk_hub
    instructor = await signed_in(hub, "wsinstructor01")
    try:
        fields = {"action": "revoke", "username": "ws002"}
        status, _, token = await confirm(instructor, hub, **fields)
        assert status == 200
        status, headers, _ = await do(instructor, hub, token, **fields)
        assert status == 302 and "done=revoke" in headers["Location"]

        async def refused():
            return not await can_login(hub, "ws002", hub.cards["ws002"].password)

        await poll(refused, 30, message="ws002 to be refused")
        async with instructor.get(hub.service_url + "desk?username=ws002") as r:
            assert 'id="desk-state">revoked' in await r.text()

        fields = {"action": "restore", "username": "ws002"}
        status, _, token = await confirm(instructor, hub, **fields)
        assert (await do(instructor, hub, token, **fields))[0] == 302

        async def restored():
            return await can_login(hub, "ws002", hub.cards["ws002"].password)

        await poll(restored, 30, message="ws002 to work again")

        # an instructor's card is a hub admin's business
        status, text, token = await confirm(instructor, hub, action="reissue", username="wsinstructor01")
        assert status == 403 and "only a hub admin" in text and token[1] is None
        async with instructor.get(hub.service_url + "desk?username=wsinstructor01") as r:
            assert 'id="desk-no-actions"' in await r.text()
        assert [row[:2] for row in audit(hub)][-2:] == [
            ("wsinstructor01", "revoke"),
            ("wsinstructor01", "restore"),
        ]
    finally:
        await instructor.close()


async def test_late_cards_are_added_like_the_first_ones_and_sign_in(desk_hub):
    hub = desk_hub
    admin = await signed_in(hub, "ws004")
    try:
        fields = {"action": "add", "count": "2"}
        status, text, token = await confirm(admin, hub, **fields)
        assert status == 200 and "Add <strong>2</strong> participant cards" in text
        status, headers, page = await do(admin, hub, token, **fields)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        passwords = PASSWORD.findall(page)
        hub.late = passwords
        assert len(passwords) == 2 and "wslate001" in page and "wslate002" in page

        async def both_in():
            return await can_login(hub, "wslate001", passwords[0]) and await can_login(
                hub, "wslate002", passwords[1]
            )

        await poll(both_in, 30, message="the late cards to sign in")
        assert audit(hub)[-1] == ("ws004", "add", "wslate001 wslate002")
    finally:
        await admin.close()


async def test_bad_requests_get_clear_errors_and_change_nothing(desk_hub):
    hub = desk_hub
    admin = await signed_in(hub, "ws004")
    before = (hub.desk_file.read_bytes() if hub.desk_file.exists() else b"", audit(hub))
    try:
        cases = [
            ({"action": "revoke", "username": "nobody"}, 404, "No card has that username."),
            ({"action": "add", "count": "0"}, 400, "at least 1"),
            ({"action": "add", "count": "10000"}, 400, "At most 100 late cards"),
            (
                {"action": "add", "count": "1", "valid_until": "2020-01-01T10:00:00+00:00"},
                400,
                "ends in the past",
            ),
            ({"action": "add", "count": "1", "valid_until": "tomorrow"}, 400, "end time"),
            ({"action": "restore", "username": "ws003"}, 409, "ws003 is not revoked."),
        ]
        for fields, status, message in cases:
            got, text, (xsrf, _) = await confirm(admin, hub, **fields)
            assert (got, message in text) == (status, True), (fields, text[-2000:])
        # a forged confirmation is refused too
        status, _, text = await do(admin, hub, (xsrf, "forged"), action="revoke", username="ws003")
        assert status == 409
        assert (hub.desk_file.read_bytes() if hub.desk_file.exists() else b"", audit(hub)) == before
    finally:
        await admin.close()


async def test_participants_are_refused_and_strangers_sent_to_sign_in(desk_hub):
    hub = desk_hub
    participant = await signed_in(hub, "ws003")
    try:
        for path in ("desk", "audit.csv"):
            async with participant.get(hub.service_url + path) as r:
                page = await r.text()
                assert r.status == 403 and "card desk" in page and "ws001" not in page
        async with participant.get(hub.service_url) as r:
            assert r.status == 200  # their own page sets the XSRF cookie a form would carry
        xsrf = participant.cookie_jar.filter_cookies(URL(hub.service_url))["_xsrf"].value
        async with participant.post(
            hub.service_url + "desk/confirm", data={"_xsrf": xsrf, "action": "revoke", "username": "ws001"}
        ) as r:
            assert r.status == 403
        async with participant.post(
            hub.service_url + "desk/confirm", data={"action": "revoke", "username": "ws001"}
        ) as r:
            assert r.status == 403  # no XSRF token
    finally:
        await participant.close()
    async with new_session() as stranger, stranger.get(hub.service_url + "desk", allow_redirects=False) as r:
        assert r.status == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]


async def test_audit_csv_holds_every_action(desk_hub):
    hub = desk_hub
    admin = await signed_in(hub, "ws004")
    try:
        async with admin.get(hub.service_url) as r:
            page = await r.text()
            assert 'id="desk-link"' in page and 'id="admin-desk-find"' in page  # the admin page's way in
        async with admin.get(hub.service_url + "audit.csv") as r:
            assert r.status == 200
            rows = list(csv.DictReader(io.StringIO(await r.text())))
    finally:
        await admin.close()
    assert [(row["staff"], row["action"], row["cards"]) for row in rows] == list(reversed(audit(hub)))
    assert all(row["at"] for row in rows)


async def test_a_restart_and_the_organizers_next_credentials_run_undo_nothing(desk_hub):
    hub = desk_hub
    cards_dir = hub.root / "cards"
    # the organizer's next runs, with their copy from before the desk: a late batch, a revoke
    assert cli(["credentials", "add", "--count", "1", "--prefix", "ws", "--out", str(cards_dir)]) == 0
    assert cli(["credentials", "revoke", "--accounts", str(cards_dir / "accounts.yaml"), "ws003"]) == 0
    hub.hub.stop()
    hub.hub.start()
    organizers = read_cards_csv(cards_dir / "cards.csv")[-1]
    assert organizers.username == "ws005"

    async def as_the_desk_left_it():
        return (
            await can_login(hub, "ws001", hub.reissued)
            and await can_login(hub, "wslate001", hub.late[0])
            and await can_login(hub, "ws005", organizers.password)
        )

    await poll(as_the_desk_left_it, 30, message="the desk's cards after the restart")
    assert not await can_login(hub, "ws001", hub.cards["ws001"].password)
    assert not await can_login(hub, "ws003", hub.cards["ws003"].password)
