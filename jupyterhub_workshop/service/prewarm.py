"""Pre-warm: node-sized placeholder pods before each session of the workshop's schedule.

From ``lead`` before a session's start until ``hold`` after it, the service keeps
``placeholders_for(warm_users(...), users_per_node)`` placeholder pods wanted: capacity for the
people expected who have no server yet (:mod:`jupyterhub_workshop.schedule`, the same decision
``plan`` and ``benchmarks/prewarm_sim.py`` use); outside those stretches, none. Placeholders have
a low priority: a user's pod preempts one and finds a warm node, and the autoscaler adds nodes
for placeholders that wait, before the crowd arrives.

The decisions are pure (the schedule's functions, and here the checks made at start and what the
admin page says). :class:`Prewarmer` is the IO around them: the participant cards counted from
the accounts file, and the Deployment of placeholders read and changed only through its
``scale`` subresource (:class:`DeploymentScale`), only when the count differs. A refused or
failed call is logged once (again when it works again), tried again at the next step, and never
raised: the culler, the pages and the events go on whatever the Kubernetes API does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from ..schedule import (
    WEEKDAYS,
    Schedule,
    Session,
    next_prewarm,
    placeholders_for,
    prewarm_period,
    warm_users,
)
from ..times import as_utc
from .policy import NightWindow

#: Seconds a call to the Kubernetes API may take before it counts as failed (the next step retries).
KUBE_TIMEOUT = 10.0
#: The Role the chart renders for the service's pre-warm (get and patch on deployments/scale).
CHART_ROLE = "workshop-prewarm"
#: How far ahead the night-window check looks for weekday sessions without an ``until`` date.
OPEN_ENDED_CHECK = timedelta(days=60)

_IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_IN_CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"


# --- pure: the checks at start ---------------------------------------------------------------


def needs_default_expected(schedule: Schedule) -> bool:
    """Whether some session takes its people expected from outside the schedule (the cards)."""
    return schedule.expected is None and any(s.expected is None for s in schedule.sessions)


def participants(accounts) -> int:
    """People a schedule without ``expected`` is warmed for: the participant cards not revoked."""
    return sum(1 for a in accounts if a.role == "participant" and not a.revoked)


@dataclass(frozen=True)
class Overlap:
    """A session whose pre-warm stretch or run meets a night window."""

    session: int  # its index in the schedule's sessions
    start: datetime  # the session's start (UTC)
    busy: tuple[datetime, datetime]  # start − lead .. the later of its end and start + hold
    night: tuple[datetime, datetime]  # the night window it meets


def _checked(schedule: Schedule, session: Session, today: date) -> tuple[Schedule, date, date] | None:
    """The session alone, as a schedule whose weekdays are bounded (``from``, else today, to
    ``until``, else 60 days on), and the first and last day to look at: all its dates too."""
    first = schedule.first_day or today
    last = schedule.last_day or max(first, today) + OPEN_ENDED_CHECK
    days = sorted(session.dates)
    if session.weekdays and first <= last:
        days += [first, last]
    if not days:
        return None
    return replace(schedule, sessions=(session,), first_day=first, last_day=last), min(days), max(days)


def night_overlaps(
    schedule: Schedule, night: NightWindow, lead: timedelta, hold: timedelta, today: date
) -> list[Overlap]:
    """Every occurrence whose pre-warm stretch or run (``start − lead`` until its end, or until
    ``start + hold`` if that is later) shares time with a night window, in order."""
    found = []
    zone = schedule.zone
    for index, session in enumerate(schedule.sessions):
        checked = _checked(schedule, session, today)
        if checked is None:
            continue
        alone, first, last = checked
        since = datetime.combine(first - timedelta(days=1), time(0), zone)
        until = datetime.combine(last + timedelta(days=2), time(0), zone)
        for occurrence in alone.occurrences(since, until):
            busy = (occurrence.start - lead, max(occurrence.end, occurrence.start + hold))
            for window in night.overlapping(*busy):
                found.append(Overlap(index, occurrence.start, busy, window))
    return sorted(found, key=lambda o: o.busy[0])


def _clock(moment: datetime, zone) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def overlap_message(schedule: Schedule, night: NightWindow, overlaps: list[Overlap]) -> str:
    """Why the service refuses to start, naming the session, the night window and both settings."""
    first = overlaps[0]
    zone = schedule.zone
    session = schedule.sessions[first.session]
    more = len(overlaps) - 1
    warmed = first.busy[0] < first.start  # a pre-warm stretch before it, not only its run
    return (
        f"schedule.sessions[{first.session}] ({describe_session(session)}) and the night window "
        f"{night.describe()} (night_start/night_end) overlap: on "
        f"{first.start.astimezone(zone):%a %Y-%m-%d} that session "
        + (
            f"is warmed or runs from {_clock(first.busy[0], zone)} (prewarm_lead before its start)"
            if warmed
            else f"runs from {_clock(first.busy[0], zone)}"
        )
        + f" to {_clock(first.busy[1], zone)} ({schedule.tz}), and the night window runs "
        f"{_clock(first.night[0], night.zone)}–{_clock(first.night[1], night.zone)} ({night.tz})"
        + (f"; {more} more overlap{'s' if more != 1 else ''}" if more else "")
        + ". The night cull would stop servers in use"
        + (" or the servers of people pre-warm keeps nodes for" if warmed else "")
        + ": move the session, or night_start/night_end, so they do not meet."
    )


# --- pure: what the admin page says ------------------------------------------------------------


def describe_session(session: Session) -> str:
    """``Mon, Tue, 2026-07-17 09:00–17:00 (40 expected)``, in the schedule's own time zone."""
    days = [WEEKDAYS[d] for d in sorted(session.weekdays)] + [d.isoformat() for d in sorted(session.dates)]
    text = f"{', '.join(days)} {session.start:%H:%M}–{session.end:%H:%M}"
    if session.end <= session.start:
        text += " (ends the next day)"
    if session.expected is not None:
        text += f" ({session.expected} expected)"
    return text


