"""``contrastive``: CLAP-style projection heads trained contrastively on frozen embeddings.

MS-CLAP (Elizalde et al., 2023, §2.1): frozen encoder outputs ``X̂_a`` (audio) and ``X̂_t``
(text) are brought into a joint space of dimension ``d`` by learnable projections (Eq. 2)

    E_a = L_a(X̂_a),   E_t = L_t(X̂_t)

compared with a learnable temperature ``τ`` (Eq. 3) and trained with the symmetric cross-entropy
over the batch similarity matrix (Eq. 4):

    C = τ (E_t · E_aᵀ),   L = 0.5 (ℓ_text(C) + ℓ_audio(C)),
    ℓ_k = −(1/N) Σ_i log diag(softmax_k(C))_i

(the paper prints ``ℓ`` without the minus sign; minimising the cross-entropy needs it). As in the
MS-CLAP code, ``E_a``/``E_t`` are L2-normalised, ``τ = exp(t)`` with ``t`` learnt from
``log(1/0.07)`` and clipped at 100, and each projection is ``LayerNorm(h + Dropout(W₂ GELU(h)))``
with ``h = W₁ x``.

Pairs here are (clip, text of its class): the class knowledge embedding of the clip's label.
Two clips of one class in a batch are both correct matches for that text, so the target row of a
text spreads uniformly over all clips of its class (and vice versa) — with distinct classes in a
batch this is exactly Eq. 4. After training on seen classes (best epoch by dev-class UA), unseen
classes score ``τ · cos(E_a(x), E_t(e_c))`` — zero-shot classification and retrieval as in §2.3.
Audio inputs are standardised with training-clip statistics only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from harken.methods.base import (
    METHODS,
    Batch,
    Classes,
    Method,
    ScheduledTraining,
    StandardizedInputs,
)
from harken.train import TrainConfig, fit, seeded

MAX_LOGIT_SCALE = 100.0


def clip_loss(
    e_audio: torch.Tensor,
    e_text: torch.Tensor,
    logit_scale: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric contrastive loss of MS-CLAP Eq. 3–4 over one batch.

    Args:
        e_audio: ``[N, d]`` audio embeddings (already normalised if cosine is wanted).
        e_text: ``[N, d]`` text embeddings of the same pairs, row ``i`` ↔ row ``i``.
        logit_scale: ``τ`` (a scalar tensor).
        labels: Optional ``[N]`` class ids: pairs sharing a class are all positives (uniform
            target over them); None = only the diagonal (Eq. 4 as printed).

    Returns:
        ``0.5 (ℓ_text + ℓ_audio)`` with ``ℓ = −(1/N) Σ_i Σ_j T_ij log softmax(C)_ij``.
    """
    c = logit_scale * e_text @ e_audio.T  # [N_text, N_audio]
    n = c.shape[0]
    if labels is None:
        target = torch.eye(n, dtype=c.dtype)
    else:
        same = (labels[:, None] == labels[None, :]).to(c.dtype)
        target = same / same.sum(dim=1, keepdim=True)
    l_text = -(target * F.log_softmax(c, dim=1)).sum(dim=1).mean()
    l_audio = -(target.T * F.log_softmax(c.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (l_text + l_audio)


class Projection(torch.nn.Module):
    """MS-CLAP's projection head: ``LayerNorm(h + Dropout(W₂ GELU(h)))``, ``h = W₁ x``."""

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.linear1 = torch.nn.Linear(d_in, d_out, bias=False)
        self.linear2 = torch.nn.Linear(d_out, d_out, bias=False)
        self.drop = torch.nn.Dropout(dropout)
        self.layer_norm = torch.nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x)
        return self.layer_norm(h + self.drop(self.linear2(F.gelu(h))))


class ContrastiveHeads(torch.nn.Module):
    """``L_a``, ``L_t`` and the learnable temperature."""

    def __init__(self, d_audio: int, d_text: int, d: int, dropout: float) -> None:
        super().__init__()
        self.audio = Projection(d_audio, d, dropout)
        self.text = Projection(d_text, d, dropout)
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio(x), dim=-1)

    def embed_text(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(t), dim=-1)


