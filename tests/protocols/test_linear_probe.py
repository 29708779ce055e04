"""The linear probe on frozen Kitchen20 embeddings and trained heads (real clips, small)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from harken.errors import ConfigError
from harken.experiment import ExperimentConfig, run_experiment

CLASSES = ("blender", "chopping", "cutlery", "drawer", "microwave", "water-flowing")


@pytest.fixture(scope="module")
def k20_csv(shared_data, tmp_path_factory):
    """14 clips of 6 Kitchen20 classes, grouped by their Freesound source."""
    out = tmp_path_factory.mktemp("k20") / "k20.csv"
    kept: dict[str, int] = {}
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for r in csv.DictReader(
            Path(shared_data / "kitchen20" / "labels.csv").read_text(encoding="utf-8").splitlines()
        ):
            if r["label"] in CLASSES and kept.get(r["label"], 0) < 14:
                kept[r["label"]] = kept.get(r["label"], 0) + 1
                w.writerow([shared_data / "kitchen20" / r["path"], r["label"], r["source_id"]])
    return out


def _config(path, **kw):
    return ExperimentConfig(
        dataset=str(path),
        protocol="linear-probe",
        protocol_options=kw.pop("protocol_options", {"features": ["yamnet"]}),
        methods=kw.pop("methods", ["mc3"]),
        method_options={"mc3": {"audio": "yamnet", "video": None, "epochs": 3, "lr": 1e-3}},
        seeds=[0],
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def run(k20_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "run"
    return out, run_experiment(_config(k20_csv), out)


def test_probe_rows_for_encoders_and_heads_beside_chance(run, k20_csv):
    out, results = run
    assert list(results["methods"]) == ["yamnet", "mc3 (audio head)"]
    p = results["protocol"]
    assert p["classes"] == 6
    assert sum(p["clips"].values()) == 84
    chance = results["chance"]
    assert chance["mauc"] == 0.5 and chance["map"] == pytest.approx(1 / 6)
    yam = results["methods"]["yamnet"]
    for m in ("top1", "top5", "mca", "map", "mauc"):
        assert 0 <= yam[m]["mean"] <= 1
    # YAMNet's frozen embeddings hold these kitchen sounds far above the training prior
    assert yam["top1"]["mean"] > chance["top1"] + 0.2
    assert yam["mauc"]["mean"] > 0.7
    assert yam["C"][0] in p["grid"]
    md = (out / "results.md").read_text()
    assert "| chance (training prior) |" in md and "| mc3 (audio head) |" in md


def test_the_split_keeps_recordings_apart_and_c_is_chosen_on_validation(run, k20_csv):
    out, results = run
    rows = list(csv.DictReader(Path(out / "clips.csv").read_text(encoding="utf-8").splitlines()))
    source = {
        r["path"]: r["group"]
        for r in csv.DictReader(Path(k20_csv).read_text(encoding="utf-8").splitlines())
    }
    assert {r["part"] for r in rows} == {"test", "train", "val"}
    test_groups = {source[r["clip_id"]] for r in rows if r["part"] == "test"}
    train_groups = {source[r["clip_id"]] for r in rows if r["part"] == "train"}
    assert not test_groups & train_groups
    log = results["methods"]["yamnet"]["runs"][0]["validation"]
    assert [g["C"] for g in log["grid"]] == results["protocol"]["grid"]
    best = max(log["grid"], key=lambda g: g["top1"])["top1"]
    chosen = next(g for g in log["grid"] if g["C"] == log["C"])
    assert chosen["top1"] == best


def test_predictions_csv_gives_the_reported_top1_top5_and_mca(run):
    from harken.metrics.bootstrap import unweighted_accuracy

    out, results = run
    rows = list(csv.DictReader(Path(out / "predictions.csv").read_text().splitlines()))
    assert list(rows[0]) == ["method", "seed", "clip_id", "label", "predicted", "true_rank"]
    clips = list(csv.DictReader(Path(out / "clips.csv").read_text(encoding="utf-8").splitlines()))
    test_ids = sorted(c["clip_id"] for c in clips if c["part"] == "test")
    for name, m in results["methods"].items():
        seeds = [str(r.get("seed", "")) for r in m["runs"]]
        assert seeds == ([""] if m["kind"] == "encoder" else ["0"])
        for seed, run_row in zip(seeds, m["runs"], strict=True):
            unit = [r for r in rows if (r["method"], r["seed"]) == (name, seed)]
            assert sorted(r["clip_id"] for r in unit) == test_ids
            hit = [r["label"] == r["predicted"] for r in unit]
            assert np.mean(hit) == pytest.approx(run_row["top1"])
            assert all((r["true_rank"] == "1") == h for r, h in zip(unit, hit, strict=True))
            rank = np.array([int(r["true_rank"]) for r in unit])
            assert np.mean(rank <= 5) == pytest.approx(run_row["top5"])
            codes = {c: i for i, c in enumerate(sorted({r["label"] for r in rows}))}
            y = np.array([[codes[r["label"]] for r in unit]])
            p = np.array([[codes.get(r["predicted"], -1) for r in unit]])
            assert unweighted_accuracy(y, p)[0] == pytest.approx(run_row["mca"])


def test_probe_options_are_checked(k20_csv, tmp_path):
    with pytest.raises(ConfigError, match=r"grid must be a non-empty list of C > 0"):
        _config(k20_csv, protocol_options={"grid": [0.0]}).validate()
    with pytest.raises(ConfigError, match="method 'linear' gives no clip embeddings"):
        run_experiment(_config(k20_csv, methods=["linear"]), tmp_path / "r")


def test_mc3_is_also_a_zero_shot_method_in_the_kfold_protocol(k20_csv, tmp_path):
    config = ExperimentConfig(
        dataset=str(k20_csv),
        protocol="kfold",
        protocol_options={"folds": 2, "n_test": 2, "n_dev": 1},
        methods=["clap-style"],
        method_options={"clap-style": {"audio": "yamnet", "video": None, "epochs": 3}},
        seeds=[0],
        progress=False,
    )
    results = run_experiment(config, tmp_path / "kfold")
    r = results["methods"]["clap-style"]
    assert len(r["folds"]) == 2 and 0 <= r["UA"]["mean"] <= 1
    manifest = json.loads((tmp_path / "kfold" / "manifest.json").read_text())
    assert manifest["methods"]["clap-style"]["config"]["variant"] == "clap-style"
    assert np.isfinite(r["UA"]["mean"])


def test_retrieval_with_class_texts_ranks_each_class_text_once(k20_csv, tmp_path):
    config = ExperimentConfig(
        dataset=str(k20_csv),
        protocol="retrieval",
        protocol_options={"min_group": 3},
        methods=["clap-style"],
        method_options={"clap-style": {"audio": "yamnet", "video": None, "epochs": 3}},
        seeds=[0],
        progress=False,
    )
    results = run_experiment(config, tmp_path / "retr")
    assert results["protocol"]["text"] == "class knowledge"
    run = results["methods"]["clap-style"]["runs"][0]["directions"]
    assert run["audio_to_text"]["n_items"] == 6  # the six class texts, once each
    assert run["text_to_audio"]["n_queries"] == 6
    assert run["audio_to_text"]["n_queries"] == results["protocol"]["queries"]
    assert results["chance"]["to_text"]["R@1"] == pytest.approx(1 / 6)
    assert results["chance"]["to_text"]["R@5"] == pytest.approx(5 / 6)
    # a class text is one query, named by its class
    from harken.protocols.retrieval import random_recall_curve

    ranks = list(csv.DictReader((tmp_path / "retr" / "ranks.csv").read_text().splitlines()))
    to_text = [r for r in ranks if r["direction"] == "audio_to_text"]
    from_text = [r for r in ranks if r["direction"] == "text_to_audio"]
    assert sorted(r["query_id"] for r in from_text) == sorted(CLASSES)
    assert {r["items"] for r in to_text} == {"6"} and {r["relevant"] for r in to_text} == {"1"}
    curve = random_recall_curve([1] * len(to_text), [6] * len(to_text), [1, 5])
    assert curve == pytest.approx([1 / 6, 5 / 6])


def test_the_probe_needs_the_target_labels(k20_csv, tmp_path):
    config = _config(k20_csv, target="verb")
    with pytest.raises(ConfigError, match="no label column 'verb'"):
        run_experiment(config, tmp_path / "r")
