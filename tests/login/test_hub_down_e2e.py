"""A card changed while the hub is down does not keep working after the hub starts again: a real
hub, the real proxy, real JupyterLab servers left running across the restart (as Zero to
JupyterHub does, ``cleanup_servers = False``), browser-like sessions with cookies.

While the hub is down there is no "before" in its memory to compare with; it compares with what
it last saw of each card (``WorkshopAuthenticator.seen_file``) at its next start.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from jupyterhub_workshop.cli import main as cli
from jupyterhub_workshop.login.accounts import load_accounts, save_accounts
from jupyterhub_workshop.login.passwords import hash_password
from jupyterhub_workshop.login.seen import SEEN_FILE_NAME, parse_seen

from ..harness.browser import login, new_session
from ..harness.hub import poll, wait_for
from .test_revocation_e2e import access, signed_in_with_a_server, workshop_hub

pytestmark = [pytest.mark.e2e, pytest.mark.jh55]


def server_pids(home: Path) -> set[int]:
    """The single-user servers running in ``home``, from the runtime files jupyter_server writes
    (and removes when it exits cleanly) and that the process is that server."""
    pids = set()
    for info in home.glob(".local/share/jupyter/runtime/jpserver-*.json"):
        try:
            pid = json.loads(info.read_text())["pid"]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError):
            continue
        if b"jupyterhub.singleuser" in cmdline:
            pids.add(pid)
    return pids


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"  # a zombie serves nobody


def signal_all(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


@pytest.fixture
def workshop(tmp_path):
    hub, cards = workshop_hub(tmp_path, 3)
    # as on Kubernetes: the hub's restart leaves the single-user servers running
    hub.config_text += "c.JupyterHub.cleanup_servers = False\n"
    try:
        yield hub, tmp_path, cards
    finally:
        hub.stop()
        # the servers outlive the hub by design here: stop every one the test started
        pids = set().union(*(server_pids(home) for home in (tmp_path / "homes").glob("*")))
        signal_all(pids, signal.SIGTERM)
        try:
            wait_for(lambda: not any(map(alive, pids)), 20, message="the servers to exit")
        finally:
            signal_all(list(filter(alive, pids)), signal.SIGKILL)


async def test_a_card_reissued_or_revoked_while_the_hub_was_down_is_ended_at_its_start(workshop):
    hub, root, cards = workshop
    accounts_file = root / "cards" / "accounts.yaml"
    hub.start()
    # the first start knows nothing yet (no session ended), and writes what it saw
    hub.wait_log("No record of the cards the hub saw last")
    seen = wait_for(lambda: (root / "hub" / SEEN_FILE_NAME).exists(), message="the seen file")
    assert seen
    assert set(parse_seen((root / "hub" / SEEN_FILE_NAME).read_text())) == set(cards)

    async with new_session() as finder1, new_session() as finder2, new_session() as keeper:
        token1 = await signed_in_with_a_server(hub, "ws001", cards["ws001"].password, finder1)
        token2 = await signed_in_with_a_server(hub, "ws002", cards["ws002"].password, finder2)
        assert (await login(keeper, hub.url, "ws003", cards["ws003"].password)).ok
        (root / "homes" / "ws001" / "notes.txt").write_text("mine")
        [server1] = server_pids(root / "homes" / "ws001")
        [server2] = server_pids(root / "homes" / "ws002")

        hub.stop()  # SIGTERM: the hub exits, the servers keep running
        assert alive(server1) and alive(server2)

        # while the hub is down: the card desk's file gets ws001 a new password (what a
        # reissue writes), and the organizer revokes ws002 with the command line
        account = load_accounts(accounts_file)["ws001"]
        save_accounts(
            root / "hub" / "accounts-desk.yaml",
            [replace(account, password_hash=hash_password("new-pass-123"))],
        )
        assert cli(["credentials", "revoke", "--accounts", str(accounts_file), "ws002"]) == 0

        log_start = len(hub.log_text())
        hub.start()
        hub.wait_log(r"2 cards changed while the hub was down .*: ws001, ws002", start=log_start)

        # the old login cookies and the API tokens reach nobody from the hub's first answer (they
        # were ended before it served anything), not at a refresh
        for name, session, token in (("ws001", finder1, token1), ("ws002", finder2, token2)):
            still = await access(hub, name, session, token)
            assert not still["hub session"] and not still["API token"], (name, still)

        # the servers that survived the restart (each trusting the OAuth cookie it checked last
        # for minutes) are taken off the proxy and stopped once the hub has started
        async def servers_refused():
            return not any(
                [
                    (await access(hub, "ws001", finder1, token1))["server"],
                    (await access(hub, "ws002", finder2, token2))["server"],
                ]
            )

        await poll(servers_refused, 30, message="the old servers to refuse the finders")
        wait_for(lambda: not alive(server1) and not alive(server2), 60, message="the old servers to stop")

        async def no_servers():
            users = {u: hub.api(f"/users/{u}")["servers"] for u in ("ws001", "ws002")}
            return users == {"ws001": {}, "ws002": {}}

        await poll(no_servers, 30, message="the hub to record the servers stopped")
        async with keeper.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
            assert r.status == 200

    # the old passwords no longer sign in; the new one does, and the home is kept
    async with new_session() as s:
        assert not (await login(s, hub.url, "ws001", cards["ws001"].password)).ok
    async with new_session() as s:
        assert not (await login(s, hub.url, "ws002", cards["ws002"].password)).ok
    async with new_session() as owner:
        await signed_in_with_a_server(hub, "ws001", "new-pass-123", owner)
        async with owner.get(f"{hub.url}/user/ws001/api/contents/notes.txt") as r:
            assert r.status == 200 and (await r.json())["content"] == "mine"

    # once handled, the record is the new accounts: a plain restart ends nobody again
    def record_is_current():
        seen = parse_seen((root / "hub" / SEEN_FILE_NAME).read_text())
        return seen["ws002"].revoked

    wait_for(record_is_current, 30, message="the seen file to record the changes")
    async with new_session() as owner:
        assert (await login(owner, hub.url, "ws001", "new-pass-123")).ok
        hub.stop()
        log_start = len(hub.log_text())
        hub.start()
        async with owner.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
            assert r.status == 200
    assert "changed while the hub was down" not in hub.log_text()[log_start:]


async def test_an_unreadable_record_signs_nobody_out_and_is_rewritten(workshop):
    hub, root, cards = workshop
    (root / "hub").mkdir(parents=True, exist_ok=True)
    (root / "hub" / SEEN_FILE_NAME).write_text("{not json")
    hub.start()
    hub.wait_log("Cannot read the record of the cards the hub saw last")
    assert set(parse_seen((root / "hub" / SEEN_FILE_NAME).read_text())) == set(cards)
    async with new_session() as s:
        assert (await login(s, hub.url, "ws001", cards["ws001"].password)).ok
        async with s.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
            assert r.status == 200
