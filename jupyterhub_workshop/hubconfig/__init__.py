"""Hub configuration for a workshop: the workshop service's configuration file, service entry,
roles and night warning banner (:mod:`.services`), and ``configure(c, settings)``, what the Helm
chart's hub runs (:mod:`.chart`)."""
