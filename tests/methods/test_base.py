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


# --- option checks (before any work) -------------------------------------------------------


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        get_method("linear", epoch=3)
    message = str(err.value)
    assert "unknown option 'epoch' for method 'linear'" in message
    assert "valid options: batch_size, epochs, features, loss, lr, margin, weight_decay" in message


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("linear", {"epochs": "ten"}, "option 'epochs' must be an integer, not 'ten'"),
        ("linear", {"epochs": 2.5}, "option 'epochs' must be an integer, not 2.5"),
        ("linear", {"epochs": True}, "option 'epochs' must be an integer, not True"),
        ("linear", {"epochs": -5}, "option 'epochs' must be ≥ 1, not -5"),
        ("linear", {"lr": 0}, "option 'lr' must be > 0, not 0"),
        ("linear", {"features": "aisfx"}, "option 'features' must be a list of strings"),
        ("contrastive", {"dropout": 1.0}, "option 'dropout' must be in [0, 1), not 1.0"),
        ("clipclap", {"betas": ["a", "b"]}, "option 'betas' must be a list of 2 numbers"),
        ("bridge", {"top_t": 0}, "option 'top_t' must be ≥ 1, not 0"),
        ("kda", {"heads": "8"}, "option 'heads' must be an integer"),
    ],
)
def test_wrong_option_values_name_the_method_and_option(name, options, expected):
    with pytest.raises(ConfigError, match=rf"method '{name}'.*") as err:
        get_method(name, **options)
    assert expected in str(err.value)


def test_valid_options_of_every_kind_are_accepted():
    method = get_method("linear", features=["a", "b"], lr=1, epochs=2, margin=0.5)
    assert method.features == ("a", "b") and method.train_config.lr == 1
    kda = get_method("kda", betas=[0.5, 0.9], plateau_patience=None, knowledge="llm")
    assert kda.train_config.betas == (0.5, 0.9)


def test_baselines_do_not_accept_the_loss_they_fix():
    with pytest.raises(ConfigError, match="unknown option 'loss' for method 'ale'"):
        get_method("ale", loss="ce")


# --- training leaves the caller's global state alone --------------------------------------


def _global_state():
    import random

    import torch

    return (
        torch.get_num_threads(),
        torch.random.get_rng_state().clone(),
        np.random.get_state(),
        random.getstate(),
    )


TRAINABLE = {
    "linear": ({"features": ["feat"], "epochs": 2}, False),
    "contrastive": ({"features": ["feat"], "epochs": 2, "dim": 8}, False),
    "clipclap": ({"audio": ["audio"], "video": ["video"], "epochs": 2, "text": "clip"}, True),
    "kda": ({"audio": ["audio"], "video": ["video"], "epochs": 2, "dim": 8, "heads": 2}, True),
}


@pytest.mark.parametrize("name", sorted(TRAINABLE))
def test_fit_keeps_the_callers_random_state_and_threads(name, problem, av):
    import random

    import torch

    options, audio_visual = TRAINABLE[name]
    p = av if audio_visual else problem
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    before = _global_state()
    method = get_method(name, **options)
    method.fit(p.train, p.train_classes, p.dev, p.dev_classes, seed=3)
    after = _global_state()
    assert after[0] == before[0]
    assert torch.equal(after[1], before[1])
    assert np.array_equal(after[2][1], before[2][1]) and after[2][2:] == before[2][2:]
    assert after[3] == before[3]
    # and the seed alone decides the result
    torch.manual_seed(6)
    again = get_method(name, **options)
    again.fit(p.train, p.train_classes, p.dev, p.dev_classes, seed=3)
    np.testing.assert_array_equal(
        method.score(p.test, p.test_classes), again.score(p.test, p.test_classes)
    )
