"""``homes archive`` to S3-compatible storage: moto's server on loopback, credentials from the environment."""

import json

from jupyterhub_workshop.cli import main

from .helpers import assert_same_tree, fill_home


def test_archive_to_s3_verify_restore_resume(s3, tmp_path, capsys, monkeypatch):
    endpoint, client = s3
    homes = tmp_path / "homes"
    for i, name in enumerate(["claim-ws001", "claim-ws002"]):
        fill_home(homes / name, seed=i)
    url = "s3://workshop-archive/esip-2026/homes"
    args = ["homes", "archive", "--homes", str(homes), "--to", url, "--endpoint-url", endpoint]
    assert main([*args, "--work-dir", str(tmp_path)]) == 0
    assert "2 homes archived and verified" in capsys.readouterr().out
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="workshop-archive")["Contents"])
    assert keys == [
        "esip-2026/homes/claim-ws001.tar.gz",
        "esip-2026/homes/claim-ws002.tar.gz",
        "esip-2026/homes/manifest.json",
    ]
    assert list(tmp_path.glob(".home-archive-*")) == []  # the staging files are gone
    body = client.get_object(Bucket="workshop-archive", Key="esip-2026/homes/manifest.json")["Body"].read()
    assert [r["home"] for r in json.loads(body)["homes"]] == ["claim-ws001", "claim-ws002"]

    # the endpoint may come from the environment too, as in the chart's Job
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    assert main(["homes", "verify", "--archive", url, "--homes", str(homes), "--read"]) == 0
    assert "2 of 2 homes covered" in capsys.readouterr().out
    restored = tmp_path / "restored"
    assert main(["homes", "restore", "--archive", url, "claim-ws001", "--into", str(restored)]) == 0
    assert_same_tree(restored, homes / "claim-ws001")
    assert main(["homes", "archive", "--homes", str(homes), "--to", url]) == 0
    assert "0 homes archived and verified" in capsys.readouterr().out


def test_credentials_never_in_the_url_and_bad_credentials_are_a_message(s3, tmp_path, capsys, monkeypatch):
    endpoint, _ = s3
    fill_home(tmp_path / "homes" / "claim-a")
    url_with_secret = "s3://KEY:SECRET@workshop-archive/x"
    base = ["homes", "archive", "--homes", str(tmp_path / "homes"), "--endpoint-url", endpoint, "--to"]
    assert main([*base, url_with_secret]) == 1
    assert "credentials do not belong in the URL" in capsys.readouterr().err
    assert main([*base, "s3://no-such-bucket/x"]) == 1
    assert "NoSuchBucket" in capsys.readouterr().err
