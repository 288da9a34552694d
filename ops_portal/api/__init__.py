"""The JSON API under /api, authenticated by bearer tokens (docs/api.md)."""
