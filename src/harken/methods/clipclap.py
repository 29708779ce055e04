"""``clipclap``: audio-visual (G)ZSL with CLIP and CLAP features (Kurzendörfer et al., 2024, §3).

Audio features ``a`` (CLAP) and visual features ``v`` (CLIP, the middle frame) are concatenated
and mapped to an audio-visual embedding (Eq. 1)

    o = O_enc(concat(v, a)),   θ_o = O_proj(o)

and the class label embeddings of the CLIP and CLAP text encoders to a class embedding (Eq. 2)

    w = W_enc(concat(w^v, w^a)),   θ_w = W_proj(w)

where every layer is ``Linear → BatchNorm → ReLU → Dropout``: ``O_enc`` one layer
``d_in_v + d_in_a → d_model``, ``O_proj`` two (``d_model → d_hidden → d_out``), ``W_enc`` one
(``d_text → d_model``), ``W_proj`` one (``d_model → d_out``). Two decoders serve the
reconstruction loss only: ``ρ_o = D_o(θ_o)`` (``d_out → d_hidden → d_model``) and
``ρ_w = D_w(θ_w)`` (``d_out → d_model``). The loss (Eq. 4–7) is

    l = l_ce + l_rec + l_reg
    l_ce  = −(1/n) Σ_i log softmax_k(θ_o_i · θ_w_seen,k)[y_i]                 (Eq. 5)
    l_rec = MSE(ρ_o_i, w_i) + MSE(ρ_w_i, w_i)                                 (Eq. 6)
    l_reg = MSE(θ_o_i, θ_w_i)                                                (Eq. 7)

with ``w_i``/``θ_w_i`` those of clip ``i``'s class, and a clip is classified by the nearest class
embedding (Eq. 3): the score of class ``j`` is ``−‖θ_w^j − θ_o‖₂`` (higher is better; a GZSL
protocol adds its calibrated stacking to these scores).

Choices the paper leaves open, and what harken does:

* **MSE reduction**: the mean over samples *and* dimensions (``torch.nn.MSELoss``'s default, as
  the authors' code uses); Eq. 6–7's ``(1/n) Σ_i (·)²`` does not say how a vector is squared.
* **No stop-gradient**: the targets ``w_i`` of ``l_rec`` and ``θ_w_i`` of ``l_reg`` are outputs of
  the learnt text branch and receive gradients, as the equations (and the authors' code) have it.
* **One text-branch pass per step**: ``W_enc``/``W_proj`` (and ``D_w``) run once per step over
  the embeddings of *all* training classes, and ``w_i``, ``θ_w_i``, ``ρ_w_i`` are rows of that
  pass. Batch normalisation therefore sees the set of classes — the same set it normalises at
  test time — rather than per-clip copies weighted by class frequency (the authors' code runs the
  branch twice, per clip and per class). In eval mode both are identical.
* Inputs are raw, as in the paper (``standardize=True`` uses training-clip statistics only).

Defaults are §4.1's (UCF-GZSL^cls): d_model = d_hidden = 512, d_out = 64, dropout 0.1, Adam
(β = 0.9, 0.999, weight decay 1e-5), lr 7e-5 (1e-4 for VGGSound/ActivityNet), batch 64,
20 epochs, learning rate ×0.1 after 3 epochs without dev improvement; the epoch with the best
dev score (:meth:`Method.dev_score`, which a GZSL protocol sets to validation HM) is kept. With
d_in_v = 512, d_in_a = 1024 and both text embeddings the network has 2,237,824 parameters (the
paper: "around 2.2 million").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harken.errors import ConfigError, DataError
from harken.methods.base import (
    METHODS,
    Batch,
    Classes,
    Method,
    ScheduledTraining,
    StandardizedInputs,
)
from harken.train import TrainConfig, fit, seeded

MODALITIES = ("both", "audio", "video")
TEXTS = ("auto", "both", "clip", "clap", "default")


def mlp_block(d_in: int, d_out: int, dropout: float) -> torch.nn.Sequential:
    """``Linear → BatchNorm → ReLU → Dropout`` (every layer of ClipClap, §3)."""
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, d_out),
        torch.nn.BatchNorm1d(d_out),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout),
    )


def negative_distances(clips: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
    """``[N, C]`` scores ``−‖c_j − x_i‖₂`` (exact pairwise distances, no Gram-matrix shortcut)."""
    d = torch.cdist(clips[None], classes[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
    return (-d).numpy()


class AudioVisualInputs(StandardizedInputs):
    """Mixin of the audio-visual heads: which feature streams a modality reads.

    ``features`` is the video feature names followed by the audio ones (Eq. 1's
    ``concat(v, a)``), restricted to the chosen ``modality``; :meth:`_fit_inputs` /
    :meth:`_inputs` concatenate them in that order (standardised with training-clip statistics
    when ``standardize``, raw otherwise).
    """

    audio: tuple[str, ...] = ()
    video: tuple[str, ...] = ()
    modality: str = "both"
    standardize: bool = False

    def _set_streams(self, audio, video, modality: str, standardize: bool) -> None:
        if modality not in MODALITIES:
            raise ConfigError(f"modality={modality!r}: choose one of {', '.join(MODALITIES)}")
        self.audio, self.video = tuple(audio), tuple(video)
        self.modality, self.standardize = modality, standardize
        uses_video, uses_audio = modality in ("both", "video"), modality in ("both", "audio")
        if (uses_video and not self.video) or (uses_audio and not self.audio):
            raise ConfigError(
                f"modality={modality!r} needs feature names: give video=[...] and/or audio=[...]"
            )
        self.features = (self.video if uses_video else ()) + (self.audio if uses_audio else ())

    def _fit_streams(self, train: Batch) -> torch.Tensor:
        """Training inputs ``[N, D]``; learns the standardisation when ``standardize``."""
        if self.standardize:
            self._fit_inputs(train)
        return self._inputs(train)

    def _inputs(self, batch: Batch) -> torch.Tensor:
        """``[N, D]`` float32 inputs: standardised, or the raw features concatenated once (no
        arithmetic copies of a large feature matrix)."""
        if self.standardize:
            return super()._inputs(batch)
        x = np.concatenate([batch.get(f) for f in self.features], axis=1)
        return torch.from_numpy(x.astype(np.float32, copy=False))

    def _video_width(self, batch: Batch) -> int:
        """Number of leading input columns that are video features."""
        if self.modality == "audio":
            return 0
        return sum(batch.get(f).shape[1] for f in self.video)


class ClipClapNet(torch.nn.Module):
    """The six networks of ClipClap §3 (Eq. 1–2 and the decoders of Eq. 6)."""

    def __init__(
        self,
        d_in: int,
        d_text: int,
        d_model: int = 512,
        d_hidden: int = 512,
        d_out: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.o_enc = mlp_block(d_in, d_model, dropout)
        self.o_proj = torch.nn.Sequential(
            mlp_block(d_model, d_hidden, dropout), mlp_block(d_hidden, d_out, dropout)
        )
        self.w_enc = mlp_block(d_text, d_model, dropout)
        self.w_proj = mlp_block(d_model, d_out, dropout)
        self.d_o = torch.nn.Sequential(
            mlp_block(d_out, d_hidden, dropout), mlp_block(d_hidden, d_model, dropout)
        )
        self.d_w = mlp_block(d_out, d_model, dropout)

    def embed_clips(self, x: torch.Tensor) -> torch.Tensor:
        """``θ_o = O_proj(O_enc(concat(v, a)))`` (Eq. 1)."""
        return self.o_proj(self.o_enc(x))

    def embed_classes(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w, θ_w)`` with ``w = W_enc(text)``, ``θ_w = W_proj(w)`` (Eq. 2)."""
        w = self.w_enc(text)
        return w, self.w_proj(w)


