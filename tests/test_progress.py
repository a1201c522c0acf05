"""The progress display: redrawn on a terminal, plain lines where output is kept."""

import io

import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def test_a_log_gets_plain_lines_at_most_every_interval():
    log = io.StringIO()
    with Progress(5, "Hashing passwords", file=log, interval=3600) as bar:
        for _ in range(5):
            bar.update(1)
    # the start, then nothing within the hour, then the end
    assert log.getvalue().splitlines() == [
        "Hashing passwords: 0/5 [00:00<?]",
        "Hashing passwords: 5/5 [00:00<00:00]",
    ]


def test_a_log_gets_a_line_only_when_something_changed():
    log = io.StringIO()
    with Progress(3, "users finished", file=log, status="waiting 3") as bar:
        bar.show(0, "waiting 3")
        bar.show(0, "waiting 2 | login 1")
        bar.show(0, "waiting 2 | login 1")
        bar.show(1, "waiting 2 | done 1")
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 3
    assert [line.split(", ", 1)[1] for line in lines] == [
        "waiting 3",
        "waiting 2 | login 1",
        "waiting 2 | done 1",
    ]
    assert lines[-1].startswith("users finished: 1/3 [")


def test_a_terminal_gets_one_line_redrawn():
    screen = Terminal()
    with Progress(2, "Hashing passwords", file=screen, interval=0) as bar:
        bar.update(1)
        bar.show(2, "all done")
    text = screen.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.startswith("\r")
    assert text.count("\r") >= 3 and "50%|" in text and text.rstrip().endswith("2/2 [00:00<00:00], all done")


def test_the_default_stream_is_stderr(capsys):
    with Progress(1, "x") as bar:
        bar.update(1)
    assert capsys.readouterr().err.splitlines()[-1].startswith("x: 1/1 [")


def test_card_generation_shows_hashing_progress_in_a_log(tmp_path, capsys):
    assert (
        main(["credentials", "generate", "--count", "3", "--prefix", "p", "--out", str(tmp_path / "cards")])
        == 0
    )
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines()[0].startswith("Hashing passwords: 0/3") and err.splitlines()[-1].startswith(
        "Hashing passwords: 3/3"
    )
    # refused before any hashing: no progress at all
    assert (
        main(["credentials", "generate", "--count", "3", "--prefix", "p", "--out", str(tmp_path / "cards")])
        == 1
    )
    assert capsys.readouterr().err.startswith("error: ")
