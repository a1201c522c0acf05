"""The workshop service's pages and exports (tornado, authenticated through the hub).

- ``/``: admins and ``staff_groups`` see the admin page; everyone else their opt-out page
- ``POST /opt-out``: "keep my server tonight" (XSRF-checked)
- ``/usage.csv``, ``/usage.json``: session export, streamed (staff only)
- ``/metrics``: Prometheus text
"""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from .. import charts
from ..times import now_utc, parse_typed_time
from .policy import cull_time, is_exempt, warning
from .usage import sessions_csv, sessions_json

TEMPLATES = Path(__file__).parent / "templates"
CHART_POINTS = 300  # about one per two pixels of a chart: any longer record is reduced to its peaks


def _time_arg(handler: web.RequestHandler, name: str) -> datetime | None:
    value = handler.get_argument(name, "")
    if not value:
        return None
    try:
        return parse_typed_time(value)
    except ValueError as e:
        raise web.HTTPError(400, f"{name}: {e}") from None


class ServiceHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def service(self):
        return self.settings["workshop_service"]

    def is_staff(self, user: dict) -> bool:
        return bool(user.get("admin")) or bool(set(user.get("groups") or ()) & set(self.service.staff_groups))

    def require_staff(self) -> dict:
        user = self.current_user
        if not self.is_staff(user):
            raise web.HTTPError(403, "Only workshop staff may see this page.")
        return user

    @property
    def zone(self):
        return ZoneInfo(self.service.timezone) if self.service.timezone else UTC

    def local(self, moment: datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%a %H:%M") if moment else ""

    def write_error(self, status_code: int, **kwargs) -> None:
        """Say what was wrong with a request (a bad ``start``, no access), not only the status."""
        error = kwargs.get("exc_info", (None, None))[1]
        message = error.log_message if isinstance(error, web.HTTPError) and status_code < 500 else ""
        self.finish(
            f"<html><title>{status_code}: {escape(self._reason)}</title><body><h1>{status_code}: "
            f"{escape(self._reason)}</h1><p>{escape(message or '')}</p></body></html>"
        )

    def render_page(self, name: str, **ns) -> None:
        hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/") + "hub/"
        user = self.current_user
        namespace = dict(
            base_url=hub_prefix,
            prefix=os.environ.get("JUPYTERHUB_BASE_URL", "/"),
            static_url=lambda path, include_version=True: f"{hub_prefix}static/{path}",
            user=type("U", (), {"name": user["name"], "json_escaped_name": user["name"]})(),
            login_url=f"{hub_prefix}login",
            logout_url=f"{hub_prefix}logout",
            services=[],
            parsed_scopes=set(),
            version_hash="",
            no_spawner_check=True,
            announcement="",
            xsrf_token=self.xsrf_token.decode("ascii"),
            xsrf=self.xsrf_token.decode("ascii"),
            service_prefix=self.settings["service_prefix"],
            local=self.local,
            service=self.service,
        )
        namespace.update(ns)
        self.finish(self.settings["jinja_env"].get_template(name).render(**namespace))


class MainHandler(ServiceHandler):
    @web.authenticated
    def get(self):
        user = self.current_user
        service, culler = self.service, self.service.culler
        now = now_utc()
        night = service.policy.night
        opted_out = culler.opted_out(now)
        mine = [s for s in culler.servers if s.user == user["name"]]
        exempt = is_exempt(bool(user.get("admin")), user.get("groups") or (), service.policy)
        context = dict(
            now=now,
            night=night,
            next_night=night.next(now) if night else None,
            opted_out_tonight=user["name"] in opted_out,
            warning=warning(bool(mine), user["name"] in opted_out, exempt, service.policy, now),
            exempt=exempt,
            message=self.get_argument("done", ""),
        )
        if not self.is_staff(user):
            return self.render_page("workshop-optout.html", **context)
        rows = []
        for server in sorted(culler.servers, key=lambda s: (s.user, s.name)):
            when = cull_time(server, server.user in opted_out, service.policy, now)
            rows.append((server, when))
        active, running = self.sample_charts()
        durations = service.metrics.session_duration_counts()  # kept current by the service
        nh = culler.node_hours()
        self.render_page(
            "workshop-admin.html",
            **context,
            rows=rows,
            culls=service.store.culls_by_reason(),
            opt_outs=sorted(opted_out),
            node_hours=nh,
            cost=nh * service.price_per_node_hour,
            active_chart=charts.line_chart("Active users", active),
            running_chart=charts.line_chart("Running servers", running),
            duration_chart=charts.bar_chart("Session durations (sessions)", charts.duration_bars(durations)),
            sessions=sum(count for _, count in durations),
        )

    def sample_charts(self):
        """Active users and running servers over the whole record, at most CHART_POINTS each."""
        peaks = [
            (at.astimezone(self.zone), values) for at, values in self.service.store.sample_peaks(CHART_POINTS)
        ]
        return [(at, active) for at, (active, _) in peaks], [(at, running) for at, (_, running) in peaks]


class OptOutHandler(ServiceHandler):
    @web.authenticated
    def post(self):
        service = self.service
        if service.policy.night is None:
            raise web.HTTPError(400, "There is no night-time stop to opt out of.")
        now = now_utc()
        night = service.culler.night_of(now)
        service.store.add_opt_out(self.current_user["name"], night, now)
        self.redirect(f"{self.settings['service_prefix']}?done=optout")


class ExportHandler(ServiceHandler):
    formats = {"csv": ("text/csv; charset=utf-8", sessions_csv), "json": ("application/json", sessions_json)}

    @web.authenticated
    async def get(self, fmt):
        self.require_staff()
        content_type, render = self.formats[fmt]
        start, end = _time_arg(self, "start"), _time_arg(self, "end")
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", f'attachment; filename="workshop-usage.{fmt}"')
        chunks = render(self.service.store.iter_sessions(start, end))
        loop = asyncio.get_running_loop()
        buffer, size = [], 0
        while True:
            # the database read happens off the event loop, a chunk at a time
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            buffer.append(chunk)
            size += len(chunk)
            if size >= 256 * 1024:
                self.write("".join(buffer))
                buffer, size = [], 0
                await self.flush()
        self.finish("".join(buffer))


class MetricsHandler(web.RequestHandler):
    def get(self):
        service = self.settings["workshop_service"]
        if service.metrics_token:
            expected = f"Bearer {service.metrics_token}"
            if not secrets.compare_digest(self.request.headers.get("Authorization", ""), expected):
                raise web.HTTPError(403)
        self.set_header("Content-Type", service.metrics.content_type)
        self.finish(service.metrics.render())


def make_app(service) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{service.service_name}/")
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(TEMPLATES)),
            jinja2.FileSystemLoader(os.path.join(DATA_FILES_PATH, "templates")),
        ]
    )
    hub_auth = HubOAuth(api_token=service.api_token, api_url=service.api_url, cache_max_age=60)
    return web.Application(
        [
            (prefix, MainHandler),
            (prefix + "opt-out", OptOutHandler),
            (prefix + r"usage\.(csv|json)", ExportHandler),
            (prefix + "metrics", MetricsHandler),
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
        ],
        hub_auth=hub_auth,
        workshop_service=service,
        service_prefix=prefix,
        jinja_env=jinja2.Environment(loader=loader, autoescape=True),
        cookie_secret=secrets.token_bytes(32),
        xsrf_cookies=True,
        login_url=hub_auth.login_url,
    )
