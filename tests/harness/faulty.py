"""A real HTTP hop between a client and the hub that can fail, stall or slow requests.

The client under test keeps its normal code path; only what arrives over the wire changes.
"""

from __future__ import annotations

import asyncio
import threading

import aiohttp
from aiohttp import web

from .hub import free_port, wait_for


class FaultyProxy:
    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fail_next = 0  # answer the next N requests 503
        self.stall_next = 0  # hold the next N requests longer than any client timeout
        self.delete_delay = 0.0  # slow every DELETE (stop) by this many seconds
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status) as answered
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.stall_next > 0:
            self.stall_next -= 1
            self.seen.append((request.method, request.path_qs, 0))
            await self._closing.wait()  # until the proxy stops: longer than any client waits
            raise web.HTTPServiceUnavailable()
        if self.fail_next > 0:
            self.fail_next -= 1
            self.seen.append((request.method, request.path_qs, 503))
            return web.json_response({"status": 503, "message": "injected failure"}, status=503)
        if request.method == "DELETE" and self.delete_delay:
            await asyncio.sleep(self.delete_delay)
        # keep Host: links the hub builds (pagination "next" URLs) then point back through this hop
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            self.seen.append((request.method, request.path_qs, upstream.status))
            out = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() in ("content-type", "location", "retry-after")
            }
            return web.Response(status=upstream.status, body=body, headers=out)

    def start(self) -> FaultyProxy:
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)

            async def serve():
                self._closing = asyncio.Event()
                self._session = aiohttp.ClientSession()
                app = web.Application()
                app.router.add_route("*", "/{tail:.*}", self._handle)
                self._runner = web.AppRunner(app)
                await self._runner.setup()
                await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
                ready.set()

            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        wait_for(ready.is_set, 10, message="the faulty proxy to listen")
        return self

    def stop(self) -> None:
        if self._loop:

            async def close():
                self._closing.set()
                await self._session.close()
                await self._runner.cleanup()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
