class PlanError(ValueError):
    """A request that cannot be planned; the message says why and what would fit."""
