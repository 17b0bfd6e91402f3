"""`twin whatif ...` commands (filled in by the live bridge issue)."""

from __future__ import annotations


def register(sub) -> None:
    pass
