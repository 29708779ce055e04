"""The audio-visual GZSL benchmark (AVCA-GZSL lineage): split files and published features.

UCF-GZSL, ActivityNet-GZSL and VGGSound-GZSL were introduced with AVCA (Mercea et al., CVPR 2022,
github.com/ExplainableML/AVCA-GZSL) and reused by TCaF, ClipClap-GZSL and KDA. This module reads

* **the split files** (:func:`read_avgzsl_split`):
  ``<Dataset>/class-split/{main_split,cls_split}/`` with ``stage_1_train``, ``stage_1_val_seen``,
  ``stage_1_val_unseen`` (first stage: train, then pick epochs / calibration on validation) and
  ``stage_2_train``, ``stage_2_test_seen``, ``stage_2_test_unseen`` (second stage: retrain, test)
  as ``.txt`` class lists and ``.csv`` clip lists (``filename``, ``label``, ``label_code`` in any
  column order; VGGSound adds ``youtube_id`` and others). Beside the split folders:
  ``all_class.txt`` (every class of the source dataset) and ``<dataset>_w2v_class_names.csv``
  (``original,manual``: the names used for word2vec);
* **the published features** (:func:`load_published_features`) of the AVCA and ClipClap-GZSL
  releases, with every feature row labelled by class *name*.

What the real split files hold (checked against all six splits in ``shared/data/avgzsl-splits``):

* all five class invariants hold (see :func:`read_avgzsl_split`), and no clip is in two of the
  disjoint stages; ``stage_2_train.csv`` is exactly the three stage-1 csvs together (UCF,
  ActivityNet; VGGSound's ``stage_*_train.csv`` are missing upstream);
* ``label_code`` is the class's index in the sorted ``all_class.txt``, matched case-insensitively;
* **cls_split drops test classes but not their clips**: its ``stage_2_test_unseen.txt`` leaves out
  the unseen classes the C3D/VGGish feature extractors were trained on (UCF: BandMarching,
  BrushingTeeth, Typing; ActivityNet: Brushingteeth, Knitting; VGGSound: airplane, helicopter,
  sharpen knife, thunder, wind chime), while its ``stage_2_test_unseen.csv`` is the main split's,
  byte for byte, clips of those classes included. AVCA's loader drops them with a class mask
  (``np.isin(target, classes)``); so does this reader: a csv row (or feature file) whose class is
  in ``all_class.txt`` but in *no* stage list of the split is left out and counted in
  :attr:`AvGzslSplit.excluded`. A row whose class is listed for another stage is an error;
* UCF spells one class two ways: ``HandStandPushups`` in the split files (UCF101's video names)
  and ``HandstandPushups`` in ``all_class.txt`` and the w2v table. AVCA matches class names
  case-insensitively (``name.lower()``) for UCF and ActivityNet; so do the lookups here;
* the ``manual`` names of ``*_w2v_class_names.csv`` are exactly the class names KDA's
  descriptions use (101/101, 200/200, 309/309), and the keys of the published text embeddings.

Published feature layouts (read from the code of the two repositories, not from the archives,
which are Google-Drive downloads):

**AVCA** (README "Dataset structure"; ``src/dataset.py``, ``src/utils.py::read_features``,
``splitting_scripts/*_split_features.py``)::

    avgzsl_benchmark_datasets/<UCF|ActivityNet|VGGSound>/
      class-split/...                                   # the split files above
      features/<main_features|cls_features>/
        audio/<stage>/<class name>.h5                   # one HDF5 file per class and stage
        video/<stage>/<class name>.h5
        text/word_embeddings_<ucf|activitynet|vggsound>_normed.npy

  each ``.h5`` holds ``data`` (float, ``[n, D]``) and ``video_urls`` (the clip file names, ``S80``
  per the README, variable-length strings per the splitting scripts: both are read). The ``.npy``
  is ``np.save`` of a dict *manual class name → 300-d word2vec vector* (a pickle).
  ``main_features`` are SeLaVi (audio 512, video 512), ``cls_features`` VGGish audio (128) and
  C3D video (4096), used with ``main_split`` and ``cls_split`` respectively.

**ClipClap-GZSL** (``src/dataset.py``, ``src/utils.py::read_features``,
``splitting_scripts_cls/create_pkl_files_cls.py``, ``clip_embeddings_extraction/*.py``,
``config/clipclap.yaml``)::

    <Dataset>/features/cls_features_non_averaged/
      audio/<stage>/<class name>.pkl     # pickle: {"features": [vector per clip],
      video/<stage>/<class name>.pkl     #          "video_names": [...], "fps": [25, ...]}
      text/word_embeddings_<ds>_normed.npy            # CLIP ViT-B/32 text, 512-d  -> "clip"
      text/wavcaps_word_embeddings_<ds>_normed.npy    # WavCaps CLAP text, 1024-d  -> "clap"

  audio is WavCaps HTSAT (1024-d), video CLIP ViT-B/32 on the middle frame (512-d); the text
  dicts are keyed by the w2v ``manual`` names, except UCF's, keyed by the ``clip_class_name``
  column of ``class-split/ucf_clip_class_names.csv``.

Alignment: each feature row takes the class of the file it came from, audio and video rows are
matched by clip name (not position), rows are cross-checked against the stage's csv where there is
one (a clip listed under another class is an error), and text embeddings are matched to classes by
name through the name tables. The papers' code instead indexed the text rows (sorted by *manual*
name) with class indices (sorted by *original* name), which misaligns wherever the two orders
differ: by the name tables, 79 of UCF's 101 rows, 8 of ActivityNet's 200, 205 of VGGSound's 309.

Pickles: both releases store pickles (``.npy`` dicts, ClipClap's ``.pkl``). They are read with an
unpickler that only rebuilds numpy arrays, lists, dicts and strings, so a tampered file raises
instead of running code.

Uncertain (the archives could not be inspected here):

* whether AVCA's archive has ``features/*/{audio,video}/stage_2_train`` (its README and splitting
  scripts write it; its loader never reads it). When absent it is rebuilt as stage_1_train +
  stage_1_val_seen + stage_1_val_unseen, which is what the loader trains stage 2 on and what
  ``stage_2_train.csv`` lists;
* the top folder inside ClipClap's ``data.zip`` (its scripts write
  ``avgzsl_benchmark_datasets/<Dataset>/features/cls_features_non_averaged``; its repository
  also has ``avgzsl_benchmark_non_averaged_datasets``); both are searched, and ``root`` may
  also be the dataset folder itself (ClipClap's ``--root_dir``);
* whether ClipClap's ``features`` entries are single vectors (what its extraction scripts write) or
  ``[T, D]`` sequences (its collator also pads sequences): sequences are mean-pooled over time;
* whether the archives contain ``class-split`` (AVCA's README says its zip holds the structure
  above, but spells the folder ``class_split``; its code and repository use ``class-split``, which
  is what is read); pass ``split_dir`` to use the split files from elsewhere;
* which extractor is in which AVCA folder: README and run scripts (input sizes) say SeLaVi in
  ``main_features`` and C3D/VGGish in ``cls_features``; ``splitting_scripts/ucf_split_features.py``
  passes them the other way round. Nothing here depends on it except the synthetic default sizes;
* the type of ClipClap's ``video_names`` (the AVCA ``video_urls`` as h5py returns them: bytes or
  str); both are decoded.
"""

