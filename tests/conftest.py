"""Shared fixtures: the real data beside the repo (skip cleanly where ../shared is absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def january_csv() -> Path:
    path = SHARED / "data" / "btc-perp-2022-01-1m.csv"
    if not path.is_file():
        pytest.skip("../shared/data is not present")
    return path


@pytest.fixture
def first_hours_csv(january_csv, tmp_path) -> Path:
    """The first hours of January 2022 (tests copy what they need; the data file is read-only)."""
    lines = january_csv.read_text().splitlines()[:1 + 6 * 60]
    path = tmp_path / "first-hours.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
