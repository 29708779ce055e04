"""A synthetic zero-shot problem: audio features are a fixed linear map of class embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from harken.methods.base import Batch, Classes


@dataclass
class Problem:
    train: Batch
    train_classes: Classes
    dev: Batch
    dev_classes: Classes
    test: Batch
    test_classes: Classes


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_problem(
    seed: int = 0, n_train: int = 16, n_dev: int = 8, n_test: int = 8, per_class: int = 10
) -> Problem:
    """Clusters ``x = A φ(c) + noise``; ``A`` is shared by all classes, so it transfers."""
    rng = np.random.default_rng(seed)
    emb_dim, feat_dim = 6, 12
    n = n_train + n_dev + n_test
    names = [f"class{i:02d}" for i in range(n)]
    embeddings = _unit(rng.normal(size=(n, emb_dim))).astype(np.float32)
    mixing = rng.normal(size=(feat_dim, emb_dim))
    offset = rng.normal(size=feat_dim) * 3.0  # standardisation must remove it

    def batch(class_ids: range) -> Batch:
        labels = [names[c] for c in class_ids for _ in range(per_class)]
        rows = np.repeat(embeddings[list(class_ids)], per_class, axis=0)
        x = rows @ mixing.T + offset + 0.05 * rng.normal(size=(len(rows), feat_dim))
        ids = [f"{label}-{i}" for i, label in enumerate(labels)]
        return Batch({"feat": x.astype(np.float32)}, labels, ids)

    all_classes = Classes(names, embeddings)
    parts = (range(n_train), range(n_train, n_train + n_dev), range(n_train + n_dev, n))
    batches = [batch(p) for p in parts]
    subsets = [all_classes.subset([names[i] for i in p]) for p in parts]
    return Problem(batches[0], subsets[0], batches[1], subsets[1], batches[2], subsets[2])


@pytest.fixture(scope="module")
def problem() -> Problem:
    return make_problem()


def permuted(classes: Classes, seed: int = 1) -> Classes:
    """The same classes in another order (names and embedding rows moved together)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(classes.names))
    while (order == np.arange(len(order))).all():
        order = rng.permutation(len(classes.names))
    return Classes([classes.names[i] for i in order], classes.embeddings[order])
