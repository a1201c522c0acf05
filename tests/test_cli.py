import json
from datetime import UTC, datetime

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.service.store import UsageStore


def test_usage_export_writes_csv_and_json(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    store = UsageStore(url)
    t0 = datetime(2026, 7, 14, 15, tzinfo=UTC)
    store.open_session("ws001", "", "standard", t0)
    store.close_session("ws001", "", t0.replace(hour=16), "idle")
    store.open_session("ws002", "gpu", None, t0)
    store.close()

    assert main(["usage", "export", "--db", url, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "user,server,profile,started,stopped,duration_seconds,stop_reason,exported"
    # taken from the database, as of the last moment it knows (ws001's stop: no service runs)
    assert (
        lines[1]
        == "ws001,,standard,2026-07-14T15:00:00Z,2026-07-14T16:00:00Z,3600.0,idle,2026-07-14T16:00:00Z"
    )
    assert "2 sessions" in err
    # the SQLite file's path, as the demo leaves it, is the same database
    assert main(["usage", "export", "--db", str(tmp_path / "usage.sqlite")]) == 0
    by_path = capsys.readouterr().out.splitlines()
    assert [line.rsplit(",", 1)[0] for line in by_path] == [line.rsplit(",", 1)[0] for line in lines]
    # anything else: what is wrong, and no traceback
    assert main(["usage", "export", "--db", str(tmp_path / "workshop-usage.sqlite")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no usage database at {tmp_path / 'workshop-usage.sqlite'}")
    assert "Traceback" not in err

    target = tmp_path / "usage.json"
    assert (
        main(
            [
                "usage",
                "export",
                "--db",
                url,
                "--format",
                "json",
                "--out",
                str(target),
                "--start",
                "2026-07-14T15:30:00Z",
            ]
        )
        == 0
    )
    sessions = json.loads(target.read_text())["sessions"]
    assert [(s["user"], s["server"], s["stop_reason"]) for s in sessions] == [
        ("ws001", "", "idle"),
        ("ws002", "gpu", None),
    ]
