"""Rewritten by benchmarks/reload.py to measure save-to-new-response."""

VERSION = 0
