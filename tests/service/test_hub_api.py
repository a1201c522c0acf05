"""The service's hub client against pytest-jupyterhub's MockHub (in-process hub, real proxy, real HTTP)."""

import pytest
from jupyterhub.tests.utils import add_user, public_url

from jupyterhub_workshop.service.hub_api import HubAPI, HubAPIError

pytestmark = pytest.mark.jh55


@pytest.fixture(autouse=True)
def _hub_files_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def hub(hub_app):
    app = await hub_app({"JupyterHub": {"concurrent_spawn_limit": 0}})
    admin = add_user(app.db, app, name="operator", admin=True)
    token = admin.new_api_token()
    client = HubAPI(public_url(app) + "hub/api", token, page_size=50)
    yield app, client
    client.close()


async def test_pages_through_every_user(hub):
    app, client = hub
    for i in range(120):
        add_user(app.db, app, name=f"ws{i:03d}")
    names = [u["name"] async for u in client.users(state="inactive")]
    assert len(names) == len(set(names))  # no user twice across pages
    assert {f"ws{i:03d}" for i in range(120)} <= set(names)
    assert client.requests == -(-len(names) // 50)  # one request per page of 50


async def test_stops_a_running_server_and_reports_gone_ones(hub):
    app, client = hub
    user = add_user(app.db, app, name="ws001")
    await user.spawn()
    ready = [u["name"] async for u in client.users(state="ready")]
    assert ready == ["ws001"]
    assert await client.stop_server("ws001") in ("stopped", "gone")
    assert not user.spawner.active
    assert await client.stop_server("ws001") in ("stopped", "gone")  # already stopped: fine
    assert await client.stop_server("nobody-here") == "gone"


async def test_errors_that_are_not_retryable_are_raised(hub):
    app, client = hub
    client.token = "not-a-token"
    with pytest.raises(HubAPIError) as info:
        async for _ in client.users():
            pass
    assert info.value.status == 403
