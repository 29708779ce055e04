"""Joint audio–text spaces: one scorer for zero-shot classification *and* retrieval.

A joint space maps an audio encoder's output and a text encoder's output to vectors whose inner
product is the compatibility of a clip and a text:

    s(x, t) = λ · a(x)ᵀ u(t)

* ``clap`` / ``msclap`` — CLAP (Elizalde et al., 2023, §2.3; LAION-CLAP): ``a``/``u`` are the
  L2-normalised audio/text embeddings of the joint space and ``λ`` the model's learnt logit scale
  (``exp τ``), so ``s`` is the logit of the paper's Eq. 1 ``C = τ (E_t · E_aᵀ)``.
* ``bridge`` — harken's offline default with no CLAP weights: the tagger's label space bridges
  audio and text (:mod:`harken.methods.bridge`, ConSE with φ(s) = max(s − δ, 0)^γ):
  ``a(x)`` = the clip's top-``T`` tagger posteriors, normalised to sum 1 (zero elsewhere), and
  ``u(t)_k = φ(cos(s_k, e_t))`` over the tagger's ``K`` label-name embeddings ``s_k``, so
  ``a(x)ᵀ u(t)`` is exactly the bridge/ConSE score (Norouzi et al. 2014, Eq. 1). ``λ`` is None:
  bridge scores are not calibrated logits.

Because scores are inner products, one persistent index of ``a(x)`` vectors serves text→audio
search (query ``u(t)``) and audio→audio search (query :meth:`JointSpace.audio_query_vectors`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from harken.encoders.base import Encoder, get_encoder
from harken.methods.conse import l2_normalize, label_affinity, top_t_weights
from harken.registry import Registry


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z_c) / Σ_c' exp(z_c')`` (single-label class probabilities)."""
    import scipy.special  # here, not at the top: `import harken.api` stays light

    return scipy.special.softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise ``1 / (1 + exp(−z))`` (independent multi-label probabilities)."""
    import scipy.special

    return scipy.special.expit(np.asarray(logits, dtype=np.float64))


class JointSpace(ABC):
    """An audio encoder and a text encoder whose (mapped) outputs compare by inner product.

    Attributes:
        spec: The registry spec that rebuilds this space (``"bridge"``, ``"clap:<id>"``).
        audio_name: Registry name of the audio encoder (also its feature-store name).
        text_name: Registry name of the text encoder.
        logit_scale: ``λ`` (None when the scores are not calibrated logits).
        independent_logits: Whether the logits also give independent per-label probabilities.
    """

    spec: str
    audio_name: str
    text_name: str
    logit_scale: float | None = None
    #: Whether ``sigmoid(λ · a(x)ᵀ u(t))`` is a meaningful per-label probability on its own
    #: (CLAP's learnt logits), so several labels can hold at once. A space whose ``λ`` is only a
    #: softmax temperature over the candidates (the calibrated bridge) has no such reading.
    independent_logits: bool = False

    def __init__(self) -> None:
        self._encoders: dict[str, Encoder] = {}

    def encoder(self, name: str) -> Encoder:
        if name not in self._encoders:
            self._encoders[name] = get_encoder(name)
        return self._encoders[name]

    @property
    def audio_encoder(self) -> Encoder:
        return self.encoder(self.audio_name)

    @property
    def text_encoder(self) -> Encoder:
        return self.encoder(self.text_name)

    @abstractmethod
    def audio_vectors(self, features: np.ndarray) -> np.ndarray:
        """``a(x)`` for audio-encoder outputs ``[N, D_audio]`` → ``[N, D]``."""

    @abstractmethod
    def text_vectors(self, text_embeddings: np.ndarray) -> np.ndarray:
        """``u(t)`` for text embeddings or class-embedding means ``[Q, D_text]`` → ``[Q, D]``."""

    def audio_query_vectors(self, features: np.ndarray) -> np.ndarray:
        """Query vectors for audio→audio search (default: ``a(x)``, unit norm)."""
        return l2_normalize(self.audio_vectors(features)).astype(np.float32)

    def scores(self, features: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
        """``[N, Q]`` compatibilities ``λ · a(x)ᵀ u(t)`` (``λ = 1`` if ``logit_scale`` is None)."""
        s = self.audio_vectors(features).astype(np.float64) @ self.text_vectors(text_embeddings).T
        return (s * (self.logit_scale or 1.0)).astype(np.float32)

    def config(self) -> dict:
        """Everything that changes the vectors (stored in index and run manifests)."""
        return {
            "space": self.spec,
            "audio": self.audio_encoder.config(),
            "text": self.text_encoder.config(),
            "logit_scale": self.logit_scale,
        }


class BridgeSpace(JointSpace):
    """The label bridge as a joint space (see the module docstring).

    Args:
        tagger: Audio tagger encoder with ``class_names`` (default ``yamnet``).
        text: Text encoder of label names and queries (default ``minilm``).
        top_t, sim_threshold, sim_power: ``T``, ``δ``, ``γ`` — the bridge's a-priori defaults.
    """

    def __init__(
        self,
        tagger: str = "yamnet",
        text: str = "minilm",
        top_t: int = 50,
        sim_threshold: float = 0.3,
        sim_power: float = 2.0,
    ) -> None:
        super().__init__()
        self.spec = "bridge"
        self.audio_name, self.text_name = tagger, text
        self.top_t, self.sim_threshold, self.sim_power = top_t, sim_threshold, sim_power
        self._labels: np.ndarray | None = None

    def label_embeddings(self) -> np.ndarray:
        """``[K, D_text]`` text embeddings of the tagger's label names (computed once)."""
        if self._labels is None:
            names = list(self.audio_encoder.class_names)
            self._labels = np.asarray(self.text_encoder.embed(names), dtype=np.float64)
        return self._labels

    def audio_vectors(self, features: np.ndarray) -> np.ndarray:
        return top_t_weights(features, self.top_t).astype(np.float32)

    def text_vectors(self, text_embeddings: np.ndarray) -> np.ndarray:
        phi = label_affinity(
            self.label_embeddings(), text_embeddings, self.sim_threshold, self.sim_power
        )
        return phi.T.astype(np.float32)

    def config(self) -> dict:
        return {
            **super().config(),
            "top_t": self.top_t,
            "sim_threshold": self.sim_threshold,
            "sim_power": self.sim_power,
        }


