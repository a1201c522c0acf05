"""A real ``jupyterhub`` process with the real configurable-http-proxy, on loopback ports."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
    failed: Callable[[], str | None] | None = None,
):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds, or
    at once when ``failed()`` gives a reason (a process that died, say)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        reason = failed() if failed else None
        if reason:
            raise AssertionError(f"{message}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def http_status(url: str, headers: dict | None = None) -> int | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class HubProcess:
    """Runs ``python -m jupyterhub`` in ``workdir`` with ``config`` appended to the base config."""

    def __init__(self, workdir: Path, config: str, env: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_token = "test-admin-token-" + os.urandom(8).hex()
        self.config_text = self.base_config() + textwrap.dedent(config)
        self.env = {**os.environ, **(env or {})}
        self.log_path = self.workdir / "hub.log"
        self.proc: subprocess.Popen | None = None

    def base_config(self) -> str:
        return textwrap.dedent(
            f"""\
            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {self.port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {self.hub_port}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
            c.ConfigurableHTTPProxy.should_start = True
            c.JupyterHub.db_url = "sqlite:///{self.workdir}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "{self.workdir}/cookie_secret"
            c.JupyterHub.log_level = "DEBUG"
            # a test admin client, like an operator's API token
            c.JupyterHub.services = [{{"name": "test-admin", "api_token": "{self.api_token}"}}]
            c.JupyterHub.load_roles = [{{
                "name": "test-admin",
                "scopes": ["admin:users", "admin:groups", "admin:servers", "read:hub", "tokens", "access:servers"],
                "services": ["test-admin"],
            }}]
            """
        )

    def start(self, wait: bool = True) -> HubProcess:
        cfg = self.workdir / "jupyterhub_config.py"
        cfg.write_text(self.config_text)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(cfg)],
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            return http_status(f"{self.url}/hub/api/") == 200

        wait_for(ready, timeout, message="the hub to answer through the proxy")

    def wait_log(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        return wait_for(
            lambda: re.search(pattern, self.log_text()[start:]),
            timeout,
            message=f"hub log to show {pattern!r}",
        )

    def api(self, path: str, method: str = "GET", data: bytes | None = None):
        import json

        req = urllib.request.Request(
            f"{self.url}/hub/api{path}",
            method=method,
            data=data,
            headers={"Authorization": f"token {self.api_token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return json.loads(body) if body else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        if self.proc:
            # the proxy is the hub's child; make sure nothing of the session survives
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
        if getattr(self, "_log", None):
            self._log.close()


async def poll(predicate, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    """Async twin of :func:`wait_for`: await ``predicate()`` until truthy, fail after ``timeout``."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


def stop_process_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM a process started with start_new_session=True and its children; SIGKILL if stuck."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def running_hub(config: Path, cwd: Path, log: Path, port: int):
    """``jupyterhub -f config`` in ``cwd`` (its own process group, output to ``log``) until its
    API answers on ``port``; stopped with its children on leaving. Yields the hub's URL."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready():
            assert proc.poll() is None, log.read_text()[-3000:]
            return http_status(f"{url}/hub/api/") == 200

        wait_for(ready, 60, message="the hub")
        yield url
    finally:
        stop_process_group(proc)
