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


class Gadget:
    def __init__(self, size: int = 1, name: str | None = None) -> None:
        self.size, self.name = size, name

    @classmethod
    def validate_options(cls, options: dict) -> list[str]:
        size = options.get("size", 1)
        return [] if size >= 1 else [f"option 'size' must be ≥ 1, not {size}"]


@pytest.fixture
def typed() -> Registry:
    reg: Registry = Registry("gadget", options_from_return=True)

    @reg.register("gadget")
    def _gadget(spec: str | None = None, **kwargs) -> Gadget:
        return Gadget(name=spec, **kwargs)

    @reg.register("fixed", fixed=("name",))
    def _fixed(**kwargs) -> Gadget:
        return Gadget(name="fixed", **kwargs)

    return reg


def test_options_come_from_an_explicit_signature(registry):
    @registry.register("strict")
    def _strict(size: int = 1, spec: str | None = None):
        return size

    assert sorted(registry.options("strict")) == ["size"]  # spec is not a user option
    assert registry.options("plain") is None  # **kwargs only: anything goes
    with pytest.raises(ConfigError, match=r"unknown option 'colour' for widget 'strict'; valid "):
        registry.create("strict", colour="red")
    assert registry.create("strict:x", size=4) == 4


def test_options_of_a_kwargs_factory_come_from_the_class_it_returns(typed):
    assert sorted(typed.options("gadget")) == ["name", "size"]
    assert sorted(typed.options("fixed")) == ["size"]
    assert typed.create("gadget:g", size=3).size == 3
    with pytest.raises(ConfigError, match="unknown option 'name' for gadget 'fixed'"):
        typed.create("fixed", name="x")
    with pytest.raises(ConfigError, match="valid options: name, size"):
        typed.create("gadget", colour=1)


def test_option_values_are_checked_against_annotations_and_the_hook(typed):
    with pytest.raises(
        ConfigError, match=r"option 'size' must be an integer, not 'big' \(string\)"
    ):
        typed.create("gadget", size="big")
    with pytest.raises(ConfigError, match=r"gadget 'gadget': option 'size' must be ≥ 1, not 0"):
        typed.create("gadget", size=0)
    with pytest.raises(ConfigError, match=r"^run.toml: \[methods.g\]: "):
        typed.check("gadget", {"size": 0}, context="run.toml: [methods.g]")


def test_joint_spaces_reject_unknown_options():
    from harken.methods.joint import get_joint_space

    with pytest.raises(ConfigError, match="unknown option 'foo' for joint space 'clap'"):
        get_joint_space("clap", foo=1)
    with pytest.raises(ConfigError, match="unknown option 'foo' for joint space 'msclap:2023'"):
        get_joint_space("msclap:2023", foo=1)
    valid = "valid options: label_text, sim_power, sim_threshold, tagger"
    with pytest.raises(ConfigError, match=valid):
        get_joint_space("bridge", top_k=5)
    with pytest.raises(ConfigError, match="option 'top_t' must be an integer"):
        get_joint_space("bridge", top_t="5")
