"""The bilinear zero-shot baselines the audio-visual GZSL papers compare against.

All three score a clip ``x`` (audio and visual features concatenated, as KDA §4.1 runs them)
against a class ``c`` with knowledge embedding ``φ(c)`` by the bilinear compatibility

    F(x, c) = θ(x)ᵀ W φ(c)

— the same model as :mod:`harken.methods.linear` — and differ only in the loss:

* ``devise`` (Frome et al. 2013, Eq. 1): hinge rank loss
  ``Σ_{c≠y} max(0, Δ − F(x, y) + F(x, c))`` with margin ``Δ = 0.1``;
* ``ale`` (Akata et al. 2016, Eq. 7): the rank-weighted (WARP) hinge loss of
  :func:`harken.methods.linear.ranking_hinge_loss`, ``Δ = 1`` (the 0/1 loss);
* ``sje`` (Akata et al. 2015, Eq. 4): structured hinge on the most violating class,
  ``max(0, max_{c≠y} (Δ + F(x, c)) − F(x, y))``, ``Δ = 1``.

Training, standardisation (training clips only), epoch selection on dev clips by the protocol's
criterion and replay of the schedule are :class:`~harken.methods.linear.LinearProjection`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harken.methods.base import METHODS
from harken.methods.linear import LOSSES, LinearProjection


def devise_loss(scores: torch.Tensor, y: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Mean DeViSE hinge rank loss ``Σ_{c≠y} max(0, Δ − F(x, y) + F(x, c))`` over a batch."""
    true = scores.gather(1, y[:, None])
    violations = (margin - true + scores).clamp(min=0).scatter(1, y[:, None], 0.0)
    return violations.sum(dim=1).mean()


def sje_loss(scores: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean SJE structured hinge ``max(0, max_{c≠y}(Δ + F(x, c)) − F(x, y))`` over a batch."""
    true = scores.gather(1, y[:, None]).squeeze(1)
    others = scores.scatter(1, y[:, None], float("-inf"))
    return (margin + others.max(dim=1).values - true).clamp(min=0).mean()


@LOSSES.register("devise")
def _devise(**_) -> Callable:
    return devise_loss


@LOSSES.register("sje")
def _sje(**_) -> Callable:
    return sje_loss


#: method name → (loss, margin Δ)
BASELINES = {"devise": ("devise", 0.1), "ale": ("ranking", 1.0), "sje": ("sje", 1.0)}


def _register(name: str, loss: str, margin: float) -> None:
    @METHODS.register(name, fixed=("loss",))
    def _make(**kwargs) -> LinearProjection:
        kwargs.setdefault("margin", margin)
        method = LinearProjection(loss=loss, **kwargs)
        method.name = name
        return method


for _name, (_loss, _margin) in BASELINES.items():
    _register(_name, _loss, _margin)
