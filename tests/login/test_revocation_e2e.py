"""A revoked or reissued card stops working everywhere within seconds: a real hub, the real
proxy, a real JupyterLab single-user server, a browser-like session with cookies.

What a finder of a lost card holds: a hub login cookie, the single-user server's OAuth cookie,
an API token. The hub's ``auth_refresh_age`` and the server's ``HubAuth.cache_max_age`` would
keep each working for 300 s; the authenticator ends them when it notices the change.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from jupyterhub_workshop.cli import main as cli
from jupyterhub_workshop.login.accounts import load_accounts, save_accounts
from jupyterhub_workshop.login.issuing import Batch, generate
from jupyterhub_workshop.login.passwords import hash_password
from jupyterhub_workshop.login.printing import read_cards_csv

from ..harness.browser import login, new_session
from ..harness.hub import HubProcess, poll

pytestmark = [pytest.mark.e2e, pytest.mark.jh55]

LIMIT = 30  # seconds: the bound from change to refused, for every path

CONFIG = """
import sys
c.JupyterHub.authenticator_class = "workshop"
c.WorkshopAuthenticator.accounts_file = {accounts!r}
c.WorkshopAuthenticator.desk_file = {desk!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r}
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"] if {root} else []
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
"""


def workshop_hub(root, participants: int) -> tuple[HubProcess, dict]:
    """A hub (not started) in ``root``/hub for new cards in ``root``/cards, homes in ``root``/homes."""
    import os

    generate(root / "cards", Batch("ws", participants, 1))
    cards = {c.username: c for c in read_cards_csv(root / "cards" / "cards.csv")}
    config = CONFIG.format(
        accounts=str(root / "cards" / "accounts.yaml"),
        desk=str(root / "hub" / "accounts-desk.yaml"),
        homes=str(root / "homes" / "{username}"),
        root=os.getuid() == 0,
    )
    return HubProcess(root / "hub", config), cards


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("revocation")
    process, cards = workshop_hub(root, 4)
    process.start()
    yield process, root, cards
    process.stop()


async def signed_in_with_a_server(hub, name, password, session):
    """Log in, start the server, open JupyterLab (the OAuth dance), make an API token."""
    assert (await login(session, hub.url, name, password)).ok
    hub.api(f"/users/{name}/server", method="POST", data=b"{}")

    async def ready():
        return (hub.api(f"/users/{name}")["servers"].get("") or {}).get("ready")

    await poll(ready, 60, message=f"{name}'s server")
    async with session.get(f"{hub.url}/user/{name}/lab") as r:
        assert r.status == 200, await r.text()
    async with session.get(f"{hub.url}/user/{name}/api/contents") as r:
        assert r.status == 200
    token = hub.api(f"/users/{name}/tokens", method="POST", data=json.dumps({"note": "finder"}).encode())[
        "token"
    ]
    return token


async def access(hub, name, session, token) -> dict:
    """What still works: the hub session, the server through its cookie, the API token."""
    async with session.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
        hub_session = r.status == 200
    async with session.get(f"{hub.url}/user/{name}/api/contents", allow_redirects=False) as r:
        server = r.status == 200
    async with (
        new_session() as fresh,
        fresh.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}) as r,
    ):
        api = r.status == 200
    return {"hub session": hub_session, "server": server, "API token": api}


async def stopped(hub, name):
    async def gone():
        return hub.api(f"/users/{name}")["servers"] == {}

    await poll(gone, LIMIT, message=f"{name}'s server to stop")


async def time_until_refused(hub, name, session, token) -> float:
    started = time.monotonic()

    async def all_refused():
        return not any((await access(hub, name, session, token)).values())

    await poll(all_refused, LIMIT, interval=0.2, message=f"everything of {name} to be refused")
    return time.monotonic() - started


async def test_cli_revoke_ends_the_cookie_the_server_and_the_tokens(hub, record_property):
    process, root, cards = hub
    async with new_session() as session:
        token = await signed_in_with_a_server(process, "ws001", cards["ws001"].password, session)
        assert all((await access(process, "ws001", session, token)).values())
        assert (
            cli(["credentials", "revoke", "--accounts", str(root / "cards" / "accounts.yaml"), "ws001"]) == 0
        )
        seconds = await time_until_refused(process, "ws001", session, token)
    record_property("cli revoke to refused (s)", round(seconds, 2))
    print(f"CLI revoke -> every access refused in {seconds:.2f} s")
    assert seconds < LIMIT
    async with new_session() as s:
        assert not (await login(s, process.url, "ws001", cards["ws001"].password)).ok
    await stopped(process, "ws001")


async def test_a_reissue_in_the_desk_file_ends_the_old_password_and_keeps_the_home(hub, record_property):
    process, root, cards = hub
    async with new_session() as session:
        token = await signed_in_with_a_server(process, "ws002", cards["ws002"].password, session)
        (root / "homes" / "ws002" / "notes.txt").write_text("mine")
        # what the card desk writes: the account with a new hash, on the hub's volume
        account = load_accounts(root / "cards" / "accounts.yaml")["ws002"]
        save_accounts(
            root / "hub" / "accounts-desk.yaml",
            [replace(account, password_hash=hash_password("new-pass-123"))],
        )
        seconds = await time_until_refused(process, "ws002", session, token)
    record_property("desk reissue to refused (s)", round(seconds, 2))
    print(f"reissue -> every access refused in {seconds:.2f} s")
    await stopped(process, "ws002")
    async with new_session() as s:
        assert not (await login(s, process.url, "ws002", cards["ws002"].password)).ok
    async with new_session() as s:
        assert (await login(s, process.url, "ws002", "new-pass-123")).ok
        process.api("/users/ws002/server", method="POST", data=b"{}")

        async def ready():
            return (process.api("/users/ws002")["servers"].get("") or {}).get("ready")

        await poll(ready, 60, message="ws002's server again")
        async with s.get(f"{process.url}/user/ws002/lab") as r:
            assert r.status == 200
        async with s.get(f"{process.url}/user/ws002/api/contents/notes.txt") as r:
            assert r.status == 200 and (await r.json())["content"] == "mine"
    # the organizer's file is unchanged, and the other cards were not touched
    assert load_accounts(root / "cards" / "accounts.yaml")["ws002"].password_hash == account.password_hash
    async with new_session() as s:
        assert (await login(s, process.url, "ws003", cards["ws003"].password)).ok
