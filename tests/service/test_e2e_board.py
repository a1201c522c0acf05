"""Announcements and stop notices on a real hub, proxy and service: staff post on the admin page
(XSRF, staff only), everyone's hub pages (home, token, spawn pending) and the service's pages
show them escaped and newest first until they expire or are removed, after a restart too; a
participant whose server was stopped as idle is told so on their next hub page, until they
start a server again."""

from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from yarl import URL

from ..harness.browser import login, new_session
from ..harness.hub import wait_for
from .test_e2e import ServiceHub, hold_spawns, open_service

pytestmark = pytest.mark.e2e

SCRIPT = "Tea at 10:30 <script>alert('x')</script> slides: https://example.org/slides?a=1&b=2."


def banners(page: str) -> list[str]:
    return re.findall(r'<span class="workshop-announcement">(.*?)</span>', page, re.S)


def stop_notice(page: str) -> str:
    found = re.search(r'<span class="workshop-stop">(.*?)</span>', page, re.S)
    return found.group(1) if found else ""


async def post(session, hub, page: str, **data):
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    # a page without a form: the token tornado set as its cookie, as a script would send it
    xsrf = found.group(1) if found else session.cookie_jar.filter_cookies(URL(hub.service_url))["_xsrf"].value
    async with session.post(hub.service_url + "announcements", data={"_xsrf": xsrf, **data}) as r:
        return r.status, await r.text()


async def get(session, url: str) -> str:
    async with session.get(url) as r:
        assert r.status == 200, (url, r.status)
        return await r.text()


def test_announcements_and_an_idle_stop_on_every_page_through_a_restart(tmp_path):
    zone = "America/Denver"
    hub = ServiceHub(tmp_path, {"idle_timeout": 3, "timezone": zone}, extra_config=hold_spawns(tmp_path))
    hub.start()
    try:

        async def post_and_read():
            async with new_session() as staff, new_session() as someone:
                assert (await login(staff, hub.url, "ws004", hub.cards["ws004"].password)).ok
                status, admin = await open_service(staff, hub)
                assert status == 200 and 'id="announcement-none"' in admin
                async with staff.post(
                    hub.service_url + "announcements", data={"action": "post", "text": "x"}
                ) as r:
                    assert r.status == 403  # no XSRF token
                assert (await post(staff, hub, admin, action="post", text="Welcome!"))[0] == 200
                status, page = await post(staff, hub, admin, action="post", text=SCRIPT)
                assert status == 200 and "Posted: every hub page shows it now." in page
                status, page = await post(staff, hub, admin, action="post", text="Short one", expires="0.05")
                assert status == 200
                status, page = await post(staff, hub, admin, action="post", text="   ")
                assert status == 400 and "needs some text" in page

                # a participant cannot post: the hub's 403 page, nothing changed
                assert (await login(someone, hub.url, "ws002", hub.cards["ws002"].password)).ok
                _, mine = await open_service(someone, hub)
                status, _ = await post(someone, hub, mine, action="post", text="hijack")
                assert status == 403
                for url in (f"{hub.url}/hub/home", f"{hub.url}/hub/token", hub.service_url):
                    shown = banners(await get(someone, url))
                    assert len(shown) == 3 and shown[0] == "Short one", url
                    assert shown[2] == "Welcome!"
                    assert shown[1].startswith(
                        "Tea at 10:30 &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; slides: "
                    )
                    assert '<a href="https://example.org/slides?a=1&amp;b=2" target="_blank"' in shown[1]
                    assert "<script>alert" not in shown[1]
                deadline = time.monotonic() + 10
                while "Short one" in banners(await get(someone, f"{hub.url}/hub/home")):
                    assert time.monotonic() < deadline, "the short announcement did not expire"
                    await _tick()
                assert banners(await get(someone, f"{hub.url}/hub/home"))[0].startswith("Tea at")
                # staff remove one: gone from every page at the next view
                _, admin = await open_service(staff, hub)
                welcome = re.search(r'id="announcement-([0-9a-f]+)"><div>Welcome!', admin).group(1)
                status, page = await post(staff, hub, admin, action="remove", id=welcome)
                assert status == 200 and "Removed." in page
                assert [b[:6] for b in banners(await get(someone, f"{hub.url}/hub/home"))] == ["Tea at"]

        asyncio_run(post_and_read())

        # ws001's server is stopped as idle; their next hub page says so, and not once it starts again
        hub.spawn("ws001")
        wait_for(lambda: not hub.running("ws001"), 30, message="ws001 to be stopped as idle")
        [(stopped,)] = hub.query("SELECT at FROM workshop_culls WHERE username = 'ws001'")

        async def told():
            async with new_session() as s:
                assert (await login(s, hub.url, "ws001", hub.cards["ws001"].password)).ok
                wait = time.monotonic() + 10
                while not stop_notice(home := await get(s, f"{hub.url}/hub/home")):
                    assert time.monotonic() < wait, "no stop notice on the home page"
                    await _tick()
                at = datetime.fromisoformat(stopped.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
                assert stop_notice(home) == (
                    f"Your server was stopped at {at:%H:%M} because it had been idle. "
                    "Your files are safe — start it again below."
                )
                assert banners(home)[0].startswith("Tea at")  # beside the announcements
                # their page on the service lists it among their last stops
                _, mine = await open_service(s, hub)
                assert f"{at:%a}\u00a0{at:%H:%M} (America/Denver): stopped because it had been idle" in mine
                # the server starts again (held pending): the spawn-pending page has the banner, not the notice
                hold = hub.hold("ws001")
                hub.hub.api("/users/ws001/server", method="POST", data=b"{}")
                pending = await get(s, f"{hub.url}/hub/spawn-pending/ws001")
                assert banners(pending) and not stop_notice(pending)
                hold.unlink()

        asyncio_run(told())
        wait_for(
            lambda: (
                hub.running("ws001")
                or hub.query("SELECT count(*) FROM workshop_culls WHERE username = 'ws001'")[0][0] > 1
            ),
            30,
            message="the restart",
        )

        # a restart of the hub and its service: the announcements are still there
        hub.stop()
        hub.start()

        async def after_restart():
            async with new_session() as s:
                assert (await login(s, hub.url, "ws003", hub.cards["ws003"].password)).ok
                assert [b[:6] for b in banners(await get(s, f"{hub.url}/hub/home"))] == ["Tea at"]
                assert not stop_notice(await get(s, f"{hub.url}/hub/home"))  # ws001's is not ws003's

        asyncio_run(after_restart())
    finally:
        hub.stop()


async def _tick():
    import asyncio

    await asyncio.sleep(0.2)  # polling a page with a deadline, not a wait for sync


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)
