"""Kernel-tier VM runner (see runner.py)."""
