"""A test-only encoder that Ray workers can rebuild: registered in harken's encoder registry
when this module is imported (the recipe imports it first in a worker, as ``store.ray_encoders``:
the test cluster's nodes have ``tests/`` on their path).

``test-ray-die`` kills the process it runs in, unless that is the test process itself
(``driver``), and appends the dying pid to ``marker`` first: a shard that always kills its
worker.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders.base import ENCODERS


class DyingEncoder:
    modality = "audio"
    dim = 1
    sample_rate = 16000
    policy = ClipPolicy()

    def __init__(self, driver: int = 0, marker: str = "") -> None:
        self.name = "test-ray-die"
        self.driver = driver
        self.marker = marker

    def config(self) -> dict:
        return {"name": self.name}

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        if os.getpid() != self.driver:
            with open(self.marker, "a") as f:
                f.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return np.zeros((len(batch), 1), np.float32)


if "test-ray-die" not in ENCODERS:
    ENCODERS.register("test-ray-die")(DyingEncoder)
