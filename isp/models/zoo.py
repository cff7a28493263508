"""Explicit list of the modules that register models (importing them fills the registry)."""
