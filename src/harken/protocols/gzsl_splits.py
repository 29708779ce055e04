"""Generalised zero-shot splits: the audio-visual GZSL benchmark's two stages.

The benchmark of Mercea et al. (2022), used by ClipClap (Kurzendörfer et al. 2024 §4.1) and KDA
(Chen et al. 2024 §4.1), has six clip sets:

==========================  ===============================================================
``stage_1_train``           clips of the stage-1 seen classes ``S₁``
``stage_1_val_seen``        held-out clips of ``S₁``
``stage_1_val_unseen``      clips of the validation-unseen classes ``U₁`` (``U₁ ∩ S₁ = ∅``)
``stage_2_train``           ``stage_1_train ∪ stage_1_val_seen ∪ stage_1_val_unseen``; its
                            classes ``S₂ = S₁ ∪ U₁``
``stage_2_test_seen``       held-out clips of ``S₂``
``stage_2_test_unseen``     clips of the test-unseen classes ``U₂`` (``U₂ ∩ S₂ = ∅``)
==========================  ===============================================================

Stage 1 trains on ``stage_1_train`` and chooses the epoch and the calibrated-stacking constant
on the two validation sets; stage 2 retrains on ``stage_2_train`` with those choices and is
scored once on the two test sets. :class:`GzslSplit` checks every invariant above, so no split
can put a test class into training.

:func:`make_gzsl_split` builds such a split for any labelled dataset. Held-out *seen* clips
never share a recording group (Kitchen20's Freesound ``source_id``) with the clips trained on
in the same stage: a source that appears under several classes is always a training source.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harken.data.readers.avgzsl import DISJOINT_STAGES, STAGES
from harken.errors import ConfigError, DataError

__all__ = [
    "DISJOINT_STAGES",
    "STAGES",
    "GzslSplit",
    "from_avgzsl",
    "make_gzsl_split",
    "read_gzsl_split",
    "write_gzsl_split",
]


@dataclass(frozen=True)
class GzslSplit:
    """Clip ids and class names of the six stages (see the module docstring).

    Attributes:
        name: Where the split came from (``"kitchen20/gzsl-seed0"``, ``"UCF/cls_split"``).
        clips: Stage → clip ids.
        classes: Stage → class names.
    """

    name: str
    clips: dict[str, tuple[str, ...]]
    classes: dict[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        missing = [s for s in STAGES if s not in self.clips or s not in self.classes]
        if missing:
            raise DataError(f"GZSL split {self.name!r}: stages {missing} are missing")
        c = {s: set(v) for s, v in self.classes.items()}
        checks = [
            (c["stage_1_val_seen"] <= c["stage_1_train"], "stage_1_val_seen ⊆ stage_1_train"),
            (not c["stage_1_val_unseen"] & c["stage_1_train"], "stage_1_val_unseen ∩ S₁ = ∅"),
            (
                c["stage_2_train"] == c["stage_1_train"] | c["stage_1_val_unseen"],
                "stage_2_train = stage_1_train ∪ stage_1_val_unseen",
            ),
            (not c["stage_2_test_unseen"] & c["stage_2_train"], "stage_2_test_unseen ∩ S₂ = ∅"),
            (c["stage_2_test_seen"] <= c["stage_2_train"], "stage_2_test_seen ⊆ stage_2_train"),
            (bool(c["stage_1_val_unseen"]), "stage 1 has unseen validation classes"),
            (bool(c["stage_2_test_unseen"]), "stage 2 has unseen test classes"),
        ]
        broken = [what for ok, what in checks if not ok]
        if broken:
            raise DataError(f"GZSL split {self.name!r} violates: {'; '.join(broken)}")
        ids = {s: set(v) for s, v in self.clips.items()}
        for evaluated, trained in (
            ("stage_1_val_seen", "stage_1_train"),
            ("stage_1_val_unseen", "stage_1_train"),
            ("stage_2_test_seen", "stage_2_train"),
            ("stage_2_test_unseen", "stage_2_train"),
        ):
            both = ids[evaluated] & ids[trained]
            if both:
                raise DataError(
                    f"GZSL split {self.name!r}: clips {sorted(both)[:3]} are in both "
                    f"{evaluated} and {trained}"
                )

    @property
    def seen_1(self) -> tuple[str, ...]:
        return self.classes["stage_1_train"]

    @property
    def unseen_1(self) -> tuple[str, ...]:
        return self.classes["stage_1_val_unseen"]

    @property
    def seen_2(self) -> tuple[str, ...]:
        return self.classes["stage_2_train"]

    @property
    def unseen_2(self) -> tuple[str, ...]:
        return self.classes["stage_2_test_unseen"]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "classes": {s: list(self.classes[s]) for s in STAGES},
            "clips": {s: list(self.clips[s]) for s in STAGES},
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "split") -> GzslSplit:
        try:
            return cls(
                str(d.get("name", source)),
                {s: tuple(d["clips"][s]) for s in STAGES},
                {s: tuple(d["classes"][s]) for s in STAGES},
            )
        except (KeyError, TypeError) as exc:
            raise DataError(
                f"{source}: not a GZSL split file (missing {exc}); expected "
                '{"classes": {stage: [...]}, "clips": {stage: [...]}} for the stages '
                f"{', '.join(STAGES)}"
            ) from exc


def write_gzsl_split(split: GzslSplit, path: Path) -> None:
    """Write ``split`` as JSON (atomically)."""
    from harken.store.atomic import atomic_write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), json.dumps(split.to_dict(), indent=1) + "\n")


def read_gzsl_split(path: Path) -> GzslSplit:
    """Read a split written by :func:`write_gzsl_split`."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: GZSL split file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON ({exc})") from exc
    return GzslSplit.from_dict(d, str(path))


