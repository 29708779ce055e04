"""Classes / Batch containers and the method registry."""

from __future__ import annotations

import numpy as np
import pytest

from harken.errors import ConfigError, DataError
from harken.methods.base import Batch, Classes, Method, get_method
from harken.methods.bridge import Bridge
from harken.methods.conse import ConSE
from harken.methods.linear import LinearProjection


def test_classes_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="3 class names but 2 class embeddings"):
        Classes(["a", "b", "c"], np.zeros((2, 4)))


def test_classes_rejects_duplicate_names():
    with pytest.raises(DataError, match="duplicate"):
        Classes(["a", "b", "a"], np.zeros((3, 4)))


def test_classes_subset_picks_the_rows_of_the_named_classes():
    emb = np.arange(12, dtype=np.float32).reshape(4, 3)
    classes = Classes(["a", "b", "c", "d"], emb)
    sub = classes.subset(["d", "b"])
    assert sub.names == ["d", "b"]
    np.testing.assert_array_equal(sub.embeddings, emb[[3, 1]])
    with pytest.raises(DataError, match="zebra"):
        classes.subset(["a", "zebra"])


def test_batch_get_names_the_missing_feature():
    batch = Batch({"yamnet": np.zeros((2, 3))})
    assert len(batch) == 2
    with pytest.raises(ConfigError, match=r"'aisfx'.*yamnet"):
        batch.get("aisfx")


@pytest.mark.parametrize("index", [np.array([False, True, True]), np.array([2, 0])])
def test_batch_subset_keeps_features_labels_and_ids_aligned(index):
    feats = np.arange(6).reshape(3, 2)
    batch = Batch({"f": feats}, ["x", "y", "z"], ["c0", "c1", "c2"])
    sub = batch.subset(index)
    rows = np.flatnonzero(index) if index.dtype == bool else index
    np.testing.assert_array_equal(sub.features["f"], feats[rows])
    assert sub.labels == [batch.labels[i] for i in rows]
    assert sub.clip_ids == [batch.clip_ids[i] for i in rows]


class _FixedScores(Method):
    def score(self, batch, classes):
        return np.array([[0.1, 0.9, 0.3], [0.8, 0.1, 0.2]])


def test_predict_returns_the_name_of_the_argmax_column():
    classes = Classes(["a", "b", "c"], np.eye(3))
    assert _FixedScores().predict(Batch({"f": np.zeros((2, 1))}), classes) == ["b", "a"]


def test_get_method_builds_registered_methods_and_lists_choices():
    assert isinstance(get_method("linear", features=("f",)), LinearProjection)
    assert type(get_method("conse")) is ConSE
    assert isinstance(get_method("bridge", top_t=5), Bridge)
    with pytest.raises(ConfigError, match="unknown method 'nope'") as err:
        get_method("nope")
    assert all(name in str(err.value) for name in ("linear", "conse", "bridge"))