def clipclap_losses(
    net: ClipClapNet, x: torch.Tensor, y: torch.Tensor, text: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The loss terms of Eq. 4–7 on one mini-batch.

    Args:
        net: The ClipClap networks.
        x: ``[B, d_in]`` clip inputs ``concat(v, a)``.
        y: ``[B]`` class indices into ``text``.
        text: ``[K_s, d_text]`` label embeddings of all training classes.

    Returns:
        ``{"ce", "rec", "reg", "total"}`` with ``total = ce + rec + reg`` (Eq. 4).
    """
    theta_o = net.embed_clips(x)
    w_all, theta_w_all = net.embed_classes(text)
    log_p = F.log_softmax(theta_o @ theta_w_all.T, dim=1)
    ce = -log_p.gather(1, y[:, None]).mean()
    w = w_all[y]
    rho_o = net.d_o(theta_o)
    rho_w = net.d_w(theta_w_all)[y]
    rec = F.mse_loss(rho_o, w) + F.mse_loss(rho_w, w)
    reg = F.mse_loss(theta_o, theta_w_all[y])
    return {"ce": ce, "rec": rec, "reg": reg, "total": ce + rec + reg}


class ClipClap(AudioVisualInputs, ScheduledTraining, Method):
    """Kurzendörfer et al. (2024) ClipClap (see the module docstring).

    Args:
        audio: Audio feature names (encoder names), concatenated as ``a`` (default: CLAP).
        video: Visual feature names, concatenated as ``v`` (default: CLIP's image tower on the
            middle frame).
        modality: ``"both"`` (Eq. 1), or ``"audio"``/``"video"`` alone (Table 3).
        text: Class label embeddings: ``"clip"`` = ``w^v`` (the ``text_views[0]`` knowledge),
            ``"clap"`` = ``w^a`` (``text_views[1]``), ``"both"`` = ``concat(w^v, w^a)`` (Eq. 2),
            ``"default"`` = ``Classes.embeddings``; ``"auto"`` = both for ``modality="both"``,
            clap for audio, clip for video (Table 3), falling back to ``"default"`` — and saying
            so in the fit log — when the classes lack those knowledge views.
        text_views: The ``Classes.alternatives`` keys of ``w^v`` and ``w^a``.
        standardize: Standardise inputs with training-clip statistics (the paper: raw).
        d_model, d_hidden, d_out, dropout: Network widths and dropout (§4.1).
        epochs, lr, batch_size, weight_decay, betas, plateau_patience: Adam and the schedule.
    """

    name = "clipclap"
    trainable = True

    def __init__(
        self,
        audio: tuple[str, ...] | list[str] = ("clap",),
        video: tuple[str, ...] | list[str] = ("clip-image",),
        modality: str = "both",
        text: str = "auto",
        text_views: tuple[str, str] | list[str] = ("clip", "clap"),
        standardize: bool = False,
        d_model: int = 512,
        d_hidden: int = 512,
        d_out: int = 64,
        dropout: float = 0.1,
        epochs: int = 20,
        lr: float = 7e-5,
        batch_size: int = 64,
        weight_decay: float = 1e-5,
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        plateau_patience: int | None = 3,
    ) -> None:
        self._set_streams(audio, video, modality, standardize)
        if text not in TEXTS:
            raise ConfigError(f"text={text!r}: choose one of {', '.join(TEXTS)}")
        if len(text_views) != 2:
            raise ConfigError("text_views: give two knowledge names, (w^v, w^a)")
        self.text = text
        self.text_views = tuple(text_views)
        self.d_model, self.d_hidden, self.d_out, self.dropout = d_model, d_hidden, d_out, dropout
        self.train_config = TrainConfig(
            epochs, lr, batch_size, weight_decay, tuple(betas), plateau_patience
        )
        self.model: ClipClapNet | None = None
        self._text_used: str | None = None

    # --- class label embeddings ---------------------------------------------------------

    def _views_of(self, text: str) -> tuple[str, ...]:
        clip_view, clap_view = self.text_views
        return {"both": (clip_view, clap_view), "clip": (clip_view,), "clap": (clap_view,)}.get(
            text, ()
        )

    def _resolve_text(self, classes: Classes) -> tuple[str, str | None]:
        """The text choice for these classes and, for an ``auto`` fallback, why."""
        if self.text != "auto":
            return self.text, None
        wanted = {"both": "both", "audio": "clap", "video": "clip"}[self.modality]
        missing = [v for v in self._views_of(wanted) if v not in classes.alternatives]
        if not missing:
            return wanted, None
        return "default", (
            f"text=auto wanted {wanted!r} but the classes have no {missing} knowledge "
            f"(have {sorted(classes.alternatives)}): used the default class embeddings"
        )

    def _class_text(self, classes: Classes) -> torch.Tensor:
        """``[C, d_text]`` label embeddings (Eq. 2's ``concat(w^v, w^a)`` for ``both``)."""
        views = self._views_of(self._text_used or "default")
        emb = (
            np.concatenate([classes.view(v) for v in views], axis=1)
            if views
            else classes.embeddings
        )
        return torch.from_numpy(np.asarray(emb, dtype=np.float32))

    # --- training and scoring -----------------------------------------------------------

    def fit(self, train, train_classes, dev, dev_classes, seed: int = 0) -> dict:
        if len(train_classes.names) < 2:
            raise DataError(
                "clipclap needs at least two training classes (its class branch is batch-"
                f"normalised over them); got {train_classes.names}"
            )
        self._text_used, fallback = self._resolve_text(train_classes)
        x = self._fit_streams(train)
        index = {n: i for i, n in enumerate(train_classes.names)}
        y = torch.tensor([index[label] for label in train.labels])
        text = self._class_text(train_classes)
        with seeded(seed):  # initial weights; the caller's random state is kept
            self.model = ClipClapNet(
                x.shape[1], text.shape[1], self.d_model, self.d_hidden, self.d_out, self.dropout
            )

        def loss_fn(model, xb, yb):
            return clipclap_losses(model, xb, yb, text)["total"]

        evaluate = None
        if dev is not None and dev_classes is not None:
            x_dev, dev_text = self._inputs(dev), self._class_text(dev_classes)

            def evaluate(model):
                scores = negative_distances(
                    model.embed_clips(x_dev), model.embed_classes(dev_text)[1]
                )
                return self.dev_score(scores, dev.labels, dev_classes.names)

        log = fit(self.model, loss_fn, x, y, self.train_config, seed, evaluate)
        out = {
            "best_epoch": log["best_epoch"],
            "dev_score": log["best_dev"],
            "lr_drops": log["lr_drops"],
            "text": self._text_used,
        }
        if fallback:
            out["text_fallback"] = fallback
        return out

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]`` scores ``−‖θ_w^j − θ_o‖₂`` (Eq. 3), columns in ``classes.names`` order."""
        if self.model is None:
            raise RuntimeError("clipclap: fit() must run before score()")
        self.model.eval()
        with torch.no_grad():
            theta_o = self.model.embed_clips(self._inputs(batch))
            theta_w = self.model.embed_classes(self._class_text(classes))[1]
            return negative_distances(theta_o, theta_w)

    def config(self) -> dict:
        return {
            "audio": list(self.audio),
            "video": list(self.video),
            "modality": self.modality,
            "text": self.text,
            "text_views": list(self.text_views),
            "standardize": self.standardize,
            "d_model": self.d_model,
            "d_hidden": self.d_hidden,
            "d_out": self.d_out,
            "dropout": self.dropout,
            **self.train_settings(),
        }


@METHODS.register("clipclap")
def _make_clipclap(**kwargs) -> ClipClap:
    return ClipClap(**kwargs)