from __future__ import annotations

import csv
import io
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from harken.data.readers.base import MAX_LISTED, iter_csv_rows, read_header, require_columns
from harken.errors import ConfigError, DataError

STAGES = (
    "stage_1_train",
    "stage_1_val_seen",
    "stage_1_val_unseen",
    "stage_2_train",
    "stage_2_test_seen",
    "stage_2_test_unseen",
)
"""The six stages of the two-stage protocol, in file order."""

DISJOINT_STAGES = (
    "stage_1_train",
    "stage_1_val_seen",
    "stage_1_val_unseen",
    "stage_2_test_seen",
    "stage_2_test_unseen",
)
"""Stages that share no clip (stage_2_train is the first three together)."""

STAGE_1_UNION = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")

DATASETS = ("UCF", "ActivityNet", "VGGSound")
RELEASES = ("avca", "clipclap")

AVCA_URL = "https://drive.google.com/file/d/1NzpSVL-2nXRFH6pvHNOZeRhu_jfDL0ZE"
CLIPCLAP_URL = "https://drive.google.com/uc?export=download&id=1fNb3WvbN76yuPVi4MeVtgDycdX0jAE2G"
RELEASE_FOLDERS = ("avgzsl_benchmark_datasets", "avgzsl_benchmark_non_averaged_datasets")
CLIPCLAP_FEATURE_SET = "cls_features_non_averaged"
AVCA_FEATURE_SETS = {"main_split": "main_features", "cls_split": "cls_features"}
FEATURE_EXT = {"avca": ".h5", "clipclap": ".pkl"}
TEXT_FILES = {
    "avca": {"w2v": "word_embeddings_{ds}_normed.npy"},
    "clipclap": {
        "clip": "word_embeddings_{ds}_normed.npy",
        "clap": "wavcaps_word_embeddings_{ds}_normed.npy",
    },
}
DEFAULT_DIMS = {
    ("avca", "main_features"): {"audio": 512, "video": 512, "w2v": 300},
    ("avca", "cls_features"): {"audio": 128, "video": 4096, "w2v": 300},
    ("clipclap", CLIPCLAP_FEATURE_SET): {"audio": 1024, "video": 512, "clip": 512, "clap": 1024},
}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".wav", ".flac"}
SPLIT_COLUMNS = ("filename", "label", "label_code")


# ---------------------------------------------------------------------------------------------
# Split files


@dataclass
class AvGzslSplit:
    """One class split of one AV-GZSL dataset.

    Attributes:
        name: ``"<Dataset>/<split>"``, e.g. ``"UCF/cls_split"``.
        classes: Stage → class names, as in the stage's ``.txt`` (file order).
        clips: Stage → ``[(filename, class name)]`` from the stage's ``.csv`` (file order, rows of
            excluded classes left out); a stage without a csv is absent.
        readable: Class name → human-readable name (the ``manual`` column of
            ``*_w2v_class_names.csv``; the name itself when there is no such table or row).
        excluded: Stage → {class: rows left out}: csv rows of classes that are in
            ``all_class.txt`` but in no stage list of this split (cls_split's removed classes).
        all_classes: ``all_class.txt`` (file order); empty when the file is absent.
    """

    name: str
    classes: dict[str, list[str]]
    clips: dict[str, list[tuple[str, str]]]
    readable: dict[str, str]
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)
    all_classes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        """Every class of the split, in stage order then file order, without repeats."""
        return list(dict.fromkeys(c for stage in STAGES for c in self.classes.get(stage, [])))


def _listed(items: Iterable[str]) -> str:
    items = sorted(items)
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _fold(name: str) -> str:
    return name.casefold()


