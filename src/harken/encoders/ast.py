"""Audio Spectrogram Transformer (``ast`` / ``ast:<model id or folder>``), 768-d.

Default checkpoint: ``MIT/ast-finetuned-audioset-10-10-0.4593`` (AST fine-tuned on AudioSet),
the audio encoder of Gebhard et al. (2024), whose §3 takes "temporal averaging" of its
768-d outputs: the clip embedding is the mean of the last hidden states over all tokens
(the two [CLS]/[DIST] tokens and every patch token).

Pre-processing is the checkpoint's own ``ASTFeatureExtractor`` (16 kHz, 128 Kaldi-compatible
log-mel bins, 10 ms hop, padded or cut to ``max_length`` = 1024 frames ≈ 10.24 s, normalised
with the AudioSet mean/std). Clips longer than that are never cut: the clip policy splits them
into 10.24 s windows (hop 5.12 s, last window at the clip's end) whose embeddings are averaged.
The weights come from the Hugging Face hub; offline, pass a local ``save_pretrained`` folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders._hf import chunks, load_or_unavailable, masked_mean, progress
from harken.encoders.base import ENCODERS, windowed_mean, windowed_mean_stream
from harken.encoders.device import OnDevice, device_config, to_numpy

DEFAULT_MODEL = "MIT/ast-finetuned-audioset-10-10-0.4593"
SAMPLE_RATE = 16000
MAX_SECONDS = 10.24  # 1024 frames × 10 ms
MIN_SECONDS = 0.025  # one 25 ms analysis frame


class AstEncoder(OnDevice):
    """AST embeddings: mean of the last hidden states over tokens, windowed over long clips.

    Args:
        model: Hub id or local folder holding an ``ASTModel`` and its ``ASTFeatureExtractor``.
        policy: Clip policy; default pads clips under 25 ms and windows clips over 10.24 s.
        batch_size: Windows per forward pass.
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    modality = "audio"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        policy: ClipPolicy | None = None,
        batch_size: int = 8,
        device: str | None = None,
    ) -> None:
        self._set_device(device)
        self.model_id = model
        self.name = "ast" if model == DEFAULT_MODEL else f"ast:{model}"
        self.policy = policy or ClipPolicy(min_seconds=MIN_SECONDS, max_seconds=MAX_SECONDS)
        self.batch_size = batch_size
        self._dim = 768 if model == DEFAULT_MODEL else None
        self._model = None
        self._extractor = None

    @property
    def dim(self) -> int:
        """Hidden size of the model (read from its config when not the default checkpoint)."""
        if self._dim is None:
            self._dim = int(self._load()[1].config.hidden_size)
        return self._dim

    def config(self) -> dict:
        return {
            "name": self.name,
            "model": self.model_id,
            "pooling": "mean of last hidden states over all tokens",
            "policy": self.policy.describe(),
            **device_config(self.device),
        }

    def _load(self):
        if self._model is not None:
            return self._extractor, self._model
        from transformers import ASTFeatureExtractor, ASTModel

        self._extractor = load_or_unavailable(
            ASTFeatureExtractor.from_pretrained, self.model_id, "AST feature extractor"
        )
        model = load_or_unavailable(ASTModel.from_pretrained, self.model_id, "AST model")
        model.eval()
        self._model = model
        return self._extractor, self._model

    def _embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        extractor, model = self._load()
        device = self.device
        model.to(device)
        out = []
        batches = list(chunks(windows, self.batch_size))
        with torch.no_grad():
            for batch in progress(batches, len(batches), "ast", len(windows)):
                feats = extractor(
                    [np.asarray(w, dtype=np.float32) for w in batch],
                    sampling_rate=SAMPLE_RATE,
                    return_tensors="pt",
                ).to(device)
                hidden = model(**feats).last_hidden_state
                out.append(to_numpy(masked_mean(hidden, None)))
        return np.concatenate(out)

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Embed mono 16 kHz waveforms.

        Args:
            batch: Waveforms at :attr:`sample_rate`, any lengths.

        Returns:
            float32 ``[N, dim]``: per clip, the mean over its policy windows of the token-mean
            of AST's last hidden states.
        """
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        return windowed_mean(self._embed_windows, batch, self.policy, self.sample_rate)

    def embed_stream(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """One clip's embedding from consecutive 16 kHz mono blocks: the same policy windows
        as :meth:`embed`, cut as they arrive; the mean equals :meth:`embed`'s up to float
        rounding.

        Returns:
            float32 ``[dim]``.
        """
        return windowed_mean_stream(
            self._embed_windows, blocks, self.policy, self.sample_rate, self.batch_size
        )


@ENCODERS.register("ast")
def _make_ast(spec: str | None = None, **kwargs) -> AstEncoder:
    return AstEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)
