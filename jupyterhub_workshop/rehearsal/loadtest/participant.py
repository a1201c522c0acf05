"""One simulated participant: what a person at a browser does, over HTTP and a websocket.

Opens the login page, posts the form with a card's username and password (XSRF included),
starts the server (``GET /hub/spawn``, as the home page's button does), follows the spawn's
progress event stream until the server is ready, opens it (the OAuth dance with cookies),
starts a kernel, runs code over the kernel websocket (Jupyter messaging protocol 5.3) and
checks the output, and optionally stops the kernel and the server.

429 and 503 answers with ``Retry-After`` are honoured (wait, then ask again) and counted.
Every failure becomes a :class:`~.report.StepError` with a short
``kind`` to group by; nothing a hub answers makes the load test itself crash.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from .notebook import Lesson, NotebookError, lesson_from_json, think_times
from .report import CellRun, StepError, UserResult
from .resources import METRICS_PATH, MISSING, Usage, parse_kernel_usage, parse_metrics

XSRF_FIELD = re.compile(
    r"""<input[^>]*name=["']_xsrf["'][^>]*value=["']([^"']+)["']|"""
    r"""<input[^>]*value=["']([^"']+)["'][^>]*name=["']_xsrf["']"""
)
LOGIN_ERROR = re.compile(r'class="login_error"[^>]*>(.*?)</', re.S)
ERROR_MESSAGE = re.compile(r"<p>(.*?)</p>", re.S)
DEFAULT_RETRY_AFTER = 5.0
# what a browser sends when a person opens a page (the hub then checks what it must)
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}


class KernelDied(Exception):
    pass


class Failed(Exception):
    def __init__(self, step: str, kind: str, detail: str = ""):
        super().__init__(f"{step}: {kind}: {detail}")
        self.error = StepError(step, kind, detail)


@dataclass
class Options:
    url: str  # the hub's public URL, without a trailing slash
    code: str = ""  # empty: no kernel and no code steps
    expect: str | None = None  # text the code's output must contain
    iterations: int = 1
    stop: bool = True
    kernel_name: str | None = None  # None: the server's default kernel
    login_timeout: float = 120.0  # including waits for Retry-After
    spawn_timeout: float = 300.0  # from pressing "start" to the server answering, retries included
    kernel_timeout: float = 120.0
    code_timeout: float = 60.0
    stop_timeout: float = 120.0
    request_timeout: float = 60.0  # any single HTTP request
    # with notebooks (``lessons``): the cells replace ``code``
    lessons: tuple = ()  # notebook.Lesson, run in order, each in a kernel of its own
    think: tuple[float, float] = (0.0, 0.0)  # seconds before each cell but the first, drawn per cell
    seed: int | None = 0
    cell_timeout: float = 300.0  # then the kernel is interrupted and the cell recorded as timed out
    interrupt_grace: float = 30.0  # an interrupted kernel must answer within this, or the run fails
    stop_on_error: bool = False  # stop the participant's cells at its first failing cell
    sample_interval: float = 2.0  # seconds between resource samples (0: none)


def retry_after(headers, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), ``default`` if absent."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default


def page_message(html: str, limit: int = 200) -> str:
    """The human message of a hub page (login error or error page), as plain text."""
    m = LOGIN_ERROR.search(html) or ERROR_MESSAGE.search(html)
    text = re.sub(r"<[^>]+>", " ", m.group(1)) if m else ""
    return " ".join(unescape(text).split())[:limit]


