"""``mc3``: Multimodal Contrastive-Consensus Coding (Chen et al., CVPR 2024, "SoundingActions").

Projection heads ``E_m`` over FROZEN per-clip features of three modalities are trained into one
``d``-dimensional space (the paper trains full encoders — TimeSformer, DistilBERT, AST, §4.4;
harken trains heads on stored features):

* ``audio`` — an audio encoder's clip embedding (``Batch.features[audio]``, default ``aisfx``);
* ``video`` — an image encoder's clip embedding, the mean over the clip's frames
  (``Batch.features[video]``; a ``[N, T, D]`` array is averaged over ``T`` here);
* ``text`` (language, ``L``) — a text embedding of the clip's narration
  (``Batch.features["narration"]``). Without narrations (Kitchen20) the language of a training
  clip is the class knowledge embedding of its label.

Every embedding is L2-normalised: ``e_m = E_m(x_m) / ||E_m(x_m)||``. Each head is one linear
layer to ``d = 256`` (EgoVLP, the paper's codebase [34], ends each encoder in a linear
projection to the joint space). Audio and video inputs are standardised with the mean/std of the
training clips only; text inputs (unit-norm sentence embeddings) are used as given — a
per-dimension std over a handful of seen class embeddings would not transfer to unseen ones.

Losses (each a pure function below):

* Eq. 1 :func:`info_nce` ``L_ij``; :func:`contrastive_loss` sums it over the ORDERED pairs of
  modalities — "six pairwise contrastive losses for three modalities" (§4.4).
* Eq. 2 :func:`consensus` ``c^t`` with the scaling ``K_i(x) = ((x+1)/2)^α_i`` (:func:`scale`) and
  its inverse (:func:`unscale`); Eq. 3 :func:`consensus_loss`.
* Eq. 4 ``L_MC3 = L_contrastive + λ L_consensus`` (``λ = consensus_weight``, 1 in the paper).
  Eq. 4 as printed writes the InfoNCE denominator as ``e_i^t·e_l^t``; we follow Eq. 1
  (``e_i^t·e_j^l``), which Eq. 4 restates.

Eq. 1 is applied as printed (diagonal positives). With class embeddings as the language, clips
of one class in a batch share one text row, so that text is also each other's "negative"; the
gradient on a shared text then points to the mean of its class's clips, and an audio row's
softmax over identical text columns only adds a constant floor to the loss.

Training (§4.1, §4.4): an *align* stage (contrastive over all pairs), then a *refine* stage
(contrastive + consensus, audio anchor, ``α_l = 1``, ``α_v = 0.5``). Adam, lr 3e-5, batch 256,
5 epochs per stage, the final checkpoint (no early stopping; dev data is only scored for the
log). The temperature ``τ`` is not given in the paper: we take EgoVLP's 0.05 (its EgoNCE default),
fixed, not learnt.

Variants — the baselines and ablations of Table 2 as named configurations of the same code
(each registered as a method name; ``get_method("mc3", variant=...)`` builds the same thing).
Pairs are unordered here; the contrastive loss uses both orders of each. Every variant trains
``2 × epochs`` in total, so baselines get the training budget of MC3's two stages:

==================== ================== ======================================== ===========
variant              Table 2 row        stages (epochs)                          heads
==================== ================== ======================================== ===========
mc3                  MC3                align: AV AL VL contrastive (E);         A V L
                                        refine: AV AL VL contrastive + consensus
                                        (E)
clap-style           CLAP [14]          one stage: AL contrastive (2E)           A L
cm-acc-style         CM-ACC [35]        one stage: AV contrastive (2E)           A V
cmc                  CMC [55]           one stage: AV AL VL contrastive (2E)     A V L
imagebind-style      ImageBind [23]     1: VL contrastive (E);                   A V L
                                        2: AV contrastive, V head frozen (E)
mc3-no-consensus     w/o L_consensus    align (E); refine: contrastive only (E)  A V L
mc3-no-contrastive   w/o L_contrastive  align (E); refine: consensus only (E)    A V L
mc3-no-align         w/o align-stage    one stage: contrastive + consensus (2E)  A V L
==================== ================== ======================================== ===========

Missing modalities: ``video=None`` (``video = ""`` in a TOML file) or a Batch without the video
feature drops every pair that involves video, and the consensus runs over the non-anchor modalities
that remain. A variant is refused (ConfigError naming it) only when some stage would be left with
nothing to train (``cm-acc-style`` and ``imagebind-style`` need video). So ``mc3`` on audio +
language is an A–L contrastive align stage, then A–L contrastive + a consensus over the language
alone, where ``c^t = e_l^t·e_a^t`` and the (stop-gradient) consensus loss is zero: it equals
``clap-style`` up to Adam restarting between the stages.

Zero-shot scoring needs a language head: ``score = cos(E_a(audio), E_l(class embedding)) / τ``.
``embed`` returns the unit-norm embeddings of each modality a batch provides (the discovery,
retrieval and linear-probe protocols use it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from itertools import permutations

import numpy as np
import torch
import torch.nn.functional as F

from harken.errors import ConfigError, DataError
from harken.methods.base import METHODS, Batch, Classes, Method
from harken.train import SMALL_MODEL_PARAMS, seeded, torch_threads

MODALITIES = ("audio", "video", "text")
#: Where per-clip narration text embeddings come from in a Batch.
NARRATION = "narration"
#: EgoVLP's temperature (the paper's codebase [34]; the paper gives none).
DEFAULT_TAU = 0.05

Pair = tuple[str, str]


# --- losses ----------------------------------------------------------------------------------


def info_nce(e_i: torch.Tensor, e_j: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE of one ordered modality pair, Eq. 1:

        L_ij = −1/|B| Σ_t log [ exp(e_i^t·e_j^t / τ) / Σ_l exp(e_i^t·e_j^l / τ) ]

    Args:
        e_i, e_j: ``[B, d]`` embeddings of modalities ``i`` and ``j``; row ``t`` ↔ row ``t``.
        tau: Temperature ``τ``.

    Not symmetric: ``L_ij`` normalises over the ``j`` embeddings of the batch, ``L_ji`` over
    the ``i`` ones.
    """
    logits = e_i @ e_j.T / tau
    return F.cross_entropy(logits, torch.arange(len(e_i), device=logits.device))


