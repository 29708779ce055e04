"""CLIP through transformers (``clip-image`` / ``clip-text``, ``:<model id or folder>``), 512-d.

CLIP (Radford et al., 2021, "Learning transferable visual models from natural language
supervision", ICML; arXiv:2103.00020) pairs an image tower (ViT) with a causal text transformer,
both projected into one joint space where ``logits_per_image = exp(logit_scale) · v̂·t̂``
(unit vectors v̂, t̂). ClipClap (Kurzendörfer et al., 2024) takes CLIP ViT-B/32 image
embeddings of each clip's middle frame and CLIP text embeddings of class names. Two encoders
share one ``CLIPModel`` per process (a module-level cache keyed by the resolved id or folder):

* ``clip-image[:<spec>]`` (image): ``get_image_features`` (pooled [CLS] token + visual
  projection), L2-normalised;
* ``clip-text[:<spec>]`` (text): ``get_text_features`` (end-of-text token + text projection),
  L2-normalised.

The default checkpoint is ``openai/clip-vit-base-patch32`` (a hub download: offline, pass a
local ``save_pretrained`` folder holding the model, its tokenizer and
``preprocessor_config.json``).

Pre-processing is CLIP's, done here with torch because transformers' ``CLIPImageProcessor``
needs PIL or torchvision: RGB ``uint8`` frames; the shorter side resized to the processor's
``size`` (224) with its ``resample`` filter (3 = bicubic; antialiased, rounded to 8 bits like
PIL), the central ``crop_size`` square cut, ``x = (rgb · rescale_factor − mean) / std`` with
the checkpoint's ``image_mean``/``image_std``. A folder without ``preprocessor_config.json`` gets
OpenAI CLIP's values with the model's ``image_size`` (recorded in :meth:`config`). Texts are
padded and truncated to the model's context (``max_position_embeddings``, 77), so a text embeds
identically alone or in a batch.

Weights load with ``output_loading_info=True``: any missing, unexpected or mismatched key
raises :class:`~harken.errors.ModelUnavailableError` naming them. Models run in eval mode under
``torch.inference_mode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
from harken.encoders._image import as_frames, resize_centre_crop
from harken.encoders.base import ENCODERS
from harken.encoders.device import to_numpy
from harken.errors import ConfigError

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
#: Joint-space size of the default checkpoint, known without loading it.
DEFAULT_DIM = 512
#: OpenAI CLIP's normalisation (``CLIPImageProcessor`` defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: PIL resample codes of ``preprocessor_config.json`` → ``interpolate`` modes.
RESAMPLE_MODES = {2: "bilinear", 3: "bicubic"}

_CHECKPOINTS: dict[str, ClipCheckpoint] = {}


def image_settings(processor: dict | None, image_size: int) -> dict:
    """The image front end from a ``preprocessor_config.json`` dict (None: OpenAI defaults).

    Args:
        processor: The checkpoint's image-processor config, or None.
        image_size: The vision tower's input size (``vision_config.image_size``).

    Returns:
        ``{"size", "crop", "mode", "rescale", "mean", "std", "source"}``.

    Raises:
        ConfigError: a front end other than CLIP's (no resize or no centre crop, a resize to
            fixed height × width, an unknown resample filter) or a crop that is not the model's
            input size.
    """
    if processor is None:
        return {
            "size": image_size,
            "crop": image_size,
            "mode": "bicubic",
            "rescale": 1 / 255,
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
            "source": "OpenAI CLIP defaults (no preprocessor_config.json)",
        }
    if not processor.get("do_resize", True) or not processor.get("do_center_crop", True):
        raise ConfigError(
            f"image processor {processor}: harken runs CLIP's resize + centre-crop front end only"
        )
    size = processor.get("size", image_size)
    if isinstance(size, dict):
        if "shortest_edge" not in size:
            raise ConfigError(
                f"image processor size {size}: expected a shortest_edge resize (CLIP's)"
            )
        size = size["shortest_edge"]
    crop = processor.get("crop_size", size)
    if isinstance(crop, dict):
        crop = crop.get("height", size) if crop.get("height") == crop.get("width") else None
    if crop != image_size:
        raise ConfigError(
            f"image processor crop {processor.get('crop_size')} differs from the model's "
            f"{image_size}×{image_size} input; fix preprocessor_config.json"
        )
    resample = processor.get("resample", 3)
    if resample not in RESAMPLE_MODES:
        raise ConfigError(
            f"image processor resample={resample}: supported are "
            f"{', '.join(f'{k} ({v})' for k, v in RESAMPLE_MODES.items())}"
        )
    return {
        "size": int(size),
        "crop": int(crop),
        "mode": RESAMPLE_MODES[resample],
        "rescale": float(processor.get("rescale_factor", 1 / 255))
        if processor.get("do_rescale", True)
        else 1.0,
        "mean": list(processor.get("image_mean", CLIP_MEAN))
        if processor.get("do_normalize", True)
        else [0.0, 0.0, 0.0],
        "std": list(processor.get("image_std", CLIP_STD))
        if processor.get("do_normalize", True)
        else [1.0, 1.0, 1.0],
        "source": "preprocessor_config.json",
    }


class ClipCheckpoint:
    """One ``CLIPModel`` with its tokenizer and image front end, each loaded on first use.

    Use :func:`load_clip`, which caches one instance per resolved id, so that the image and text
    encoders of a process share the weights.

    Args:
        spec: Hub id or local folder, as the user gave it.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.resolved = resolve_model(spec)
        self._model = None
        self._revision: str | None = None
        self._tokenizer = None
        self._image = None

    @property
    def model(self):
        """The ``CLIPModel`` in eval mode.

        Raises:
            ModelUnavailableError: the checkpoint cannot be found or fetched, or its weights do
                not match the architecture (missing, unexpected or mismatched keys).
        """
        if self._model is None:
            from transformers import CLIPModel

            model, info = load_or_unavailable(
                lambda path, **options: CLIPModel.from_pretrained(
                    path, output_loading_info=True, **options
                ),
                self.spec,
                "CLIP model",
            )
            check_loading_info(self.spec, info, "CLIP checkpoint")
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
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)``: the scale of ``logits_per_image`` (and ``logits_per_text``)."""
        return float(self.model.logit_scale.detach().exp())

    @property
    def max_tokens(self) -> int:
        """The text tower's context length (77 for OpenAI CLIP)."""
        return int(self.model.config.text_config.max_position_embeddings)

    @property
    def tokenizer(self):
        """The checkpoint's (BPE) CLIP tokenizer."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = load_or_unavailable(
                AutoTokenizer.from_pretrained, self.spec, "CLIP tokenizer"
            )
        return self._tokenizer

    @property
    def image(self) -> dict:
        """The image front end (:func:`image_settings`) of the checkpoint."""
        if self._image is None:
            from transformers.image_processing_base import ImageProcessingMixin

            folder = Path(self.resolved)
            if folder.is_dir() and not (folder / "preprocessor_config.json").is_file():
                processor = None  # a model saved alone: OpenAI CLIP's front end
            else:
                processor = load_or_unavailable(
                    lambda path, **options: ImageProcessingMixin.get_image_processor_dict(
                        path, **options
                    )[0],
                    self.spec,
                    "CLIP image-processor config",
                )
            image_size = int(self.model.config.vision_config.image_size)
            self._image = image_settings(processor, image_size)
        return self._image


def load_clip(model: str = DEFAULT_MODEL) -> ClipCheckpoint:
    """The process-wide :class:`ClipCheckpoint` of ``model`` (loaded on first use).

    Args:
        model: Hub id (``"openai/clip-vit-base-patch32"``) or local ``save_pretrained`` folder.

    Returns:
        The shared checkpoint: the image and text encoders of one model use the same weights.
    """
    key = resolve_model(model)
    if key not in _CHECKPOINTS:
        _CHECKPOINTS[key] = ClipCheckpoint(model)
    return _CHECKPOINTS[key]


class _ClipBase(SharedCheckpointEncoder):
    """What the image and text encoders share: the checkpoint, its dimension and scale."""

    sample_rate = None
    default_model, default_dim = DEFAULT_MODEL, DEFAULT_DIM
    load = staticmethod(lambda model: load_clip(model))  # looked up at call time

    def __init__(self, model: str, name: str, batch_size: int, device: str | None) -> None:
        super().__init__(model, name, device)
        self.batch_size = batch_size

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)``: multiply image·text cosines by it to get transformers'
        ``logits_per_image`` (loads the model)."""
        return self.checkpoint().logit_scale


