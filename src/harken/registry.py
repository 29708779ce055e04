"""Small name → factory registries (Gebhard et al.'s style): no if/elif chains over names.

A registry also checks the keyword options of :meth:`Registry.create` *before* building
anything: an option the factory does not accept is a :class:`~harken.errors.ConfigError` that
lists the valid ones. The valid options are the factory's keyword parameters; a factory of the
usual form ``def _make(**kwargs) -> SomeClass: return SomeClass(**kwargs)`` in a registry made
with ``options_from_return=True`` takes the options of ``SomeClass``'s constructor (its
annotations are then checked too, and its ``validate_options`` hook, if any, checks ranges).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from harken.errors import ConfigError
from harken.typecheck import describe, matches, shown, type_hints

T = TypeVar("T")

#: Parameters that are not options a user sets: the ``name:spec`` part, and ``self``.
_INTERNAL = ("spec", "self")


class Registry(Generic[T]):
    """Maps names to factories.

    A factory registered under ``"sbert"`` also answers ``"sbert:<arg>"``: the part after the
    first colon is passed to it as ``spec``.

    Args:
        kind: What the registry holds, used in error messages ("encoder", "method", ...).
        options_from_return: Take the options of a ``**kwargs`` factory from the class its
            return annotation names, and check their values against that class's annotations.
    """

    def __init__(self, kind: str, *, options_from_return: bool = False) -> None:
        self.kind = kind
        self.options_from_return = options_from_return
        self._factories: dict[str, Callable[..., T]] = {}
        self._fixed: dict[str, tuple[str, ...]] = {}

    def register(
        self, name: str, *, fixed: tuple[str, ...] = ()
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Register a factory under ``name``.

        Args:
            name: The registry name.
            fixed: Options of the built class that the factory sets itself (not user options).
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            self._fixed[name] = tuple(fixed)
            return factory

        return decorator

    def _factory(self, name: str) -> tuple[str, Callable[..., T]]:
        base = name.partition(":")[0]
        if base not in self._factories:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self))}"
            )
        return base, self._factories[base]

    def _target(self, base: str) -> Callable[..., Any]:
        """What defines the options of ``base``: its factory, or the class it returns."""
        factory = self._factories[base]
        if self.options_from_return and _takes_any_keyword(factory):
            returned = type_hints(factory).get("return")
            if inspect.isclass(returned):
                return returned
        return factory

    def options(self, name: str) -> dict[str, inspect.Parameter] | None:
        """The options ``name`` accepts (None: any, the factory takes arbitrary keywords)."""
        base, factory = self._factory(name)
        target = self._target(base)
        params = _keyword_parameters(factory)
        if _takes_any_keyword(factory):
            if target is factory or _takes_any_keyword(target):
                return None
            params = {**_keyword_parameters(target), **params}
        for fixed in self._fixed[base]:
            params.pop(fixed, None)
        return params

    def check(self, name: str, options: Mapping[str, Any], context: str | None = None) -> None:
        """Raise ConfigError if ``options`` are not valid for ``name`` (before any work).

        Args:
            name: Registry name (``name`` or ``name:spec``).
            options: The keyword options that :meth:`create` would pass.
            context: Where the options come from (e.g. ``"run.toml: [methods.linear]"``),
                prefixed to the message.
        """
        prefix = f"{context}: " if context else ""
        accepted = self.options(name)
        if accepted is None:
            return
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            valid = ", ".join(sorted(accepted)) or "(none)"
            raise ConfigError(
                f"{prefix}unknown option {unknown[0]!r} for {self.kind} {name!r}; "
                f"valid options: {valid}"
            )
        if not self.options_from_return:
            return
        base = name.partition(":")[0]
        target = self._target(base)
        hints = {**type_hints(self._factories[base]), **type_hints(target)}
        for key, value in options.items():
            hint = hints.get(key)
            if hint is not None and not matches(value, hint):
                raise ConfigError(
                    f"{prefix}{self.kind} {name!r} option {key!r} must be {describe(hint)}, "
                    f"not {shown(value)}"
                )
        hook = getattr(target, "validate_options", None)
        problems = hook(dict(options)) if callable(hook) else []
        if problems:
            raise ConfigError(f"{prefix}{self.kind} {name!r}: " + "; ".join(problems))

    def create(self, name: str, /, **kwargs) -> T:
        """Build the object registered under ``name`` (or ``prefix:spec``).

        Raises:
            ConfigError: ``name`` is not registered, or an option is unknown or invalid.
        """
        _, factory = self._factory(name)
        self.check(name, kwargs)
        _, _, spec = name.partition(":")
        if spec:
            kwargs["spec"] = spec
        return factory(**kwargs)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name`` (or ``prefix:spec``).

        Raises:
            ConfigError: ``name`` is not registered (the message lists the names that are).
        """
        return self._factory(name)[1]

    def __contains__(self, name: str) -> bool:
        return name.partition(":")[0] in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)


def _takes_any_keyword(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _keyword_parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p for n, p in params.items() if p.kind in kinds and n not in _INTERNAL}
