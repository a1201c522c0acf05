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
    Stop,
    banner,
    expiry,
    linkify,
    load_board,
    pod_stop_reason,
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
