"""The workshop service: idle and night-time culling with opt-outs, usage records and exports,
metrics, and the admin page in the hub's Services menu."""
