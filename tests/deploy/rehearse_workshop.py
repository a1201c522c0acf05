"""The rehearsal's workshop: one install of the chart, used the way an organizer and the
people at a workshop use it. Runs inside the rehearsal's namespaces (test_rehearsal.py).

The tests run in file order on one installation: an instructor and a participant sign in with
cards and each gets a server through the workshop spawner, run code in a kernel, find the
workshop service; then the organizer sets a night window around now (``helm upgrade`` and a
hub restart, as the README says), the service stops the participant's server and not the
instructor's, and the usage records say so. Last, the end of the workshop as the README's
"Afterwards" has it: the closing stops every server, the chart's archive Job (run as a Job's
pod, with its own service account and Role) archives every home to the organizer's claim and
to S3 with the organizer's Secret, the organizer verifies and restores from their machine,
and only then deletes the homes.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.rehearsal.loadtest.participant import Options, Participant
from jupyterhub_workshop.rehearsal.loadtest.report import UserResult
from tests.chart.helpers import HUB_ETC, ci_values, deep_merge, secret_data
from tests.harness.browser import login, new_session
from tests.harness.hub import http_status, poll, wait_for
from tests.homes.helpers import assert_same_tree, fill_home

from .inside import hosts_file, make_cards, run_dir
from .install import HUB_ENV, HUB_IMAGE, SINGLEUSER_ENV, Installation
from .jobs import JOB_NODE, JobRun, run_job

# one event loop for the module: the browsers' sessions (cookies) live across the tests
in_module_loop = pytest.mark.asyncio(loop_scope="module")

# the kernel runs in the single-user environment, with the hub's JupyterHub major.minor
CODE = (
    f"import sys, jupyterhub; print(6 * 7, jupyterhub.__version__[:4], sys.prefix == {str(SINGLEUSER_ENV)!r})"
)
EXPECT = "42 5.5. True"
SHARED_NFS = {"server": "10.0.0.5", "path": "/export/shared"}


def workshop_values(accounts_yaml: str, **cull) -> dict:
    """minimal-values.yaml with the accounts given as a file (--set-file), NFS shared data, and
    the service passing every few seconds."""
    return deep_merge(
        ci_values("minimal-values.yaml"),
        {
            "workshop": {
                "title": "Deployment rehearsal",
                "accounts": {"existingSecret": "", "file": accounts_yaml},
                "sharedData": {"nfs": SHARED_NFS},
                "cull": {"every": 2, **cull},
            }
        },
    )


@pytest.fixture(scope="module")
def cards():
    accounts_yaml, cards = make_cards(run_dir() / "cards")
    return accounts_yaml, cards


@pytest.fixture(scope="module")
def workshop(cards):
    accounts_yaml, _ = cards
    installation = Installation(run_dir() / "workshop", workshop_values(accounts_yaml), {}, hosts_file())
    installation.start()
    try:
        yield installation
    finally:
        codes = installation.stop()
    assert codes["hub"] == 0, installation_log(installation, "hub")


def installation_log(installation: Installation, name: str) -> str:
    logs = sorted((installation.root / "pods").glob(f"{name}-*/container.log"))
    return f"{name} log:\n" + (logs[-1].read_text(errors="replace")[-4000:] if logs else "(none)")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def people(workshop, cards):
    """The instructor's and a participant's browsers (cookies of their own)."""
    _, cards = cards
    connector = aiohttp.TCPConnector(limit=0)
    options = Options(url=workshop.hub_url, code=CODE, expect=EXPECT, stop=False, spawn_timeout=180)
    names = {"instructor": "rehearsalinstructor01", "participant": "rehearsal001"}
    browsers = {
        role: Participant(options, name, cards[name].password, UserResult(name), connector)
        for role, name in names.items()
    }
    yield browsers
    for browser in browsers.values():
        await browser.close()
    await connector.close()


async def get(browser: Participant, url: str) -> tuple[int, str]:
    async with browser.session.get(url) as response:
        return response.status, await response.text()


async def api(browser: Participant, path: str):
    """The hub's REST API as the browser's own pages call it (cookie and XSRF token)."""
    url = f"{browser.o.url}/hub/api{path}"
    async with browser.session.get(url, headers=browser._api_headers(url)) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.json()


def user_pod(workshop: Installation, username: str) -> dict | None:
    pods = workshop.cluster.list(
        "pods", label_selector=f"component=singleuser-server,hub.jupyter.org/username={username}"
    )
    return pods[0] if pods else None


# --- the hub pod -------------------------------------------------------------------------------


def test_hub_runs_z2jh_config_from_its_pod_on_the_in_cluster_configuration(workshop):
    hub = workshop.pods["hub"]
    configmap = workshop.release.find("ConfigMap", "hub")["data"]
    mounts = {m["target"]: m for m in hub.spec["mounts"]}

    # z2jh's container command, and z2jh's jupyterhub_config.py exactly as rendered
    assert hub.spec["argv"] == ["jupyterhub", "--config", f"{HUB_ETC}/jupyterhub_config.py", "--upgrade-db"]
    config_mount = mounts[f"{HUB_ETC}/jupyterhub_config.py"]
    with open(config_mount["source"]) as f:
        assert f.read() == configmap["jupyterhub_config.py"]
    assert config_mount["readOnly"] is False  # as z2jh mounts it
    # the chart's Secret `hub` as a directory, the accounts Secret, the hub's volume
    assert {
        f"{HUB_ETC}/secret",
        f"{HUB_ETC}/existing-secret",
        "/etc/workshop/accounts",
        "/srv/jupyterhub",
    } <= set(mounts)
    # KubeSpawner's in-cluster configuration: service account files and the API server's Service
    account = mounts["/var/run/secrets/kubernetes.io/serviceaccount"]["source"]
    with open(f"{account}/namespace") as f:
        assert f.read() == workshop.cluster.namespace
    env = hub.spec["env"]
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "443")
    assert "KUBECONFIG" not in env and workshop.cluster.url.startswith("https://")
    assert env["HUB_SERVICE_PORT"] == "8081" and env["PROXY_API_SERVICE_PORT"] == "8001"
    assert env["PROXY_PUBLIC_SERVICE_PORT"] == "80" and env["POD_NAMESPACE"] == "hackweek"
    assert (
        env["CONFIGPROXY_AUTH_TOKEN"]
        == secret_data(workshop.release.find("Secret", "hub"))["hub.config.ConfigurableHTTPProxy.auth_token"]
    )
    assert env["PATH"].startswith(f"{HUB_ENV}/bin:")
    # a private /tmp, which keeps the hub's environment at its path when the checkout is under /tmp
    assert mounts["/tmp"]["tmpfs"] is True
    assert mounts["/tmp"].get("keep", []) == ([str(HUB_ENV)] if str(HUB_ENV).startswith("/tmp/") else [])

    log = hub.log_text()
    assert "Running JupyterHub version 5.5.0" in log
    assert (
        f"Loading {HUB_ETC}/secret/values.yaml" in log
        and f"Loading {HUB_ETC}/existing-secret/values.yaml" in log
    )
    assert f"Loading {HUB_ETC}/jupyterhub_config.d config: workshop.py" in log
    assert "WorkshopAuthenticator" in log and "WorkshopKubeSpawner" in log
    assert "Traceback" not in log
    # the proxy runs the rendered command, pointed at the hub by its Service name
    assert workshop.pods["proxy"].spec["argv"][:1] == ["configurable-http-proxy"]
    assert "--default-target=http://hub:8081" in workshop.pods["proxy"].spec["argv"]


# --- people ------------------------------------------------------------------------------------


@in_module_loop
async def test_instructor_and_participant_sign_in_spawn_and_run_code(workshop, people):
    instructor, participant = people["instructor"], people["participant"]
    await asyncio.gather(instructor.run(), participant.run())
    for browser in (instructor, participant):
        assert browser.result.error is None, (
            browser.username,
            browser.result.error,
            installation_log(workshop, "hub"),
        )
        assert browser.server_url == f"{workshop.hub_url}/user/{browser.username}/"

    readme = workshop.release.find("ConfigMap", "workshop-readme")["data"]["README.md"]
    for browser, writable in ((instructor, True), (participant, False)):
        pod = user_pod(workshop, browser.username)
        assert pod is not None and pod["status"]["phase"] == "Running", pod
        name = pod["metadata"]["name"]
        # the single-user image's command, from its environment; postStart ran and succeeded
        container = pod["spec"]["containers"][0]
        assert container["args"][0] == "jupyterhub-singleuser"
        assert container["image"] == "ghcr.io/jupyterhub-workshop/singleuser:0.1.0.dev0"
        assert workshop.cluster.pod(name)["env"]["PATH"].startswith(f"{SINGLEUSER_ENV}/bin:")
        assert workshop.cluster.post_start(name)["exit_code"] == 0, workshop.cluster.post_start(name)
        # the home claim: created by the workshop spawner, bound, mounted at /home/jovyan
        [claim] = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        ]
        pvc = workshop.cluster.get("persistentvolumeclaims", claim)
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
        home = workshop.cluster.pvc_path(claim)
        assert workshop.cluster.pod_home(name) == home
        # the ready home: README from the chart's ConfigMap, ~/shared, ~/shared-readwrite for instructors
        assert (home / "README.md").read_text() == readme
        assert (home / "shared").is_symlink()
        assert (home / "shared-readwrite").is_symlink() is writable
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/srv/shared"]["readOnly"] is True
        assert ("/srv/shared-readwrite" in mounts) is writable
        assert {v["name"]: v for v in pod["spec"]["volumes"]}[mounts["/srv/shared"]["name"]][
            "nfs"
        ] == SHARED_NFS

    # KubeSpawner used the hub's service account token, and the chart's Role allowed everything
    assert workshop.cluster.refused() == []
    assert workshop.cluster.requests_by_user().get("system:serviceaccount:hackweek:hub", 0) > 0


@in_module_loop
async def test_the_workshop_service_is_in_the_services_menu(workshop, people):
    for browser in people.values():
        status, page = await get(browser, f"{workshop.hub_url}/hub/home")
        assert status == 200
        assert '<a class="dropdown-item" href="/services/workshop/">workshop</a>' in page


@in_module_loop
async def test_instructors_get_the_admin_page_participants_the_opt_out_page(workshop, people):
    status, admin = await get(people["instructor"], f"{workshop.hub_url}/services/workshop/")
    assert status == 200 and "Running servers" in admin
    assert "rehearsal001" in admin and "rehearsalinstructor01" in admin
    status, mine = await get(people["participant"], f"{workshop.hub_url}/services/workshop/")
    assert status == 200 and "Your server tonight" in mine and "Your server is running" in mine
    assert "There is no night-time stop on this hub." in mine  # until the organizer sets one
    assert "Running servers" not in mine


# --- each server's memory and CPU: the chart's Role for pod metrics ---------------------------

METRICS_ROLE = "workshop-pod-metrics"
RBAC = "rbac.authorization.k8s.io/v1"


def memory_cells(admin: str) -> dict[str, str]:
    """The servers table's Memory cell by user (empty when the page shows no memory)."""
    rows = re.findall(r'<td data-label="User">([^<]+)</td>.*?<td data-label="Memory">(.*?)</td>', admin, re.S)
    return {user: cell.strip() for user, cell in rows}


