"""The generic CSV reader: any labelled audio collection described by one CSV file.

Layout rule (header row required, column order free, names case-sensitive)::

    path,label[,fold][,group][,start,end][,video][,narration][,sounding][,id | clip_id][,...]

(``...``: more label columns).

* ``path``: the audio (or video) file, relative to the CSV's folder or absolute. A
  relative path may not climb out of that folder (``../../etc/passwd`` is refused: a CSV from
  elsewhere must not reach files outside its own tree); to use files elsewhere, move the CSV
  above them or write their absolute paths, which are taken as the author's explicit choice.
  Required unless there is a ``video`` column: a tri-modal CSV (audio, frames, narration) may give
  only ``video``, and a row without a ``path`` reads its audio from its video file
  (``audio_path = video``).
* ``start``/``end`` (optional, seconds): a span inside the file; either may be empty (file start /
  file end); ``end`` must be after ``start``.
* ``video`` (optional): a video file, resolved like ``path``.
* ``narration``, ``fold``, ``group`` (optional): copied to the clip.
* ``sounding`` (optional): whether the narrated action is both visible and audible
  (SoundingActions, Chen et al. 2024, §5): ``yes``/``no``, ``true``/``false`` or ``1``/``0`` (any
  case); empty means unknown (None). Anything else is an error naming the line and the value.
* ``id`` or ``clip_id`` (optional): the clip id; without it the id is the path (else the video) as
  written in the CSV plus ``@<start>-<end>`` when a span is given (e.g. ``audio/a.wav@1.5-3``).
* **every other column is a label column** (a prediction target), e.g. ``label``, ``verb``,
  ``noun``, ``action``; at least one is required (none may be empty), except in a CSV with a
  ``narration`` column, whose clips may carry no labels at all (``labels == {}``: the narration is
  the text of a tri-modal clip).

A class with a single clip gets a warning: no protocol can both train and hold out clips of it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from pathlib import Path

from harken.data.manifest import Clip, Manifest
from harken.data.readers.base import check_missing_files, iter_csv_rows, read_header
from harken.errors import DataError

RESERVED = (
    "path",
    "start",
    "end",
    "video",
    "narration",
    "sounding",
    "fold",
    "group",
    "id",
    "clip_id",
)
TRUE_WORDS = ("yes", "true", "1")
FALSE_WORDS = ("no", "false", "0")
FIX = "fix the row or remove it"


def _seconds(path: Path, line: int, column: str, text: str) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}, line {line}: {column} {text!r} is not a number of seconds; {FIX}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise DataError(f"{path}, line {line}: {column} {text!r} must be ≥ 0 seconds; {FIX}")
    return value


def parse_sounding(text: str, where: str) -> bool | None:
    """A ``sounding`` cell → True / False / None (empty).

    Args:
        text: ``yes``/``no``, ``true``/``false``, ``1``/``0`` (any case, surrounding spaces
            ignored) or empty.
        where: ``"<file>, line <n>"`` for the error message.

    Raises:
        DataError: any other value (naming ``where`` and the value).
    """
    word = text.strip().lower()
    if word == "":
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise DataError(
        f"{where}: sounding {text!r} is not yes/no, true/false or 1/0 (empty: unknown); {FIX}"
    )


def _inside(root: Path, csv_path: Path, line: int, column: str, rel: str) -> Path:
    """``root / rel``, refusing a relative path that climbs out of ``root``."""
    if Path(rel).is_absolute():
        return Path(rel)
    joined = Path(os.path.normpath(root / rel))
    base = Path(os.path.normpath(root))
    if joined != base and base not in joined.parents:
        raise DataError(
            f"{csv_path}, line {line}: {column} {rel!r} points outside {base}; relative paths "
            "must stay inside the CSV's folder — move the CSV above the files or write their "
            "absolute paths"
        )
    return joined


def warn_single_clip_classes(clips: list[Clip], columns: list[str], source: str) -> None:
    """Warn about classes with one clip (they cannot be both trained on and held out)."""
    for column in columns:
        counts = Counter(c.labels[column] for c in clips)
        single = sorted(label for label, n in counts.items() if n == 1)
        if single:
            warnings.warn(
                f"{source}: {len(single)} class(es) of column {column!r} have a single clip "
                f"(e.g. {single[:5]}); they cannot be split into train and held-out clips "
                "(GZSL held_out), add clips or remove them",
                UserWarning,
                stacklevel=3,
            )


def _span_suffix(start: float | None, end: float | None) -> str:
    if start is None and end is None:
        return ""
    return f"@{'' if start is None else f'{start:g}'}-{'' if end is None else f'{end:g}'}"


def read_csv_manifest(
    csv_path: str | Path,
    *,
    name: str | None = None,
    check_files: bool = True,
    data_dir: str | Path | None = None,
) -> Manifest:
    """Read a CSV in the generic layout (see the module docstring) into a manifest.

    Args:
        csv_path: The CSV file.
        name: Dataset name (default: the CSV's file stem).
        check_files: Verify that every audio file exists (one error lists all missing ones).
        data_dir: Folder relative paths are resolved against (default: the CSV's folder).

    Returns:
        One clip per row, in file order.

    Raises:
        DataError: a malformed row (message names the file, the 1-based line and the problem),
            missing columns, duplicate ids, or missing audio files.
    """
    csv_path = Path(csv_path).expanduser()
    root = Path(data_dir).expanduser() if data_dir is not None else csv_path.parent
    if csv_path.is_dir():
        raise DataError(f"{csv_path}: is a folder; give the CSV file inside it")
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: CSV file not found; check the path")
    header = read_header(csv_path)
    if "path" not in header and "video" not in header:
        raise DataError(
            f"{csv_path}: no 'path' column; the header is {','.join(header) or '(empty)'} "
            "and must be path,label[,fold,...] (or video,narration[,sounding,...])"
        )
    label_columns = [h for h in header if h and h not in RESERVED]
    if not label_columns and "narration" not in header:
        raise DataError(
            f"{csv_path}: no label column; add a 'label' column (or verb/noun/action) next to "
            "'path' (or a 'narration' column for unlabelled tri-modal clips)"
        )
    id_column = "id" if "id" in header else ("clip_id" if "clip_id" in header else None)

    clips: list[Clip] = []
    first_line: dict[str, int] = {}
    for line, row in iter_csv_rows(csv_path):
        video = row.get("video", "")
        rel = row.get("path", "") or video
        if not rel:
            what = "the path" if "path" in header else "the video"
            raise DataError(f"{csv_path}, line {line}: {what} is missing; {FIX}")
        labels = {}
        for column in label_columns:
            if not row[column]:
                raise DataError(f"{csv_path}, line {line}: empty label in column {column!r}; {FIX}")
            labels[column] = row[column]
        start = _seconds(csv_path, line, "start", row.get("start", ""))
        end = _seconds(csv_path, line, "end", row.get("end", ""))
        if start is not None and end is not None and end <= start:
            raise DataError(
                f"{csv_path}, line {line}: end {end:g} s is not after start {start:g} s; {FIX}"
            )
        clip_id = row[id_column] if id_column else rel + _span_suffix(start, end)
        if not clip_id:
            raise DataError(f"{csv_path}, line {line}: empty {id_column}; {FIX}")
        if clip_id in first_line:
            raise DataError(
                f"{csv_path}, line {line}: duplicate clip id {clip_id!r} (first on line "
                f"{first_line[clip_id]}); give each row a unique id or remove the duplicate"
            )
        first_line[clip_id] = line
        sounding = parse_sounding(row.get("sounding", ""), f"{csv_path}, line {line}")
        clips.append(
            Clip(
                clip_id=clip_id,
                audio_path=_inside(root, csv_path, line, "path", rel),
                labels=labels,
                start=start,
                end=end,
                video_path=_inside(root, csv_path, line, "video", video) if video else None,
                narration=row.get("narration") or None,
                fold=row.get("fold") or None,
                group=row.get("group") or None,
                sounding=sounding,
            )
        )
    warn_single_clip_classes(clips, label_columns, str(csv_path))
    if check_files:
        check_missing_files(
            [c.audio_path for c in clips],
            str(csv_path),
            f"Paths are relative to {root}; fix them or pass check_files=False.",
        )
    return Manifest(name or csv_path.stem, clips, root)
