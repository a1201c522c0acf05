"""WorkshopAuthenticator inside pytest-jupyterhub's MockHub (in-process hub, real proxy)."""

import asyncio
import os
import sys
import threading
import time

import pytest

from jupyterhub_workshop.login.accounts import revoke, save_accounts
from jupyterhub_workshop.login.authenticator import LoginRefused, WorkshopAuthenticator

from ..conftest import issue_accounts

pytestmark = pytest.mark.jh55


@pytest.fixture
def accounts_file(tmp_path):
    accounts, cards = issue_accounts("ws", participants=2, instructors=1)
    path = tmp_path / "accounts.yaml"
    save_accounts(path, accounts)
    return path, cards


@pytest.fixture(autouse=True)
def _hub_files_in_tmp(tmp_path, monkeypatch):
    # MockHub writes its cookie secret and proxy pid file to the working directory
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def hub(hub_app, accounts_file):
    path, _ = accounts_file
    return await hub_app(
        {
            "JupyterHub": {"authenticator_class": "workshop"},
            "WorkshopAuthenticator": {"accounts_file": str(path)},
        }
    )


async def test_hub_loads_the_workshop_authenticator_by_name(hub):
    assert isinstance(hub.authenticator, WorkshopAuthenticator)
    assert hub.authenticator.manage_groups
    # the accounts file is the allow list: nothing to add to allowed_users, no users created up front
    assert hub.authenticator.allowed_users == set()
    assert hub.users.count_active_users()["active"] == 0


async def test_names_are_normalized_before_lookup(hub, accounts_file):
    _, cards = accounts_file
    auth = hub.authenticator
    result = await auth.get_authenticated_user(
        None, {"username": "  WS001 ", "password": cards["ws001"].password}
    )
    assert result["name"] == "ws001"
    assert result["groups"] == []
    assert not result["admin"]


async def test_instructors_are_admins_in_the_instructor_group(hub, accounts_file):
    _, cards = accounts_file
    result = await hub.authenticator.get_authenticated_user(
        None, {"username": "wsinstructor01", "password": cards["wsinstructor01"].password}
    )
    assert result["admin"] is True
    assert result["groups"] == ["instructors"]


async def test_instructors_need_not_be_admins(hub_app, accounts_file):
    path, cards = accounts_file
    app = await hub_app(
        {
            "JupyterHub": {"authenticator_class": "workshop"},
            "WorkshopAuthenticator": {
                "accounts_file": str(path),
                "instructors_are_admins": False,
                "instructor_group": "leads",
            },
        }
    )
    result = await app.authenticator.get_authenticated_user(
        None, {"username": "wsinstructor01", "password": cards["wsinstructor01"].password}
    )
    assert not result["admin"] and result["groups"] == ["leads"]


