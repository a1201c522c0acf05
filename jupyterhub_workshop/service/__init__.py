"""Workshop hub service: culls idle, old and after-hours servers."""
