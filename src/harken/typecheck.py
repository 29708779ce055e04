"""Check configuration values against type annotations (dataclass fields, constructor options).

Configs come from TOML, so the values are ``bool``, ``int``, ``float``, ``str``, lists and tables;
:func:`matches` decides whether such a value fits an annotation and :func:`describe` says in
words what an annotation expects, for error messages such as
``[protocol] folds must be an integer, not "five" (str)``.

Rules: ``bool`` is never an ``int`` or ``float``; an ``int`` is a valid ``float``; a string is
never a list; lists and tuples are interchangeable (TOML has only arrays) but fixed-length tuples
need that many items; annotations this module does not understand accept anything.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (see the module docstring for the rules)."""
    if annotation in (Any, inspect.Parameter.empty, object):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if _is_union(annotation):
        return any(matches(value, a) for a in _args(annotation))
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in _args(annotation)
    if annotation in (list, tuple) or origin in (list, tuple, Sequence):
        return _matches_sequence(value, origin or annotation, _args(annotation))
    if annotation is dict or origin in (dict, Mapping):
        return _matches_mapping(value, _args(annotation))
    if origin is Callable or annotation is Callable:
        return callable(value)
    if inspect.isclass(annotation) and origin is None:
        return isinstance(value, annotation)
    return True


def _matches_sequence(value: Any, origin: Any, args: tuple[Any, ...]) -> bool:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        return False
    if origin is tuple and args and args[-1] is not Ellipsis:
        return len(value) == len(args) and all(
            matches(v, a) for v, a in zip(value, args, strict=True)
        )
    item = args[0] if args else Any
    return all(matches(v, item) for v in value)


def _matches_mapping(value: Any, args: tuple[Any, ...]) -> bool:
    if not isinstance(value, Mapping):
        return False
    if not args:
        return True
    key, item = args
    return all(matches(k, key) and matches(v, item) for k, v in value.items())


def describe(annotation: Any) -> str:
    """What ``annotation`` expects, in words (``"an integer or none"``, ``"a list of strings"``)."""
    if annotation is None or annotation is type(None):
        return "none"
    if _is_union(annotation):
        parts = list(dict.fromkeys(describe(a) for a in _args(annotation)))
        return " or ".join(parts)
    if annotation in _NAMES:
        return _NAMES[annotation]
    origin, args = typing.get_origin(annotation), _args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if annotation in (list, tuple) or origin in (list, tuple, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {_plural(args[0])}" if args else "a list"
    if annotation is dict or origin in (dict, Mapping):
        return "a table"
    return getattr(annotation, "__name__", str(annotation))


def _plural(annotation: Any) -> str:
    return {bool: "booleans", int: "integers", float: "numbers", str: "strings"}.get(
        annotation, f"items ({describe(annotation)})"
    )


def shown(value: Any) -> str:
    """``value`` as an error message shows it: its repr and TOML-ish type name."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), "list" if isinstance(value, list | tuple) else type(value).__name__
    )
    return f"{value!r} ({kind})"


def type_hints(obj: Callable) -> dict[str, Any]:
    """Resolved annotations of a function, class constructor or dataclass ({} if unresolvable).

    Annotations that name something the module only imports for type checking cannot be
    resolved; then nothing is checked rather than everything being rejected.
    """
    target = (
        obj.__init__ if inspect.isclass(obj) and not hasattr(obj, "__dataclass_fields__") else obj
    )
    try:
        return typing.get_type_hints(target)
    except (NameError, TypeError, AttributeError):
        return {}
