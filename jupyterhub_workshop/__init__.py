"""jupyterhub-workshop: run a hands-on workshop on JupyterHub."""

__version__ = "0.1.0.dev0"
