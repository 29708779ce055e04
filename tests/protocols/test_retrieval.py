"""Sounding-action retrieval end to end: instance retrieval on av-mini (six directions) and
group retrieval by class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harken.errors import ConfigError, DataError
from harken.experiment import ExperimentConfig, run_experiment

from .conftest import FAST

#: the tri-modal CSVs here have many one-clip classes (a warning meant for classification)
pytestmark = pytest.mark.filterwarnings("ignore:.*have a single clip")


def _config(csv_path, **kw) -> ExperimentConfig:
    methods = kw.pop("methods", ["mc3", "cm-acc-style"])
    return ExperimentConfig(
        dataset=str(csv_path),
        protocol="retrieval",
        methods=methods,
        method_options={m: dict(FAST) for m in methods},
        seeds=[0, 1],
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def instance_run(avmini_trimodal, tmp_path_factory):
    out = tmp_path_factory.mktemp("retr") / "run"
    config = _config(avmini_trimodal, protocol_options={"group_by": "clip", "sounding_only": False})
    return out, run_experiment(config, out)


def test_instance_retrieval_covers_every_direction_a_model_has(instance_run):
    out, results = instance_run
    mc3 = results["methods"]["mc3"]["directions"]
    assert sorted(mc3) == [
        "audio_to_text",
        "audio_to_video",
        "text_to_audio",
        "text_to_video",
        "video_to_audio",
        "video_to_text",
    ]
    assert sorted(results["methods"]["cm-acc-style"]["directions"]) == [
        "audio_to_video",
        "video_to_audio",
    ]
    p = results["protocol"]
    assert p["queries"] == p["items"] == p["groups"]  # one clip per recording here
    n = p["items"]
    # random R@1 with one relevant item among n
    assert results["chance"]["any"]["R@1"] == pytest.approx(1 / n)
    for d in mc3.values():
        assert 0 <= d["R@1"]["mean"] <= d["R@5"]["mean"] <= d["R@10"]["mean"] <= 1
        assert 1 <= d["median_rank"]["mean"] <= n
        assert len(results["methods"]["mc3"]["runs"]) == 2  # two seeds
    md = (out / "results.md").read_text()
    assert "| mc3 | video to audio |" in md


def test_ranks_csv_gives_every_reported_metric_and_the_random_baseline(instance_run):
    """R@k, mAP@10 and the median rank recomputed from each query's stored rank and AP@10."""
    import csv

    from harken.protocols.retrieval import random_recall_curve

    out, results = instance_run
    rows = list(csv.DictReader((out / "ranks.csv").read_text(encoding="utf-8").splitlines()))
    for name, m in results["methods"].items():
        for run_row in m["runs"]:
            for direction, want in run_row["directions"].items():
                unit = [
                    r
                    for r in rows
                    if (r["method"], r["seed"], r["direction"])
                    == (name, str(run_row["seed"]), direction)
                ]
                assert len(unit) == want["n_queries"]
                assert {int(r["items"]) for r in unit} == {want["n_items"]}
                rank = np.array([int(r["rank"]) for r in unit])
                for k in (1, 5, 10):
                    assert np.mean(rank <= k) == pytest.approx(want[f"R@{k}"])
                assert np.median(rank) == pytest.approx(want["median_rank"])
                ap = [float(r["ap@10"]) for r in unit]
                assert np.mean(ap) == pytest.approx(want["mAP@10"])
    first = [
        r
        for r in rows
        if (r["method"], r["seed"], r["direction"]) == ("mc3", "0", rows[0]["direction"])
    ]
    curve = random_recall_curve(
        [int(r["relevant"]) for r in first], [int(r["items"]) for r in first], [1, 5, 10, 10_000]
    )
    chance = results["chance"]["any"]
    assert curve == pytest.approx([chance["R@1"], chance["R@5"], chance["R@10"], 1.0])


def test_group_retrieval_keeps_groups_of_three_and_splits_them_into_pools(
    avmini_trimodal, tmp_path
):
    import csv

    rows = list(csv.DictReader(Path(avmini_trimodal).read_text(encoding="utf-8").splitlines()))
    path = tmp_path / "grouped.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*rows[0], "kind"])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "sounding": "yes", "kind": f"k{i % 3}" if i < 18 else f"solo{i}"})
    config = _config(
        path,
        methods=["cm-acc-style"],
        protocol_options={"group_by": "kind", "train_fraction": 0.25},
    )
    results = run_experiment(config, tmp_path / "run")
    p = results["protocol"]
    assert p["groups"] >= 1 and p["queries"] >= p["items"] >= 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["protocol_options"]["group_by"] == "kind"
    with pytest.raises(DataError, match="no action group"):
        run_experiment(
            _config(path, methods=["cm-acc-style"], protocol_options={"min_group": 30}),
            tmp_path / "run2",
        )
    with pytest.raises(ConfigError, match="no label column 'nope'"):
        run_experiment(
            _config(path, methods=["cm-acc-style"], protocol_options={"group_by": "nope"}),
            tmp_path / "run3",
        )


def test_results_are_reproducible(instance_run, avmini_trimodal, tmp_path):
    _, results = instance_run
    config = _config(avmini_trimodal, protocol_options={"group_by": "clip", "sounding_only": False})
    again = run_experiment(config, tmp_path / "again")
    a = results["methods"]["mc3"]["directions"]["video_to_audio"]["R@5"]["mean"]
    b = again["methods"]["mc3"]["directions"]["video_to_audio"]["R@5"]["mean"]
    assert np.isclose(a, b)
