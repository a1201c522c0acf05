"""Workshop spawners: ``workshop`` (KubeSpawner) and ``workshop-local`` (local processes)."""