def _loose(name: str) -> str:
    """Case, spaces and punctuation removed: ``"Apply Eye Makeup"`` → ``"applyeyemakeup"``."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def _read_class_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(
            f"{path}: class list not found; a split folder needs stage_*.txt for all of "
            f"{', '.join(STAGES)} (restore it from github.com/ExplainableML/AVCA-GZSL, "
            "avgzsl_benchmark_datasets/<Dataset>/class-split/)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); save it as UTF-8") from exc
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if name in first_line:
            raise DataError(
                f"{path}, line {number}: class {name!r} is listed again (first on line "
                f"{first_line[name]}); remove the repeat"
            )
        first_line[name] = number
        names.append(name)
    if not names:
        raise DataError(f"{path}: no class names; one class per line is expected")
    return names


def _read_name_table(path: Path, alias_column: str) -> dict[str, str]:
    """``original`` → ``alias_column`` from a class-name table (``*_class_names.csv``)."""
    require_columns(path, read_header(path), ["original", alias_column])
    table: dict[str, str] = {}
    for line, row in iter_csv_rows(path):
        original, alias = row["original"], row[alias_column]
        if not original or not alias:
            raise DataError(
                f"{path}, line {line}: empty original or {alias_column} name; fill it in or "
                "remove the row"
            )
        if original in table:
            raise DataError(f"{path}, line {line}: class {original!r} is listed twice")
        table[original] = alias
    return table


def _name_tables(folder: Path) -> list[tuple[Path, str]]:
    """The class-name tables beside a split folder: (path, alias column)."""
    tables = [(p, "manual") for p in sorted(folder.glob("*_w2v_class_names.csv"))]
    tables += [(p, "clip_class_name") for p in sorted(folder.glob("*_clip_class_names.csv"))]
    return tables


def _readable(split_classes: Iterable[str], class_split_dir: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    for path in sorted(class_split_dir.glob("*_w2v_class_names.csv")):
        table.update(_read_name_table(path, "manual"))
    by_fold = {_fold(k): v for k, v in table.items()}
    return {c: table.get(c, by_fold.get(_fold(c), c)) for c in split_classes}


class _LabelCodes:
    """Checks that a label always has one code and a code one label, across all csv files
    (labels compared ignoring case), and that the code is the label's index in the sorted
    ``all_class.txt`` when there is one."""

    def __init__(self, all_classes: list[str]):
        self.sorted_index = {_fold(c): i for i, c in enumerate(sorted(all_classes))}
        self.by_label: dict[str, tuple[int, Path, int]] = {}
        self.by_code: dict[int, tuple[str, Path, int]] = {}

    def check(self, path: Path, line: int, label: str, text: str) -> None:
        try:
            code = int(text)
        except ValueError:
            raise DataError(
                f"{path}, line {line}: label_code {text!r} is not an integer; restore the file"
            ) from None
        seen = self.by_label.setdefault(_fold(label), (code, path, line))
        if seen[0] != code:
            raise DataError(
                f"{path}, line {line}: class {label!r} has label_code {code} but {seen[0]} in "
                f"{seen[1]}, line {seen[2]}; one class must have one code in every file"
            )
        other = self.by_code.setdefault(code, (label, path, line))
        if _fold(other[0]) != _fold(label):
            raise DataError(
                f"{path}, line {line}: label_code {code} is class {label!r} here but "
                f"{other[0]!r} in {other[1]}, line {other[2]}; one code must name one class"
            )
        expected = self.sorted_index.get(_fold(label))
        if self.sorted_index and expected is not None and expected != code:
            raise DataError(
                f"{path}, line {line}: label_code {code} for {label!r}, but that class is number "
                f"{expected} in the sorted all_class.txt; the code must be its index there"
            )


def _read_clip_list(
    path: Path,
    stage: str,
    classes: dict[str, list[str]],
    all_classes: list[str],
    codes: _LabelCodes,
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    require_columns(path, read_header(path), SPLIT_COLUMNS)
    own = {_fold(c): c for c in classes[stage]}
    elsewhere: dict[str, list[str]] = {}
    for other in STAGES:
        for c in classes[other] if other != stage else []:
            elsewhere.setdefault(_fold(c), []).append(f"{other}.txt")
    listed = {_fold(c) for s in STAGES for c in classes[s]}
    dataset_classes = {_fold(c) for c in all_classes}
    clips: list[tuple[str, str]] = []
    excluded: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for line, row in iter_csv_rows(path):
        filename, label = row["filename"], row["label"]
        if not filename or not label or not row["label_code"]:
            raise DataError(
                f"{path}, line {line}: empty filename, label or label_code; every row needs "
                "all three (restore the file from the AVCA-GZSL repository)"
            )
        if filename in first_line:
            raise DataError(
                f"{path}, line {line}: clip {filename!r} is listed again (first on line "
                f"{first_line[filename]}); remove the repeat"
            )
        first_line[filename] = line
        key = _fold(label)  # AVCA matches names ignoring case; keep the .txt's spelling
        if key in elsewhere and key not in own:
            raise DataError(
                f"{path}, line {line}: clip {filename!r} has class {label!r}, which "
                f"{stage}.txt does not list (it is in {', '.join(elsewhere[key])}); the csv "
                "and the class list disagree: restore both from the same release"
            )
        if key not in own and (key in listed or key not in dataset_classes):
            hint = (
                ""
                if dataset_classes
                else " (with all_class.txt beside the split folder, rows of dataset classes "
                "that the split leaves out are skipped)"
            )
            raise DataError(
                f"{path}, line {line}: class {label!r} is not in {stage}.txt nor in any class "
                f"list of this dataset; fix the spelling or add the class to the stage's .txt"
                + hint
            )
        codes.check(path, line, label, row["label_code"])
        if key in own:
            clips.append((filename, own[key]))
        else:  # a dataset class this split leaves out (cls_split's removed test classes)
            excluded[label] = excluded.get(label, 0) + 1
    return clips, excluded


def _violations(split: AvGzslSplit) -> list[str]:
    c = {stage: set(names) for stage, names in split.classes.items()}

    def described(names: set[str], other: set[str]) -> str:
        folded = {_fold(o): o for o in other}
        parts = []
        for n in sorted(names)[:MAX_LISTED]:
            twin = folded.get(_fold(n))
            parts.append(f"{n!r} (spelled {twin!r} there)" if twin else repr(n))
        more = len(names) - MAX_LISTED
        return ", ".join(parts) + (f" and {more} more" if more > 0 else "")

    problems = []
    if extra := c["stage_1_val_seen"] - c["stage_1_train"]:
        problems.append(
            "stage_1_val_seen must be a subset of stage_1_train; not in stage_1_train: "
            + described(extra, c["stage_1_train"])
        )
    if both := c["stage_1_val_unseen"] & c["stage_1_train"]:
        problems.append(f"stage_1_val_unseen and stage_1_train share {_listed(both)}")
    union = c["stage_1_train"] | c["stage_1_val_unseen"]
    if c["stage_2_train"] != union:
        missing, extra = union - c["stage_2_train"], c["stage_2_train"] - union
        detail = []
        if missing:
            detail.append("missing " + described(missing, c["stage_2_train"]))
        if extra:
            detail.append("extra " + described(extra, union))
        problems.append(
            "stage_2_train must be stage_1_train ∪ stage_1_val_unseen; " + "; ".join(detail)
        )
    if both := c["stage_2_test_unseen"] & c["stage_2_train"]:
        problems.append(f"stage_2_test_unseen and stage_2_train share {_listed(both)}")
    if extra := c["stage_2_test_seen"] - c["stage_2_train"]:
        problems.append(
            "stage_2_test_seen must be a subset of stage_2_train; not in stage_2_train: "
            + described(extra, c["stage_2_train"])
        )
    owner: dict[str, str] = {}
    for stage in DISJOINT_STAGES:
        for filename, _ in split.clips.get(stage, []):
            if filename in owner:
                problems.append(f"clip {filename!r} is in both {owner[filename]} and {stage}")
                break
            owner[filename] = stage
    test = {
        f for s in ("stage_2_test_seen", "stage_2_test_unseen") for f, _ in split.clips.get(s, [])
    }
    if leaked := {f for f, _ in split.clips.get("stage_2_train", [])} & test:
        problems.append(f"stage_2_train holds test clips {_listed(leaked)}")
    return problems


def read_avgzsl_split(folder: str | Path) -> AvGzslSplit:
    """Read one split folder (``<Dataset>/class-split/<split>``) and check its invariants.

    The invariants the two-stage protocol relies on: stage_1_val_seen ⊆ stage_1_train;
    stage_1_val_unseen ∩ stage_1_train = ∅; stage_2_train = stage_1_train ∪ stage_1_val_unseen;
    stage_2_test_unseen ∩ stage_2_train = ∅; stage_2_test_seen ⊆ stage_2_train (classes); and no
    clip in two of :data:`DISJOINT_STAGES` nor a test clip in stage_2_train (clips).

    Args:
        folder: The split folder, holding ``stage_*.txt`` (all six) and ``stage_*.csv`` (any);
            its parent may hold ``all_class.txt`` and ``*_w2v_class_names.csv``.

    Returns:
        The split, named ``"<parent of class-split>/<folder name>"``, e.g. ``"UCF/cls_split"``.

    Raises:
        DataError: a file is missing or malformed (the message names file and line), a csv row's
            class is not its stage's, a label_code disagrees, or an invariant does not hold.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"{folder}: split folder not found; pass a folder such as "
            "avgzsl_benchmark_datasets/UCF/class-split/cls_split (from "
            "github.com/ExplainableML/AVCA-GZSL)"
        )
    classes = {stage: _read_class_list(folder / f"{stage}.txt") for stage in STAGES}
    parent = folder.parent
    all_path = parent / "all_class.txt"
    all_classes = _read_class_list(all_path) if all_path.is_file() else []
    codes = _LabelCodes(all_classes)
    clips: dict[str, list[tuple[str, str]]] = {}
    excluded: dict[str, dict[str, int]] = {}
    for stage in STAGES:
        path = folder / f"{stage}.csv"
        if path.is_file():
            clips[stage], dropped = _read_clip_list(path, stage, classes, all_classes, codes)
            if dropped:
                excluded[stage] = dropped
    dataset = parent.parent.name if parent.name == "class-split" else parent.name
    split = AvGzslSplit(
        name=f"{dataset}/{folder.name}",
        classes=classes,
        clips=clips,
        readable={},
        excluded=excluded,
        all_classes=all_classes,
    )
    split.readable = _readable(split.class_names, parent)
    if problems := _violations(split):
        raise DataError(
            f"{folder}: the split breaks the protocol's invariants:\n  "
            + "\n  ".join(problems)
            + "\nfix the stage_*.txt/.csv files (or restore them from the AVCA-GZSL release)"
        )
    return split


