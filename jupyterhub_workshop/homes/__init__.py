"""Homes at the end of the workshop: archive each one, verify it, and delete only what is archived."""
