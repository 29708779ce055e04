from collections import Counter

import numpy as np
import pytest

from harken.errors import DataError
from harken.metrics.retrieval import cross_modal_retrieval, six_directions, split_pools


def _angle(deg: float, scale: float = 1.0) -> list[float]:
    return [scale * np.cos(np.radians(deg)), scale * np.sin(np.radians(deg))]


def test_ranks_by_cosine_and_group():
    # Items at 0°, 30°, 60°, 90° in groups a, b, a, c.
    items = np.array([_angle(0), _angle(30), _angle(60), _angle(90)])
    groups = ["a", "b", "a", "c"]
    # Query 1 (group b) at 80°, scaled by 5: cosine order 90°, 60°, 30°, 0° → rank 3.
    # Query 2 (group c) at 10°: order 0°, 30°, 60°, 90° → rank 4.
    # Query 0 (group a) at 5°: nearest is 0° (group a) → rank 1.
    queries = np.array([_angle(5), _angle(80, 5.0), _angle(10, 0.1)])
    r = cross_modal_retrieval(queries, items, ["a", "b", "c"], groups, ks=(1, 3))
    assert r["R@1"] == pytest.approx(1 / 3)
    assert r["R@3"] == pytest.approx(2 / 3)
    assert r["mean_rank"] == pytest.approx((1 + 3 + 4) / 3)
    assert r["median_rank"] == 3.0
    # mAP@10: query a has relevant items at ranks 1 and 3 → (1 + 2/3)/2; b: 1/3; c: 1/4.
    assert r["mAP@10"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3 + 1 / 4) / 3)
    assert (r["n_queries"], r["n_items"], r["n_queries_without_relevant"]) == (3, 4, 0)


def test_cosine_not_dot_product():
    # A long item vector of the wrong group must not win by its norm.
    items = np.array([_angle(0), _angle(45, 100.0)])
    r = cross_modal_retrieval(np.array([_angle(10)]), items, ["x"], ["x", "y"], ks=(1,))
    assert r["R@1"] == 1.0


def test_queries_without_relevant_items_are_dropped_and_counted():
    items = np.array([_angle(0), _angle(90)])
    queries = np.array([_angle(0), _angle(90), _angle(45)])
    r = cross_modal_retrieval(queries, items, ["a", "b", "zzz"], ["a", "b"], ks=(1,))
    assert r["n_queries_without_relevant"] == 1 and r["n_queries"] == 2
    assert r["R@1"] == 1.0
    with pytest.raises(DataError, match="none of the 1 queries"):
        cross_modal_retrieval(queries[:1], items, ["zzz"], ["a", "b"])


def test_bad_rows_are_refused():
    with pytest.raises(DataError, match="item_emb row 1"):
        cross_modal_retrieval([[1.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]], ["a"], ["a", "b"])
    with pytest.raises(DataError, match="dim"):
        cross_modal_retrieval([[1.0, 0.0]], [[1.0, 0.0, 0.0]], ["a"], ["a"])
    with pytest.raises(DataError, match="one group per row"):
        cross_modal_retrieval([[1.0, 0.0]], [[1.0, 0.0]], ["a"], ["a", "b"])


def test_six_directions_use_the_right_pools_and_modalities():
    groups = ["a", "a", "b", "b"]
    q, i = np.array([0, 2]), np.array([1, 3])
    audio = np.array([_angle(0), _angle(5), _angle(90), _angle(85)])
    # Video rows are audio rows of the other group: video→audio and audio→video both miss.
    video = audio[[2, 3, 0, 1]]
    text = audio.copy()
    out = six_directions({"text": text, "audio": audio, "video": video}, groups, q, i, ks=(1,))
    assert list(out) == [
        "audio_to_video",
        "audio_to_text",
        "video_to_audio",
        "video_to_text",
        "text_to_audio",
        "text_to_video",
    ]
    assert out["audio_to_text"]["R@1"] == 1.0
    assert out["text_to_audio"]["R@1"] == 1.0
    assert out["video_to_audio"]["R@1"] == 0.0
    assert out["audio_to_video"]["R@1"] == 0.0
    assert all(r["n_queries"] == 2 and r["n_items"] == 2 for r in out.values())
    with pytest.raises(DataError, match="two modalities"):
        six_directions({"audio": audio}, groups, q, i)
    with pytest.raises(DataError, match="instance i"):
        six_directions({"audio": audio, "video": video[:3]}, groups, q, i)


def test_split_pools_halves_each_group_and_drops_small_ones():
    groups = ["a"] * 5 + ["b"] * 2 + ["c"] * 4 + ["d"] * 3 + ["e"]
    q, i = split_pools(groups, seed=0)
    assert set(q).isdisjoint(i)
    assert np.all(np.diff(q) > 0) and np.all(np.diff(i) > 0)
    qc, ic = Counter(groups[k] for k in q), Counter(groups[k] for k in i)
    assert qc == {"a": 3, "c": 2, "d": 2}  # ⌈n/2⌉, groups b (2) and e (1) dropped
    assert ic == {"a": 2, "c": 2, "d": 1}
    # Every query has at least one relevant item.
    assert all(ic[groups[k]] >= 1 for k in q)


def test_split_pools_is_deterministic_and_seeded():
    groups = [g for g in "abcdefgh" for _ in range(10)]
    a = split_pools(groups, seed=3)
    b = split_pools(groups, seed=3)
    c = split_pools(groups, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert len(a[0]) == len(a[1]) == 40


def test_split_pools_keep_mask_counts_kept_instances_only():
    groups = ["a"] * 4 + ["b"] * 4
    keep = [True, True, False, False, True, True, True, False]
    q, i = split_pools(groups, keep=keep)
    assert set(q) | set(i) == {4, 5, 6}  # group a has 2 kept instances: dropped
    with pytest.raises(DataError, match="no group"):
        split_pools(["a", "a", "b"])