async def admin_memory(workshop: Installation, instructor: Participant) -> tuple[dict[str, str], str]:
    status, admin = await get(instructor, f"{workshop.hub_url}/services/workshop/")
    assert status == 200, admin[-2000:]
    return memory_cells(admin), admin


@in_module_loop
async def test_the_admin_page_shows_each_servers_memory_by_the_charts_pod_metrics_role(workshop, people):
    instructor = people["instructor"]
    names = [browser.username for browser in people.values()]
    # the chart's Role is the hub's only grant of pod metrics (z2jh's Role `hub` has none), and
    # the emulated API server enforces RBAC: what the page shows, the chart's Role allowed
    granting = [
        (obj["kind"], obj["metadata"]["name"])
        for obj in workshop.release.objects
        if obj["kind"] in ("Role", "ClusterRole")
        and any({"metrics.k8s.io", "*"} & set(rule.get("apiGroups") or []) for rule in obj.get("rules") or [])
    ]
    assert granting == [("Role", METRICS_ROLE)]
    stored = workshop.cluster.get(f"{RBAC}/roles", METRICS_ROLE)
    assert stored["rules"] == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}
    ]
    [subject] = workshop.cluster.get(f"{RBAC}/rolebindings", METRICS_ROLE)["subjects"]
    assert (subject["kind"], subject["name"]) == ("ServiceAccount", "hub")

    async def memory_shown():
        cells, admin = await admin_memory(workshop, instructor)
        shown = all(re.match(r"\d+(\.\d+)? (KiB|MiB|GiB)", cells.get(name, "")) for name in names)
        return (cells, admin) if shown else None

    _, admin = await poll(memory_shown, 60, interval=0.5, message="the servers' memory on the admin page")
    assert 'id="resources-error"' not in admin and "refused" not in admin and "not available" not in admin
    assert 'id="memory-head"' in admin and 'id="near-count"' in admin
    # the service read the pods' metrics as the hub's service account, through the emulated API
    namespace = workshop.cluster.namespace
    assert any(
        path.startswith(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
        for _, path in workshop.cluster.requests()
    )
    assert workshop.cluster.refused() == []


# --- the card desk ------------------------------------------------------------------------------

DESK = {}  # what the desk handed out, for the check after the upgrade


async def can_sign_in(workshop: Installation, username: str, password: str) -> bool:
    async with new_session() as session:
        return (await login(session, workshop.hub_url, username, password)).ok


@in_module_loop
async def test_the_card_desk_reissues_a_lost_card(workshop, people, cards):
    _, card_of = cards
    instructor = people["instructor"]  # a hub admin (instructors_are_admins)
    desk = f"{workshop.hub_url}/services/workshop/desk"
    status, page = await get(instructor, desk + "?username=rehearsal002")
    assert status == 200 and 'id="desk-reissue"' in page, page[-2000:]
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    fields = {"_xsrf": xsrf, "action": "reissue", "username": "rehearsal002"}
    async with instructor.session.post(desk + "/confirm", data=fields) as response:
        confirmation = await response.text()
        assert response.status == 200, confirmation[-2000:]
    token = re.search(r'name="confirm" value="([^"]+)"', confirmation).group(1)
    async with instructor.session.post(desk + "/do", data={**fields, "confirm": token}) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        card = await response.text()
    password = re.search(
        r'<span class="label">Password</span><span class="value">([^<]+)</span>', card
    ).group(1)
    DESK["rehearsal002"] = password

    async def only_the_new_password():
        return await can_sign_in(workshop, "rehearsal002", password) and not await can_sign_in(
            workshop, "rehearsal002", card_of["rehearsal002"].password
        )

    await poll(only_the_new_password, 30, message="the reissued card to take over")


def metrics_address(workshop: Installation) -> str:
    """Where Prometheus scrapes the service: the workshop-metrics Service's annotations."""
    annotations = workshop.service("workshop-metrics")["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    return (
        workshop.service_url("workshop-metrics", int(annotations["prometheus.io/port"]))
        + annotations["prometheus.io/path"]
    )


def culls(metrics: str, reason: str) -> float:
    found = re.search(rf'^workshop_culls_total{{reason="{reason}"}} (\S+)$', metrics, re.M)
    assert found, metrics[:2000]
    return float(found.group(1))


@in_module_loop
async def test_metrics_service_serves_the_workshop_metrics(workshop):
    async with aiohttp.ClientSession() as session:
        async with session.get(metrics_address(workshop)) as response:
            assert response.status == 200 and response.content_type == "text/plain"
            metrics = await response.text()
    assert culls(metrics, "night") == 0
    assert "workshop_active_users" in metrics and "workshop_session_duration_seconds" in metrics


# --- a night window around now -----------------------------------------------------------------


@in_module_loop
async def test_night_window_stops_the_participant_and_not_the_instructor(workshop, people, cards):
    instructor, participant = people["instructor"], people["participant"]
    now = datetime.now(UTC)
    night = {
        "start": (now - timedelta(minutes=2)).strftime("%H:%M"),
        "end": (now + timedelta(minutes=60)).strftime("%H:%M"),
        "timeZone": "UTC",
    }
    # what the README says for changed workshop settings: helm upgrade, then restart the hub
    workshop.release.upgrade(workshop_values(cards[0], night=night))
    workshop.restart_hub()
    assert workshop.hub_starts == 2

    async def participant_stopped():
        return not (await api(instructor, f"/users/{participant.username}"))["servers"]

    await poll(participant_stopped, 90, interval=0.5, message="the night window to stop the participant")
    wait_for(
        lambda: user_pod(workshop, participant.username) is None, 60, message="the participant's pod to go"
    )

    # the instructor's server kept running through the hub restart and the night: code still runs
    model = await api(instructor, f"/users/{instructor.username}")
    assert model["servers"][""]["ready"] is True
    assert user_pod(workshop, instructor.username)["status"]["phase"] == "Running"
    await instructor.start_kernel()
    await instructor.run_code()
    await instructor._cleanup_kernel()
    # the night banner, on the hub's pages of people with a running server
    status, home = await get(instructor, f"{workshop.hub_url}/hub/home")
    assert status == 200 and "opt out for tonight" in home
    # the participant's page now offers to keep the server tonight
    status, mine = await get(participant, f"{workshop.hub_url}/services/workshop/")
    assert status == 200 and "You have no server running." in mine and "Keep my server tonight" in mine
    # the participant's home claim is kept
    assert workshop.cluster.list(
        "persistentvolumeclaims", label_selector=f"hub.jupyter.org/username={participant.username}"
    )
    assert workshop.cluster.refused() == []


@in_module_loop
async def test_the_desks_changes_outlive_the_upgrade_with_the_original_accounts(workshop, cards):
    # the night test upgraded the release with the organizer's original accounts and restarted
    # the hub: the desk's file on the hub's volume still wins
    _, card_of = cards
    assert workshop.hub_starts == 2
    assert await can_sign_in(workshop, "rehearsal002", DESK["rehearsal002"])
    assert not await can_sign_in(workshop, "rehearsal002", card_of["rehearsal002"].password)


@in_module_loop
async def test_usage_records_the_night_stop(workshop, people):
    instructor, participant = people["instructor"], people["participant"]
    status, text = await get(instructor, f"{workshop.hub_url}/services/workshop/usage.csv")
    assert status == 200, text
    rows = list(csv.DictReader(io.StringIO(text)))
    by_user = {}
    for row in rows:
        by_user.setdefault(row["user"], []).append(row)
    [session] = by_user[participant.username]
    assert session["stop_reason"] == "night" and session["stopped"], session
    [open_session] = by_user[instructor.username]
    assert not open_session["stopped"], open_session
    async with aiohttp.ClientSession() as metrics_session:
        async with metrics_session.get(metrics_address(workshop)) as response:
            assert culls(await response.text(), "night") == 1
    # participants may not read the records
    assert (await get(participant, f"{workshop.hub_url}/services/workshop/usage.csv"))[0] == 403
    assert http_status(f"{workshop.hub_url}/hub/health") == 200


@in_module_loop
async def test_without_the_charts_role_binding_pod_metrics_are_refused(workshop, people):
    # last, as the refusals stay in the API server's record: the instructor's server still runs
    instructor = people["instructor"]
    binding = workshop.release.find("RoleBinding", METRICS_ROLE)
    workshop.cluster.delete(f"{RBAC}/rolebindings", METRICS_ROLE)

    async def refused_shown():
        _, admin = await admin_memory(workshop, instructor)
        return admin if "Reading pod metrics was refused (403)" in admin else None

    admin = await poll(refused_shown, 30, interval=0.5, message="the refusal on the admin page")
    assert memory_cells(admin).get(instructor.username) == ""
    namespace = workshop.cluster.namespace
    refused = workshop.cluster.refused()
    assert refused and {(r["code"], r["path"].split("?")[0]) for r in refused} == {
        (403, f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
    }

    workshop.cluster.create(f"{RBAC}/rolebindings", binding)  # helm upgrade puts it back

    async def memory_again():
        cells, _ = await admin_memory(workshop, instructor)
        return re.match(r"\d+(\.\d+)? (KiB|MiB|GiB)", cells.get(instructor.username, ""))

    await poll(memory_again, 30, interval=0.5, message="the memory back with the chart's RoleBinding")


# --- the end of the workshop: close, archive with the chart's Job, verify, delete ------------

CLOSED = "The workshop has ended. For your files, write to organizers@example.org."
ARCHIVE_CLAIM = "workshop-archive"  # the organizer's claim for the archives
ARCHIVE_SECRET = "workshop-archive-s3"  # the organizer's Secret: S3 credentials
ARCHIVE_URL = "s3://workshop-archive/hackweek/homes"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "rehearsal-archive", "AWS_SECRET_ACCESS_KEY": "rehearsal-archive-secret-0f3c"}
JOB_ACCOUNT = "system:serviceaccount:hackweek:workshop-archive"


@in_module_loop
async def test_the_closing_stops_every_server_and_only_staff_sign_in(workshop, people, cards):
    instructor = people["instructor"]
    _, card_of = cards
    # now: every server running started before it (staff may start theirs again afterwards)
    closing = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "message": CLOSED}
    workshop.release.upgrade(deep_merge(workshop.release.values, {"workshop": {"closing": closing}}))
    workshop.restart_hub()
    wait_for(
        lambda: user_pod(workshop, instructor.username) is None,
        60,
        message="the closing to stop the last server",
    )
    async with new_session() as session:
        refused = await login(session, workshop.hub_url, "rehearsal001", card_of["rehearsal001"].password)
    assert refused.status == 403 and CLOSED in refused.text, (refused.status, refused.text[-2000:])
    assert await can_sign_in(workshop, instructor.username, card_of[instructor.username].password)

    async def stop_reasons():
        status, text = await get(instructor, f"{workshop.hub_url}/services/workshop/usage.csv")
        assert status == 200, text
        reasons = {row["user"]: row["stop_reason"] for row in csv.DictReader(io.StringIO(text))}
        return reasons if reasons[instructor.username] else None

    # the service records the cull once the hub has stopped the server (the pod goes first)
    reasons = await poll(stop_reasons, 30, interval=0.5, message="the closing's stop in the usage records")
    assert reasons == {instructor.username: "closed", "rehearsal001": "night"}


