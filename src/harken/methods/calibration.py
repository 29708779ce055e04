"""Temperature scaling: calibrated class probabilities from a scorer's compatibilities.

Guo et al., "On Calibration of Modern Neural Networks" (ICML 2017, §4.2): one scalar
temperature ``T > 0`` turns scores ``s_i`` over the candidates into probabilities
``p_i = softmax(s_i / T)``, with ``T`` chosen to minimise the negative log-likelihood (NLL) of
held-out labels. ``T`` divides every score of a clip by the same positive number, so it never
changes a ranking: no accuracy figure (UA, WA, top-k) can move through it.

harken fits ``T`` once, offline, for its default ``bridge`` joint space and ships the result as
``calibration_data/bridge.json`` (the space configuration it was fitted for, the data, the date
and NLL/ECE before and after); ``benchmarks/calibrate_bridge.py`` refits it. The scorer's
``logit_scale`` is then ``1/T`` for exactly that configuration (:func:`fitted_logit_scale`) and
None for any other, whose scores stay compatibilities.

The shipped fit (``T ≈ 0.0052``) lowers Kitchen20's NLL from 2.22 to 1.90 and its ECE from 0.25
to 0.08 (also per held-out fold); out of sample, on av-mini's 36 clips × 32 labels, NLL moves
only from 3.44 to 3.42 and ECE from 0.36 to 0.34 — the probabilities are more honest than a
softmax of raw scores but over-confident on vocabularies whose labels match AudioSet closely.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from harken.errors import ConfigError

DATA = Path(__file__).resolve().parent / "calibration_data"
#: The packaged temperature of the default bridge space.
BRIDGE_CALIBRATION = DATA / "bridge.json"


def _masked(scores: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ConfigError(f"scores must be [N, C], not shape {s.shape}")
    m = np.ones_like(s, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != s.shape:
        raise ConfigError(f"mask shape {m.shape} differs from scores shape {s.shape}")
    return s, m


def _check_targets(targets, s: np.ndarray, m: np.ndarray) -> np.ndarray:
    y = np.asarray(targets, dtype=np.int64)
    if y.shape != (s.shape[0],):
        raise ConfigError(f"targets must be [N] = [{s.shape[0]}], not shape {y.shape}")
    if ((y < 0) | (y >= s.shape[1])).any() or not m[np.arange(len(y)), y].all():
        raise ConfigError("each target must index one of its row's candidates (mask True)")
    return y


def softmax_probabilities(
    scores: np.ndarray, logit_scale: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """``p_ic = exp(β s_ic) / Σ_{c' ∈ cand(i)} exp(β s_ic')`` with ``β = 1/T`` (0 off-mask).

    Args:
        scores: ``[N, C]`` compatibilities.
        logit_scale: ``β = 1/T``.
        mask: ``[N, C]`` True where ``c`` is one of row ``i``'s candidates (default: all).

    Returns:
        float64 ``[N, C]`` rows summing to 1 over their candidates.
    """
    s, m = _masked(scores, mask)
    z = np.where(m, logit_scale * s, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.where(m, np.exp(z), 0.0)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(
    scores: np.ndarray, targets, logit_scale: float, mask: np.ndarray | None = None
) -> float:
    """Mean NLL ``−1/N Σ_i log p_{i,y_i}`` of :func:`softmax_probabilities` (natural log)."""
    s, m = _masked(scores, mask)
    y = _check_targets(targets, s, m)
    p = softmax_probabilities(s, logit_scale, m)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-300))))


def fit_temperature(
    scores: np.ndarray,
    targets,
    mask: np.ndarray | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> float:
    """The temperature ``T`` minimising the mean NLL of ``softmax(s_i / T)`` (Guo et al. §4.2).

    With ``β = 1/T`` the NLL ``L(β) = 1/N Σ_i [log Σ_{c ∈ cand(i)} exp(β s_ic) − β s_{i,y_i}]``
    is convex in ``β`` (a log-sum-exp of functions linear in ``β`` minus a linear term), with
    ``L'(β) = 1/N Σ_i (E_{p_i}[s_i] − s_{i,y_i})`` and ``L''(β) = 1/N Σ_i Var_{p_i}[s_i] ≥ 0``;
    it is minimised by safeguarded Newton steps on ``β > 0``.

    Args:
        scores: ``[N, C]`` compatibilities (higher = more likely).
        targets: ``[N]`` index of each row's true candidate.
        mask: ``[N, C]`` True where ``c`` is a candidate of row ``i`` (rows may offer different
            candidate sets; default: all).
        max_iter: Newton steps at most.
        tol: Stop when a step changes ``β`` by less than ``tol · β``.

    Returns:
        ``T`` (a positive float).

    Raises:
        ConfigError: bad shapes or targets, or scores that carry no ranking information (the
            NLL then has no finite minimum: e.g. every true candidate already scores highest by
            any margin, or all scores are equal).
    """
    s, m = _masked(scores, mask)
    y = _check_targets(targets, s, m)
    rows = np.arange(len(y))
    others = np.where(m, s, -np.inf)
    others[rows, y] = -np.inf
    if (s[rows, y] > others.max(axis=1)).all():
        raise ConfigError("the NLL keeps falling as T → 0 (the scores separate perfectly)")

    def moments(beta: float) -> tuple[float, float, float]:
        p = softmax_probabilities(s, beta, m)
        mean = (p * np.where(m, s, 0.0)).sum(axis=1)
        var = (p * np.where(m, (s - mean[:, None]) ** 2, 0.0)).sum(axis=1)
        nll = -np.log(np.maximum(p[rows, y], 1e-300)).mean()
        return float(nll), float((mean - s[rows, y]).mean()), float(var.mean())

    beta = 1.0
    for _ in range(max_iter):
        nll, grad, hess = moments(beta)
        if hess <= 1e-15:
            raise ConfigError("the scores do not vary over the candidates: no temperature fits")
        step = grad / hess
        new = beta - step
        if new <= 0:  # stay positive: halve towards 0 instead of crossing it
            new = beta / 2
        while moments(new)[0] > nll + 1e-12 and abs(new - beta) > tol * beta:
            new = (new + beta) / 2  # backtrack: Newton on a convex function may overshoot
        if abs(new - beta) <= tol * beta:
            beta = new
            break
        beta = new
    if not np.isfinite(beta) or beta > 1e8:
        raise ConfigError("the NLL keeps falling as T → 0 (the scores separate perfectly)")
    return 1.0 / beta


def expected_calibration_error(probs: np.ndarray, targets, n_bins: int = 15) -> float:
    """ECE of top-1 confidences (Naeini et al. 2015; Guo et al. 2017, Eq. 3).

    ``ECE = Σ_{b=1}^{M} |B_b|/N · |acc(B_b) − conf(B_b)|`` where clip ``i`` with confidence
    ``ĉ_i = max_c p_ic`` falls in bin ``B_b`` when ``ĉ_i ∈ ((b−1)/M, b/M]`` (``M = n_bins``
    equal-width bins), ``acc(B_b)`` is the fraction of its clips whose arg-max is the target and
    ``conf(B_b)`` their mean confidence.

    Args:
        probs: ``[N, C]`` probabilities (0 for non-candidates).
        targets: ``[N]`` true class indices.
        n_bins: ``M``.

    Returns:
        ECE in [0, 1].
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(targets, dtype=np.int64)
    if p.ndim != 2 or y.shape != (p.shape[0],) or n_bins < 1:
        raise ConfigError(f"probs [N, C] and targets [N] expected, got {p.shape} and {y.shape}")
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    bins = np.clip(np.ceil(conf * n_bins).astype(int), 1, n_bins)
    ece = 0.0
    for b in np.unique(bins):
        inside = bins == b
        ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(ece)


@lru_cache(maxsize=4)
def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the packaged calibration ({exc}); reinstall harken or rerun "
            "benchmarks/calibrate_bridge.py"
        ) from exc


def fitted_logit_scale(space_key: dict, path: Path = BRIDGE_CALIBRATION) -> float | None:
    """``1/T`` of the calibration fitted for exactly ``space_key``, else None.

    Args:
        space_key: The joint space's configuration without ``logit_scale``
            (:meth:`harken.methods.joint.BridgeSpace.calibration_key`).
        path: The calibration JSON (default: the packaged bridge calibration).
    """
    if not path.exists():
        return None
    fitted = _load(path)
    if json.dumps(fitted["space"], sort_keys=True) != json.dumps(space_key, sort_keys=True):
        return None
    return 1.0 / float(fitted["temperature"])
