"""Ego4D narrations (Grauman et al., 2022) as short tri-modal clips, sampled as in MC3.

The public ``narration.json`` (Ego4D v1/v2 ``annotations/``) maps each video to its narration
passes::

    {"<video_uid>": {"narration_pass_1": {"narrations": [
        {"timestamp_sec": 12.3, "timestamp_frame": 369, "narration_text": "#C C opens the tap",
         "annotation_uid": "..."}, ...]},
     "narration_pass_2": {...}}, ...}

**One clip per narration** (Chen et al. 2024, §5: "we sample the clip from 0.5 s before to 1 s
after the timestamp (1.5 s duration)"): the span ``[max(0, t − before), t + after]`` with
``before = 0.5`` and ``after = 1.0`` by default. A span is clipped at 0 but not at the end of the
video (its length is not in the annotations; a span past the end fails when decoded).
``clip_id = f"{video_uid}@{t:.3f}"``; narrations of one video at the same timestamp (to the
millisecond) keep only the first, so reading both passes never duplicates a clip. Only pass 1 is
read by default: the two passes narrate the same videos independently, so together they would
give near-duplicate clips.

**Narration text.** Ego4D marks the camera wearer as ``#C C`` and other people as ``#O``
(``"#O man X hands C a cup"``), and uncertain words as ``#unsure``. ``text="clean"`` (default)
drops the ``#C ``/``#O `` markers and ``#unsure`` tags, keeping the subject:
``"#C C opens the tap"`` → ``"C opens the tap"``; ``text="action"`` also drops a leading camera
wearer ``C``: ``"opens the tap"``; ``text="raw"`` keeps the original. ``wearer_only=True`` keeps
only the camera wearer's narrations (``#C``), the actions MC3 learns (§3).

**Media.** The video of ``<video_uid>`` is ``<media_dir>/<video_uid>.mp4``, else
``<media_dir>/<subfolder>/<video_uid>.mp4`` (one level, subfolders in sorted order); its audio is
read from the same file (``audio_path = video_path``). Narrations whose video is missing are
skipped with one warning counting them; none found at all is a :class:`DataError`. Without
``media_dir`` the paths are the relative ``<video_uid>.mp4`` (unchecked): annotations only.

**Sounding labels.** The paper's human annotations (§5: whether the narrated action is both
visible and audible) are not in ``narration.json``; a user who has them passes a CSV
``video_uid,timestamp_sec,sounding`` (values as in the generic CSV: yes/no, true/false, 1/0,
empty) joined on the video and the timestamp within 1 ms. Unmatched clips keep ``sounding=None``.

Clips carry ``labels == {}`` and ``group = video_uid``.
"""

from __future__ import annotations

import json
import re
import warnings
from bisect import bisect_left
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
from harken.data.readers.generic import parse_sounding
from harken.errors import ConfigError, DataError

NARRATIONS_JSON = "narration.json"
PASSES = ("narration_pass_1", "narration_pass_2")
BEFORE_S = 0.5
AFTER_S = 1.0
TIME_TOLERANCE_S = 1e-3
TEXT_MODES = ("clean", "action", "raw")
_MARKER = re.compile(r"#[CO]\s+")
_UNSURE = re.compile(r"\s*#unsure\b", re.IGNORECASE)
_WEARER = re.compile(r"^C\s+")


def clean_narration(text: str, mode: str = "clean") -> str:
    """An Ego4D narration without its markers (see the module docstring).

    ``"#C C opens the tap"`` → ``"C opens the tap"`` (``clean``), ``"opens the tap"``
    (``action``), unchanged (``raw``). Whitespace is collapsed.

    Raises:
        ConfigError: an unknown ``mode``.
    """
    if mode not in TEXT_MODES:
        raise ConfigError(f"text must be one of {', '.join(TEXT_MODES)}, not {mode!r}")
    if mode == "raw":
        return text
    out = " ".join(_UNSURE.sub("", _MARKER.sub("", text.strip())).split())
    if mode == "action":
        out = _WEARER.sub("", out)
    return out


