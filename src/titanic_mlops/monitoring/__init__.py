"""Metrics definitions and their export."""
