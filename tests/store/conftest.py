"""Real Kitchen20 clips and a tiny deterministic encoder honouring the encoder contract."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harken.data.audio import ClipPolicy
from harken.data.manifest import Clip, Manifest

KITCHEN20 = Path(__file__).resolve().parents[3] / "shared" / "data" / "kitchen20"


class StatsEncoder:
    """Embeds a wave as ``[mean, std, rms]``; counts calls and can fail after some of them."""

    modality = "audio"
    dim = 3
    policy = ClipPolicy()

    def __init__(
        self, sample_rate: int = 16000, fail_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.name = "test/stats"
        self.sample_rate = sample_rate
        self.fail_after = fail_after
        self.delay = delay  # seconds per embed() call, to catch a process mid-way
        self.calls: list[int] = []  # batch size of each embed() call

    def config(self) -> dict:
        return {"name": self.name, "sample_rate": self.sample_rate, "features": "mean,std,rms"}

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("encoder crashed (simulated)")
        self.calls.append(len(batch))
        time.sleep(self.delay)
        return np.array(
            [[w.mean(), w.std(), np.sqrt(np.mean(w.astype(np.float64) ** 2))] for w in batch],
            dtype=np.float32,
        )


def kitchen20_first(n: int) -> list[Clip]:
    """The first ``n`` clips of the real Kitchen20 labels file (in file order)."""
    with open(KITCHEN20 / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    return [Clip(Path(r["path"]).stem, KITCHEN20 / r["path"], {"label": r["label"]}) for r in rows]


@pytest.fixture(scope="session")
def kitchen20_clips() -> list[Clip]:
    """10 clips from 10 different classes of the real Kitchen20 data."""
    labels = KITCHEN20 / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"real data not found at {KITCHEN20}")
    with open(labels, newline="") as f:
        rows = list(csv.DictReader(f))
    seen: dict[str, dict] = {}
    for row in rows:
        seen.setdefault(row["label"], row)
    clips = [
        Clip(Path(r["path"]).stem, KITCHEN20 / r["path"], {"label": r["label"]})
        for r in list(seen.values())[:10]
    ]
    return Manifest("kitchen20", clips).clips


@pytest.fixture(scope="module")
def ray_cluster():
    """A real two-node Ray cluster on loopback (``ray start``: a head and a worker node, one CPU
    each, bounded ports); yields it at once, starting in the background (``.address``, the
    head's ``127.0.0.1:PORT``, waits until both nodes are up) and always stops both nodes,
    killing exactly the processes they started."""
    pytest.importorskip(
        "ray", reason="Ray is not installed: pip install 'harken[ray]' (the dev extra has it)"
    )
    from .ray_cluster import start_cluster

    cluster = start_cluster(nodes=2, cpus_per_node=1, background=True)  # ready on .address
    try:
        yield cluster
    finally:
        cluster.stop()
