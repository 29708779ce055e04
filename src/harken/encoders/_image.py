"""Helpers shared by the image encoders: input validation and the resize + centre-crop front end.

Image encoders take RGB ``uint8`` frames (``[H, W, 3]``, any sizes) as produced by
:func:`harken.data.video.read_frames`. The front end is deterministic (no random crops): the
shorter side is resized to the model's size (aspect ratio kept, antialiased), the centre square
is cropped, and the result is rounded to the 0–255 grid of an 8-bit image, as the PIL pipelines
of the reference implementations produce.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_frames(batch: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Validate image-encoder input: a sequence of ``uint8 [H, W, 3]`` RGB frames, or one
    ``uint8 [N, H, W, 3]`` array.

    Raises:
        ValueError: a frame is not ``uint8`` or not ``[H, W, 3]``; the message gives its index.
    """
    if isinstance(batch, np.ndarray):
        if batch.ndim != 4:
            raise ValueError(
                f"expected RGB frames as a uint8 [N, H, W, 3] array, got shape {batch.shape}"
            )
        batch = list(batch)
    frames = []
    for i, frame in enumerate(batch):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"frame {i}: expected an RGB uint8 [H, W, 3] image, got {frame.dtype} "
                f"{frame.shape} (read videos with harken.data.video.read_frames)"
            )
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"frame {i}: empty image {frame.shape}")
        frames.append(frame)
    return frames


def resize_centre_crop(frame: np.ndarray, size: int, mode: str, crop: int | None = None):
    """One RGB frame → float32 torch tensor ``[3, crop, crop]`` with values in 0–255.

    The shorter side becomes ``size`` (the longer one ``int(long · size / short)``, as
    torchvision and transformers compute it) by ``torch.nn.functional.interpolate`` with
    ``antialias=True`` (``mode`` ``"bilinear"`` or ``"bicubic"``, ``align_corners=False``);
    values are rounded and clipped to 0–255, like an 8-bit resized image. Then the central
    ``crop × crop`` square (default ``size``) is cut, offsets ``(h − crop) // 2`` (zero-padded
    symmetrically first if ``crop > size``, as transformers' ``center_crop`` does).
    """
    import torch

    crop = size if crop is None else crop
    h, w = frame.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).to(torch.float32)
    if min(h, w) != size:
        if h <= w:
            h, w = size, max(size, int(w * size / h))
        else:
            h, w = max(size, int(h * size / w)), size
        x = torch.nn.functional.interpolate(
            x[None], size=(h, w), mode=mode, align_corners=False, antialias=True
        )[0]
        x = x.round().clamp(0.0, 255.0)
    if crop > min(h, w):
        pad_h, pad_w = max(0, crop - h), max(0, crop - w)
        x = torch.nn.functional.pad(
            x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        )
        h, w = x.shape[1:]
    top, left = (h - crop) // 2, (w - crop) // 2
    return x[:, top : top + crop, left : left + crop]
