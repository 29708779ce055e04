"""The method contract and registry.

A zero-shot method scores clips against *candidate classes it may never have seen*:

* :class:`Classes` — candidate class names with one knowledge embedding per class; row ``i`` of
  ``embeddings`` always belongs to ``names[i]`` (labels are carried as names end to end, so class
  order can never misalign labels and embedding rows — the defect in the papers' code);
* :class:`Batch` — clip features per encoder name (rows aligned to clips) and, for training
  data, the class name of each clip;
* ``fit(train, train_classes, dev, dev_classes, seed)`` — trainable methods learn on seen
  classes and select epochs/hyperparameters on *dev* classes only; training-free methods ignore
  it (or only pick hyperparameters on dev);
* ``score(batch, classes) -> [N, C]`` — compatibility of each clip with each candidate class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harken.errors import ConfigError, DataError
from harken.registry import Registry


@dataclass
class Classes:
    """Candidate classes: ``names[i]`` ↔ ``embeddings[i]``.

    ``alternatives`` optionally holds other knowledge embeddings of the same classes (one
    ``[C, D]`` array per knowledge source, rows in ``names`` order), for methods that choose
    their class knowledge on non-test classes.
    """

    names: list[str]
    embeddings: np.ndarray
    alternatives: dict[str, np.ndarray] = field(default_factory=dict)
    #: Optional per-text embeddings behind a knowledge source: ``members[source][i]`` is the
    #: ``[n_i, D]`` array of the individual description embeddings of ``names[i]`` (KDA's class
    #: knowledge distributions, Eq. 6).
    members: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.embeddings):
            raise DataError(
                f"{len(self.names)} class names but {len(self.embeddings)} class embeddings"
            )
        if len(set(self.names)) != len(self.names):
            raise DataError("duplicate class names among the candidates")

    def subset(self, names: list[str]) -> Classes:
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise DataError(f"no knowledge embedding for classes {missing[:5]}")
        rows = [index[n] for n in names]
        alternatives = {k: v[rows] for k, v in self.alternatives.items()}
        members = {k: [v[r] for r in rows] for k, v in self.members.items()}
        return Classes(list(names), self.embeddings[rows], alternatives, members)

    def view(self, source: str) -> np.ndarray:
        """The ``[C, D]`` embeddings of knowledge ``source`` (an ``alternatives`` key)."""
        if source not in self.alternatives:
            raise ConfigError(
                f"no {source!r} class knowledge; the run provides {sorted(self.alternatives)} "
                "(configure it under [knowledge.views])"
            )
        return self.alternatives[source]

    def with_knowledge(self, source: str | None) -> Classes:
        """These classes embedded by the knowledge ``source`` (None: the default)."""
        if source is None:
            return self
        if source not in self.alternatives:
            raise DataError(
                f"no {source!r} knowledge for these classes; have {sorted(self.alternatives)}"
            )
        return Classes(
            list(self.names), self.alternatives[source], dict(self.alternatives), self.members
        )


@dataclass
class Batch:
    """Clip features (encoder name → ``[N, D]``) and optional class names."""

    features: dict[str, np.ndarray]
    labels: list[str] | None = None
    clip_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(next(iter(self.features.values())))

    def get(self, name: str) -> np.ndarray:
        try:
            return self.features[name]
        except KeyError:
            raise ConfigError(
                f"this method needs {name!r} features; the run provides {sorted(self.features)}"
            ) from None

    def subset(self, mask: np.ndarray) -> Batch:
        idx = np.flatnonzero(mask) if mask.dtype == bool else np.asarray(mask)
        return Batch(
            {k: v[idx] for k, v in self.features.items()},
            None if self.labels is None else [self.labels[i] for i in idx],
            [self.clip_ids[i] for i in idx] if self.clip_ids else [],
        )


class Method(ABC):
    """Base class of every zero-shot method (see the module docstring)."""

    name: str = "method"
    trainable: bool = False
    #: Audio feature names (encoder names) the method reads from a :class:`Batch`.
    features: tuple[str, ...] = ()
    #: Whether the method bridges through a tagger's label space (then it is constructed with
    #: ``label_space=`` — the tagger's label names embedded by the knowledge text encoder).
    uses_label_space: bool = False
    #: Candidate classes per clip at test time — a property of the protocol (e.g. 4 in a fold
    #: with 4 test classes), never of test data; set by the experiment before ``fit`` so that
    #: selection on seen classes can mimic the test task. None: unknown.
    n_candidates: int | None = None
    #: How ``fit`` ranks epochs/hyperparameters on its dev clips:
    #: ``criterion(scores [N, C], labels, class_names) -> float`` (higher is better). A protocol
    #: sets it — the GZSL protocol uses the validation harmonic mean after calibrated stacking.
    #: None: unweighted accuracy (the foundation's dev-class UA).
    criterion: Callable[[np.ndarray, list[str], list[str]], float] | None = None

    def dev_score(self, scores: np.ndarray, labels: list[str], names: list[str]) -> float:
        """Selection score of dev ``scores`` (see :attr:`criterion`)."""
        if self.criterion is not None:
            return float(self.criterion(scores, labels, names))
        from harken.metrics.classification import unweighted_accuracy

        return unweighted_accuracy(labels, [names[i] for i in np.argmax(scores, axis=1)])

    def replay(self, log: dict) -> None:
        """Prepare a retraining stage with no dev data: reuse the choices ``fit`` logged in
        ``log`` (the epoch count and learning-rate schedule of a trainable head). Training-free
        methods have nothing to replay."""
        return None

    def fit(
        self,
        train: Batch | None,
        train_classes: Classes | None,
        dev: Batch | None,
        dev_classes: Classes | None,
        seed: int = 0,
    ) -> dict:
        """Learn from seen classes; returns a log (chosen epoch/hyperparameters, ...)."""
        return {}

    @abstractmethod
    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]`` compatibility of each clip with each candidate class."""

    def predict(self, batch: Batch, classes: Classes) -> list[str]:
        scores = self.score(batch, classes)
        return [classes.names[i] for i in np.argmax(scores, axis=1)]

    def config(self) -> dict:
        """Hyperparameters (for the run manifest)."""
        return {}

    @classmethod
    def validate_options(cls, options: dict) -> list[str]:
        """Problems with the values of constructor ``options`` (checked before any work).

        The registry has already checked option names and types; this checks ranges, by
        default those of :data:`OPTION_RANGES` for the options a method shares. Methods with
        options of their own override it (and extend the list).
        """
        problems = []
        for key, value in options.items():
            rule = OPTION_RANGES.get(key)
            if rule is None or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            ok, expected = rule
            if not ok(value):
                problems.append(f"option {key!r} must be {expected}, not {value!r}")
        return problems