def ordered_pairs(pairs: tuple[Pair, ...] | list[Pair]) -> list[Pair]:
    """Both orders of each unordered pair, e.g. 3 pairs of A, V, L → the 6 ordered ones."""
    out: list[Pair] = []
    for i, j in pairs:
        for p in ((i, j), (j, i)):
            if p not in out:
                out.append(p)
    return out


def all_pairs(modalities: tuple[str, ...] | list[str]) -> list[Pair]:
    """Every ordered pair ``(i, j)``, ``i ≠ j``, of ``modalities``: n(n−1) of them."""
    return list(permutations(modalities, 2))


def contrastive_loss(
    emb: dict[str, torch.Tensor], pairs: list[Pair] | None = None, tau: float = DEFAULT_TAU
) -> torch.Tensor:
    """``L_contrastive = Σ_{(i, j)} L_ij`` over ORDERED pairs ``i ≠ j`` (§4.2, §4.4: "six
    pairwise contrastive losses for three modalities").

    Args:
        emb: modality → ``[B, d]`` unit embeddings.
        pairs: Ordered pairs to sum; None: :func:`all_pairs` of ``emb``'s modalities.
        tau: Temperature.
    """
    pairs = all_pairs(list(emb)) if pairs is None else pairs
    if not pairs:
        raise ValueError("contrastive_loss needs at least one modality pair")
    return sum(info_nce(emb[i], emb[j], tau) for i, j in pairs)