@dataclass(frozen=True)
class Change:
    """A change of the placeholder count: when, from what, to what."""

    at: datetime
    before: int | None
    after: int


@dataclass(frozen=True)
class PrewarmStatus:
    """What the last step found and did (the admin page and the metrics show it)."""

    checked: datetime | None = None  # when the last step ran
    warming: bool = False  # inside a pre-warm stretch at the last step
    people: int = 0  # people kept warm for at the last step (expected, less those with a server)
    decided: int | None = 0  # placeholders wanted then (None: users_per_node not set)
    replicas: int | None = None  # the Deployment's, as last read or set through the API
    change: Change | None = None  # the last change made (or decided, without a Deployment)
    error: str | None = None  # why the count could not be read or set, while it cannot
    error_since: datetime | None = None


def admin_view(prewarmer: Prewarmer | None, now: datetime, every: float) -> dict:
    """The admin page's pre-warm card, as text in the schedule's time zone."""
    if prewarmer is None:
        return {"enabled": False}
    schedule, status = prewarmer.schedule, prewarmer.status
    zone = schedule.zone

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%a %d %b %H:%M") if moment else ""

    span = []
    if schedule.first_day:
        span.append(f"from {schedule.first_day.isoformat()}")
    if schedule.last_day:
        span.append(f"until {schedule.last_day.isoformat()}")
    if schedule.expected is not None:
        expected = f"{schedule.expected} people expected (the schedule's expected)"
    elif prewarmer.accounts_file:
        expected = f"{prewarmer.expected_default} people expected (the participant cards)"
    else:
        expected = "no people expected: set the schedule's expected or accounts_file"
    stretch = prewarmer.next_stretch(now)
    if stretch is None:
        upcoming = "none in the next 14 days"
    elif stretch[0] <= as_utc(now):
        upcoming = f"now, until {local(stretch[1])}"
    elif stretch[0].astimezone(zone).date() == stretch[1].astimezone(zone).date():
        upcoming = f"{local(stretch[0])} – {stretch[1].astimezone(zone):%H:%M}"
    else:
        upcoming = f"{local(stretch[0])} – {local(stretch[1])}"
    if prewarmer.scale is None:
        number = "—" if status.decided is None else str(status.decided)
        note = "decided (no Deployment set)"
        if status.decided is None:
            count = "decided: none"
            target = (
                f"{status.people} people to keep warm for; set users_per_node for a placeholder count "
                "and prewarm_deployment to scale placeholders"
            )
        else:
            count = f"decided: {status.decided}"
            target = f"for {status.people} people; no Deployment set (prewarm_deployment): nothing is scaled"
    else:
        count = number = "unknown" if status.replicas is None else str(status.replicas)
        note = f"replicas of {prewarmer.scale.name}"
        target = (
            f"Deployment {prewarmer.scale.where}, through its scale subresource "
            f"(decided: {status.decided}, for {status.people} people)"
        )
    if status.error:
        last = f"{status.error} (failing since {local(status.error_since)}; tried again every {every:g} s)"
    elif status.change:
        before = "?" if status.change.before is None else status.change.before
        last = f"{local(status.change.at)}: {before} → {status.change.after}"
    else:
        last = "no change yet"
    return {
        "enabled": True,
        "zone": schedule.tz,
        "sessions": [describe_session(s) for s in schedule.sessions],
        "span": ", ".join(span),
        "expected": expected,
        "next": upcoming,
        "warming": status.warming,
        "count": count,
        "number": number,
        "note": note,
        "target": target,
        "last": last,
        "failing": status.error is not None,
        "checked": status.checked,
        "users_per_node": prewarmer.users_per_node,
        "lead": f"{prewarmer.lead.total_seconds() / 60:g}",
        "hold": f"{prewarmer.hold.total_seconds() / 60:g}",
    }


