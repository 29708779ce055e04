"""Dataset readers: turn a dataset's own annotation files into a :class:`~harken.data.Manifest`.

``read_dataset(spec)`` accepts a registered dataset name or the path of a CSV file:

* ``kitchen20`` — Kitchen20 (20 kitchen sound classes, 1,070 clips); downloaded when absent.
* ``epic100`` / ``epic100:<split>`` — EPIC-KITCHENS-100 narrated segments (``validation``,
  ``train``, ``uda_source_train``, ...), labels ``verb``/``noun``/``action``.
* ``epic55`` — EPIC-KITCHENS-55 training segments, same labels.
* ``epic100-sounding`` / ``epic100-sounding:<split>`` — EPIC-KITCHENS-100 segments with a
  sounding *proxy* from EPIC-SOUNDS overlap (:mod:`harken.data.readers.epic_sounding`).
* ``ego4d`` / ``ego4d:<pass>`` — Ego4D narrations as 1.5 s tri-modal clips (``narration.json``).
* ``avmini`` / ``avmini:sounding`` — av-mini's 36 video clips, or its (clip, VGGSounder tag)
  sounding pairs.
* ``path/to/file.csv`` — the generic CSV reader (:func:`read_csv_manifest`).
* ``path/to/shards-{000..009}.tar`` / ``webdataset:<shards or folder>`` — WebDataset shards of
  audio + json samples, the LAION-audio layout (:func:`read_webdataset`).

Every reader is a factory ``reader(data_dir=None, **options) -> Manifest`` registered in
:data:`READERS`; the part of a name after ``:`` reaches the reader as ``spec``.
"""

from __future__ import annotations

from pathlib import Path

from harken.data.manifest import Manifest
from harken.data.readers.avmini import read_avmini
from harken.data.readers.base import READERS
from harken.data.readers.ego4d import read_ego4d, read_ego4d_narrations
from harken.data.readers.epic import read_epic55, read_epic100
from harken.data.readers.epic_sounding import SoundingSegment, read_epic100_sounding, sounding_proxy
from harken.data.readers.generic import read_csv_manifest
from harken.data.readers.kitchen20 import read_kitchen20
from harken.data.readers.webdataset import is_shard_spec, read_webdataset
from harken.errors import ConfigError

__all__ = [
    "READERS",
    "SoundingSegment",
    "read_avmini",
    "read_csv_manifest",
    "read_dataset",
    "read_ego4d",
    "read_ego4d_narrations",
    "read_epic55",
    "read_epic100",
    "read_epic100_sounding",
    "read_kitchen20",
    "read_webdataset",
    "sounding_proxy",
]


def read_dataset(spec: str | Path, data_dir: str | Path | None = None, **options) -> Manifest:
    """Read a dataset by registered name (``"kitchen20"``, ``"epic100:validation"``) or CSV path.

    Args:
        spec: A name registered in :data:`READERS` (optionally ``name:arg``), the path of a
            CSV file in the generic layout (see :func:`read_csv_manifest`), or WebDataset shards
            (a ``.tar`` path or brace pattern, see :func:`read_webdataset`).
        data_dir: Where the dataset lives (reader-specific; None: the reader's default).
        **options: Passed to the reader (e.g. ``media_dir``, ``check_files``).

    Returns:
        The dataset's manifest.

    Raises:
        ConfigError: ``spec`` is neither a registered name nor an existing CSV file.
        DataError: the dataset's files are missing or malformed.
    """
    text = str(spec)
    path = Path(text).expanduser()
    if text in READERS and not path.is_file():
        return READERS.create(text, data_dir=data_dir, **options)
    if is_shard_spec(text):
        return read_webdataset(data_dir, spec=text, **options)
    if path.suffix.lower() == ".csv" or path.is_file():
        if data_dir is not None and not path.is_absolute() and not path.exists():
            path = Path(data_dir) / path
        if not path.is_file():
            raise ConfigError(f"{path}: CSV file not found; check the path")
        return read_csv_manifest(path, **options)
    raise ConfigError(
        f"unknown dataset {text!r}: give one of {', '.join(sorted(READERS))}, "
        "the path of a CSV file (columns path,label[,fold,...]) or WebDataset shards "
        "(shards-{000..009}.tar)"
    )
