"""Zero-shot classification speed on real Kitchen20 clips: warm latency and folder throughput.

* **latency**: one 5 s clip, ``N`` candidate labels (``--labels 10,100,1000``), warm — the
  backend is loaded and has classified once before the clock starts — timed through
  ``harken.api.predict`` (decode, resample, embed the clip, describe + embed the ``N`` labels,
  score, rank). Fastest of ``--repeats`` calls.
* **throughput**: ``predict`` over ``--clips`` Kitchen20 files (a folder's worth) with 20
  labels, clips/s.

Backends: ``bridge`` (the offline default: YAMNet + MiniLM) and, with ``--clap-random``, the
LAION-CLAP architecture (transformers ``ClapConfig()`` defaults: HTSAT + RoBERTa, 48 kHz)
with *random* weights and a small offline tokenizer — real CLAP weights are not obtainable
offline, and speed does not depend on the weights. One JSON object on stdout.

Usage::

    python benchmarks/zeroshot.py [--labels 10,100,1000] [--clips 50] [--clap-random]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "kitchen20"
VERBS = ("chopping", "pouring", "stirring", "frying", "washing", "grating", "peeling", "boiling")
NOUNS = ("onion", "water", "milk", "rice", "pan", "plate", "carrot", "egg", "bread", "knife")


def labels(n: int) -> list[str]:
    """``n`` distinct action names (verb + noun, then numbered variants)."""
    base = [f"{v} {o}" for v in VERBS for o in NOUNS]
    return [base[i % len(base)] + ("" if i < len(base) else f" {i // len(base)}") for i in range(n)]


def clap_random_folder(out: Path) -> str:
    """Full-size LAION-CLAP architecture, random weights, tiny offline BPE tokenizer."""
    sys.path.insert(0, str(REPO / "tests"))
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    from tiny_models import roberta_tokenizer

    torch.manual_seed(0)
    tokenizer = roberta_tokenizer(out)
    config = ClapConfig(text_config={"vocab_size": len(tokenizer)})
    ClapModel(config).eval().save_pretrained(out)
    ClapFeatureExtractor().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def measure(backend: str, files: list[Path], counts: list[int], repeats: int) -> dict:
    from harken import api

    api.predict(files[:1], labels(2), backend=backend)  # load everything once
    latency = {}
    for n in counts:
        cands = labels(n)
        api.predict(files[:1], cands, backend=backend)  # warm this label set's description cache
        best = min(
            _timed(lambda c=cands: api.predict(files[:1], c, backend=backend))
            for _ in range(repeats)
        )
        latency[str(n)] = round(best, 4)
        print(f"{backend}: {n} labels {best:.3f} s", file=sys.stderr)
    t = _timed(lambda: api.predict(files, labels(20), backend=backend))
    return {
        "latency_s_one_5s_clip": latency,
        "throughput": {
            "clips": len(files),
            "seconds": round(t, 2),
            "clips_per_s": round(len(files) / t, 2),
        },
    }


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", default="10,100,1000")
    p.add_argument("--clips", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--clap-random", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HARKEN_CACHE_DIR", tempfile.mkdtemp(prefix="harken-bench-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    files = sorted((DATA / "audio").glob("*/*.flac"))[:: max(1, 1070 // args.clips)][: args.clips]
    counts = [int(x) for x in args.labels.split(",")]
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
        },
        "backends": {"bridge": measure("bridge", files, counts, args.repeats)},
    }
    if args.clap_random:
        with tempfile.TemporaryDirectory() as tmp:
            folder = clap_random_folder(Path(tmp))
            out["backends"]["clap (random weights)"] = measure(
                f"clap:{folder}", files, counts, args.repeats
            )
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
