from jupyterhub_workshop.spawner.claims import claim_wait


def test_claim_wait_messages():
    waiting = claim_wait("Pending", "claim-ws001", "rook-ceph", 12.7, 60)
    assert (
        not waiting.done
        and not waiting.failed
        and "12 s" in waiting.message
        and "rook-ceph" in waiting.message
    )
    failed = claim_wait("Pending", "claim-ws001", "rook-ceph", 60, 60)
    assert failed.failed and "storage class 'rook-ceph'" in failed.message and "claim-ws001" in failed.message
    assert "default storage class" in claim_wait(None, "c", None, 61, 60).message
    assert claim_wait("Bound", "c", None, 500, 60).done
