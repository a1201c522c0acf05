"""Logins with workshop cards: the accounts file, passwords, issuing and printing cards, the
``workshop`` authenticator, per-account backoff and admission during a rush."""
