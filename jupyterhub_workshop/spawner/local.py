"""``WorkshopLocalSpawner`` (``workshop-local``): the workshop setup on local processes.

For rehearsing on one machine (``jupyterhub-workshop demo``): each user's server is a process
of the hub's own OS user with its home under ``home_dir_template``; the same home-setup script
as on Kubernetes copies the README and links ``~/shared`` before the server starts. All servers
share one OS user, so read-only shared data cannot be enforced here: participants get
``~/shared``, writers also ``~/shared-readwrite``, as on Kubernetes.
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import quote

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Float, Unicode

from .. import files
from . import home_setup
from .common import WorkshopSpawnerMixin, in_any


class WorkshopLocalSpawner(WorkshopSpawnerMixin, SimpleLocalProcessSpawner):
    """Local-process twin of the workshop spawner, for rehearsals and the demo hub."""

    readme_file = Unicode("", help="Quickstart README copied into each home (empty: none).").tag(config=True)

    shared_dir = Unicode("", help="Directory linked as ``~/shared`` in each home (empty: none).").tag(
        config=True
    )

    home_setup_timeout = Float(
        10, help="Seconds the home setup may take before the server starts without it."
    ).tag(config=True)

    pid_dir = Unicode(
        "",
        help="""
        Directory where each running server's process id is noted (a small JSON file per
        server, removed when it stops), so the workshop service's admin page can show its memory
        and CPU from the process tree (the service's ``server_pids_dir``). Empty: not noted.
        """,
    ).tag(config=True)

    def home_setup_env(self) -> dict[str, str]:
        writer = in_any(self.user_group_names(), self.shared_writer_groups)
        setup = home_setup.environment(
            self.readme_file or None,
            self.readme_name,
            self.shared_dir or None,
            self.shared_dir if (writer and self.shared_dir) else None,
        )
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home_dir, **setup}

    async def run_home_setup(self) -> None:
        """Run the home-setup script; its failure is logged and never stops the server."""
        try:
            os.makedirs(self.home_dir, 0o755, exist_ok=True)
            proc = await asyncio.create_subprocess_exec(
                *home_setup.command(),
                env=self.home_setup_env(),
                cwd=self.home_dir,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(), self.home_setup_timeout)
            except TimeoutError:
                proc.kill()
                self.log.warning("Home setup for %s timed out; starting anyway", self.user.name)
                return
            if proc.returncode:
                self.log.warning(
                    "Home setup for %s exited %s: %s", self.user.name, proc.returncode, err[-500:]
                )
        except Exception:
            self.log.exception("Home setup for %s failed; starting anyway", self.user.name)

    def pid_file(self) -> str:
        return os.path.join(self.pid_dir, quote(f"{self.user.name}/{self.name}", safe="") + ".json")

    def note_pid(self) -> None:
        """Note the server's process for the workshop service (atomically: a reader never sees
        half a file). The limit is ``mem_limit`` in bytes (None: none)."""
        if not self.pid_dir or not self.pid:
            return
        record = {"user": self.user.name, "server": self.name, "pid": self.pid, "mem_limit": self.mem_limit}
        try:
            os.makedirs(self.pid_dir, 0o700, exist_ok=True)
            files.write_atomically(self.pid_file(), json.dumps(record))
        except OSError as e:
            self.log.warning("Could not note %s's server process in %s: %s", self.user.name, self.pid_dir, e)

    async def start(self):
        await self.run_home_setup()
        result = await super().start()
        self.note_pid()
        return result

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            if self.pid_dir:
                try:
                    os.unlink(self.pid_file())
                except FileNotFoundError:
                    pass
