"""The service's pre-warm around the schedule's pure decision (jupyterhub_workshop.schedule, tested
in tests/test_schedule.py): people expected from the participant cards, the refusal of a schedule
that meets the night window, and the count changed only when it differs. The Kubernetes side, over
HTTP with the real client, is in test_prewarm_e2e.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import argon2
import pytest
from traitlets import TraitError
from traitlets.config import Config

from jupyterhub_workshop.hubconfig.services import service_config
from jupyterhub_workshop.login.accounts import Account, save_accounts
from jupyterhub_workshop.schedule import Schedule
from jupyterhub_workshop.service.app import WorkshopService
from jupyterhub_workshop.service.metrics import WorkshopMetrics
from jupyterhub_workshop.service.policy import NightWindow
from jupyterhub_workshop.service.prewarm import (
    Prewarmer,
    admin_view,
    describe_session,
    night_overlaps,
    participants,
)

from .test_web import render_admin

LEAD, HOLD = timedelta(minutes=20), timedelta(minutes=30)
# Tuesday 2026-07-14, 09:00-17:00 UTC
DAY = {"timeZone": "UTC", "sessions": [{"days": ["2026-07-14"], "start": "09:00", "end": "17:00"}]}
BEFORE = datetime(2026, 7, 14, 8, 0, tzinfo=UTC)
INSIDE = datetime(2026, 7, 14, 8, 45, tzinfo=UTC)
AFTER_HOLD = datetime(2026, 7, 14, 9, 31, tzinfo=UTC)
HASH = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("not-a-card")


def write_accounts(path, participants_: int, instructors: int = 1, revoked: tuple[str, ...] = ()):
    accounts = [Account(f"p{i:03d}", HASH, "participant") for i in range(participants_)]
    accounts += [Account(f"i{i:02d}", HASH, "instructor") for i in range(instructors)]
    save_accounts(path, [replace(a, revoked=a.username in revoked) for a in accounts])
    return path


def prewarmer(schedule=DAY, **kw) -> Prewarmer:
    kw.setdefault("users_per_node", 4)
    return Prewarmer(Schedule.parse(schedule), lead=LEAD, hold=HOLD, **kw)


# --- people expected ---------------------------------------------------------------------------


async def test_expected_people_are_the_participant_cards_not_revoked(tmp_path):
    accounts = write_accounts(tmp_path / "accounts.yaml", 10, instructors=2, revoked=("p003",))
    warm = prewarmer(accounts_file=str(accounts))
    assert (await warm.step(BEFORE, running=0)).decided == 0  # outside the stretch: nothing
    status = await warm.step(INSIDE, running=1)
    assert warm.expected_default == 9  # 10 participants, one revoked; instructors do not count
    assert status.warming and status.decided == 2  # 8 without a server, 4 per node
    # cards added later count at the next step (the file is read again when it changes)
    write_accounts(accounts, 17, instructors=2)
    assert (await warm.step(INSIDE, running=1)).decided == 4  # 16 people: 4 nodes
    # the schedule's own number wins over the cards, a session's over the schedule's
    assert (
        await prewarmer({**DAY, "expected": 40}, accounts_file=str(accounts)).step(INSIDE, 0)
    ).decided == 10
    per_session = {**DAY, "expected": 40, "sessions": [{**DAY["sessions"][0], "expected": 6}]}
    assert (await prewarmer(per_session, accounts_file=str(accounts)).step(INSIDE, 0)).decided == 2


async def test_a_file_that_cannot_be_read_keeps_the_last_count_and_says_so_once(tmp_path, caplog):
    accounts = write_accounts(tmp_path / "accounts.yaml", 8)
    warm = prewarmer(accounts_file=str(accounts), log=logging.getLogger("test-prewarm"))
    assert (await warm.step(INSIDE, 0)).decided == 2
    accounts.write_text("- username: [broken\n")
    with caplog.at_level(logging.INFO, "test-prewarm"):
        for minute in (46, 47, 48):
            assert (await warm.step(INSIDE.replace(minute=minute), 0)).decided == 2  # the last count
        write_accounts(accounts, 12)
        assert (await warm.step(INSIDE.replace(minute=49), 0)).decided == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "test-prewarm"]
    assert len(warnings) == 1 and "cannot count participant cards" in warnings[0].getMessage()
    assert "expecting 8 people" in warnings[0].getMessage()
    assert any("can be read again" in r.getMessage() for r in caplog.records)


def test_no_expected_and_no_cards_warns_once_at_start(caplog):
    with caplog.at_level(logging.WARNING, "test-prewarm"):
        warm = prewarmer(log=logging.getLogger("test-prewarm"))
        prewarmer({**DAY, "expected": 10}, log=logging.getLogger("test-prewarm"))  # needs no cards
    assert [r.getMessage() for r in caplog.records if r.name == "test-prewarm"] == [
        "Pre-warm: the schedule gives no `expected` people and there is no accounts_file to count "
        "participant cards from: sessions without `expected` are warmed for 0 people"
    ]
    assert warm.decide(INSIDE, running=0, expected=warm.expected_default) == (0, 0)


def test_people_with_a_server_are_counted_once_whatever_their_servers():
    from types import SimpleNamespace

    from jupyterhub_workshop.service.culler import Culler
    from jupyterhub_workshop.service.tally import UsageTally

    tally = UsageTally(timedelta(minutes=10))
    for user, server in [("amy", ""), ("amy", "gpu"), ("bob", ""), ("cy", "")]:
        tally.started((user, server), INSIDE)
    tally.stopped(("cy", ""), INSIDE)
    assert Culler.running_users(SimpleNamespace(tally=tally)) == 2


def test_participants_count_only_participant_cards_in_use():
    cards = [
        Account("a", HASH),
        Account("b", HASH, revoked=True),
        Account("c", HASH, "instructor"),
        Account("d", HASH),
    ]
    assert participants(cards) == 2


# --- the night window ------------------------------------------------------------------------


def service(**settings) -> WorkshopService:
    settings = {"users_per_node": 4, "prewarm_deployment": "workshop-prewarm", **settings}
    return WorkshopService(config=Config({"WorkshopService": settings}))


def test_a_session_or_its_pre_warm_in_the_night_window_is_refused_naming_both():
    evening = {
        "timeZone": "America/Denver",
        "from": "2026-07-13",
        "until": "2026-07-16",
        "sessions": [
            {"days": ["Mon", "Tue"], "start": "09:00", "end": "17:00"},
            {"days": ["Wed"], "start": "19:00", "end": "22:30", "expected": 40},
        ],
    }
    night = {"night_start": "22:00", "night_end": "06:00", "timezone": "America/Denver"}
    with pytest.raises(TraitError) as refused:
        service(schedule=evening, **night).build_policy()
    message = str(refused.value)
    assert message.startswith(
        "schedule.sessions[1] (Wed 19:00–22:30 (40 expected)) and the night window 22:00–06:00 "
        "(America/Denver) (night_start/night_end) overlap: on Wed 2026-07-15 that session is warmed or "
        "runs from 18:40 (prewarm_lead before its start) to 22:30 (America/Denver), and the night window "
        "runs 22:00–06:00 (America/Denver)."
    )
    assert "move the session, or night_start/night_end" in message
    # the hub checks the service's settings with the same code: it refuses to start too
    with pytest.raises(TraitError, match=r"schedule.sessions\[1\]"):
        service_config(
            {"schedule": evening, "users_per_node": 4, "prewarm_deployment": "workshop-prewarm", **night}
        )
    # the run itself clear of the night, its pre-warm stretch not: refused as well
    early = {**evening, "sessions": [{"days": ["Mon"], "start": "06:10", "end": "12:00"}]}
    with pytest.raises(TraitError, match="from 05:50 .prewarm_lead before its start."):
        service(schedule=early, **night).build_policy()
    assert service(schedule=early, prewarm_lead=10, **night).build_policy().night is not None
    # without placeholders to scale nothing is warmed: only the sessions themselves must clear it
    assert service(schedule=early, prewarm_deployment="", **night).build_policy().night is not None
    with pytest.raises(TraitError, match=r"that session runs from 19:00 to 22:30 .* servers in use: move"):
        service(schedule=evening, prewarm_deployment="", **night).build_policy()
    # a night window in another zone is compared in UTC: 22:00 Denver is 04:00 UTC in July
    berlin = {
        **early,
        "timeZone": "Europe/Berlin",
        "sessions": [{"days": ["Mon"], "start": "09:00", "end": "11:00"}],
    }
    with pytest.raises(TraitError, match=r"1 more overlap"):
        service(schedule={**berlin, "until": "2026-07-20"}, **night).build_policy()
    # no night window, or a schedule clear of it: nothing to refuse
    assert service(schedule=evening).build_policy().night is None
    assert service(schedule={**evening, "sessions": evening["sessions"][:1]}, **night).build_policy()


def test_weekday_sessions_without_until_are_checked_for_the_next_60_days():
    # Mondays 12:30-13:30 UTC; the night 22:00-06:00 Denver ends 12:00 UTC in summer time and
    # 13:00 UTC from 2026-11-01 on: only the occurrences after that Sunday meet it
    mondays = Schedule.parse(
        {"timeZone": "UTC", "sessions": [{"days": ["Mon"], "start": "12:30", "end": "13:30"}]}
    )
    night = NightWindow.parse("22:00", "06:00", "America/Denver")
    lead, hold = timedelta(minutes=20), timedelta(minutes=30)
    assert night_overlaps(mondays, night, lead, hold, date(2026, 9, 1)) == []  # up to 2026-10-31
    found = night_overlaps(mondays, night, lead, hold, date(2026, 9, 15))  # up to 2026-11-14
    assert [o.start for o in found] == [datetime(2026, 11, d, 12, 30, tzinfo=UTC) for d in (2, 9)]
    assert found[0].busy == (
        datetime(2026, 11, 2, 12, 10, tzinfo=UTC),
        datetime(2026, 11, 2, 13, 30, tzinfo=UTC),
    )
    assert found[0].night == (datetime(2026, 11, 2, 5, tzinfo=UTC), datetime(2026, 11, 2, 13, tzinfo=UTC))
    # a dated session is checked on its date, however far away; `from` bounds weekdays
    dated = Schedule.parse(
        {
            "timeZone": "UTC",
            "from": "2027-03-01",
            "sessions": [{"days": ["2028-01-10", "Tue"], "start": "12:30", "end": "13:30"}],
        }
    )
    starts = [o.start.date() for o in night_overlaps(dated, night, lead, hold, date(2026, 9, 1))]
    # Tuesdays from 2027-03-01 for 60 days: before summer time starts on 2027-03-14 only
    assert starts == [date(2027, 3, 2), date(2027, 3, 9), date(2028, 1, 10)]
    # the hold counts when it outlasts a short session
    short = Schedule.parse(
        {"timeZone": "UTC", "sessions": [{"days": ["2026-07-14"], "start": "03:00", "end": "03:10"}]}
    )
    assert night_overlaps(short, night, timedelta(0), timedelta(0), date(2026, 7, 1)) == []
    assert len(night_overlaps(short, night, timedelta(0), timedelta(hours=2), date(2026, 7, 1))) == 1


def test_night_windows_overlapping_a_stretch():
    night = NightWindow.parse("22:00", "06:00", "America/Denver")
    day = datetime(2026, 7, 14, 16, tzinfo=UTC)  # 10:00 in Denver
    assert night.overlapping(day, day + timedelta(hours=6)) == []  # until 22:00 UTC, 16:00 Denver
    assert night.overlapping(day, day + timedelta(hours=12, minutes=1)) == [
        (datetime(2026, 7, 15, 4, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))
    ]
    assert len(night.overlapping(day, day + timedelta(days=2))) == 2
    assert night.overlapping(datetime(2026, 7, 15, 11, 59, tzinfo=UTC), datetime(2026, 7, 15, 13, tzinfo=UTC))


async def test_placeholders_need_users_per_node_a_schedule_alone_does_not():
    with pytest.raises(TraitError, match="prewarm_deployment needs users_per_node"):
        service(schedule=DAY, users_per_node=0, prewarm_deployment="workshop-prewarm").build_policy()
    with pytest.raises(TraitError):
        service(prewarm_every=0)
    # a schedule without users_per_node: the page shows the stretches and the people, no count
    alone = service(schedule={**DAY, "expected": 10}, users_per_node=0, prewarm_deployment="")
    alone.build_policy()
    warm = Prewarmer(Schedule.parse(alone.schedule), lead=LEAD, hold=HOLD, users_per_node=0)
    status = await warm.step(INSIDE, running=3)
    assert (status.people, status.decided, status.change) == (7, None, None)
    view = admin_view(warm, INSIDE, 60)
    assert view["count"] == "decided: none" and view["target"].startswith("7 people to keep warm for;")


def test_the_service_process_refuses_a_schedule_in_the_night_with_one_line(tmp_path):
    config = tmp_path / "service.json"
    schedule = {"timeZone": "UTC", "sessions": [{"days": ["Fri"], "start": "21:00", "end": "23:30"}]}
    settings = {"schedule": schedule, "users_per_node": 4, "night_start": "23:00", "night_end": "05:00"}
    config.write_text(
        json.dumps({"WorkshopService": {**settings, "db_url": f"sqlite:///{tmp_path / 'u.sqlite'}"}})
    )
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub_workshop.service", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9"},
    )
    assert done.returncode == 1
    assert (
        "schedule.sessions[0] (Fri 21:00–23:30)" in done.stderr and "night window 23:00–05:00" in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "u.sqlite").exists()  # refused before anything was opened


# --- the count changes only when it differs --------------------------------------------------


class RecordingScale:
    """Stands in for DeploymentScale (same read/write/close), recording what is asked."""

    name, where = "workshop-prewarm", "hackweek/workshop-prewarm"

    def __init__(self, replicas: int = 0):
        self.replicas = replicas
        self.calls: list[tuple] = []
        self.fail: Exception | None = None

    async def read(self) -> int:
        self.calls.append(("read",))
        if self.fail:
            raise self.fail
        return self.replicas

    async def write(self, replicas: int) -> int:
        self.calls.append(("write", replicas))
        self.replicas = replicas
        return replicas

    async def close(self) -> None:
        self.calls.append(("close",))


async def test_the_count_is_set_only_when_it_differs():
    scale = RecordingScale(replicas=0)
    metrics = WorkshopMetrics()
    warm = prewarmer({**DAY, "expected": 10}, scale=scale, metrics=metrics)
    steps = [
        (BEFORE, 0, 0),  # before the stretch: 0 wanted, 0 there
        (INSIDE, 0, 3),  # 10 people, 4 per node
        (INSIDE.replace(minute=50), 1, 3),  # 9 people still 3 nodes: no change
        (datetime(2026, 7, 14, 9, 5, tzinfo=UTC), 6, 1),  # 4 people: 1
        (datetime(2026, 7, 14, 9, 6, tzinfo=UTC), 6, 1),
        (AFTER_HOLD, 6, 0),  # the arrivals are in
        (datetime(2026, 7, 14, 18, tzinfo=UTC), 0, 0),
    ]
    for now, running, wanted in steps:
        status = await warm.step(now, running)
        assert (status.decided, status.replicas, scale.replicas) == (wanted, wanted, wanted), now
    writes = [c for c in scale.calls if c[0] == "write"]
    assert writes == [("write", 3), ("write", 1), ("write", 0)]
    assert scale.calls.count(("read",)) == len(steps)  # read at every step, written only on change
    assert warm.status.change.before == 1 and warm.status.change.after == 0
    assert warm.status.change.at == AFTER_HOLD
    text = metrics.render().decode()
    assert "workshop_prewarm_placeholders 0.0" in text and "workshop_prewarm_active 0.0" in text
    await warm.step(INSIDE, 0)
    text = metrics.render().decode()
    assert "workshop_prewarm_placeholders 3.0" in text and "workshop_prewarm_active 1.0" in text
    # someone scaled it by hand: the next step puts back what the schedule wants
    scale.replicas = 7
    await warm.step(INSIDE.replace(minute=46), 0)
    assert scale.replicas == 3 and warm.status.change.before == 7
    await warm.close()
    assert scale.calls[-1] == ("close",)


async def test_without_a_deployment_the_count_is_decided_and_shown_only():
    metrics = WorkshopMetrics()
    warm = prewarmer({**DAY, "expected": 10}, metrics=metrics)
    assert (await warm.step(BEFORE, 0)).change is None  # the first decision is no change
    status = await warm.step(INSIDE, 2)
    assert (status.decided, status.replicas) == (2, None)
    assert (status.change.at, status.change.before, status.change.after) == (INSIDE, 0, 2)
    assert "workshop_prewarm_placeholders 2.0" in metrics.render().decode()
    view = admin_view(warm, INSIDE, 60)
    assert view["count"] == "decided: 2"
    assert view["target"] == "for 8 people; no Deployment set (prewarm_deployment): nothing is scaled"
    assert view["last"] == "Tue 14 Jul 08:45: 0 → 2"


async def test_a_failure_is_logged_once_and_never_raised(caplog):
    from kubernetes_asyncio.client.exceptions import ApiException

    scale = RecordingScale(replicas=0)
    scale.fail = RuntimeError("something unforeseen")
    warm = prewarmer({**DAY, "expected": 10}, scale=scale, log=logging.getLogger("test-prewarm"))
    with caplog.at_level(logging.INFO, "test-prewarm"):
        for minute in (41, 42, 43):
            status = await warm.step(INSIDE.replace(minute=minute), 0)
        assert status.error and status.error_since == INSIDE.replace(minute=41) and status.decided == 3
        scale.fail = ApiException(status=503, reason="Service Unavailable")
        await warm.step(INSIDE.replace(minute=44), 0)
        await warm.step(INSIDE.replace(minute=45), 0)
        scale.fail = None
        status = await warm.step(INSIDE.replace(minute=46), 0)
    assert status.error is None and status.replicas == 3
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "something unforeseen" in m]) == 1
    assert len([m for m in messages if "answered 503" in m]) == 1
    assert len([m for m in messages if "works again" in m]) == 1


# --- what the admin page says --------------------------------------------------------------------


async def test_the_admin_page_shows_the_schedule_the_next_stretch_and_the_last_change():
    week = {
        "timeZone": "America/Denver",
        "from": "2026-07-13",
        "until": "2026-07-16",
        "expected": 320,
        "sessions": [
            {"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "17:00"},
            {"days": ["2026-07-17"], "start": "19:00", "end": "01:00", "expected": 40},
        ],
    }
    scale = RecordingScale(replicas=0)
    warm = prewarmer(week, scale=scale, users_per_node=48)
    monday_early = datetime(2026, 7, 13, 14, 45, tzinfo=UTC)  # 08:45 in Denver
    await warm.step(monday_early, running=20)
    view = admin_view(warm, monday_early, 60)
    assert view["sessions"] == [
        "Mon, Tue, Wed, Thu 09:00–17:00",
        "2026-07-17 19:00–01:00 (ends the next day) (40 expected)",
    ]
    assert view["next"] == "now, until Mon 13 Jul 09:30" and view["warming"]
    assert view["count"] == "7" and view["last"] == "Mon 13 Jul 08:45: 0 → 7"  # 300 people, 48 per node
    assert view["target"] == (
        "Deployment hackweek/workshop-prewarm, through its scale subresource (decided: 7, for 300 people)"
    )
    later = admin_view(warm, datetime(2026, 7, 13, 20, tzinfo=UTC), 60)  # 14:00 in Denver
    assert later["next"] == "Tue 14 Jul 08:40 – 09:30"
    page = render_admin(prewarm=view)
    assert "<li>Mon, Tue, Wed, Thu 09:00–17:00</li>" in page and "Schedule (America/Denver)" in page
    assert "from 2026-07-13, until 2026-07-16; 320 people expected (the schedule&#39;s expected)" in page
    assert (
        "now, until Mon 13 Jul 09:30 (America/Denver; from 20 min before each start until 30 min after)"
        in page
    )
    assert 'id="prewarm-count">7<' in page and "Mon 13 Jul 08:45: 0 → 7" in page
    assert "replicas of workshop-prewarm" in page
    # a failure is what the card and the last change say, until it works again
    scale.fail = RuntimeError("boom")
    await warm.step(monday_early + timedelta(minutes=1), running=20)
    failing = admin_view(warm, monday_early, 60)
    assert failing["failing"] and failing["last"].startswith(
        "read the scale of Deployment hackweek/workshop-prewarm"
    )
    assert failing["last"].endswith("(failing since Mon 13 Jul 08:46; tried again every 60 s)")
    assert "cannot scale: see Pre-warm below" in render_admin(prewarm=failing)
    assert admin_view(None, monday_early, 60) == {"enabled": False}
    assert "No schedule: nothing is pre-warmed" in render_admin()
    assert describe_session(Schedule.parse(week).sessions[0]) == "Mon, Tue, Wed, Thu 09:00–17:00"
