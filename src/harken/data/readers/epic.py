"""EPIC-KITCHENS-100 and EPIC-KITCHENS-55 narrated action segments.

One clip per annotated segment: ``clip_id`` = ``narration_id`` (100) or ``uid`` (55); the span
``[start_timestamp, stop_timestamp)`` (``HH:MM:SS.ff``) inside the long recording of its
``video_id``; ``narration`` = the participant's words; ``group`` = ``video_id``; labels
``{"verb": <verb class key>, "noun": <noun class key>, "action": "<verb key> <noun key>"}``.
As in Damen et al. (2018, 2022) and Gebhard et al. (2024, §2) the action is (verb class, **first**
noun class): ``noun_class`` only, the other nouns of ``all_noun_classes`` are ignored. Class keys
come from the class tables (``EPIC_100_{verb,noun}_classes.csv``: ``id,key,...``;
``EPIC_{verb,noun}_classes.csv``: ``verb_id|noun_id,class_key,...``), so names are class names
(e.g. ``take``, ``onion:spring``), never raw narration words.

Recordings are looked up under ``media_dir`` in this order (``P01``, ``P01_01`` as example),
audio-only files first:

1. ``<media_dir>/<P01>/audio/<P01_01>.<ext>``
2. ``<media_dir>/<P01>/<P01_01>.<ext>``
3. ``<media_dir>/<P01_01>.<ext>``
4. ``<media_dir>/audio/<P01_01>.<ext>``
5. ``<media_dir>/<P01>/videos/<P01_01>.<ext>`` (the official EPIC-KITCHENS-100 download)
6. ``<media_dir>/videos/{train,test}/<P01>/<P01_01>.<ext>`` (the EPIC-KITCHENS-55 download)

with ``<ext>`` one of wav, flac, mp3, ogg, m4a, then MP4, mp4, mkv, webm. Without ``media_dir``
the audio path is the expected ``<P01>/videos/<P01_01>.MP4`` (relative, unchecked), enough for
protocols and class knowledge that need annotations only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from pathlib import Path

from harken.data.manifest import Clip, Manifest
from harken.data.readers.base import (
    MAX_LISTED,
    READERS,
    data_root,
    iter_csv_rows,
    read_header,
    require_columns,
)
from harken.errors import DataError

AUDIO_EXTS = ("wav", "flac", "mp3", "ogg", "m4a")
VIDEO_EXTS = ("MP4", "mp4", "mkv", "webm")
LAYOUTS = (
    "{p}/audio/{v}.{e}",
    "{p}/{v}.{e}",
    "{v}.{e}",
    "audio/{v}.{e}",
    "{p}/videos/{v}.{e}",
    "videos/train/{p}/{v}.{e}",
    "videos/test/{p}/{v}.{e}",
)
_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")

EPIC100_SPLITS = (
    "train",
    "validation",
    "uda_source_train",
    "uda_target_train",
    "uda_validation_source",
    "uda_validation_target",
)


def parse_timestamp(text: str) -> float:
    """``"HH:MM:SS.ff"`` (or ``MM:SS.ff``) → seconds. Raises ValueError on anything else."""
    match = _TIMESTAMP.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not HH:MM:SS.ff")
    hours, minutes, seconds = match.groups()
    if int(minutes) >= 60 or float(seconds) >= 60:
        raise ValueError(f"{text!r} has minutes or seconds ≥ 60")
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def read_class_table(path: Path) -> dict[str, str]:
    """EPIC class table → ``{class index (str): class key}``; works for the 55 and 100 layouts."""
    header = read_header(path) if path.is_file() else []
    if not header:
        raise DataError(
            f"{path}: class table not found or empty; put the EPIC annotation files in data_dir"
        )
    key_column = "key" if "key" in header else "class_key"
    id_column = header[0]
    require_columns(path, header, [id_column, key_column])
    table: dict[str, str] = {}
    for line, row in iter_csv_rows(path):
        if not row[id_column].isdigit() or not row[key_column]:
            raise DataError(
                f"{path}, line {line}: expected a class index and key, got "
                f"{row[id_column]!r}, {row[key_column]!r}; restore the file"
            )
        table[row[id_column]] = row[key_column]
    return table


def find_recording(media_dir: Path, participant: str, video_id: str) -> Path | None:
    """The first existing recording of ``video_id`` under ``media_dir`` (see module docstring)."""
    for ext in (*AUDIO_EXTS, *VIDEO_EXTS):
        for layout in LAYOUTS:
            path = media_dir / layout.format(p=participant, v=video_id, e=ext)
            if path.is_file():
                return path
    return None


def find_video(media_dir: Path, participant: str, video_id: str) -> Path | None:
    for ext in VIDEO_EXTS:
        for layout in LAYOUTS:
            path = media_dir / layout.format(p=participant, v=video_id, e=ext)
            if path.is_file():
                return path
    return None


def read_epic_segments(
    annotations: Path,
    verb_table: Path,
    noun_table: Path,
    *,
    name: str,
    media_dir: str | Path | None = None,
    missing: str = "error",
    only_videos: Collection[str] | None = None,
) -> Manifest:
    """Read one EPIC annotation CSV (55 or 100 layout) into a manifest of segments.

    Args:
        annotations: The segment CSV (e.g. ``EPIC_100_validation.csv``).
        verb_table: The verb class table.
        noun_table: The noun class table.
        name: Dataset name for the manifest.
        media_dir: Folder with the long recordings (see module docstring); None: annotations only.
        missing: With ``media_dir``, what to do with segments whose recording is absent:
            ``"error"`` (one DataError listing them) or ``"skip"`` (drop those segments).
        only_videos: Keep only the segments of these video ids (None: all).

    Returns:
        One clip per segment, in file order.

    Raises:
        DataError: naming the file and line of a malformed row, or listing missing recordings.
    """
    if missing not in ("error", "skip"):
        raise DataError(f"missing must be 'error' or 'skip', not {missing!r}")
    verbs, nouns = read_class_table(verb_table), read_class_table(noun_table)
    if not annotations.is_file():
        raise DataError(
            f"{annotations}: annotation file not found; put the EPIC annotation CSVs in data_dir"
        )
    header = read_header(annotations)
    id_column = "narration_id" if "narration_id" in header else "uid"
    require_columns(
        annotations,
        header,
        [
            id_column,
            "participant_id",
            "video_id",
            "start_timestamp",
            "stop_timestamp",
            "narration",
            "verb_class",
            "noun_class",
        ],
    )
    media = Path(media_dir).expanduser() if media_dir is not None else None
    recordings: dict[str, Path | None] = {}
    videos: dict[str, Path | None] = {}
    clips: list[Clip] = []
    absent: dict[str, int] = {}
    for line, row in iter_csv_rows(annotations):
        where = f"{annotations}, line {line}"
        try:
            start = parse_timestamp(row["start_timestamp"])
            end = parse_timestamp(row["stop_timestamp"])
        except ValueError as exc:
            raise DataError(f"{where}: bad timestamp ({exc}); fix or remove the row") from None
        if end <= start:
            raise DataError(
                f"{where}: stop {row['stop_timestamp']} is not after start "
                f"{row['start_timestamp']}; fix or remove the row"
            )
        verb = verbs.get(row["verb_class"])
        noun = nouns.get(_first_noun(row, where))
        if verb is None or noun is None:
            raise DataError(
                f"{where}: verb_class {row['verb_class']!r} or noun_class "
                f"{row['noun_class']!r} is not in the class tables ({verb_table.name}, "
                f"{noun_table.name}); use the tables of the same EPIC release"
            )
        video_id, participant = row["video_id"], row["participant_id"]
        if only_videos is not None and video_id not in only_videos:
            continue
        if not row[id_column] or not video_id:
            raise DataError(f"{where}: empty {id_column} or video_id; fix or remove the row")
        if media is None:
            audio, video = Path(participant, "videos", f"{video_id}.MP4"), None
        else:
            if video_id not in recordings:
                recordings[video_id] = find_recording(media, participant, video_id)
                videos[video_id] = find_video(media, participant, video_id)
            audio, video = recordings[video_id], videos[video_id]
            if audio is None:
                absent[video_id] = absent.get(video_id, 0) + 1
                continue
        clips.append(
            Clip(
                clip_id=row[id_column],
                audio_path=audio,
                labels={"verb": verb, "noun": noun, "action": f"{verb} {noun}"},
                start=start,
                end=end,
                video_path=video,
                narration=row["narration"] or None,
                group=video_id,
            )
        )
    if absent and missing == "error":
        shown = ", ".join(list(absent)[:MAX_LISTED])
        more = f" and {len(absent) - MAX_LISTED} more" if len(absent) > MAX_LISTED else ""
        raise DataError(
            f"{annotations}: no recording found under {media} for {len(absent)} video(s) "
            f"({sum(absent.values())} segments): {shown}{more}. Expected e.g. "
            f"{media}/<participant>/videos/<video_id>.MP4 (see harken.data.readers.epic for all "
            "layouts); download them, or pass missing='skip' to drop those segments"
        )
    return Manifest(name, clips, annotations.parent)


def _first_noun(row: dict[str, str], where: str) -> str:
    """``noun_class`` (the first noun); checked against ``all_noun_classes`` when present."""
    noun = row["noun_class"]
    listed = row.get("all_noun_classes", "")
    if listed:
        try:
            classes = [str(c) for c in ast.literal_eval(listed)]
        except (ValueError, SyntaxError):
            raise DataError(
                f"{where}: all_noun_classes {listed!r} is not a list; fix the row"
            ) from None
        if classes and classes[0] != noun:
            raise DataError(
                f"{where}: noun_class {noun} is not the first of all_noun_classes "
                f"{listed}; the file is inconsistent"
            )
    return noun


def _annotation_dir(data_dir, folder: str, marker: str, release: str) -> Path:
    root = data_root(data_dir, folder, marker)
    if root is None:
        raise DataError(
            f"{release} annotations not found (looked for {marker} in {data_dir or '-'}, "
            f"{data_dir or '-'}/{folder} and $HARKEN_DATA_DIR); download the annotation CSVs from "
            f"github.com/epic-kitchens/{folder}-annotations and pass their folder as data_dir"
        )
    return root


@READERS.register("epic100")
def read_epic100(
    data_dir: str | Path | None = None,
    *,
    split: str = "validation",
    spec: str | None = None,
    media_dir: str | Path | None = None,
    missing: str = "error",
) -> Manifest:
    """EPIC-KITCHENS-100 segments of one split (``epic100:<split>`` selects it by name).

    Args:
        data_dir: Folder with ``EPIC_100_*.csv`` (or its parent holding ``epic-kitchens-100/``).
        split: ``validation`` (default), ``train``, ``uda_source_train``, ... or a CSV file name.
        spec: Split given as ``epic100:<split>`` (overrides ``split``).
        media_dir: Folder with the recordings; None reads annotations only.
        missing: ``"error"`` or ``"skip"`` for segments whose recording is absent.

    Returns:
        Manifest named ``epic100-<split>``.
    """
    split = spec or split
    filename = split if split.endswith(".csv") else f"EPIC_100_{split}.csv"
    root = _annotation_dir(
        data_dir, "epic-kitchens-100", "EPIC_100_verb_classes.csv", "EPIC-KITCHENS-100"
    )
    if not (root / filename).is_file():
        found = sorted(p.name for p in root.glob("EPIC_100_*.csv"))
        raise DataError(f"{root / filename}: not found; splits here: {', '.join(found)}")
    return read_epic_segments(
        root / filename,
        root / "EPIC_100_verb_classes.csv",
        root / "EPIC_100_noun_classes.csv",
        name=f"epic100-{Path(filename).stem.removeprefix('EPIC_100_')}",
        media_dir=media_dir,
        missing=missing,
    )


@READERS.register("epic55")
def read_epic55(
    data_dir: str | Path | None = None,
    *,
    spec: str | None = None,
    media_dir: str | Path | None = None,
    missing: str = "error",
) -> Manifest:
    """EPIC-KITCHENS-55 training segments (``EPIC_train_action_labels.csv``).

    Args:
        data_dir: Folder with the EPIC-55 annotation CSVs (or its parent holding
            ``epic-kitchens-55/``).
        spec: Optional annotation file name (``epic55:<file>.csv``).
        media_dir: Folder with the recordings; None reads annotations only.
        missing: ``"error"`` or ``"skip"`` for segments whose recording is absent.

    Returns:
        Manifest named ``epic55``.
    """
    root = _annotation_dir(
        data_dir, "epic-kitchens-55", "EPIC_verb_classes.csv", "EPIC-KITCHENS-55"
    )
    return read_epic_segments(
        root / (spec or "EPIC_train_action_labels.csv"),
        root / "EPIC_verb_classes.csv",
        root / "EPIC_noun_classes.csv",
        name="epic55",
        media_dir=media_dir,
        missing=missing,
    )
