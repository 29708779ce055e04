"""Sounding-action discovery end to end on real av-mini clips (toy scale)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from harken.data.readers import read_dataset
from harken.encoders.base import get_encoder
from harken.errors import DataError
from harken.experiment import ExperimentConfig, run_experiment
from harken.methods.base import get_method

from .conftest import FAST

#: the tri-modal CSVs here have many one-clip classes (a warning meant for classification)
pytestmark = pytest.mark.filterwarnings("ignore:.*have a single clip")


def _config(csv_path, **kw) -> ExperimentConfig:
    methods = kw.pop("methods", ["cm-acc-style", "clap-style"])
    return ExperimentConfig(
        dataset=str(csv_path),
        protocol="discovery",
        methods=methods,
        method_options={m: dict(FAST) for m in methods},
        seeds=[0],
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def run(avmini_trimodal, tmp_path_factory):
    out = tmp_path_factory.mktemp("disc") / "run"
    return out, run_experiment(_config(avmini_trimodal), out)


def test_scores_are_the_cosines_of_the_trained_embeddings(run, avmini_trimodal):
    out, results = run
    parts = {}
    for row in csv.DictReader(Path(out / "clips.csv").read_text(encoding="utf-8").splitlines()):
        parts.setdefault(row["part"], []).append(row["clip_id"])
    manifest = read_dataset(str(avmini_trimodal))
    by_id = {c.clip_id: c for c in manifest}
    # training and evaluation clips share no recording
    assert not {by_id[i].video_path for i in parts["train"]} & {
        by_id[i].video_path for i in parts["test"]
    }
    # the unlabelled clip is left out of the evaluation and counted
    p = results["protocol"]
    assert p["unlabelled_left_out"] + p["clips"] == len(parts["test"])
    test = [by_id[i] for i in parts["test"] if by_id[i].sounding is not None]
    y = np.array([c.sounding for c in test])
    assert p["positive_rate"] == pytest.approx(y.mean())
    assert results["chance"]["AV"] == {"roc_auc": 0.5, "pr_auc": pytest.approx(y.mean())}

    # recompute cm-acc-style's AV score independently from the stored features
    from harken.methods.base import Batch
    from harken.store.features import FeatureStore

    store = FeatureStore(progress=False)
    enc = {
        n: __import__("harken.encoders.base", fromlist=["x"]).get_encoder(n)
        for n in ("yamnet", "efficientnet-lite0")
    }

    def feats(clips):
        out = {n: store.get_usable(manifest.name, e, clips).embeddings for n, e in enc.items()}
        text = get_encoder("minilm").embed([c.narration for c in clips])
        out["narration"] = text / np.linalg.norm(text, axis=1, keepdims=True)
        return out

    train = [by_id[i] for i in parts["train"]]
    method = get_method("cm-acc-style", **FAST)
    method.fit(Batch(feats(train), [c.label("label") for c in train]), None, None, None, 0)
    emb = method.embed(Batch(feats(test)))
    cos = np.sum(emb["audio"] * emb["video"], axis=1) / (
        np.linalg.norm(emb["audio"], axis=1) * np.linalg.norm(emb["video"], axis=1)
    )
    r = results["methods"]["cm-acc-style"]
    assert r["AV"]["roc_auc"]["mean"] == pytest.approx(roc_auc_score(y, cos))
    assert r["AV"]["pr_auc"]["mean"] == pytest.approx(average_precision_score(y, cos))
    assert "AL" not in r  # no language head
    assert (
        set(results["methods"]["clap-style"]) >= {"AL"}
        and "AV" not in results["methods"]["clap-style"]
    )


def test_curves_figures_tables_and_manifest_are_written(run):
    out, _ = run
    curve = json.loads((out / "curves" / "cm-acc-style-seed0.json").read_text())
    assert set(curve) == {"AV"} and curve["AV"]["roc"]["fpr"][0] == 0.0
    assert (out / "discovery-AV.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "discovery-AL.png").exists()
    md = (out / "results.md").read_text()
    assert "| random | 0.500 |" in md and "| cm-acc-style |" in md
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["protocol"] == "discovery"
    assert set(manifest["encoders"]) == {"yamnet", "efficientnet-lite0"}


def test_scores_csv_holds_every_test_clip_and_gives_the_reported_aucs(run):
    out, results = run
    rows = list(csv.DictReader((out / "scores.csv").read_text(encoding="utf-8").splitlines()))
    assert list(rows[0]) == ["method", "seed", "clip_id", "sounding", "AV", "AL"]
    clips = list(csv.DictReader((out / "clips.csv").read_text(encoding="utf-8").splitlines()))
    test_ids = {c["clip_id"] for c in clips if c["part"] == "test"}
    for name, m in results["methods"].items():
        for run_row in m["runs"]:
            unit = [r for r in rows if (r["method"], r["seed"]) == (name, str(run_row["seed"]))]
            assert len(unit) == results["protocol"]["clips"]
            assert {r["clip_id"] for r in unit} <= test_ids
            y = [int(r["sounding"]) for r in unit]
            assert np.mean(y) == pytest.approx(results["protocol"]["positive_rate"])
            for pair in ("AV", "AL"):
                if pair not in run_row:
                    assert all(r[pair] == "" for r in unit)
                    continue
                s = [float(r[pair]) for r in unit]
                assert roc_auc_score(y, s) == pytest.approx(run_row[pair]["roc_auc"], abs=1e-12)
                assert average_precision_score(y, s) == pytest.approx(
                    run_row[pair]["pr_auc"], abs=1e-12
                )
    assert "per_clip" not in json.dumps(results)  # results.json keeps its schema


def test_a_resumed_run_reuses_finished_units(run, avmini_trimodal, monkeypatch):
    out, results = run
    from harken.methods import mc3

    scores = (out / "scores.csv").read_text(encoding="utf-8")

    def boom(*a, **k):
        raise AssertionError("refitted a finished unit")

    monkeypatch.setattr(mc3.MC3, "fit", boom)
    again = run_experiment(_config(avmini_trimodal), out, mode="resume")
    assert again["methods"]["cm-acc-style"]["AV"] == results["methods"]["cm-acc-style"]["AV"]
    # the per-clip scores come back from the stored units
    assert (out / "scores.csv").read_text(encoding="utf-8") == scores


def test_labels_of_one_kind_only_are_a_clear_error(avmini_trimodal, tmp_path):
    rows = list(csv.DictReader(Path(avmini_trimodal).read_text(encoding="utf-8").splitlines()))
    path = tmp_path / "all-yes.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({**r, "sounding": "yes"})
    with pytest.raises(DataError, match="undefined with one class only"):
        run_experiment(_config(path, methods=["cm-acc-style"]), tmp_path / "run")


def test_a_method_without_embeddings_is_refused_before_any_work(avmini_trimodal, tmp_path):
    from harken.errors import ConfigError

    config = ExperimentConfig(dataset=str(avmini_trimodal), protocol="discovery", methods=["conse"])
    with pytest.raises(ConfigError, match="method 'conse' gives no clip embeddings"):
        run_experiment(config, tmp_path / "run")


def test_a_separate_training_dataset_trains_and_every_clip_is_scored(avmini_trimodal, tmp_path):
    """The paper's setting: train on other narrated clips (no sounding labels needed there),
    evaluate every clip of the dataset."""
    rows = list(csv.DictReader(Path(avmini_trimodal).read_text(encoding="utf-8").splitlines()))
    for name, part in (("train.csv", rows[:12]), ("eval.csv", rows[12:])):
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(
                {**r, "sounding": "" if name == "train.csv" else r["sounding"]} for r in part
            )
    config = _config(
        tmp_path / "eval.csv",
        methods=["cm-acc-style"],
        protocol_options={"train_dataset": str(tmp_path / "train.csv")},
    )
    results = run_experiment(config, tmp_path / "run")
    p = results["protocol"]
    assert p["train_clips"] == 12
    assert p["clips"] + p["unlabelled_left_out"] == 12
    parts = list(csv.DictReader((tmp_path / "run" / "clips.csv").read_text().splitlines()))
    assert sum(r["part"] == "test" for r in parts) == 12


def test_clips_with_neither_narrations_nor_labels_are_refused_before_encoding(
    avmini_trimodal, tmp_path, monkeypatch
):
    rows = list(csv.DictReader(Path(avmini_trimodal).read_text(encoding="utf-8").splitlines()))
    path = tmp_path / "bare.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "narration", "sounding"])
        for i, r in enumerate(rows):
            w.writerow([r["video"], "" if i == 3 else r["narration"], r["sounding"]])
    from harken.store.features import FeatureStore

    def no_encoding(*a, **k):
        raise AssertionError("encoded clips before refusing the dataset")

    monkeypatch.setattr(FeatureStore, "get_usable", no_encoding)
    from harken.errors import ConfigError

    with pytest.raises(ConfigError, match=r"1 clips have no narration .* no label column 'label'"):
        run_experiment(_config(path, methods=["cm-acc-style"]), tmp_path / "run")
