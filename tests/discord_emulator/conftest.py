"""Fixtures for the emulator's own tests."""

from __future__ import annotations

from .fixtures import emulator

__all__ = ["emulator"]
