"""``linear``: the acoustic-semantic projection of Gebhard et al. (2024) §3.1.

One linear layer ``W`` maps an audio embedding ``θ(x)`` into the class-embedding space and a
class ``c`` with knowledge embedding ``φ(c)`` scores by the dot product

    F(x, c) = θ(x)ᵀ W φ(c)                                 (Akata et al. 2016 Eq. 1; Xie & Virtanen)

trained with the rank-weighted ranking hinge loss of Akata et al. (2016, Eq. 7; Weston's WARP)
that Xie & Virtanen (2021) and Gebhard et al. use:

    ℓ(x, y) = Σ_{c≠y} (β_{r}/r) · max(0, Δ + F(x, c) − F(x, y)),
    r = |{c ≠ y : Δ + F(x, c) − F(x, y) > 0}|,   β_r = Σ_{i=1}^{r} 1/i

so the loss is 0 when the true class beats every other by the margin ``Δ`` and its total weight
``β_r`` grows with the number of classes ranked above (or within the margin of) the true class.
(The published code weights it the other way round; harken follows the paper and Akata et al.)
Softmax cross-entropy over ``F`` is available as ``loss="ce"``.

Inputs are standardised with the mean/std of the *training* clips only. Defaults are the paper's:
Adam, lr 1e-4, batch 16, 30 epochs, the epoch with the best dev-class UA.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from harken.methods.base import (
    METHODS,
    Batch,
    Classes,
    Method,
    ScheduledTraining,
    StandardizedInputs,
)
from harken.registry import Registry
from harken.train import TrainConfig, fit, seeded

LOSSES: Registry = Registry("loss")


@LOSSES.register("ranking")
def _ranking(**_) -> Callable:
    return ranking_hinge_loss


@LOSSES.register("ce")
def _ce(**_) -> Callable:
    return lambda scores, y, margin=1.0: torch.nn.functional.cross_entropy(scores, y)


def rank_weights(r: torch.Tensor) -> torch.Tensor:
    """``β_r / r`` with ``β_r = Σ_{i≤r} 1/i`` (0 where ``r = 0``)."""
    max_r = int(r.max().item()) if r.numel() else 0
    harmonic = torch.cumsum(1.0 / torch.arange(1, max_r + 2, dtype=torch.float32), 0)
    beta = torch.cat([torch.zeros(1), harmonic])[r.long()]
    return torch.where(r > 0, beta / r.clamp(min=1).float(), torch.zeros_like(beta))


def ranking_hinge_loss(scores: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean rank-weighted hinge loss (see the module docstring) over a batch.

    Args:
        scores: ``[B, C]`` compatibilities ``F(x, c)``.
        y: ``[B]`` true class indices.
        margin: ``Δ``.
    """
    true = scores.gather(1, y[:, None])
    violations = (margin + scores - true).clamp(min=0)
    violations = violations.scatter(1, y[:, None], 0.0)
    r = (violations > 0).sum(dim=1)
    weight = rank_weights(r).detach()
    return (weight * violations.sum(dim=1)).mean()


class LinearProjection(StandardizedInputs, ScheduledTraining, Method):
    """Gebhard et al. (2024) linear projection + dot-product compatibility.

    Args:
        features: Audio feature names to concatenate as ``θ(x)`` (default ``("aisfx",)``).
        loss: ``"ranking"`` (paper) or ``"ce"``.
        margin: ``Δ`` of the ranking loss.
        epochs, lr, batch_size, weight_decay: optimiser settings (paper defaults).
    """

    name = "linear"
    trainable = True

    def __init__(
        self,
        features: tuple[str, ...] | list[str] = ("aisfx",),
        loss: str = "ranking",
        margin: float = 1.0,
        epochs: int = 30,
        lr: float = 1e-4,
        batch_size: int = 16,
        weight_decay: float = 0.0,
    ) -> None:
        self.features = tuple(features)
        self.loss_name = loss
        self.loss = LOSSES.create(loss)
        self.margin = margin
        self.train_config = TrainConfig(epochs, lr, batch_size, weight_decay)
        self.model: torch.nn.Linear | None = None

    def fit(self, train, train_classes, dev, dev_classes, seed: int = 0) -> dict:
        x = self._fit_inputs(train)
        index = {n: i for i, n in enumerate(train_classes.names)}
        y = torch.tensor([index[label] for label in train.labels])
        emb = torch.from_numpy(train_classes.embeddings.astype(np.float32))
        with seeded(seed):  # initial weights; the caller's random state is kept
            self.model = torch.nn.Linear(x.shape[1], emb.shape[1], bias=False)

        def loss_fn(model, xb, yb):
            return self.loss(model(xb) @ emb.T, yb, self.margin)

        evaluate = None
        if dev is not None and dev_classes is not None:
            x_dev = self._inputs(dev)

            def evaluate(model):
                scores = (
                    model(x_dev) @ torch.from_numpy(dev_classes.embeddings.astype(np.float32)).T
                ).numpy()
                return self.dev_score(scores, dev.labels, dev_classes.names)

        log = fit(self.model, loss_fn, self._inputs(train), y, self.train_config, seed, evaluate)
        return {
            "best_epoch": log["best_epoch"],
            "dev_score": log["best_dev"],
            "lr_drops": log["lr_drops"],
        }

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("linear: fit() must run before score()")
        with torch.no_grad():
            proj = self.model(self._inputs(batch))
            return (proj @ torch.from_numpy(classes.embeddings.astype(np.float32)).T).numpy()

    def config(self) -> dict:
        return {
            "features": list(self.features),
            "loss": self.loss_name,
            "margin": self.margin,
            **self.train_settings(),
        }

    def state(self) -> dict:
        """Everything needed to score again (saved with ``--save-model``)."""
        return {"weight": self.model.weight.detach().numpy(), "mean": self._mean, "std": self._std}


@METHODS.register("linear")
def _make_linear(**kwargs) -> LinearProjection:
    return LinearProjection(**kwargs)
