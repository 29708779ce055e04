"""MC3 training cost: seconds per epoch of every Table-2 variant on frozen features.

Needs no data and no models: ``N`` synthetic clips (default 10,000) with seeded random features
of the offline encoders' sizes — audio ``[N, 512]`` (aiSFX), video ``[N, 1280]``
(EfficientNet-Lite0), narration ``[N, 384]`` (MiniLM, unit rows) — and every variant fitted with
the paper's settings (Adam, lr 3e-5, batch 256; ``--epochs`` per stage, default 2). The figure
is the method's own log: ``epoch_seconds`` (wall time of each epoch, both stages), reported as
the median. One torch thread (harken's training default for small heads).

Usage::

    python benchmarks/mc3_train.py [--clips 10000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from harken.methods.base import Batch, get_method
from harken.methods.mc3 import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    text = rng.standard_normal((args.clips, 384)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    batch = Batch(
        {
            "aisfx": rng.standard_normal((args.clips, 512)).astype(np.float32),
            "efficientnet-lite0": rng.standard_normal((args.clips, 1280)).astype(np.float32),
            "narration": text,
        },
        None,
    )
    out = {"clips": args.clips, "epochs_per_stage": args.epochs, "variants": {}}
    for name in VARIANTS:
        method = get_method(name, epochs=args.epochs)
        t = time.perf_counter()
        log = method.fit(batch, None, None, None, 0)
        total = time.perf_counter() - t
        secs = log["epoch_seconds"]
        out["variants"][name] = {
            "epoch_s_median": round(float(np.median(secs)), 3),
            "epochs": len(secs),
            "fit_s": round(total, 2),
        }
        print(name, out["variants"][name], file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
