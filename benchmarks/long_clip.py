"""Long-clip benchmark: peak memory and wall time of embedding one 1 min, 10 min and 1 h file.

Clips are written to a temporary folder as 16-bit 44.1 kHz stereo WAV: real Kitchen20 audio
(clips resampled to 44.1 kHz, the left channel one clip and the right another, tiled to the
length) or, with ``--noise`` or without the data, seeded noise. Each measurement runs in a
**fresh subprocess**, which:

1. loads the encoder and embeds a 1 s clip once (model loaded, weights touched);
2. records its RSS (``VmRSS``) and resets its high-water mark (``/proc/self/clear_refs``);
3. embeds the long file — ``streamed``: :func:`harken.encoders.stream.embed_audio_file` (the
   path of ``harken embed``/``predict``/``index`` through ``encode_clips``; files over
   ``LONG_CLIP_SECONDS`` are decoded and embedded block by block) or ``in-memory``: today's
   former path, ``load_audio`` then ``encoder.embed`` on the whole waveform;
4. reports ``peak_above_model_mib`` = high-water mark (``VmHWM``) − the RSS of step 2, and
   ``ru_maxrss_mib`` (``resource.getrusage``, the process's lifetime peak, model included).

Figures go to stdout as one JSON object; progress to stderr.

Usage::

    python benchmarks/long_clip.py [--encoders yamnet,aisfx] [--minutes 1,10,60] \
        [--modes streamed] [--in-memory-minutes 10] [--data-dir ../shared/data] [--noise]
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

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
SR = 44100


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _source_audio(data_dir: Path, noise: bool) -> np.ndarray:
    """``[n, 2]`` float32 at 44.1 kHz: 40 real Kitchen20 clips (or 60 s of noise)."""
    from harken.data.audio import load_audio, resample

    paths = sorted((data_dir / "kitchen20" / "audio").glob("*/*.flac"))
    if noise or not paths:
        rng = np.random.default_rng(0)
        return (0.2 * rng.standard_normal((60 * SR, 2))).astype(np.float32)
    picked = paths[:: max(1, len(paths) // 40)][:40]
    waves = [load_audio(p)[0] for p in picked]  # 16 kHz, 5 s each
    mono = resample(np.concatenate(waves), 16000, SR)
    return np.stack([mono, np.roll(mono, len(mono) // 3)], axis=1)


def write_clip(path: Path, minutes: float, source: np.ndarray) -> Path:
    """Tile ``source`` to ``minutes`` as a 16-bit stereo WAV, one tile at a time."""
    import soundfile as sf

    left = round(minutes * 60 * SR)
    with sf.SoundFile(str(path), "w", SR, 2, subtype="PCM_16") as f:
        while left > 0:
            part = source[:left]
            f.write(part)
            left -= len(part)
    return path


def child(encoder_name: str, path: str, mode: str) -> dict:
    """One measurement (run in a fresh process)."""
    import soundfile as sf

    from harken.data.audio import load_audio
    from harken.encoders.base import get_encoder
    from harken.encoders.stream import LONG_CLIP_SECONDS, embed_audio_file

    t0 = time.perf_counter()
    encoder = get_encoder(encoder_name)
    warm = Path(path).with_suffix(".warm.wav")
    rng = np.random.default_rng(1)
    sf.write(str(warm), 0.2 * rng.standard_normal(SR), SR, subtype="PCM_16")
    embed_audio_file(encoder, warm)
    load_s = time.perf_counter() - t0
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base_kib = _status_kib("VmRSS")
    t0 = time.perf_counter()
    if mode == "streamed":
        emb = embed_audio_file(encoder, path)
    else:
        wave, _ = load_audio(path, encoder.sample_rate)
        emb = encoder.embed([wave])[0]
        del wave
    wall = time.perf_counter() - t0
    peak_kib = _status_kib("VmHWM")
    info = sf.info(path)
    return {
        "encoder": encoder_name,
        "mode": mode,
        "seconds": round(info.frames / info.samplerate, 1),
        "file_mib": round(Path(path).stat().st_size / 2**20, 1),
        "streams": mode == "streamed" and info.frames / info.samplerate > LONG_CLIP_SECONDS,
        "wall_s": round(wall, 2),
        "audio_s_per_s": round(info.frames / info.samplerate / wall, 1),
        "model_rss_mib": round(base_kib / 1024, 1),
        "peak_above_model_mib": round((peak_kib - base_kib) / 1024, 1),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_s": round(load_s, 2),
        "embedding_finite": bool(np.all(np.isfinite(emb))),
    }


def measure(encoder: str, path: Path, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", encoder, str(path), mode]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _log(done.stderr[-3000:])
        return {"encoder": encoder, "mode": mode, "error": f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default="yamnet,aisfx")
    ap.add_argument("--minutes", default="1,10,60")
    ap.add_argument("--modes", default="streamed", help="streamed and/or in-memory")
    ap.add_argument(
        "--in-memory-minutes",
        default="10",
        help="lengths (of --minutes) also measured in memory; '' for none",
    )
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--noise", action="store_true", help="seeded noise instead of Kitchen20")
    ap.add_argument("--child", nargs=3, metavar=("ENCODER", "PATH", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    minutes = [float(m) for m in args.minutes.split(",")]
    in_memory = {float(m) for m in args.in_memory_minutes.split(",") if m.strip()}
    modes = args.modes.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        source = _source_audio(args.data_dir, args.noise)
        for m in minutes:
            path = write_clip(Path(tmp) / f"clip_{m:g}min.wav", m, source)
            for encoder in args.encoders.split(","):
                extra = ["in-memory"] if m in in_memory and "in-memory" not in modes else []
                for mode in modes + extra:
                    _log(f"{encoder}, {m:g} min, {mode} ...")
                    results.append(measure(encoder, path, mode))
                    _log(f"  {results[-1]}")
            path.unlink()
    out = {
        "clips": "Kitchen20 tiled" if not args.noise else "noise",
        "format": "16-bit WAV, 44.1 kHz, stereo",
        "results": results,
        "machine": machine_info(["numpy", "soxr", "soundfile", "onnxruntime", "torch"]),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
