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
    sims = _unit(label_embeddings) @ _unit(class_embeddings).T  # [K, C]
    phi = np.maximum(sims - sim_threshold, 0.0) ** sim_power
    k = posteriors.shape[1]
    t = min(max(1, top_t), k)
    top = np.argpartition(-posteriors, t - 1, axis=1)[:, :t]
    weights = np.take_along_axis(posteriors, top, axis=1)  # [N, T]
    scores = np.einsum("nt,ntc->nc", weights, phi[top])
    return (scores / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


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