def _at_least(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= low), f"≥ {low:g}"


_FRACTION = ((lambda v: 0 <= v < 1), "in [0, 1)")

#: Ranges of the options several methods share: option → (check, expected value in words).
OPTION_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "epochs": _at_least(1),
    "batch_size": _at_least(1),
    "lr": ((lambda v: v > 0), "> 0"),
    "weight_decay": _at_least(0),
    "margin": _at_least(0),
    "plateau_patience": _at_least(1),
    "dropout": _FRACTION,
    "enc_dropout": _FRACTION,
    "proj_dropout": _FRACTION,
    "top_t": _at_least(1),
    "episodes": _at_least(1),
    "dim": _at_least(1),
    "d_model": _at_least(1),
    "d_hidden": _at_least(1),
    "d_out": _at_least(1),
    "heads": _at_least(1),
}


METHODS: Registry[Method] = Registry("method", options_from_return=True)


def get_method(name: str, **kwargs) -> Method:
    """Create a registered method (``linear``, ``conse``, ``bridge``, ...)."""
    from harken.methods import catalog  # noqa: F401  (registers the built-in methods)

    return METHODS.create(name, **kwargs)


class StandardizedInputs:
    """Mixin of trainable heads: concatenates ``self.features`` and standardises them with the
    mean/std of the *training* clips only (dev and test clips never shape the statistics)."""

    features: tuple[str, ...] = ()
    _mean: np.ndarray | None = None
    _std: np.ndarray | None = None

    def _fit_inputs(self, train: Batch) -> np.ndarray:
        """Learn the statistics from ``train``; returns its raw concatenated features."""
        x = np.concatenate([train.get(f) for f in self.features], axis=1)
        self._mean, self._std = x.mean(axis=0), x.std(axis=0) + 1e-6
        return x

    def _inputs(self, batch: Batch):
        """Standardised float32 tensor ``[N, D]`` of ``batch``'s features."""
        import torch

        if self._mean is None or self._std is None:
            raise RuntimeError(f"{type(self).__name__}: fit() must run before scoring")
        x = np.concatenate([batch.get(f) for f in self.features], axis=1)
        return torch.from_numpy(((x - self._mean) / self._std).astype(np.float32))


class ScheduledTraining:
    """Mixin of heads trained by :func:`harken.train.fit` with ``self.train_config``: replays a
    first stage's schedule (:meth:`Method.replay`) and reports the optimiser settings."""

    def replay(self, log: dict) -> None:
        """Train ``log["best_epoch"]`` epochs with the logged learning-rate drops."""
        self.train_config = self.train_config.replay(log)

    def train_settings(self) -> dict:
        """The optimiser settings of ``config()``."""
        c = self.train_config
        return {
            "epochs": c.epochs,
            "lr": c.lr,
            "batch_size": c.batch_size,
            "weight_decay": c.weight_decay,
            "betas": list(c.betas),
            "plateau_patience": c.plateau_patience,
        }
