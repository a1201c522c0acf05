"""Hub configuration for a workshop: the service entry and roles, the night warning banner,
and ``configure(c, settings)``, what the Helm chart's hub runs."""
