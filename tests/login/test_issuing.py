from datetime import UTC, datetime

import pytest

from jupyterhub_workshop.cli import main
from jupyterhub_workshop.login.accounts import load_accounts
from jupyterhub_workshop.login.passwords import verify_password
from jupyterhub_workshop.login.printing import read_cards_csv


@pytest.fixture
def generated(tmp_path):
    out = tmp_path / "cards"
    code = main(
        [
            "credentials",
            "generate",
            "--count",
            "4",
            "--prefix",
            "esip",
            "--instructors",
            "1",
            "--valid-from",
            "2026-07-14T08:00:00-06:00",
            "--valid-until",
            "2026-07-16T18:00:00Z",
            "--title",
            "ESIP 2026",
            "--hub-url",
            "https://hub.example.org/",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_generate_writes_hashes_for_the_hub_and_cards_for_the_organizer(generated):
    book = load_accounts(generated / "accounts.yaml")
    cards = read_cards_csv(generated / "cards.csv")
    assert list(book) == ["esip001", "esip002", "esip003", "esip004", "esipinstructor01"]
    assert [c.role for c in cards] == ["participant"] * 4 + ["instructor"]
    accounts_text = (generated / "accounts.yaml").read_text()
    for card in cards:
        assert card.password not in accounts_text
        assert verify_password(book[card.username].password_hash, card.password)
    assert book["esip001"].valid_from == datetime(2026, 7, 14, 14, tzinfo=UTC)
    html = (generated / "cards.html").read_text()
    assert "ESIP 2026" in html and "https://hub.example.org/" in html
    assert (generated / "cards.csv").stat().st_mode & 0o077 == 0  # plaintext: owner only


def test_generate_refuses_to_replace_existing_accounts(generated, capsys):
    before = (generated / "accounts.yaml").read_text()
    assert main(["credentials", "generate", "--count", "1", "--prefix", "x", "--out", str(generated)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (generated / "accounts.yaml").read_text() == before


def test_add_appends_without_changing_existing_accounts(generated, capsys):
    before = load_accounts(generated / "accounts.yaml")
    assert main(["credentials", "add", "--count", "2", "--prefix", "esip", "--out", str(generated)]) == 0
    after = load_accounts(generated / "accounts.yaml")
    assert list(after) == list(before) + ["esip005", "esip006"]
    for name, account in before.items():
        assert after[name].password_hash == account.password_hash
    # late attendees get the workshop's window
    assert after["esip005"].valid_until == before["esip001"].valid_until
    cards = read_cards_csv(generated / "cards.csv")
    assert [c.username for c in cards][-2:] == ["esip005", "esip006"]
    added = list(generated.glob("cards-added-*.html"))
    assert len(added) == 1 and "esip005" in added[0].read_text() and "esip001" not in added[0].read_text()
    # the cards look like the first ones: title, hub URL and window remembered from `generate`
    html = added[0].read_text()
    assert "ESIP 2026" in html and "https://hub.example.org/" in html
    assert "Works Tue 14 Jul 2026, 08:00 (UTC-06:00) to Thu 16 Jul 2026, 18:00 (UTC)" in html
    assert "Added 2 accounts" in capsys.readouterr().out


def test_add_of_one_card_with_a_new_title(generated, capsys):
    assert (
        main(
            [
                "credentials",
                "add",
                "--instructors",
                "1",
                "--prefix",
                "esip",
                "--title",
                "ESIP day 2",
                "--out",
                str(generated),
            ]
        )
        == 0
    )
    assert "Added 1 account to" in capsys.readouterr().out
    assert load_accounts(generated / "accounts.yaml").title == "ESIP day 2"
    (added,) = generated.glob("cards-added-*.html")
    assert "ESIP day 2" in added.read_text()


def test_the_cards_directory_keeps_plaintext_out_of_git(generated, tmp_path, capsys):
    ignored = (generated / ".gitignore").read_text().splitlines()
    assert "cards.csv" in ignored and "cards*.html" in ignored
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".gitignore").write_text("*.pyc\n")  # an organizer's own: kept, with a warning
    assert main(["credentials", "generate", "--count", "1", "--prefix", "x", "--out", str(mine)]) == 0
    assert (mine / ".gitignore").read_text() == "*.pyc\n"
    assert "does not ignore cards.csv" in capsys.readouterr().err


def test_revoke_and_check(generated, capsys):
    accounts = str(generated / "accounts.yaml")
    assert main(["credentials", "revoke", "--accounts", accounts, "esip002"]) == 0
    assert load_accounts(accounts)["esip002"].revoked
    assert not load_accounts(accounts)["esip001"].revoked
    assert main(["credentials", "revoke", "--accounts", accounts, "nobody"]) == 1
    assert "no such account: nobody" in capsys.readouterr().err
    assert main(["credentials", "check", accounts]) == 0
    assert "5 accounts (4 participants, 1 instructor, 1 revoked)" in capsys.readouterr().out
    assert load_accounts(accounts).title == "ESIP 2026"  # a revoke keeps what the cards print


def test_revoking_twice_says_so_and_restore_undoes_a_revoke(generated, capsys):
    accounts = generated / "accounts.yaml"
    original = accounts.read_bytes()
    revoke = ["credentials", "revoke", "--accounts", str(accounts)]
    restore = ["credentials", "restore", "--accounts", str(accounts)]
    assert main([*revoke, "esip002"]) == 0
    revoked = accounts.read_bytes()
    capsys.readouterr()
    assert main([*revoke, "esip002"]) == 0
    out = capsys.readouterr().out
    assert "Revoked" not in out and "esip002 was already revoked" in out and "nothing changed" in out
    assert accounts.read_bytes() == revoked
    assert main([*revoke, "esip002", "esip003"]) == 0
    out = capsys.readouterr().out
    assert "Revoked esip003 in" in out and "esip002 was already revoked" in out

    # mistakes change nothing: an unknown name, a card that is not revoked
    assert main([*restore, "esip002", "nobody"]) == 1
    assert "no such account: nobody" in capsys.readouterr().err
    assert main([*restore, "esip002", "esip001"]) == 1
    err = capsys.readouterr().err
    assert "esip001 is not revoked" in err and "nothing restored" in err and "esip002" not in err
    assert load_accounts(accounts)["esip002"].revoked

    assert main([*restore, "esip002", "esip003"]) == 0
    assert "Restored esip002, esip003 in" in capsys.readouterr().out
    assert accounts.read_bytes() == original  # hashes, windows, title: as generated


def test_restore_says_when_a_card_is_expired_not_revoked(tmp_path, capsys):
    out = tmp_path / "cards"
    args = ["credentials", "generate", "--count", "1", "--prefix", "old", "--out", str(out)]
    assert main([*args, "--valid-until", "2020-01-02T00:00:00Z"]) == 0
    assert main(["credentials", "restore", "--accounts", str(out / "accounts.yaml"), "old001"]) == 1
    assert "old001 is not revoked (its card expired at 2020-01-02 00:00+00:00)" in capsys.readouterr().err


def test_check_names_every_bad_line(tmp_path, capsys):
    bad = tmp_path / "accounts.yaml"
    bad.write_text('version: 1\naccounts:\n- {username: "A b", hash: "x"}\n- {username: ws2}\n')
    assert main(["credentials", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: username 'A b'" in err
    assert f"{bad}:4: account 'ws2' has no hash" in err


def test_bad_times_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "credentials",
                "generate",
                "--count",
                "1",
                "--prefix",
                "x",
                "--valid-from",
                "tomorrow",
                "--out",
                str(tmp_path),
            ]
        )
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_show_merges_the_desks_changes_and_exports_them(tmp_path, capsys):
    from dataclasses import replace

    from jupyterhub_workshop.login.accounts import save_accounts
    from jupyterhub_workshop.login.issuing import Batch, generate, issue

    cli = main

    generate(tmp_path, Batch("ws", 3))
    book = load_accounts(tmp_path / "accounts.yaml")
    late, _ = issue(Batch("ws", 1), book)
    desk = [
        replace(book["ws001"], password_hash=late[0].password_hash),
        replace(book["ws002"], revoked=True),
        late[0],
    ]
    save_accounts(tmp_path / "desk.yaml", desk)
    args = [
        "credentials",
        "show",
        "--accounts",
        str(tmp_path / "accounts.yaml"),
        "--hub",
        str(tmp_path / "desk.yaml"),
    ]
    assert cli([*args, "--export", str(tmp_path / "merged.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ws001: reissued at the desk" in out and "ws002: revoked at the desk" in out
    assert "ws004: added at the desk" in out and "ws003" not in out
    merged = load_accounts(tmp_path / "merged.yaml")
    assert list(merged) == ["ws001", "ws002", "ws003", "ws004"] and merged["ws002"].revoked
    # restore in the organizer's file, from the CLI
    assert cli(["credentials", "revoke", "--accounts", str(tmp_path / "accounts.yaml"), "ws003"]) == 0
    assert cli(["credentials", "restore", "--accounts", str(tmp_path / "accounts.yaml"), "ws003"]) == 0
    assert not load_accounts(tmp_path / "accounts.yaml")["ws003"].revoked
