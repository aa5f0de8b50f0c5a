"""Helpers shared by tests: real processes of our own code (no doubles here)."""