def readable_names(split: AvGzslSplit, targets: Iterable[str] | None = None) -> dict[str, str]:
    """Class name → readable name, matched to ``targets`` where possible.

    Without ``targets`` this is :attr:`AvGzslSplit.readable` for every class of the split. With
    ``targets`` (e.g. the ``name`` column of KDA's descriptions), each class gets the target that
    equals its readable name or its own name — exactly, then ignoring case, then ignoring case,
    spaces and punctuation (``"ApplyEyeMakeup"`` ↔ ``"Apply Eye Makeup"``) — and keeps its readable
    name when none does. Targets that become equal once case (or spaces and punctuation) are
    ignored are only matched exactly.

    Args:
        split: A split from :func:`read_avgzsl_split`.
        targets: Names to match, or None.

    Returns:
        Every class of the split (stage order) → its name.
    """
    names = {c: split.readable.get(c, c) for c in split.class_names}
    if targets is None:
        return names
    targets = list(targets)
    exact = set(targets)
    by_fold = _unique_index(targets, _fold)
    by_loose = _unique_index(targets, _loose)
    for cls, readable in names.items():
        for candidate in (readable, cls):
            hit = (
                candidate
                if candidate in exact
                else by_fold.get(_fold(candidate)) or by_loose.get(_loose(candidate))
            )
            if hit:
                names[cls] = hit
                break
    return names


def _unique_index(names: Iterable[str], key) -> dict[str, str]:
    index: dict[str, str | None] = {}
    for name in names:
        k = key(name)
        index[k] = None if k in index and index[k] != name else name
    return {k: v for k, v in index.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# Published features


@dataclass
class FeatureStage:
    """The feature rows of one stage, aligned row by row: grouped by class in the order of the
    stage's ``.txt``, each class in its file's order.

    Attributes:
        ids: Clip names (``video_urls`` / ``video_names`` of the release).
        labels: Class name of each row (the split's spelling).
        audio: ``[N, Da]`` float32.
        video: ``[N, Dv]`` float32.
    """

    ids: list[str]
    labels: list[str]
    audio: np.ndarray
    video: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PublishedFeatures:
    """A published feature release for one dataset and split.

    Attributes:
        release: ``"avca"`` or ``"clipclap"``.
        dataset: ``"UCF"``, ``"ActivityNet"`` or ``"VGGSound"``.
        split: The split name (``"main_split"``, ``"cls_split"``).
        stages: Stage → its rows.
        class_embeddings: Text source (``"w2v"``; ``"clip"``, ``"clap"``) → class name → vector.
        feature_set: The features folder read (``main_features``, ``cls_features``, ...).
        root: The dataset folder read.
        notes: What the loader did beyond reading (rows of excluded classes dropped, a stage
            rebuilt, clips missing from the csv).
    """

    release: str
    dataset: str
    split: str
    stages: dict[str, FeatureStage]
    class_embeddings: dict[str, dict[str, np.ndarray]]
    feature_set: str = ""
    root: Path | None = None
    notes: list[str] = field(default_factory=list)


_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    # Builtin containers and numbers that protocols 0-3 rebuild by name (protocol 4+ has
    # opcodes for sets): values only, no callable that touches the system.
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and builtin containers only; anything else raises."""

    source = ""

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # Python 2 pickles
            module = "builtins"
        mapped = (
            "numpy._core." + module[len("numpy.core.") :]
            if module.startswith("numpy.core.")
            else module
        )
        if (mapped, name) not in _PICKLE_ALLOWED:
            raise DataError(
                f"{self.source}: the pickle wants {module}.{name}, which a feature file never "
                "needs; refusing to load it (the file is not from the release, or was tampered "
                "with): download it again"
            )
        try:
            return super().find_class(mapped, name)
        except (ImportError, AttributeError):
            return super().find_class(module, name)


def _unpickle(stream, source: Path):
    unpickler = _ArrayUnpickler(stream, encoding="latin1")
    unpickler.source = str(source)
    try:
        return unpickler.load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DataError(f"{source}: not a readable pickle ({exc}); download it again") from exc


def _load_npy_dict(path: Path) -> dict:
    """``np.save`` of a dict, read without executing arbitrary pickled code."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as exc:
            raise DataError(f"{path}: not a .npy file ({exc}); download it again") from exc
        if not dtype.hasobject:
            raise DataError(
                f"{path}: holds a plain {dtype} array; expected np.save of a dict class name → "
                "vector, as the release writes it"
            )
        value = _unpickle(f, path)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if not isinstance(value, dict):
        raise DataError(
            f"{path}: holds a {type(value).__name__}; expected a dict class name → vector"
        )
    return value


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_h5(path: Path) -> tuple[list[str], np.ndarray]:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as hf:
            missing = [k for k in ("data", "video_urls") if k not in hf]
            if missing:
                raise DataError(
                    f"{path}: no {' or '.join(missing)} dataset (it has {', '.join(hf) or 'none'});"
                    " an AVCA feature file holds data [n, D] and video_urls [n]: download it again"
                )
            data = np.asarray(hf["data"][()], dtype=np.float32)
            ids = [_text(u) for u in hf["video_urls"][()]]
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc}); download it again") from exc
    return ids, data


