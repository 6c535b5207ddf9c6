"""Titanic survival, from a raw CSV to a monitored service: see the README."""
