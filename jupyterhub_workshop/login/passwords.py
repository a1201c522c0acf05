"""Card passwords: generation and the argon2id hashing the hub verifies against."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import argon2

# No look-alikes: 0/O/o, 1/l/I/i are left out, and so is uppercase, so a card read aloud or
# typed on a phone is unambiguous.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
PASSWORD_LENGTH = 11  # 11 symbols from 31 = 54.5 bits

# OWASP minimum for argon2id: 19 MiB, 2 passes, 1 lane (about 25-30 ms per check on one core).
HASHER = argon2.PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=argon2.Type.ID
)


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time check (inside argon2) of ``password`` against ``password_hash``."""
    try:
        return HASHER.verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def dummy_verify(password: str) -> bool:
    """Spend the same work as a real check, for names that have no account; always False."""
    verify_password(_dummy_hash(), password)
    return False


def hash_many(
    passwords: Iterable[str],
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Hash passwords on ``workers`` threads (argon2 releases the GIL), in input order."""
    passwords = list(passwords)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        hashes = []
        for digest in pool.map(hash_password, passwords):
            hashes.append(digest)
            if progress:
                progress(1)
    return hashes
