# jupyterhub-workshop: the hub configuration of the chart's `workshop:` settings.
#
# Zero to JupyterHub's jupyterhub_config.py exec()s this file (mounted into
# /usr/local/etc/jupyterhub/jupyterhub_config.d/) in its own globals, after its chart defaults,
# services, roles and hub.config, and before hub.extraConfig (which can still override us).
# The work is done by the package in the hub image (jupyterhub_workshop.hubconfig.chart); a
# function keeps our names out of z2jh's globals.


def _workshop_config(c):
    from jupyterhub_workshop.hubconfig.chart import configure_from_z2jh

    configure_from_z2jh(c)


_workshop_config(c)  # noqa: F821 -- `c` is the config object of z2jh's jupyterhub_config.py
del _workshop_config
