"""Shared fixtures. Real media comes from ../shared/data (CI has it beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never download anything: asset resolution must find local files or fail loudly.
os.environ["MEDTALK_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDTALK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test media; tests that need it fail clearly on CI if it is missing, skip elsewhere."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real test data missing at {SHARED_DATA}; CI must have ../shared beside the checkout")
        pytest.skip(f"real test data not found at {SHARED_DATA} (set MEDTALK_SHARED_DATA)")
    return SHARED_DATA