def jupyter_message(
    msg_type: str, content: dict, session: str, username: str, channel: str = "shell"
) -> dict:
    """A Jupyter messaging protocol 5.3 message for the JSON websocket (``channel`` included)."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "username": username,
            "session": session,
            "msg_type": msg_type,
            "version": "5.3",
            "date": datetime.now(UTC).isoformat(),
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "buffers": [],
        "channel": channel,
    }


def collect_output(messages: list[dict]) -> str:
    """What a notebook would show for these iopub messages: streams, results, errors."""
    out = []
    for m in messages:
        kind, c = m.get("msg_type") or m.get("header", {}).get("msg_type"), m.get("content", {})
        if kind == "stream":
            out.append(c.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            out.append(str(c.get("data", {}).get("text/plain", "")) + "\n")
        elif kind == "error":
            out.append(f"{c.get('ename', '')}: {c.get('evalue', '')}\n")
    return "".join(out)


class Participant:
    """One card, one browser: cookies of its own, connections from a shared pool."""

    def __init__(
        self,
        options: Options,
        username: str,
        password: str,
        result: UserResult,
        connector: aiohttp.BaseConnector,
        on_stage: Callable[[str], None] = lambda stage: None,
    ):
        self.o = options
        self.username = username
        self.password = password
        self.result = result
        self.on_stage = on_stage
        self.session = aiohttp.ClientSession(
            connector=connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=options.request_timeout),
        )
        self.server_url: str | None = None  # e.g. http://hub/user/name/
        self.kernel_id: str | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.spawn_requested = False  # a server this test started: stopped at the end
        self.kernel_session = uuid.uuid4().hex
        self.session_id: str | None = None  # with notebooks: the notebook's session
        self.current_cell: str | None = None  # the cell running or last run: what samples are charged to
        self._sampler: asyncio.Task | None = None
        self.lessons: dict[str, Lesson] = {}  # server path -> the lesson as run (cells read from the server)
        self.t0 = time.monotonic()

    # -- helpers ------------------------------------------------------------------------

    def _xsrf_for(self, url: str) -> str | None:
        morsel = self.session.cookie_jar.filter_cookies(URL(url)).get("_xsrf")
        return morsel.value if morsel is not None else None

    def _api_headers(self, url: str) -> dict:
        """What a page's fetch() sends: the XSRF token from the cookie for that path."""
        headers = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}
        token = self._xsrf_for(url)
        if token:
            headers["X-XSRFToken"] = token
        return headers

    async def _wait_retry(self, key: str, headers, deadline: float, step: str) -> None:
        delay = retry_after(headers)
        self.result.retries[key] += 1
        if time.monotonic() + delay > deadline:
            raise Failed(
                step,
                "timeout while told to retry later",
                f"Retry-After {delay:g}s would pass the step's deadline",
            )
        self.result.waited[key] += delay
        await asyncio.sleep(delay)

    async def _timed(self, step: str, coro: Awaitable, timeout: float):
        began = time.monotonic()
        try:
            value = await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            if time.monotonic() - began >= timeout - 0.05:
                raise Failed(step, "timeout", f"no result after {timeout:g}s") from None
            raise Failed(step, "timeout", f"a request got no answer in {self.o.request_timeout:g}s") from None
        self.result.record(step, time.monotonic() - began)
        return value

    # -- the journey ------------------------------------------------------------------------

    async def run(self) -> None:
        r = self.result
        step = "login"
        try:
            self.on_stage("login")
            await self._timed("login", self.login(), self.o.login_timeout)
            step = "spawn"
            self.on_stage("spawn")
            await self._timed("spawn", self.spawn(), self.o.spawn_timeout)
            if self.o.lessons:
                step = "kernel"
                await self.run_lessons()
            elif self.o.code:
                step = "kernel"
                self.on_stage("kernel")
                await self._timed("kernel", self.start_kernel(), self.o.kernel_timeout)
                step = "code"
                self.on_stage("code")
                for _ in range(max(1, self.o.iterations)):
                    await self._timed("code", self.run_code(), self.o.code_timeout)
            if self.o.stop and not r.found_running:
                step = "stop"
                self.on_stage("stop")
                await self._timed("stop", self.stop(), self.o.stop_timeout)
            elif self.kernel_id:
                await self._cleanup_kernel()
            self.on_stage("done")
        except Failed as e:
            r.error = e.error
        except aiohttp.ClientError as e:
            r.error = StepError(step, f"connection error: {type(e).__name__}", str(e)[:300])
        except TimeoutError:
            r.error = StepError(step, "timeout", f"a request took longer than {self.o.request_timeout:g}s")
        except Exception as e:  # a surprise in the hub's answers must not end the whole test
            r.error = StepError(step, f"unexpected {type(e).__name__}", str(e)[:300])
        if r.error is not None:
            self.on_stage("failed")
            if self.o.stop and self.spawn_requested:
                try:  # leave nothing running behind a failed participant
                    await asyncio.wait_for(self._cleanup_all(), self.o.stop_timeout)
                except Exception:
                    pass

    async def close(self) -> None:
        await self._stop_sampling()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        await self.session.close()

    # -- login --------------------------------------------------------------------------------

    async def login(self) -> None:
        url = f"{self.o.url}/hub/login"
        async with self.session.get(url, headers=NAVIGATE) as resp:
            page = await resp.text()
            final = resp.url
        if resp.status != 200:
            raise Failed("login", f"login page HTTP {resp.status}", page_message(page))
        m = XSRF_FIELD.search(page)
        xsrf = (m.group(1) or m.group(2)) if m else self._xsrf_for(url)
        if 'name="password"' not in page and "name='password'" not in page:
            raise Failed(
                "login",
                "no login form",
                f"{final} has no password field (an OAuth authenticator? cards need the workshop one)",
            )
        deadline = time.monotonic() + self.o.login_timeout
        while True:
            data = {"username": self.username, "password": self.password}
            if xsrf:
                data["_xsrf"] = xsrf
            async with self.session.post(url, data=data, allow_redirects=False, headers=NAVIGATE) as resp:
                body = await resp.text()
                status, headers = resp.status, resp.headers
            if status in (302, 303):
                return
            if status in (429, 503) and "Retry-After" in headers:
                await self._wait_retry(
                    "login_busy" if status == 503 else "login_backoff", headers, deadline, "login"
                )
                continue
            if status == 403:
                raise Failed(
                    "login",
                    "invalid username or password (HTTP 403)",
                    f"{self.username}: {page_message(body)}",
                )
            raise Failed("login", f"HTTP {status}", page_message(body))

    # -- spawn --------------------------------------------------------------------------------

    async def _server_running(self) -> bool:
        """Whether this card's default server runs (or starts) already: someone is using it, so
        the test uses it too but leaves it running."""
        url = f"{self.o.url}/hub/api/users/{self.username}"
        async with self.session.get(url, headers=self._api_headers(url)) as resp:
            model = await resp.json(content_type=None) if resp.status == 200 else {}
        return bool((model or {}).get("servers", {}).get(""))

    async def spawn(self) -> None:
        deadline = time.monotonic() + self.o.spawn_timeout
        user_prefix = f"/user/{self.username}/"
        self.result.found_running = await self._server_running()
        while True:
            async with self.session.get(
                f"{self.o.url}/hub/spawn", allow_redirects=False, headers=NAVIGATE
            ) as resp:
                body = await resp.text()
                status, headers = resp.status, resp.headers
            if status == 429:
                await self._wait_retry("spawn_throttled", headers, deadline, "spawn")
                continue
            if status in (302, 303):
                location = urlsplit(headers.get("Location", "")).path
                if "/hub/login" in location:
                    raise Failed("spawn", "not logged in", f"/hub/spawn redirected to {location}")
                self.spawn_requested = not self.result.found_running
                break
            if status == 200 and "<form" in body:
                # an options form (profiles): take the defaults, as the API does without options
                if await self._spawn_by_api(deadline):
                    break
                continue
            raise Failed("spawn", f"HTTP {status}", page_message(body))

        ready_path = await self._wait_ready(deadline)
        server_path = ready_path or user_prefix
        if not server_path.endswith("/"):
            server_path += "/"
        self.server_url = self.o.url + server_path
        await self._open_server(deadline)

    async def _spawn_by_api(self, deadline: float) -> bool:
        url = f"{self.o.url}/hub/api/users/{self.username}/server"
        async with self.session.post(url, json={}, headers=self._api_headers(url)) as resp:
            body = await resp.text()
            status, headers = resp.status, resp.headers
        if status in (201, 202):
            self.spawn_requested = True
            return True
        if status == 400 and "already running" in body:
            return True
        if status == 429:
            await self._wait_retry("spawn_throttled", headers, deadline, "spawn")
            return False
        raise Failed("spawn", f"HTTP {status} from the spawn API", body[:300])

    async def _wait_ready(self, deadline: float) -> str | None:
        """Follow the progress event stream (as the spawn-pending page does) until ready.

        Returns the server's path from the ready event; falls back to polling the user model
        if the stream ends without a verdict.
        """
        url = f"{self.o.url}/hub/api/users/{self.username}/server/progress"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=max(1.0, deadline - time.monotonic()))
        async with self.session.get(
            url, headers={**self._api_headers(url), "Accept": "text/event-stream"}, timeout=timeout
        ) as resp:
            if resp.status == 200:
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    try:
                        event = json.loads(line[5:])
                    except ValueError:
                        continue
                    if event.get("failed"):
                        message = str(event.get("message", ""))
                        if message.strip() != "Spawn failed":
                            raise Failed("spawn", "spawn failed", message[:300])
                        # No reason given: the hub ended the stream while the spawn had finished
                        # but was not ready yet (e.g. the proxy route still being added). A person
                        # reloads the page; do the same and see whether the server comes up.
                        self.result.retries["spawn_failed_without_reason"] += 1
                        return await self._poll_ready(deadline, gone=("spawn failed", message))
                    if event.get("ready"):
                        return urlsplit(event.get("url") or "").path or None
            elif resp.status not in (404, 400):
                raise Failed("spawn", f"progress stream HTTP {resp.status}", page_message(await resp.text()))
        return await self._poll_ready(deadline)

    async def _poll_ready(self, deadline: float, gone=("server stopped while starting", "")) -> str | None:
        url = f"{self.o.url}/hub/api/users/{self.username}"
        while time.monotonic() < deadline:
            async with self.session.get(url, headers=self._api_headers(url)) as resp:
                model = await resp.json(content_type=None) if resp.status == 200 else None
            server = (model or {}).get("servers", {}).get("") or {}
            if server.get("ready"):
                return urlsplit(server.get("url") or "").path or None
            if model is not None and not server and model.get("pending") is None:
                raise Failed("spawn", gone[0], (gone[1] + " (no server and nothing pending)").strip())
            await asyncio.sleep(0.5)
        raise Failed("spawn", "timeout", f"server not ready after {self.o.spawn_timeout:g}s")

    async def _open_server(self, deadline: float) -> None:
        """Load the server's default page through the proxy, OAuth redirects and all, until it
        answers (for JupyterLab, ``/user/NAME/`` redirects to ``/user/NAME/lab``)."""
        target = self.server_url
        prefix = urlsplit(self.server_url).path
        last = ""
        while True:
            async with self.session.get(target, headers=NAVIGATE) as resp:
                body = await resp.text()
                status, final = resp.status, resp.url.path
            if status < 500 and final.startswith(prefix) and "/oauth_callback" not in final:
                if (self.o.code or self.o.lessons) and status != 200:
                    raise Failed("spawn", f"server page HTTP {status}", f"{final}: {body[:200]}")
                if (
                    (self.o.code or self.o.lessons)
                    and not self._xsrf_for(self.server_url + "api/kernels")
                    and target == self.server_url
                ):
                    target = self.server_url + "lab"  # a default page that set no XSRF cookie: open Lab
                    continue
                return
            last = f"HTTP {status} at {final}"
            if status >= 500 and final.startswith(prefix):
                raise Failed("spawn", f"server answers HTTP {status}", body[:200])
            if time.monotonic() > deadline:
                raise Failed("spawn", "server does not answer", last)
            await asyncio.sleep(0.5)

    # -- kernel and code --------------------------------------------------------------------------

    async def start_kernel(self) -> None:
        url = self.server_url + "api/kernels"
        body = {"name": self.o.kernel_name} if self.o.kernel_name else {}
        headers = self._api_headers(url)
        if "X-XSRFToken" not in headers:
            raise Failed(
                "kernel", "no XSRF cookie from the single-user server", f"after loading {self.server_url}"
            )
        async with self.session.post(url, json=body, headers=headers) as resp:
            text = await resp.text()
            if resp.status != 201:
                raise Failed("kernel", f"start HTTP {resp.status}", text[:300])
            self.kernel_id = json.loads(text)["id"]
        await self._connect_kernel()

    async def _connect_kernel(self) -> None:
        """Open the kernel's websocket (as JupyterLab does) and check that it answers."""
        ws_url = URL(self.server_url + f"api/kernels/{self.kernel_id}/channels").with_query(
            session_id=self.kernel_session
        )
        ws_url = ws_url.with_scheme("wss" if ws_url.scheme == "https" else "ws")
        headers = self._api_headers(self.server_url + "api/kernels")
        try:
            self.ws = await self.session.ws_connect(
                ws_url,
                headers={"Sec-Fetch-Mode": "websocket", "X-XSRFToken": headers.get("X-XSRFToken", "")},
                heartbeat=30,
                max_msg_size=0,
            )
        except aiohttp.WSServerHandshakeError as e:
            raise Failed("kernel", f"websocket HTTP {e.status}", str(e)[:300]) from None
        reply, _ = await self._request("kernel_info_request", {}, "kernel")
        if reply.get("content", {}).get("status", "ok") != "ok":
            raise Failed("kernel", "kernel_info_reply not ok", json.dumps(reply.get("content"))[:300])

    async def _request(self, msg_type: str, content: dict, step: str) -> tuple[dict, list[dict]]:
        """Send on shell; return the reply and the iopub messages up to ``idle`` for it."""
        msg = jupyter_message(msg_type, content, self.kernel_session, self.username)
        await self.ws.send_str(json.dumps(msg))
        return await self._until_idle(msg["header"]["msg_id"], step)

    async def _until_idle(self, msg_id: str, step: str, keep_iopub: bool = True) -> tuple[dict, list[dict]]:
        """The shell reply to ``msg_id`` and its iopub messages, once the kernel is idle again.

        Raises :class:`KernelDied` when the kernel reports itself dead or restarting (out of
        memory, most often), ``Failed`` when the websocket closes."""
        reply, iopub, idle = None, [], False
        while reply is None or not idle:
            frame = await self.ws.receive()
            if frame.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                raise Failed(step, "kernel websocket closed", f"{frame.type.name} {frame.data or ''}"[:300])
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue  # binary frames: buffers we do not need
            m = json.loads(frame.data)
            kind = m.get("msg_type") or m.get("header", {}).get("msg_type")
            if kind == "status" and m.get("content", {}).get("execution_state") in ("dead", "restarting"):
                raise KernelDied(m["content"]["execution_state"])
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            m["msg_type"] = kind
            if m.get("channel") == "shell":
                reply = m
            elif m.get("channel") == "iopub":
                if kind == "status" and m.get("content", {}).get("execution_state") == "idle":
                    idle = True
                elif keep_iopub:
                    iopub.append(m)
        return reply, iopub

    async def run_code(self) -> None:
        reply, iopub = await self._request(
            "execute_request",
            {
                "code": self.o.code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "code",
        )
        content = reply.get("content", {})
        output = collect_output(iopub)
        if content.get("status") != "ok":
            raise Failed(
                "code",
                f"{content.get('ename', 'error')} in the code",
                f"{content.get('ename', '')}: {content.get('evalue', '')}"[:300],
            )
        if self.o.expect is not None and self.o.expect not in output:
            raise Failed("code", "unexpected output", f"expected {self.o.expect!r} in {output[:200]!r}")

    # -- notebooks -----------------------------------------------------------------------------

    async def run_lessons(self) -> None:
        """Every notebook in order, each in a kernel of its own (a session, as JupyterLab opens
        it), every code cell executed and timed; resources sampled meanwhile."""
        self.t0 = time.monotonic()
        self.on_stage("kernel")
        specs = await asyncio.wait_for(self._kernelspecs(), self.o.kernel_timeout)
        sampling = self.o.sample_interval > 0
        if sampling:
            await self.sample()
            if self.result.resources_missing is None:  # one lost answer is no reason to stop
                self._sampler = asyncio.create_task(self._sample_every(self.o.sample_interval))
        stopped = False
        for lesson in self.o.lessons:
            if stopped:
                break
            self.on_stage("kernel")
            lesson = await self._timed("kernel", self._open_lesson(lesson, specs), self.o.kernel_timeout)
            self.lessons[lesson.server_path] = lesson
            self.on_stage("code")
            thinks = think_times(
                self.o.seed, f"{self.username}:{lesson.name}", len(lesson.cells), self.o.think
            )
            for cell, pause in zip(lesson.cells, thinks, strict=True):
                if pause:
                    await asyncio.sleep(pause)
                run = await self.run_cell(cell)
                self.result.cells.append(run)
                self.result.record("code", run.seconds)
                if sampling:
                    await self.sample()
                if run.status == "died" or (run.status != "ok" and self.o.stop_on_error):
                    stopped = True
                    break
            await self._close_lesson()
        await self._stop_sampling()

    async def _kernelspecs(self) -> dict:
        url = self.server_url + "api/kernelspecs"
        async with self.session.get(url, headers=self._api_headers(url)) as resp:
            if resp.status != 200:
                raise Failed("kernel", f"kernelspecs HTTP {resp.status}", (await resp.text())[:200])
            return await resp.json(content_type=None)

    async def _open_lesson(self, lesson: Lesson, specs: dict) -> Lesson:
        """Put the notebook into the home (or read it where it is on the server, as opening it
        does), then start a kernel of its kernelspec through the sessions API and connect to it.
        Returns the lesson with its cells (read from the server for ``--notebook-path``)."""
        url = self.server_url + "api/contents/" + lesson.server_path
        headers = self._api_headers(url)
        if lesson.content is not None:
            body = {"type": "notebook", "format": "json", "content": lesson.content}
            async with self.session.put(url, json=body, headers=headers) as resp:
                if resp.status not in (200, 201):
                    raise Failed("kernel", f"upload HTTP {resp.status}", (await resp.text())[:300])
        else:
            async with self.session.get(url, params={"content": "1"}, headers=headers) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise Failed(
                        "kernel",
                        f"notebook not on the server (HTTP {resp.status})",
                        f"{lesson.server_path}: {text[:200]}",
                    )
            try:
                model = json.loads(text)
                lesson = lesson_from_json(
                    model.get("content") or {}, lesson.name, lesson.server_path, upload=False
                )
            except (NotebookError, ValueError) as e:
                raise Failed("kernel", "not a notebook the load test can run", str(e)[:300]) from None
        known = sorted((specs.get("kernelspecs") or {}).keys())
        kernel = lesson.kernel_name or specs.get("default") or ""
        if kernel not in known:
            raise Failed(
                "kernel",
                "the server has no such kernel",
                f"{lesson.name} asks for kernel {kernel!r}; the server has {', '.join(known) or 'none'}",
            )
        url = self.server_url + "api/sessions"
        body = {
            "path": lesson.server_path,
            "name": lesson.server_path.rsplit("/", 1)[-1],
            "type": "notebook",
            "kernel": {"name": kernel},
        }
        async with self.session.post(url, json=body, headers=self._api_headers(url)) as resp:
            text = await resp.text()
            if resp.status != 201:
                raise Failed("kernel", f"session HTTP {resp.status}", text[:300])
            model = json.loads(text)
        self.session_id = model["id"]
        self.kernel_id = model["kernel"]["id"]
        self.kernel_session = uuid.uuid4().hex
        await self._connect_kernel()
        return lesson

    async def _close_lesson(self) -> None:
        """Shut the notebook's kernel down (closing the notebook with its kernel)."""
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if getattr(self, "session_id", None):
            url = self.server_url + f"api/sessions/{self.session_id}"
            async with self.session.delete(url, headers=self._api_headers(url)) as resp:
                await resp.read()
            self.session_id = None
            self.kernel_id = None

    async def run_cell(self, cell) -> CellRun:
        """Execute one cell as JupyterLab does and wait for its reply and idle; a cell past
        ``cell_timeout`` is interrupted and recorded as timed out."""
        self.current_cell = cell.key
        msg = jupyter_message(
            "execute_request",
            {
                "code": cell.source,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            self.kernel_session,
            self.username,
        )
        msg_id = msg["header"]["msg_id"]
        began = time.monotonic()
        await self.ws.send_str(json.dumps(msg))
        try:
            try:
                reply, _ = await asyncio.wait_for(
                    self._until_idle(msg_id, "code", keep_iopub=False), self.o.cell_timeout
                )
            except TimeoutError:
                await self._interrupt()
                try:
                    await asyncio.wait_for(
                        self._until_idle(msg_id, "code", keep_iopub=False), self.o.interrupt_grace
                    )
                except TimeoutError:
                    raise Failed(
                        "code",
                        "kernel does not answer after an interrupt",
                        f"{cell.key} ran past --cell-timeout {self.o.cell_timeout:g}s and the kernel "
                        f"did not stop within {self.o.interrupt_grace:g}s of the interrupt",
                    ) from None
                return CellRun(
                    cell.key,
                    round(time.monotonic() - began, 4),
                    "timeout",
                    "Timeout",
                    f"interrupted after {self.o.cell_timeout:g}s",
                )
        except KernelDied as e:
            return CellRun(
                cell.key,
                round(time.monotonic() - began, 4),
                "died",
                "KernelDied",
                f"the kernel died ({e}) while the cell ran; out of memory?",
            )
        seconds = round(time.monotonic() - began, 4)
        content = (reply or {}).get("content", {})
        if content.get("status") == "ok":
            return CellRun(cell.key, seconds, "ok")
        return CellRun(
            cell.key,
            seconds,
            "error",
            str(content.get("ename", "error")),
            str(content.get("evalue", ""))[:300],
        )

    async def _interrupt(self) -> None:
        url = self.server_url + f"api/kernels/{self.kernel_id}/interrupt"
        async with self.session.post(url, headers=self._api_headers(url)) as resp:
            await resp.read()

    # -- resources --------------------------------------------------------------------------------

    async def sample(self, kernel: bool = False) -> None:
        """One reading of the server's jupyter-resource-usage API (and the kernel's own use)."""
        if self.result.resources_missing is not None:
            return
        url = self.server_url + METRICS_PATH
        try:
            async with self.session.get(url, headers=self._api_headers(url)) as resp:
                status = resp.status
                body = await resp.json(content_type=None) if status == 200 else None
            metrics = parse_metrics(body) if status == 200 else None
        except (ValueError, aiohttp.ClientError, TimeoutError):
            return  # one lost sample; the next one counts
        if metrics is None:
            if status == 404:
                self.result.resources_missing = MISSING.format(status=status)
            return
        kernel_rss = None
        if kernel and self.kernel_id:
            kurl = self.server_url + f"{METRICS_PATH}/kernel_usage/get_usage/{self.kernel_id}"
            try:
                async with self.session.get(kurl, headers=self._api_headers(kurl)) as resp:
                    if resp.status == 200:
                        kernel_rss = parse_kernel_usage(await resp.json(content_type=None))
            except (ValueError, aiohttp.ClientError, TimeoutError):
                pass
        if self.result.usage is None:
            self.result.usage = Usage()
        self.result.usage.add(time.monotonic() - self.t0, metrics, kernel_rss, self.current_cell)

    async def _sample_every(self, interval: float) -> None:
        while self.result.resources_missing is None:
            await asyncio.sleep(interval)
            await self.sample(kernel=True)

    async def _stop_sampling(self) -> None:
        task, self._sampler = getattr(self, "_sampler", None), None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- stop -----------------------------------------------------------------------------------

    async def _cleanup_kernel(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self.kernel_id:
            url = self.server_url + f"api/kernels/{self.kernel_id}"
            async with self.session.delete(url, headers=self._api_headers(url)) as resp:
                await resp.read()
                if resp.status not in (204, 404):
                    raise Failed("stop", f"kernel shutdown HTTP {resp.status}", (await resp.text())[:200])
            self.kernel_id = None

    async def stop(self) -> None:
        await self._cleanup_kernel()
        await self._stop_server()

    async def _stop_server(self) -> None:
        url = f"{self.o.url}/hub/api/users/{self.username}/server"
        deadline = time.monotonic() + self.o.stop_timeout
        while True:
            async with self.session.delete(url, headers=self._api_headers(url)) as resp:
                body = await resp.text()
                status, headers = resp.status, resp.headers
            if status in (204, 202):
                break
            if status == 429:
                await self._wait_retry("stop_throttled", headers, deadline, "stop")
                continue
            if status == 400 and "not running" in body:
                return
            raise Failed("stop", f"HTTP {status}", body[:300])
        if status == 202:  # stopping in the background: wait until it is gone
            model_url = f"{self.o.url}/hub/api/users/{self.username}"
            while time.monotonic() < deadline:
                async with self.session.get(model_url, headers=self._api_headers(model_url)) as resp:
                    model = await resp.json(content_type=None)
                if not model.get("servers", {}).get("") and not model.get("pending"):
                    return
                await asyncio.sleep(0.25)
            raise Failed("stop", "timeout", f"server still stopping after {self.o.stop_timeout:g}s")

    async def _cleanup_all(self) -> None:
        await self._stop_sampling()
        if self.kernel_id and self.server_url:
            try:
                await self._cleanup_kernel()
            except Exception:
                pass
        await self._stop_server()
