"""The two-stage GZSL protocol: nothing is chosen on test clips; a real Kitchen20 run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import harken.protocols.gzsl as gz
from harken.experiment import ExperimentConfig, run_experiment
from harken.knowledge.classes import read_descriptions
from harken.knowledge.written import SHIPPED
from harken.methods.base import Batch, Classes, Method, get_method
from harken.protocols.gzsl_splits import STAGES, GzslSplit


class Spy(Method):
    """A scorer that logs every clip it is shown (fit or score) and its fit/replay calls."""

    name = "spy"
    trainable = True
    features = ("feat",)
    calls: list = []  # noqa: RUF012 (shared log across instances)

    def fit(self, train, train_classes, dev, dev_classes, seed=0):
        Spy.calls.append(("fit", id(self), list(train.clip_ids), dev and list(dev.clip_ids)))
        if dev is not None:
            self.dev_score(self.score(dev, dev_classes), dev.labels, dev_classes.names)
        return {"best_epoch": 1, "lr_drops": []}

    def replay(self, log):
        Spy.calls.append(("replay", id(self), log))

    def score(self, batch, classes):
        Spy.calls.append(("score", id(self), list(batch.clip_ids)))
        # clip features: one-hot-ish class signal in the first C columns
        return batch.features["feat"][:, : len(classes.names)] @ np.eye(len(classes.names))


def _toy():
    names = ["a", "b", "c", "d"]
    per = {  # stage → (class, n clips)
        "stage_1_train": [("a", 4), ("b", 4)],
        "stage_1_val_seen": [("a", 2), ("b", 2)],
        "stage_1_val_unseen": [("c", 4)],
        "stage_2_test_seen": [("a", 2), ("b", 2), ("c", 2)],
        "stage_2_test_unseen": [("d", 4)],
    }
    ids, labels, clips, rows = [], [], {}, []
    # Spy scores are the first C feature columns: the clip's own class scores 1 and the
    # stage's seen classes get a bias — 1.5 on validation (γ just above 0.5 fixes it),
    # 3.0 on test (γ would have to exceed 2)
    bias = {"stage_1_val_seen": (0, 1), "stage_1_val_unseen": (0, 1)}
    bias |= {"stage_2_test_seen": (0, 1, 2), "stage_2_test_unseen": (0, 1, 2)}
    size = {"stage_1_val_seen": 1.5, "stage_1_val_unseen": 1.5}
    size |= {"stage_2_test_seen": 3.0, "stage_2_test_unseen": 3.0}
    for stage, parts in per.items():
        clips[stage] = []
        for c, n in parts:
            for i in range(n):
                cid = f"{stage}-{c}-{i}"
                ids.append(cid)
                labels.append(c)
                clips[stage].append(cid)
                row = np.eye(4, dtype=np.float32)[names.index(c)]
                row[list(bias.get(stage, ()))] += size.get(stage, 0.0)
                rows.append(row)
    clips["stage_2_train"] = (
        clips["stage_1_train"] + clips["stage_1_val_seen"] + clips["stage_1_val_unseen"]
    )
    feat = np.stack(rows)
    classes = {
        "stage_1_train": ("a", "b"),
        "stage_1_val_seen": ("a", "b"),
        "stage_1_val_unseen": ("c",),
        "stage_2_train": ("a", "b", "c"),
        "stage_2_test_seen": ("a", "b", "c"),
        "stage_2_test_unseen": ("d",),
    }
    split = GzslSplit("toy", {s: tuple(clips[s]) for s in STAGES}, classes)
    data = Batch({"feat": feat}, labels, ids)
    return data, Classes(names, np.eye(4, dtype=np.float32)), split


def test_stage_one_never_sees_a_test_clip_and_stage_two_replays_it(monkeypatch):
    data, classes, split = _toy()
    test_ids = set(split.clips["stage_2_test_seen"]) | set(split.clips["stage_2_test_unseen"])
    calibrated = []
    real = gz.select_calibration

    def spy_calibration(scores, labels, names, seen, grid):
        calibrated.append((len(labels), tuple(names), tuple(seen)))
        return real(scores, labels, names, seen, grid)

    monkeypatch.setattr(gz, "select_calibration", spy_calibration)
    Spy.calls = []
    row = gz.run_split(Spy, data, classes, split, None, seed=0)
    first = Spy.calls[0][1]
    stage_1 = [c for c in Spy.calls if c[1] == first]
    seen_by_stage_1 = {
        cid for c in stage_1 for part in c[2:] if isinstance(part, list) for cid in part
    }
    assert seen_by_stage_1 and not seen_by_stage_1 & test_ids
    # every calibration search ran on the 8 validation clips with the stage-1 classes
    n_val = len(split.clips["stage_1_val_seen"]) + len(split.clips["stage_1_val_unseen"])
    assert calibrated and all(c == (n_val, ("a", "b", "c"), ("a", "b")) for c in calibrated)
    # stage 2 is a fresh method: it replays stage 1's log and trains without dev clips
    second = [c for c in Spy.calls if c[1] != first]
    assert second[0] == ("replay", second[0][1], {"best_epoch": 1, "lr_drops": []})
    assert second[1][0] == "fit" and second[1][3] is None
    assert sorted(second[1][2]) == sorted(split.clips["stage_2_train"])
    assert second[-1][0] == "score" and set(second[-1][2]) == test_ids
    # the γ reported is the one validation chose (just above the validation bias of 1.5 − 1),
    # not the one the test clips would want (above 3 − 1), and it is what scored the test
    test = data.subset(np.isin(data.clip_ids, sorted(test_ids)))
    assert row["calibration"]["value"] == pytest.approx(0.533333)
    test_best, _ = real(Spy().score(test, classes), test.labels, classes.names, ["a", "b", "c"])
    assert test_best > 2.0
    assert row["U"] == 0.0 and row["HM"] == 0.0 and row["validation"]["HM"] == 1.0
    assert row["calibration"]["chosen_on"].startswith("stage_1_val_seen")


def test_validation_hm_criterion_is_the_best_calibrated_hm():
    # seen a, b; unseen c. Per γ (subtracted from seen-class scores):
    #   γ = 0:   a ✓, b ✓, c ✗, c ✗ → seen recall 1,   unseen 0 → HM 0
    #   γ = 0.5: a ✓, b ✗, c ✓, c ✓ → seen recall 0.5, unseen 1 → HM 2/3
    #   γ = 1:   a ✗, b ✗, c ✓, c ✓ → seen recall 0,   unseen 1 → HM 0
    scores = np.array(
        [
            [2.0, 0.0, 1.2],  # a
            [0.0, 1.0, 0.8],  # b
            [1.0, 0.0, 0.7],  # c
            [0.2, 0.0, 0.1],  # c
        ]
    )
    labels, names = ["a", "b", "c", "c"], ["a", "b", "c"]
    assert gz.ValidationHM(["a", "b"], (0.0, 0.5, 1.0))(scores, labels, names) == pytest.approx(
        2 / 3
    )  # the best HM over the grid, not accuracy (3/4 at γ = 0.5) nor the first γ's HM
    assert gz.ValidationHM(["a", "b"], (0.0, 1.0))(scores, labels, names) == 0.0
    # with c the seen class and a, b unseen the same scores give another criterion
    assert gz.ValidationHM(["c"], (0.0,))(scores, labels, names) == 0.0


def test_calibration_grid_precedence():
    assert gz.calibration_grid(get_method("linear"), None) == gz.DEFAULT_GRID
    assert gz.calibration_grid(get_method("conse"), None)[1] == pytest.approx(0.005)
    assert gz.calibration_grid(get_method("conse"), (0.0, 2.0)) == (0.0, 2.0)
    assert gz._grid("0:5:76") == gz.DEFAULT_GRID


@pytest.fixture(scope="module")
def kitchen20_csv(shared_data, tmp_path_factory):
    """12 Kitchen20 classes × 10 real clips, taken round-robin over their Freesound sources
    (so every class has several recording groups to hold out), with the source as group."""
    import csv

    with open(shared_data / "kitchen20" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["label"] for r in rows})[:12]
    out = tmp_path_factory.mktemp("k20") / "clips.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for c in classes:
            by_source: dict[str, list] = {}
            for r in rows:
                if r["label"] == c:
                    by_source.setdefault(r["source_id"], []).append(r)
            picked, queues = [], list(by_source.values())
            while len(picked) < 10 and any(queues):
                for q in queues:
                    if q and len(picked) < 10:
                        picked.append(q.pop(0))
            for r in picked:
                w.writerow([shared_data / "kitchen20" / r["path"], c, r["source_id"]])
    return out


@pytest.fixture(scope="module")
def kitchen20_run(kitchen20_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("gzsl")
    audio = {"audio": ["yamnet"], "modality": "audio", "epochs": 3}
    config = ExperimentConfig(
        dataset=str(kitchen20_csv),
        protocol="gzsl",
        protocol_options={"gzsl_splits": 1, "n_val_unseen": 3, "n_test_unseen": 3},
        methods=["bridge", "fusion", "sje", "clipclap", "kda"],
        generator=["template:harken", "descriptions:kitchen20"],
        views={
            "clap": {"generator": "template:clipclap-vggsound-audio"},
            "kda": {"generator": "descriptions:kitchen20"},
        },
        method_options={
            "sje": {"features": ["yamnet"], "epochs": 3},
            "fusion": {"features": ["yamnet"]},
            "clipclap": audio,
            "kda": {**audio, "knowledge": "kda"},
        },
        seeds=[0],
        progress=False,
    )
    return run_experiment(config, out), out


@pytest.mark.slow
def test_kitchen20_end_to_end(kitchen20_run):
    results, out = kitchen20_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    for name in ("bridge", "fusion", "sje", "clipclap", "kda"):
        r = results["methods"][name]
        for m in ("S", "U", "HM", "ZSL"):
            assert set(r[m]) == {"mean", "std"} and 0.0 <= r[m]["mean"] <= 1.0
        assert r["HM"]["mean"] == pytest.approx(
            2 * r["S"]["mean"] * r["U"]["mean"] / (r["S"]["mean"] + r["U"]["mean"])
        )
        assert r["calibration"]["chosen_on"].startswith("stage_1_val_seen")
        assert isinstance(r["calibration"]["value"], float)
    assert results["chance"]["HM"] == pytest.approx(1 / 12)
    assert results["chance"]["ZSL"] == pytest.approx(1 / 3)
    assert results["methods"]["clipclap"]["runs"][0]["stage_1"]["text"] == "clap"
    assert results["methods"]["kda"]["runs"][0]["stage_1"]["knowledge"] == "kda"
    # stage 2 replays stage 1's epoch count
    for name in ("sje", "clipclap", "kda"):
        run = results["methods"][name]["runs"][0]
        assert run["stage_2"]["best_epoch"] == run["stage_1"]["best_epoch"]
    for f in ("results.md", "manifest.json", "predictions.csv", "splits/gzsl0.json"):
        assert (out / f).exists(), f
    assert "| fusion |" in (out / "results.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["knowledge"]["views"]) == {"clap", "kda"}
    assert set(manifest["features"]) == {"yamnet"} and manifest["features"]["yamnet"]["store"]
    assert set(manifest["methods"]) == set(results["methods"])
    # each knowledge source's texts, as used, for reports that compare the sources
    with open(out / "descriptions-by-source.csv", encoding="utf-8") as f:
        by_source = list(csv.DictReader(f))
    assert {r["source"] for r in by_source} == {"template:harken", "descriptions:kitchen20"}
    written = {(r["class"], r["text"]) for r in by_source if r["source"].startswith("desc")}
    classes = {r["class"] for r in by_source}
    shipped = read_descriptions(SHIPPED["kitchen20"])
    want = {(c, t) for c, ts in shipped.items() for t in ts if c in classes}
    assert written == want


@pytest.mark.parametrize("release", ["clipclap", "avca"])
def test_published_release_runs_in_one_call(tmp_path, release):
    from harken.cli import main
    from harken.data.readers.avgzsl import write_synthetic_features

    root = write_synthetic_features(tmp_path / "rel", "UCF", "cls_split", release, n_per_class=4)
    assert root.exists()
    out = tmp_path / "out"
    code = main(
        [
            "gzsl-features",
            str(tmp_path / "rel"),
            "--dataset",
            "UCF",
            "--methods",
            "ale,sje",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"ale", "sje"}
    split = results["protocol"]["classes"][0]
    assert split["seen_2"] == split["seen_1"] + split["unseen_1"]
    views = results["encoders"]["text"]
    assert views == (["clap", "clip"] if release == "clipclap" else ["w2v"])
    for r in results["methods"].values():
        assert r["calibration"]["chosen_on"].startswith("stage_1_val_seen")
    assert (out / "manifest.json").exists() and (out / "predictions.csv").exists()


def test_published_features_keep_rows_aligned(tmp_path):
    from harken.data.readers.avgzsl import load_published_features, write_synthetic_features

    write_synthetic_features(tmp_path, "UCF", "cls_split", "clipclap", n_per_class=3)
    features = load_published_features(tmp_path, "UCF", "cls_split")
    data, classes, split = gz.published_data(features)
    # column 0 of each synthetic vector is the class's index in all_class.txt: rows of one
    # class share it, in clips and in the class-embedding views alike
    index = {y: v for y, v in zip(data.labels, data.features["audio"][:, 0], strict=True)}
    for y, v in zip(data.labels, data.features["audio"][:, 0], strict=True):
        assert index[y] == v
    for view in ("clip", "clap"):
        emb = classes.view(view)
        for i, name in enumerate(classes.names):
            assert emb[i, 0] == index.get(name, emb[i, 0])
    assert not set(split.unseen_2) & set(split.seen_2)


def test_published_features_refuse_tagger_methods(tmp_path):
    from harken.data.readers.avgzsl import write_synthetic_features
    from harken.errors import ConfigError

    write_synthetic_features(tmp_path, "UCF", "cls_split", "avca", n_per_class=2)
    with pytest.raises(ConfigError, match="label space"):
        gz.run_published(tmp_path, "UCF", tmp_path / "o", methods=["bridge"])


def test_demo_has_a_gzsl_task_and_rejects_unknown_ones():
    from harken import api
    from harken.errors import ConfigError

    configs = api.demo_configs("/nowhere")
    gzsl = configs["gzsl"]
    assert gzsl.protocol == "gzsl" and {"clipclap", "kda", "fusion"} <= set(gzsl.methods)
    assert {"clip", "clap", "kda"} == set(gzsl.views)
    with pytest.raises(ConfigError, match="demo task"):
        api.demo("/nowhere", task="bogus")
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--jobs must be a positive integer"):
            api.demo("/nowhere", jobs=jobs)
