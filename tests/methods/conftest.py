"""A synthetic zero-shot problem: audio features are a fixed linear map of class embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from harken.methods.base import Batch, Classes
from harken.metrics.classification import unweighted_accuracy


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


# --- a synthetic audio-visual zero-shot problem ------------------------------------------


def make_av_problem(
    seed: int = 0, n_train: int = 40, n_dev: int = 16, n_test: int = 8, per_class: int = 6
) -> Problem:
    """Video = a fixed map of the class's CLIP-like embedding (6-d), audio = one of its
    CLAP-like embedding (5-d), plus noise. Classes carry both views, 7-d default embeddings and
    three per-description embeddings of the default knowledge (``members["llm"]``)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_dev + n_test
    names = [f"class{i:02d}" for i in range(n)]
    clip = _unit(rng.normal(size=(n, 6))).astype(np.float32)
    clap = _unit(rng.normal(size=(n, 5))).astype(np.float32)
    both = np.concatenate([clip, clap], axis=1) @ rng.normal(size=(11, 7))
    members = [(both[i] + 0.1 * rng.normal(size=(3, 7))).astype(np.float32) for i in range(n)]
    default = np.stack([m.mean(axis=0) for m in members]).astype(np.float32)
    classes = Classes(names, default, {"clip": clip, "clap": clap}, {"llm": members})
    to_video, to_audio = rng.normal(size=(10, 6)), rng.normal(size=(8, 5))

    def batch(ids: range) -> Batch:
        rows = np.repeat(np.array(list(ids)), per_class)
        labels = [names[r] for r in rows]
        video = clip[rows] @ to_video.T + 0.05 * rng.normal(size=(len(rows), 10))
        audio = clap[rows] @ to_audio.T + 0.05 * rng.normal(size=(len(rows), 8))
        features = {"video": video.astype(np.float32), "audio": audio.astype(np.float32)}
        return Batch(features, labels, [f"{label}-{i}" for i, label in enumerate(labels)])

    parts = (range(n_train), range(n_train, n_train + n_dev), range(n_train + n_dev, n))
    out = []
    for p in parts:
        out += [batch(p), classes.subset([names[i] for i in p])]
    return Problem(*out)


def reordered(classes: Classes, seed: int = 1) -> Classes:
    """The same classes in another order, views and members moved along."""
    order = np.random.default_rng(seed).permutation(len(classes.names))
    return classes.subset([classes.names[i] for i in order])


def with_features(batch: Batch, **features: np.ndarray) -> Batch:
    return Batch({**batch.features, **features}, batch.labels, batch.clip_ids)


def ua(method, batch: Batch, classes: Classes) -> float:
    return unweighted_accuracy(batch.labels, method.predict(batch, classes))


@pytest.fixture(scope="module")
def av() -> Problem:
    return make_av_problem()