def home_claims(workshop: Installation) -> dict[str, str]:
    """Claim name by user: the claims KubeSpawner made (what Helm's ``lookup`` finds on a cluster)."""
    return {
        claim["metadata"]["annotations"]["hub.jupyter.org/username"]: claim["metadata"]["name"]
        for claim in workshop.cluster.list(
            "persistentvolumeclaims", label_selector="component=singleuser-storage"
        )
    }


def upgrade_archive(workshop: Installation, **archive) -> str:
    """``helm upgrade --reuse-values`` with ``workshop.archive`` as given; the new Job's name."""
    values = copy.deepcopy(workshop.release.values)
    values["workshop"]["archive"] = {"enabled": True, **archive}
    workshop.release.upgrade(values)
    name = f"workshop-archive-{workshop.release.revision}"
    assert workshop.release.find("Job", name)["metadata"]["name"] == name
    return name


def upgrade_to_s3(workshop: Installation, s3: str) -> str:
    """``workshop.archive`` to S3 with the organizer's Secret, every home claim listed."""
    return upgrade_archive(
        workshop,
        url=ARCHIVE_URL,
        existingSecret=ARCHIVE_SECRET,
        endpointUrl=s3,
        claims=sorted(home_claims(workshop).values()),
    )


def job_pods(workshop: Installation, name: str) -> list[dict]:
    return workshop.cluster.list("pods", label_selector=f"job-name={name}")


