"""Offline command-line tools built on the core."""
