"""``WorkshopKubeSpawner`` (``c.JupyterHub.spawner_class = "workshop"``): KubeSpawner plus the
workshop's home setup, storage selection, shared data and group-limited profiles."""

from __future__ import annotations

import asyncio
import time

from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client.models import V1Lifecycle
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.utils import get_k8s_model
from traitlets import Dict, Float, List, Unicode, default

from .claims import claim_wait
from .common import WorkshopSpawnerMixin
from .pod import (
    HomeStorage,
    Readme,
    SharedData,
    high_performance_profile,
    home_storage_for,
    merge_named,
    plan_pod,
    profile_entries,
    profiles_for,
    with_home_setup,
)


class HomeClaimNotBound(RuntimeError):
    """The user's home volume claim was not provisioned in time."""


class WorkshopKubeSpawner(WorkshopSpawnerMixin, KubeSpawner):
    """KubeSpawner for workshops.

    Every pod gets a postStart hook that copies the quickstart README into the home (never
    overwriting a user's edits) and links ``~/shared`` to the shared data, which is read-only
    except for ``shared_writer_groups``. Home storage is chosen per group and per profile, and a
    home volume that does not get provisioned fails the spawn with a clear message instead of a
    bare timeout. Settings on ``c.KubeSpawner`` apply here too.

    A drop-in KubeSpawner: its own unit tests pass with this class in its place (see
    ``tests/spawner/test_kube_dropin.py``). Deliberate differences, each for a reason:

    - ``cmd`` defaults to ``["jupyterhub-singleuser"]`` (KubeSpawner: the image's command),
      because KubeSpawner drops ``get_args()`` with the image's command, and the kernel-culling
      arguments must reach the server.
    - ``get_args()`` adds Jupyter Server's idle-kernel culling (``kernel_idle_timeout``): closed
      tabs kept kernels, and all-day sessions ran out of memory.
    - ``get_env()`` adds ``WORKSHOP_*`` variables, the home setup's only inputs (constant shell
      text, values through the environment); the ``environment`` trait stays as configured.
    - The postStart hook is the home setup. A postStart ``exec`` command in ``lifecycle_hooks``
      runs after it, inside the same hook (Kubernetes runs one per container), and its failure
      is logged to ``~/.workshop/setup.log`` instead of killing the container; another kind of
      postStart handler is refused at spawn with a message naming it. ``preStop`` is untouched.
    - Each start sets ``volumes``/``volume_mounts`` (entries named ``workshop-*``, replacing
      mounts at the same paths) and ``storage_pvc_ensure``/``storage_class``/
      ``storage_capacity`` from ``home_storage``, so homes follow the user's group and profile.
    - ``profile_list`` entries may carry ``allowed_groups``; each user is offered only theirs,
      from whatever ``profile_list`` holds when the form is shown or a server starts (a list,
      a dict or a callable, assigned at any time), plus the ``high_performance`` profile. The
      trait keeps the value assigned, so hooks may read or replace it.
    - No options form when a user is offered fewer than two profiles (KubeSpawner shows a form
      with one choice): participants go straight to their server.
    - A home claim not Bound within ``home_claim_bind_timeout`` fails the spawn naming the claim
      and storage class, and ``progress()`` reports the wait, instead of a bare timeout.
    """

    home_storage = Dict(
        {"mode": "dynamic", "capacity": "10Gi"},
        help="""
        Home storage for everyone (groups may differ, see ``home_storage_for_groups``; a
        profile may replace it through ``kubespawner_override``). Keys:

        - ``mode``: ``dynamic`` (a PVC per user, like z2jh's default), ``static`` (one existing
          ReadWriteMany claim such as NFS, one sub-directory per user) or ``none`` (ephemeral).
        - ``storage_class``: for ``dynamic``; empty means the cluster default.
        - ``capacity``: for ``dynamic``, e.g. ``10Gi``.
        - ``claim``: for ``static``, the existing claim's name.
        - ``sub_path``: for ``static``, default ``{username}``. The directory must be writable
          by the notebook user (pre-create it, or map ownership on the NFS server).
        """,
    ).tag(config=True)

    home_storage_for_groups = Dict(
        {},
        help="""
        Home storage settings per hub group, merged over ``home_storage`` for members (the
        first matching group wins), e.g. ``{"instructors": {"storage_class": "fast-ssd"}}``.
        """,
    ).tag(config=True)

    home_mount_path = Unicode("/home/jovyan", help="Where the home volume is mounted in the container.").tag(
        config=True
    )

    home_claim_bind_timeout = Float(
        120,
        help="""
        Seconds to wait for a new home volume claim to be Bound before failing the spawn with a
        message naming the storage class. Keep it below ``start_timeout``. While waiting, the
        spawn page shows how long it has been waiting.
        """,
    ).tag(config=True)

    shared_data = Dict(
        {},
        help="""
        The shared data volume, mounted read-only at ``mount_path`` (default ``/srv/shared``)
        for everyone and writable at ``writable_mount_path`` (default
        ``/srv/shared-readwrite``) for ``shared_writer_groups``. Either
        ``{"nfs_server": "10.0.0.5", "nfs_path": "/export/shared"}`` or
        ``{"claim": "existing-rwx-claim"}``. Empty: no shared data.
        """,
    ).tag(config=True)

    readme_config_map = Unicode(
        "",
        help="""
        ConfigMap holding the quickstart README (key ``readme_config_map_key``), mounted
        read-only and copied into each home by the postStart hook. Empty: no README.
        """,
    ).tag(config=True)

    readme_config_map_key = Unicode("README.md", help="Key of the README in the ConfigMap.").tag(config=True)

    high_performance = Dict(
        {},
        help="""
        Offer a "High performance" profile (beside "Standard") to ``high_performance_groups``.
        Keys: ``node_selector``, ``tolerations``, ``gpus`` (count of ``nvidia.com/gpu``), and
        any KubeSpawner resource traits such as ``cpu_guarantee``, ``mem_limit``. Empty: none.
        """,
    ).tag(config=True)

    high_performance_groups = List(
        Unicode(), ["instructors"], help="Hub groups offered the high-performance profile."
    ).tag(config=True)

    board_file = Unicode(
        "",
        help="""
        The workshop service's board file (``WorkshopService.board_file``; the chart sets both).
        When the hub finds a user's pod ended without it — deleted, its node replaced, evicted,
        out of memory — the spawner notes why there, and the user's next hub page says so.
        Likewise when the cluster restarted the server's container in place (see
        ``restart_notice_minutes``). Empty: not noted.
        """,
    ).tag(config=True)

    restart_notice_minutes = Float(
        60,
        help="""
        Minutes a participant's hub pages say that their server was restarted in place, after
        the restart. KubeSpawner's pods restart their container when it ends (``restartPolicy:
        OnFailure``): out of memory, the whole server (every kernel) is killed and started
        again in the same pod, so the hub sees it running and JupyterLab reconnects with every
        kernel gone. With ``board_file`` set, the hub's poll notices the container's restart
        count went up and notes why (e.g. ``OOMKilled``) on the board; the participant's hub
        pages then say it in plain words, while that server runs and for at most this long
        (a later notice replaces it; a new start ends it). Staff see restarts on the admin page.
        A restart the hub finds older than this (it happened while the hub was down, and the
        board did not record it) is not announced.
        """,
    ).tag(config=True)

    async def poll(self):
        """KubeSpawner's poll; when it finds a server the hub thinks is running ended, note
        why on the board (what the pod said before KubeSpawner deletes it)."""
        pod = None
        if self.board_file:
            await self._start_watching_pods()  # as KubeSpawner's poll does: the pods as listed
            pod = self.pod_reflector.pods.get(f"{self.namespace}/{self.pod_name}")
        status = await super().poll()
        noted = getattr(self, "_stop_noted", False)
        if (
            status is not None
            and self.board_file
            and self.server is not None
            and not self.pending
            and not noted
        ):
            # once per run: the hub polls again while it stops the server, by then without a pod
            self._stop_noted = True
            self._note_stop(pod)
        elif status is None and self.board_file and self.server is not None and not self.pending:
            self._note_restart(pod)
        return status

    # (pod uid, restart count) last looked at; None: not since this hub process or this start
    _restart_seen: tuple[str, int] | None = None

    def _note_restart(self, pod: dict | None) -> None:
        """Note on the board a restart of the running server's container the hub has not seen
        (most polls: the count is the one last seen, and nothing is read or written)."""
        from dataclasses import replace
        from datetime import UTC, datetime, timedelta

        from ..board import load_board, pod_restart, restart_is_news, update_board

        try:
            restart = pod_restart(pod, self.name or "")
            if restart is None or self._restart_seen == (restart.pod, restart.count):
                return
            seen = self._restart_seen
            if seen is None or seen[0] != restart.pod:
                # first look at this pod since the hub (re)started: what the board noted of it
                # is what was seen, so an old restart is not announced again
                noted = load_board(self.board_file).restarts.get(self.user.name)
                seen = (
                    (noted.pod, noted.count) if noted is not None and noted.server == restart.server else None
                )
            now = datetime.now(UTC)
            recent = timedelta(minutes=self.restart_notice_minutes)
            if restart_is_news(restart, seen, now, recent):
                self.log.warning(
                    "%s's server was restarted in place by the cluster: %s at %s (restart %d of pod %s)",
                    self._log_name,
                    restart.reason,
                    restart.at.isoformat(),
                    restart.count,
                    self.pod_name,
                )
                notice = replace(restart, until=restart.at + recent)
                update_board(self.board_file, lambda board: board.restarted(self.user.name, notice, now))
            self._restart_seen = (restart.pod, restart.count)
        except Exception as e:  # never break the hub's poll over a notice; the next poll tries again
            self.log.warning("Could not note %s's server restart on the board: %s", self.user.name, e)

    def _note_stop(self, pod: dict | None) -> None:
        from datetime import UTC, datetime

        from ..board import Stop, pod_stop_reason, update_board

        reason = pod_stop_reason(pod)
        self.log.info("%s's server ended outside the hub: %s", self.user.name, reason)
        try:
            stop = Stop(reason, datetime.now(UTC), self.name or "")
            update_board(self.board_file, lambda board: board.stopped(self.user.name, stop))
        except (OSError, ValueError) as e:  # never break the hub's poll over a notice
            self.log.warning("Could not note %s's stop on the board: %s", self.user.name, e)

    @default("cmd")
    def _default_cmd(self):
        # an explicit command (as z2jh sets) so `get_args()` reaches the server: KubeSpawner
        # drops arguments when it falls back to the image's own command
        return ["jupyterhub-singleuser"]

    # --- profiles ---------------------------------------------------------------------------

    async def offered_profiles(self) -> list[dict]:
        """The profiles this user may choose now: what ``profile_list`` holds at this moment
        (a list, a dict keyed by slug, or a callable, as KubeSpawner takes it), with the
        high-performance profile, without those whose ``allowed_groups`` exclude the user."""
        configured = self.profile_list
        if callable(configured):
            configured = await maybe_future(configured(self))
        return profiles_for(self.user_group_names(), self._all_profiles(profile_entries(configured)))

    @default("options_form")
    def _workshop_options_form_default(self):
        return self._workshop_options_form

    async def _workshop_options_form(self, spawner):
        """The profile form, or none when this user has nothing to choose between."""
        profiles = await self.offered_profiles()
        return self._render_options_form(profiles) if len(profiles) > 1 else ""

    def _all_profiles(self, configured: list[dict]) -> list[dict]:
        if not self.high_performance:
            return configured
        standard = {
            "display_name": "Standard",
            "slug": "standard",
            "default": True,
            "description": "The workshop's usual server",
        }
        return [
            standard,
            high_performance_profile(allowed_groups=self.high_performance_groups, **self.high_performance),
            *configured,
        ]

    # --- the plan ------------------------------------------------------------------------

    def workshop_plan(self):
        groups = self.user_group_names()
        storage = home_storage_for(
            groups, HomeStorage.from_config(dict(self.home_storage)), dict(self.home_storage_for_groups)
        )
        readme = Readme(self.readme_config_map, self.readme_config_map_key, name_in_home=self.readme_name)
        return storage, plan_pod(
            groups,
            storage,
            SharedData.from_config(dict(self.shared_data)),
            readme,
            self.home_mount_path,
            self.shared_writer_groups,
        )

    def apply_workshop_plan(self) -> None:
        """Set this spawner's traits from the plan; safe to repeat on every start."""
        storage, plan = self.workshop_plan()
        owned_paths = [m["mountPath"] for m in plan.volume_mounts]
        self.volumes = merge_named(self.volumes, plan.volumes)
        self.volume_mounts = merge_named(self.volume_mounts, plan.volume_mounts, owned_paths)
        # the home setup's inputs, added by get_env(): the `environment` trait stays as configured
        self._workshop_environment = dict(plan.environment)
        if storage.mode == "dynamic":
            self.storage_pvc_ensure = True
            self.storage_class = plan.storage_class  # None: the cluster default
            self.storage_capacity = plan.storage_capacity
        else:
            self.storage_pvc_ensure = False

    async def load_user_options(self):
        """KubeSpawner's, over the profiles this user is offered, then the workshop plan."""
        offered = await self.offered_profiles()
        configured = self.profile_list
        # KubeSpawner validates the choice and applies its overrides from self.profile_list:
        # hand it this user's profiles for the call, then put back what was assigned, for the
        # next form or start and for hooks that read or replace it
        self.profile_list = offered
        try:
            await super().load_user_options()
        finally:
            self.profile_list = configured
        self.apply_workshop_plan()

    _workshop_environment: dict = {}

    def get_env(self):
        return {**super().get_env(), **self._workshop_environment}

    async def get_pod_manifest(self):
        """KubeSpawner's manifest with the home setup as the notebook container's postStart
        hook, and any postStart exec command of ``lifecycle_hooks`` run after it."""
        hooks = with_home_setup(self.lifecycle_hooks)  # refuses what cannot run beside ours
        pod = await super().get_pod_manifest()
        pod.spec.containers[0].lifecycle = get_k8s_model(V1Lifecycle, hooks)
        return pod

    # --- waiting for the home claim --------------------------------------------------------

    _claim_message = ""

    async def _claim_phase(self) -> str | None:
        try:
            claim = await self.api.read_namespaced_persistent_volume_claim(
                name=self.pvc_name, namespace=self.namespace
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return claim.status.phase if claim.status else None

    async def _watch_home_claim(self, start: asyncio.Future) -> None:
        began = time.monotonic()
        while not start.done():
            if self.storage_pvc_ensure and self._pvc_exists:
                state = claim_wait(
                    await self._claim_phase(),
                    self.pvc_name,
                    self.storage_class,
                    time.monotonic() - began,
                    self.home_claim_bind_timeout,
                )
                self._claim_message = state.message
                if state.done:
                    return
                if state.failed:
                    self.log.error("Spawn of %s failed: %s", self._log_name, state.message)
                    raise HomeClaimNotBound(state.message)
            await asyncio.wait([start], timeout=1)

    async def _start(self):
        self._claim_message = ""
        self._stop_noted = False  # a new run: its end is noted once
        self._restart_seen = None  # a new pod: its restarts counted from the board, then here
        start = asyncio.ensure_future(super()._start())
        try:
            await self._watch_home_claim(start)
        except BaseException:
            start.cancel()
            raise
        return await start

    async def progress(self):
        """KubeSpawner's progress, plus how long the home volume has been provisioning."""
        events: asyncio.Queue = asyncio.Queue()
        parent = super().progress()

        async def pump():
            try:
                async for event in parent:
                    await events.put(event)
            finally:
                await events.put(None)

        pumping = asyncio.ensure_future(pump())
        shown = ""
        try:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), 1)
                except TimeoutError:
                    event = {}
                if event is None:
                    break
                if event:
                    yield event
                if self._claim_message and self._claim_message != shown:
                    shown = self._claim_message
                    yield {"message": shown}
        finally:
            pumping.cancel()
