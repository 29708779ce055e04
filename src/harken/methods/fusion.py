"""``fusion``: harken's generalised zero-shot scorer — the label bridge plus a seen-class expert.

GZSL asks one model to recognise *seen* classes, which it has labelled clips of, and *unseen*
ones, which it knows only from text. The zero-shot :class:`~harken.methods.bridge.Bridge`
scores every class from the tagger's posteriors and the class knowledge, but ignores the
labelled clips; a supervised classifier is strong on seen classes and blind to unseen ones.
``fusion`` adds the two:

    F(x, c) = z(x, c) + w · 1[c ∈ S] · p(c | x)

where ``z`` is the bridge score (its ``(T, δ, γ)`` and knowledge source chosen on non-test
classes as usual), ``p(c | x)`` a multinomial logistic regression over the seen classes on
standardised audio features (statistics from training clips only) and ``w`` a weight chosen
on dev/validation clips by the protocol's criterion (the GZSL protocol: validation HM after
calibrated stacking, which then trades the seen-class boost off against the unseen classes).
A retraining stage (:meth:`replay`) reuses ``w``.
"""

from __future__ import annotations

import numpy as np

from harken.methods.base import METHODS, Batch, Classes, Method
from harken.methods.bridge import Bridge

DEFAULT_WEIGHTS = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0)


class Fusion(Method):
    """Bridge zero-shot scores plus ``w`` × seen-class logistic-regression probabilities.

    Args:
        label_space: The tagger's labels and their text embeddings (as for ``bridge``).
        tagger: Feature name of the tagger's posteriors.
        features: Audio features of the seen-class classifier (concatenated).
        weights: Candidate ``w`` values searched on dev/validation clips.
        c: Inverse L2 regularisation strength of the logistic regression.
        bridge: Options of the inner :class:`Bridge`.
    """

    name = "fusion"
    trainable = True
    uses_label_space = True
    calibration_grid = Bridge.calibration_grid

    def __init__(
        self,
        label_space: Classes | None = None,
        tagger: str = "yamnet",
        features: tuple[str, ...] | list[str] = ("aisfx", "yamnet"),
        weights: tuple[float, ...] | list[float] = DEFAULT_WEIGHTS,
        c: float = 1.0,
        bridge: dict | None = None,
    ) -> None:
        self.bridge = Bridge(label_space, tagger, **(bridge or {}))
        self.tagger = tagger
        self.expert_features = tuple(features)
        self.features = tuple(dict.fromkeys((tagger, *self.expert_features)))
        self.weights = tuple(weights)
        self.c = c
        self.weight: float | None = None
        self._replayed: float | None = None
        self._clf = None
        self._seen: list[str] = []
        self._mean = self._std = None

    def _x(self, batch: Batch) -> np.ndarray:
        x = np.concatenate([batch.get(f) for f in self.expert_features], axis=1)
        return (x - self._mean) / self._std

    def _expert(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]``: ``p(c | x)`` for the seen classes among ``classes``, 0 elsewhere."""
        out = np.zeros((len(batch), len(classes.names)))
        proba = self._clf.predict_proba(self._x(batch))
        col = {n: i for i, n in enumerate(classes.names)}
        for j, name in enumerate(self._clf.classes_):
            if name in col:
                out[:, col[name]] = proba[:, j]
        return out

    def fit(self, train, train_classes, dev, dev_classes, seed: int = 0) -> dict:
        from sklearn.linear_model import LogisticRegression

        self.bridge.n_candidates = self.n_candidates
        log = {"bridge": self.bridge.fit(train, train_classes, dev, dev_classes, seed)}
        x = np.concatenate([train.get(f) for f in self.expert_features], axis=1)
        self._mean, self._std = x.mean(axis=0), x.std(axis=0) + 1e-6
        self._clf = LogisticRegression(C=self.c, max_iter=2000, random_state=seed)
        self._clf.fit(self._x(train), np.asarray(train.labels, dtype=object))
        if self._replayed is not None:
            self.weight = self._replayed
            return {**log, "weight": self.weight, "selected_on": "replayed"}
        if dev is None or dev_classes is None:
            self.weight = 1.0
            return {**log, "weight": self.weight, "selected_on": "default (no dev clips)"}
        z = self.bridge.score(dev, dev_classes)
        p = self._expert(dev, dev_classes)
        curve = [self.dev_score(z + w * p, dev.labels, dev_classes.names) for w in self.weights]
        best = int(np.argmax(curve))
        self.weight = self.weights[best]
        return {**log, "weight": self.weight, "dev_score": curve[best], "weight_curve": curve}

    def replay(self, log: dict) -> None:
        self._replayed = float(log["weight"])

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        if self._clf is None or self.weight is None:
            raise RuntimeError("fusion: fit() must run before score()")
        return self.bridge.score(batch, classes) + self.weight * self._expert(batch, classes)

    def config(self) -> dict:
        return {
            "bridge": self.bridge.config(),
            "features": list(self.expert_features),
            "weights": list(self.weights),
            "c": self.c,
        }


@METHODS.register("fusion")
def _make_fusion(**kwargs) -> Fusion:
    return Fusion(**kwargs)