def _passes(spec: str | None, passes) -> tuple[str, ...]:
    if spec:
        choice = {"1": PASSES[:1], "2": PASSES[1:], "all": PASSES, "1,2": PASSES}.get(spec)
        if choice is None:
            raise ConfigError(f"unknown Ego4D pass {spec!r}; use ego4d:1, ego4d:2 or ego4d:all")
        return choice
    chosen = (passes,) if isinstance(passes, str) else tuple(passes)
    unknown = [p for p in chosen if p not in PASSES]
    if unknown or not chosen:
        raise ConfigError(f"passes must be among {', '.join(PASSES)}, not {unknown or chosen}")
    return chosen


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: narration file not found; download Ego4D's narration.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); download narration.json again") from exc
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: expected an object {{video_uid: {{narration_pass_1: ...}}}}, got "
            f"{type(data).__name__}; is this Ego4D's narration.json?"
        )
    return data


def _video_index(media_dir: Path) -> dict[str, Path]:
    """``video_uid`` → its mp4: top-level files first, then one level of subfolders (sorted)."""
    if not media_dir.is_dir():
        raise DataError(f"{media_dir}: media folder not found; pass the folder with the mp4 files")
    index: dict[str, Path] = {}
    for path in sorted(media_dir.glob("*.mp4")):
        index.setdefault(path.stem, path)
    for path in sorted(media_dir.glob("*/*.mp4")):
        index.setdefault(path.stem, path)
    return index


def read_sounding_labels(path: str | Path) -> dict[str, list[tuple[float, bool | None]]]:
    """A ``video_uid,timestamp_sec,sounding`` CSV → ``{video_uid: [(t, sounding), ...]}`` sorted
    by time.

    Raises:
        DataError: missing columns, a bad timestamp or sounding value (naming file and line).
    """
    path = Path(path).expanduser()
    require_columns(path, read_header(path), ["video_uid", "timestamp_sec", "sounding"])
    table: dict[str, list[tuple[float, bool | None]]] = {}
    for line, row in iter_csv_rows(path):
        where = f"{path}, line {line}"
        try:
            t = float(row["timestamp_sec"])
        except ValueError:
            raise DataError(
                f"{where}: timestamp_sec {row['timestamp_sec']!r} is not a number; fix the row"
            ) from None
        table.setdefault(row["video_uid"], []).append((t, parse_sounding(row["sounding"], where)))
    for rows in table.values():
        rows.sort(key=lambda r: r[0])
    return table


def _lookup(rows: list[tuple[float, bool | None]] | None, t: float) -> bool | None:
    """The label at the timestamp nearest ``t`` within :data:`TIME_TOLERANCE_S` (else None)."""
    if not rows:
        return None
    i = bisect_left(rows, t - TIME_TOLERANCE_S, key=lambda r: r[0])
    if i < len(rows) and abs(rows[i][0] - t) <= TIME_TOLERANCE_S:
        return rows[i][1]
    return None


