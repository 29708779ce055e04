"""LAION-CLAP through transformers (``clap`` / ``clap-text``, ``:<model id or folder>``), 512-d.

LAION-CLAP (Wu et al., 2023, "Large-scale contrastive language-audio pretraining with feature
fusion and keyword-to-caption augmentation", ICASSP; arXiv:2211.06687) pairs an HTSAT audio
encoder with a RoBERTa text encoder; both are projected into one joint space where
``logits_per_audio = exp(logit_scale_a) · â·t̂`` (unit vectors â, t̂). Two encoders share one
``ClapModel`` per process (a small module-level cache keyed by the resolved id or folder):

* ``clap[:<spec>]`` (audio): ``get_audio_features``, L2-normalised, per policy window;
* ``clap-text[:<spec>]`` (text): ``get_text_features``, L2-normalised.

Both expose :attr:`logit_scale` = ``exp(logit_scale_a)``, the temperature transformers applies
to ``logits_per_audio`` (audio → text classification; ``logit_scale_t`` scales the transposed
``logits_per_text`` and is exposed as :attr:`logit_scale_text`). The default checkpoint is
``laion/clap-htsat-unfused``; ``laion/clap-htsat-fused``, ``laion/larger_clap_general`` or a
local ``save_pretrained`` folder (model + feature extractor + tokenizer) work the same way.

Pre-processing (deterministic; the known faults of the reference pipelines are avoided):

* audio arrives mono at the extractor's rate (48 kHz): :func:`harken.store.features.encode_clips`
  downmixes by the mean of the channels (never a concatenation of channels) and resamples
  with soxr;
* clips longer than the model's window (the extractor's ``max_length_s``, 10 s) never reach
  the extractor's random crop (``truncation="rand_trunc"``) nor its random three-crop fusion:
  the clip policy cuts them into 10 s windows (hop 5 s, last window at the clip's end), every
  window is embedded, and the clip embedding is the re-normalised mean of its windows'
  unit embeddings, ``e = normalize(mean_w normalize(f(w)))``;
* windows shorter than 10 s are padded as LAION-CLAP was trained, ``padding="repeatpad"``
  (tile the clip, then zero-pad to 10 s) — the checkpoint's own setting, passed explicitly;
* fused checkpoints (``enable_fusion``) get ``truncation="fusion"`` (the torchaudio-style HTK
  mel their fusion branch was trained on) and ``is_longer = False`` for every window: no
  window exceeds 10 s. transformers' extractor would otherwise flip ``is_longer`` to True for
  one *random* item of every batch without a long clip (as LAION-CLAP's own HTSAT did at
  inference), making an embedding depend on the random draw and on its batch-mates;
  unfused checkpoints get ``truncation="rand_trunc"``, whose only reachable branch for
  ≤ 10 s windows is the deterministic padding one (with the Slaney mel filters of
  torchlibrosa that LAION-CLAP computed inside the model);
* texts are tokenised as in LAION-CLAP training: padded and truncated to 77 tokens, so a text
  embeds identically alone or in a batch.

Weights load with ``output_loading_info=True``: any missing, unexpected or mismatched key
raises :class:`~harken.errors.ModelUnavailableError` naming them, instead of the silent
random initialisation of a ``strict=False`` load; no warnings are filtered. Models run in eval
mode under ``torch.inference_mode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders._hf import (
    SharedCheckpointEncoder,
    check_loading_info,
    chunks,
    folder_fingerprint,
    hub_commit,
    joint_text_embeddings,
    load_or_unavailable,
    pooled,
    progress,
    resolve_model,
)
from harken.encoders.base import ENCODERS, UnitWindowMean
from harken.encoders.device import to_numpy
from harken.errors import AudioError, ConfigError

DEFAULT_MODEL = "laion/clap-htsat-unfused"
#: Sample rate, window and joint-space size of the default checkpoint, known without loading it.
DEFAULT_SAMPLE_RATE = 48000
DEFAULT_WINDOW_SECONDS = 10.0
DEFAULT_DIM = 512
#: LAION-CLAP's text length (``tokenizer(..., padding="max_length", max_length=77)``).
TEXT_MAX_TOKENS = 77

_CHECKPOINTS: dict[str, ClapCheckpoint] = {}


class ClapCheckpoint:
    """One ``ClapModel`` with its feature extractor and tokenizer, each loaded on first use.

    Use :func:`load_clap`, which caches one instance per resolved id, so that the audio and text
    encoders of a process share the weights.

    Args:
        spec: Hub id or local folder, as the user gave it.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.resolved = resolve_model(spec)
        self._model = None
        self._revision: str | None = None
        self._extractor = None
        self._tokenizer = None

    @property
    def model(self):
        """The ``ClapModel`` in eval mode.

        Raises:
            ModelUnavailableError: the checkpoint cannot be found or fetched, or its weights do
                not match the architecture (missing, unexpected or mismatched keys).
        """
        if self._model is None:
            from transformers import ClapModel

            model, info = load_or_unavailable(
                lambda path, **options: ClapModel.from_pretrained(
                    path, output_loading_info=True, **options
                ),
                self.spec,
                "CLAP model",
            )
            check_loading_info(self.spec, info, "CLAP checkpoint")
            model.eval()
            if Path(self.resolved).is_dir():
                self._revision = f"folder-sha256:{folder_fingerprint(Path(self.resolved))}"
            else:
                self._revision = hub_commit(self.resolved)
            self._model = model
        return self._model

    @property
    def revision(self) -> str | None:
        """Hub commit of the loaded snapshot, or a content hash of a local folder."""
        _ = self.model
        return self._revision

    @property
    def fused(self) -> bool:
        """Whether the audio tower has LAION-CLAP's feature-fusion branch."""
        return bool(self.model.config.audio_config.enable_fusion)

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale_a)``: the scale of ``logits_per_audio`` (audio → text)."""
        return float(self.model.logit_scale_a.detach().exp())

    @property
    def logit_scale_text(self) -> float:
        """``exp(logit_scale_t)``: the scale of ``logits_per_text`` (text → audio)."""
        return float(self.model.logit_scale_t.detach().exp())

    @property
    def extractor(self):
        """The checkpoint's ``ClapFeatureExtractor`` (its JSON config only: no weights)."""
        if self._extractor is None:
            from transformers import ClapFeatureExtractor

            self._extractor = load_or_unavailable(
                ClapFeatureExtractor.from_pretrained, self.spec, "CLAP feature extractor"
            )
        return self._extractor

    @property
    def tokenizer(self):
        """The checkpoint's (RoBERTa) tokenizer."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = load_or_unavailable(
                AutoTokenizer.from_pretrained, self.spec, "CLAP tokenizer"
            )
        return self._tokenizer


def load_clap(model: str = DEFAULT_MODEL) -> ClapCheckpoint:
    """The process-wide :class:`ClapCheckpoint` of ``model`` (loaded on first use).

    Args:
        model: Hub id (``"laion/clap-htsat-unfused"``) or local ``save_pretrained`` folder.

    Returns:
        The shared checkpoint: the audio and text encoders of one model use the same weights.
    """
    key = resolve_model(model)
    if key not in _CHECKPOINTS:
        _CHECKPOINTS[key] = ClapCheckpoint(model)
    return _CHECKPOINTS[key]


class _ClapBase(SharedCheckpointEncoder):
    """What the audio and text encoders share: the checkpoint, its dimension and scales."""

    default_model, default_dim = DEFAULT_MODEL, DEFAULT_DIM
    load = staticmethod(lambda model: load_clap(model))  # looked up at call time

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale_a)``: multiply audio·text cosines by it to get transformers'
        ``logits_per_audio`` (loads the model)."""
        return self.checkpoint().logit_scale

    @property
    def logit_scale_text(self) -> float:
        """``exp(logit_scale_t)``, the scale of ``logits_per_text`` (loads the model)."""
        return self.checkpoint().logit_scale_text


