"""Kitchen20 (Moreaux et al., 2019): 1,070 five-second kitchen sound clips in 20 classes.

Two layouts are read:

* **harken's** ``labels.csv`` — ``path,label,fold,source_id,take`` with paths
  ``audio/<label>/<stem>.<ext>`` and folds 1–9 (the copy in ``shared/data/kitchen20`` and what
  :func:`~harken.data.download.ensure_kitchen20` produces);
* **upstream's** ``kitchen20.csv`` (github.com/marc-moreaux/kitchen20) —
  ``,category,fold,orig_idx,path,take,target,usr_id`` with flat paths
  ``audio/<fold>-<usr_id>-<take>-<target>.wav`` and 0-based folds 0–8, read as folds 1–9.

Either way a clip has ``labels={"label": <class>}``, its published fold, ``group`` = the Freesound
source id (several takes are cut from one source recording: keep them on one side of a split)
and ``clip_id = "audio/<label>/<file stem>"``, so ids agree between the two layouts.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from harken.data.download import UPSTREAM_CSV, ensure_kitchen20
from harken.data.manifest import Clip, Manifest
from harken.data.readers.base import (
    READERS,
    check_missing_files,
    iter_csv_rows,
    read_header,
    require_columns,
)
from harken.errors import DataError

LABELS_CSV = "labels.csv"


def _clip(root: Path, line: int, csv_path: Path, rel: str, label: str, fold: str, group: str):
    if not rel or not label:
        raise DataError(
            f"{csv_path}, line {line}: empty path or label; restore the file from the dataset "
            "(delete the folder to download it again)"
        )
    stem = PurePosixPath(rel).stem
    return Clip(
        clip_id=f"audio/{label}/{stem}",
        audio_path=root / rel,
        labels={"label": label},
        fold=fold or None,
        group=group or None,
    )


def _read_labels_csv(root: Path) -> list[Clip]:
    csv_path = root / LABELS_CSV
    require_columns(csv_path, read_header(csv_path), ["path", "label", "fold", "source_id"])
    return [
        _clip(root, line, csv_path, r["path"], r["label"], r["fold"], r["source_id"])
        for line, r in iter_csv_rows(csv_path)
    ]


def _read_upstream_csv(root: Path) -> list[Clip]:
    csv_path = root / UPSTREAM_CSV
    require_columns(csv_path, read_header(csv_path), ["path", "category", "fold", "usr_id"])
    clips = []
    for line, r in iter_csv_rows(csv_path):
        try:
            fold = str(int(r["fold"]) + 1)
        except ValueError:
            raise DataError(
                f"{csv_path}, line {line}: fold {r['fold']!r} is not an integer; restore the "
                "file from github.com/marc-moreaux/kitchen20"
            ) from None
        clips.append(_clip(root, line, csv_path, r["path"], r["category"], fold, r["usr_id"]))
    return clips


@READERS.register("kitchen20")
def read_kitchen20(
    data_dir: str | Path | None = None,
    *,
    check_files: bool = True,
    download: bool = True,
    url: str | None = None,
) -> Manifest:
    """Read Kitchen20, downloading it into the harken cache when it is not found.

    Args:
        data_dir: The Kitchen20 folder (holding ``labels.csv`` or upstream ``kitchen20.csv``) or
            its parent; see :func:`~harken.data.download.ensure_kitchen20` for the search order.
        check_files: Verify that every audio file exists.
        download: Download when not found (False: raise instead).
        url: Download URL override (default ``$HARKEN_KITCHEN20_URL`` or the GitHub archive).

    Returns:
        The 1,070-clip manifest named ``"kitchen20"``.
    """
    root = ensure_kitchen20(data_dir, url=url, download=download)
    clips = _read_labels_csv(root) if (root / LABELS_CSV).is_file() else _read_upstream_csv(root)
    if check_files:
        check_missing_files(
            [c.audio_path for c in clips],
            f"Kitchen20 at {root}",
            "The copy is incomplete: delete the folder and read it again to re-download, or pass "
            "check_files=False.",
        )
    return Manifest("kitchen20", clips, root)
