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
  ``u(t)_k = φ(cos(s_k, e_t))`` over the tagger's ``K`` label embeddings ``s_k``, so
  ``a(x)ᵀ u(t)`` is exactly the bridge/ConSE score (Norouzi et al. 2014, Eq. 1). ``λ`` is
  ``1/T`` of a temperature fitted offline for ``predict``'s configuration
  (:mod:`harken.methods.calibration`), so ``softmax(λ · a(x)ᵀu(t))`` over the candidates is a
  calibrated probability; for any other configuration ``λ`` is None (compatibilities only).

  ``BridgeSpace()``'s own defaults (plain label names, δ = 0.3, T = 50, γ = 2, fixed a priori)
  serve ``index``/``search``, whose text queries are embedded as typed. ``predict`` describes
  its labels with a prompt ensemble and uses ``label_text="sound", sim_threshold=0.518``
  (:func:`harken.api._model_settings`), chosen on text that is neither a test vocabulary nor
  test audio (``benchmarks/vocabulary.py``: the AudioSet ontology's 521 human-written class
  descriptions as queries, and ESC-50's class names with simulated tagger outputs), never on
  Kitchen20's or av-mini's classes: the text encoder ``minilm`` (ahead of USE and
  multilingual-e5 on both proxies); the tagger's labels put into the same sound templates as a
  user's labels, so both sides of the cosine are sentences of one form (description R@1 0.27 →
  0.36, MRR 0.39 → 0.48; ESC-50 accuracy 0.94 → 0.96); and ``δ = 0.518``: templated label
  texts share the templates' words, which lifts every cosine, so the a-priori δ = 0.3 for plain
  names (the 0.838 quantile of the cosines between distinct label names) is carried over as
  the same quantile of the templated labels' cosines. Texts embedded *without* templates sit
  below that δ (64–88 % of EPIC-SOUNDS / EPIC-KITCHENS class names typed raw bridge to no
  label at all), which is why ``search`` keeps the plain-name bridge.

Because scores are inner products, one persistent index of ``a(x)`` vectors serves text→audio
search (query ``u(t)``) and audio→audio search (query :meth:`JointSpace.audio_query_vectors`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from harken.encoders.base import Encoder, get_encoder
from harken.errors import ConfigError
from harken.knowledge.templates import HARKEN_SOUND_TEMPLATES
from harken.methods.conse import l2_normalize, label_affinity, top_t_weights
from harken.registry import Registry


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z_c) / Σ_c' exp(z_c')`` (single-label class probabilities), computed as
    ``exp(z_c − max z) / Σ exp(z_c' − max z)`` so that no term overflows (numpy only: a warm
    ``predict`` imports no scipy)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise ``1 / (1 + exp(−z))`` (independent multi-label probabilities), as
    ``exp(z) / (1 + exp(z))`` for ``z < 0`` so that no term overflows."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


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


LABEL_TEXTS = ("name", "sound")


def tagger_label_texts(names: Sequence[str], label_text: str) -> dict[str, list[str]]:
    """The texts that stand for each tagger label on the bridge's label side.

    * ``name`` — the label's display name as it is (``"Chopping (food)"``).
    * ``sound`` — the display name, first letter lower-cased unless the word is all capitals,
      put into the ``harken-sound`` templates (``"the sound of chopping (food)."``, ...): the
      same prompt ensemble a user's labels go through, so both sides of ``cos(s_k, e_t)`` are
      sentences of one form (CLIP's prompt-ensemble rule, Radford et al. 2021, §3.1.4, applied to
      the label side too).

    Args:
        names: The tagger's label names.
        label_text: One of :data:`LABEL_TEXTS`.

    Returns:
        ``{name: [text, ...]}``.

    Raises:
        ConfigError: for an unknown ``label_text``.
    """
    if label_text == "name":
        return {n: [n] for n in names}
    if label_text == "sound":
        return {n: [t.format(_lower_first(n)) for t in HARKEN_SOUND_TEMPLATES] for n in names}
    raise ConfigError(f"label_text must be one of {list(LABEL_TEXTS)}, not {label_text!r}")


def _lower_first(name: str) -> str:
    first = name.split(" ", 1)[0]
    return name if first.isupper() else name[:1].lower() + name[1:]


class BridgeSpace(JointSpace):
    """The label bridge as a joint space (see the module docstring).

    Args:
        tagger: Audio tagger encoder with ``class_names`` (default ``yamnet``).
        text: Text encoder of label names and queries (default ``minilm``).
        top_t, sim_threshold, sim_power: ``T``, ``δ``, ``γ`` — the bridge's a-priori defaults
            for plain label names (``predict`` uses ``δ = 0.518`` with ``label_text="sound"``;
            see the module docstring).
        label_text: How the tagger's labels are written on the label side (:data:`LABEL_TEXTS`;
            ``name``, the default, is the bridge of the experiments' ``conse``/``bridge``).
    """

    def __init__(
        self,
        tagger: str = "yamnet",
        text: str = "minilm",
        top_t: int = 50,
        sim_threshold: float = 0.3,
        sim_power: float = 2.0,
        label_text: str = "name",
    ) -> None:
        super().__init__()
        if label_text not in LABEL_TEXTS:
            raise ConfigError(f"label_text must be one of {list(LABEL_TEXTS)}, not {label_text!r}")
        self.spec = "bridge"
        self.audio_name, self.text_name = tagger, text
        self.top_t, self.sim_threshold, self.sim_power = top_t, sim_threshold, sim_power
        self.label_text = label_text
        self._labels: np.ndarray | None = None

    @property
    def logit_scale(self) -> float | None:  # type: ignore[override]
        """``1/T``: the temperature fitted offline for this exact configuration
        (:mod:`harken.methods.calibration`), or None when none was fitted for it."""
        from harken.methods.calibration import fitted_logit_scale

        return fitted_logit_scale(self.calibration_key())

    def label_embeddings(self) -> np.ndarray:
        """``[K, D_text]`` text embeddings of the tagger's labels (computed once): each label's
        texts (:func:`tagger_label_texts`) embedded, normalised and averaged."""
        if self._labels is None:
            names = list(self.audio_encoder.class_names)
            texts = tagger_label_texts(names, self.label_text)
            flat = [t for n in names for t in texts[n]]
            emb = l2_normalize(np.asarray(self.text_encoder.embed(flat), dtype=np.float64))
            owners = np.repeat(np.arange(len(names)), [len(texts[n]) for n in names])
            sums = np.zeros((len(names), emb.shape[1]))
            np.add.at(sums, owners, emb)
            self._labels = sums if self.label_text == "name" else l2_normalize(sums)
        return self._labels

    def audio_vectors(self, features: np.ndarray) -> np.ndarray:
        return top_t_weights(features, self.top_t).astype(np.float32)

    def text_vectors(self, text_embeddings: np.ndarray) -> np.ndarray:
        phi = label_affinity(
            self.label_embeddings(), text_embeddings, self.sim_threshold, self.sim_power
        )
        return phi.T.astype(np.float32)

    def calibration_key(self) -> dict:
        """Everything that changes the scores, without ``logit_scale`` (what a fitted
        temperature is valid for)."""
        return {
            "space": self.spec,
            "audio": self.audio_encoder.config(),
            "text": self.text_encoder.config(),
            "top_t": self.top_t,
            "sim_threshold": self.sim_threshold,
            "sim_power": self.sim_power,
            "label_text": self.label_text,
        }

    def config(self) -> dict:
        return {**self.calibration_key(), "logit_scale": self.logit_scale}


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
