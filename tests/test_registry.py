"""Name → factory registries."""

from __future__ import annotations

import pytest

from harken.errors import ConfigError
from harken.registry import Registry


@pytest.fixture
def registry() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("plain")
    def _plain(**kwargs):
        return ("plain", kwargs)

    @reg.register("sbert")
    def _sbert(spec: str = "default", **kwargs):
        return ("sbert", spec, kwargs)

    return reg


def test_create_passes_keyword_arguments(registry):
    assert registry.create("plain", size=3) == ("plain", {"size": 3})


def test_name_with_spec_passes_the_spec(registry):
    assert registry.create("sbert") == ("sbert", "default", {})
    assert registry.create("sbert:all-MiniLM-L6-v2", device="cpu") == (
        "sbert",
        "all-MiniLM-L6-v2",
        {"device": "cpu"},
    )
    # only the first colon splits: model ids may contain colons themselves
    assert registry.create("sbert:org/model:rev") == ("sbert", "org/model:rev", {})


def test_unknown_name_lists_the_choices(registry):
    with pytest.raises(ConfigError, match=r"unknown widget 'nope'; choose one of: plain, sbert"):
        registry.create("nope")
    with pytest.raises(ConfigError, match="unknown widget 'nope:x'"):
        registry.create("nope:x")


def test_membership_and_iteration(registry):
    assert "plain" in registry and "sbert:anything" in registry
    assert "nope" not in registry
    assert sorted(registry) == ["plain", "sbert"]


def test_registering_a_name_twice_fails(registry):
    with pytest.raises(ValueError, match="'plain' is registered twice"):
        registry.register("plain")(lambda **_: None)
