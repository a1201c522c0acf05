"""``jupyterhub-workshop loadtest``: simulated participants with the real login cards.

:mod:`.participant` is one person at a browser, :mod:`.run` runs a crowd of them and the command
line, :mod:`.report` turns their results into numbers, text, JSON and CSV, :mod:`.plot` draws
users per stage over time.
"""
