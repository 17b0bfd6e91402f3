"""Shared fixtures: where the reference data lives, and skips when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_file(*parts: str) -> Path:
    """Path of a reference file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (set TWIN_SHARED_DATA to its folder)")
    return path


@pytest.fixture
def ltown_inp() -> Path:
    return shared_file("battledim", "L-TOWN.inp")


@pytest.fixture
def net3_inp() -> Path:
    import wntr

    return Path(wntr.__file__).parent / "library" / "networks" / "Net3.inp"
