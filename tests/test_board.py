"""The board: announcements (escaped, links, newest first, expiry) and stop sentences, decided
by plain functions with the time given; the file read again only when it changes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from jupyterhub_workshop.board import (
    MAX_ANNOUNCEMENTS,
    Board,
    BoardReader,
    Restart,
    Stop,
    banner,
    expiry,
    linkify,
    load_board,
    pod_restart,
    pod_stop_reason,
    restart_is_news,
    restart_sentence,
    restart_to_show,
    save_board,
    stop_sentence,
    stop_to_show,
    update_board,
)

NOW = datetime(2026, 7, 14, 15, 0, tzinfo=UTC)


def test_text_is_escaped_and_only_plain_urls_become_links():
    html = linkify("<script>alert(1)</script> see https://example.org/a?b=1&c=2. or javascript:alert(1)")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">'
        "https://example.org/a?b=1&amp;c=2</a>." in html
    )
    assert "javascript:alert(1)" in html and 'href="javascript' not in html
    # a quote cannot leave the attribute
    assert linkify('http://x.org/"onmouseover="a') == (
        '<a href="http://x.org/" target="_blank" rel="noopener noreferrer">http://x.org/</a>&quot;onmouseover=&quot;a'
    )


def test_announcements_stack_newest_first_and_expire():
    board = Board().post("first", NOW, by="ws004")
    board = board.post("second", NOW + timedelta(minutes=1), expires=NOW + timedelta(minutes=30))
    board = board.post("third   with\nspaces", NOW + timedelta(minutes=2))
    assert [a.text for a in board.showing(NOW + timedelta(minutes=3))] == [
        "third with spaces",
        "second",
        "first",
    ]
    assert [a.text for a in board.showing(NOW + timedelta(minutes=31))] == ["third with spaces", "first"]
    assert banner(board, NOW + timedelta(minutes=31)) == (
        '<span class="workshop-announcement">third with spaces</span><br>'
        '<span class="workshop-announcement">first</span>'
    )
    assert banner(Board(), NOW) == ""
    removed = board.remove(board.showing(NOW + timedelta(minutes=3))[0].id)
    assert [a.text for a in removed.showing(NOW + timedelta(minutes=3))] == ["second", "first"]


def test_bad_announcements_are_refused():
    with pytest.raises(ValueError, match="needs some text"):
        Board().post("   ", NOW)
    with pytest.raises(ValueError, match="at most 500"):
        Board().post("x" * 501, NOW)
    with pytest.raises(ValueError, match="in the past"):
        Board().post("late", NOW, expires=NOW)
    with pytest.raises(ValueError, match="number of minutes"):
        expiry("soon", NOW)
    with pytest.raises(ValueError, match="between 1 minute and 7 days"):
        expiry("0", NOW)
    assert expiry("", NOW) is None and expiry("30", NOW) == NOW + timedelta(minutes=30)
    board = Board()
    for n in range(MAX_ANNOUNCEMENTS + 2):
        board = board.post(f"n{n}", NOW + timedelta(seconds=n))
    assert len(board.announcements) == MAX_ANNOUNCEMENTS and board.showing(NOW)[0].text == f"n{n}"


def test_the_file_round_trips_and_is_read_again_only_when_it_changes(tmp_path):
    path = tmp_path / "board.json"
    reader = BoardReader(path)
    assert reader.read() == Board() and load_board(path) == Board()
    board = (
        Board()
        .post("tea at 10:30", NOW, expires=NOW + timedelta(hours=1))
        .stopped("ws001", Stop("night", NOW, ""))
    )
    save_board(path, board)
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # the hub reads what the service writes
    assert load_board(path) == board and reader.read() == board
    first = reader.read()
    assert reader.read() is first  # unchanged file: the parsed board as it was
    path.write_text("{ half a fil")  # a broken file shows the last good board
    assert reader.read() == board
    save_board(path, Board())
    assert reader.read() == Board()
    os.unlink(path)
    assert reader.read() == Board()


def test_stop_sentences_in_plain_words_in_the_workshop_zone():
    at = datetime(2026, 7, 15, 4, 0, tzinfo=UTC)  # 22:00 in Denver
    zone = "America/Denver"
    same_day = at + timedelta(hours=1)
    assert stop_sentence(Stop("night", at), zone, same_day) == (
        "Your server was stopped at 22:00 by the night-time shutdown. Your files are safe — start it again below."
    )
    assert stop_sentence(Stop("idle", at), zone, same_day).startswith(
        "Your server was stopped at 22:00 because it had been idle."
    )
    assert "ran out of memory" in stop_sentence(Stop("OOMKilled", at), zone, same_day)
    assert "evicted" in stop_sentence(Stop("Evicted", at), zone, same_day)
    assert "outside the hub (its machine was replaced" in stop_sentence(Stop("deleted", at), zone, same_day)
    assert "maximum running time" in stop_sentence(Stop("max-age", at), zone, same_day)
    assert stop_sentence(Stop("closed", at), zone, same_day).endswith("has closed. Your files are safe.")
    assert "ended unexpectedly (it crashed)" in stop_sentence(Stop("Error", at), zone, same_day)
    assert "stopped at 22:00 outside the hub." in stop_sentence(Stop("unknown", at), zone, same_day)
    # next morning: the day is said
    assert "at 22:00 on Tuesday by" in stop_sentence(Stop("night", at), zone, at + timedelta(hours=12))


def test_a_stop_is_shown_until_the_next_start():
    stop = Stop("idle", NOW)
    assert stop_to_show(stop, None, False)
    assert stop_to_show(stop, NOW - timedelta(hours=1), False)
    assert not stop_to_show(stop, NOW + timedelta(minutes=1), False)  # started again since
    assert not stop_to_show(stop, None, True)  # a server runs: nothing to tell
    assert not stop_to_show(None, None, False)


def terminated(reason: str, key: str = "state", name: str = "notebook") -> dict:
    return {"name": name, key: {"terminated": {"reason": reason, "exitCode": 137}}}


def test_what_the_cluster_says_ended_a_pod():
    assert pod_stop_reason(None) == "deleted"  # gone: deleted, or its node replaced
    evicted = {"status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on memory."}}
    assert pod_stop_reason(evicted) == "Evicted"
    assert pod_stop_reason({"status": {"containerStatuses": [terminated("OOMKilled")]}}) == "OOMKilled"
    # restarted in place (restartPolicy OnFailure): the last state says why
    restarted = {
        "name": "notebook",
        "state": {"running": {}},
        **{"lastState": terminated("OOMKilled")["state"]},
    }
    assert pod_stop_reason({"status": {"containerStatuses": [restarted]}}) == "OOMKilled"
    # the server's own container speaks first
    both = [terminated("Completed", name="sidecar"), terminated("Error")]
    assert pod_stop_reason({"status": {"containerStatuses": both}}) == "Error"
    assert pod_stop_reason({"status": {"phase": "Failed"}}) == "unknown"


def test_updates_under_the_lock_keep_each_other(tmp_path):
    path = tmp_path / "board.json"
    update_board(path, lambda b: b.post("from staff", NOW))
    update_board(path, lambda b: b.stopped("ws001", Stop("OOMKilled", NOW)))
    board = load_board(path)
    assert [a.text for a in board.announcements] == ["from staff"] and board.stops[
        "ws001"
    ].reason == "OOMKilled"
    mtime = path.stat().st_mtime_ns
    update_board(path, lambda b: b)  # nothing changed: not written
    assert path.stat().st_mtime_ns == mtime


def test_the_history_takes_the_clusters_reason_for_an_unknown_stop():
    from jupyterhub_workshop.board import stop_history

    rows = [
        (NOW, "unknown", ""),
        (NOW - timedelta(hours=5), "night", ""),
        (NOW - timedelta(hours=9), "unknown", ""),
    ]
    noted = Stop("OOMKilled", NOW + timedelta(seconds=20))
    assert stop_history(rows, noted) == [
        (NOW, "stopped because it ran out of memory (the notebook used more than the server's limit)"),
        (NOW - timedelta(hours=5), "stopped by the night-time shutdown"),
        (NOW - timedelta(hours=9), "stopped outside the hub"),
    ]


# --- restarts in place ----------------------------------------------------------------------


def restarted_pod(
    count: int, reason: str = "OOMKilled", uid: str = "uid-1", finished: str = "2026-07-14T14:02:05Z"
):
    """A pod as the API answers after ``count`` in-place restarts of its notebook container."""
    notebook = {
        "name": "notebook",
        "restartCount": count,
        "state": {"running": {"startedAt": "2026-07-14T14:02:06Z"}},
        "lastState": {"terminated": {"reason": reason, "exitCode": 137, "finishedAt": finished}}
        if count
        else {},
    }
    sidecar = {"name": "sidecar", "restartCount": 7, "lastState": {"terminated": {"reason": "Error"}}}
    return {
        "metadata": {"uid": uid},
        "status": {"phase": "Running", "containerStatuses": [sidecar, notebook]},
    }


def test_what_the_pod_says_of_its_last_restart():
    assert pod_restart(None) is None
    assert (
        pod_restart(restarted_pod(0)) is None
    )  # never restarted (the sidecar's restarts are not the server's)
    assert pod_restart(restarted_pod(2), "gpu") == Restart(
        "OOMKilled", datetime(2026, 7, 14, 14, 2, 5, tzinfo=UTC), "gpu", "uid-1", 2
    )
    assert pod_restart(restarted_pod(1, reason="Error")).reason == "Error"
    assert pod_restart({"status": {"phase": "Pending"}}) is None
    no_time = restarted_pod(1)
    del no_time["status"]["containerStatuses"][1]["lastState"]["terminated"]["finishedAt"]
    assert pod_restart(no_time) is None  # nothing says when: nothing to tell


def test_a_restart_is_news_once_and_an_old_one_after_a_hub_restart_is_not():
    recent = timedelta(minutes=60)
    first = pod_restart(restarted_pod(1))
    at = first.at
    assert restart_is_news(first, None, at + timedelta(seconds=2), recent)  # a new pod's first restart
    assert restart_is_news(first, ("uid-1", 0), at + timedelta(seconds=2), recent)
    assert not restart_is_news(first, ("uid-1", 1), at + timedelta(seconds=2), recent)  # seen
    assert restart_is_news(pod_restart(restarted_pod(3)), ("uid-1", 1), at, recent)  # two more since
    assert not restart_is_news(None, None, at, recent)
    # a pod nothing is known of (the hub restarted, the board has another pod's notice or none):
    # a restart during the hub's downtime is news, one from hours ago is not
    assert restart_is_news(first, ("uid-0", 4), at + timedelta(minutes=5), recent)
    assert not restart_is_news(first, None, at + timedelta(hours=3), recent)
    # the board said the hub had seen this restart before it restarted: not announced again
    assert not restart_is_news(first, ("uid-1", 1), at + timedelta(minutes=5), recent)


def test_the_restart_sentence_says_what_happened_and_what_to_do():
    at = datetime(2026, 7, 14, 20, 2, tzinfo=UTC)  # 14:02 in Denver
    oom = Restart("OOMKilled", at, count=1)
    assert restart_sentence(oom, "America/Denver", at) == (
        "Your server ran out of memory at 14:02 and was restarted: the notebooks' kernels were "
        "stopped, your files are safe. Save your work and close notebooks you do not need."
    )
    assert restart_sentence(Restart("OOMKilled", at, count=3), "America/Denver", at) == (
        "Your server ran out of memory at 14:02 and was restarted: the notebooks' kernels were "
        "stopped, your files are safe. It has restarted 3 times since you started it. Save your "
        "work and close notebooks you do not need."
    )
    assert restart_sentence(Restart("Error", at), "America/Denver", at).startswith(
        "Your server crashed at 14:02 and was restarted"
    )
    assert restart_sentence(Restart("Error", at), "America/Denver", at).endswith("run your notebooks again.")
    assert "ended unexpectedly at 14:02 on Tuesday" in restart_sentence(
        Restart("ContainerCannotRun", at), "America/Denver", at + timedelta(days=1)
    )


def test_a_restart_is_shown_while_that_run_of_the_server_runs_and_for_a_while():
    notice = Restart("OOMKilled", NOW, until=NOW + timedelta(minutes=60))
    started = NOW - timedelta(hours=2)
    assert restart_to_show(notice, started, True, NOW + timedelta(minutes=1))
    assert restart_to_show(notice, None, True, NOW + timedelta(minutes=59))
    assert not restart_to_show(notice, started, True, NOW + timedelta(minutes=60))  # its time is up
    assert not restart_to_show(notice, started, False, NOW + timedelta(minutes=1))  # stopped since
    assert not restart_to_show(
        notice, NOW + timedelta(minutes=5), True, NOW + timedelta(minutes=6)
    )  # new run
    assert not restart_to_show(None, started, True, NOW)
    assert restart_to_show(Restart("Error", NOW), started, True, NOW + timedelta(days=2))  # no end given


def test_restart_notices_round_trip_keep_one_per_user_and_drop_expired_ones(tmp_path):
    hour = timedelta(hours=1)
    board = Board().stopped("ws001", Stop("idle", NOW))
    board = board.restarted("ws002", Restart("OOMKilled", NOW, "", "uid-2", 1, NOW + hour), NOW)
    board = board.restarted("ws003", Restart("Error", NOW, "", "uid-3", 1, NOW + hour), NOW)
    board = board.restarted(
        "ws002", Restart("OOMKilled", NOW + hour / 2, "", "uid-2", 2, NOW + 2 * hour), NOW
    )
    assert board.restarts["ws002"].count == 2 and set(board.restarts) == {"ws002", "ws003"}
    assert Board.loads(board.dumps()) == board
    later = board.restarted("ws004", Restart("OOMKilled", NOW + hour, until=NOW + 2 * hour), NOW + hour)
    assert set(later.restarts) == {"ws002", "ws004"}  # ws003's notice had ended
    # the service's rewrite of the stops keeps the restarts (one locked update each)
    path = tmp_path / "board.json"
    save_board(path, board)
    update_board(path, lambda b: b.stopped("ws005", Stop("night", NOW)))
    assert load_board(path).restarts == board.restarts


def test_a_board_with_restarts_reads_as_before_in_the_previous_version():
    import json

    board = Board().stopped("ws001", Stop("idle", NOW))
    assert "restarts" not in json.loads(board.dumps())  # nothing new in a board without them
    doc = json.loads(board.restarted("ws002", Restart("OOMKilled", NOW), NOW).dumps())
    # the previous version's reader: what it reads is there, as it was
    assert set(doc) == {"announcements", "stops", "restarts"}
    assert doc["stops"] == {"ws001": {"reason": "idle", "at": "2026-07-14T15:00:00Z", "server": ""}}
    assert doc["restarts"]["ws002"] == {
        "reason": "OOMKilled",
        "at": "2026-07-14T15:00:00Z",
        "server": "",
        "pod": "",
        "count": 1,
        "until": None,
    }
    # and a board written by the previous version reads without restarts
    assert Board.loads(json.dumps({"announcements": [], "stops": {}})).restarts == {}
