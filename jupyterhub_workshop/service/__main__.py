"""``python -m jupyterhub_workshop.service``: run the workshop service (see ``--help-all``)."""

from .app import main

main()
