"""A person at a browser, as far as the hub can tell: cookies, the login form, XSRF."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


@dataclass
class LoginResult:
    status: int
    headers: dict
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 302

    def error_message(self) -> str:
        m = re.search(r'class="login_error">(.*?)</p>', self.text, re.S)
        return m.group(1).strip() if m else ""


def new_session() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies for 127.0.0.1
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(limit=0)
    )


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> LoginResult:
    async with session.get(f"{url}/hub/login") as r:
        page = await r.text()
    xsrf = XSRF_FIELD.search(page).group(1)
    async with session.post(
        f"{url}/hub/login",
        data={"username": username, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
    ) as r:
        return LoginResult(r.status, dict(r.headers), await r.text())
