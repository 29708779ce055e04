"""Helpers of the bad-input corpus: run the CLI in-process, check its error surface, write files.

Every case calls :func:`harken.cli.main` the way a user's shell would and looks only at what a
user sees: the exit code, stdout, stderr (and Python warnings, which a terminal shows on stderr).
An exception escaping ``main`` is turned into what ``python -m harken.cli`` would print — a
traceback and exit code 1 — so a case fails with a readable message instead of erroring.
"""

from __future__ import annotations

import csv
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken.cli import main

#: Kitchen20 classes the small CSV datasets of the corpus draw from (real clips).
CLASSES = ("blender", "chopping", "microwave", "water-flowing")

#: Seconds a command may take to refuse a bad config / output path ("before any work").
QUICK_SECONDS = 10.0


@dataclass
class Result:
    """What a user sees of one CLI call."""

    code: int
    out: str
    err: str
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def messages(self) -> str:
        """stderr plus the text of every Python warning raised during the call."""
        return "\n".join([self.err, *self.warnings])

    def describe(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.messages}"


def cli(capsys, *argv) -> Result:
    """Call ``harken.cli.main(argv)`` in-process; argparse exits and escaping exceptions are
    turned into the exit code (and traceback) a shell would see."""
    capsys.readouterr()
    start = time.monotonic()
    tb = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors, --help
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # what the interpreter would print for an uncaught exception
            tb = traceback.format_exc()
            code = 1
    seconds = time.monotonic() - start
    captured = capsys.readouterr()
    return Result(
        code=code,
        out=captured.out,
        err=captured.err + tb,
        seconds=seconds,
        warnings=[f"{w.category.__name__}: {w.message}" for w in caught],
    )


def assert_clean_error(result: Result, code: int, *words: str) -> None:
    """A one-paragraph error with exit ``code``, no traceback, naming each of ``words``
    (case-insensitive)."""
    assert "Traceback" not in result.err, result.describe()
    assert result.code == code, result.describe()
    assert "unrecognized arguments" not in result.err, result.describe()
    text = result.messages.casefold()
    missing = [w for w in words if w.casefold() not in text]
    assert not missing, f"stderr does not mention {missing}\n{result.describe()}"


def assert_mentions_any(result: Result, *words: str) -> None:
    """stderr/warnings mention at least one of ``words`` (case-insensitive)."""
    text = result.messages.casefold()
    assert any(w.casefold() in text for w in words), (
        f"stderr mentions none of {words}\n{result.describe()}"
    )


def assert_ok(result: Result) -> None:
    assert result.code == 0, result.describe()
    assert "Traceback" not in result.err, result.describe()


def feature_files(cache: Path) -> list[Path]:
    """Files the feature store wrote under ``cache`` (a fresh ``HARKEN_CACHE_DIR``)."""
    root = cache / "features"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty ``HARKEN_CACHE_DIR`` for this test (to check that no encoding happened)."""
    cache = tmp_path / "harken-cache"
    cache.mkdir()
    monkeypatch.setenv("HARKEN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def clip(shared_data) -> Path:
    """A real Kitchen20 clip (FLAC) that every backend ranks as a blender."""
    return shared_data / "kitchen20" / "audio" / "blender" / "0-158737-A-0.flac"


@pytest.fixture(scope="session")
def wave(clip) -> tuple[np.ndarray, int]:
    """The real clip as a mono float32 waveform at its own rate."""
    data, rate = sf.read(str(clip), dtype="float32", always_2d=True)
    return data.mean(axis=1, dtype=np.float64).astype(np.float32), rate


@pytest.fixture(scope="session")
def other_wave(shared_data) -> tuple[np.ndarray, int]:
    """A second real clip (water flowing), mono float32."""
    path = sorted((shared_data / "kitchen20" / "audio" / "water-flowing").glob("*.flac"))[0]
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1, dtype=np.float64).astype(np.float32), rate


def write_wav(path: Path, data: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``data`` (``[T]`` or ``[T, C]``) as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def kitchen_rows(shared_data: Path, classes=CLASSES, per_class: int = 3) -> list[dict]:
    """``per_class`` real Kitchen20 rows of each class (absolute paths)."""
    with open(shared_data / "kitchen20" / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for c in classes:
        for r in [r for r in rows if r["label"] == c][:per_class]:
            out.append({"path": str(shared_data / "kitchen20" / r["path"]), "label": c})
    return out


def write_csv(path: Path, rows: list[dict], columns=("path", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def four_class_csv(shared_data, tmp_path_factory) -> Path:
    """A generic-CSV dataset: 4 Kitchen20 classes × 3 real clips."""
    return write_csv(tmp_path_factory.mktemp("four") / "four.csv", kitchen_rows(shared_data))
