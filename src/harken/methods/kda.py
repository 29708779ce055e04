"""``kda``: Knowledge-aware Distribution Adaptation (Chen et al., 2024, §3.2–3.3).

Audio and visual features pass through encoder blocks ``A_enc``/``V_enc``, a cross-attention
module ``F_c`` and projectors ``A_proj``/``V_proj``; ``θ_av = concat(θ_a, θ_v)`` and the class
knowledge ``t`` (the averaged embedding of a class's LLM descriptions) are mapped into a common
space by two embedding layers (Eq. 1)

    ρ_av = E_av(θ_av),   ρ_t = E_t(t).

Training minimises (Eq. 9, λ = 1 by default)

    L_KDA = L_kaml + λ · L_align

* ``L_align`` (Eq. 4): the 2-Wasserstein distance between Gaussians fitted to the mini-batch's
  ``ρ_av`` and the ``ρ_t`` of each clip's class, in the approximation
  ``(‖μ_av − μ_t‖² + ‖Σ_av^{1/2} − Σ_t^{1/2}‖_F²)^{1/2}`` (:func:`alignment_loss`);
* ``L_kaml`` (Eq. 7): cross-entropy over the logits ``s^k = (ρ_t^k)ᵀ ρ_av`` of the seen classes
  (Eq. 5) with the adaptive margin ``m_{y,k}`` added to every wrong class (:func:`kaml_loss`),
  where ``m_{i,j} = α·W2(class i, class j) + β`` between the Gaussians of the *descriptions* of
  classes ``i`` and ``j`` in the common space, diagonal variances ``δ`` (Eq. 6,
  :func:`adaptive_margins`).

A clip is classified by the nearest knowledge representation (Eq. 8): the score of class ``j`` is
``−‖ρ_t^j − ρ_av‖₂``.

harken follows the paper, not the released code (which scores with an ALE bilinear layer on a
softmax, and derives margins from a learnt linear map of cosine similarities). Where the paper
is silent:

* **Blocks**: ``A_enc``/``V_enc`` are ``Linear → BatchNorm → ReLU → Dropout(r_enc)`` and
  ``A_proj``/``V_proj`` ``Linear → BatchNorm → ReLU → Dropout(r_proj)`` (AVCA's embedding
  blocks), all ``d_model = 512`` wide (the released code's width); ``E_av``/``E_t`` are single
  linear layers into a common space of ``dim = 300`` (AVCA's embedding size). Eq. 9 has no
  decoder term, so there are no decoders and no ``r_dec``.
* **Cross-attention** on time-averaged features: one token per modality; audio attends to the
  visual token and vice versa (``torch.nn.MultiheadAttention``, ``heads`` heads), each added
  residually to its own stream. With a single key the attention weight is 1, so ``F_c`` is a
  learnt map of the other modality. With ``modality="audio"``/``"video"`` there is no ``F_c``
  and ``θ_av`` is the one branch's ``θ`` (§4.3, Table 6).
* **Moments**: batch (and description) means and *biased* (1/n) covariances — the Gaussian
  fitted by maximum likelihood, defined for a single sample too.
* **Class knowledge distribution** (Eq. 6): ``Classes.members[key][i]``, the embeddings of the
  individual descriptions of class ``i``, mapped by ``E_t``; a class with no members has a
  single-point distribution (δ = 0, ``μ = ρ_t``). Margins are recomputed from the current
  ``E_t`` each step and **detached**: a margin is a property of the target classes, not a
  quantity the network should shrink.
* **α, β**: the paper gives no values. Defaults α = 1, β = 0: for point distributions the
  margin condition ``s_y − s_k ≥ m_{y,k}`` reads ``(ρ_t^y − ρ_t^k)ᵀ ρ_av ≥ ‖ρ_t^y − ρ_t^k‖``:
  ``ρ_av``'s projection on the unit direction from class ``k`` to class ``y`` must reach 1.
  The margin grows with the class distance exactly as the logit gap does, so it stays on the
  logits' scale whatever scale ``E_t`` learns. Eq. 6 as printed gives *distant* classes the
  larger margin; α < 0 with β > 0 gives it to *similar* ones (§3.2's wording suggests that).
* **Epochs** 50 and **weight decay** 0 (neither stated); the epoch with the best dev score is
  kept.

Training defaults (§4.1, UCF-GZSL): Adam, lr 1e-3, β = (0.5, 0.999), batch 2048, learning rate
×0.1 after 3 epochs without dev improvement, dropouts r_enc/r_proj 0.2/0.3 (ActivityNet
0.2/0.2, VGGSound 0/0).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harken.errors import ConfigError, DataError
from harken.methods.base import METHODS, Batch, Classes, Method, ScheduledTraining
from harken.methods.clipclap import AudioVisualInputs, mlp_block, negative_distances
from harken.train import TrainConfig, fit, seeded

COVARIANCES = ("full", "diagonal")
#: Square roots of variances below this count as 0 in gradients (standard deviations below
#: ``sqrt(SQRT_EPS)`` = 1e-6 are flat directions), so degenerate covariances — a batch holds only
#: as many distinct ``ρ_t`` as classes — train without infinities.
SQRT_EPS = 1e-12


# --- the math: pure functions ------------------------------------------------------------


def _safe_sqrt(x: torch.Tensor, eps: float = SQRT_EPS) -> torch.Tensor:
    """``√x`` for ``x ≥ 0`` (0 at 0), with gradients bounded by ``1/(2√eps)``."""
    return torch.where(x > 0, x.clamp_min(eps).sqrt(), torch.zeros_like(x))


class _PsdSqrt(torch.autograd.Function):
    """Principal square root of a symmetric PSD matrix by eigendecomposition.

    The backward pass uses the Daleckii–Krein formula ``∂L/∂A = U (K ∘ Uᵀ Ḡ U) Uᵀ`` with
    ``K_ij = 1/(√λ_i + √λ_j)`` and ``Ḡ`` the symmetrised upstream gradient. Unlike
    differentiating through ``eigh``'s eigenvectors it stays finite for repeated eigenvalues.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor) -> torch.Tensor:
        a64 = a.double()
        lam, u = torch.linalg.eigh(0.5 * (a64 + a64.mT))
        s = lam.clamp_min(0).sqrt()
        ctx.save_for_backward(u, s)
        ctx.dtype = a.dtype
        return ((u * s[..., None, :]) @ u.mT).to(a.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        u, s = ctx.saved_tensors
        g = grad.double()
        g = 0.5 * (g + g.mT)
        k = 1.0 / (s[..., :, None] + s[..., None, :]).clamp_min(np.sqrt(SQRT_EPS))
        return (u @ ((u.mT @ g @ u) * k) @ u.mT).to(ctx.dtype)


def psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    """``A^{1/2}`` of a symmetric positive semi-definite ``A`` (eigenvalues clamped at 0),
    differentiable (see :class:`_PsdSqrt`)."""
    return _PsdSqrt.apply(a)


def _sqrt_cov(cov: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """``Σ^{1/2}``: a matrix root for ``[d, d]``, elementwise for diagonal variances ``[d]``."""
    return _safe_sqrt(cov) if cov.dim() == mu.dim() else psd_sqrt(cov)


def w2_gaussian_approx(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> torch.Tensor:
    """KDA Eq. 4: ``(‖μ₁ − μ₂‖² + ‖Σ₁^{1/2} − Σ₂^{1/2}‖_F²)^{1/2}``.

    Args:
        mu1, mu2: ``[d]`` means.
        cov1, cov2: ``[d, d]`` covariances, or ``[d]`` variances of diagonal covariances (then
            ``Σ^{1/2}`` is the elementwise root and the value equals the exact W2 of Eq. 2–3).

    It upper-bounds the exact 2-Wasserstein distance and equals it when ``Σ₁`` and ``Σ₂``
    commute. Differentiable (finite gradients also at 0 and for singular covariances).
    """
    sq = (mu1 - mu2).pow(2).sum() + (_sqrt_cov(cov1, mu1) - _sqrt_cov(cov2, mu2)).pow(2).sum()
    return _safe_sqrt(sq)


def _np_psd_sqrt(a: np.ndarray) -> np.ndarray:
    lam, u = np.linalg.eigh(0.5 * (a + a.T))
    return (u * np.sqrt(np.clip(lam, 0, None))) @ u.T


def w2_gaussian_exact(mu1, cov1, mu2, cov2) -> float:
    """KDA Eq. 2–3, the exact 2-Wasserstein distance between two Gaussians:

        W2² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})

    (NumPy, float64; covariances ``[d, d]`` or diagonal variances ``[d]``; for reference and
    tests, not training).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1, c2 = (np.asarray(c, np.float64) for c in (cov1, cov2))
    c1, c2 = (np.diag(c) if c.ndim == 1 else c for c in (c1, c2))
    r1 = _np_psd_sqrt(c1)
    cross = _np_psd_sqrt(r1 @ c2 @ r1)
    sq = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * cross)
    return float(np.sqrt(max(sq, 0.0)))


def gaussian_moments(
    x: torch.Tensor, covariance: str = "full"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[d]`` and biased (1/n) covariance ``[d, d]`` (``"full"``) or variances ``[d]``
    (``"diagonal"``) of the rows of ``x`` ``[n, d]``."""
    mu = x.mean(dim=0)
    centred = x - mu
    if covariance == "diagonal":
        return mu, centred.pow(2).mean(dim=0)
    return mu, centred.T @ centred / len(x)


def alignment_loss(
    rho_av: torch.Tensor, rho_t: torch.Tensor, covariance: str = "full"
) -> torch.Tensor:
    """KDA ``L_align`` (Eq. 4) between the batch distributions of ``ρ_av`` and ``ρ_t``.

    Args:
        rho_av: ``[B, d]`` audio-visual representations of a mini-batch.
        rho_t: ``[B, d]`` knowledge representations of each clip's class.
        covariance: ``"full"`` (Eq. 4) or ``"diagonal"`` (per-dimension variances only).

    Returns:
        ``w2_gaussian_approx`` of the two Gaussians (batch means, biased covariances), computed
        in float64.
    """
    if covariance not in COVARIANCES:
        raise ConfigError(f"covariance={covariance!r}: choose one of {', '.join(COVARIANCES)}")
    mu1, c1 = gaussian_moments(rho_av.double(), covariance)
    mu2, c2 = gaussian_moments(rho_t.double(), covariance)
    return w2_gaussian_approx(mu1, c1, mu2, c2).to(rho_av.dtype)


def adaptive_margins(
    mu: torch.Tensor, var: torch.Tensor, alpha: float = 1.0, beta: float = 0.0
) -> torch.Tensor:
    """KDA Eq. 6, the knowledge-aware margin of every pair of classes:

        m_ij = α · (‖μ_i − μ_j‖² + ‖δ_i^{1/2} − δ_j^{1/2}‖²)^{1/2} + β

    Args:
        mu: ``[C, d]`` means of the classes' knowledge representations.
        var: ``[C, d]`` their per-dimension variances ``δ``.
        alpha, beta: Scale and bias.

    Returns:
        ``[C, C]`` margins (the diagonal is ``β``; :func:`kaml_loss` never uses it).
    """

    def pairwise(z: torch.Tensor) -> torch.Tensor:
        return torch.cdist(z[None], z[None], compute_mode="donot_use_mm_for_euclid_dist")[0]

    dist = _safe_sqrt(pairwise(mu).pow(2) + pairwise(_safe_sqrt(var)).pow(2))
    return alpha * dist + beta


def kaml_loss(logits: torch.Tensor, y: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
    """KDA ``L_kaml`` (Eq. 7), cross-entropy with the margin ``m_{y,k}`` on every wrong class:

        L = −(1/B) Σ_b log( e^{s_y} / (e^{s_y} + Σ_{k≠y} e^{s_k + m_{y,k}}) ),  y = y_b

    Args:
        logits: ``[B, C]`` compatibilities ``s^k``.
        y: ``[B]`` true class indices.
        margins: ``[C, C]`` margins (row = true class).

    With all margins 0 it is the cross-entropy of Eq. 5.
    """
    shift = margins[y].scatter(1, y[:, None], 0.0)
    log_p = F.log_softmax(logits + shift, dim=1)
    return -log_p.gather(1, y[:, None]).mean()


def class_moments(
    rho: torch.Tensor, owner: torch.Tensor, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class mean ``[C, d]`` and biased variance ``[C, d]`` of rows ``rho`` ``[n, d]``
    belonging to classes ``owner`` ``[n]`` (every class needs at least one row)."""
    counts = torch.bincount(owner, minlength=n_classes).to(rho.dtype)[:, None]
    mu = torch.zeros(n_classes, rho.shape[1], dtype=rho.dtype).index_add(0, owner, rho) / counts
    sq = (rho - mu[owner]).pow(2)
    return mu, torch.zeros_like(mu).index_add(0, owner, sq) / counts


# --- the network -------------------------------------------------------------------------


class KDANet(torch.nn.Module):
    """``A_enc``, ``V_enc``, ``F_c``, ``A_proj``, ``V_proj``, ``E_av`` and ``E_t`` (Eq. 1)."""

    def __init__(
        self,
        d_video: int,
        d_audio: int,
        d_text: int,
        d_model: int = 512,
        dim: int = 300,
        heads: int = 8,
        enc_dropout: float = 0.2,
        proj_dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if not d_video and not d_audio:
            raise ConfigError("KDA needs audio or video features")
        self.d_video, self.d_audio = d_video, d_audio
        if d_audio:
            self.a_enc = mlp_block(d_audio, d_model, enc_dropout)
            self.a_proj = mlp_block(d_model, d_model, proj_dropout)
        if d_video:
            self.v_enc = mlp_block(d_video, d_model, enc_dropout)
            self.v_proj = mlp_block(d_model, d_model, proj_dropout)
        self.cross = bool(d_video and d_audio)
        if self.cross:
            self.a_from_v = torch.nn.MultiheadAttention(d_model, heads, batch_first=True)
            self.v_from_a = torch.nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.e_av = torch.nn.Linear(d_model * (1 + self.cross), dim)
        self.e_t = torch.nn.Linear(d_text, dim)

    def embed_clips(self, x: torch.Tensor) -> torch.Tensor:
        """``ρ_av = E_av(concat(θ_a, θ_v))`` from inputs ``concat(v, a)``."""
        v, a = x[:, : self.d_video], x[:, self.d_video :]
        phi_a = self.a_enc(a) if self.d_audio else None
        phi_v = self.v_enc(v) if self.d_video else None
        if self.cross:
            qa, qv = phi_a[:, None], phi_v[:, None]
            phi_a = phi_a + self.a_from_v(qa, qv, qv, need_weights=False)[0][:, 0]
            phi_v = phi_v + self.v_from_a(qv, qa, qa, need_weights=False)[0][:, 0]
        thetas = []
        if phi_a is not None:
            thetas.append(self.a_proj(phi_a))
        if phi_v is not None:
            thetas.append(self.v_proj(phi_v))
        return self.e_av(torch.cat(thetas, dim=1))

    def embed_knowledge(self, t: torch.Tensor) -> torch.Tensor:
        """``ρ_t = E_t(t)``."""
        return self.e_t(t)


# --- the method --------------------------------------------------------------------------


class KDA(AudioVisualInputs, ScheduledTraining, Method):
    """Chen et al. (2024) KDA (see the module docstring).

    Args:
        audio, video, modality, standardize: Inputs, as for ``clipclap`` (defaults CLAP audio
            and CLIP image features; the paper's SeLaVi / VGGish+C3D features are not offered).
        knowledge: The ``Classes.alternatives`` view used as class knowledge ``t``
            (None: ``Classes.embeddings``).
        members: The ``Classes.members`` key of the per-description embeddings behind ``t``
            (None: the ``knowledge`` name, or with default knowledge the only ``members``
            entry); without one, classes have single-point distributions.
        d_model, dim, heads: Block width, common-space dimension, attention heads.
        enc_dropout, proj_dropout: ``r_enc``, ``r_proj``.
        align_weight: ``λ`` of Eq. 9.
        covariance: ``"full"`` or ``"diagonal"`` covariances in ``L_align``.
        alpha, beta: Margin scale and bias (Eq. 6).
        epochs, lr, batch_size, weight_decay, betas, plateau_patience: Adam and the schedule.
    """

    name = "kda"
    trainable = True

    def __init__(
        self,
        audio: tuple[str, ...] | list[str] = ("clap",),
        video: tuple[str, ...] | list[str] = ("clip-image",),
        modality: str = "both",
        knowledge: str | None = None,
        members: str | None = None,
        standardize: bool = False,
        d_model: int = 512,
        dim: int = 300,
        heads: int = 8,
        enc_dropout: float = 0.2,
        proj_dropout: float = 0.3,
        align_weight: float = 1.0,
        covariance: str = "full",
        alpha: float = 1.0,
        beta: float = 0.0,
        epochs: int = 50,
        lr: float = 1e-3,
        batch_size: int = 2048,
        weight_decay: float = 0.0,
        betas: tuple[float, float] | list[float] = (0.5, 0.999),
        plateau_patience: int | None = 3,
    ) -> None:
        self._set_streams(audio, video, modality, standardize)
        if covariance not in COVARIANCES:
            raise ConfigError(f"covariance={covariance!r}: choose one of {', '.join(COVARIANCES)}")
        if d_model % heads:
            raise ConfigError(f"heads={heads} must divide d_model={d_model} (attention heads)")
        self.knowledge, self.members = knowledge, members
        self.d_model, self.dim, self.heads = d_model, dim, heads
        self.enc_dropout, self.proj_dropout = enc_dropout, proj_dropout
        self.align_weight, self.covariance = align_weight, covariance
        self.alpha, self.beta = alpha, beta
        self.train_config = TrainConfig(
            epochs, lr, batch_size, weight_decay, tuple(betas), plateau_patience
        )
        self.model: KDANet | None = None

    def _knowledge(self, classes: Classes) -> torch.Tensor:
        emb = classes.embeddings if self.knowledge is None else classes.view(self.knowledge)
        return torch.from_numpy(np.asarray(emb, dtype=np.float32))

    def _distribution(self, classes: Classes, d_text: int):
        """``(member rows [n, D], owner class [n], description)`` or ``(None, None, why)``."""
        key = self.members or self.knowledge
        if key is None and len(classes.members) == 1:
            key = next(iter(classes.members))
        if key is None or key not in classes.members:
            return None, None, "single point per class (no per-description embeddings)"
        rows = classes.members[key]
        if len(rows) != len(classes.names) or any(len(r) == 0 for r in rows):
            raise DataError(f"members[{key!r}]: need at least one embedding for every class")
        if any(np.asarray(r).shape[1] != d_text for r in rows):
            raise DataError(
                f"members[{key!r}] embeddings are not {d_text}-d like the class knowledge; "
                "give the members of the same knowledge source"
            )
        owner = torch.repeat_interleave(
            torch.arange(len(rows)), torch.tensor([len(r) for r in rows])
        )
        stacked = torch.from_numpy(np.concatenate(rows).astype(np.float32))
        sizes = [len(r) for r in rows]
        return stacked, owner, f"members[{key!r}], {min(sizes)}–{max(sizes)} per class"

    def _margins(self, model: KDANet, t: torch.Tensor, rows, owner) -> torch.Tensor:
        """Detached ``[C, C]`` margins of Eq. 6 from the current ``E_t``."""
        with torch.no_grad():
            if rows is None:
                mu = model.embed_knowledge(t)
                var = torch.zeros_like(mu)
            else:
                mu, var = class_moments(model.embed_knowledge(rows), owner, len(t))
            return adaptive_margins(mu, var, self.alpha, self.beta)

    def fit(self, train, train_classes, dev, dev_classes, seed: int = 0) -> dict:
        x = self._fit_streams(train)
        d_video = self._video_width(train)
        index = {n: i for i, n in enumerate(train_classes.names)}
        y = torch.tensor([index[label] for label in train.labels])
        t = self._knowledge(train_classes)
        rows, owner, distribution = self._distribution(train_classes, t.shape[1])
        with seeded(seed):  # initial weights; the caller's random state is kept
            self.model = KDANet(
                d_video,
                x.shape[1] - d_video,
                t.shape[1],
                self.d_model,
                self.dim,
                self.heads,
                self.enc_dropout,
                self.proj_dropout,
            )

        def loss_fn(model, xb, yb):
            rho_av = model.embed_clips(xb)
            rho_t = model.embed_knowledge(t)
            margins = self._margins(model, t, rows, owner)
            kaml = kaml_loss(rho_av @ rho_t.T, yb, margins)
            return kaml + self.align_weight * alignment_loss(rho_av, rho_t[yb], self.covariance)

        evaluate = None
        if dev is not None and dev_classes is not None:
            x_dev, t_dev = self._inputs(dev), self._knowledge(dev_classes)

            def evaluate(model):
                scores = negative_distances(model.embed_clips(x_dev), model.embed_knowledge(t_dev))
                return self.dev_score(scores, dev.labels, dev_classes.names)

        log = fit(self.model, loss_fn, x, y, self.train_config, seed, evaluate)
        return {
            "best_epoch": log["best_epoch"],
            "dev_score": log["best_dev"],
            "lr_drops": log["lr_drops"],
            "knowledge": self.knowledge or "default",
            "distribution": distribution,
        }

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]`` scores ``−‖ρ_t^j − ρ_av‖₂`` (Eq. 8), columns in ``classes.names`` order."""
        if self.model is None:
            raise RuntimeError("kda: fit() must run before score()")
        self.model.eval()
        with torch.no_grad():
            rho_av = self.model.embed_clips(self._inputs(batch))
            return negative_distances(rho_av, self.model.embed_knowledge(self._knowledge(classes)))

    def config(self) -> dict:
        return {
            "audio": list(self.audio),
            "video": list(self.video),
            "modality": self.modality,
            "knowledge": self.knowledge,
            "members": self.members,
            "standardize": self.standardize,
            "d_model": self.d_model,
            "dim": self.dim,
            "heads": self.heads,
            "enc_dropout": self.enc_dropout,
            "proj_dropout": self.proj_dropout,
            "align_weight": self.align_weight,
            "covariance": self.covariance,
            "alpha": self.alpha,
            "beta": self.beta,
            **self.train_settings(),
        }


@METHODS.register("kda")
def _make_kda(**kwargs) -> KDA:
    return KDA(**kwargs)
