"""Homes as participants leave them, and a real S3-compatible endpoint (moto's server) on loopback."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

OUTSIDE = "/etc/hostname"  # a symlink target outside every home: archived as a link, never read


def fill_home(home: Path, seed: int = 0, big: int = 256 * 1024) -> Path:
    """A home with what people leave: spaces, unicode, nested folders, an empty folder, an
    executable, binary data, symlinks inside, outside (absolute) and dangling."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "my notebook.ipynb").write_text(json.dumps({"cells": [], "seed": seed}) + "\n")
    (home / "données").mkdir()
    (home / "données" / "résumé — 日本語.txt").write_text(f"naïve café {seed}\n", encoding="utf-8")
    (home / "données" / "deep" / "er").mkdir(parents=True)
    (home / "données" / "deep" / "er" / "data.bin").write_bytes(os.urandom(big))
    (home / "empty folder").mkdir()
    script = home / "run me.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    private = home / ".ssh-like"
    private.write_text("secret\n")
    private.chmod(0o600)
    (home / "outside").symlink_to(OUTSIDE)
    (home / "inside link").symlink_to("données/résumé — 日本語.txt")
    (home / "dangling").symlink_to("no such file")
    return home


def tree(root: Path) -> dict[str, tuple]:
    """Everything under ``root`` without following links: path → (kind, mode, bytes or target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                found[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return found


def assert_same_tree(restored: Path, home: Path) -> None:
    a, b = tree(restored), tree(home)
    assert sorted(a) == sorted(b)
    for rel in b:
        assert a[rel] == b[rel], rel


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 server on a loopback port; credentials and endpoint in the environment, as the
    chart's Job gets them from a Secret. Yields (endpoint URL, a boto3 client)."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {
            "AWS_ACCESS_KEY_ID": "workshop-test",
            "AWS_SECRET_ACCESS_KEY": "workshop-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="workshop-archive")
        yield endpoint, client
    finally:
        server.stop()