class ClapSpace(JointSpace):
    """A CLAP model's own joint space (``clap:<id>`` or ``msclap:<version>``).

    The audio and text encoders return L2-normalised joint-space embeddings and share one
    loaded model; ``λ`` is the model's logit scale.

    Args:
        family: ``"clap"`` (transformers ``ClapModel``) or ``"msclap"`` (MS-CLAP).
        model: Hub id, folder or version (None: the family's default).
    """

    def __init__(self, family: str = "clap", model: str | None = None) -> None:
        super().__init__()
        suffix = f":{model}" if model else ""
        self.spec = f"{family}{suffix}"
        self.audio_name = f"{family}{suffix}"
        self.text_name = f"{family}-text{suffix}"
        self.independent_logits = True

    @property
    def logit_scale(self) -> float:  # type: ignore[override]
        return float(self.audio_encoder.logit_scale)

    def audio_vectors(self, features: np.ndarray) -> np.ndarray:
        return l2_normalize(features).astype(np.float32)

    def text_vectors(self, text_embeddings: np.ndarray) -> np.ndarray:
        return l2_normalize(text_embeddings).astype(np.float32)


JOINT_SPACES: Registry[JointSpace] = Registry("joint space", options_from_return=True)


@JOINT_SPACES.register("bridge")
def _bridge(spec: str | None = None, **kwargs) -> BridgeSpace:
    if spec:
        kwargs.setdefault("tagger", spec)
    return BridgeSpace(**kwargs)


@JOINT_SPACES.register("clap")
def _clap(spec: str | None = None) -> ClapSpace:
    return ClapSpace("clap", spec)


@JOINT_SPACES.register("msclap")
def _msclap(spec: str | None = None) -> ClapSpace:
    return ClapSpace("msclap", spec)


def get_joint_space(spec: str = "bridge", **kwargs) -> JointSpace:
    """Create a joint space: ``bridge`` (offline default), ``clap[:<id|folder>]``,
    ``msclap[:<2023|weights.pth>]``."""
    return JOINT_SPACES.create(spec, **kwargs)