def refused_to_the_job(workshop: Installation) -> list[dict]:
    return [r for r in workshop.cluster.refused() if r["user"] == JOB_ACCOUNT]


@pytest.fixture(scope="module")
def organizer(tmp_path_factory):
    """Where the organizer restores homes on their machine."""
    return tmp_path_factory.mktemp("organizer")


def at_the_organizers_machine(workshop: Installation, monkeypatch, s3: str | None = None) -> None:
    """The organizer's environment: kubectl's configuration for the cluster (an admin's), and
    with ``s3`` the archive's storage and credentials, as AWS's tools read them."""
    monkeypatch.setenv("KUBECONFIG", str(workshop.cluster.kubeconfig))
    if s3 is not None:
        for key, value in {**S3_KEYS, "AWS_ENDPOINT_URL_S3": s3}.items():
            monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def s3():
    """S3-compatible storage the pods reach (moto's server, on this namespace's loopback), with
    the organizer's bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            **{
                "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
            },
        )
        client.create_bucket(Bucket="workshop-archive")
        yield endpoint
    finally:
        server.stop()


def test_rendered_without_lookup_the_archive_job_fails_naming_every_home_claim(workshop):
    claims = home_claims(workshop)
    assert sorted(claims) == ["rehearsal001", "rehearsalinstructor01"]
    for seed, claim in enumerate(sorted(claims.values())):  # what people leave in their homes
        fill_home(workshop.cluster.pvc_path(claim), seed=seed, big=64 * 1024)
    workshop.cluster.create(
        "persistentvolumeclaims",
        {
            "metadata": {"name": ARCHIVE_CLAIM},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
        },
    )
    # Helm's `lookup` finds the home claims on a cluster; rendered without it (as here, or by
    # `helm template` and Argo CD) the Job mounts no home: it must not say it is done
    name = upgrade_archive(workshop, pvcName=ARCHIVE_CLAIM)
    run = run_job(workshop, name, HUB_IMAGE)
    assert not run.complete and run.status["conditions"][0]["reason"] == "BackoffLimitExceeded", run.logs()
    backoff_limit = workshop.release.find("Job", name)["spec"]["backoffLimit"]
    assert [a.exit_code for a in run.attempts] == [1] * (backoff_limit + 1), run.logs()
    for attempt in run.attempts:
        assert "2 home claims of namespace hackweek not found under /homes, NOT archived" in attempt.log
        assert all(claim in attempt.log for claim in claims.values()), attempt.log
    # each attempt a pod of its own, on the Job's node, Failed and kept (restartPolicy Never)
    pods = job_pods(workshop, name)
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(a.pod for a in run.attempts)
    assert {(p["spec"]["nodeName"], p["status"]["phase"]) for p in pods} == {(JOB_NODE, "Failed")}
    manifest = workshop.cluster.pvc_path(ARCHIVE_CLAIM) / "manifest.json"
    assert not manifest.exists() or json.loads(manifest.read_text())["homes"] == []


def check_archive_run(workshop: Installation, run: JobRun, destination: str) -> dict:
    """The Job's one pod archived every home and said so; what it ran."""
    claims = home_claims(workshop)
    assert run.complete and len(run.attempts) == 1, run.logs()
    [attempt] = run.attempts
    assert "2 homes archived and verified" in attempt.log and "0 failed" in attempt.log, attempt.log
    expected_args = ["homes", "archive", "--homes", "/homes", "--to", destination, "--namespace", "hackweek"]
    for claim in sorted(claims.values()):
        expected_args += ["--only", claim]
    assert attempt.spec["argv"] == ["jupyterhub-workshop", *expected_args]
    mounts = {m["target"]: m for m in attempt.spec["mounts"]}
    for claim in claims.values():  # every home read-only, where the Job looks for it
        assert mounts[f"/homes/{claim}"]["source"] == str(workshop.cluster.pvc_path(claim))
        assert mounts[f"/homes/{claim}"]["readOnly"] is True
    # its own service account, whose Role let it list the claims and nothing was refused
    assert workshop.cluster.requests_by_user().get(JOB_ACCOUNT, 0) > 0
    assert refused_to_the_job(workshop) == []
    assert [p["status"]["phase"] for p in job_pods(workshop, run.name)] == ["Succeeded"]
    return attempt.spec


