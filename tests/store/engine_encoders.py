"""Test-only encoders registered in harken's encoder registry, so that worker processes of the
``process`` engine can rebuild them (their recipe imports this module first).

``test-stats`` embeds a wave as ``[mean, std, rms, length]``. With ``kill_samples`` it kills
its own *worker* process (never the test process) when it meets a wave of exactly that many
samples, at most ``kills`` times in all (counted as lines of the ``marker`` file) — the fault
the pool must survive. With ``log``, every embedded batch appends its waves' lengths (one line
per batch, from any process), so a test can count what was encoded, and where.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders.base import ENCODERS


class EngineStatsEncoder:
    modality = "audio"
    dim = 4
    sample_rate = 16000
    policy = ClipPolicy()

    def __init__(
        self, kill_samples: int = 0, marker: str = "", kills: int = 1, log: str = ""
    ) -> None:
        self.name = "test-stats"
        self.log = log
        self.kill_samples = kill_samples
        self.marker = marker
        self.kills = kills

    def config(self) -> dict:
        return {"name": self.name, "features": "mean,std,rms,length"}

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        for wave in batch:
            if self.kill_samples and len(wave) == self.kill_samples:
                self._maybe_die()
        if self.log:
            with open(self.log, "a") as f:
                f.write(" ".join(str(len(w)) for w in batch) + "\n")
        return np.array(
            [
                [w.mean(), w.std(), np.sqrt(np.mean(w.astype(np.float64) ** 2)), len(w)]
                for w in batch
            ],
            dtype=np.float32,
        )

    def _maybe_die(self) -> None:
        if multiprocessing.parent_process() is None:
            return  # the test process itself (local engine): never
        marker = Path(self.marker)
        done = len(marker.read_text().splitlines()) if marker.exists() else 0
        if done < self.kills:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)


if "test-stats" not in ENCODERS:
    ENCODERS.register("test-stats")(EngineStatsEncoder)