class ClapAudioEncoder(UnitWindowMean, _ClapBase):
    """LAION-CLAP audio tower: unit-norm joint-space embeddings, windowed over long clips.

    Args:
        model: Hub id or local folder holding a ``ClapModel`` and its ``ClapFeatureExtractor``.
        policy: Clip policy; default: the model's window (10 s), hop half a window, no minimum
            (short clips are repeat-padded by the extractor). A policy whose windows exceed
            the model's window is refused.
        batch_size: Windows per forward pass.
        padding: Padding of windows shorter than the model's window; None: the checkpoint's
            own (``"repeatpad"`` for LAION-CLAP).
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    modality = "audio"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        policy: ClipPolicy | None = None,
        batch_size: int = 8,
        padding: str | None = None,
        device: str | None = None,
    ) -> None:
        name = "clap" if model == DEFAULT_MODEL else f"clap:{model}"
        super().__init__(model, name, device)
        self._policy = policy
        self.batch_size = batch_size
        self._padding = padding
        default = model == DEFAULT_MODEL
        self._sample_rate = DEFAULT_SAMPLE_RATE if default else None
        self._window_seconds = DEFAULT_WINDOW_SECONDS if default else None

    @property
    def sample_rate(self) -> int:
        """The extractor's rate: 48 kHz for LAION-CLAP (read from the checkpoint's extractor
        config unless the default model)."""
        if self._sample_rate is None:
            self._sample_rate = int(self.checkpoint().extractor.sampling_rate)
        return self._sample_rate

    @property
    def window_seconds(self) -> float:
        """The model's input length in seconds (the extractor's ``max_length_s``, 10 s)."""
        if self._window_seconds is None:
            extractor = self.checkpoint().extractor
            self._window_seconds = extractor.nb_max_samples / extractor.sampling_rate
        return self._window_seconds

    @property
    def policy(self) -> ClipPolicy:
        """Windows of the model's length, hop half a window; nothing is padded here (the
        extractor repeat-pads short windows)."""
        if self._policy is None:
            self._policy = ClipPolicy(
                min_seconds=0.0, max_seconds=self.window_seconds, long="window", hop_fraction=0.5
            )
        return self._policy

    def _settings(self) -> tuple[str, str]:
        """``(truncation, padding)`` passed to the extractor, decided by the checkpoint."""
        ckpt = self.checkpoint()
        truncation = "fusion" if ckpt.fused else "rand_trunc"
        return truncation, self._padding or ckpt.extractor.padding

    def config(self) -> dict:
        truncation, padding = self._settings()
        return {
            **self._base_config(),
            "modality": "audio",
            "sample_rate": self.sample_rate,
            "window_seconds": self.window_seconds,
            "fused": self.checkpoint().fused,
            "truncation": truncation,
            "padding": padding,
            "is_longer": "False for every window (no window exceeds the model's length)",
            "pooling": "get_audio_features per window, L2-normalised; clip = re-normalised "
            "mean over policy windows",
            "policy": self.policy.describe(),
        }

    def _embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-norm embeddings ``[W, dim]`` of windows no longer than the model's window."""
        import torch

        ckpt = self.checkpoint()
        extractor, model = ckpt.extractor, ckpt.model
        truncation, padding = self._settings()
        rate = int(extractor.sampling_rate)
        if rate != self.sample_rate or extractor.nb_max_samples != round(
            self.window_seconds * rate
        ):
            raise ConfigError(
                f"{self.model_id}: its feature extractor expects {rate} Hz and "
                f"{extractor.nb_max_samples / rate:g} s windows, not {self.sample_rate} Hz and "
                f"{self.window_seconds:g} s"
            )
        for w in windows:
            if len(w) == 0:
                raise AudioError("CLAP cannot embed an empty waveform (0 samples)")
            if len(w) > extractor.nb_max_samples:
                raise ConfigError(
                    f"a {len(w) / rate:.2f} s window exceeds CLAP's {self.window_seconds:g} s "
                    "input: the extractor would crop it at random; use a policy with "
                    f"max_seconds <= {self.window_seconds:g}"
                )
        device = self.device
        model.to(device)
        out = []
        batches = list(chunks(windows, self.batch_size))
        with torch.inference_mode():
            for batch in progress(batches, len(batches), self.name, len(windows)):
                feats = extractor(
                    [np.asarray(w, dtype=np.float32) for w in batch],
                    sampling_rate=rate,
                    truncation=truncation,
                    padding=padding,
                    return_tensors="pt",
                )
                # Every window fits the model: no fusion of crops, whatever the extractor drew.
                is_longer = torch.zeros((len(batch), 1), dtype=torch.bool, device=device)
                emb = pooled(
                    model.get_audio_features(
                        input_features=feats["input_features"].to(device, torch.float32),
                        is_longer=is_longer,
                    )
                )
                out.append(to_numpy(torch.nn.functional.normalize(emb, dim=-1)))
        return np.concatenate(out).astype(np.float32)


