"""``jupyterhub-workshop plan``: nodes, node-hours and cost for a workshop, before and after it.

:mod:`.sizing` is the model (a :class:`~.sizing.Plan` from the guarantees, a node, its
:mod:`.overheads` and the event's hours or :mod:`.schedule`); :mod:`.catalogue` reads the node
catalogue (``nodes.yaml``), :mod:`.quantities` memory and CPU amounts; :mod:`.render` shows a
plan as a table or JSON; :mod:`.cli` is the command line.
"""
