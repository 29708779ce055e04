"""Shared fixtures: the real data folder and an isolated harken cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "kitchen20" / "labels.csv").exists():
        pytest.fail(f"real data not found at {SHARED_DATA}; the tests need ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep feature stores, description and model caches of tests out of the user's cache."""
    old = os.environ.get("HARKEN_CACHE_DIR")
    os.environ["HARKEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("harken-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield
    if old is None:
        os.environ.pop("HARKEN_CACHE_DIR", None)
    else:
        os.environ["HARKEN_CACHE_DIR"] = old
