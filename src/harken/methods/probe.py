"""A linear probe on frozen embeddings (Chen et al. 2024, §6.3, Table 4 "L").

"In the linear-probe setup, we freeze the model weights and only train the last classification
layer, which evaluates the quality of the pre-trained representations." Here that layer is a
multinomial logistic regression on the standardised embeddings,

    p(c | x) = softmax_c(W z + b),   z = (x − μ) / σ,

fitted by L-BFGS to minimise ``½‖W‖² + C Σ_i −log p(y_i | x_i)`` (scikit-learn's
``LogisticRegression``; the bias is not penalised). ``μ, σ`` are the per-dimension mean and
standard deviation of the clips the model is fitted on (a constant dimension keeps ``σ = 1``).

The inverse regularisation ``C`` is the only setting, chosen on the **validation** split: each
``C`` of the grid is fitted on the training clips and scored on the validation clips; the best
validation Top-1 wins, ties go to the higher mean class accuracy, then to the smaller ``C``
(stronger regularisation). The test split is never seen by :meth:`LinearProbe.fit`. The chosen
``C`` is then refitted on train + validation (``refit_on_train_val=True``) or kept as fitted on
train only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from harken.errors import ConfigError, DataError
from harken.metrics.probe import probe_report

DEFAULT_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def choose_c(results: Sequence[dict]) -> float:
    """The ``C`` of the best validation result: highest ``top1``, then ``mca``, then smaller
    ``C``. ``results``: ``[{"C", "top1", "mca", ...}]``."""
    if not results:
        raise ConfigError("no validation results to choose C from")
    best = max(results, key=lambda r: (r["top1"], r["mca"], -r["C"]))
    return float(best["C"])


class LinearProbe:
    """Standardisation + multinomial logistic regression, ``C`` chosen on validation.

    Usage::

        probe = LinearProbe()
        log = probe.fit(x_train, y_train, x_val, y_val)   # log["C"]: the chosen C
        p = probe.scores(x_test)                            # [N, len(probe.classes_)]
        probe_report(p, y_test, probe.classes_)

    Labels are any sortable hashables (names or ids); ``classes_`` is the sorted set of
    training labels. Every validation label must occur in training (a class the probe cannot
    output would make the choice of ``C`` meaningless); a test label outside ``classes_`` is
    refused by :func:`~harken.metrics.probe.probe_report`.

    Args:
        grid: The candidate ``C`` values.
        seed: ``random_state`` of the regression (L-BFGS is deterministic; kept for the record).
        refit_on_train_val: Refit the chosen ``C`` on train + validation.
        max_iter: L-BFGS iterations per fit; non-converged fits are flagged in the log.
        threads: BLAS/OpenMP threads during fitting and scoring (``None``: the library
            default). 1 by default: probe-sized fits gain little from more, and on a busy 2-core
            machine they ran 20× slower with 2 BLAS threads (one thread also fixes the
            floating-point summation order).
    """

    def __init__(
        self,
        grid: Sequence[float] = DEFAULT_GRID,
        seed: int = 0,
        refit_on_train_val: bool = True,
        max_iter: int = 2000,
        threads: int | None = 1,
    ):
        grid = [float(c) for c in grid]
        if not grid or any(not np.isfinite(c) or c <= 0 for c in grid):
            raise ConfigError(f"grid must be a non-empty list of positive C values, got {grid}")
        if len(set(grid)) != len(grid):
            raise ConfigError(f"grid has repeated C values: {grid}")
        self.grid = grid
        self.seed = int(seed)
        self.refit_on_train_val = bool(refit_on_train_val)
        self.max_iter = int(max_iter)
        self.threads = threads
        self.classes_: list | None = None
        self.C_: float | None = None
        self._model = None
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None

    # -- fitting -------------------------------------------------------------------------------

    def _threads(self):
        """Context limiting BLAS/OpenMP threads to :attr:`threads` (threadpoolctl comes with
        scikit-learn)."""
        from threadpoolctl import threadpool_limits

        return threadpool_limits(self.threads)

    @staticmethod
    def _check(x, y, split: str) -> tuple[np.ndarray, list]:
        x = np.asarray(x, dtype=np.float64)
        y = list(y.tolist() if isinstance(y, np.ndarray) else y)
        if x.ndim != 2 or x.shape[0] != len(y) or x.shape[0] == 0:
            raise DataError(
                f"{split}: embeddings {x.shape} must be a non-empty [N, D] matrix with one row "
                f"per label ({len(y)} labels)"
            )
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad.size:
            raise DataError(f"{split}: embedding row {int(bad[0])} is not finite")
        return x, y

    def _fit_one(self, x: np.ndarray, y: list, c: float):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        model = LogisticRegression(
            C=c, solver="lbfgs", max_iter=self.max_iter, random_state=self.seed
        )
        with warnings.catch_warnings(record=True) as caught, self._threads():
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit((x - mean) / std, y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return model, mean, std, converged

    def fit(self, x_train, y_train, x_val, y_val) -> dict:
        """Choose ``C`` on ``(x_val, y_val)`` and fit the probe.

        Returns:
            ``{"C": chosen, "grid": [{"C", "top1", "mca", "converged"}, ...] (validation
            scores of the fits on train), "refit_on": "train+val" | "train", "n_train",
            "n_val", "classes", "converged"}`` (JSON-able).

        Raises:
            DataError: shapes disagree, non-finite embeddings, fewer than two training classes,
                or a validation label not among the training labels.
        """
        xt, yt = self._check(x_train, y_train, "train")
        xv, yv = self._check(x_val, y_val, "val")
        if xv.shape[1] != xt.shape[1]:
            raise DataError(f"train has dim {xt.shape[1]} but val has dim {xv.shape[1]}")
        classes = sorted(set(yt))
        if len(classes) < 2:
            raise DataError(f"the training split has {len(classes)} class; a probe needs two+")
        known = set(classes)
        unseen = [(i, label) for i, label in enumerate(yv) if label not in known]
        if unseen:
            i, label = unseen[0]
            raise DataError(
                f"val row {i}: label {label!r} does not occur in training ({len(unseen)} val "
                "rows in all); drop those rows or move examples of the class into training"
            )
        results = []
        for c in self.grid:
            model, mean, std, converged = self._fit_one(xt, yt, c)
            with self._threads():
                p = model.predict_proba((xv - mean) / std)
            r = _top1_mca(p, yv, list(model.classes_))
            results.append({"C": c, **r, "converged": converged})
        self.C_ = choose_c(results)
        if self.refit_on_train_val:
            x, y = np.concatenate([xt, xv]), yt + yv
        else:
            x, y = xt, yt
        self._model, self._mean, self._std, converged = self._fit_one(x, y, self.C_)
        self.classes_ = [c.item() if isinstance(c, np.generic) else c for c in self._model.classes_]
        return {
            "C": self.C_,
            "grid": results,
            "refit_on": "train+val" if self.refit_on_train_val else "train",
            "n_train": len(yt),
            "n_val": len(yv),
            "classes": list(self.classes_),
            "converged": converged,
        }

    # -- scoring -------------------------------------------------------------------------------

    def scores(self, x) -> np.ndarray:
        """Class probabilities ``[N, len(classes_)]``, columns in :attr:`classes_` order."""
        if self._model is None:
            raise ConfigError("LinearProbe: fit() must run before scores()")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._mean.shape[0]:
            raise DataError(
                f"embeddings {x.shape} must be [N, {self._mean.shape[0]}] like the training ones"
            )
        with self._threads():
            return self._model.predict_proba((x - self._mean) / self._std)


def _top1_mca(p: np.ndarray, y: list, classes: list) -> dict:
    """Validation Top-1 and mean class accuracy (the selection criteria)."""
    r = probe_report(p, y, classes) if len(set(y)) > 1 else None
    if r is not None:
        return {"top1": r["top1"], "mca": r["mca"]}
    hit = float(np.mean(np.asarray(classes, dtype=object)[p.argmax(axis=1)] == y[0]))
    return {"top1": hit, "mca": hit}  # one validation class: its recall is the accuracy
