"""The plan reads the workshop's schedule file (the format the service and the chart take)."""

from datetime import datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.rehearsal.plan.errors import PlanError
from jupyterhub_workshop.rehearsal.plan.schedule import blocks_of, read_schedule

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