class ClipImageEncoder(_ClipBase):
    """CLIP image tower: unit-norm joint-space embeddings of RGB frames.

    Args:
        model: Hub id or local folder holding a ``CLIPModel`` and its ``preprocessor_config.json``.
        batch_size: Frames per forward pass.
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    modality = "image"

    def __init__(
        self, model: str = DEFAULT_MODEL, batch_size: int = 32, device: str | None = None
    ) -> None:
        name = "clip-image" if model == DEFAULT_MODEL else f"clip-image:{model}"
        super().__init__(model, name, batch_size, device)

    def config(self) -> dict:
        image = self.checkpoint().image
        return {
            **self._base_config(),
            "modality": "image",
            "input": f"RGB; shorter side to {image['size']} ({image['mode']}, antialiased, "
            f"8-bit rounded), centre crop {image['crop']}; x*{image['rescale']:.6g} normalised "
            f"with mean {image['mean']} std {image['std']} ({image['source']})",
            "pooling": "get_image_features ([CLS] pooler + visual projection), L2-normalised",
        }

    def preprocess(self, batch: Sequence[np.ndarray] | np.ndarray):
        """RGB ``uint8`` frames → ``pixel_values``, float32 torch ``[N, 3, crop, crop]``."""
        import torch

        image = self.checkpoint().image
        frames = as_frames(batch)
        x = torch.stack(
            [resize_centre_crop(f, image["size"], image["mode"], image["crop"]) for f in frames]
        )
        mean = torch.tensor(image["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(image["std"], dtype=torch.float32).view(1, 3, 1, 1)
        return (x * image["rescale"] - mean) / std

    def embed(self, batch: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embed RGB frames.

        Args:
            batch: RGB ``uint8 [H, W, 3]`` frames (any sizes) or one ``[N, H, W, 3]`` array.

        Returns:
            float32 ``[N, dim]``, unit rows.
        """
        import torch

        frames = as_frames(batch)
        if not frames:
            return np.zeros((0, self.dim), np.float32)
        device = self.device
        model = self.checkpoint().model.to(device)
        out = []
        parts = list(chunks(frames, self.batch_size))
        with torch.inference_mode():
            for part in progress(parts, len(parts), self.name, len(frames)):
                pixels = self.preprocess(part).to(device)
                emb = pooled(model.get_image_features(pixel_values=pixels))
                out.append(to_numpy(torch.nn.functional.normalize(emb, dim=-1)))
        return np.concatenate(out).astype(np.float32)


