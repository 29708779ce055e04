"""ConSE: zero-shot scoring through a tagger's label space (Norouzi et al., ICLR 2014).

"Convex combination of semantic embeddings": a clip's top-``T`` posteriors over the tagger's
labels (YAMNet's 521 AudioSet classes) weight the semantic embeddings ``s(y_t)`` of those labels,

    f(x) = 1/Z Σ_{t=1}^{T} p(y_t | x) · s(y_t),   Z = Σ_{t=1}^{T} p(y_t | x)        (Norouzi Eq. 1)

and a candidate class ``c`` with knowledge embedding ``e_c`` scores ``cos(f(x), e_c)``. With
L2-normalised ``e_c`` this ranks classes like ``Σ_t p_t · φ(s_t · e_c)`` with ``φ`` the identity;
harken exposes ``φ(s) = max(s − δ, 0)^γ`` (``sim_threshold`` δ, ``sim_power`` γ) so that the
weak similarities of unrelated labels (e.g. "Inside, small room") stop adding noise; ``δ=−1,
γ=1`` (no clipping, since cosines are ≥ −1) is the original ConSE and the default here.
Needs no seen classes, so it also powers ``harken predict``.
"""

from __future__ import annotations

import numpy as np

from harken.methods.base import METHODS, Batch, Classes, Method


def conse_scores(
    posteriors: np.ndarray,
    label_embeddings: np.ndarray,
    class_embeddings: np.ndarray,
    *,
    top_t: int = 10,
    sim_threshold: float = 0.0,
    sim_power: float = 1.0,
) -> np.ndarray:
    """ConSE compatibility ``[N, C]``.

    ``score(x, c) = Σ_{t ∈ top_T(x)} p_t(x) · φ(cos(s_t, e_c)) / Σ_{t ∈ top_T(x)} p_t(x)``
    with ``φ(s) = max(s − δ, 0)^γ``.

    Args:
        posteriors: ``[N, K]`` tagger scores per clip.
        label_embeddings: ``[K, D]`` text embeddings of the tagger's labels.
        class_embeddings: ``[C, D]`` knowledge embeddings of the candidate classes.
        top_t: Number of top tagger labels per clip (``T``).
        sim_threshold: ``δ``.
        sim_power: ``γ``.
    """
    weights = top_t_weights(posteriors, top_t)
    phi = label_affinity(label_embeddings, class_embeddings, sim_threshold, sim_power)
    return (weights @ phi).astype(np.float32)


def top_t_weights(posteriors: np.ndarray, top_t: int) -> np.ndarray:
    """``[N, K]``: each clip's top-``T`` posteriors divided by their sum, zero elsewhere."""
    p = np.asarray(posteriors, dtype=np.float64)
    t = min(max(1, top_t), p.shape[1])
    top = np.argpartition(-p, t - 1, axis=1)[:, :t]
    out = np.zeros_like(p)
    np.put_along_axis(out, top, np.take_along_axis(p, top, axis=1), axis=1)
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def label_affinity(
    label_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    sim_threshold: float,
    sim_power: float,
) -> np.ndarray:
    """``[K, C]``: ``φ(cos(s_k, e_c)) = max(cos − δ, 0)^γ`` of tagger labels and texts."""
    sims = l2_normalize(label_embeddings) @ l2_normalize(text_embeddings).T
    return np.maximum(sims - sim_threshold, 0.0) ** sim_power


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), float64."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class ConSE(Method):
    """Training-free ConSE over a tagger's label space.

    Args:
        label_space: The tagger's labels with their text embeddings (same text encoder as the
            class knowledge).
        tagger: Feature name holding the tagger's posteriors (default ``"yamnet"``).
        top_t: ``T`` (Norouzi et al. use T=10).
        sim_threshold: ``δ`` (−1 = original ConSE).
        sim_power: ``γ`` (1 = original ConSE).
    """

    name = "conse"
    uses_label_space = True
    #: Scores are cosine similarities weighted by posteriors (a scale of ~0.1–1), so
    #: calibrated stacking searches 0–1 in steps of 0.005 instead of ClipClap's 0–5 grid.
    calibration_grid = tuple(np.linspace(0.0, 1.0, 201).round(6).tolist())

    def __init__(
        self,
        label_space: Classes | None = None,
        tagger: str = "yamnet",
        top_t: int = 10,
        sim_threshold: float = -1.0,
        sim_power: float = 1.0,
    ) -> None:
        self.label_space = label_space
        self.tagger = tagger
        self.features = (tagger,)
        self.top_t = top_t
        self.sim_threshold = sim_threshold
        self.sim_power = sim_power

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        if self.label_space is None:
            raise ValueError(f"{self.name}: construct it with the tagger's label_space")
        return conse_scores(
            batch.get(self.tagger),
            self.label_space.embeddings,
            classes.embeddings,
            top_t=self.top_t,
            sim_threshold=self.sim_threshold,
            sim_power=self.sim_power,
        )

    def config(self) -> dict:
        return {
            "tagger": self.tagger,
            "top_t": self.top_t,
            "sim_threshold": self.sim_threshold,
            "sim_power": self.sim_power,
        }


@METHODS.register("conse")
def _make_conse(**kwargs) -> ConSE:
    return ConSE(**kwargs)
