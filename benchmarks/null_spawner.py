"""A spawner for benchmarks: no process; every server is one shared always-up HTTP endpoint."""

import os

from jupyterhub.spawner import Spawner


class NullSpawner(Spawner):
    _running = False

    async def start(self):
        self._running = True
        return os.environ["NULL_SPAWNER_URL"]

    async def poll(self):
        return None if self._running else 0

    async def stop(self, now=False):
        self._running = False