def restored_equal(workshop: Installation, place, archive: str) -> None:
    """From the organizer's machine (:func:`at_the_organizers_machine`): every home claim
    covered (each archive read back), and each home restored byte for byte into ``place``."""
    assert main(["homes", "verify", "--namespace", "hackweek", "--archive", archive, "--read"]) == 0
    for claim in home_claims(workshop).values():
        into = place / f"{len(list(place.iterdir()))}-{claim}"
        assert main(["homes", "restore", "--archive", archive, claim, "--into", str(into)]) == 0
        assert_same_tree(into, workshop.cluster.pvc_path(claim))


def test_the_archive_job_archives_every_home_into_the_organizers_claim(
    workshop, organizer, monkeypatch, capsys
):
    claims = home_claims(workshop)
    failed = f"workshop-archive-{workshop.release.revision}"
    name = upgrade_archive(workshop, pvcName=ARCHIVE_CLAIM, claims=sorted(claims.values()))
    # the upgrade removed the previous revision's Job, and with it its pods
    assert workshop.cluster.get("batch/v1/jobs", failed) is None
    wait_for(lambda: job_pods(workshop, failed) == [], 30, message=f"{failed}'s pods to go")
    run = run_job(workshop, name, HUB_IMAGE)
    spec = check_archive_run(workshop, run, "/archive")
    archive = workshop.cluster.pvc_path(ARCHIVE_CLAIM)
    assert {m["target"]: m.get("source") for m in spec["mounts"]}["/archive"] == str(archive)
    manifest = json.loads((archive / "manifest.json").read_text())
    assert {record["user"]: record["home"] for record in manifest["homes"]} == claims
    at_the_organizers_machine(workshop, monkeypatch)
    restored_equal(workshop, organizer, str(archive))
    assert "2 of 2 homes covered" in capsys.readouterr().out


