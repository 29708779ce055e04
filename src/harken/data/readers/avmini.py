"""av-mini: 36 real short video clips with sound, as a labelled set and as sounding pairs.

The folder (``shared/data/av-mini`` in harken's test data) holds ``labels.csv``
(``path,label,start,end,source_repo,source_path,commit,label_source,extra,audio_mean_db,
duration_s``; quoted, labels may contain commas such as ``"donkey, ass braying"``) and the clips
(mp4/mkv with an audio track). Two views are read:

* ``avmini`` — one clip per row: ``labels={"label": <label>}``, ``audio_path = video_path`` =
  the file (the audio is read from the video container), ``narration`` = the label text,
  ``group`` = the file's path as written in the CSV.
* ``avmini:sounding`` — tri-modal *sounding* pairs in the sense of SoundingActions (Chen et al.
  2024, §5: the narrated action is both visible and audible). The ``extra`` column holds the
  VGGSounder multi-labels of a clip, each tagged with what a human saw and heard, e.g.
  ``VGGSounder: canary calling[AV]; bird chirping, tweeting[AV]``. One row per (clip, tag):
  ``narration`` = the tag text, ``sounding = True`` for ``[AV]`` (audible and visible) and
  ``False`` for ``[A]`` (audible only: the source is not visible) and ``[V]`` (visible, not
  audible). A clip without tags gives one row with ``narration`` = its label and
  ``sounding = True``: **an assumption** — those clips come from audio-visual class folders (VAS),
  VGGSound's test list (curated so that the labelled sound source is visible) or were checked by
  eye (the Greatest-Hits-style and CondFoleyGen/decord demos). Ids are ``f"{path}#{k}"`` with
  ``k`` the tag's 0-based position in the clip's ``extra`` (``#0`` for an untagged clip);
  ``labels={"label": <clip label>}`` and ``group`` = the path, so the pairs of one clip stay on
  one side of any split.

The folder is found like Kitchen20's: ``data_dir`` itself, ``data_dir/av-mini``, then
``$HARKEN_DATA_DIR/av-mini`` and ``$HARKEN_DATA_DIR``.
"""

from __future__ import annotations

import re
from pathlib import Path

from harken.data.manifest import Clip, Manifest
from harken.data.readers.base import (
    READERS,
    check_missing_files,
    data_root,
    iter_csv_rows,
    read_header,
    require_columns,
)
from harken.errors import ConfigError, DataError

FOLDER = "av-mini"
LABELS_CSV = "labels.csv"
TAG_PREFIX = "VGGSounder:"
_TAG = re.compile(r"^(?P<text>.+?)\s*\[(?P<mark>AV|A|V)\]$")
#: VGGSounder's modality mark → sounding (visible and audible).
SOUNDING_MARKS = {"AV": True, "A": False, "V": False}
VIEWS = ("", "sounding")


def parse_vggsounder_tags(extra: str, where: str) -> list[tuple[str, str]]:
    """``"VGGSounder: a[AV]; b, c[A]"`` → ``[("a", "AV"), ("b, c", "A")]`` (empty for "").

    Tags are separated by ``;`` (a tag's text may contain commas).

    Raises:
        DataError: the text does not start with ``VGGSounder:`` or a tag lacks its
            ``[AV]``/``[A]``/``[V]`` mark (naming ``where`` and the tag).
    """
    extra = extra.strip()
    if not extra:
        return []
    if not extra.startswith(TAG_PREFIX):
        raise DataError(
            f"{where}: extra {extra[:60]!r} does not start with {TAG_PREFIX!r}; restore the file"
        )
    tags = []
    for part in extra[len(TAG_PREFIX) :].split(";"):
        part = part.strip()
        match = _TAG.match(part)
        if match is None:
            raise DataError(
                f"{where}: VGGSounder tag {part!r} has no [AV], [A] or [V] mark; restore the file"
            )
        tags.append((match["text"], match["mark"]))
    return tags


def _root(data_dir: str | Path | None) -> Path:
    root = data_root(data_dir, FOLDER, LABELS_CSV)
    if root is None:
        raise DataError(
            f"av-mini not found (looked for {LABELS_CSV} in {data_dir or '-'}, "
            f"{data_dir or '-'}/{FOLDER}, $HARKEN_DATA_DIR/{FOLDER} and $HARKEN_DATA_DIR); give "
            "the folder that holds av-mini/ as --data-dir (data_dir in Python) or set "
            "HARKEN_DATA_DIR"
        )
    return root


@READERS.register("avmini")
def read_avmini(
    data_dir: str | Path | None = None,
    *,
    spec: str | None = None,
    check_files: bool = True,
) -> Manifest:
    """Read av-mini (``avmini``) or its sounding pairs (``avmini:sounding``); see the module
    docstring for both views.

    Args:
        data_dir: The av-mini folder or its parent (default: ``$HARKEN_DATA_DIR``).
        spec: ``None``/``""`` for one clip per file, ``"sounding"`` for one row per
            (clip, VGGSounder tag).
        check_files: Verify that every clip file exists.

    Returns:
        Manifest ``avmini`` (36 clips) or ``avmini-sounding``.

    Raises:
        ConfigError: an unknown view.
        DataError: the folder, columns or files are missing, or a row is malformed.
    """
    view = spec or ""
    if view not in VIEWS:
        raise ConfigError(f"unknown av-mini view {view!r}; use 'avmini' or 'avmini:sounding'")
    root = _root(data_dir)
    csv_path = root / LABELS_CSV
    require_columns(csv_path, read_header(csv_path), ["path", "label", "extra"])
    clips: list[Clip] = []
    for line, row in iter_csv_rows(csv_path):
        where = f"{csv_path}, line {line}"
        rel, label = row["path"], row["label"]
        if not rel or not label:
            raise DataError(f"{where}: empty path or label; restore the file")
        path = root / rel
        base = dict(audio_path=path, video_path=path, labels={"label": label}, group=rel)
        if not view:
            clips.append(Clip(clip_id=rel, narration=label, **base))
            continue
        tags = parse_vggsounder_tags(row["extra"], where) or [(label, "AV")]
        for k, (text, mark) in enumerate(tags):
            clips.append(
                Clip(clip_id=f"{rel}#{k}", narration=text, sounding=SOUNDING_MARKS[mark], **base)
            )
    if check_files:
        check_missing_files(
            [c.audio_path for c in clips],
            f"av-mini at {root}",
            "The copy is incomplete: restore the clips, or pass check_files=False.",
        )
    return Manifest("avmini-sounding" if view else "avmini", clips, root)
