"""Plain-Python domain: statuses, roles, the lifecycle table and domain errors."""
