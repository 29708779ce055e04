"""Train / evaluation splits of the SoundingActions protocols."""

from __future__ import annotations

import numpy as np
import pytest

from harken.errors import ConfigError
from harken.protocols.trimodal import _counts, group_split


def test_groups_never_straddle_parts_and_each_class_is_on_every_side():
    groups = [f"g{i // 3}" for i in range(60)]  # 20 recordings of 3 clips
    labels = [f"c{(i // 3) % 4}" for i in range(60)]  # 4 classes, 5 recordings each
    parts = group_split(groups, (0.6, 0.2, 0.2), seed=1, labels=labels)
    assert sum(p.sum() for p in parts) == 60
    assert not np.any(parts[0] & parts[1]) and not np.any(parts[1] & parts[2])
    for a in range(3):
        for b in range(a + 1, 3):
            ga = {g for g, m in zip(groups, parts[a], strict=True) if m}
            gb = {g for g, m in zip(groups, parts[b], strict=True) if m}
            assert not ga & gb
    for part in parts:
        assert {lab for lab, m in zip(labels, part, strict=True) if m} == {"c0", "c1", "c2", "c3"}
    # 5 recordings per class: 3 / 1 / 1
    first = [lab for lab, m in zip(labels, parts[0], strict=True) if m]
    assert first.count("c0") == 9


def test_the_split_is_reproducible_and_moves_with_the_seed():
    groups = [f"g{i}" for i in range(40)]
    a = group_split(groups, (0.5, 0.5), seed=0)
    b = group_split(groups, (0.5, 0.5), seed=0)
    c = group_split(groups, (0.5, 0.5), seed=1)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    assert a[0].sum() == 20


def test_counts_keep_every_part_and_sum_to_n():
    assert _counts(5, (0.6, 0.2, 0.2)) == [3, 1, 1]
    assert _counts(3, (0.9, 0.05, 0.05)) == [1, 1, 1]
    assert _counts(2, (0.5, 0.5)) == [1, 1]
    assert sum(_counts(7, (0.6, 0.2, 0.2))) == 7
    with pytest.raises(ConfigError, match="must sum to 1"):
        group_split(["a"], (0.5, 0.4))


def test_per_clip_rows_are_taken_out_of_units_and_older_units_have_none():
    from harken.protocols.trimodal import PER_CLIP, take_per_clip

    units = {
        "mc3": [{"seed": 0, "AV": 1, PER_CLIP: [["a", 1, 0.5], ["b", 0, 0.1]]}, {"seed": 1}],
        "cmc": [{"seed": 0, PER_CLIP: [["a", 1, 0.2]]}],
    }
    rows = take_per_clip(units)
    assert rows == [("mc3", 0, "a", 1, 0.5), ("mc3", 0, "b", 0, 0.1), ("cmc", 0, "a", 1, 0.2)]
    assert all(PER_CLIP not in r for runs in units.values() for r in runs)
    assert take_per_clip({"yamnet": [{"top1": 0.5, PER_CLIP: [["a"]]}]}) == [("yamnet", "", "a")]
