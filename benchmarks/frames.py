"""Video frame benchmarks: middle-frame decoding and decode + EfficientNet-Lite0 encoding.

Writes ``N`` synthetic videos (default 20 × 10 s, 640 × 360, 25 fps, H.264 with a keyframe
every 2 s and an AAC track — the shape of a web video clip) to a temporary folder, then
measures, each in a **fresh subprocess** so that its peak RSS is its own:

* ``decode``: :func:`harken.data.video.read_frames` of every clip's middle frame (packet scan,
  seek to the keyframe before the middle, decode forward, RGB conversion);
* ``bare``: the naive way, with PyAV alone: decode every frame of the clip and convert the
  middle one (the frames must equal ``decode``'s: checked);
* ``encode``: :func:`harken.encoders.base.embed_videos` with ``efficientnet-lite0``
  (decode ``--n-frames`` frames per clip, resize + crop, forward pass), the model loaded and
  run once on the first clip before the clock starts (``load_s``), with ``--threads`` torch
  threads (default 1: on a busy 2-core machine two threads made the forward pass 5× slower).

Figures go to stdout as one JSON object; progress to stderr.

Usage::

    python benchmarks/frames.py [--clips 20] [--seconds 10] [--n-frames 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine_info

MODES = ("decode", "bare", "encode")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """This process's peak resident set size, MiB.

    Linux's ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` carries the parent's peak over
    ``fork`` + ``exec``, which here (the parent wrote the videos) hid the workers' own peaks.
    Elsewhere ``ru_maxrss`` (KiB on Linux).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def best_time(fn, repeats: int):
    """``(fastest wall time of repeats calls of fn(), fn's last result)``."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --- synthetic videos ------------------------------------------------------------------------


def write_clip(path: Path, seed: int, args: argparse.Namespace) -> None:
    """A moving colour gradient with noise (so that the codec has real work), and a tone."""
    import av

    width, height = args.width, args.height
    n = round(args.seconds * args.fps)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, 3).astype(np.float32)
    noise = rng.normal(0, 8, (8, height, width, 3)).astype(np.float32)  # cycled: cheap to make
    with av.open(str(path), "w") as out:
        video = out.add_stream(
            "libx264", rate=args.fps, options={"g": str(args.gop), "preset": "veryfast"}
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(n):
            shift = 4.0 * i
            rgb = np.stack(
                [
                    (base[0] + xx + shift) % 256,
                    (base[1] + yy + shift / 2) % 256,
                    (base[2] + xx / 2 + yy / 2 - shift) % 256,
                ],
                axis=-1,
            )
            rgb += noise[i % len(noise)]
            frame = np.clip(rgb, 0, 255).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = round(args.seconds * 48000)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(np.tile(tone[start : start + 1024], (2, 1)))
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            for packet in audio.encode(af):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


# --- measurements (each in its own process) --------------------------------------------------


def run_decode(paths: list[Path], args) -> tuple[dict, np.ndarray]:
    from harken.data.video import read_frames

    secs, frames = best_time(lambda: [read_frames(p, args.n_frames) for p in paths], args.repeats)
    return {"s": secs, "frames": len(paths) * args.n_frames}, np.stack(
        [f[len(f) // 2] for f in frames]
    )


def run_bare(paths: list[Path], args) -> tuple[dict, np.ndarray]:
    """Decode every frame of each clip with PyAV; convert the middle one to RGB."""
    import av

    def middle(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            decoded = list(container.decode(video=0))
        return decoded[len(decoded) // 2].to_ndarray(format="rgb24")

    secs, frames = best_time(lambda: [middle(p) for p in paths], args.repeats)
    return {"s": secs, "frames": len(paths)}, np.stack(frames)


def run_encode(paths: list[Path], args) -> tuple[dict, np.ndarray]:
    from harken.encoders.base import embed_videos, get_encoder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    encoder = get_encoder("efficientnet-lite0")
    embed_videos(encoder, paths[:1], args.n_frames)
    load_s = time.perf_counter() - t0
    secs, emb = best_time(lambda: embed_videos(encoder, paths, args.n_frames), args.repeats)
    return {"s": secs, "frames": len(paths) * args.n_frames, "load_s": load_s}, emb


RUNS = {"decode": run_decode, "bare": run_bare, "encode": run_encode}


def worker(mode: str, args: argparse.Namespace) -> None:
    paths = sorted(args.video_dir.glob("*.mp4"))
    figures, array = RUNS[mode](paths, args)
    figures["peak_rss_mib"] = peak_rss_mib()
    np.save(args.result.with_suffix(".npy"), array)
    args.result.write_text(json.dumps(figures))


def spawn(mode: str, args: argparse.Namespace, tmp: Path) -> tuple[dict, np.ndarray]:
    result = tmp / f"{mode}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode]
    cmd += ["--video-dir", str(args.video_dir), "--result", str(result)]
    cmd += ["--n-frames", str(args.n_frames), "--repeats", str(args.repeats)]
    cmd += ["--threads", str(args.threads)]
    log(f"{mode} on {args.clips} clips ...")
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    figures = json.loads(result.read_text())
    log(f"{mode} done in {figures['s']:.2f} s, peak {figures['peak_rss_mib']} MiB")
    return figures, np.load(result.with_suffix(".npy"))


def ffmpeg_version() -> str:
    import av

    info = av.ffmpeg_version_info
    return ".".join(str(v) for v in info) if isinstance(info, tuple) else str(info)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20, help="synthetic videos")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each video")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=int, default=50, help="frames between keyframes")
    parser.add_argument("--n-frames", type=int, default=1, help="frames per clip (1: middle)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes per measurement; the fastest counts"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for encoding (0: torch's default)"
    )
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one mode
    parser.add_argument("--video-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modes.split(",")) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    if min(args.clips, args.n_frames, args.repeats) < 1:
        parser.error("--clips, --n-frames and --repeats must be at least 1")
    return args


def summarise(mode: str, figures: dict, args: argparse.Namespace) -> dict:
    r = lambda x, d=3: None if x is None else round(float(x), d)  # noqa: E731
    out = {
        "s": r(figures["s"]),
        "clips_per_s": r(args.clips / figures["s"], 2),
        "frames_per_s": r(figures["frames"] / figures["s"], 2),
        "peak_rss_mib": figures["peak_rss_mib"],
    }
    if "load_s" in figures:
        out["load_s"] = r(figures["load_s"])
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, args)
        return
    machine = machine_info(("av", "numpy", "torch"), ffmpeg=ffmpeg_version())
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="harken-bench-frames-") as tmp:
        args.video_dir = Path(tmp) / "videos"
        args.video_dir.mkdir()
        log(f"writing {args.clips} videos ({args.seconds:g} s, {args.width}x{args.height}) ...")
        t0 = time.perf_counter()
        for i in range(args.clips):
            write_clip(args.video_dir / f"clip{i:04d}.mp4", i, args)
        log(f"videos written in {time.perf_counter() - t0:.1f} s")
        arrays = {}
        for mode in args.modes.split(","):
            figures, arrays[mode] = spawn(mode, args, Path(tmp))
            results[mode] = summarise(mode, figures, args)
        if "decode" in arrays and "bare" in arrays and args.n_frames == 1:
            results["bare"]["same_frames_as_decode"] = bool(
                np.array_equal(arrays["decode"], arrays["bare"])
            )
            results["decode"]["speedup_over_bare"] = round(
                results["decode"]["clips_per_s"] / results["bare"]["clips_per_s"], 2
            )
        mib = sum(p.stat().st_size for p in args.video_dir.glob("*.mp4")) / 2**20
    print(
        json.dumps(
            {
                "videos": {
                    "clips": args.clips,
                    "seconds": args.seconds,
                    "size": f"{args.width}x{args.height}",
                    "fps": args.fps,
                    "gop": args.gop,
                    "codec": "h264 (libx264 veryfast) + aac",
                    "mib_total": round(mib, 1),
                },
                "n_frames": args.n_frames,
                "repeats": args.repeats,
                "torch_threads": args.threads or "default",
                "results": results,
                "machine": machine,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
