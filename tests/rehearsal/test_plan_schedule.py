import pytest

from jupyterhub_workshop.rehearsal.plan.errors import PlanError
from jupyterhub_workshop.rehearsal.plan.schedule import parse_schedule, read_schedule


def test_schedule_csv_and_yaml(tmp_path):
    good = tmp_path / "s.csv"
    good.write_text("start,end,users\n2026-07-14T08:00:00Z,2026-07-14T10:30:00Z,5\n")
    (block,) = read_schedule(good, None)
    assert block.hours == 2.5 and block.users == 5
    listed = tmp_path / "s.yaml"
    listed.write_text(
        "blocks:\n  - {start: 2026-07-15T08:00:00Z, end: 2026-07-15T09:00:00Z}\n"
        "  - {start: '2026-07-14T08:00:00Z', end: '2026-07-14T09:00:00Z', users: 3}\n"
    )
    first, second = read_schedule(listed, 10)  # in time order; users default to --users
    assert (first.users, second.users) == (3, 10)


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [
                {"start": "2026-07-14T08:00:00Z", "end": "2026-07-14T12:00:00Z"},
                {"start": "2026-07-14T11:00:00Z", "end": "2026-07-14T13:00:00Z"},
            ],
            "overlap",
        ),
        ([{"start": "2026-07-14T08:00:00", "end": "2026-07-14T12:00:00"}], "no UTC offset"),
        ([{"start": "2026-07-14T08:00:00Z"}], "missing end"),
        ([{"start": "2026-07-14T08:00:00Z", "end": "2026-07-14T07:00:00Z"}], "end must be later"),
        ([], "no blocks"),
    ],
)
def test_bad_schedules_are_refused(rows, message):
    with pytest.raises(PlanError, match=message):
        parse_schedule(rows, 10)


def test_a_block_without_users_needs_a_default():
    with pytest.raises(PlanError, match="no users given"):
        parse_schedule([{"start": "2026-07-14T08:00:00Z", "end": "2026-07-14T09:00:00Z"}], None)
