import math

from jupyterhub_workshop.login import passwords


def test_alphabet_has_no_look_alikes_and_enough_entropy():
    assert not set("0Oo1lIi") & set(passwords.ALPHABET)
    assert len(set(passwords.ALPHABET)) == len(passwords.ALPHABET)
    assert passwords.PASSWORD_LENGTH * math.log2(len(passwords.ALPHABET)) >= 50


def test_generated_passwords_use_the_alphabet_and_differ():
    generated = {passwords.generate_password() for _ in range(200)}
    assert len(generated) == 200
    assert all(len(p) == passwords.PASSWORD_LENGTH and set(p) <= set(passwords.ALPHABET) for p in generated)


def test_hash_is_argon2id_with_owasp_minimum_parameters():
    import argon2

    digest = passwords.hash_password("abc")
    params = argon2.extract_parameters(digest)
    assert digest.startswith("$argon2id$")
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19 * 1024, 2, 1)
    assert passwords.verify_password(digest, "abc")
    assert not passwords.verify_password(digest, "abd")
    assert not passwords.verify_password("not-a-hash", "abc")
    assert not passwords.dummy_verify("abc")


def test_hash_many_keeps_order_and_reports_progress():
    seen = []
    hashes = passwords.hash_many(["a", "b", "c"], workers=2, progress=seen.append)
    assert [passwords.verify_password(h, p) for h, p in zip(hashes, "abc")] == [True] * 3
    assert sum(seen) == 3