def _read_clipclap_pkl(path: Path) -> tuple[list[str], np.ndarray, bool]:
    with open(path, "rb") as f:
        value = _unpickle(f, path)
    if not isinstance(value, dict) or not {"features", "video_names"} <= set(value):
        keys = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
        raise DataError(
            f"{path}: expected a dict with 'features' and 'video_names' (ClipClap's layout), "
            f"found {keys}; download the ClipClap features again"
        )
    ids = [_text(u) for u in value["video_names"]]
    vectors, pooled = [], False
    for i, item in enumerate(value["features"]):
        arr = np.asarray(item, dtype=np.float32)
        if arr.ndim == 2 and arr.shape[0] >= 1:
            pooled |= arr.shape[0] > 1
            arr = arr.mean(axis=0)
        if arr.ndim != 1 or arr.size == 0:
            raise DataError(
                f"{path}: entry {i} has shape {arr.shape}; expected a vector [D] or a sequence "
                "[T, D]"
            )
        vectors.append(arr)
    if not vectors:
        return ids, np.zeros((0, 0), np.float32), pooled
    try:
        data = np.stack(vectors)
    except ValueError:
        dims = sorted({v.shape[0] for v in vectors})
        raise DataError(f"{path}: the vectors have different sizes {dims}") from None
    return ids, data, pooled


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ConfigError("reading AVCA features needs h5py: pip install 'h5py>=3'") from None
    return h5py


def _dataset_name(dataset: str) -> str:
    for name in DATASETS:
        if dataset.casefold() == name.casefold():
            return name
    raise ConfigError(f"unknown AV-GZSL dataset {dataset!r}; use one of {', '.join(DATASETS)}")


def _download_hint(dataset: str) -> str:
    return (
        f"download the AVCA features ({AVCA_URL}, README 'Downloading our features') or the "
        f"ClipClap-GZSL features ({CLIPCLAP_URL}), unzip, and pass the folder containing "
        f"avgzsl_benchmark_datasets (or its {dataset} folder)"
    )


def _dataset_root(root: Path, dataset: str) -> Path:
    candidates = [root / top / dataset for top in RELEASE_FOLDERS]
    candidates += [root / dataset, root]
    for candidate in candidates:
        if (candidate / "features").is_dir():
            return candidate
    raise DataError(
        f"{root}: no features folder for {dataset} (looked in "
        f"{', '.join(str(c / 'features') for c in candidates)}); {_download_hint(dataset)}"
    )


def _stage_dir_files(folder: Path, ext: str) -> dict[str, Path]:
    return {p.name[: -len(ext)]: p for p in sorted(folder.iterdir()) if p.name.endswith(ext)}


def _feature_set_release(folder: Path) -> str | None:
    """Which release wrote a feature-set folder, from the files in its audio stage folders."""
    audio = folder / "audio"
    if not audio.is_dir():
        return None
    for stage_dir in sorted(p for p in audio.iterdir() if p.is_dir()):
        for release, ext in FEATURE_EXT.items():
            if any(p.name.endswith(ext) for p in stage_dir.iterdir()):
                return release
    return None


def _resolve_release(
    ds_root: Path, release: str, split: str, feature_set: str | None
) -> tuple[str, str]:
    if release not in (*RELEASES, "auto"):
        raise ConfigError(f"unknown release {release!r}; use 'avca', 'clipclap' or 'auto'")
    features = ds_root / "features"
    present = ", ".join(sorted(p.name for p in features.iterdir() if p.is_dir())) or "none"
    if feature_set is None:
        defaults = {
            "avca": AVCA_FEATURE_SETS.get(split, "cls_features"),
            "clipclap": CLIPCLAP_FEATURE_SET,
        }
        wanted = [r for r in RELEASES if release in (r, "auto")]
        found = [r for r in wanted if (features / defaults[r]).is_dir()]
        if len(found) != 1:
            raise DataError(
                f"{features}: {'both releases are' if found else 'no feature set is'} here for "
                f"{split} (looked for {', '.join(defaults[r] for r in wanted)}; present: "
                f"{present}); pass release= and feature_set=, or {_download_hint(ds_root.name)}"
            )
        feature_set = defaults[found[0]]
    folder = features / feature_set
    if not folder.is_dir():
        raise DataError(
            f"{folder}: feature set not found (present: {present}); pass one of those as "
            "feature_set"
        )
    detected = _feature_set_release(folder)
    if detected is None:
        raise DataError(
            f"{folder}: no .h5 (AVCA) or .pkl (ClipClap) files under audio/<stage>/; the "
            f"download is incomplete: {_download_hint(ds_root.name)}"
        )
    if release not in ("auto", detected):
        raise DataError(
            f"{folder}: holds {FEATURE_EXT[detected]} files ({detected}'s format) but "
            f"release={release!r} was asked for; pass release={detected!r} or 'auto'"
        )
    return detected, feature_set


class _ClassResolver:
    """Maps the class names found in files (file stems, text keys) to the split's class names."""

    def __init__(self, split: AvGzslSplit, tables: list[tuple[Path, str]]):
        names = split.class_names + [c for c in split.all_classes if c not in split.class_names]
        self.canonical: dict[str, str] = {}
        for name in names:  # the split's spelling wins over all_class.txt's
            self.canonical.setdefault(_fold(name), name)
        self.listed = {_fold(c) for c in split.class_names}
        self.aliases: dict[str, str | None] = {}
        for path, column in tables:
            for original, alias in _read_name_table(path, column).items():
                target = self.canonical.get(_fold(original))
                if target is None:
                    continue
                key = _fold(alias)
                clash = key in self.aliases and self.aliases[key] != target
                self.aliases[key] = None if clash else target
        self.loose = _unique_index(self.canonical.values(), _loose)

    def resolve(self, name: str, aliases_first: bool = False) -> str | None:
        """The class ``name`` denotes: its own name (ignoring case), then an alias from the name
        tables (first instead, for keys that are aliases by construction, such as the text
        embeddings' manual names), then ignoring spaces and punctuation; None if none."""
        key = _fold(name)
        if aliases_first and self.aliases.get(key):
            return self.aliases[key]
        if key in self.canonical:
            return self.canonical[key]
        return self.aliases.get(key) or self.loose.get(_loose(name))

    def is_listed(self, cls: str) -> bool:
        return _fold(cls) in self.listed


def _clip_key(clip_id: str) -> str:
    name = PurePosixPath(clip_id.strip()).name
    suffix = PurePosixPath(name).suffix
    return name[: -len(suffix)] if suffix.lower() in VIDEO_SUFFIXES else name


def _read_modality(path: Path, release: str) -> tuple[list[str], np.ndarray, bool]:
    if release == "avca":
        ids, data = _read_h5(path)
        pooled = False
    else:
        ids, data, pooled = _read_clipclap_pkl(path)
    if data.ndim != 2 and len(ids):
        raise DataError(f"{path}: data has shape {data.shape}; expected [n clips, D]")
    if len(ids) != len(data):
        raise DataError(
            f"{path}: {len(data)} feature rows but {len(ids)} clip names, so rows cannot be "
            "matched to clips (ClipClap's packing script skips empty features without dropping "
            "their names); re-create or re-download the file"
        )
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: a clip name appears twice; re-download the file")
    return ids, data, pooled


