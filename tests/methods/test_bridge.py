"""``bridge``: ConSE with a sparsified similarity whose (T, δ, γ) are picked on non-test classes."""

from __future__ import annotations

import numpy as np
import pytest

from harken.methods.base import Batch, Classes
from harken.methods.bridge import DEFAULT_GRID, Bridge
from harken.metrics.classification import unweighted_accuracy

from .conftest import permuted

# Tagger labels: "A" ∥ class a, "B" ∥ class b, and a generic label "G" the tagger always fires on,
# with weak similarity to both classes (cos 0.3 with a, 0.45 with b).
LABEL_SPACE = Classes(
    ["A", "B", "G"],
    np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, 0.45, np.sqrt(1 - 0.3**2 - 0.45**2)]]),
)
CLASSES = Classes(["a", "b"], np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
# Only δ = 0.5 is clearly right here: with δ = 0, G's 0.9 posterior × 0.45 outvotes A's 0.1 × 1
# for every clip of class a (UA 0.5); with δ = 0.5 G contributes nothing (UA 1.0).
TWO_THRESHOLDS = {"top_t": (3,), "sim_threshold": (0.0, 0.5), "sim_power": (1.0,)}


def _generic_label_batch() -> Batch:
    rows, labels = [], []
    for specific in (0.08, 0.1, 0.12):
        rows += [[specific, 0.0, 1 - specific], [0.0, specific, 1 - specific]]
        labels += ["a", "b"]
    return Batch({"yamnet": np.array(rows)}, labels)


def _ua(method, batch: Batch, classes: Classes) -> float:
    return unweighted_accuracy(batch.labels, method.predict(batch, classes))


def test_dev_classes_alone_select_the_clearly_best_setting():
    bridge = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    dev = _generic_label_batch()
    log = bridge.fit(None, None, dev, CLASSES)  # no train data, and no test data exists here
    assert bridge.sim_threshold == 0.5 and log["sim_threshold"] == 0.5
    assert (bridge.top_t, bridge.sim_power) == (3, 1.0)
    assert log["selection_UA"] == 1.0
    assert _ua(bridge, dev, CLASSES) == 1.0
    # the first grid value alone would fail: the choice was not a default or a tie
    assert _ua(Bridge(LABEL_SPACE, top_t=3, sim_threshold=0.0, sim_power=1.0), dev, CLASSES) == 0.5


def test_selection_keeps_settings_the_grid_leaves_out():
    """A grid over T only is searched with this method's δ and γ, not ConSE's defaults."""
    bridge = Bridge(LABEL_SPACE, sim_threshold=0.5, sim_power=1.0, grid={"top_t": (1, 3)})
    dev = _generic_label_batch()
    log = bridge.fit(None, None, dev, CLASSES)
    # T = 1 keeps only G, whose φ is 0 for both classes (UA 0.5); T = 3 also keeps A / B
    assert bridge.top_t == 3 and log["selection_UA"] == 1.0
    assert (bridge.sim_threshold, bridge.sim_power) == (0.5, 1.0)
    assert _ua(bridge, dev, CLASSES) == log["selection_UA"]


def test_seen_classes_alone_also_select():
    """Training classes are never test classes, so they may serve for selection too."""
    bridge = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    log = bridge.fit(_generic_label_batch(), CLASSES, None, None)
    assert bridge.sim_threshold == 0.5 and log["selection_UA"] == 1.0


def test_default_grid_finds_a_perfect_setting():
    bridge = Bridge(LABEL_SPACE)
    assert bridge.grid == DEFAULT_GRID
    log = bridge.fit(None, None, _generic_label_batch(), CLASSES)
    assert log["selection_UA"] == 1.0
    assert bridge.top_t in DEFAULT_GRID["top_t"]
    assert bridge.sim_threshold in DEFAULT_GRID["sim_threshold"]
    assert bridge.sim_power in DEFAULT_GRID["sim_power"]
    assert _ua(bridge, _generic_label_batch(), CLASSES) == 1.0


@pytest.mark.parametrize(
    "dev, dev_classes",
    [(None, None), (_generic_label_batch(), None), (None, CLASSES)],
)
def test_without_selection_classes_the_defaults_stay(dev, dev_classes):
    bridge = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    assert bridge.fit(None, None, dev, dev_classes) == {"selected_on": "defaults"}
    assert (bridge.top_t, bridge.sim_threshold, bridge.sim_power) == (50, 0.3, 2.0)


def test_a_single_dev_class_keeps_the_defaults():
    dev = Batch({"yamnet": np.array([[0.1, 0.0, 0.9]])}, ["a"])
    bridge = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    assert bridge.fit(None, None, dev, CLASSES.subset(["a"])) == {"selected_on": "defaults"}
    assert bridge.sim_threshold == 0.3


def test_candidate_order_changes_neither_selection_nor_predictions():
    dev = _generic_label_batch()
    reference = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    reference.fit(None, None, dev, CLASSES)
    shuffled = permuted(CLASSES)
    assert shuffled.names == ["b", "a"]
    other = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    other.fit(None, None, dev, shuffled)
    assert other.config() == reference.config()
    assert other.predict(dev, shuffled) == reference.predict(dev, CLASSES) == dev.labels


def test_config_records_the_grid():
    config = Bridge(LABEL_SPACE, grid={"top_t": (1, 3)}).config()
    assert config["grid"] == {"top_t": [1, 3]}
    assert config["top_t"] == 50


def test_episode_ua_against_a_hand_computation():
    from harken.methods.bridge import episode_ua

    names = ["a", "b", "c"]
    labels = ["a", "a", "b", "c"]
    # clip 0 → a, clip 1 → c (b second), clip 2 → a over b, clip 3 → c
    scores = np.array([[3.0, 1, 0], [0, 2, 3], [2, 1, 0], [0, 1, 2]])
    # all three classes: recalls a ½, b 0, c 1 → ½
    assert episode_ua(scores, labels, names, [np.arange(3)]) == pytest.approx(0.5)
    # {a, b}: clip 1 → b (wrong), clip 2 → a (wrong) … recalls a ½, b 0 → ¼
    # {b, c}: clip 2 → b ✓, clip 3 → c ✓ → 1
    got = episode_ua(scores, labels, names, [np.array([0, 1]), np.array([1, 2])])
    assert got == pytest.approx((0.25 + 1.0) / 2)


def test_selection_runs_on_episodes_the_size_of_the_test_task():
    bridge = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS, episodes=20)
    bridge.n_candidates = 2  # as the experiment sets it: test clips have 2 candidates
    classes = Classes(["a", "b", "c"], np.eye(3))
    batch = Batch({"yamnet": np.tile([[0.5, 0.3, 0.2]], (3, 1))}, ["a", "b", "c"])
    log = bridge.fit(None, None, batch, classes)
    assert log["selected_on"] == "train+dev classes, 20 × 2-way episodes"
    bridge.n_candidates = None
    assert "1 × 3-way" in bridge.fit(None, None, batch, classes)["selected_on"]


def test_knowledge_source_is_chosen_on_non_test_classes_and_used_on_test():
    # default knowledge swaps a and b (wrong); the "good" alternative is right
    wrong, right = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), CLASSES.embeddings
    seen = Classes(["a", "b"], wrong, {"bad": wrong, "good": right})
    bridge = Bridge(LABEL_SPACE, grid=TWO_THRESHOLDS)
    log = bridge.fit(None, None, _generic_label_batch(), seen)
    assert log["knowledge"] == "good" and bridge.config()["knowledge"] == "good"
    test = Classes(
        ["b", "a"], wrong[::-1].copy(), {"bad": wrong[::-1].copy(), "good": right[::-1].copy()}
    )
    batch = _generic_label_batch()
    assert _ua(bridge, batch, test) == 1.0  # scored with the chosen knowledge, in any order
    # a bridge that never chose scores with the default (wrong) knowledge
    assert _ua(Bridge(LABEL_SPACE, top_t=3, sim_threshold=0.5, sim_power=1.0), batch, test) == 0.0