async def test_beyond_the_cap_logins_are_told_busy(hub, accounts_file):
    _, cards = accounts_file
    auth = hub.authenticator
    auth.admission.limit = 1
    attempts = [
        auth.authenticate(None, {"username": "ws001", "password": cards["ws001"].password}) for _ in range(4)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert results[0]["name"] == "ws001"
    busy = [r for r in results[1:] if isinstance(r, LoginRefused)]
    assert len(busy) == 3
    assert all(r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 for r in busy)
    assert "try again" in busy[0].log_message
    assert auth.admission.in_flight == 0


async def test_unknown_names_cost_a_hash_check_like_wrong_passwords(hub):
    auth = hub.authenticator

    async def median_seconds(username):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert await auth.authenticate(None, {"username": username, "password": "wrong-password"}) is None
            times.append(time.perf_counter() - started)
        return sorted(times)[2]

    wrong = await median_seconds("ws002")
    unknown = await median_seconds("nobody")
    # a skipped hash check would be ~100x faster; argon2 makes both take tens of milliseconds
    assert unknown > 0.4 * wrong
    assert unknown > 0.005


async def test_overlong_input_fails_like_a_wrong_password(hub, accounts_file):
    _, cards = accounts_file
    auth = hub.authenticator
    assert (
        await auth.authenticate(None, {"username": "ws001", "password": cards["ws001"].password + "x" * 5000})
        is None
    )
    assert await auth.authenticate(None, {"username": "w" * 10_000, "password": "x"}) is None


async def test_revoked_and_out_of_window_accounts_are_not_allowed(hub, accounts_file):
    path, cards = accounts_file
    auth = hub.authenticator
    assert await auth.check_allowed("ws001")
    save_accounts(path, revoke(auth.accounts, ["ws001"]))
    assert not await auth.check_allowed("ws001")
    assert await auth.check_allowed("ws002")
    assert not await auth.check_allowed("nobody")


async def test_a_card_revoked_by_mistake_and_restored_signs_in_again(hub, accounts_file, capsys):
    from jupyterhub_workshop.cli import main

    path, cards = accounts_file
    auth = hub.authenticator
    before = path.read_bytes()
    login = {"username": "ws002", "password": cards["ws002"].password}
    assert main(["credentials", "revoke", "--accounts", str(path), "ws002"]) == 0
    assert await auth.get_authenticated_user(None, login) is None  # reloaded live: refused
    assert main(["credentials", "restore", "--accounts", str(path), "ws002"]) == 0
    assert path.read_bytes() == before  # the record round-trips, hash and all
    assert (await auth.get_authenticated_user(None, login))["name"] == "ws002"  # the same card works
    assert "Restored ws002" in capsys.readouterr().out


async def test_refresh_user_signs_out_revoked_accounts(hub, accounts_file):
    path, _ = accounts_file
    auth = hub.authenticator

    class User:
        name = "ws002"

    assert await auth.refresh_user(User()) is True
    save_accounts(path, revoke(auth.accounts, ["ws002"]))
    assert await auth.refresh_user(User()) is False


async def test_invalid_file_at_startup_names_file_and_line(tmp_path):
    bad = tmp_path / "accounts.yaml"
    bad.write_text("version: 1\naccounts:\n- {username: ws001, hash: nope}\n")
    with pytest.raises(ValueError, match=rf"{bad}:3: account 'ws001': hash must be an argon2id hash"):
        WorkshopAuthenticator(accounts_file=str(bad))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux-only")
async def test_hash_threads_run_at_a_lower_priority_than_the_hub(hub):
    auth = hub.authenticator

    def own_priority():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    hub_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread_priority = await asyncio.get_running_loop().run_in_executor(auth._executor, own_priority)
    assert thread_priority == min(19, hub_priority + auth.hash_thread_niceness)


async def test_after_the_closing_participants_are_refused_with_the_message(hub, accounts_file):
    _, cards = accounts_file
    auth = hub.authenticator

    class Participant:
        name = "ws001"

    auth.closing = "2000-01-01T00:00:00+01:00"  # long past
    auth.closing_message = "The workshop has ended. Write to hub-admins@example.org for your files."
    with pytest.raises(LoginRefused) as refused:
        await auth.authenticate(None, {"username": "ws001", "password": cards["ws001"].password})
    assert refused.value.status_code == 403
    assert refused.value.log_message == auth.closing_message
    assert not await auth.check_allowed("ws001")
    assert await auth.refresh_user(Participant()) is False  # signed out at the next refresh
    # instructors still sign in (the final report, the archive)
    assert (
        await auth.authenticate(
            None, {"username": "wsinstructor01", "password": cards["wsinstructor01"].password}
        )
    )["name"] == "wsinstructor01"
    assert await auth.check_allowed("wsinstructor01")
    # a wrong password after the closing is still just a failure: nothing said about the card
    assert await auth.authenticate(None, {"username": "ws002", "password": "wrong"}) is None
    auth.closing = "2999-01-01T00:00:00Z"
    assert await auth.check_allowed("ws001")
    with pytest.raises(Exception, match="no UTC offset"):
        auth.closing = "2026-07-17T18:00:00"
