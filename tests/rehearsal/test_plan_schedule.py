"""The plan reads the workshop's schedule file (the format the service and the chart take)."""

from datetime import datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.rehearsal.plan.errors import PlanError
from jupyterhub_workshop.rehearsal.plan.schedule import EXAMPLE, blocks_of, read_schedule

DENVER = timezone(timedelta(hours=-6))  # in July


def test_a_week_of_sessions_becomes_blocks_in_the_workshops_time(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "timeZone: America/Denver\nfrom: 2026-07-13\nuntil: 2026-07-15\nexpected: 80\n"
        "sessions:\n"
        "  - {days: [Mon, Wed], start: '9:00', end: '17:00'}\n"
        "  - {days: [2026-07-14], start: '13:00', end: '15:30', expected: 12}\n"
    )
    blocks = blocks_of(read_schedule(path), default_users=None)
    assert [(b.start, b.hours, b.users) for b in blocks] == [
        (datetime(2026, 7, 13, 9, tzinfo=DENVER), 8, 80),
        (datetime(2026, 7, 14, 13, tzinfo=DENVER), 2.5, 12),
        (datetime(2026, 7, 15, 9, tzinfo=DENVER), 8, 80),
    ]


def test_json_works_too_and_users_default_to_the_command_line(tmp_path):
    path = tmp_path / "schedule.json"
    path.write_text('{"sessions": [{"days": ["2026-07-14"], "start": "08:00", "end": "10:00"}]}')
    (block,) = blocks_of(read_schedule(path), default_users=25)
    assert (block.users, block.hours) == (25, 2)
    with pytest.raises(PlanError, match="no `expected` people given and no --users"):
        blocks_of(read_schedule(path), default_users=None)


@pytest.mark.parametrize(
    "text, message",
    [
        ("sessions: [{days: [Mon], start: '9:00', end: '17:00'}]", "need `from` and `until`"),
        (
            "sessions: [{days: [2026-07-14], start: '9:00', end: '17:00'}, "
            "{days: [2026-07-14], start: '16:00', end: '18:00'}]",
            "overlap",
        ),
        ("sessions: [{days: [2026-07-14], start: '9', end: '17:00'}]", "not a 24-hour"),
        ("timeZone: MST\nsessions: [{days: [2026-07-14], start: '9:00', end: '17:00'}]", "unknown time zone"),
        ("[1, 2", "not YAML"),
        ("- start: 2026-07-14T08:00:00Z", "expected a mapping"),  # the old list-of-blocks format
    ],
)
def test_bad_schedules_are_refused_naming_the_file(tmp_path, text, message):
    path = tmp_path / "schedule.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message):
        blocks_of(read_schedule(path), default_users=10)
    with pytest.raises(PlanError, match=str(path)):
        blocks_of(read_schedule(path), default_users=10, where=str(path))


def test_a_missing_schedule_file_is_named_with_what_it_should_hold(tmp_path):
    path = tmp_path / "schedule.yaml"
    with pytest.raises(PlanError) as e:
        read_schedule(path)
    message = str(e.value)
    assert message.startswith(
        f"{path}: no such file. --schedule wants the workshop's timetable, YAML or JSON"
    )
    assert "timeZone:" in message and "sessions:" in message and "--schedule-example" in message
    assert "Errno" not in message
    path.write_text("")
    with pytest.raises(PlanError, match=f"^{path}: empty. --schedule wants"):
        read_schedule(path)


def test_a_helm_values_file_gives_its_workshop_schedule(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(
        "workshop:\n"
        "  title: Hackweek\n"
        "  schedule:\n"
        "    timeZone: America/Denver\n"
        "    sessions: [{days: [2026-07-14], start: '9:00', end: '17:00'}]\n"
        "jupyterhub: {singleuser: {memory: {guarantee: 7G}}}\n"
    )
    notes = []
    [block] = blocks_of(read_schedule(values, notes), default_users=30)
    assert (block.start.isoformat(), block.users) == ("2026-07-14T09:00:00-06:00", 30)
    assert notes == [f"{values} is a Helm values file: read its workshop.schedule"]
    # a mistake inside it is named where it is
    values.write_text(
        "workshop:\n  schedule:\n    sessions: [{days: [Someday], start: '9:00', end: '17:00'}]\n"
    )
    with pytest.raises(PlanError, match=rf"^{values}: workshop.schedule\.sessions\[0\]\.days"):
        read_schedule(values)
    values.write_text("workshop:\n  title: Hackweek\n")
    with pytest.raises(PlanError, match=f"^{values}: a Helm values file without workshop.schedule"):
        read_schedule(values)


def test_the_example_schedule_is_a_schedule():
    notes = []
    blocks = blocks_of(read_schedule(EXAMPLE, notes), default_users=None)
    assert notes == []
    # Mon-Thu 9-5 for 80, a Wednesday evening past midnight for 20, a Friday morning for 40
    assert [(b.start.strftime("%a %H:%M"), b.hours, b.users) for b in blocks] == [
        ("Mon 09:00", 8, 80),
        ("Tue 09:00", 8, 80),
        ("Wed 09:00", 8, 80),
        ("Wed 19:00", 6, 20),
        ("Thu 09:00", 8, 80),
        ("Fri 09:00", 3, 40),
    ]