def _load_class_file(
    audio_path: Path, video_path: Path, release: str
) -> tuple[list[str], np.ndarray, np.ndarray, bool]:
    ids, audio, pooled_a = _read_modality(audio_path, release)
    video_ids, video, pooled_v = _read_modality(video_path, release)
    if set(ids) != set(video_ids):
        only_a, only_v = set(ids) - set(video_ids), set(video_ids) - set(ids)
        raise DataError(
            f"{audio_path} and {video_path} list different clips (only audio: "
            f"{_listed(only_a) or 'none'}; only video: {_listed(only_v) or 'none'}); the "
            "download is incomplete or mixed: download the feature set again"
        )
    if ids != video_ids:
        order = {v: i for i, v in enumerate(video_ids)}
        video = video[[order[i] for i in ids]]
    return ids, audio, video, pooled_a or pooled_v


def _load_stage(
    feature_dir: Path,
    stage: str,
    release: str,
    split: AvGzslSplit,
    resolver: _ClassResolver,
    notes: list[str],
) -> FeatureStage:
    ext = FEATURE_EXT[release]
    folders = {m: feature_dir / m / stage for m in ("audio", "video")}
    for modality, folder in folders.items():
        if not folder.is_dir():
            raise DataError(
                f"{folder}: {modality} features of {stage} not found; the download is incomplete: "
                f"{_download_hint(split.name.split('/')[0])}"
            )
    files = {m: _stage_dir_files(folder, ext) for m, folder in folders.items()}
    if set(files["audio"]) != set(files["video"]):
        only_a = set(files["audio"]) - set(files["video"])
        only_v = set(files["video"]) - set(files["audio"])
        raise DataError(
            f"{feature_dir}: audio/{stage} and video/{stage} hold different classes (only audio: "
            f"{_listed(only_a) or 'none'}; only video: {_listed(only_v) or 'none'}); the "
            "download is incomplete: unzip it again"
        )
    wanted = split.classes[stage]
    by_class: dict[str, str] = {}
    dropped: list[str] = []
    for stem in files["audio"]:
        cls = resolver.resolve(stem)
        if cls is not None and cls in by_class:
            raise DataError(
                f"{folders['audio']}: {by_class[cls]!r} and {stem!r} are both class {cls!r}; "
                "remove the stray file"
            )
        if cls is not None and cls in wanted:
            by_class[cls] = stem
        elif cls is not None and not resolver.is_listed(cls):
            dropped.append(cls)
        else:
            where = [s for s in STAGES if cls in split.classes[s]] if cls else []
            raise DataError(
                f"{folders['audio'] / (stem + ext)}: class {stem!r} is not in {split.name}'s "
                f"{stage}.txt"
                + (f" (it is in {', '.join(where)})" if where else " nor in any class list")
                + "; the features belong to another split: pass the matching split/feature_set"
            )
    if missing := [c for c in wanted if c not in by_class]:
        raise DataError(
            f"{folders['audio']}: no feature file for {len(missing)} of the {len(wanted)} classes "
            f"of {stage} ({_listed(missing)}); the download is incomplete: unzip it again"
        )
    if dropped:
        notes.append(f"{stage}: left out the features of {_listed(dropped)} (not in {split.name})")
    ids: list[str] = []
    labels: list[str] = []
    audio_parts, video_parts = [], []
    pooled = 0
    for cls in wanted:
        stem = by_class[cls]
        class_ids, audio, video, was_pooled = _load_class_file(
            files["audio"][stem], files["video"][stem], release
        )
        pooled += was_pooled
        ids += class_ids
        labels += [cls] * len(class_ids)
        audio_parts.append(audio)
        video_parts.append(video)
    if pooled:
        notes.append(f"{stage}: sequences mean-pooled over time in {pooled} class files")
    audio_all = _stack(audio_parts, folders["audio"])
    video_all = _stack(video_parts, folders["video"])
    return FeatureStage(ids, labels, audio_all, video_all)


def _stack(parts: list[np.ndarray], folder: Path) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    if not parts:
        raise DataError(f"{folder}: no feature rows; the download is incomplete: unzip it again")
    dims = sorted({p.shape[1] for p in parts})
    if len(dims) > 1:
        raise DataError(
            f"{folder}: the class files have different feature sizes {dims}; files from two "
            "feature sets are mixed: download the feature set again"
        )
    return np.ascontiguousarray(np.concatenate(parts).astype(np.float32, copy=False))


def _check_against_csv(stage: str, rows: FeatureStage, split: AvGzslSplit, notes: list[str]):
    if stage not in split.clips:
        return
    listed = {_clip_key(f): label for f, label in split.clips[stage]}
    unlisted = 0
    for clip_id, label in zip(rows.ids, rows.labels, strict=True):
        expected = listed.get(_clip_key(clip_id))
        if expected is None:
            unlisted += 1
        elif expected != label:
            raise DataError(
                f"{stage}: clip {clip_id!r} is stored under class {label!r} but {stage}.csv of "
                f"{split.name} lists it as {expected!r}; features and split files disagree: use "
                "the split files shipped with these features"
            )
    if unlisted:
        notes.append(f"{stage}: {unlisted} of {len(rows)} clips are not in {stage}.csv")


def _concat_stages(stages: list[FeatureStage]) -> FeatureStage:
    return FeatureStage(
        ids=[i for s in stages for i in s.ids],
        labels=[lab for s in stages for lab in s.labels],
        audio=np.concatenate([s.audio for s in stages]),
        video=np.concatenate([s.video for s in stages]),
    )


def _load_text(
    text_dir: Path, release: str, dataset: str, split: AvGzslSplit, resolver: _ClassResolver
) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for source, pattern in TEXT_FILES[release].items():
        path = text_dir / pattern.format(ds=dataset.lower())
        if not path.is_file():
            raise DataError(
                f"{path}: the {source} class embeddings are missing; the download is incomplete: "
                f"{_download_hint(dataset)}"
            )
        vectors: dict[str, np.ndarray] = {}
        unknown = []
        for key, value in _load_npy_dict(path).items():
            cls = resolver.resolve(_text(key), aliases_first=True)
            if cls is None:
                unknown.append(_text(key))
                continue
            if cls in vectors:
                raise DataError(f"{path}: two entries name class {cls!r} (one is {key!r})")
            vector = np.asarray(value, dtype=np.float32).reshape(-1)
            vectors[cls] = vector
        if unknown:
            raise DataError(
                f"{path}: {len(unknown)} entries name no class of {dataset} ({_listed(unknown)}); "
                "put the release's *_class_names.csv tables next to the split folders"
            )
        if missing := [c for c in split.class_names if c not in vectors]:
            raise DataError(
                f"{path}: no {source} embedding for {len(missing)} classes of {split.name} "
                f"({_listed(missing)}); the file is from another release: download it again"
            )
        if len({v.shape for v in vectors.values()}) > 1:
            raise DataError(f"{path}: the vectors have different sizes; download it again")
        out[source] = vectors
    return out