def make_gzsl_split(
    clip_ids: Sequence[str],
    labels: Sequence[str],
    groups: Sequence[str | None] | None = None,
    *,
    n_val_unseen: int | None = None,
    n_test_unseen: int | None = None,
    held_out: float = 0.2,
    seed: int = 0,
    name: str = "gzsl",
) -> GzslSplit:
    """A GZSL split of a labelled dataset.

    Classes are shuffled with ``seed``: the first ``n_test_unseen`` become ``U₂``, the next
    ``n_val_unseen`` ``U₁`` and the rest ``S₁`` (defaults: a quarter each for ``U₂`` and
    ``U₁``). Per class, recording groups are shuffled and whole groups are held out until at
    least ``held_out`` of the class's clips are held out:

    * ``S₁`` classes: a test part (→ ``stage_2_test_seen``), a validation part
      (→ ``stage_1_val_seen``) and the rest (→ ``stage_1_train``);
    * ``U₁`` classes: a test part (→ ``stage_2_test_seen``), the rest ``stage_1_val_unseen``;
    * ``U₂`` classes: every clip → ``stage_2_test_unseen``.

    Clips without a group are their own group. A group that occurs under several classes is
    never held out (it would leak a recording into both sides). ``stage_2_train`` is
    ``stage_1_train ∪ stage_1_val_seen ∪ stage_1_val_unseen``.

    Raises:
        ConfigError: Too few classes, or a class with too few groups to hold any out.
    """
    ids, y = list(clip_ids), list(labels)
    if len(ids) != len(y):
        raise DataError(f"{len(ids)} clip ids but {len(y)} labels")
    if groups is not None and len(groups) != len(ids):
        raise DataError(f"{len(ids)} clip ids but {len(groups)} groups")
    g = [
        gr if gr is not None else f"clip:{cid}"
        for gr, cid in zip(groups or [None] * len(ids), ids, strict=True)
    ]
    names = sorted(set(y))
    n = len(names)
    n_test_unseen = max(1, n // 4) if n_test_unseen is None else n_test_unseen
    n_val_unseen = max(1, n // 4) if n_val_unseen is None else n_val_unseen
    if n_test_unseen < 1 or n_val_unseen < 1 or n_test_unseen + n_val_unseen >= n:
        raise ConfigError(
            f"{n} classes cannot give {n_test_unseen} test-unseen + {n_val_unseen} "
            "validation-unseen classes and at least one seen class"
        )
    if not 0 < held_out < 0.5:
        raise ConfigError(f"held_out must be in (0, 0.5), not {held_out}")
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(n)]
    unseen_2, unseen_1 = order[:n_test_unseen], order[n_test_unseen : n_test_unseen + n_val_unseen]
    seen_1 = order[n_test_unseen + n_val_unseen :]
    classes_of_group: dict[str, set[str]] = {}
    for gr, label in zip(g, y, strict=True):
        classes_of_group.setdefault(gr, set()).add(label)

    stage_of: dict[str, str] = {}
    role = {c: "seen_1" for c in seen_1} | {c: "unseen_1" for c in unseen_1}
    role |= {c: "unseen_2" for c in unseen_2}
    for c in names:
        rows = [i for i, label in enumerate(y) if label == c]
        if role[c] == "unseen_2":
            stage_of |= {ids[i]: "stage_2_test_unseen" for i in rows}
            continue
        by_group: dict[str, list[int]] = {}
        for i in rows:
            by_group.setdefault(g[i], []).append(i)
        movable = sorted(k for k in by_group if len(classes_of_group[k]) == 1)
        movable = [movable[i] for i in rng.permutation(len(movable))]
        parts = ["stage_2_test_seen"] + (["stage_1_val_seen"] if role[c] == "seen_1" else [])
        rest = "stage_1_train" if role[c] == "seen_1" else "stage_1_val_unseen"
        target = held_out * len(rows)
        for part in parts:
            count = 0
            while count < target and len(movable) > 1:
                grp = movable.pop(0)
                stage_of |= {ids[i]: part for i in by_group[grp]}
                count += len(by_group[grp])
            if count == 0:
                raise ConfigError(
                    f"class {c!r}: too few recording groups to hold out {part} clips that "
                    "share no group with training clips; lower held_out or drop the class"
                )
        for i in rows:
            stage_of.setdefault(ids[i], rest)

    clips = {
        s: tuple(cid for cid in ids if stage_of[cid] == s) for s in STAGES if s != "stage_2_train"
    }
    clips["stage_2_train"] = tuple(
        cid
        for cid in ids
        if stage_of[cid] in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")
    )
    classes = {
        "stage_1_train": tuple(sorted(seen_1)),
        "stage_1_val_seen": tuple(sorted(seen_1)),
        "stage_1_val_unseen": tuple(sorted(unseen_1)),
        "stage_2_train": tuple(sorted(seen_1 + unseen_1)),
        "stage_2_test_seen": tuple(sorted(seen_1 + unseen_1)),
        "stage_2_test_unseen": tuple(sorted(unseen_2)),
    }
    return GzslSplit(name, {s: clips[s] for s in STAGES}, classes)


def from_avgzsl(av, clip_ids: Sequence[str]) -> GzslSplit:
    """The benchmark's own split files (an
    :class:`~harken.data.readers.avgzsl.AvGzslSplit`) over a dataset's clips.

    A split row ``filename`` matches the clip whose id, or whose id's file stem, is
    ``filename`` (the benchmark names clips ``<youtube id>_<n>`` without an extension).
    ``stage_2_train`` is rebuilt from the three stage-1 clip lists when its csv is absent.

    Raises:
        DataError: A stage has no clip list, or its clips are not in the dataset.
    """
    by_name: dict[str, str] = {}
    for cid in clip_ids:
        by_name.setdefault(cid, cid)
        by_name.setdefault(Path(cid).stem, cid)
    clips: dict[str, tuple[str, ...]] = {}
    for stage in STAGES:
        rows = av.clips.get(stage)
        if rows is None and stage == "stage_2_train":
            continue
        if rows is None:
            raise DataError(
                f"{av.name}: no clip list for {stage} (its .csv is missing); give a split "
                "with clip lists, or use the published features (harken gzsl-features)"
            )
        missing = [f for f, _ in rows if f not in by_name]
        if missing:
            raise DataError(
                f"{av.name} {stage}: {len(missing)} of its clips are not in the dataset "
                f"(e.g. {missing[:3]}); name the dataset's files after the split's filename column"
            )
        clips[stage] = tuple(by_name[f] for f, _ in rows)
    if "stage_2_train" not in clips:
        clips["stage_2_train"] = tuple(
            c for s in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen") for c in clips[s]
        )
    classes = {s: tuple(av.classes[s]) for s in STAGES}
    return GzslSplit(av.name, {s: clips[s] for s in STAGES}, classes)
