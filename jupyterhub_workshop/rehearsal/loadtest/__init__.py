"""``jupyterhub-workshop loadtest``: simulated participants with the real login cards.

:mod:`.participant` is one person at a browser, :mod:`.run` runs a crowd of them and the command
line, :mod:`.report` turns their results into numbers, text, JSON and CSV, :mod:`.plot` draws
users per stage over time. With the tutorial's notebooks: :mod:`.notebook` reads them (cells,
think times), :mod:`.resources` reads jupyter-resource-usage's answers, :mod:`.notebook_report`
turns cells and samples into per-cell numbers, peaks and a verdict, :mod:`.html` draws the page.
"""