class ClipTextEncoder(_ClipBase):
    """CLIP text tower: unit-norm joint-space embeddings of texts.

    Args:
        model: Hub id or local folder holding a ``CLIPModel`` and its tokenizer.
        batch_size: Texts per forward pass.
        max_tokens: Pad and truncate texts to this many tokens (None: the model's context, 77).
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    modality = "text"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        max_tokens: int | None = None,
        device: str | None = None,
    ) -> None:
        name = "clip-text" if model == DEFAULT_MODEL else f"clip-text:{model}"
        super().__init__(model, name, batch_size, device)
        self._max_tokens = max_tokens

    @property
    def max_tokens(self) -> int:
        return self._max_tokens or self.checkpoint().max_tokens

    def config(self) -> dict:
        return {
            **self._base_config(),
            "modality": "text",
            "tokens": f"padded and truncated to {self.max_tokens}",
            "pooling": "get_text_features (end-of-text token + text projection), L2-normalised",
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


@ENCODERS.register("clip-image")
def _make_clip_image(spec: str | None = None, **kwargs) -> ClipImageEncoder:
    return ClipImageEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)


@ENCODERS.register("clip-text")
def _make_clip_text(spec: str | None = None, **kwargs) -> ClipTextEncoder:
    return ClipTextEncoder(spec or kwargs.pop("model", DEFAULT_MODEL), **kwargs)
