"""The quantities each layer can record, by layer: what a scenario's ``outputs`` may name."""

from __future__ import annotations

RECORDABLE: dict[str, tuple[str, ...]] = {
    "water": ("pressure", "demand", "flow", "head", "tank_level", "energy"),
}


def known_quantities() -> list[str]:
    return sorted({q for names in RECORDABLE.values() for q in names})