class Contrastive(StandardizedInputs, ScheduledTraining, Method):
    """Contrastively trained projection heads over frozen audio and text embeddings.

    Args:
        features: Audio feature names concatenated as ``X̂_a`` (default ``("aisfx",)``).
        dim: Joint-space dimension ``d``.
        dropout: Projection dropout (MS-CLAP's default 0.5).
        epochs, lr, batch_size, weight_decay: Adam settings; the epoch with the best dev UA
            is kept.
    """

    name = "contrastive"
    trainable = True

    def __init__(
        self,
        features: tuple[str, ...] | list[str] = ("aisfx",),
        dim: int = 256,
        dropout: float = 0.5,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 64,
        weight_decay: float = 0.0,
    ) -> None:
        self.features = tuple(features)
        self.dim = dim
        self.dropout = dropout
        self.train_config = TrainConfig(epochs, lr, batch_size, weight_decay)
        self.model: ContrastiveHeads | None = None

    def fit(self, train, train_classes, dev, dev_classes, seed: int = 0) -> dict:
        x = self._fit_inputs(train)
        index = {n: i for i, n in enumerate(train_classes.names)}
        y = torch.tensor([index[label] for label in train.labels])
        texts = torch.from_numpy(train_classes.embeddings.astype(np.float32))
        with seeded(seed):  # initial weights; the caller's random state is kept
            self.model = ContrastiveHeads(x.shape[1], texts.shape[1], self.dim, self.dropout)

        def loss_fn(model, xb, yb):
            return clip_loss(
                model.embed_audio(xb), model.embed_text(texts[yb]), model.logit_scale(), labels=yb
            )

        evaluate = None
        if dev is not None and dev_classes is not None:
            x_dev = self._inputs(dev)
            dev_text = torch.from_numpy(dev_classes.embeddings.astype(np.float32))

            def evaluate(model):
                a, t = model.embed_audio(x_dev), model.embed_text(dev_text)
                s = (model.logit_scale() * a @ t.T).numpy()
                return self.dev_score(s, dev.labels, dev_classes.names)

        log = fit(self.model, loss_fn, self._inputs(train), y, self.train_config, seed, evaluate)
        return {
            "best_epoch": log["best_epoch"],
            "dev_score": log["best_dev"],
            "lr_drops": log["lr_drops"],
            "logit_scale": float(self.model.logit_scale().detach()),
        }

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]`` logits ``τ · cos(E_a(x), E_t(e_c))``."""
        if self.model is None:
            raise RuntimeError("contrastive: fit() must run before score()")
        with torch.no_grad():
            text = torch.from_numpy(classes.embeddings.astype(np.float32))
            a, t = self.model.embed_audio(self._inputs(batch)), self.model.embed_text(text)
            return (self.model.logit_scale() * a @ t.T).numpy()

    def embed(self, batch: Batch) -> dict[str, np.ndarray]:
        """Unit-norm joint-space rows: ``{"audio": E_a(x)}``, plus ``"text"`` (``E_t`` of
        ``batch.features["narration"]``) when the batch has narration embeddings."""
        if self.model is None:
            raise RuntimeError("contrastive: fit() must run before embed()")
        with torch.no_grad():
            out = {"audio": self.model.embed_audio(self._inputs(batch)).numpy()}
            if "narration" in batch.features:
                text = torch.from_numpy(np.asarray(batch.features["narration"], np.float32))
                out["text"] = self.model.embed_text(text).numpy()
        return out

    def config(self) -> dict:
        return {
            "features": list(self.features),
            "dim": self.dim,
            "dropout": self.dropout,
            **self.train_settings(),
        }


@METHODS.register("contrastive")
def _make_contrastive(**kwargs) -> Contrastive:
    return Contrastive(**kwargs)
