import atexit
import os
import shutil
import tempfile
import urllib.request

import pytest

# In-process KubeSpawner objects (manifest tests) load a kubeconfig when constructed, and
# kubernetes_asyncio reads $KUBECONFIG at import time: give them one that points nowhere.
# Tests that talk to the emulated cluster start hub processes with their own KUBECONFIG.
_KUBECONFIG_DIR = tempfile.mkdtemp(prefix="workshop-tests-")
atexit.register(shutil.rmtree, _KUBECONFIG_DIR, ignore_errors=True)
_KUBECONFIG = os.path.join(_KUBECONFIG_DIR, "kubeconfig")
with open(_KUBECONFIG, "w") as _f:
    _f.write(
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n"
        "clusters: [{name: none, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: none, user: {}}]\n"
        "contexts: [{name: none, context: {cluster: none, user: none, namespace: default}}]\n"
    )
os.environ.setdefault("KUBECONFIG", _KUBECONFIG)

from jupyterhub_workshop.login.issuing import Batch, issue  # noqa: E402 - after KUBECONFIG


@pytest.fixture(scope="session")
def sample_hash():
    """One real argon2id hash (hashing is deliberately slow; make it once)."""
    from jupyterhub_workshop.login.passwords import hash_password

    return hash_password("correct-horse")


def issue_accounts(prefix="ws", participants=3, instructors=1, **window):
    """Accounts and their cards, keyed by username for the tests."""
    accounts, cards = issue(Batch(prefix, participants, instructors, **window))
    return accounts, {c.username: c for c in cards}


@pytest.fixture
def s3(monkeypatch):
    """A real S3-compatible endpoint: moto's server on a loopback port, with bucket
    ``workshop-archive``; credentials in the environment, as the chart's archive Job gets them
    from a Secret. Yields (endpoint URL, a boto3 client)."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets per process, not per server: start from none
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
        )
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