def load_published_features(
    root: str | Path,
    dataset: str,
    split: str = "cls_split",
    release: str = "auto",
    feature_set: str | None = None,
    *,
    split_dir: str | Path | None = None,
) -> PublishedFeatures:
    """Load a published AVCA or ClipClap-GZSL feature release, labels aligned by class name.

    Args:
        root: The folder containing ``avgzsl_benchmark_datasets`` (or that folder, or its
            ``<dataset>`` folder).
        dataset: ``"UCF"``, ``"ActivityNet"`` or ``"VGGSound"`` (any case).
        split: The class split, ``"main_split"`` or ``"cls_split"``; decides which classes each
            stage keeps.
        release: ``"avca"``, ``"clipclap"`` or ``"auto"`` (whichever one is present).
        feature_set: The folder under ``features/``; default ``main_features`` (AVCA,
            main_split), ``cls_features`` (AVCA, cls_split) or ``cls_features_non_averaged``
            (ClipClap).
        split_dir: The split folder to use instead of ``<dataset>/class-split/<split>`` inside
            the release (e.g. ``shared/data/avgzsl-splits/UCF/class-split/cls_split``).

    Returns:
        All six stages (stage_2_train rebuilt from the stage-1 folders when the release has no
        folder for it) and the class embeddings of every class of the split.

    Raises:
        ConfigError: unknown dataset or release.
        DataError: a folder or file is missing, unreadable or inconsistent (the message says
            which and what to do).
    """
    dataset = _dataset_name(dataset)
    root = Path(root).expanduser()
    ds_root = _dataset_root(root, dataset)
    release, feature_set = _resolve_release(ds_root, release, split, feature_set)
    split_folder = Path(split_dir).expanduser() if split_dir else ds_root / "class-split" / split
    if not split_folder.is_dir():
        raise DataError(
            f"{split_folder}: split files not found; pass split_dir= the folder holding "
            f"stage_*.txt for {dataset}/{split} (e.g. avgzsl-splits/{dataset}/class-split/{split})"
        )
    split_info = read_avgzsl_split(split_folder)
    feature_dir = ds_root / "features" / feature_set
    tables = _name_tables(split_folder.parent)
    if split_folder.parent != ds_root / "class-split":
        tables += _name_tables(ds_root / "class-split")
    resolver = _ClassResolver(split_info, tables)
    notes: list[str] = []
    for stage, counts in split_info.excluded.items():
        notes.append(f"{stage}.csv: left out {sum(counts.values())} clips of {_listed(counts)}")
    stages: dict[str, FeatureStage] = {}
    for stage in STAGES:
        if stage == "stage_2_train" and not (feature_dir / "audio" / stage).is_dir():
            continue
        stages[stage] = _load_stage(feature_dir, stage, release, split_info, resolver, notes)
        _check_against_csv(stage, stages[stage], split_info, notes)
    if "stage_2_train" not in stages:
        stages["stage_2_train"] = _concat_stages([stages[s] for s in STAGE_1_UNION])
        notes.append(
            "stage_2_train: rebuilt as stage_1_train + stage_1_val_seen + stage_1_val_unseen"
        )
    stages = {s: stages[s] for s in STAGES}
    text = _load_text(feature_dir / "text", release, dataset, split_info, resolver)
    return PublishedFeatures(
        release=release,
        dataset=dataset,
        split=split,
        stages=stages,
        class_embeddings=text,
        feature_set=feature_set,
        root=ds_root,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# Synthetic releases for tests

# (all_class.txt name, manual, clip name): manual names sort in another order than the originals,
# so a reader that pairs text rows and classes by position gets them wrong; and, as in UCF, the
# stage lists spell HandStandPushups while all_class.txt and the name tables spell HandstandPushups.
_SYNTHETIC_CLASSES = (
    ("Archery", "shooting arrows", "Archery"),
    ("BabyCrawling", "Baby Crawling", "Baby Crawling"),
    ("CleanAndJerk", "Weight Lifting", "Clean And Jerk"),
    ("Drumming", "drum playing", "Drumming"),
    ("Fencing", "Fencing", "Fencing"),
    ("HandstandPushups", "Handstand Pushups", "Hand Stand Pushups"),
    ("Knitting", "Knitting", "Knitting"),
    ("YoYo", "Yo Yo", "Yo Yo"),
    ("Typing", "Typing", "Typing"),
)
_SYNTHETIC_STAGES = {
    "stage_1_train": ["Archery", "BabyCrawling", "CleanAndJerk"],
    "stage_1_val_seen": ["Archery", "BabyCrawling", "CleanAndJerk"],
    "stage_1_val_unseen": ["Drumming", "Fencing"],
    "stage_2_train": ["Archery", "BabyCrawling", "CleanAndJerk", "Drumming", "Fencing"],
    "stage_2_test_seen": ["Archery", "BabyCrawling", "CleanAndJerk", "Drumming", "Fencing"],
    "stage_2_test_unseen": ["HandStandPushups", "Knitting", "YoYo"],
}
_SYNTHETIC_EXCLUDED = ("stage_2_test_unseen", "Typing")  # clips and features, in no class list


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_csv(path: Path, header: list[str], rows: Iterable[Iterable]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _synthetic_tables(
    split_dir: Path | None,
) -> tuple[dict[str, list[str]], list[str], dict[str, str], dict[str, str], tuple[str, str] | None]:
    """Stage classes, all classes, original → manual and original → clip names."""
    if split_dir is None:
        all_classes = [c[0] for c in _SYNTHETIC_CLASSES]
        manual = {c[0]: c[1] for c in _SYNTHETIC_CLASSES}
        clip = {c[0]: c[2] for c in _SYNTHETIC_CLASSES}
        return dict(_SYNTHETIC_STAGES), all_classes, manual, clip, _SYNTHETIC_EXCLUDED
    real = read_avgzsl_split(split_dir)
    all_classes = real.all_classes or real.class_names
    manual: dict[str, str] = {}
    for path in sorted(split_dir.parent.glob("*_w2v_class_names.csv")):
        manual.update(_read_name_table(path, "manual"))
    clip = dict(manual)
    for path in sorted(split_dir.parent.glob("*_clip_class_names.csv")):
        clip.update(_read_name_table(path, "clip_class_name"))
    return {s: list(real.classes[s]) for s in STAGES}, all_classes, manual, clip, None


def write_synthetic_features(
    root: str | Path,
    dataset: str,
    split: str = "cls_split",
    release: str = "avca",
    n_per_class: int = 2,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    *,
    feature_set: str | None = None,
    split_dir: str | Path | None = None,
) -> Path:
    """Write a small random release in the on-disk format of ``release``, for tests.

    Writes ``root/avgzsl_benchmark_datasets/<dataset>/`` with ``class-split/`` (all_class.txt,
    the name tables, the six stage .txt/.csv files) and ``features/<feature_set>/`` (audio and
    video per stage and class, text embeddings). Column 0 of every audio, video and text vector
    is the class's index in ``all_class.txt`` and column 1 of audio/video the clip's number, so a
    test can check that rows and labels line up. Video rows are written in reverse clip order, so
    a reader that pairs audio and video by position fails. Without ``split_dir`` the classes are
    nine made-up ones, including one (``Typing``) that has clips and features in
    ``stage_2_test_unseen`` but is in no class list, like cls_split's removed classes.

    Args:
        root: Folder to write into.
        dataset: ``"UCF"``, ``"ActivityNet"`` or ``"VGGSound"`` (names the text files).
        split: Split folder name to write.
        release: ``"avca"`` or ``"clipclap"``.
        n_per_class: Clips per class and stage-1/test stage.
        dims: Sizes by ``"audio"``, ``"video"`` and text source (``"w2v"``, ``"clip"``,
            ``"clap"``); each at least 2; default the release's real sizes.
        seed: Random seed.
        feature_set: Features folder name (default as in :func:`load_published_features`).
        split_dir: A real split folder whose class lists to copy (clips are still synthetic).

    Returns:
        The dataset folder written (pass it, or ``root``, to :func:`load_published_features`).
    """
    dataset = _dataset_name(dataset)
    if release not in RELEASES:
        raise ConfigError(f"unknown release {release!r}; use 'avca' or 'clipclap'")
    if feature_set is None:
        feature_set = (
            AVCA_FEATURE_SETS.get(split, "cls_features")
            if release == "avca"
            else CLIPCLAP_FEATURE_SET
        )
    sizes = dict(_default_dims(release, feature_set))
    sizes.update(dims or {})
    if any(v < 2 for v in sizes.values()):
        raise ConfigError(f"every size in dims must be at least 2, got {sizes}")
    rng = np.random.default_rng(seed)
    stage_classes, all_classes, manual, clip_names, excluded = _synthetic_tables(
        Path(split_dir).expanduser() if split_dir else None
    )
    index = {_fold(c): i for i, c in enumerate(all_classes)}
    sorted_index = {_fold(c): i for i, c in enumerate(sorted(all_classes))}
    ds_root = Path(root).expanduser() / RELEASE_FOLDERS[0] / dataset
    class_split = ds_root / "class-split"
    split_folder = class_split / split
    split_folder.mkdir(parents=True, exist_ok=True)
    _write_lines(class_split / "all_class.txt", all_classes)
    _write_csv(
        class_split / f"{dataset.lower()}_w2v_class_names.csv",
        ["original", "manual"],
        [(c, manual.get(c, c)) for c in all_classes],
    )
    if release == "clipclap" and dataset == "UCF":
        _write_csv(
            class_split / "ucf_clip_class_names.csv",
            ["original", "manual", "clip_class_name"],
            [(c, manual.get(c, c), clip_names.get(c, c)) for c in all_classes],
        )

    def clip_rows(stage: str, classes: list[str]) -> list[tuple[str, str]]:
        tag = stage.replace("stage_", "s").replace("_", "")
        return [
            (f"{cls.replace(' ', '_')}-{tag}-{i:03d}", cls)
            for cls in classes
            for i in range(n_per_class)
        ]

    clips = {s: clip_rows(s, stage_classes[s]) for s in STAGES if s != "stage_2_train"}
    clips["stage_2_train"] = [r for s in STAGE_1_UNION for r in clips[s]]
    csv_clips = {s: list(rows) for s, rows in clips.items()}
    if excluded:
        csv_clips[excluded[0]] += clip_rows(excluded[0], [excluded[1]])
    for stage in STAGES:
        _write_lines(split_folder / f"{stage}.txt", stage_classes[stage])
        _write_csv(
            split_folder / f"{stage}.csv",
            ["filename", "label", "label_code"],
            [(f, c, sorted_index[_fold(c)]) for f, c in csv_clips[stage]],
        )

    feature_dir = ds_root / "features" / feature_set
    serial = {
        f: n for n, f in enumerate(dict.fromkeys(f for rows in csv_clips.values() for f, _ in rows))
    }
    for stage, rows in csv_clips.items():
        by_class: dict[str, list[str]] = {}
        for f, c in rows:
            by_class.setdefault(c, []).append(f)
        for modality in ("audio", "video"):
            folder = feature_dir / modality / stage
            folder.mkdir(parents=True, exist_ok=True)
            for cls, ids in by_class.items():
                ids = ids[::-1] if modality == "video" else ids
                data = rng.normal(scale=0.01, size=(len(ids), sizes[modality])).astype(np.float32)
                data[:, 0] = index[_fold(cls)]
                data[:, 1] = [serial[i] for i in ids]
                _write_class_file(folder / f"{cls}{FEATURE_EXT[release]}", ids, data, release)

    text_dir = feature_dir / "text"
    text_dir.mkdir(parents=True, exist_ok=True)
    keys = clip_names if release == "clipclap" and dataset == "UCF" else manual
    for source, pattern in TEXT_FILES[release].items():
        table = {}
        for cls in all_classes:
            vector = rng.normal(size=sizes[source]).astype(np.float32)
            vector[0] = index[_fold(cls)]
            table[keys.get(cls, cls)] = vector
        np.save(text_dir / pattern.format(ds=dataset.lower()), table, allow_pickle=True)
    return ds_root


def _default_dims(release: str, feature_set: str) -> dict[str, int]:
    if (release, feature_set) in DEFAULT_DIMS:
        return DEFAULT_DIMS[(release, feature_set)]
    fallback = ("avca", "cls_features") if release == "avca" else ("clipclap", CLIPCLAP_FEATURE_SET)
    return DEFAULT_DIMS[fallback]


def _write_class_file(path: Path, ids: list[str], data: np.ndarray, release: str) -> None:
    if release == "avca":  # as splitting_scripts/*_split_features.py write them
        h5py = _h5py()
        with h5py.File(path, "w") as hf:
            hf.create_dataset("data", data=data)
            hf.create_dataset(
                "video_urls",
                dtype=h5py.special_dtype(vlen=str),
                data=[i.encode("ascii", "ignore") for i in ids],
            )
        return
    payload = {  # as splitting_scripts_cls/create_pkl_files_cls.py writes them
        "features": [row for row in data],
        "video_names": [i.encode("utf-8") for i in ids],
        "fps": [25] * len(ids),
    }
    buffer = io.BytesIO()
    pickle.dump(payload, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    path.write_bytes(buffer.getvalue())
