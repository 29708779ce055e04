"""A hub backend that is not in the local cache, offline: a quick data error (exit 1) that says
how to use a local folder instead."""

from __future__ import annotations

import sys

import pytest

from .conftest import assert_clean_error, assert_mentions_any, cli


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """Import the library and the CLAP model code first: the time limit is for the hub call."""
    from transformers import ClapModel, ClapProcessor  # noqa: F401

    import harken.api  # noqa: F401


def test_offline_hub_backend_fails_fast_with_a_local_folder_hint(clip, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if "huggingface_hub.constants" in sys.modules:  # read at import: keep it offline too
        monkeypatch.setattr(sys.modules["huggingface_hub.constants"], "HF_HUB_OFFLINE", True)
    backend = "clap:laion/clap-htsat-unfused"
    result = cli(capsys, "predict", clip, "--labels", "a,b", "--backend", backend)
    assert_clean_error(result, 1, "laion/clap-htsat-unfused")
    assert_mentions_any(result, "local folder", "folder")
    assert result.seconds < 10, f"offline failure took {result.seconds:.1f} s"
