"""Generic Hugging Face encoders (``hf:<model id or folder>``): audio or text, by the checkpoint.

The modality is decided from the checkpoint itself: when ``AutoFeatureExtractor`` loads and
has a ``sampling_rate``, the model is an audio model (wav2vec2, HuBERT, AST, ...); otherwise it
is a text model read with ``AutoTokenizer``. Both go through ``AutoModel`` and are pooled as
the mean of the last hidden state over its tokens/frames (attention-masked for text):

* audio: each policy window is embedded on its own (no padding, so batching never changes a
  clip's result), at the extractor's sampling rate; long clips are windowed and averaged;
* text: batches padded to their longest text, mean over the non-padding tokens.

Encoder–decoder checkpoints (Whisper, T5) and models without ``last_hidden_state`` are not
supported. Use the dedicated backends (``ast``, ``sbert``) where one exists: they record the
model-specific choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders._hf import (
    chunks,
    hub_access,
    load_or_unavailable,
    masked_mean,
    progress,
    resolve_model,
)
from harken.encoders.base import ENCODERS, windowed_mean, windowed_mean_stream
from harken.encoders.device import OnDevice, device_config, to_numpy
from harken.errors import ConfigError


class HfEncoder(OnDevice):
    """A Hugging Face ``AutoModel`` with mean pooling of its last hidden state.

    Args:
        model: Hub id or local folder.
        policy: Clip policy for audio models (default: pad to 0.5 s, 10 s windows, hop 5 s).
        batch_size: Texts per forward pass (audio windows always go one at a time).
        max_tokens: Truncation length for text models.
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    def __init__(
        self,
        model: str,
        policy: ClipPolicy | None = None,
        batch_size: int = 32,
        max_tokens: int = 512,
        device: str | None = None,
    ) -> None:
        self._set_device(device)
        self.model_id = model
        self.name = f"hf:{model}"
        self.policy = policy or ClipPolicy(min_seconds=0.5, max_seconds=10.0)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model = None
        self._processor = None
        self._modality: str | None = None

    # Modality, rate and dimension come from the checkpoint, so they load it on first access.
    @property
    def modality(self) -> str:
        self._load()
        return self._modality

    @property
    def sample_rate(self) -> int | None:
        self._load()
        return int(self._processor.sampling_rate) if self._modality == "audio" else None

    @property
    def dim(self) -> int:
        config = self._load().config
        for attr in ("hidden_size", "d_model"):
            if getattr(config, attr, None):
                return int(getattr(config, attr))
        raise ConfigError(f"{self.model_id}: its config has no hidden_size; use another backend")

    def config(self) -> dict:
        cfg = {
            "name": self.name,
            "model": self.model_id,
            "modality": self.modality,
            "pooling": "mean of last hidden state (attention-masked for text)",
        }
        if self.modality == "audio":
            cfg["policy"] = self.policy.describe()
        else:
            cfg["max_tokens"] = self.max_tokens
        return {**cfg, **device_config(self.device)}

    def _load(self):
        if self._model is not None:
            return self._model
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoTokenizer

        load_or_unavailable(AutoConfig.from_pretrained, self.model_id, "model config")
        resolved = resolve_model(self.model_id)
        try:
            extractor = AutoFeatureExtractor.from_pretrained(resolved, **hub_access(resolved)[0])
        except (OSError, ValueError):  # no preprocessor_config.json: not an audio model
            extractor = None
        if extractor is not None and getattr(extractor, "sampling_rate", None):
            self._processor, self._modality = extractor, "audio"
        else:
            self._processor = load_or_unavailable(
                AutoTokenizer.from_pretrained, self.model_id, "tokenizer"
            )
            self._modality = "text"
        model = load_or_unavailable(AutoModel.from_pretrained, self.model_id, "model")
        model.eval()
        self._model = model
        return model

    def _embed_audio_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        device = self.device
        model = self._load().to(device)
        out = []
        with torch.no_grad():
            for wave in progress(windows, len(windows), self.name, len(windows)):
                inputs = self._processor(
                    np.asarray(wave, dtype=np.float32),
                    sampling_rate=self.sample_rate,
                    return_tensors="pt",
                ).to(device)
                out.append(to_numpy(masked_mean(model(**inputs).last_hidden_state, None)))
        return np.concatenate(out)

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        device = self.device
        model = self._load().to(device)
        out = []
        batches = list(chunks(texts, self.batch_size))
        with torch.no_grad():
            for batch in progress(batches, len(batches), self.name, len(texts)):
                tokens = self._processor(
                    list(batch),
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(device)
                hidden = model(**tokens).last_hidden_state
                out.append(to_numpy(masked_mean(hidden, tokens["attention_mask"])))
        return np.concatenate(out).astype(np.float32)

    def embed(self, batch: Sequence) -> np.ndarray:
        """Embed a batch of mono waveforms (audio models) or strings (text models).

        Args:
            batch: Waveforms at :attr:`sample_rate`, or texts.

        Returns:
            float32 ``[N, dim]`` mean-pooled last hidden states.
        """
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.modality == "audio":
            return windowed_mean(self._embed_audio_windows, batch, self.policy, self.sample_rate)
        return self._embed_texts([str(t) for t in batch])

    def embed_stream(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """One audio clip's embedding from consecutive mono blocks at :attr:`sample_rate`: the
        same policy windows as :meth:`embed`, cut as they arrive; the mean equals
        :meth:`embed`'s up to float rounding.

        Raises:
            ConfigError: the model embeds text, not audio.
        """
        if self.modality != "audio":
            raise ConfigError(f"{self.name} embeds text, not audio")
        return windowed_mean_stream(
            self._embed_audio_windows, blocks, self.policy, self.sample_rate
        )


@ENCODERS.register("hf")
def _make_hf(spec: str | None = None, **kwargs) -> HfEncoder:
    model = spec or kwargs.pop("model", None)
    if not model:
        raise ConfigError("the 'hf' encoder needs a model: hf:<hub id or folder>")
    return HfEncoder(model, **kwargs)
