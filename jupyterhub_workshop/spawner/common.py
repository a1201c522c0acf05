"""Traits and behaviour shared by the Kubernetes spawner and its local twin."""

from __future__ import annotations

from collections.abc import Iterable

from traitlets import Bool, Integer, List, Unicode
from traitlets.config import LoggingConfigurable


def in_any(groups: Iterable[str], wanted: Iterable[str]) -> bool:
    return bool(set(groups) & set(wanted))


def kernel_culling_args(idle_timeout: int, interval: int, cull_connected: bool) -> list[str]:
    """Jupyter Server flags that shut down idle kernels (closed tabs keep kernels alive)."""
    if idle_timeout <= 0:
        return []
    return [
        f"--MappingKernelManager.cull_idle_timeout={int(idle_timeout)}",
        f"--MappingKernelManager.cull_interval={int(interval)}",
        f"--MappingKernelManager.cull_connected={cull_connected}",
    ]


class WorkshopSpawnerMixin(LoggingConfigurable):
    """Workshop setup common to ``workshop`` and ``workshop-local`` spawners."""

    shared_writer_groups = List(
        Unicode(),
        ["instructors"],
        help="""
        Hub groups whose members may write the shared data (the workshop authenticator puts
        instructors in ``instructors``). Everyone else sees it read-only at ``~/shared``.
        """,
    ).tag(config=True)

    readme_name = Unicode(
        "README.md",
        help="File name of the quickstart README in each home.",
    ).tag(config=True)

    kernel_idle_timeout = Integer(
        3600,
        help="""
        Shut down kernels idle for this many seconds (0: never). Closed notebook tabs leave
        kernels running, and all-day sessions ran out of memory because of them.
        Passed to the single-user server as ``MappingKernelManager.cull_idle_timeout``.
        """,
    ).tag(config=True)

    kernel_cull_interval = Integer(
        300, help="How often (seconds) the single-user server looks for idle kernels."
    ).tag(config=True)

    kernel_cull_connected = Bool(
        False,
        help="""
        Also shut down idle kernels that still have a browser tab connected. Off by default:
        an open tab usually means someone is coming back.
        """,
    ).tag(config=True)

    def user_group_names(self) -> list[str]:
        return [g.name for g in getattr(self.user, "groups", [])]

    def get_args(self):
        return super().get_args() + kernel_culling_args(
            self.kernel_idle_timeout, self.kernel_cull_interval, self.kernel_cull_connected
        )
