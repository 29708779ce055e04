"""Small name → factory registries (Gebhard et al.'s style): no if/elif chains over names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from harken.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories.

    A factory registered under ``"sbert"`` also answers ``"sbert:<arg>"``: the part after the
    first colon is passed to it as ``spec``.

    Args:
        kind: What the registry holds, used in error messages ("encoder", "method", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def create(self, name: str, **kwargs) -> T:
        """Build the object registered under ``name`` (or ``prefix:spec``)."""
        base, _, spec = name.partition(":")
        if base not in self._factories:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self))}"
            )
        if spec:
            kwargs["spec"] = spec
        return self._factories[base](**kwargs)

    def __contains__(self, name: str) -> bool:
        return name.partition(":")[0] in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)
