"""Protocols as plug-ins: one module per protocol, one line in :mod:`harken.protocols.catalog`.

A protocol is how an experiment turns a dataset and its features into results: the class-disjoint
k-fold ZSL of Gebhard et al. (§3.2), the training-free all-classes run, the two-stage GZSL of
Kurzendörfer et al. (§4.1), and the SoundingActions evaluations of Chen et al. (§6: sounding-action
discovery, cross-modal retrieval, linear probe). Each one is a :class:`Protocol` subclass that owns

* its config section — the dataclass :attr:`Protocol.Options`, whose fields are the keys a user
  writes under ``[protocol]`` (every field has a default and a documented meaning; types come
  from the annotations, ranges from :attr:`Protocol.RANGES` and :meth:`Protocol.check`);
* its run — :meth:`Protocol.run`, which reads data, knowledge and features through the shared
  :class:`~harken.experiment.Experiment` services and writes the run folder;
* its results schema — ``results["protocol"]["name"]`` names the protocol, and
  :meth:`Protocol.markdown` / :meth:`Protocol.table` are the only code that reads the rest.

Nothing outside a protocol's module branches on its name: :func:`get_protocol` looks it up.
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harken.errors import ConfigError
from harken.registry import Registry
from harken.typecheck import describe, matches, shown

if TYPE_CHECKING:
    from harken.experiment import Experiment, ExperimentConfig


@dataclasses.dataclass
class NoOptions:
    """A protocol without settings of its own."""


class Protocol(ABC):
    """One evaluation protocol (see the module docstring).

    Attributes:
        name: The registry name (``protocol = "<name>"`` in an experiment file).
        Options: The dataclass of the protocol's ``[protocol]`` keys.
        RANGES: ``(field, check, expected value in words)``; None values are not checked.
        uses_methods: Whether the protocol runs the ``[methods]`` list (all built-in ones do).
        needs_classes: Whether it classifies into the ``target`` column's classes.
        PATH_OPTIONS: Options that hold paths.
    """

    name: ClassVar[str] = "protocol"
    Options: ClassVar[type] = NoOptions
    RANGES: ClassVar[tuple[tuple[str, Callable[[Any], bool], str], ...]] = ()
    uses_methods: ClassVar[bool] = True
    #: Whether the protocol classifies into the ``target`` column's classes (at least 2).
    needs_classes: ClassVar[bool] = True
    #: Options that hold paths (relative ones are read from the experiment file's folder).
    PATH_OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    # --- configuration -----------------------------------------------------------------------

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.Options)]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], key: Callable[[str], str]) -> Any:
        """Build :attr:`Options` from a ``[protocol]`` table, checking names, types and ranges.

        Args:
            raw: ``{option: value}`` as written (TOML values).
            key: How messages name an option (``key("folds")`` → ``run.toml: [protocol] folds``).

        Raises:
            ConfigError: an unknown option, a value of the wrong type or out of range.
        """
        known = cls.option_names()
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(
                f"{key(unknown[0])}: protocol {cls.name!r} has no option {unknown[0]!r}; its "
                f"options: {', '.join(known) or '(none)'}"
            )
        hints = typing.get_type_hints(cls.Options)
        for name, value in raw.items():
            if not matches(value, hints[name]):
                if isinstance(value, str | int | float) and "list" in describe(hints[name]):
                    raise ConfigError(
                        f"{key(name)} must be {describe(hints[name])} such as [{value!r}], "
                        f"not {shown(value)}"
                    )
                expected = describe(hints[name])
                raise ConfigError(f"{key(name)} must be {expected}, not {shown(value)}")
        options = cls.Options(**raw)
        for name, ok, expected in cls.RANGES:
            value = getattr(options, name)
            if value is not None and not ok(value):
                raise ConfigError(f"{key(name)} must be {expected}, not {value!r}")
        cls.check(options, key)
        return options

    @classmethod
    def check(cls, options: Any, key: Callable[[str], str]) -> None:
        """Checks across options that need no data (override; raise ConfigError)."""
        return None

    def check_against(self, config: ExperimentConfig, n_classes: int) -> None:
        """Checks that need the dataset's class count (override; raise ConfigError)."""
        return None

    # --- run and results ----------------------------------------------------------------------

    @abstractmethod
    def run(self, exp: Experiment) -> dict:
        """Run the experiment ``exp`` (its config, run folder and loaded services) and write
        ``results.json``, ``results.md``, ``manifest.json`` and the protocol's own files into
        ``exp.folder``; returns ``results.json``'s content."""

    @staticmethod
    @abstractmethod
    def markdown(results: dict) -> str:
        """``results.md`` for this protocol's ``results.json``."""

    @staticmethod
    @abstractmethod
    def table(results: dict) -> str:
        """A plain-text table of ``results`` for the terminal."""


def at_least(low: int) -> tuple[Callable[[Any], bool], str]:
    """A :attr:`Protocol.RANGES` rule: an integer ≥ ``low``."""
    return (lambda v: v >= low), f"an integer ≥ {low}"


#: A :attr:`Protocol.RANGES` rule: a fraction strictly between 0 and 1.
FRACTION: tuple[Callable[[Any], bool], str] = ((lambda v: 0 < v < 1), "a fraction in (0, 1)")


PROTOCOLS: Registry[Protocol] = Registry("protocol")


def get_protocol(name: str) -> type[Protocol]:
    """The protocol class registered as ``name`` (``kfold``, ``gzsl``, ``discovery``, ...)."""
    from harken.protocols import catalog  # noqa: F401  (registers the built-in protocols)

    return PROTOCOLS.get(name)


def available_protocols() -> list[str]:
    from harken.protocols import catalog  # noqa: F401

    return sorted(PROTOCOLS)


def protocol_of(results: dict) -> type[Protocol]:
    """The protocol whose ``results.json`` this is (``results["protocol"]["name"]``)."""
    name = results.get("protocol", {}).get("name")
    if not isinstance(name, str):
        raise ConfigError("these results name no protocol (results['protocol']['name'])")
    return get_protocol(name)


def results_markdown(results: dict) -> str:
    """``results.md`` of any protocol's results (its own tables)."""
    return protocol_of(results).markdown(results)


def results_table(results: dict) -> str:
    """The terminal table of any protocol's results (its own metrics)."""
    return protocol_of(results).table(results)