def scale(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``K(x) = ((x + 1) / 2)^α`` (Eq. 2): a cosine ``x ∈ [−1, 1]`` mapped to ``[0, 1]`` and
    reshaped by ``α`` (``α < 1`` lifts the scores of a modality). Inputs are clamped to
    ``[−1, 1]`` against rounding."""
    return ((x.clamp(-1.0, 1.0) + 1.0) / 2.0) ** alpha


def unscale(y: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """``K⁻¹(y) = 2 y^{1/α} − 1``, the inverse of :func:`scale` with the same ``α``."""
    return 2.0 * y.clamp(min=0.0) ** (1.0 / alpha) - 1.0


def consensus(
    emb: dict[str, torch.Tensor],
    anchor: str = "audio",
    alphas: dict[str, float] | None = None,
    detach: bool = True,
) -> torch.Tensor:
    """Consensus score of each sample, Eq. 2:

        c^t = K⁻¹( min_{i ≠ a} K_i(e_i^t·e_a^t) ),   K_i(x) = ((x + 1)/2)^α_i

    ``K⁻¹`` is printed without an index. We take the inverse of the ``K_i`` that attains the
    minimum (``i* = argmin_i K_i(e_i^t·e_a^t)``), so ``c^t = e_{i*}^t·e_a^t``: the consensus is
    the anchor cosine of the modality that disagrees most with the anchor once the scores are
    made comparable by ``K_i`` — the "furthest distance a feature has with respect to the anchor"
    of Fig. 3(b), on the cosine scale of Eq. 3.

    The consensus is a target (Fig. 3(b): "set the furthest distance ... as the consensus and
    push the remaining embeddings away to meet this consensus"): with ``detach`` (default) no
    gradient flows through ``c^t``, so the loss moves the other modalities towards the most
    disagreeing one and never pulls that one up towards them.

    Args:
        emb: modality → ``[B, d]`` unit embeddings; must contain ``anchor`` and ≥ 1 other.
        anchor: The anchor modality ``a`` (audio in the paper).
        alphas: ``α_i`` per non-anchor modality (default: ``text`` 1, ``video`` 0.5, §4.4).

    Returns:
        ``[B]`` consensus scores in ``[−1, 1]``.
    """
    alphas = {"text": 1.0, "video": 0.5} if alphas is None else alphas
    others = _non_anchor(emb, anchor)
    missing = [m for m in others if m not in alphas]
    if missing:
        raise ConfigError(f"no scaling parameter α for modalities {missing}")
    cos = torch.stack([(emb[m] * emb[anchor]).sum(dim=1) for m in others])  # [M, B]
    alpha = torch.tensor([float(alphas[m]) for m in others], dtype=cos.dtype)
    scaled = scale(cos, alpha[:, None])
    low, argmin = scaled.min(dim=0)
    c = unscale(low, alpha[argmin])
    return c.detach() if detach else c


def consensus_loss(
    emb: dict[str, torch.Tensor],
    anchor: str = "audio",
    alphas: dict[str, float] | None = None,
) -> torch.Tensor:
    """Consensus loss, Eq. 3 (``c^t`` from :func:`consensus`, a stop-gradient target):

        L_consensus = 1/|B| Σ_t Σ_{i ≠ a} || e_i^t·e_a^t − c^t ||₂

    The residual is a scalar, so ``||·||₂ = |·|``.
    """
    c = consensus(emb, anchor, alphas)
    cos = torch.stack([(emb[m] * emb[anchor]).sum(dim=1) for m in _non_anchor(emb, anchor)])
    return (cos - c[None, :]).abs().sum(dim=0).mean()


def _non_anchor(emb: dict[str, torch.Tensor], anchor: str) -> list[str]:
    if anchor not in emb:
        raise ConfigError(f"the consensus anchor {anchor!r} is not among {sorted(emb)}")
    others = [m for m in emb if m != anchor]
    if not others:
        raise ConfigError("the consensus needs at least one modality besides the anchor")
    return others


# --- variants: stage plans -------------------------------------------------------------------

AV, AL, VL = ("audio", "video"), ("audio", "text"), ("video", "text")
ALL = (AV, AL, VL)


@dataclass(frozen=True)
class Stage:
    """One training stage: its contrastive pairs (unordered; both orders enter the loss),
    whether the consensus loss is on, heads kept frozen, and its length in units of ``epochs``."""

    name: str
    pairs: tuple[Pair, ...] = ()
    consensus: bool = False
    frozen: tuple[str, ...] = ()
    epoch_factor: int = 1

    def modalities(self) -> set[str]:
        return {m for p in self.pairs for m in p}

    def without(self, missing: set[str]) -> Stage:
        """This stage with the pairs that involve a ``missing`` modality dropped."""
        pairs = tuple(p for p in self.pairs if not set(p) & missing)
        return replace(self, pairs=pairs, frozen=tuple(m for m in self.frozen if m not in missing))


@dataclass(frozen=True)
class Variant:
    """A Table-2 configuration: its stages and the heads it trains."""

    name: str
    stages: tuple[Stage, ...]
    description: str = ""
    heads: tuple[str, ...] = field(default=MODALITIES)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "mc3",
            (Stage("align", ALL), Stage("refine", ALL, consensus=True)),
            "MC3: align (contrastive), then refine (contrastive + consensus)",
        ),
        Variant(
            "clap-style",
            (Stage("contrastive", (AL,), epoch_factor=2),),
            "CLAP: audio-language contrastive",
            ("audio", "text"),
        ),
        Variant(
            "cm-acc-style",
            (Stage("contrastive", (AV,), epoch_factor=2),),
            "CM-ACC: audio-video contrastive",
            ("audio", "video"),
        ),
        Variant(
            "cmc",
            (Stage("contrastive", ALL, epoch_factor=2),),
            "CMC: contrastive over all pairs, one stage",
        ),
        Variant(
            "imagebind-style",
            (Stage("vision-language", (VL,)), Stage("audio-vision", (AV,), frozen=("video",))),
            "ImageBind: video-language, then audio-video with the video head frozen",
        ),
        Variant(
            "mc3-no-consensus",
            (Stage("align", ALL), Stage("refine", ALL)),
            "MC3 w/o L_consensus: contrastive in both stages",
        ),
        Variant(
            "mc3-no-contrastive",
            (Stage("align", ALL), Stage("refine", (), consensus=True)),
            "MC3 w/o L_contrastive: align, then consensus only",
        ),
        Variant(
            "mc3-no-align",
            (Stage("refine", ALL, consensus=True, epoch_factor=2),),
            "MC3 w/o align stage: L_MC3 from the start",
        ),
    )
}


def plan_stages(
    variant: str, available: set[str], anchor: str = "audio", hint: str = ""
) -> tuple[Stage, ...]:
    """The stages ``variant`` trains when only the ``available`` modalities exist.

    Pairs involving a missing modality are dropped; a consensus stays on while the anchor and
    at least one other modality are available. Raises ConfigError when a stage is left with
    nothing to train.
    """
    spec = VARIANTS[variant]
    missing = set(MODALITIES) - set(available)
    stages = []
    for stage in spec.stages:
        s = stage.without(missing)
        if s.consensus and (anchor not in available or len(available) < 2):
            s = replace(s, consensus=False)
        if not s.pairs and not s.consensus:
            needs = sorted(m for m in stage.modalities() if m in missing)
            raise ConfigError(
                f"method variant {variant!r} needs {' and '.join(needs) or 'more'} features: "
                f"its {stage.name!r} stage has nothing to train on "
                f"{' + '.join(sorted(available))}{hint} (configure a video feature, or choose "
                "'clap-style', 'cmc' or 'mc3', which train on audio + language alone)"
            )
        stages.append(s)
    return tuple(stages)


# --- the method ------------------------------------------------------------------------------


class Heads(torch.nn.Module):
    """One linear projection to ``d`` per modality (``E_audio``, ``E_video``, ``E_text``)."""

    def __init__(self, dims: dict[str, int], d: int) -> None:
        super().__init__()
        self.proj = torch.nn.ModuleDict({m: torch.nn.Linear(n, d) for m, n in dims.items()})

    def embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj[modality](x), dim=-1)


class MC3(Method):
    """MC3 and its Table-2 baselines/ablations (see the module docstring for the variants).

    Args:
        variant: One of :data:`VARIANTS`.
        audio: Audio feature name in ``Batch.features``.
        video: Video (mean image-encoder) feature name; None: no video modality.
        dim: Joint-space dimension ``d``.
        tau: Temperature ``τ`` of Eq. 1 (EgoVLP's 0.05; also the score's scale).
        lr, batch_size, epochs: Adam settings; ``epochs`` per stage (single-stage variants
            train ``2 × epochs``).
        alpha_video, alpha_text, alpha_audio: ``α`` of ``K_i`` (Eq. 2) per modality (the paper's
            audio anchor needs no ``α``; ``alpha_audio`` is used with another anchor).
        anchor: The consensus anchor modality.
        consensus_weight: ``λ`` of ``L_contrastive + λ L_consensus`` (Eq. 4: 1).
    """

    name = "mc3"
    trainable = True

    def __init__(
        self,
        variant: str = "mc3",
        audio: str = "aisfx",
        video: str | None = "efficientnet-lite0",
        dim: int = 256,
        tau: float = DEFAULT_TAU,
        lr: float = 3e-5,
        batch_size: int = 256,
        epochs: int = 5,
        alpha_video: float = 0.5,
        alpha_text: float = 1.0,
        alpha_audio: float = 1.0,
        anchor: str = "audio",
        consensus_weight: float = 1.0,
    ) -> None:
        problems = self.validate_options(
            {
                "variant": variant,
                "anchor": anchor,
                "dim": dim,
                "tau": tau,
                "lr": lr,
                "batch_size": batch_size,
                "epochs": epochs,
                "alpha_video": alpha_video,
                "alpha_text": alpha_text,
                "alpha_audio": alpha_audio,
                "consensus_weight": consensus_weight,
            }
        )
        if problems:
            raise ConfigError("; ".join(problems))
        video = video or None  # TOML has no null: video = "" means no video modality
        self.variant, self.audio, self.video = variant, audio, video
        self.dim, self.tau, self.lr = dim, tau, lr
        self.batch_size, self.epochs = batch_size, epochs
        self.alphas = {"audio": alpha_audio, "video": alpha_video, "text": alpha_text}
        self.anchor, self.consensus_weight = anchor, consensus_weight
        self.name = variant
        self.features = (audio,) if video is None else (audio, video)
        available = {"audio", "text"} | ({"video"} if video is not None else set())
        self.stages = plan_stages(variant, available, anchor)  # checks the variant fits
        self.model: Heads | None = None
        self._stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def validate_options(cls, options: dict) -> list[str]:
        problems = super().validate_options(options)
        variant = options.get("variant", "mc3")
        if variant not in VARIANTS:
            problems.append(f"option 'variant' must be one of {sorted(VARIANTS)}, not {variant!r}")
        if options.get("anchor", "audio") not in MODALITIES:
            problems.append(f"option 'anchor' must be one of {list(MODALITIES)}")
        for key in ("tau", "alpha_video", "alpha_text", "alpha_audio"):
            if key in options and not options[key] > 0:
                problems.append(f"option {key!r} must be > 0, not {options[key]!r}")
        if options.get("consensus_weight", 0) < 0:
            problems.append("option 'consensus_weight' must be ≥ 0")
        return problems

    @property
    def heads(self) -> tuple[str, ...]:
        """Modalities this configuration trains a head for (those of its stages' pairs)."""
        used = {m for s in self.stages for m in s.modalities()}
        return tuple(m for m in MODALITIES if m in used)

    # --- inputs --------------------------------------------------------------------------

    def _raw(self, batch: Batch, modality: str) -> np.ndarray | None:
        name = {"audio": self.audio, "video": self.video, "text": NARRATION}[modality]
        if name is None or name not in batch.features:
            return None
        x = np.asarray(batch.features[name], dtype=np.float32)
        return x.mean(axis=1) if x.ndim == 3 else x  # [N, T, D] frames → clip mean

    def _tensor(self, modality: str, x: np.ndarray) -> torch.Tensor:
        if modality in self._stats:
            mean, std = self._stats[modality]
            x = (x - mean) / std
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def _train_language(self, train: Batch, classes: Classes | None) -> tuple[np.ndarray, str]:
        narration = self._raw(train, "text")
        if narration is not None:
            return narration, "narration"
        if train.labels is None or classes is None:
            raise DataError(
                "mc3: the training clips have neither narration embeddings (feature "
                f"{NARRATION!r}) nor class labels to take the language from"
            )
        index = {n: i for i, n in enumerate(classes.names)}
        missing = sorted({y for y in train.labels if y not in index})
        if missing:
            raise DataError(f"mc3: no class embedding for training labels {missing[:5]}")
        rows = [index[y] for y in train.labels]
        return classes.embeddings[rows].astype(np.float32), "class embeddings"

    # --- training ------------------------------------------------------------------------

    def fit(self, train, train_classes, dev, dev_classes, seed: int = 0) -> dict:
        """Train the variant's stages on ``train`` (final checkpoint; see the module docstring).

        Returns:
            ``{"variant", "language", "modalities", "stages": [{name, pairs, consensus,
            frozen, epochs, loss, epoch_seconds}], "epoch_seconds", "dev_score"?}``.
        """
        raw = {m: self._raw(train, m) for m in ("audio", "video")}
        if raw["audio"] is None:
            train.get(self.audio)  # raises the "this method needs ..." ConfigError
        raw["text"], language = self._train_language(train, train_classes)
        present = {m for m, x in raw.items() if x is not None}
        hint = f" (the data has no {self.video!r} feature)" if raw["video"] is None else ""
        stages = plan_stages(self.variant, present, self.anchor, hint)
        self.stages = stages
        modalities = [m for m in self.heads if m in present]
        self._stats = {
            m: (raw[m].mean(axis=0), raw[m].std(axis=0) + 1e-6)
            for m in ("audio", "video")
            if m in modalities
        }
        inputs = {m: self._tensor(m, raw[m]) for m in modalities}
        with seeded(seed):
            self.model = Heads({m: inputs[m].shape[1] for m in modalities}, self.dim)
        small = sum(p.numel() for p in self.model.parameters()) < SMALL_MODEL_PARAMS
        logs = []
        with torch_threads(1 if small else None), seeded(seed) as gen:
            for stage in stages:
                logs.append(self._train_stage(stage, inputs, gen))
        log = {
            "variant": self.variant,
            "language": language,
            "modalities": modalities,
            "stages": logs,
            "epoch_seconds": [s for st in logs for s in st["epoch_seconds"]],
        }
        if dev is not None and dev_classes is not None and "text" in modalities:
            scores = self.score(dev, dev_classes)
            log["dev_score"] = self.dev_score(scores, dev.labels, dev_classes.names)
        return log

    def stage_loss(self, stage: Stage, emb: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of ``stage`` on one batch of embeddings (Eq. 1/3/4)."""
        loss = torch.zeros(())
        if stage.pairs:
            loss = loss + contrastive_loss(emb, ordered_pairs(stage.pairs), self.tau)
        if stage.consensus and self.consensus_weight > 0:
            loss = loss + self.consensus_weight * consensus_loss(emb, self.anchor, self.alphas)
        return loss

    def _train_stage(self, stage: Stage, inputs: dict[str, torch.Tensor], gen) -> dict:
        used = stage.modalities() | (set(inputs) if stage.consensus else set())
        trained = [m for m in inputs if m in used and m not in stage.frozen]
        params = [p for m in trained for p in self.model.proj[m].parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        n = len(next(iter(inputs.values())))
        epochs = self.epochs * stage.epoch_factor
        losses, seconds = [], []
        self.model.train()
        for _ in range(epochs):
            start, total = time.perf_counter(), 0.0
            order = torch.randperm(n, generator=gen)
            for lo in range(0, n, self.batch_size):
                idx = order[lo : lo + self.batch_size]
                if len(idx) == 1 and n > 1:
                    continue  # InfoNCE of one sample has no negatives
                emb = {}
                for m in used:
                    if m in stage.frozen:
                        with torch.no_grad():
                            emb[m] = self.model.embed(m, inputs[m][idx])
                    else:
                        emb[m] = self.model.embed(m, inputs[m][idx])
                loss = self.stage_loss(stage, emb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / max(1, n))
            seconds.append(time.perf_counter() - start)
        self.model.eval()
        return {
            "name": stage.name,
            "pairs": ["-".join(p) for p in stage.pairs],
            "consensus": stage.consensus,
            "frozen": list(stage.frozen),
            "trained": trained,
            "epochs": epochs,
            "loss": losses,
            "epoch_seconds": seconds,
        }

    # --- inference -----------------------------------------------------------------------

    def _require_model(self) -> Heads:
        if self.model is None:
            raise RuntimeError(f"{self.variant}: fit() must run before score() or embed()")
        return self.model

    def embed(self, batch: Batch) -> dict[str, np.ndarray]:
        """Unit-norm ``[N, d]`` embeddings of each modality this model has a head for and
        ``batch`` provides: ``audio``, ``video`` and ``text`` (from ``features["narration"]``)."""
        model = self._require_model()
        out = {}
        with torch.no_grad():
            for m in model.proj:
                x = self._raw(batch, m)
                if x is not None:
                    out[m] = model.embed(m, self._tensor(m, x)).numpy()
        return out

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]`` logits ``cos(E_a(audio), E_l(class embedding)) / τ``."""
        model = self._require_model()
        if "text" not in model.proj:
            raise ConfigError(
                f"method {self.variant!r} has no language head, so it cannot score classes; "
                "use its embeddings (audio-video discovery/retrieval) or another variant"
            )
        audio = self._raw(batch, "audio")
        if audio is None:
            batch.get(self.audio)  # raises the "this method needs ..." ConfigError
        with torch.no_grad():
            a = model.embed("audio", self._tensor("audio", audio))
            text = torch.from_numpy(np.asarray(classes.embeddings, dtype=np.float32))
            return (a @ model.embed("text", text).T / self.tau).numpy()

    def config(self) -> dict:
        return {
            "variant": self.variant,
            "audio": self.audio,
            "video": self.video,
            "dim": self.dim,
            "tau": self.tau,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "alpha_video": self.alphas["video"],
            "alpha_text": self.alphas["text"],
            "alpha_audio": self.alphas["audio"],
            "anchor": self.anchor,
            "consensus_weight": self.consensus_weight,
            "optimizer": "adam",
            "checkpoint": "final",
            "stages": [
                {
                    "name": s.name,
                    "pairs": ["-".join(p) for p in s.pairs],
                    "consensus": s.consensus,
                    "frozen": list(s.frozen),
                    "epochs": self.epochs * s.epoch_factor,
                }
                for s in self.stages
            ],
        }


@METHODS.register("mc3")
def _make_mc3(**kwargs) -> MC3:
    return MC3(**kwargs)


def _register(variant: str) -> None:
    @METHODS.register(variant, fixed=("variant",))
    def _make(**kwargs) -> MC3:
        return MC3(variant=variant, **kwargs)


for _variant in VARIANTS:
    if _variant != "mc3":
        _register(_variant)
