"""The JSON API (SPEC §7) under /api, authenticated by bearer tokens."""
