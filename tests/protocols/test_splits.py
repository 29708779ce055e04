"""Class-disjoint folds (Gebhard et al. 2024 §3.2) on the real Kitchen20 and EPIC vocabularies."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from harken.errors import ConfigError, DataError
from harken.protocols.splits import (
    Split,
    all_classes_split,
    class_disjoint_folds,
    read_splits,
    write_splits,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _csv_column(path: Path, column: str) -> list[str]:
    if not path.is_file():
        pytest.skip(f"real data not found at {path}")
    with open(path, newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def kitchen20_classes() -> list[str]:
    classes = sorted(set(_csv_column(SHARED_DATA / "kitchen20" / "labels.csv", "label")))
    assert len(classes) == 20
    return classes


@pytest.fixture(scope="module")
def epic_verbs() -> list[str]:
    verbs = _csv_column(SHARED_DATA / "epic-kitchens-100" / "EPIC_100_verb_classes.csv", "key")
    assert len(verbs) == 97
    return verbs


def _k20_folds(classes, seed=0):
    return class_disjoint_folds(classes, 5, n_test=4, n_dev=3, seed=seed)


def test_kitchen20_folds_are_class_disjoint_and_cover_the_vocabulary(kitchen20_classes):
    folds = _k20_folds(kitchen20_classes)
    assert [s.fold for s in folds] == [0, 1, 2, 3, 4]
    for s in folds:
        assert (len(s.train), len(s.dev), len(s.test)) == (13, 3, 4)
        assert not set(s.train) & set(s.dev)
        assert not set(s.train) & set(s.test)
        assert not set(s.dev) & set(s.test)
        assert set(s.train) | set(s.dev) | set(s.test) == set(kitchen20_classes)
    tested = Counter(c for s in folds for c in s.test)
    assert sorted(tested) == kitchen20_classes  # every class is tested ...
    assert set(tested.values()) == {1}  # ... exactly once
    dev = Counter(c for s in folds for c in s.dev)
    assert max(dev.values()) == 1  # 5 × 3 dev classes fit into 20 without repeats


def test_folds_are_deterministic_per_seed_and_differ_across_seeds(kitchen20_classes):
    assert _k20_folds(kitchen20_classes, seed=3) == _k20_folds(kitchen20_classes, seed=3)
    assert _k20_folds(kitchen20_classes, seed=3) != _k20_folds(kitchen20_classes, seed=4)


def test_folds_do_not_depend_on_input_class_order(kitchen20_classes):
    shuffled = list(reversed(kitchen20_classes))
    shuffled = shuffled[7:] + shuffled[:7]
    assert _k20_folds(shuffled, seed=1) == _k20_folds(kitchen20_classes, seed=1)


def test_paper_defaults_on_epic_verbs_are_about_80_10_10(epic_verbs):
    folds = class_disjoint_folds(epic_verbs, 5, seed=0)
    for s in folds:
        n = len(s.train) + len(s.dev) + len(s.test)
        assert n == 97
        assert len(s.test) == len(s.dev) == 10
        assert 0.78 <= len(s.train) / n <= 0.82
    tested = Counter(c for s in folds for c in s.test)
    assert max(tested.values()) == 1 and len(tested) == 50
    assert max(Counter(c for s in folds for c in s.dev).values()) == 1


def test_too_many_folds_is_a_config_error(kitchen20_classes):
    with pytest.raises(ConfigError, match="6 folds"):
        class_disjoint_folds(kitchen20_classes, 6, n_test=4, n_dev=3)
    with pytest.raises(ConfigError, match="no training class"):
        class_disjoint_folds(kitchen20_classes, 1, n_test=10, n_dev=10)


def test_duplicate_classes_are_rejected():
    with pytest.raises(DataError, match="duplicates"):
        class_disjoint_folds(["a", "b", "a", "c", "d"], 1, n_test=1, n_dev=1)


def test_split_rejects_overlap_and_empty_test():
    with pytest.raises(DataError, match="both train and test"):
        Split(0, ("a", "b"), ("c",), ("b",))
    with pytest.raises(DataError, match="no test classes"):
        Split(0, ("a",), ("c",), ())


def test_all_classes_split_tests_everything():
    s = all_classes_split(["b", "a", "b"])
    assert s.test == ("a", "b") and s.train == () and s.dev == ()


def test_write_read_round_trip(tmp_path, kitchen20_classes):
    folds = _k20_folds(kitchen20_classes, seed=2)
    write_splits(folds, tmp_path / "splits")
    files = sorted(p.name for p in (tmp_path / "splits").iterdir())
    assert files == [f"fold{k}.json" for k in range(5)]
    assert json.loads((tmp_path / "splits" / "fold0.json").read_text()) == folds[0].to_dict()
    assert read_splits(tmp_path / "splits", kitchen20_classes) == folds


def test_read_splits_orders_folds_numerically(tmp_path):
    classes = [f"c{i:02d}" for i in range(30)]
    folds = class_disjoint_folds(classes, 12, n_test=2, n_dev=1)
    write_splits(folds, tmp_path)
    assert [s.fold for s in read_splits(tmp_path, classes)] == list(range(12))


def _write(folder: Path, name: str, obj) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_read_splits_rejects_overlapping_classes(tmp_path):
    _write(tmp_path, "fold0.json", {"train": ["a", "b"], "dev": [], "test": ["b"]})
    with pytest.raises(DataError, match="both train and test"):
        read_splits(tmp_path)


def test_read_splits_rejects_unknown_classes(tmp_path):
    path = _write(tmp_path, "fold0.json", {"train": ["a"], "dev": [], "test": ["zebra"]})
    with pytest.raises(DataError, match="unknown classes") as err:
        read_splits(tmp_path, ["a", "b"])
    assert str(path) in str(err.value) and "zebra" in str(err.value)


def test_read_splits_rejects_a_class_tested_twice(tmp_path):
    _write(tmp_path, "fold0.json", {"train": ["a"], "dev": [], "test": ["b"]})
    _write(tmp_path, "fold1.json", {"train": ["a"], "dev": [], "test": ["b"]})
    with pytest.raises(DataError, match="test class in two folds"):
        read_splits(tmp_path)


@pytest.mark.parametrize(
    "content", ['{"train": ["a"], "test": ', '{"train": ["a"]}', '["a", "b"]', '"text"']
)
def test_read_splits_rejects_malformed_files_naming_the_file(tmp_path, content):
    path = _write(tmp_path, "fold0.json", content)
    with pytest.raises(DataError, match="not a split file") as err:
        read_splits(tmp_path)
    assert str(path) in str(err.value)


def test_read_splits_without_files(tmp_path):
    with pytest.raises(DataError, match=r"no fold<k>\.json"):
        read_splits(tmp_path)
