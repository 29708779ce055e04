"""Fixtures of the web-app tests: real Kitchen20 clips, a small index, a runs folder with a
report, audio as a browser records it (48 kHz stereo WebM/Opus), and the app served by uvicorn
on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

BLENDER = "kitchen20/audio/blender/0-158737-A-0.flac"
#: Five candidate labels, one of them the clip's true class (blender).
FIVE_LABELS = "blender, chopping, water flowing, sweep, microwave"


@pytest.fixture(scope="session")
def blender_clip(shared_data) -> Path:
    return shared_data / BLENDER


def write_browser_audio(wave: np.ndarray, rate: int, path: Path, seconds: float | None = None):
    """``wave`` as a browser's MediaRecorder sends it: 48 kHz stereo Opus in WebM."""
    import av

    from harken.data.audio import resample

    wave = resample(wave, rate, 48000).astype(np.float32)
    if seconds is not None:
        wave = np.resize(wave, int(seconds * 48000))
    stereo = np.stack([wave, 0.8 * wave])
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000, layout="stereo")
        for start in range(0, stereo.shape[1], 960 * 50):
            block = np.ascontiguousarray(stereo[:, start : start + 960 * 50])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate = 48000
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def browser_webm(blender_clip, tmp_path_factory) -> Path:
    """The blender clip as a browser records it (48 kHz stereo WebM/Opus, 5 s)."""
    from harken.data.audio import load_audio

    wave, rate = load_audio(blender_clip)
    return write_browser_audio(wave, rate, tmp_path_factory.mktemp("webm") / "rec.webm")


@pytest.fixture(scope="session")
def minute_webm(blender_clip, tmp_path_factory) -> Path:
    """A 1-minute browser recording (the blender clip repeated)."""
    from harken.data.audio import load_audio

    wave, rate = load_audio(blender_clip)
    out = tmp_path_factory.mktemp("webm") / "minute.webm"
    return write_browser_audio(wave, rate, out, seconds=60.0)


@pytest.fixture(scope="session")
def small_index(shared_data, tmp_path_factory) -> Path:
    """An index of 12 Kitchen20 clips: 4 blender, 4 chopping, 4 water-flowing."""
    from harken import api

    audio = shared_data / "kitchen20" / "audio"
    classes = ("blender", "chopping", "water-flowing")
    files = [f for c in classes for f in sorted((audio / c).iterdir())[:4]]
    out = tmp_path_factory.mktemp("index") / "k20"
    api.index(files, out, progress=False)
    return out


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """A runs folder with one report (and a secret file beside the folder, not in it)."""
    root = tmp_path_factory.mktemp("runs")
    (root / "secret.txt").write_text("not to be served")
    runs = root / "runs"
    (runs / "kfold").mkdir(parents=True)
    (runs / "kfold" / "report.html").write_text(
        "<!doctype html><title>kfold report</title><h1>k-fold report</h1>"
    )
    (runs / "kfold" / "results.json").write_text("{}")
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(small_index, runs_dir):
    """The app under uvicorn on a free 127.0.0.1 port (models loaded before it answers);
    uploads limited to 2 MB and 120 s. Yields its base URL."""
    import uvicorn

    from harken.serve import ServeSettings, create_app

    port = free_port()
    settings = ServeSettings(
        index=small_index, runs=runs_dir, port=port, max_upload_mb=2, max_seconds=120
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # the first start loads the models
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("harken serve did not start within 300 s")
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)