def test_the_archive_job_archives_to_s3_with_the_organizers_secret(
    workshop, organizer, s3, monkeypatch, capsys
):
    workshop.cluster.create(
        "secrets", {"metadata": {"name": ARCHIVE_SECRET}, "type": "Opaque", "stringData": S3_KEYS}
    )
    name = upgrade_to_s3(workshop, s3)
    run = run_job(workshop, name, HUB_IMAGE)
    spec = check_archive_run(workshop, run, ARCHIVE_URL)
    # the credentials reach the Job from the Secret, as its environment, never on its command line
    assert {key: spec["env"].get(key) for key in S3_KEYS} == S3_KEYS
    assert spec["env"]["AWS_ENDPOINT_URL_S3"] == s3
    assert not any(value in " ".join(spec["argv"]) for value in S3_KEYS.values())
    at_the_organizers_machine(workshop, monkeypatch, s3)
    restored_equal(workshop, organizer, ARCHIVE_URL)
    assert "2 of 2 homes covered" in capsys.readouterr().out


def test_without_its_role_binding_the_archive_job_is_refused_and_fails(workshop, s3):
    name = upgrade_to_s3(workshop, s3)
    binding = workshop.release.find("RoleBinding", "workshop-archive")
    workshop.cluster.delete(f"{RBAC}/rolebindings", "workshop-archive")
    try:
        run = run_job(workshop, name, HUB_IMAGE)
    finally:
        workshop.cluster.create(f"{RBAC}/rolebindings", binding)
    assert not run.complete, run.logs()
    for attempt in run.attempts:
        assert attempt.exit_code == 1
        assert attempt.log.strip().endswith(
            "Role workshop-archive; from your machine, your kubectl user needs it"
        ), attempt.log
        assert "refused to list persistentvolumeclaims in namespace hackweek (403 Forbidden)" in attempt.log
    refused = refused_to_the_job(workshop)
    assert {(r["code"], r["method"], r["path"].split("?")[0]) for r in refused} == {
        (403, "GET", "/api/v1/namespaces/hackweek/persistentvolumeclaims")
    }


def test_then_and_only_then_the_homes_are_deleted(workshop, s3, monkeypatch, capsys):
    at_the_organizers_machine(workshop, monkeypatch, s3)
    claims = sorted(home_claims(workshop).values())
    delete = ["homes", "delete", "--namespace", "hackweek", "--archive", ARCHIVE_URL]
    assert main(delete) == 0
    assert f"would delete 2 homes in namespace hackweek: {', '.join(claims)}" in capsys.readouterr().out
    assert len(home_claims(workshop)) == 2
    assert main([*delete, "--yes"]) == 0
    assert home_claims(workshop) == {}
    # the organizer's archive claim is theirs to keep
    assert workshop.cluster.get("persistentvolumeclaims", ARCHIVE_CLAIM) is not None
