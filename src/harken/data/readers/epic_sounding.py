"""A *proxy* for sounding actions on EPIC-KITCHENS-100: narrated segments that overlap an
EPIC-SOUNDS event.

SoundingActions (Chen et al. 2024, §5) labels a clip *sounding* when human annotators judge that
the narrated action is both visible and audible. No such labels exist for EPIC-KITCHENS; this
module derives a **proxy, not the paper's human labels**: EPIC-KITCHENS-100 narrated segments
(visible actions, ``EPIC_100_<split>.csv``) are matched with EPIC-SOUNDS (Huh et al. 2023) audio
annotations of the same recordings (``EPIC_Sounds_<split>.csv``: ``annotation_id,
participant_id,video_id,start_timestamp,stop_timestamp,start_sample,stop_sample,description,
class,class_id``), which mark every audible event in the audio stream regardless of the
narration.

**Rule.** For a segment ``[s, e)`` of video ``v``, let ``c`` be the length of the union of its
intersections with the EPIC-SOUNDS events of ``v`` (classes in ``exclude_classes`` left out,
``background`` by default: it is not the sound of an action). The segment is sounding when

    c > 0  and  c ≥ min_overlap  and  c ≥ min_fraction · (e − s)

(defaults ``min_overlap = 0.1`` s, ``min_fraction = 0``). Only videos annotated in both files are
kept. The proxy is generous: any audible event during the segment counts, even one caused by
something other than the narrated action (on the validation split about 78 % of segments are
positive with the defaults, against 54 % in the paper's Ego4D annotations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harken.data.manifest import Manifest
from harken.data.readers.base import READERS, data_root, iter_csv_rows, read_header, require_columns
from harken.data.readers.epic import (
    _annotation_dir,
    parse_timestamp,
    read_epic_segments,
)
from harken.errors import ConfigError, DataError

MIN_OVERLAP_S = 0.1
#: The splits annotated by both EPIC-KITCHENS-100 and EPIC-SOUNDS.
SPLITS = ("validation", "train")
EXCLUDED_CLASSES = ("background",)
_SEGMENT_COLUMNS = ("video_id", "start_timestamp", "stop_timestamp", "narration")
_SOUND_COLUMNS = ("video_id", "start_timestamp", "stop_timestamp", "class")


@dataclass(frozen=True)
class SoundingSegment:
    """One narrated EPIC-KITCHENS segment with its sounding proxy.

    Attributes:
        narration_id: The segment's id (``narration_id``, or ``uid`` in EPIC-55 files).
        video_id: Its recording.
        start: Start, seconds.
        stop: Stop, seconds.
        narration: The participant's narration.
        sounding: The proxy label (see the module docstring).
        covered: Seconds of the segment covered by (non-excluded) sound events.
    """

    narration_id: str
    video_id: str
    start: float
    stop: float
    narration: str
    sounding: bool
    covered: float


def _times(row: dict[str, str], where: str) -> tuple[float, float]:
    try:
        start = parse_timestamp(row["start_timestamp"])
        stop = parse_timestamp(row["stop_timestamp"])
    except ValueError as exc:
        raise DataError(f"{where}: bad timestamp ({exc}); fix or remove the row") from None
    if stop < start:
        raise DataError(f"{where}: stop is before start; fix or remove the row")
    return start, stop


def read_sound_events(
    sounds_csv: str | Path, exclude_classes: Sequence[str] = EXCLUDED_CLASSES
) -> dict[str, list[tuple[float, float]]]:
    """EPIC-SOUNDS annotations → ``{video_id: [(start, stop), ...]}`` sorted by start, without
    the events of ``exclude_classes``. A video whose events are all excluded maps to ``[]``
    (it is still annotated).

    Raises:
        DataError: a missing file or column, or a bad timestamp (naming file and line).
    """
    path = Path(sounds_csv).expanduser()
    require_columns(path, read_header(path), list(_SOUND_COLUMNS))
    excluded = set(exclude_classes)
    events: dict[str, list[tuple[float, float]]] = {}
    for line, row in iter_csv_rows(path):
        start, stop = _times(row, f"{path}, line {line}")
        spans = events.setdefault(row["video_id"], [])
        if row["class"] not in excluded:
            spans.append((start, stop))
    for spans in events.values():
        spans.sort()
    return events


def covered_seconds(start: float, stop: float, events: Sequence[tuple[float, float]]) -> float:
    """Length of ``[start, stop) ∩ (∪ events)``: the seconds of the segment during which at
    least one event sounds (overlapping events counted once). ``events`` sorted by start."""
    total, cur_lo, cur_hi = 0.0, None, None
    for lo, hi in events:
        if lo >= stop:
            break
        lo, hi = max(lo, start), min(hi, stop)
        if hi <= lo:
            continue
        if cur_hi is not None and lo <= cur_hi:
            cur_hi = max(cur_hi, hi)
        else:
            if cur_hi is not None:
                total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
    if cur_hi is not None:
        total += cur_hi - cur_lo
    return total


def is_sounding(covered: float, duration: float, min_overlap: float, min_fraction: float) -> bool:
    """The proxy rule: ``c > 0 and c ≥ min_overlap and c ≥ min_fraction · duration``."""
    return covered > 0 and covered >= min_overlap and covered >= min_fraction * duration


def _check_rule(min_overlap: float, min_fraction: float) -> None:
    if not min_overlap >= 0 or not 0 <= min_fraction <= 1:
        raise ConfigError(
            f"min_overlap must be ≥ 0 s and min_fraction in [0, 1], not {min_overlap}, "
            f"{min_fraction}"
        )


def sounding_proxy(
    epic_csv: str | Path,
    sounds_csv: str | Path,
    min_overlap: float = MIN_OVERLAP_S,
    *,
    min_fraction: float = 0.0,
    exclude_classes: Sequence[str] = EXCLUDED_CLASSES,
) -> list[SoundingSegment]:
    """Label each narrated segment of ``epic_csv`` sounding or not from ``sounds_csv`` (a proxy;
    see the module docstring for the rule). Annotations only: no media is read.

    Args:
        epic_csv: EPIC-KITCHENS-100 segments (``EPIC_100_validation.csv``, ...).
        sounds_csv: EPIC-SOUNDS events of the same split (``EPIC_Sounds_validation.csv``).
        min_overlap: Seconds of the segment that sound events must cover.
        min_fraction: Fraction of the segment they must cover.
        exclude_classes: EPIC-SOUNDS classes that do not count.

    Returns:
        The segments of the videos annotated in both files, in ``epic_csv`` order.

    Raises:
        ConfigError: a negative ``min_overlap`` or ``min_fraction`` outside [0, 1].
        DataError: a missing file or column, or a malformed row (naming file and line).
    """
    _check_rule(min_overlap, min_fraction)
    events = read_sound_events(sounds_csv, exclude_classes)
    path = Path(epic_csv).expanduser()
    header = read_header(path)
    id_column = "narration_id" if "narration_id" in header else "uid"
    require_columns(path, header, [id_column, *_SEGMENT_COLUMNS])
    out: list[SoundingSegment] = []
    for line, row in iter_csv_rows(path):
        spans = events.get(row["video_id"])
        if spans is None:
            continue
        start, stop = _times(row, f"{path}, line {line}")
        covered = covered_seconds(start, stop, spans)
        out.append(
            SoundingSegment(
                narration_id=row[id_column],
                video_id=row["video_id"],
                start=start,
                stop=stop,
                narration=row["narration"],
                sounding=is_sounding(covered, stop - start, min_overlap, min_fraction),
                covered=covered,
            )
        )
    return out


@READERS.register("epic100-sounding")
def read_epic100_sounding(
    data_dir: str | Path | None = None,
    *,
    spec: str | None = None,
    split: str = "validation",
    sounds_dir: str | Path | None = None,
    media_dir: str | Path | None = None,
    missing: str = "error",
    min_overlap: float = MIN_OVERLAP_S,
    min_fraction: float = 0.0,
    exclude_classes: Sequence[str] = EXCLUDED_CLASSES,
) -> Manifest:
    """EPIC-KITCHENS-100 segments with the EPIC-SOUNDS sounding proxy (``epic100-sounding``,
    ``epic100-sounding:<split>``).

    The clips are those of :func:`~harken.data.readers.epic.read_epic100` (ids, spans, verb /
    noun / action labels, narration, recordings under ``media_dir`` found by
    :func:`~harken.data.readers.epic.find_recording`/``find_video``), restricted to videos
    annotated in both files, with ``sounding`` set by :func:`sounding_proxy`.

    Args:
        data_dir: Folder with ``EPIC_100_*.csv`` (or its parent, also holding ``epic-sounds/``).
        spec: The split (overrides ``split``).
        split: ``validation`` (default) or ``train`` (EPIC-SOUNDS has both).
        sounds_dir: Folder with ``EPIC_Sounds_<split>.csv`` (default: found like ``data_dir``
            under ``epic-sounds/``, or next to the EPIC-100 folder).
        media_dir: Folder with the recordings; None: annotations only (relative paths).
        missing: ``"error"`` or ``"skip"`` for segments whose recording is absent.
        min_overlap, min_fraction, exclude_classes: The proxy rule (see :func:`sounding_proxy`).

    Returns:
        Manifest named ``epic100-sounding-<split>``.
    """
    _check_rule(min_overlap, min_fraction)
    split = spec or split
    if split not in SPLITS:
        raise ConfigError(
            f"unknown EPIC-100 split {split!r} for EPIC-SOUNDS; use validation or train"
        )
    root = _annotation_dir(
        data_dir, "epic-kitchens-100", "EPIC_100_verb_classes.csv", "EPIC-KITCHENS-100"
    )
    sounds_name = f"EPIC_Sounds_{split}.csv"
    sounds_root = data_root(
        sounds_dir if sounds_dir is not None else data_dir, "epic-sounds", sounds_name
    )
    if sounds_root is None:
        sounds_root = data_root(root.parent, "epic-sounds", sounds_name)
    if sounds_root is None:
        raise DataError(
            f"{sounds_name} not found (looked in {sounds_dir or data_dir or '-'}, its "
            f"epic-sounds/ folder, {root.parent / 'epic-sounds'} and $HARKEN_DATA_DIR); download "
            "it from github.com/epic-kitchens/epic-sounds-annotations and pass sounds_dir"
        )
    epic_csv = root / f"EPIC_100_{split}.csv"
    if not epic_csv.is_file():
        raise DataError(f"{epic_csv}: not found; download the EPIC-KITCHENS-100 annotations")
    proxy = sounding_proxy(
        epic_csv,
        sounds_root / sounds_name,
        min_overlap,
        min_fraction=min_fraction,
        exclude_classes=exclude_classes,
    )
    labels = {s.narration_id: s.sounding for s in proxy}
    manifest = read_epic_segments(
        epic_csv,
        root / "EPIC_100_verb_classes.csv",
        root / "EPIC_100_noun_classes.csv",
        name=f"epic100-sounding-{split}",
        media_dir=media_dir,
        missing=missing,
        only_videos={s.video_id for s in proxy},
    )
    clips = [
        dataclasses.replace(c, sounding=labels[c.clip_id])
        for c in manifest.clips
        if c.clip_id in labels
    ]
    return Manifest(manifest.name, clips, root)
