"""The provider's work queue, made for a phone."""
