"""Rehearsing a workshop before the day: the local demo hub, the load test and the sizing plan."""
