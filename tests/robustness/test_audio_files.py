"""Bad and unusual audio files through `harken embed` / `harken predict`.

Errors: exit 1 naming the file and the problem, no traceback, no output file. Unusual but valid
files (stereo, 8/96 kHz, 24-bit, a video's audio track) embed like the real clip they hold.
Tiny and near-silent clips are still ranked, with a warning that names the file.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import harken
from media import solid_video, write_video

from .conftest import (
    assert_clean_error,
    assert_mentions_any,
    assert_ok,
    cli,
    write_wav,
)


def _embed(capsys, tmp_path, *files):
    out = tmp_path / "emb.npy"
    return cli(capsys, "embed", *files, "--encoder", "yamnet", "--out", out), out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def reference(wave, tmp_path_factory) -> np.ndarray:
    """YAMNet embedding of the real clip written as a 16-bit WAV at its own rate."""
    from harken.api import embed

    data, rate = wave
    path = write_wav(tmp_path_factory.mktemp("ref") / "ref.wav", data, rate)
    return embed([path], "yamnet").embeddings[0]


# --- files that cannot be used: exit 1, the file named, nothing written -------------------------


def _empty(tmp_path: Path, wave) -> Path:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _truncated(tmp_path: Path, wave) -> Path:
    """A WAV cut to a third of its bytes: the header promises more samples than are there."""
    data, rate = wave
    full = write_wav(tmp_path / "full.wav", data, rate)
    blob = full.read_bytes()
    full.unlink()
    path = tmp_path / "truncated.wav"
    path.write_bytes(blob[: len(blob) // 3])
    data_at = blob.index(b"data")
    (declared,) = struct.unpack("<I", blob[data_at + 4 : data_at + 8])
    assert declared > path.stat().st_size - data_at - 8  # the header promises more
    return path


def _random_bytes(tmp_path: Path, wave) -> Path:
    path = tmp_path / "random.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return path


def _text_file(tmp_path: Path, wave) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("shopping list: onions, salt, pepper\n" * 100, encoding="utf-8")
    return path


def _silent(tmp_path: Path, wave) -> Path:
    return write_wav(tmp_path / "zeros.wav", np.zeros(16000 * 2, np.float32), 16000)


def _float_with(value: float):
    def make(tmp_path: Path, wave) -> Path:
        data, rate = wave
        bad = data.copy()
        bad[len(bad) // 2] = value
        name = "nan.wav" if np.isnan(value) else "inf.wav"
        return write_wav(tmp_path / name, bad, rate, subtype="FLOAT")

    return make


def _video_without_audio(tmp_path: Path, wave) -> Path:
    return solid_video(tmp_path / "silent-film.mp4", (200, 30, 30), n=20)


UNUSABLE = {
    # case id: (file maker, any of these words must appear besides the file name)
    "empty-0-bytes": (_empty, ("empty", "0 bytes")),
    "truncated-wav": (_truncated, ("truncated", "corrupt", "incomplete", "header")),
    "random-bytes": (_random_bytes, ("decode", "corrupt", "format", "not an audio")),
    "text-named-wav": (_text_file, ("decode", "corrupt", "format", "not an audio")),
    "all-zeros-silent": (_silent, ("silent",)),
    "float-nan": (_float_with(float("nan")), ("nan",)),
    "float-inf": (_float_with(float("inf")), ("inf",)),
    "video-without-audio": (_video_without_audio, ("audio track", "no audio")),
}


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_unusable_audio_file_is_a_clear_data_error(case, wave, tmp_path, capsys):
    make, words = UNUSABLE[case]
    bad = make(tmp_path, wave)
    result, out = _embed(capsys, tmp_path, bad)
    assert_clean_error(result, 1, bad.name)
    assert_mentions_any(result, *words)
    assert not out.exists(), "no output file when every input failed"


# --- unusual but valid files: embedded like the real clip they hold -----------------------------


def test_stereo_file_equals_its_mono_downmix(wave, other_wave, tmp_path, capsys):
    left, rate = wave
    right = np.resize(other_wave[0], len(left))
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([left, right], 1), rate, "FLOAT")
    mono_wave = ((left.astype(np.float64) + right) / 2).astype(np.float32)
    mono = write_wav(tmp_path / "mono.wav", mono_wave, rate, "FLOAT")
    result, out = _embed(capsys, tmp_path, stereo, mono)
    assert_ok(result)
    emb = np.load(out)
    assert emb.shape == (2, 521)
    np.testing.assert_allclose(emb[0], emb[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("case", "rate", "subtype", "min_cosine"),
    [
        ("8-kHz", 8000, "PCM_16", 0.8),
        ("96-kHz", 96000, "PCM_16", 0.95),
        ("24-bit", None, "PCM_24", 0.99),
    ],
)
def test_other_rates_and_depths_embed_like_the_original(
    case, rate, subtype, min_cosine, wave, reference, tmp_path, capsys
):
    import soxr

    data, native = wave
    rate = rate or native
    resampled = soxr.resample(data, native, rate, quality="VHQ").astype(np.float32)
    path = write_wav(tmp_path / f"{case}.wav", resampled, rate, subtype)
    result, out = _embed(capsys, tmp_path, path)
    assert_ok(result)
    emb = np.load(out)[0]
    assert np.all(np.isfinite(emb))
    assert _cosine(emb, reference) > min_cosine


def test_video_with_audio_track_embeds_its_audio(tmp_path, capsys):
    frames = [np.full((48, 64, 3), 90, np.uint8)] * 30
    video = write_video(tmp_path / "kettle.mp4", frames, fps=10, audio_hz=660.0)
    result, out = _embed(capsys, tmp_path, video)
    assert_ok(result)
    emb = np.load(out)
    assert emb.shape == (1, 521) and np.all(np.isfinite(emb)) and np.any(emb)


# --- usable but unreliable: a result plus a warning naming the file ------------------------------


def _ten_ms(tmp_path: Path, wave) -> Path:
    data, rate = wave
    n = round(0.010 * rate)
    loudest = int(np.argmax(np.abs(data)))
    start = max(0, min(loudest - n // 2, len(data) - n))
    return write_wav(tmp_path / "blip-10ms.wav", data[start : start + n], rate)


def _near_silent(tmp_path: Path, wave) -> Path:
    """Five seconds of white noise at −80 dBFS RMS (1e-4 of full scale)."""
    noise = np.random.default_rng(0).standard_normal(16000 * 5)
    noise *= 1e-4 / np.sqrt(np.mean(noise**2))
    return write_wav(tmp_path / "hiss-80dBFS.wav", noise.astype(np.float32), 16000, "FLOAT")


UNRELIABLE = {
    "10-ms-clip": (_ten_ms, ("short", "unreliable")),
    "near-silent-minus-80-dBFS": (_near_silent, ("silent", "quiet", "unreliable", "dbfs")),
}


@pytest.mark.parametrize("case", list(UNRELIABLE))
def test_unreliable_clip_is_ranked_with_a_warning(case, wave, tmp_path, capsys):
    make, words = UNRELIABLE[case]
    path = make(tmp_path, wave)
    result = cli(capsys, "predict", path, "--labels", "blender,chopping,water", "--json")
    assert_ok(result)
    ranking = json.loads(result.out)[0]["ranking"]
    assert {r["label"] for r in ranking} == {"blender", "chopping", "water"}
    assert path.name in result.messages, f"no warning names the file\n{result.describe()}"
    assert_mentions_any(result, *words)


# --- a one-hour clip: memory must not grow with the clip's length --------------------------------

MEASURE = """
import json, resource, sys
from harken.cli import main
code = main(sys.argv[1:])
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "peak_kib": peak_kib}))
"""


def _write_hour(path: Path) -> Path:
    """One hour of 16 kHz mono 16-bit noise-and-tone, written in one-minute blocks (~115 MB)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 60) / 16000
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for minute in range(60):
            tone = 0.2 * np.sin(2 * np.pi * (300 + 10 * minute) * t)
            f.write((tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
    return path


def _embed_peak_kib(audio: Path, out: Path) -> int:
    """Run `harken embed` in a fresh interpreter; its peak RSS in KiB."""
    src = str(Path(harken.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    argv = ["embed", str(audio), "--encoder", "yamnet", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    return report["peak_kib"]


@pytest.mark.slow
def test_one_hour_clip_embeds_in_bounded_memory(wave, tmp_path):
    data, rate = wave
    short = write_wav(tmp_path / "short.wav", data, rate)
    hour = _write_hour(tmp_path / "hour.wav")
    baseline = _embed_peak_kib(short, tmp_path / "short.npy")
    peak = _embed_peak_kib(hour, tmp_path / "hour.npy")
    emb = np.load(tmp_path / "hour.npy")
    assert emb.shape == (1, 521) and np.all(np.isfinite(emb))
    growth_mib = (peak - baseline) / 1024
    assert growth_mib < 1024, f"1 h clip: peak RSS {peak / 1024:.0f} MiB, +{growth_mib:.0f} MiB"
