"""Scale-out benchmark: the same encoding job on the local loop, a process pool and Ray.

One process runs interleaved rounds (the variants in rotated order, so that a busy machine's
drift falls on every variant alike). Each variant encodes the same Kitchen20 clips into a fresh,
cold feature store (``FeatureStore.fill``, the path of ``harken embed``/``index``/``run``):

* ``local@1`` / ``local@2``: the ``local`` engine (this process) inside
  ``harken.encoders.threads.limit(N)``; ``local@1`` is one single-threaded worker, the unit a
  cluster scales by, and the better of the two is the best local thread setting;
* ``process x2``: the ``process`` engine, 2 single-threaded spawn workers;
* ``ray x2``: the ``ray`` engine, 2 actors on a private one-machine Ray (a running cluster, as
  ``--ray-address auto`` finds it): Ray is started before the variant and stopped after it, its
  start-up reported apart (``ray_start_s``), so its daemons (about a tenth of a core when idle)
  do not slow the other variants; each round pays its actor pool's start-up.

Printed as JSON, per encoder: the median clips/s of each variant, ratios taken WITHIN each round
(then the median) against ``local@1`` and against the best local setting, the targets of issue 13
(2 workers >= 1.6x one single-threaded worker, >= 1.1x the best local thread setting), and the
peak RSS of the driver and of the largest worker process during each variant (sampled every
0.1 s with psutil over the driver's process tree). Results of every variant are compared with
``local@1`` (``identical``: bit for bit).

``--flat`` adds the driver-memory check: a tiny encoder (16 statistics of the wave, no model)
over manifests of 1,000 and 10,000 clips (Kitchen20 files cut into 0.25 s spans), the ``local``
engine and a sink that keeps nothing; the driver's peak traced allocation (tracemalloc) of each,
and the growth per 1,000 clips.

Usage::

    python benchmarks/scale.py --encoders yamnet,aisfx --clips 1070 --rounds 2 --flat
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
VARIANTS = ("local@1", "local@2", "process x2", "ray x2")
TARGETS = {"2 workers / local@1": 1.6, "2 workers / best local": 1.1}


def log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


def select_clips(data_dir: Path, n: int) -> list:
    """``n`` Kitchen20 clips (all 1,070 by default; else a seeded sample in manifest order)."""
    from harken.data.readers import read_dataset

    clips = read_dataset("kitchen20", data_dir=data_dir).clips
    if n >= len(clips):
        return list(clips)
    pick = np.sort(np.random.default_rng(0).permutation(len(clips))[:n])
    return [clips[i] for i in pick]


class PeakRss:
    """Peak RSS (MiB) of this process and of the largest other process in its tree, sampled."""

    def __init__(self, every: float = 0.1) -> None:
        import psutil

        self.me = psutil.Process()
        self.every = every
        self.driver = 0.0
        self.worker = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.driver = max(self.driver, self.me.memory_info().rss / 2**20)
                for child in self.me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        self.worker = max(self.worker, child.memory_info().rss / 2**20)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def ray_running(variant: str):
    """For the ray variant: a one-machine Ray with 2 CPUs for the block (yields its start-up
    seconds); for the others: nothing (yields None)."""
    if not variant.startswith("ray"):
        yield None
        return
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield time.perf_counter() - start
    finally:
        ray.shutdown()


def run_variant(variant: str, encoder, clips: list) -> tuple[float, np.ndarray, dict]:
    """Encode ``clips`` into a fresh store with ``variant``; (seconds, embeddings, peak RSS)."""
    from harken.encoders.threads import limit
    from harken.store.engines import get_engine
    from harken.store.features import FeatureStore

    if variant.startswith("local@"):
        engine, workers, threads = get_engine("local"), 1, int(variant.split("@")[1])
    else:
        engine, workers, threads = get_engine(variant.split()[0]), 2, 1
    out = np.zeros((len(clips), encoder.dim), np.float32)

    def sink(positions: np.ndarray, rows: np.ndarray) -> None:
        out[positions] = rows

    with tempfile.TemporaryDirectory(prefix="harken-scale-") as tmp, ray_running(variant) as up:
        store = FeatureStore(Path(tmp), progress=False)
        # torch=True: torch is imported before the limit takes effect, so a torch encoder
        # (aisfx) really runs at `threads` (a limit entered before torch is imported cannot
        # set torch's pool)
        with PeakRss() as rss, limit(threads, torch=True):
            start = time.perf_counter()
            store.fill("kitchen20", encoder, clips, sink, engine=engine, workers=workers)
            seconds = time.perf_counter() - start
    peak = {"driver_mib": round(rss.driver, 1), "largest_worker_mib": round(rss.worker, 1)}
    if up is not None:
        peak["ray_start_s"] = round(up, 1)
    if variant.startswith("local"):
        peak["largest_worker_mib"] = None  # the driver is the worker
    return seconds, out, peak


def bench(name: str, clips: list, rounds: int) -> dict:
    from harken.encoders.base import get_encoder
    from harken.encoders.threads import limit

    encoder = get_encoder(name)
    with limit(1, torch=True):  # load the model (lazily loaded ones too) before any timing
        encoder.embed([np.zeros(encoder.sample_rate, np.float32)])
    speed: dict[str, list[float]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {}
    peaks: dict[str, dict] = {}
    reference: np.ndarray | None = None
    identical: dict[str, bool] = {}
    ray_starts: list[float] = []
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        this: dict[str, float] = {}
        for variant in order:
            seconds, emb, peak = run_variant(variant, encoder, clips)
            this[variant] = len(clips) / seconds
            speed[variant].append(this[variant])
            if "ray_start_s" in peak:
                ray_starts.append(peak.pop("ray_start_s"))
            for key, value in peak.items():
                old = peaks.setdefault(variant, {}).get(key)
                peaks[variant][key] = value if old is None or value is None else max(old, value)
            if variant == "local@1" and reference is None:
                reference = emb
            if reference is not None:
                identical[variant] = identical.get(variant, True) and bool(
                    np.array_equal(emb, reference)
                )
            log(f"{name} round {r + 1}/{rounds} {variant}: {this[variant]:.2f} clips/s")
        best_local = max(this["local@1"], this["local@2"])
        for two in ("process x2", "ray x2"):
            ratios.setdefault(f"{two} / local@1", []).append(this[two] / this["local@1"])
            ratios.setdefault(f"{two} / best local", []).append(this[two] / best_local)
        ratios.setdefault("local@2 / local@1", []).append(this["local@2"] / this["local@1"])
    medians = {k: round(statistics.median(v), 3) for k, v in ratios.items()}
    met = {
        f"{two} / local@1 >= 1.6": medians[f"{two} / local@1"] >= 1.6
        for two in ("process x2", "ray x2")
    } | {
        f"{two} / best local >= 1.1": medians[f"{two} / best local"] >= 1.1
        for two in ("process x2", "ray x2")
    }
    return {
        "clips": len(clips),
        "rounds": rounds,
        "clips_per_s": {v: round(statistics.median(s), 2) for v, s in speed.items()},
        "ratios_median_within_round": medians,
        "ratios_per_round": {k: [round(x, 3) for x in v] for k, v in ratios.items()},
        "targets_met": met,
        "peak_rss": peaks,
        "ray_start_s": ray_starts,
        "identical_to_local@1": identical,
    }


class TinyEncoder:
    """16 statistics of the wave: no model, so the driver's own memory is what is measured."""

    name = "tiny-stats"
    modality = "audio"
    dim = 16
    sample_rate = 16000

    def embed(self, batch) -> np.ndarray:
        out = []
        for wave in batch:
            w = np.asarray(wave, np.float32)
            q = np.quantile(w, np.linspace(0, 1, 12)) if w.size else np.zeros(12)
            out.append(np.r_[w.mean(), w.std(), np.abs(w).max(), w.size / 1e4, q])
        return np.asarray(out, np.float32)

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim}


