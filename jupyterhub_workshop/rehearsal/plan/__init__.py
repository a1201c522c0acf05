"""``jupyterhub-workshop plan``: nodes, node-hours and cost for a workshop, before and after it."""
