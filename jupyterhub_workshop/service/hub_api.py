"""The service's JupyterHub REST client: paged listing, retries with backoff, bounded stops.

It only lists users' servers and stops servers: it never deletes users, volumes or data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

PAGINATION = "application/jupyterhub-pagination+json"
RETRY_STATUSES = {429, 500, 502, 503, 504}


def _decode(body: bytes) -> object:
    """The hub answers JSON; a proxy or ingress in front of it may answer an HTML page."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class HubAPIError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"hub answered {status}: {message}")
        self.status = status


@dataclass
class HubAPI:
    api_url: str  # e.g. http://127.0.0.1:8081/hub/api
    token: str
    concurrency: int = 10
    retries: int = 5
    timeout: float = 20.0
    backoff: float = 0.5
    page_size: int = 200
    stop_wait: float = 120.0  # how long to follow a 202 "slow to stop"
    log: logging.Logger = logging.getLogger("jupyterhub_workshop.service")

    def __post_init__(self):
        self.api_url = self.api_url.rstrip("/")
        self._limit = asyncio.Semaphore(self.concurrency)
        self.requests = 0  # count, for benchmarks and logs
        self._client = AsyncHTTPClient(force_instance=True, max_clients=max(self.concurrency, 10))

    def close(self) -> None:
        self._client.close()

    async def request(
        self, method: str, path: str, *, accept: str = "application/json"
    ) -> tuple[int, object]:
        """One API call; retries 5xx, 429 and network errors with exponential backoff and jitter."""
        url = f"{self.api_url}{path}"
        for attempt in range(self.retries + 1):
            request = HTTPRequest(
                url,
                method=method,
                headers={"Authorization": f"token {self.token}", "Accept": accept},
                request_timeout=self.timeout,
                allow_nonstandard_methods=True,
                body=b"" if method in ("POST", "PUT", "PATCH") else None,
            )
            status, body, error = 599, b"", ""
            async with self._limit:
                self.requests += 1
                try:
                    response = await self._client.fetch(request, raise_error=False)
                    status, body = response.code, response.body or b""
                    error = response.reason or ""
                except (TimeoutError, HTTPClientError, OSError) as e:
                    error = str(e)
            if status not in RETRY_STATUSES and status != 599:
                return status, _decode(body)
            if attempt == self.retries:
                raise HubAPIError(status, f"{method} {path} failed after {attempt + 1} tries: {error}")
            delay = self.backoff * 2**attempt * (0.5 + random.random())
            self.log.warning("%s %s: %s %s; retrying in %.1fs", method, path, status, error, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _users_page(self, state: str, offset: int) -> object:
        query = urlencode({"state": state, "offset": offset, "limit": self.page_size})
        status, page = await self.request("GET", f"/users?{query}", accept=PAGINATION)
        if status != 200:
            raise HubAPIError(status, "listing users")
        return page

    async def users(self, state: str = "ready") -> AsyncIterator[dict]:
        """Every user with a server in ``state``, page by page (the hub caps pages at 200).

        The next page is requested before this one is handed out, so the hub builds it while
        the caller works through the current one.
        """
        fetching = asyncio.ensure_future(self._users_page(state, 0))
        try:
            while fetching is not None:
                page = await fetching
                fetching = None
                following = page.get("_pagination", {}).get("next") if isinstance(page, dict) else None
                if following:
                    fetching = asyncio.ensure_future(self._users_page(state, following["offset"]))
                for user in page["items"] if isinstance(page, dict) else page:
                    yield user
        finally:
            if fetching is not None:
                fetching.cancel()

    async def user(self, name: str) -> dict | None:
        """One user's model (None if there is no such user)."""
        status, model = await self.request("GET", f"/users/{quote(name, safe='')}")
        if status == 404:
            return None
        if status != 200:
            raise HubAPIError(status, f"reading user {name}")
        return model

    def _server_path(self, user: str, server: str) -> str:
        path = f"/users/{quote(user, safe='')}"
        return f"{path}/servers/{quote(server, safe='')}" if server else f"{path}/server"

    async def stop_server(self, user: str, server: str = "") -> str:
        """Stop one server; returns "stopped", "gone" or "timeout" (still stopping)."""
        status, body = await self.request("DELETE", self._server_path(user, server))
        if status == 204:
            return "stopped"
        if status == 404 or (status == 400 and "not running" in json.dumps(body)):
            return "gone"
        if status != 202:
            raise HubAPIError(status, f"stopping {user}/{server}: {body}")
        # 202: the hub is still stopping it; follow until it is gone
        deadline = time.monotonic() + self.stop_wait
        delay = 0.2
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
            status, model = await self.request("GET", f"/users/{quote(user, safe='')}")
            if status == 404:
                return "gone"
            servers = (model or {}).get("servers", {})
            if server not in servers or not servers[server].get("pending"):
                return "stopped"
        return "timeout"
