"""The end of a workshop on a real hub, proxy and single-user servers: the banner and its download
of a whole home (jupyter-archive in the participant's own server), then at the closing time the
servers stopped as ``closed``, participants refused with the organizers' message, staff still in,
and every home left where it was."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import signal
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ..harness.browser import login, new_session
from ..harness.hub import wait_for
from .test_e2e import ServiceHub, open_service

pytestmark = pytest.mark.e2e

MESSAGE = "The workshop has ended. For a copy of your work, write to hub-admins@example.org."


def make_home(home):
    (home / "data").mkdir(parents=True)
    (home / "notebook.ipynb").write_text('{"cells": []}')
    (home / "data" / "résultats 1.csv").write_bytes(b"a,b\n1,2\n")
    (home / ".config").mkdir()
    (home / ".config" / "settings").write_text("kept")
    (home / "shared").symlink_to("/usr")  # like ~/shared: a link to a directory elsewhere


def hub_with_closing(root, closing: datetime) -> ServiceHub:
    """A hub closing at ``closing``; its servers outlive it (cleanup_servers off), as a hub
    restarted by ``helm upgrade`` leaves the user pods running."""
    closing_text = closing.isoformat()
    settings = {"closing": closing_text, "timezone": "America/Denver", "idle_timeout": 0}
    allow_root = ' + ["--allow-root"]' if os.getuid() == 0 else ""
    extra = f"""
from jupyterhub_workshop.hubconfig.services import closing_banner
c.WorkshopAuthenticator.closing = {closing_text!r}
c.WorkshopAuthenticator.closing_message = {MESSAGE!r}
c.JupyterHub.template_vars = {{"announcement": closing_banner({closing_text!r}, 2, "America/Denver")}}
c.JupyterHub.cleanup_servers = False
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]{allow_root}
"""
    return ServiceHub(root, settings, extra_config=extra)


def server_pid(hub: ServiceHub, name: str) -> int:
    """The process id of a user's server (in its spawner state), to end it if the test fails."""
    return hub.hub.api(f"/users/{name}")["servers"][""]["state"]["pid"]


def test_the_banner_downloads_the_home_then_the_hub_closes_and_nothing_is_lost(tmp_path):
    pytest.importorskip("jupyter_archive", reason="jupyter-archive (the demo extra) serves the download")
    closing = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    make_home(tmp_path / "homes" / "ws001")
    hub = hub_with_closing(tmp_path, closing).start()
    pids: list[int] = []
    try:

        async def before_the_closing():
            async with new_session() as s:
                assert (await login(s, hub.url, "ws001", hub.cards["ws001"].password)).ok
                async with s.get(f"{hub.url}/hub/home") as r:
                    home = await r.text()
                local = closing.astimezone(ZoneInfo("America/Denver"))
                assert f"This hub closes on {local:%a %d %b} at {local:%H:%M} (America/Denver)." in home
                link = re.search(r'Download your work: <a href="([^"]+)"', home).group(1)
                assert link == "/services/workshop/download"
                hub.spawn("ws001")
                pids.append(server_pid(hub, "ws001"))
                # a browser follows the link from the hub's page: the Referer is that page
                async with s.get(hub.url + link, headers={"Referer": f"{hub.url}/hub/home"}) as r:
                    assert r.status == 200, await r.text()
                    assert r.url.path == "/user/ws001/directories/"
                    assert r.url.query["archiveFormat"] == "zip" and r.url.query["followSymlinks"] == "false"
                    archive = zipfile.ZipFile(io.BytesIO(await r.read()))
                files = {name: archive.read(name) for name in archive.namelist()}
                expected = {
                    "ws001/notebook.ipynb": b'{"cells": []}',
                    "ws001/data/résultats 1.csv": b"a,b\n1,2\n",
                    "ws001/.config/settings": b"kept",  # hidden files are work too
                }
                # with whatever the server itself wrote there (.local, .ipython, ...)
                assert {name: files.get(name) for name in expected} == expected
                assert all(name.startswith("ws001/") for name in files)
                assert not any(name.startswith("ws001/shared") for name in files)  # a link, not followed
            async with new_session() as s:
                assert (await login(s, hub.url, "wsinstructor01", hub.cards["wsinstructor01"].password)).ok
                status, page = await open_service(s, hub)
                assert status == 200 and "The hub closes on <strong>" in page
                assert re.search(r'id="closing-downloads"><strong>1</strong> person has asked', page)
            hub.spawn("wsinstructor01")
            pids.append(server_pid(hub, "wsinstructor01"))

        asyncio.run(before_the_closing())
        assert len(set(pids)) == 2
        hub.stop()

        # the organizer sets the closing to now and restarts the hub: the servers run on (the
        # same hub and usage databases; new cards for the same names)
        shutil.rmtree(tmp_path / "cards")
        closing = datetime.now(UTC).replace(microsecond=0)
        hub = hub_with_closing(tmp_path, closing).start()
        wait_for(
            lambda: (
                sorted(hub.query("SELECT username, stop_reason FROM workshop_sessions"))
                == [("ws001", "closed"), ("wsinstructor01", "closed")]
            ),
            30,
            message="the servers to be stopped at the closing, as closed",
        )
        assert not hub.running("ws001") and not hub.running("wsinstructor01")

        async def after_the_closing():
            async with new_session() as s:
                refused = await login(s, hub.url, "ws002", hub.cards["ws002"].password)
                assert refused.status == 403 and MESSAGE in refused.text
            async with new_session() as s:  # staff still sign in: the report, the archive
                assert (await login(s, hub.url, "wsinstructor01", hub.cards["wsinstructor01"].password)).ok
                status, page = await open_service(s, hub)
                assert "The hub <strong>closed</strong>" in page and "closed <strong>2</strong>" in page
                status, report = await open_service(s, hub, "report.html")
                assert status == 200 and "closed 2" in report

        asyncio.run(after_the_closing())
        # nothing deleted: the home is where it was
        home = tmp_path / "homes" / "ws001"
        assert (home / "data" / "résultats 1.csv").read_bytes() == b"a,b\n1,2\n"
        assert (home / "shared").is_symlink()
    finally:
        hub.stop()
        for pid in set(pids):  # servers left running by a failure: they outlive the hub by design
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
