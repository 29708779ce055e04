"""Class-disjoint K-fold splits (Gebhard et al. 2024 §3.2).

Each fold partitions the classes into train / dev / test sets that share no class (≈ 80/10/10 of
the classes by default); across the K folds every class is a **test** class at most once and,
when the vocabulary allows it, a dev class at most once too. Splits depend only on the sorted
class list and the seed, so they are reproducible, and they are written to each run folder
(``splits/fold<k>.json``) and can be read back from user-supplied files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harken.errors import ConfigError, DataError


@dataclass(frozen=True)
class Split:
    """The class names of one fold."""

    fold: int
    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]

    def __post_init__(self) -> None:
        sets = {"train": set(self.train), "dev": set(self.dev), "test": set(self.test)}
        for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
            both = sets[a] & sets[b]
            if both:
                raise DataError(
                    f"fold {self.fold}: classes {sorted(both)[:5]} are in both {a} and {b}; "
                    "zero-shot splits must be class-disjoint"
                )
        if not self.test:
            raise DataError(f"fold {self.fold}: no test classes")

    def to_dict(self) -> dict[str, list[str]]:
        return {"train": list(self.train), "dev": list(self.dev), "test": list(self.test)}


def class_disjoint_folds(
    classes: Sequence[str],
    n_folds: int = 5,
    *,
    test_fraction: float = 0.1,
    dev_fraction: float = 0.1,
    n_test: int | None = None,
    n_dev: int | None = None,
    seed: int = 0,
) -> list[Split]:
    """Class-disjoint folds.

    The classes are shuffled once with ``seed``; fold ``k`` tests the ``k``-th block of
    ``n_test`` classes of that order (so no class is tested twice) and takes its ``n_dev`` dev
    classes from the next block(s), cyclically; the remaining classes train.

    Args:
        classes: Class names (order does not matter: they are sorted first).
        n_folds: Number of folds ``K``.
        test_fraction: Share of classes tested per fold (used when ``n_test`` is None).
        dev_fraction: Share of classes for development (used when ``n_dev`` is None).
        n_test: Test classes per fold.
        n_dev: Dev classes per fold (may be 0: no model selection).
        seed: Shuffle seed.

    Returns:
        ``K`` :class:`Split` objects.
    """
    classes = list(classes)
    names = sorted(set(classes))
    if len(names) != len(classes):
        raise DataError("class list has duplicates")
    c = len(names)
    n_test = max(1, round(c * test_fraction)) if n_test is None else n_test
    n_dev = max(1, round(c * dev_fraction)) if n_dev is None else n_dev
    if n_folds < 1:
        raise ConfigError("n_folds must be ≥ 1")
    if n_test * n_folds > c:
        raise ConfigError(
            f"{n_folds} folds × {n_test} test classes need {n_folds * n_test} classes, only {c} "
            "exist; lower n_folds or the test fraction"
        )
    if n_test + n_dev >= c:
        raise ConfigError(f"{n_test} test + {n_dev} dev classes leave no training class of {c}")
    order = [names[i] for i in np.random.default_rng(seed).permutation(c)]
    splits = []
    for k in range(n_folds):
        test = order[k * n_test : (k + 1) * n_test]
        # dev classes: the classes after this fold's test block, cyclically, skipping test ones
        start = (k + 1) * n_test
        dev: list[str] = []
        j = start
        while len(dev) < n_dev:
            cand = order[j % c]
            if cand not in test and cand not in dev:
                dev.append(cand)
            j += 1
        train = [x for x in names if x not in set(test) | set(dev)]
        splits.append(Split(k, tuple(sorted(train)), tuple(sorted(dev)), tuple(sorted(test))))
    return splits


def all_classes_split(classes: Sequence[str]) -> Split:
    """One "fold" testing every class (training-free evaluation over the whole vocabulary)."""
    return Split(0, (), (), tuple(sorted(set(classes))))


def write_splits(splits: Sequence[Split], folder: Path) -> None:
    """Write ``fold<k>.json`` files (``{"train": [...], "dev": [...], "test": [...]}``)."""
    from harken.store.atomic import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    for s in splits:
        atomic_write_text(folder / f"fold{s.fold}.json", json.dumps(s.to_dict(), indent=2) + "\n")


def listed_folds(folder: Path) -> list[int] | None:
    """The folds of a run folder's ``splits/``, as its manifest lists them (``splits.folds``);
    None for a folder outside a run (no manifest beside it, or one without that entry)."""
    path = Path(folder).parent / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("splits"), dict):
        return None
    folds = data["splits"].get("folds")
    if not isinstance(folds, list) or not all(isinstance(k, int) for k in folds):
        raise DataError(f'{path}: "splits" should list the run\'s folds: {{"folds": [0, 1, ...]}}')
    return folds


def _check_listed(folder: Path, found: list[int]) -> None:
    """Refuse fold files that differ from the folds the folder lists (if it lists them)."""
    listed = listed_folds(folder)
    if listed is None:
        return
    problems = []
    extra = sorted(set(found) - set(listed))
    missing = sorted(set(listed) - set(found))
    if extra:
        problems.append(f"fold files not listed (left by another run?): {_names(extra)}")
    if missing:
        problems.append(f"listed fold files missing: {_names(missing)}")
    if problems:
        raise DataError(
            f"{folder}: the split files do not match the folds {listed} the run's manifest lists; "
            + "; ".join(problems)
            + "; remove the stray files, or rewrite the run with --overwrite"
        )


def _names(folds: list[int]) -> list[str]:
    return [f"fold{k}.json" for k in folds]


def read_splits(folder: Path, classes: Sequence[str] | None = None) -> list[Split]:
    """Read ``fold<k>.json`` files, checking them against the dataset's classes.

    In a run folder's ``splits/`` the fold files must be exactly the folds its manifest lists:
    a stale fold file left by another run, or a missing one, is an error.
    """
    files = [f for f in Path(folder).glob("fold*.json") if f.stem[4:].isdigit()]
    files.sort(key=lambda p: int(p.stem[4:]))
    if not files:
        raise DataError(f"{folder}: no fold<k>.json split files found")
    _check_listed(Path(folder), [int(f.stem[4:]) for f in files])
    known = set(classes) if classes is not None else None
    splits = []
    for f in files:
        try:
            d = json.loads(f.read_text())
            split = Split(
                int(f.stem[4:]),
                tuple(d.get("train", [])),
                tuple(d.get("dev", [])),
                tuple(d["test"]),
            )
        except (
            json.JSONDecodeError,
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            DataError,
        ) as exc:
            raise DataError(
                f"{f}: not a split file ({exc}); expected "
                '{"train": [...], "dev": [...], "test": [...]}'
            ) from exc
        if known is not None:
            unknown = sorted({*split.train, *split.dev, *split.test} - known)
            if unknown:
                raise DataError(f"{f}: unknown classes {unknown[:5]} (not in the dataset)")
        splits.append(split)
    tested = [c for s in splits for c in s.test]
    if len(tested) != len(set(tested)):
        raise DataError(f"{folder}: some class is a test class in two folds")
    return splits
