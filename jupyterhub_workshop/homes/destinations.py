"""Where archives go: a directory (e.g. a volume claim mounted in a pod) or S3-compatible storage.

Both keep an archive out of its final name until it is complete (``stage`` then ``promote``),
so a verified archive is never replaced by a half-written one, and the manifest is written
whole or not at all. S3 credentials come from the environment as AWS tools read them
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_SHARED_CREDENTIALS_FILE``,
``AWS_PROFILE``, a pod's role), never from a command line; the endpoint of a service other than
AWS from ``--endpoint-url`` or ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from ..files import write_atomically

PARTIAL = ".partial"


class Directory:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ValueError(
                f"archive destination {self.path} is not a directory (create it, or mount the claim)"
            )

    def __str__(self) -> str:
        return str(self.path)

    def size(self, name: str) -> int | None:
        try:
            return (self.path / name).stat().st_size
        except FileNotFoundError:
            return None

    def sizes(self) -> dict[str, int]:
        return {p.name: p.stat().st_size for p in self.path.iterdir() if p.is_file()}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[BinaryIO]:
        """A file to write ``name``'s new archive into; stays ``name.partial`` until promoted."""
        partial = self.path / (name + PARTIAL)
        with open(partial, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())

    def open_staged(self, name: str) -> BinaryIO:
        return open(self.path / (name + PARTIAL), "rb")

    def promote(self, name: str) -> None:
        os.replace(self.path / (name + PARTIAL), self.path / name)

    def discard(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / (name + PARTIAL))

    def open(self, name: str) -> BinaryIO:
        return open(self.path / name, "rb")

    def read_text(self, name: str) -> str | None:
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_text(self, name: str, text: str) -> None:
        write_atomically(self.path / name, text, mode=0o644)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / name)


class S3:
    """``s3://bucket/prefix``: archives are ``prefix/<home>.tar.gz``, the manifest beside them."""

    def __init__(self, url: str, endpoint_url: str | None = None, work_dir: str | os.PathLike | None = None):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        if parts.username or parts.password or "@" in parts.netloc:
            raise ValueError(
                "credentials do not belong in the URL (it shows in process lists and logs): set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credentials file, instead"
            )
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ValueError("S3 destinations need boto3: pip install 'jupyterhub-workshop[s3]'") from None
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.work_dir = work_dir
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, config=Config(retries={"mode": "standard"})
        )
        self._staged: dict[str, str] = {}

    def __str__(self) -> str:
        return self.url

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _missing(self, error) -> bool:
        code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(name))["ContentLength"]
        except ClientError as e:
            if self._missing(e):
                return None
            raise

    def sizes(self) -> dict[str, int]:
        found = {}
        start = f"{self.prefix}/" if self.prefix else ""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents") or []:
                rest = item["Key"][len(start) :]
                if rest and "/" not in rest:
                    found[rest] = item["Size"]
        return found

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[BinaryIO]:
        """A local temporary file, uploaded as ``name.partial`` when written (multipart for big ones)."""
        fd, tmp = tempfile.mkstemp(prefix=".home-archive-", suffix=".tar.gz", dir=self.work_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
            self.client.upload_file(tmp, self.bucket, self.key(name + PARTIAL))
        finally:
            os.unlink(tmp)

    def open_staged(self, name: str) -> BinaryIO:
        return self.open(name + PARTIAL)

    def promote(self, name: str) -> None:
        source = {"Bucket": self.bucket, "Key": self.key(name + PARTIAL)}
        self.client.copy(source, self.bucket, self.key(name))  # server-side; multipart when big
        self.client.delete_object(**source)

    def discard(self, name: str) -> None:
        self.delete(name + PARTIAL)

    def open(self, name: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"]

    def read_text(self, name: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"]
        except ClientError as e:
            if self._missing(e):
                return None
            raise
        return body.read().decode("utf-8")

    def write_text(self, name: str, text: str) -> None:
        # one PUT: readers see the old manifest or the new one
        self.client.put_object(
            Bucket=self.bucket, Key=self.key(name), Body=text.encode("utf-8"), ContentType="application/json"
        )

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))


def open_destination(where: str, endpoint_url: str | None = None, work_dir=None):
    """A destination from what the organizer typed: ``s3://bucket/prefix`` or a directory."""
    if where.startswith("s3://"):
        return S3(where, endpoint_url, work_dir)
    if "://" in where:
        raise ValueError(f"{where!r}: give a directory or an s3://bucket/prefix URL")
    return Directory(where)


def copy_stream(source: BinaryIO, target: BinaryIO) -> None:
    shutil.copyfileobj(source, target, 1 << 20)