# --- IO: the Deployment's scale ------------------------------------------------------------------


class DeploymentScale:
    """One Deployment's replica count, read and set only through its ``scale`` subresource with
    kubernetes_asyncio (what KubeSpawner uses).

    The configuration is the pod's own (in-cluster: the service account's token, rotated as
    kubelet rotates it, and CA) and, outside a pod, the kubeconfig of ``$KUBECONFIG`` (else
    ``~/.kube/config``), read when first needed and again after a failure to load it.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        *,
        environ: Mapping[str, str] | None = None,
        token_file: str = _IN_CLUSTER_TOKEN,
        ca_file: str = _IN_CLUSTER_CA,
        timeout: float = KUBE_TIMEOUT,
    ):
        self.name, self.namespace = name, namespace
        self.environ = os.environ if environ is None else environ
        self.token_file, self.ca_file = token_file, ca_file
        self.timeout = timeout
        self.host = ""  # the API server, once configured
        self._client = None  # kubernetes_asyncio ApiClient

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def _apps(self):
        from kubernetes_asyncio import client, config
        from kubernetes_asyncio.config.config_exception import ConfigException

        if self._client is None:
            configuration = client.Configuration()
            try:
                config.load_incluster_config(
                    client_configuration=configuration,
                    token_filename=self.token_file,
                    cert_filename=self.ca_file,
                    environ=self.environ,
                )
            except ConfigException as in_cluster:
                path = self.environ.get("KUBECONFIG") or "~/.kube/config"
                try:
                    await config.load_kube_config(
                        config_file=path, client_configuration=configuration, persist_config=False
                    )
                except (ConfigException, OSError, ValueError) as e:
                    raise ConfigException(
                        f"no Kubernetes configuration: not in a pod ({in_cluster}) and no usable kubeconfig "
                        f"at {path} ({e})"
                    ) from None
            self.host = configuration.host
            self._client = client.ApiClient(configuration)
        return client.AppsV1Api(self._client)

    async def read(self) -> int:
        apps = await self._apps()
        scale = await apps.read_namespaced_deployment_scale(
            self.name, self.namespace, _request_timeout=self.timeout
        )
        return int(scale.spec.replicas or 0)

    async def write(self, replicas: int) -> int:
        apps = await self._apps()
        scale = await apps.patch_namespaced_deployment_scale(
            self.name, self.namespace, {"spec": {"replicas": replicas}}, _request_timeout=self.timeout
        )
        return int(scale.spec.replicas or 0)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def _describe_failure(scale: DeploymentScale, doing: str, error: BaseException) -> tuple[str, str]:
    """(kind, message) of a failed read or write of the scale: the kind says whether it is
    the same failure as before (logged once), the message what to do about it."""
    from kubernetes_asyncio.client.exceptions import ApiException
    from kubernetes_asyncio.config.config_exception import ConfigException

    deployment = f"Deployment {scale.where}"
    if isinstance(error, ApiException):
        detail = error.reason or ""
        try:
            detail = json.loads(error.body or "{}").get("message") or detail
        except (ValueError, AttributeError, TypeError):
            pass
        if error.status == 403:
            return f"403-{doing}", (
                f"the Kubernetes API refused to {doing} the scale of {deployment} (403 Forbidden: {detail}). "
                f"The hub's service account needs get and patch on deployments/scale (API group apps) "
                f"for {scale.name} in {scale.namespace}: the chart renders them in the Role {CHART_ROLE}, "
                "bound to the hub's ServiceAccount"
            )
        if error.status == 401:
            return (
                "401",
                f"the Kubernetes API did not accept the service's credentials (401 Unauthorized: {detail})",
            )
        if error.status == 404:
            return "404", (
                f"{deployment} does not exist (404: {detail}): install the chart with workshop.prewarm.enabled, or set "
                "prewarm_deployment and prewarm_namespace to the Deployment of placeholders"
            )
        return (
            f"http-{error.status}",
            f"the Kubernetes API answered {error.status} {detail} to {doing} the scale of {deployment}",
        )
    if isinstance(error, ConfigException):
        return "config", str(error)
    if isinstance(error, (OSError, TimeoutError, asyncio.TimeoutError)) or type(error).__module__.startswith(
        "aiohttp"
    ):
        what = f" at {scale.host}" if scale.host else ""
        return "down", f"the Kubernetes API{what} is unreachable ({type(error).__name__}: {error})"
    return (
        f"bug-{type(error).__name__}",
        f"{doing} the scale of {deployment} failed: {type(error).__name__}: {error}",
    )


# --- IO: the step ----------------------------------------------------------------------------------


class Prewarmer:
    """One pre-warm step at a time: decide the placeholders wanted now and, with a Deployment,
    set its replica count to that (only when it differs). :meth:`step` never raises."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        lead: timedelta,
        hold: timedelta,
        users_per_node: int,
        scale: DeploymentScale | None = None,
        accounts_file: str = "",
        metrics=None,
        log: logging.Logger | None = None,
    ):
        if users_per_node < 1 and scale is not None:
            raise ValueError("pre-warm needs users_per_node (placeholders are node-sized)")
        self.schedule = schedule
        self.lead, self.hold = lead, hold
        self.users_per_node = users_per_node
        self.scale = scale
        self.accounts_file = accounts_file
        self.metrics = metrics
        self.log = log or logging.getLogger(__name__)
        self.status = PrewarmStatus()
        self.expected_default = 0  # the participant cards, as last counted
        self._accounts = None
        self._accounts_failing = ""
        self._failing = ""  # the kind of the current failure, logged once
        if needs_default_expected(schedule):
            if accounts_file:
                from .web import AccountsCache

                self._accounts = AccountsCache(accounts_file)
            else:
                self.log.warning(
                    "Pre-warm: the schedule gives no `expected` people and there is no accounts_file to "
                    "count participant cards from: sessions without `expected` are warmed for 0 people"
                )

    def next_stretch(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The current pre-warm stretch, else the next one (within 14 days)."""
        return next_prewarm(self.schedule, now, self.lead, self.hold)

    async def expected(self) -> int:
        """People expected when neither the session nor the schedule says: the participant
        cards of the accounts file (re-read when it changes; the last count if it cannot be)."""
        if self._accounts is None:
            return self.expected_default
        try:
            book = await asyncio.get_running_loop().run_in_executor(None, self._accounts.load)
        except Exception as e:  # OSError, AccountsFileError: keep the last count
            if str(e) != self._accounts_failing:
                self.log.warning(
                    "Pre-warm: cannot count participant cards in %s (%s); expecting %d people",
                    self.accounts_file,
                    e,
                    self.expected_default,
                )
            self._accounts_failing = str(e)
            return self.expected_default
        if self._accounts_failing:
            self.log.info("Pre-warm: %s can be read again", self.accounts_file)
        self._accounts_failing = ""
        self.expected_default = participants(book.values())
        return self.expected_default

    def decide(self, now: datetime, running: int, expected: int) -> tuple[int, int | None]:
        """People to keep warm for now and the placeholders for them (None without
        users_per_node): pure, the schedule's decision."""
        people = warm_users(self.schedule, now, expected, running, self.lead, self.hold)
        if self.users_per_node < 1:
            return people, None
        return people, placeholders_for(people, self.users_per_node)

    async def step(self, now: datetime, running: int) -> PrewarmStatus:
        """Decide for ``now`` with ``running`` people having a server, and scale to that."""
        try:
            return await self._step(as_utc(now, "now"), running)
        except asyncio.CancelledError:
            raise
        except Exception:  # never out of the step: the next one tries again
            self.log.exception("Pre-warm step failed; trying again at the next step")
            return self.status

    async def _step(self, now: datetime, running: int) -> PrewarmStatus:
        warming = prewarm_period(self.schedule, now, self.lead, self.hold) is not None
        expected = await self.expected()  # outside a stretch too: a broken file shows before the bell
        people, wanted = self.decide(now, running, expected)
        status = replace(self.status, checked=now, warming=warming, people=people, decided=wanted)
        if self.scale is None:
            changed = self.status.checked is not None and wanted != self.status.decided
            if changed and wanted is not None:
                status = replace(status, change=Change(now, self.status.decided, wanted))
                self.log.info(
                    "Pre-warm (decide only, no Deployment set): %s → %d placeholders",
                    self.status.decided,
                    wanted,
                )
        else:
            status = await self._scale_to(status, now, wanted)
        self.status = status
        if self.metrics is not None:
            self.metrics.prewarm_active.set(1 if warming else 0)
            shown = wanted if self.scale is None else status.replicas
            if shown is not None:
                self.metrics.prewarm_placeholders.set(shown)
        return status

    async def _scale_to(self, status: PrewarmStatus, now: datetime, wanted: int) -> PrewarmStatus:
        doing = "read"
        try:
            current = await self.scale.read()
            status = replace(status, replicas=current)
            if current != wanted:
                doing = "change"
                status = replace(
                    status, replicas=await self.scale.write(wanted), change=Change(now, current, wanted)
                )
                self.log.info(
                    "Pre-warm: Deployment %s scaled from %d to %d placeholders (%s)",
                    self.scale.where,
                    current,
                    wanted,
                    "in a pre-warm stretch" if status.warming else "outside the pre-warm stretches",
                )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            kind, message = _describe_failure(self.scale, doing, e)
            if kind != self._failing:  # once per kind of failure, not at every step
                if kind.startswith("bug-"):
                    self.log.exception("Pre-warm: %s; trying again at the next step", message)
                else:
                    self.log.error("Pre-warm: %s; trying again at the next step", message)
            self._failing = kind
            return replace(status, error=message, error_since=self.status.error_since or now)
        if self._failing:
            self.log.info(
                "Pre-warm: the scale of Deployment %s works again (failing since %s): %d placeholders",
                self.scale.where,
                self.status.error_since.isoformat() if self.status.error_since else "?",
                status.replicas,
            )
            self._failing = ""
        return replace(status, error=None, error_since=None)

    async def close(self) -> None:
        if self.scale is not None:
            await self.scale.close()