def span_clips(files: list, n: int) -> list:
    """``n`` distinct clips: 0.25 s spans cut from the Kitchen20 files in turn."""
    from harken.data.manifest import Clip

    out = []
    for i in range(n):
        clip = files[i % len(files)]
        k = i // len(files)
        out.append(
            Clip(f"{clip.clip_id}@{k}", clip.audio_path, start=0.25 * k, end=0.25 * k + 0.25)
        )
    return out


def flat_driver(files: list, sizes=(1000, 10000)) -> dict:
    from harken.store.engines import get_engine
    from harken.store.features import FeatureStore

    served = [0]

    def sink(positions: np.ndarray, rows: np.ndarray) -> None:
        served[0] += len(positions)

    result = {}
    for n in sizes:
        clips = span_clips(files, n)
        with tempfile.TemporaryDirectory(prefix="harken-flat-") as tmp:
            store = FeatureStore(Path(tmp), progress=False)
            served[0] = 0
            tracemalloc.start()
            start = time.perf_counter()
            report = store.fill(  # silent 0.25 s spans are skipped, as any unusable clip
                "spans", TinyEncoder(), clips, sink, skip_bad=True, engine=get_engine("local")
            )
            seconds = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert served[0] + len(report.bad) == n, (served[0], len(report.bad), n)
        result[str(n)] = {
            "peak_traced_mib": round(peak / 2**20, 2),
            "seconds": round(seconds, 1),
            "served": served[0],
            "skipped_silent_or_unusable": len(report.bad),
        }
        log(f"flat: {n} clips, driver peak {peak / 2**20:.2f} MiB")
    lo, hi = (result[str(s)]["peak_traced_mib"] for s in sizes)
    result["growth_mib_per_1000_clips"] = round((hi - lo) / ((sizes[1] - sizes[0]) / 1000), 3)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoders", default="yamnet,aisfx")
    p.add_argument("--clips", type=int, default=1070, help="Kitchen20 clips (default: all 1,070)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--flat", action="store_true", help="also the 1k vs 10k driver-memory check")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    clips = select_clips(args.data_dir, args.clips)
    results = {name: bench(name, clips, args.rounds) for name in args.encoders.split(",")}
    out = {"encoders": results, "targets": TARGETS}
    if args.flat:
        out["driver_memory"] = flat_driver(select_clips(args.data_dir, 1070))
    out["machine"] = machine_info(("numpy", "onnxruntime", "torch", "ray"), cores_used=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
