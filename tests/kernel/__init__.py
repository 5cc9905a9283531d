"""Kernel tier: tests that run inside the QEMU VM (marker ``kernel``; see tests/fixtures/kernel.py)."""
