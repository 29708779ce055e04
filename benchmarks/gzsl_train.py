"""GZSL head training cost: seconds per epoch and peak memory of ``clipclap`` and ``kda``.

Needs no data and no models: ``N`` synthetic clips (default 10,000) with seeded random
features ``{"audio": [N, 1024], "video": [N, 512]}`` float32 (the ClipClap paper's CLAP / CLIP
input sizes, rows L2-normalised like those embeddings) and labels spread evenly over
``--classes`` seen classes (default 100). Class knowledge:

* ``clipclap``: ``Classes.alternatives = {"clip": [C, 512], "clap": [C, 1024]}``, ``text="both"``
  (Eq. 2's ``concat(w^v, w^a)``);
* ``kda``: ``--descriptions`` (default 3, like KDA's three LLM descriptions) 512-d embeddings
  per class in ``Classes.members["llm"]`` and their mean as the ``"llm"`` knowledge view
  (``knowledge="llm"``, ``members="llm"``: the Eq. 6 class distributions).

Both read ``audio=("audio",)``, ``video=("video",)``, ``modality="both"``, at the papers' batch
sizes (the methods' defaults: ClipClap 64, KDA 2048). Each method runs in a **fresh
subprocess** (this script re-invoked with ``--worker``) so its peak memory is its own. The worker
builds the data and runs a warm-up fit (one epoch on 256 clips: the first ``torch.optim.Adam``
of a process imports ``torch._dynamo``, seconds and ~150 MiB, reported as ``warmup_fit_s`` /
``warmup_rss_added_mib``), then calls ``fit(train, classes, None, None, seed=0)`` with ``--epochs``
epochs and no dev data (so no per-epoch dev evaluation and no learning-rate schedule), timing
every epoch: ``harken.train``'s epoch loop is wrapped to take a timestamp at each epoch
boundary. The first epoch is reported on its own (``first_epoch_s``) and, with more than one
epoch, left out of ``epoch_s_mean`` as warm-up.

Memory is the worker's resident set (Linux ``/proc/self/status``): ``baseline_rss_mib`` just
before ``fit`` (Python, torch and the synthetic data loaded), and ``peak_rss_mib``, the
high-water mark *during* ``fit`` (reset through ``/proc/self/clear_refs`` before it starts;
elsewhere ``ru_maxrss``, the whole process's peak). ``train_peak_delta_mib`` is their
difference: what training adds (input tensors, network, Adam state, activations).

``harken.train.fit`` trains models under ``SMALL_MODEL_PARAMS`` parameters on one torch
thread; ``threads_in_fit`` records the count actually in use during training.

Figures go to stdout as one JSON object; progress to stderr.

Usage::

    python benchmarks/gzsl_train.py [--clips 10000] [--epochs 3] [--methods clipclap,kda] \
        [--classes 100] [--descriptions 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import machine_info

METHODS = ("clipclap", "kda")
D_AUDIO, D_VIDEO = 1024, 512  # CLAP audio / CLIP image embeddings (ClipClap §4.1)
D_CLIP_TEXT, D_CLAP_TEXT, D_LLM = 512, 1024, 512  # class label / description embeddings
STATUS = Path("/proc/self/status")
WARMUP_CLIPS = 256


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _status_mib(key: str) -> float | None:
    if STATUS.is_file():
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def rss_mib() -> float | None:
    """Current resident set size, MiB (None where ``/proc`` is missing)."""
    return _status_mib("VmRSS")


def reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux ≥ 4.0); whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """RSS high-water mark, MiB: ``VmHWM`` (since the last :func:`reset_peak`), else
    ``ru_maxrss`` (KiB on Linux)."""
    hwm = _status_mib("VmHWM")
    if hwm is not None:
        return hwm
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- synthetic data --------------------------------------------------------------------------


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def synthetic(method: str, n_clips: int, n_classes: int, n_desc: int, seed: int = 0):
    """``(Batch, Classes, method options)`` for ``method`` (seeded random features)."""
    from harken.methods.base import Batch, Classes

    rng = np.random.default_rng(seed)
    names = [f"class-{i:03d}" for i in range(n_classes)]
    labels = [names[i] for i in rng.permutation(np.arange(n_clips) % n_classes)]
    batch = Batch(
        {"audio": _unit_rows(rng, n_clips, D_AUDIO), "video": _unit_rows(rng, n_clips, D_VIDEO)},
        labels,
    )
    options = {"audio": ("audio",), "video": ("video",), "modality": "both"}
    if method == "clipclap":
        clip, clap = (
            _unit_rows(rng, n_classes, D_CLIP_TEXT),
            _unit_rows(rng, n_classes, D_CLAP_TEXT),
        )
        classes = Classes(names, clip, alternatives={"clip": clip, "clap": clap})
        options |= {"text": "both", "text_views": ("clip", "clap")}
    else:
        members = [_unit_rows(rng, n_desc, D_LLM) for _ in names]
        mean = np.stack([m.mean(axis=0) for m in members]).astype(np.float32)
        classes = Classes(names, mean, alternatives={"llm": mean}, members={"llm": members})
        options |= {"knowledge": "llm", "members": "llm"}
    return batch, classes, options


# --- one method, in a fresh process ----------------------------------------------------------


def worker(method: str, args: argparse.Namespace) -> dict:
    """Train ``method`` once on the synthetic clips; return its figures."""
    import torch

    import harken.train
    from harken.methods.base import get_method

    t0 = time.perf_counter()
    train, classes, options = synthetic(method, args.clips, args.classes, args.descriptions)
    data_s = time.perf_counter() - t0
    model = get_method(method, **options, epochs=args.epochs)
    config = model.config()

    # Epoch boundaries: harken.train._fit iterates ``tqdm(range(1, epochs + 1))``.
    stamps: list[float] = []
    threads_in_fit: list[int] = []
    plain_tqdm = harken.train.tqdm

    def timed_epochs(iterable, *a, **kw):
        threads_in_fit.append(torch.get_num_threads())
        for epoch in plain_tqdm(iterable, *a, **kw):
            stamps.append(time.perf_counter())
            yield epoch
        stamps.append(time.perf_counter())

    # Warm-up: a one-epoch fit on a few clips. The first ``torch.optim.Adam`` of a process
    # imports ``torch._dynamo`` (seconds, ~150 MiB), a once-per-process cost kept apart here.
    default_threads = torch.get_num_threads()
    before = rss_mib()
    t0 = time.perf_counter()
    warm = get_method(method, **options, epochs=1)
    warm.fit(train.subset(np.arange(min(WARMUP_CLIPS, len(train)))), classes, None, None, seed=0)
    warmup_s = time.perf_counter() - t0
    del warm

    harken.train.tqdm = timed_epochs
    baseline = rss_mib()
    peak_reset = reset_peak()
    log(
        f"{method}: fit, {args.clips} clips, {args.epochs} epochs, batch {config['batch_size']} ..."
    )
    t0 = time.perf_counter()
    fit_log = model.fit(train, classes, None, None, seed=0)
    fit_s = time.perf_counter() - t0
    peak = peak_rss_mib()
    harken.train.tqdm = plain_tqdm

    t0 = time.perf_counter()
    scores = model.score(train, classes)
    score_s = time.perf_counter() - t0

    epochs = np.diff(stamps)  # includes the end-of-epoch model.eval() only; no dev evaluation
    timed = epochs[1:] if len(epochs) > 1 else epochs
    bs = config["batch_size"]
    r = lambda x, d=3: round(float(x), d)  # noqa: E731
    out = {
        "batch_size": bs,
        # A trailing mini-batch of one clip is skipped (harken.train.fit).
        "steps_per_epoch": -(-args.clips // bs) - (args.clips % bs == 1),
        "params": int(sum(p.numel() for p in model.model.parameters())),
        "epochs": len(epochs),
        "epoch_s": [r(e) for e in epochs],
        "first_epoch_s": r(epochs[0]),
        "epoch_s_mean": r(timed.mean()),
        "epoch_s_min": r(timed.min()),
        "epochs_averaged": len(timed),
        "clips_per_s": r(args.clips / timed.mean(), 1),
        "fit_s": r(fit_s),
        "fit_overhead_s": r(fit_s - epochs.sum()),
        "score_s": r(score_s),
        "score_shape": list(scores.shape),
        "threads_default": default_threads,
        "threads_in_fit": threads_in_fit[0] if threads_in_fit else None,
        "small_model_params": harken.train.SMALL_MODEL_PARAMS,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "peak_is_fit_only": peak_reset,
        "train_peak_delta_mib": None if baseline is None else r(peak - baseline, 1),
        "data_s": r(data_s),
        "warmup_fit_s": r(warmup_s),
        "warmup_rss_added_mib": None if before is None else r(baseline - before, 1),
        "fit_log": {k: v for k, v in fit_log.items() if k != "dev_score"},
    }
    return out


def spawn(method: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method]
    cmd += ["--clips", str(args.clips), "--epochs", str(args.epochs)]
    cmd += ["--classes", str(args.classes), "--descriptions", str(args.descriptions)]
    proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    figures = json.loads(proc.stdout)
    log(
        f"{method}: {figures['epoch_s_mean']:.2f} s/epoch, {figures['clips_per_s']} clips/s, "
        f"peak {figures['peak_rss_mib']} MiB (+{figures['train_peak_delta_mib']} MiB)"
    )
    return figures


# --- orchestration ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated names")
    parser.add_argument("--clips", type=int, default=10_000, help="synthetic training clips")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (first = warm-up)")
    parser.add_argument("--classes", type=int, default=100, help="seen classes")
    parser.add_argument("--descriptions", type=int, default=3, help="kda: descriptions per class")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a method name, internal
    args = parser.parse_args(argv)
    methods = [args.worker] if args.worker else args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    if args.clips < 2 or args.epochs < 1 or args.classes < 2 or args.descriptions < 1:
        parser.error("need --clips ≥ 2, --epochs ≥ 1, --classes ≥ 2, --descriptions ≥ 1")
    if args.classes > args.clips:
        parser.error("--classes must not exceed --clips")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    machine = machine_info(("numpy", "torch"))
    results = {name: spawn(name, args) for name in args.methods.split(",")}
    setup = {
        "clips": args.clips,
        "classes": args.classes,
        "features": {"audio": D_AUDIO, "video": D_VIDEO},
        "class_text": {"clipclap": {"clip": D_CLIP_TEXT, "clap": D_CLAP_TEXT}},
        "kda_descriptions": {"per_class": args.descriptions, "dim": D_LLM},
        "epochs": args.epochs,
        "dev": None,
    }
    print(json.dumps({"methods": results, "setup": setup, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
