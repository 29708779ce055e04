"""The description-generator contract and registry.

Class knowledge in harken is text: one or more textual descriptions per class, which a text
encoder embeds into class embeddings (Gebhard et al., 2024, §2 "Audio descriptions" and §3
"Text embeddings"). A *generator* turns input texts — action names or narrations — into
descriptions. Every generator is an object with:

* ``name`` (str): registry name including its spec, e.g. ``"template"``, ``"llm:<model>"``;
* ``config() -> dict``: everything that changes the output (generator, model id, prompt template,
  decoding parameters); it keys the description cache and goes into the run manifest;
* ``describe(items) -> list[list[str]]``: one list of descriptions per input text, in order.

Generators are deterministic by default (templates, or greedy decoding for language models): the
same input gives the same descriptions, alone or in a batch, call after call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from harken.errors import ConfigError
from harken.registry import Registry


@runtime_checkable
class DescriptionGenerator(Protocol):
    name: str

    def config(self) -> dict: ...

    def describe(self, items: Sequence[str]) -> list[list[str]]: ...


GENERATORS: Registry[DescriptionGenerator] = Registry("description generator")


def get_generator(name: str, **kwargs) -> DescriptionGenerator:
    """Create a registered generator by name.

    Args:
        name: ``"template"``, ``"template:<set or file.json#key>"``, ``"llm"``,
            ``"llm:<model id or folder>"``, ``"openai"`` or ``"openai:<model>"``.
        **kwargs: Passed to the generator's constructor.

    Returns:
        The generator.
    """
    _import_backends()
    return GENERATORS.create(name, **kwargs)


def available_generators() -> list[str]:
    """Names of all registered generators."""
    _import_backends()
    return sorted(GENERATORS)


def check_items(items: Sequence[str], what: str = "item") -> list[str]:
    """Validate the inputs of ``describe``: a sequence of non-empty strings.

    Args:
        items: The texts to describe.
        what: What the texts are, for error messages ("class name", "narration", ...).

    Returns:
        The items as a list.

    Raises:
        ConfigError: If ``items`` is a single string, or an item is not a string or is blank.
    """
    if isinstance(items, str):
        raise ConfigError(f"describe() takes a list of {what}s, got the single string {items!r}")
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{what} #{i} is {type(item).__name__} {item!r}; expected a string")
        if not item.strip():
            raise ConfigError(f"{what} #{i} is empty; every {what} needs some text to describe")
    return items


def _import_backends() -> None:
    """Import generator modules so they register themselves (one line per backend)."""
    from harken.knowledge import local_llm, openai_compat, templates, written  # noqa: F401
