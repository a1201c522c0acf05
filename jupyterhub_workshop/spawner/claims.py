"""Waiting for a home volume claim: what to tell the person watching the spawn page (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..wording import count


@dataclass(frozen=True)
class ClaimWait:
    done: bool  # bound: stop watching
    failed: bool  # waited too long: fail the spawn with ``message``
    message: str


def claim_wait(
    phase: str | None, claim: str, storage_class: str | None, elapsed: float, limit: float
) -> ClaimWait:
    """Where a home claim stands after ``elapsed`` seconds of a spawn."""
    cls = f"storage class {storage_class!r}" if storage_class else "the cluster's default storage class"
    if phase == "Bound":
        return ClaimWait(True, False, f"Your home volume {claim} is ready.")
    if elapsed >= limit:
        return ClaimWait(
            False,
            True,
            f"Your home volume {claim} was not provisioned within {count(int(limit), 'second')} "
            f"({cls}, status {phase or 'not created'}). The storage system may be overloaded; "
            "please try again in a minute, and tell the organizers if it keeps happening.",
        )
    return ClaimWait(
        False, False, f"Waiting for your home volume {claim} ({cls}) to be provisioned: {int(elapsed)} s"
    )