class ClapTextEncoder(_ClapBase):
    """LAION-CLAP text tower: unit-norm joint-space embeddings of texts.

    Args:
        model: Hub id or local folder holding a ``ClapModel`` and its tokenizer.
        batch_size: Texts per forward pass.
        max_tokens: Texts are padded and truncated to this many tokens (LAION-CLAP: 77).
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    modality = "text"
    sample_rate = None

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        max_tokens: int = TEXT_MAX_TOKENS,
        device: str | None = None,
    ) -> None:
        name = "clap-text" if model == DEFAULT_MODEL else f"clap-text:{model}"
        super().__init__(model, name, device)
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def config(self) -> dict:
        return {
            **self._base_config(),
            "modality": "text",
            "tokens": f"padded and truncated to {self.max_tokens}",
            "pooling": "get_text_features (first-token pooler + projection), L2-normalised",
        }

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            batch: Strings (batched internally, progress bar on long inputs).

        Returns:
            float32 ``[N, dim]``, unit rows.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        ckpt = self.checkpoint()
        return joint_text_embeddings(
            ckpt.model,
            ckpt.tokenizer,
            texts,
            self.batch_size,
            self.max_tokens,
            self.name,
            self.device,
        )


@ENCODERS.register("clap")
def _make_clap(spec: str | None = None, **kwargs) -> ClapAudioEncoder:
    return ClapAudioEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)


@ENCODERS.register("clap-text")
def _make_clap_text(spec: str | None = None, **kwargs) -> ClapTextEncoder:
    return ClapTextEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)
