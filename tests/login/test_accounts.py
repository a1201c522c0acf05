from datetime import UTC, datetime, timedelta, timezone

import pytest

from jupyterhub_workshop.login.accounts import (
    Account,
    AccountBook,
    AccountsFileError,
    dump_accounts,
    load_accounts,
    parse_accounts,
    revoke,
    save_accounts,
)


def account_line(name="ws001", role="participant", hash_="{h}", extra=""):
    return f'- {{username: "{name}", role: "{role}", hash: "{hash_}"{extra}}}\n'


def file_text(*lines):
    return "version: 1\naccounts:\n" + "".join(lines)


def problems_of(text, sample_hash):
    with pytest.raises(AccountsFileError) as info:
        parse_accounts(text.replace("{h}", sample_hash), "accounts.yaml")
    return info.value


def test_round_trip_keeps_every_field(sample_hash):
    t0 = datetime(2026, 7, 14, 8, tzinfo=timezone(timedelta(hours=-6)))
    accounts = [
        Account("ws001", sample_hash, "participant", t0, t0 + timedelta(days=2)),
        Account("ws002", sample_hash, "instructor", None, None, revoked=True),
    ]
    book = parse_accounts(dump_accounts(accounts))
    assert [(a.username, a.role, a.valid_from, a.valid_until, a.revoked) for a in book.values()] == [
        ("ws001", "participant", t0, t0 + timedelta(days=2), False),
        ("ws002", "instructor", None, None, True),
    ]
    assert book["ws001"].line == 5  # two comment lines, version, accounts:, then the first record


def test_hand_written_block_style_is_accepted(sample_hash):
    text = f"""version: 1
accounts:
  - username: ws001
    role: instructor
    hash: '{sample_hash}'
    valid_from: 2026-07-14T08:00:00Z
    revoked: no
"""
    account = parse_accounts(text)["ws001"]
    assert account.is_instructor and not account.revoked
    assert account.valid_from == datetime(2026, 7, 14, 8, tzinfo=UTC)


def test_bad_yaml_names_the_line(sample_hash):
    err = problems_of(file_text(account_line(), '- {username: "ws002", hash: [\n'), sample_hash)
    assert len(err.problems) == 1
    assert err.problems[0].line >= 4
    assert "invalid YAML" in str(err) and "accounts.yaml:" in str(err)


def test_every_problem_is_reported_with_its_line(sample_hash):
    text = file_text(
        account_line("ws001"),  # line 3
        account_line("ws001"),  # 4: duplicate
        account_line("ws003", hash_="plaintext-password"),  # 5
        account_line("ws004", hash_="$argon2id$v=19$m=19456,t=2,p=1$garbage"),  # 6
        account_line("ws005", extra=', valid_from: "yesterday"'),  # 7
        account_line("ws006", extra=', valid_from: "2026-07-14T08:00:00"'),  # 8 no offset
        account_line("żółw"),  # 9
        account_line("WS010"),  # 10
        account_line("ws011", role="teacher"),  # 11
        account_line(
            "ws012", extra=', valid_from: "2026-07-15T00:00:00Z", valid_until: "2026-07-14T00:00:00Z"'
        ),  # 12
        account_line("ws013", extra=", colour: blue"),  # 13
        account_line("ws014", extra=", revoked: maybe"),  # 14
    )
    err = problems_of(text, sample_hash)
    by_line = {p.line: p.message for p in err.problems}
    assert "duplicate username 'ws001' (first on line 3)" in by_line[4]
    assert "plaintext is never accepted" in by_line[5]
    assert "not a well-formed argon2id hash" in by_line[6]
    assert "not an ISO 8601 time" in by_line[7]
    assert "no UTC offset" in by_line[8]
    assert "non-ASCII" in by_line[9]
    assert "lowercase" in by_line[10]
    assert "role 'teacher'" in by_line[11]
    assert "valid_until must be later" in by_line[12]
    assert "unknown key 'colour'" in by_line[13]
    assert "revoked must be true or false" in by_line[14]
    assert sorted(by_line) == list(range(4, 15))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "expected a mapping"),
        ("- just a list\n", "expected a mapping"),
        ("version: 2\naccounts: []\n", "unsupported version"),
        ("version: 1\n", "no 'accounts:' list"),
        ("version: 1\naccounts: {}\n", "accounts must be a list"),
        ("version: 1\naccounts:\n- ws001\n", "must be a mapping"),
        ("version: 1\naccounts:\n- {role: participant}\n", "no username"),
    ],
)
def test_structural_problems(text, expected, sample_hash):
    assert expected in str(problems_of(text, sample_hash))


def test_empty_account_list_is_valid():
    assert len(parse_accounts("version: 1\naccounts:\n")) == 0
    assert len(parse_accounts(dump_accounts([]))) == 0


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(AccountsFileError, match="file not found"):
        load_accounts(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\naccounts:\n- {username: \xe9}\n")
    with pytest.raises(AccountsFileError, match=r"latin1.yaml:3: file is not valid UTF-8"):
        load_accounts(bad)


def test_window_and_revocation(sample_hash):
    t0 = datetime(2026, 7, 14, 8, tzinfo=UTC)
    a = Account("ws001", sample_hash, valid_from=t0, valid_until=t0 + timedelta(hours=8))
    assert not a.usable_at(t0 - timedelta(seconds=1))
    assert a.usable_at(t0)
    assert not a.usable_at(t0 + timedelta(hours=8))
    book = AccountBook(revoke(AccountBook([a]), ["ws001"]))
    assert not book["ws001"].usable_at(t0)
    with pytest.raises(KeyError):
        revoke(book, ["ws999"])


def test_failed_atomic_write_keeps_the_old_file(tmp_path, sample_hash, monkeypatch):
    path = tmp_path / "accounts.yaml"
    save_accounts(path, [Account("ws001", sample_hash)])
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_accounts(path, [Account("ws002", sample_hash)])
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["accounts.yaml"]  # no temp file left


def test_the_cards_title_and_hub_url_round_trip(tmp_path, sample_hash):
    path = tmp_path / "accounts.yaml"
    save_accounts(
        path, [Account("ws001", sample_hash)], title='ESIP "2026": day 1', hub_url="https://hub.example.org/"
    )
    book = load_accounts(path)
    assert (book.title, book.hub_url) == ('ESIP "2026": day 1', "https://hub.example.org/")
    save_accounts(path, [])
    assert load_accounts(path).title == "" and "title" not in path.read_text().split("accounts")[-1]


def test_a_title_must_be_one_value(sample_hash):
    problems = problems_of("version: 1\ntitle: [a, b]\naccounts: []\n", sample_hash)
    assert "accounts.yaml:2: title must be a single value" in str(problems)