def read_ego4d_narrations(
    narrations: str | Path,
    *,
    media_dir: str | Path | None = None,
    before: float = BEFORE_S,
    after: float = AFTER_S,
    passes: str | tuple[str, ...] = PASSES[:1],
    text: str = "clean",
    wearer_only: bool = False,
    sounding_csv: str | Path | None = None,
    labelled_only: bool = False,
    name: str = "ego4d",
) -> Manifest:
    """Read Ego4D's ``narration.json`` into one 1.5 s clip per narration (see the module doc).

    Args:
        narrations: The ``narration.json`` file.
        media_dir: Folder with ``<video_uid>.mp4`` (or one subfolder level); None: annotations
            only (relative, unchecked paths).
        before: Seconds before the timestamp (Chen et al. 2024 §5: 0.5).
        after: Seconds after the timestamp (§5: 1.0).
        passes: Which narration passes (default pass 1 only).
        text: ``clean``, ``action`` or ``raw`` narration text (:func:`clean_narration`).
        wearer_only: Keep only the camera wearer's narrations (``#C``).
        sounding_csv: Optional ``video_uid,timestamp_sec,sounding`` labels.
        labelled_only: With ``sounding_csv``, keep only the clips it labels.
        name: Dataset name.

    Returns:
        The clips in file order (videos as listed, narrations by pass, then as listed).

    Raises:
        ConfigError: a negative ``before``, non-positive ``after``, unknown pass or text mode.
        DataError: a missing or malformed file (naming it, and the video and narration), or
            no video found under ``media_dir`` at all.
    """
    if not before >= 0 or not after > 0:
        raise ConfigError(f"before must be ≥ 0 and after > 0 seconds, not {before}, {after}")
    passes = _passes(None, passes)
    clean_narration("", text)  # validates the mode up front
    path = Path(narrations).expanduser()
    data = _load_json(path)
    labels = read_sounding_labels(sounding_csv) if sounding_csv is not None else None
    media = Path(media_dir).expanduser() if media_dir is not None else None
    videos = _video_index(media) if media is not None else None
    clips: list[Clip] = []
    absent: dict[str, int] = {}
    for uid, entry in data.items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: video {uid!r} holds {type(entry).__name__}, not an object")
        seen: set[str] = set()
        for pass_name in passes:
            block = entry.get(pass_name)
            if block is None:
                continue
            items = block.get("narrations") if isinstance(block, dict) else None
            if not isinstance(items, list):
                raise DataError(f"{path}: video {uid!r}, {pass_name} has no 'narrations' list")
            for k, item in enumerate(items):
                where = f"{path}: video {uid!r}, {pass_name} narration {k}"
                try:
                    t = float(item["timestamp_sec"])
                    raw = str(item["narration_text"])
                except (KeyError, TypeError, ValueError):
                    raise DataError(
                        f"{where}: needs a numeric timestamp_sec and a narration_text; is this "
                        "Ego4D's narration.json?"
                    ) from None
                if wearer_only and not raw.lstrip().startswith("#C"):
                    continue
                clip_id = f"{uid}@{t:.3f}"
                if clip_id in seen:
                    continue
                sounding = _lookup(labels.get(uid), t) if labels is not None else None
                if labelled_only and sounding is None:
                    continue
                if videos is None:
                    video = Path(f"{uid}.mp4")
                else:
                    video = videos.get(uid)
                    if video is None:
                        absent[uid] = absent.get(uid, 0) + 1
                        continue
                seen.add(clip_id)
                clips.append(
                    Clip(
                        clip_id=clip_id,
                        audio_path=video,
                        start=max(0.0, t - before),
                        end=t + after,
                        video_path=video,
                        narration=clean_narration(raw, text),
                        group=uid,
                        sounding=sounding,
                    )
                )
    if absent:
        shown = ", ".join(list(absent)[:MAX_LISTED])
        more = f" and {len(absent) - MAX_LISTED} more" if len(absent) > MAX_LISTED else ""
        message = (
            f"{path}: no video under {media} for {len(absent)} video(s) "
            f"({sum(absent.values())} narrations skipped): {shown}{more}; expected "
            f"{media}/<video_uid>.mp4 or {media}/<subfolder>/<video_uid>.mp4"
        )
        if not clips:
            raise DataError(message + "; download the videos or fix media_dir")
        warnings.warn(message, UserWarning, stacklevel=2)
    return Manifest(name, clips, path.parent)


@READERS.register("ego4d")
def read_ego4d(
    data_dir: str | Path | None = None,
    *,
    spec: str | None = None,
    narrations: str | Path | None = None,
    media_dir: str | Path | None = None,
    before: float = BEFORE_S,
    after: float = AFTER_S,
    passes: str | tuple[str, ...] = PASSES[:1],
    text: str = "clean",
    wearer_only: bool = False,
    sounding_csv: str | Path | None = None,
    labelled_only: bool = False,
) -> Manifest:
    """Ego4D narration clips (``ego4d``; ``ego4d:2`` / ``ego4d:all`` choose the passes).

    Args:
        data_dir: Folder with ``narration.json`` (or its parent holding ``ego4d/``; else
            ``$HARKEN_DATA_DIR``); ignored when ``narrations`` is given.
        spec: ``1``, ``2`` or ``all`` (overrides ``passes``).
        narrations: The ``narration.json`` file itself.
        media_dir, before, after, passes, text, wearer_only, sounding_csv, labelled_only:
            As :func:`read_ego4d_narrations`.

    Returns:
        Manifest named ``ego4d``.
    """
    chosen = _passes(spec, passes)
    if narrations is None:
        root = data_root(data_dir, "ego4d", NARRATIONS_JSON)
        if root is None:
            raise DataError(
                f"Ego4D {NARRATIONS_JSON} not found (looked in {data_dir or '-'}, "
                f"{data_dir or '-'}/ego4d and $HARKEN_DATA_DIR); download the Ego4D annotations "
                "(ego4d.github.io) and pass their folder as data_dir or the file as narrations"
            )
        narrations = root / NARRATIONS_JSON
    return read_ego4d_narrations(
        narrations,
        media_dir=media_dir,
        before=before,
        after=after,
        passes=chosen,
        text=text,
        wearer_only=wearer_only,
        sounding_csv=sounding_csv,
        labelled_only=labelled_only,
    )
