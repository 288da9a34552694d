"""Live pages: each page's doorbell stream and fallback poll (views), fed by each process's one
listener on the change feed (hub)."""

from .views import live_page, register_live, streams_served

__all__ = ["live_page", "register_live", "streams_served"]
