"""End to end on real Kitchen20 audio through the CLI: run (generic CSV), predict, embed, errors."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from harken import cli
from harken.api import _check_labels
from harken.cli import main, parse_labels_option, read_labels_file
from harken.errors import ConfigError, DataError

CLASSES = [
    "blender",
    "chopping",
    "cutlery",
    "eat",
    "frying-pan",
    "microwave",
    "plates",
    "water-flowing",
]


@pytest.fixture(scope="module")
def small_csv(shared_data, tmp_path_factory) -> Path:
    """A generic-CSV dataset of 8 Kitchen20 classes × 6 real clips (absolute paths)."""
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    folder = tmp_path_factory.mktemp("small")
    out = folder / "clips.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for c in CLASSES:
            for r in [r for r in rows if r["label"] == c][:6]:
                w.writerow([shared_data / "kitchen20" / r["path"], c, r["source_id"]])
    return out


@pytest.fixture(scope="module")
def run_dir(small_csv, tmp_path_factory) -> Path:
    config = small_csv.parent / "exp.toml"
    config.write_text(f"""
[data]
dataset = "{small_csv}"
[protocol]
folds = 2
n_test = 3
n_dev = 2
[methods]
names = ["linear", "conse", "bridge", "zeroshot", "contrastive"]
seeds = [0, 1]
[methods.linear]
features = ["yamnet"]
epochs = 4
[methods.contrastive]
features = ["yamnet"]
epochs = 4
""")
    out = tmp_path_factory.mktemp("run") / "exp"
    assert main(["run", str(config), "--out", str(out)]) == 0
    return out


def test_run_writes_a_complete_run_folder(run_dir):
    for name in (
        "results.json",
        "results.md",
        "manifest.json",
        "predictions.csv",
        "descriptions.csv",
        "splits/fold0.json",
        "splits/fold1.json",
    ):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["methods"]) == {"linear", "conse", "bridge", "zeroshot", "contrastive"}
    assert results["chance"]["UA"] == pytest.approx(1 / 3)
    linear = results["methods"]["linear"]
    assert len(linear["folds"]) == 2 * 2  # folds × seeds
    assert len(results["methods"]["conse"]["folds"]) == 2  # training-free: once per fold
    for r in linear["folds"]:
        assert set(r) >= {"fold", "seed", "test_classes", "UA", "WA", "UP"}
        assert 0.0 <= r["UA"] <= 1.0
    ua = [r["UA"] for r in linear["folds"]]
    assert linear["UA"]["mean"] == pytest.approx(np.mean(ua))
    assert linear["UA"]["std"] == pytest.approx(np.std(ua))


def test_every_method_gets_retrieval_metrics_on_its_test_clips(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    for name, r in results["methods"].items():
        for direction in ("text_to_audio", "audio_to_text"):
            fold_r1 = [f["retrieval"][direction]["R@1"] for f in r["folds"]]
            assert r["retrieval"][direction]["R@1"]["mean"] == pytest.approx(np.mean(fold_r1))
            for f in r["folds"]:
                m = f["retrieval"][direction]
                assert 0 <= m["mAP@10"] <= 1 and m["R@1"] <= m["R@5"] <= m["R@10"], name
                assert m["median_rank"] >= 1 and m["mean_rank"] >= 1
        # 3 test classes: every clip's own class is within the top 3 texts
        assert all(f["retrieval"]["audio_to_text"]["R@5"] == 1.0 for f in r["folds"])
    # the default zero-shot space is the bridge at its a-priori settings
    assert results["methods"]["zeroshot"]["config"]["space"] == "bridge"
    assert "| zeroshot | text to audio |" in (run_dir / "results.md").read_text()


def test_splits_are_class_disjoint_and_test_only_scored(run_dir):
    tested = []
    for k in (0, 1):
        split = json.loads((run_dir / f"splits/fold{k}.json").read_text())
        assert not set(split["train"]) & set(split["test"])
        assert not set(split["dev"]) & set(split["test"])
        assert not set(split["train"]) & set(split["dev"])
        tested += split["test"]
    assert len(tested) == len(set(tested))
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "fold", "seed", "clip_id", "label", "predicted"]
    for r in rows:
        split = json.loads((run_dir / f"splits/fold{r['fold']}.json").read_text())
        assert r["label"] in split["test"] and r["predicted"] in split["test"]


def test_manifest_records_provenance(run_dir):
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["config"]["methods"] == ["linear", "conse", "bridge", "zeroshot", "contrastive"]
    assert m["packages"]["torch"].startswith("2.13.0")
    assert m["encoders"]["yamnet"]["policy"]["min_seconds"] > 0
    assert len(m["features"]["yamnet"]["sha256"]) == 16
    assert m["knowledge"]["generator"]["generator"] == "template"
    assert "git_commit" in m and m["timings_s"]["total"] > 0
    assert all(s["selected_on"] for s in m["selection"]["bridge"])


def test_descriptions_exported(run_dir):
    with open(run_dir / "descriptions.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["class"] for r in rows} == set(CLASSES)
    assert all(r["text"] for r in rows)


def test_predict_json_ranks_real_clips(shared_data, capsys):
    clips = [
        shared_data / "kitchen20/audio/blender/0-158737-A-0.flac",
        sorted((shared_data / "kitchen20/audio/water-flowing").glob("*.flac"))[0],
    ]
    code = main(["predict", *map(str, clips), "--labels", "blender,water flowing,sweep", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in out] == [str(c) for c in clips]
    for item in out:
        scores = [r["score"] for r in item["ranking"]]
        assert scores == sorted(scores, reverse=True)
        assert {r["label"] for r in item["ranking"]} == {"blender", "water flowing", "sweep"}
    assert out[0]["ranking"][0]["label"] == "blender"
    assert out[1]["ranking"][0]["label"] == "water flowing"


def test_predict_with_a_run_folder(run_dir, shared_data, capsys):
    clip = shared_data / "kitchen20/audio/blender/0-158737-A-0.flac"
    assert (
        main(["predict", str(clip), "--labels", "blender,sweep", "--model", str(run_dir), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out[0]["ranking"][0]["label"] == "blender"


def test_embed_writes_rows_in_input_order(shared_data, tmp_path):
    clips = sorted((shared_data / "kitchen20/audio/chopping").glob("*.flac"))[:3]
    out = tmp_path / "emb.npy"
    assert main(["embed", *map(str, clips), "--encoder", "yamnet", "--out", str(out)]) == 0
    emb = np.load(out)
    assert emb.dtype == np.float32 and emb.shape == (3, 521)
    rev = tmp_path / "rev.npy"
    assert main(["embed", *map(str, clips[::-1]), "--encoder", "yamnet", "--out", str(rev)]) == 0
    np.testing.assert_array_equal(np.load(rev)[::-1], emb)


def test_embed_writes_a_sidecar_with_the_encoder_config(shared_data, tmp_path, capsys):
    from harken import __version__
    from harken.encoders.base import get_encoder

    clips = sorted((shared_data / "kitchen20/audio/chopping").glob("*.flac"))[:2]
    missing = tmp_path / "gone.wav"
    out = tmp_path / "emb.npy"
    argv = ["embed", str(clips[0]), str(missing), str(clips[1]), "--out", str(out)]
    assert main(argv) == 0
    assert "encoder config and rows: " + str(tmp_path / "emb.json") in capsys.readouterr().out
    record = json.loads((tmp_path / "emb.json").read_text())
    assert record == {
        "encoder": "yamnet",
        "encoder_config": json.loads(json.dumps(get_encoder("yamnet").config(), default=str)),
        "dim": 521,
        "rows": 2,
        "files": [str(c) for c in clips],
        "skipped": [{"file": str(missing), "reason": f"{missing}: file not found; check the path"}],
        "harken_version": __version__,
    }
    assert (tmp_path / "emb.files.txt").read_text().splitlines() == record["files"]
    # an output harken wrote is rewritten, also when only its sidecar is left beside it
    (tmp_path / "emb.files.txt").unlink()
    assert main(["embed", str(clips[0]), "--out", str(out)]) == 0
    assert json.loads((tmp_path / "emb.json").read_text())["rows"] == 1
    assert np.load(out).shape == (1, 521)


def test_missing_file_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from harken import api

    def no_models(*args, **kwargs):
        raise AssertionError("models loaded before the inputs were checked")

    monkeypatch.setattr(api, "joint_space", no_models)
    monkeypatch.setattr(api, "get_encoder", no_models)
    missing = tmp_path / "nope.wav"
    assert main(["predict", str(missing), "--labels", "a,b"]) == 1  # a data error
    err = capsys.readouterr().err
    assert err == f"harken: error: {missing}: file not found; check the path\n"  # no --data-dir
    assert main(["embed", str(missing), "--out", str(tmp_path / "e.npy")]) == 1
    assert f"{missing}: file not found; check the path" in capsys.readouterr().err
    assert main(["index", str(missing), "--out", str(tmp_path / "idx")]) == 1
    assert "--data-dir" not in capsys.readouterr().err


def _plain_predict(capsys, clip, labels: list[str], *args) -> list[str]:
    capsys.readouterr()
    assert main(["predict", str(clip), "--labels", ",".join(labels), *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_top_k_is_respected_in_plain_and_json_output(shared_data, capsys):
    clip = shared_data / "kitchen20/audio/blender/0-158737-A-0.flac"
    labels = [*CLASSES, "sweep", "stove burner", "dishwasher", "peel"]  # 12 labels
    _, line = _plain_predict(capsys, clip, labels, "--top-k", "5")
    assert line.count(" (") == 5
    _, line = _plain_predict(capsys, clip, labels, "--top-k", "20")
    assert line.count(" (") == 12  # every label: there are fewer than 20
    _, line = _plain_predict(capsys, clip, labels)
    assert line.count(" (") == 5  # plain text default
    assert main(["predict", str(clip), "--labels", ",".join(labels), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["ranking"]) == 12  # JSON default: all
    assert main(["predict", str(clip), "--labels", ",".join(labels), "--json", "--top-k", "3"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["ranking"]) == 3


def test_every_output_says_what_its_scores_are(shared_data, capsys):
    from harken import api

    clip = shared_data / "kitchen20/audio/blender/0-158737-A-0.flac"
    space = api.zero_shot_classifier("bridge")[0].space  # predict's default space
    kind = "compatibility" if space.logit_scale is None else "probability"
    header, _ = _plain_predict(capsys, clip, ["blender", "sweep", "chop"])
    assert header.startswith(f"scores: {kind}: ")
    if kind == "compatibility":
        assert header.endswith("not a probability)")
    else:
        assert "softmax over the 3 candidate labels" in header
    assert main(["predict", str(clip), "--labels", "blender,sweep", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["score_kind"] == kind


def test_multi_label_without_a_logit_scale_is_a_usage_error(monkeypatch, shared_data, capsys):
    from harken import api
    from harken.methods.joint import BridgeSpace

    class Uncalibrated(BridgeSpace):
        logit_scale = None

    monkeypatch.setattr(api, "joint_space", lambda spec, **options: Uncalibrated(**options))
    clip = shared_data / "kitchen20/audio/blender/0-158737-A-0.flac"
    assert main(["predict", str(clip), "--labels", "blender,sweep", "--multi-label"]) == 2
    err = capsys.readouterr().err
    assert "multi-label (sigmoid) probabilities need a backend with learnt logits" in err
    assert "clap" in err and "msclap" in err


def test_corrupt_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage" * 20)
    assert main(["embed", str(bad), "--out", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert "bad.wav" in err and "decode" in err
    assert not (tmp_path / "x.npy").exists()


def test_unknown_label_column_is_a_clear_error(small_csv, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(f'[data]\ndataset = "{small_csv}"\ntarget = "verb"\n')
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "verb" in capsys.readouterr().err


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[protocol]\nfoldz = 3\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "foldz" in capsys.readouterr().err


def test_help_everywhere(capsys):
    for cmd in ([], ["run"], ["demo"], ["predict"], ["embed"]):
        with pytest.raises(SystemExit) as exc:
            main([*cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: harken" in capsys.readouterr().out


# --- retrieval: harken index / harken search ----------------------------------------------------


@pytest.fixture(scope="module")
def index_dir(small_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "k20"
    assert main(["index", str(small_csv), "--out", str(out)]) == 0
    return out


def _search(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["search", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _labels_of(small_csv) -> dict[str, str]:
    with open(small_csv) as f:
        return {str(Path(r["path"]).resolve()): r["label"] for r in csv.DictReader(f)}


def test_text_search_ranks_real_clips(index_dir, small_csv, capsys):
    hits = _search(capsys, index_dir, "water flowing from a tap", "--top-k", "5")
    assert len(hits) == 5 and list(hits[0]) == ["file", "score"]
    assert all(Path(h["file"]).is_absolute() and Path(h["file"]).exists() for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    labels = _labels_of(small_csv)
    assert labels[hits[0]["file"]] == "water-flowing"
    assert sum(labels[h["file"]] == "water-flowing" for h in hits) >= 3  # 6 such clips of 48


def test_audio_search_finds_the_clip_itself_first(index_dir, small_csv, capsys):
    clip = next(f for f, label in _labels_of(small_csv).items() if label == "blender")
    hits = _search(capsys, index_dir, "--audio", clip, "--top-k", "3")
    assert hits[0]["file"] == clip and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 3


def test_index_header_records_the_space_and_count(index_dir):
    header = json.loads((index_dir / "index.json").read_text())
    assert header["meta"]["space"] == "bridge"
    assert header["meta"]["space_config"]["audio"]["name"] == "yamnet"
    assert header["count"] == len(CLASSES) * 6


def test_search_errors_are_clear(index_dir, tmp_path, capsys):
    assert main(["search", str(index_dir)]) == 2
    assert "either a text query or --audio" in capsys.readouterr().err
    assert main(["search", str(tmp_path), "chop"]) == 1
    assert "harken index" in capsys.readouterr().err
    assert main(["search", str(index_dir), "--audio", str(tmp_path / "nope.wav")]) == 1
    assert "nope.wav" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "i")]) == 1
    assert "missing.wav" in capsys.readouterr().err


# --- one command, many datasets ----------------------------------------------------------------


def test_bench_zeroshot_writes_one_table_over_datasets(small_csv, tmp_path, capsys):
    with open(small_csv) as f:
        rows = list(csv.DictReader(f))
    other = tmp_path / "four.csv"
    with open(other, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["label"] in CLASSES[:4])
    out = tmp_path / "bench"
    argv = ["bench", "zeroshot", "--datasets", str(small_csv), str(other), "--out", str(out)]
    assert main(argv) == 0
    table = json.loads((out / "bench.json").read_text())
    assert [r["classes"] for r in table["datasets"]] == [8, 4]
    for r in table["datasets"]:
        assert r["UA"] > r["chance_UA"]  # 8-way chance 0.125, 4-way 0.25
        run = json.loads((out / r["run"] / "results.json").read_text())
        assert run["methods"]["zeroshot:bridge"]["UA"]["mean"] == r["UA"]
    assert "| clips | 8 |" in (out / "bench.md").read_text()
    assert (out / "manifest.json").is_file()


def test_report_of_a_detect_folder_and_a_page_it_must_not_replace(shared_data, tmp_path, capsys):
    clip = shared_data / "kitchen20" / "audio" / "blender" / "0-158737-B-0.flac"
    out = tmp_path / "detect"
    assert main(["detect", str(clip), "--labels", "blender,chopping", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "detections — 1 file — 2 labels" in page and "0-158737-B-0.flac" in page
    mine = tmp_path / "mine.html"
    mine.write_text("hand-written")
    assert main(["report", str(out), "--out", str(mine)]) == 1  # a data error, nothing written
    err = capsys.readouterr().err
    assert str(mine) in err and "not a harken report" in err
    assert mine.read_text() == "hand-written"


# --- CLAP backends end to end (a tiny random-weight CLAP: real loading and forward code) -------


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory) -> Path:
    from tiny_models import save_tiny_clap

    return save_tiny_clap(tmp_path_factory.mktemp("tiny_clap"), fused=False)


def test_predict_with_a_clap_backend_gives_probabilities(tiny_clap, shared_data, capsys):
    clip = str(shared_data / "kitchen20/audio/blender/0-158737-A-0.flac")
    argv = ["predict", clip, "--labels", "blender,sweep,chop", "--backend", f"clap:{tiny_clap}"]
    assert main([*argv, "--json", "--templates", "this is a sound of {}."]) == 0
    item = json.loads(capsys.readouterr().out)[0]
    ranking = item["ranking"]
    assert item["score_kind"] == "probability"
    assert sum(r["score"] for r in ranking) == pytest.approx(1.0, abs=1e-5)
    logits = np.array([r["logit"] for r in ranking])
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose([r["score"] for r in ranking], probs, rtol=1e-5)
    assert main([*argv, "--json", "--multi-label"]) == 0
    item = json.loads(capsys.readouterr().out)[0]
    assert item["score_kind"] == "probability (independent)"
    multi = item["ranking"]
    for r in multi:
        assert r["score"] == pytest.approx(1 / (1 + np.exp(-r["logit"])), rel=1e-5)


def test_clap_method_in_a_run_embeds_classes_with_its_own_text_tower(
    tiny_clap, small_csv, tmp_path
):
    from harken.experiment import ExperimentConfig, run_experiment

    method = f"clap:{tiny_clap}"
    config = ExperimentConfig(
        dataset=str(small_csv), protocol="all-classes", methods=[method, "bridge"], seeds=[0]
    )
    results = run_experiment(config, tmp_path / "run")
    assert set(results["methods"]) == {method, "bridge"}
    assert results["encoders"]["audio"] == sorted([method, "yamnet"])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert list(manifest["knowledge"]["method_text_encoders"]) == [f"clap-text:{tiny_clap}"]
    assert manifest["encoders"][method]["sample_rate"] == 48000


def test_index_and_search_with_a_clap_backend(tiny_clap, small_csv, tmp_path, capsys):
    out = tmp_path / "clap-index"
    assert main(["index", str(small_csv), "--out", str(out), "--backend", f"clap:{tiny_clap}"]) == 0
    hits = _search(capsys, out, "the blender whirring", "--top-k", "4")
    assert len(hits) == 4
    from harken.encoders.base import get_encoder

    scale = get_encoder(f"clap:{tiny_clap}").logit_scale
    assert all(abs(h["score"]) <= scale + 1e-4 for h in hits)  # λ · cosine


# --- the error surface: one paragraph, exit codes, --debug ---------------------------------


def _raise(exc: BaseException):
    def command(args) -> None:
        raise exc

    return command


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigError("run.toml: [protocol] folds must be an integer"), 2),
        (DataError("clips.csv, line 3: empty label"), 1),
    ],
)
def test_harken_errors_print_one_paragraph_and_their_exit_code(monkeypatch, capsys, exc, code):
    monkeypatch.setattr(cli, "_cmd_embed", _raise(exc))
    assert main(["embed", "a.wav", "--out", "x.npy"]) == code
    err = capsys.readouterr().err
    assert err == f"harken: error: {exc}\n"


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_cmd_embed", _raise(DataError("broken row")))
    assert main(["--debug", "embed", "a.wav", "--out", "x.npy"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "harken.errors.DataError" in err
    assert err.rstrip().endswith("harken: error: broken row")


def test_an_unexpected_error_is_reported_as_a_bug_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_cmd_embed", _raise(ZeroDivisionError("division by zero\nmore")))
    assert main(["embed", "a.wav", "--out", "x.npy"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "unexpected ZeroDivisionError: division by zero" in err
    assert "bug in harken" in err and "--debug" in err


@pytest.mark.parametrize(
    ("code", "reason", "advice"),
    [
        (errno.EACCES, "Permission denied", "check the permissions"),
        (errno.ELOOP, "Too many levels of symbolic links", "a symbolic link points back"),
        (errno.ENOSPC, "No space left on device", "the disk is full"),
    ],
)
def test_os_errors_name_the_path_and_what_to_do(monkeypatch, capsys, code, reason, advice):
    monkeypatch.setattr(cli, "_cmd_embed", _raise(OSError(code, reason, "/data/out.npy")))
    assert main(["embed", "a.wav", "--out", "x.npy"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"harken: error: /data/out.npy: {reason}; {advice}")
    assert "Traceback" not in err


def test_a_real_permission_error_on_the_output_path(shared_data, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    clip = next((shared_data / "kitchen20" / "audio" / "blender").iterdir())
    try:
        code = main(["embed", str(clip), "--out", str(locked / "x.npy")])
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 1 and str(locked) in err and "Permission denied" in err


# --- candidate labels ----------------------------------------------------------------------


def test_labels_option_is_one_csv_row():
    assert parse_labels_option('"salt, pepper",chop') == ["salt, pepper", "chop"]
    assert parse_labels_option("chop, pour ,stir") == ["chop", "pour", "stir"]
    with pytest.raises(ConfigError, match=r"label 2 of 3 is empty; remove the extra comma"):
        parse_labels_option("chop,,pour")


def test_labels_file_is_utf8_with_an_optional_bom(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffcafé au lait\n\n  chop  \r\n".encode())
    assert read_labels_file(path) == ["café au lait", "chop"]


def test_labels_file_problems_are_data_errors(tmp_path, capsys):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"chop\ncaf\xe9\n")
    assert main(["predict", "a.wav", "--labels-file", str(latin)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{latin}, line 2: not UTF-8 text (byte 8" in err and "save the labels file as UTF-8" in err
    )
    assert main(["predict", "a.wav", "--labels-file", str(tmp_path)]) == 1
    assert "is a folder; give a text file with one candidate label per line" in (
        capsys.readouterr().err
    )
    assert main(["predict", "a.wav", "--labels-file", str(tmp_path / "none.txt")]) == 1
    assert "labels file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ("chop,pour,chop", "candidate labels contain duplicates: ['chop']"),
        (
            "stove-fan,stove fan,Stove_Fan,chop",
            "candidate labels that become the same text: 'stove-fan', 'stove fan', 'Stove_Fan'; "
            "keep one label of each group",
        ),
        ("chop", "give at least two candidate labels"),
    ],
)
def test_bad_candidate_labels_are_usage_errors(capsys, labels, expected):
    assert main(["predict", "a.wav", "--labels", labels]) == 2
    assert expected in capsys.readouterr().err


def test_five_thousand_labels_are_checked_quickly():
    labels = [f"action {i}" for i in range(5000)]
    start = time.perf_counter()
    assert _check_labels(labels) == labels
    assert time.perf_counter() - start < 2.0


def test_warnings_print_as_one_harken_line(monkeypatch, capsys):
    import warnings

    def warn(args) -> None:
        message = "clips.csv: 1 class(es) of column 'label' have a single clip"
        warnings.warn(message, UserWarning, stacklevel=2)

    monkeypatch.setattr(cli, "_cmd_embed", warn)
    shown_before = warnings.showwarning
    assert main(["embed", "a.wav", "--out", "x.npy"]) == 0
    err = capsys.readouterr().err
    assert err == "harken: warning: clips.csv: 1 class(es) of column 'label' have a single clip\n"
    assert warnings.showwarning is shown_before


# --- run folders: --overwrite / --resume; per-fold chosen settings ------------------------------


def _small_config(small_csv: Path, path: Path, folds: int = 2, seeds: str = "[0, 1]") -> Path:
    path.write_text(f"""
[data]
dataset = "{small_csv}"
[protocol]
folds = {folds}
n_test = 3
n_dev = 2
[methods]
names = ["linear", "bridge", "conse"]
seeds = {seeds}
[methods.linear]
features = ["yamnet"]
epochs = 3
""")
    return path


def test_run_folder_is_resumed_or_overwritten_never_mixed(small_csv, tmp_path, capsys):
    config = _small_config(small_csv, tmp_path / "exp.toml")
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    first = json.loads((out / "results.json").read_text())
    capsys.readouterr()

    # the same folder again, without a flag: refused, nothing touched
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "--resume" in err and "another folder" in err

    # an interrupted run: one (method, fold, seed) unit and the final files missing
    units = sorted((out / "units").glob("*.json"))
    assert len(units) == 2 * 2 + 2 + 2  # linear: folds × seeds; bridge, conse: folds
    lost = next(u for u in units if u.name.startswith("linear-1-1-"))
    kept = {u: u.stat().st_mtime_ns for u in units if u != lost}
    for f in (lost, out / "results.json", out / "manifest.json"):
        f.unlink()
    assert main(["run", str(config), "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "results.json").read_text()) == first  # same numbers
    assert lost.is_file()
    assert all(u.stat().st_mtime_ns == t for u, t in kept.items())  # finished units reused
    capsys.readouterr()

    # resuming with another config is refused and names what differs
    other = _small_config(small_csv, tmp_path / "other.toml", seeds="[0]")
    assert main(["run", str(other), "--out", str(out), "--resume"]) == 2
    assert "['seeds']" in capsys.readouterr().err

    # overwrite with fewer folds: no fold file, unit or row of the old run remains
    fewer = _small_config(small_csv, tmp_path / "fewer.toml", folds=1, seeds="[0]")
    assert main(["run", str(fewer), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "splits").iterdir()) == ["fold0.json"]
    assert len(list((out / "units").glob("*.json"))) == 3
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["folds"] == 1
    assert all(len(r["folds"]) == 1 for r in results["methods"].values())


def test_every_fold_records_its_chosen_settings_and_selection(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    logs = {(s["fold"], s["seed"]): s for s in manifest["selection"]["linear"]}
    for row in results["methods"]["linear"]["folds"]:
        assert row["selection"]["criterion"] == "UA on the fold's dev classes"
        assert row["selection"]["score"] == logs[row["fold"], row["seed"]]["dev_score"]
        assert row["config"]["features"] == ["yamnet"]
    bridge = results["methods"]["bridge"]
    for row in bridge["folds"]:
        assert row["selection"]["criterion"].startswith("UA on train+dev classes")
        assert 0.0 <= row["selection"]["score"] <= 1.0
        assert {"top_t", "sim_threshold", "sim_power"} <= set(row["config"])
    assert bridge["selection_criterion"] == sorted(
        {r["selection"]["criterion"] for r in bridge["folds"]}
    )
    conse = results["methods"]["conse"]["folds"]
    assert all(
        r["selection"] == {"criterion": "none (fixed settings)", "score": None} for r in conse
    )
    # the manifest holds every fold's choice, not the last fold's
    chosen = manifest["methods"]["bridge"]["chosen"]
    assert [(c["fold"], c["seed"]) for c in chosen] == [(0, 0), (1, 0)]
    assert [c["config"] for c in chosen] == [r["config"] for r in bridge["folds"]]
    assert manifest["splits"]["folds"] == [0, 1]
    assert manifest["source"] in ("git checkout", "installed package")


def test_demo_runs_twice_into_its_own_folders(small_csv, tmp_path, monkeypatch, capsys):
    """`make demo` twice: the demo replaces its own earlier run folders (default overwrite);
    experiments run in parallel processes give the results they give one after another."""
    from harken import api
    from harken.experiment import ExperimentConfig

    def small_demo(data_dir=None, **overrides):
        common = {"dataset": str(small_csv), "seeds": [0], **overrides}
        return {
            "kfold": ExperimentConfig(
                protocol="kfold",
                protocol_options={"folds": 2, "n_test": 3, "n_dev": 2},
                methods=["conse"],
                **common,
            ),
            "all-classes": ExperimentConfig(protocol="all-classes", methods=["conse"], **common),
        }

    monkeypatch.setattr(api, "demo_configs", small_demo)
    out = tmp_path / "demo"
    argv = ["demo", "--task", "zsl", "--out", str(out)]
    assert main([*argv, "--jobs", "2"]) == 0  # kfold and all-classes in two processes at once
    # with more than one core the demo's features are encoded by the process pool
    from harken.encoders.threads import cpu_count

    engine = json.loads((out / "kfold" / "manifest.json").read_text())["config"]["engine"]
    assert engine == ("process" if cpu_count() > 1 else "local")
    first = {
        n: json.loads((out / n / "results.json").read_text()) for n in ("kfold", "all-classes")
    }
    argv.append("--jobs=1")  # one after another, in this process: the same results
    assert main(argv) == 0
    assert {n: json.loads((out / n / "results.json").read_text()) for n in first} == first
    assert main(argv) == 0
    assert json.loads((out / "kfold" / "results.json").read_text()) == first["kfold"]
    assert main([*argv, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "run folder:" in printed
    # each demo run gets its report, linked from its results.md
    assert f"report: {out / 'kfold' / 'report.html'}" in printed
    assert "[report.html](report.html)" in (out / "kfold" / "results.md").read_text()
    plain = tmp_path / "plain"
    assert main(["demo", "--task", "zsl", "--out", str(plain), "--no-reports", "--jobs=1"]) == 0
    assert (plain / "kfold" / "results.json").exists()
    assert not (plain / "kfold" / "report.html").exists()
    assert "report:" not in capsys.readouterr().out
    # a folder harken did not write is never cleared, not even by the demo
    for f in (out / "kfold").iterdir():
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()
    (out / "kfold" / "my-notes.txt").write_text("keep me")
    assert main([*argv, "--jobs=2"]) == 2  # the refusal reaches the CLI from a worker process
    assert "not a harken run folder" in capsys.readouterr().err
    assert (out / "kfold" / "my-notes.txt").read_text() == "keep me"


def test_the_mc3_demo_runs_every_protocol(small_csv, shared_data, tmp_path, monkeypatch, capsys):
    """`harken demo --task mc3`: the four SoundingActions experiments, each on small real data
    (the demo's own configs with fewer clips, epochs and seeds; the same code path)."""
    from harken import api
    from harken.experiment import ExperimentConfig
    from harken.methods.mc3 import VARIANTS

    assert list(VARIANTS) == api.MC3_VARIANTS  # the demo runs every Table-2 variant
    real = api.mc3_demo_configs(str(shared_data))
    assert list(real) == list(api.DEMO_TASKS["mc3"])
    assert real["discovery"].dataset == "avmini:sounding"
    assert set(real["discovery"].methods) == set(api.MC3_VARIANTS)
    fast = {"audio": "yamnet", "epochs": 2}

    def small(data_dir=None, **overrides):
        out = {}
        for name, c in api.mc3_demo_configs(str(shared_data), **overrides).items():
            methods = c.methods[:2]
            options = {m: {**c.method_options[m], **fast} for m in methods}
            options = {
                m: {k: v for k, v in o.items() if m != "contrastive" or k == "epochs"}
                for m, o in options.items()
            }
            dataset = str(small_csv) if c.dataset == "kitchen20" else c.dataset
            protocol_options = dict(c.protocol_options)
            if "features" in protocol_options:
                protocol_options["features"] = ["yamnet"]
            if "contrastive" in options:
                options["contrastive"]["features"] = ["yamnet"]
            out[name] = ExperimentConfig(
                **{
                    **c.__dict__,
                    "dataset": dataset,
                    "methods": methods,
                    "method_options": options,
                    "protocol_options": protocol_options,
                    "seeds": [0],
                    "frames": 1,
                }
            )
        return out

    monkeypatch.setattr(api, "demo_configs", small)
    out = tmp_path / "demo"
    assert main(["demo", "--task", "mc3", "--out", str(out), "--data-dir", str(shared_data)]) == 0
    printed = capsys.readouterr().out
    for name in api.DEMO_TASKS["mc3"]:
        results = json.loads((out / name / "results.json").read_text())
        assert results["protocol"]["name"] in ("discovery", "retrieval", "linear-probe")
        assert f"== {results['dataset']}, {name} ==" in printed
    disc = json.loads((out / "discovery" / "results.json").read_text())
    assert disc["dataset"] == "avmini-sounding" and set(disc["methods"]) == {"mc3", "clap-style"}
    probe = json.loads((out / "linear-probe" / "results.json").read_text())
    assert "yamnet" in probe["methods"]


def test_each_protocol_prints_its_own_table():
    from harken.protocols.base import results_markdown, results_table

    ms = {"mean": 0.5, "std": 0.1}
    gzsl = {
        "dataset": "d",
        "target": "label",
        "protocol": {"name": "gzsl", "splits": ["s0"], "seeds": [0]},
        "chance": {"S": 0.1, "U": 0.1, "HM": 0.1, "ZSL": 0.25},
        "methods": {"sje": {"S": ms, "U": ms, "HM": ms, "ZSL": ms, "calibration": {"value": 0.2}}},
    }
    table = results_table(gzsl).splitlines()
    assert table[0].split() == ["method", "S", "U", "HM", "ZSL", "γ"]
    assert table[2].split()[:2] == ["sje", "0.500±0.100"]
    assert "| sje | 0.500 ± 0.100 |" in results_markdown(gzsl)
    kfold = {
        "chance": {"UA": 0.25, "WA": 0.25, "UP": 0.25},
        "protocol": {"name": "kfold"},
        "methods": {"linear": {"UA": ms, "WA": ms, "UP": ms}},
    }
    assert results_table(kfold).splitlines()[0].split() == ["method", "UA", "WA", "UP"]


def test_gzsl_features_seeds_must_be_integers(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gzsl-features", str(tmp_path), "--dataset", "UCF", "--seeds", "0,a", "--out", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and "'0,a' is not a comma-separated list of integers" in err
    assert "Traceback" not in err


def test_index_with_a_process_pool_equals_the_local_index(index_dir, small_csv, tmp_path):
    """``--engine process --workers 2`` into a cold store: the same index, bit for bit."""
    from harken.store.index import EmbeddingIndex

    out = tmp_path / "pool"
    argv = ["index", str(small_csv), "--out", str(out), "--store-dir", str(tmp_path / "store")]
    assert main([*argv, "--engine", "process", "--workers", "2"]) == 0
    local, pool = EmbeddingIndex.load(index_dir), EmbeddingIndex.load(out)
    assert pool.files == local.files
    assert np.asarray(pool.embeddings).tobytes() == np.asarray(local.embeddings).tobytes()
    assert list((tmp_path / "store").rglob("shard-*.npz"))  # the workers wrote the shards


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--engine", "nope"], "unknown engine 'nope'; choose one of: local, process"),
        (["--workers", "3"], "--workers 3 needs an engine with workers: add --engine process"),
        (["--engine", "process", "--workers", "0"], "--workers must be a positive integer"),
        (["--ray-address", "auto"], "--ray-address is an option of the ray engine"),
    ],
)
def test_engine_flags_are_checked_before_any_work(shared_data, tmp_path, capsys, flags, message):
    clip = sorted((shared_data / "kitchen20/audio/chopping").glob("*.flac"))[0]
    for cmd in (["embed", str(clip)], ["index", str(clip)]):
        out = tmp_path / ("x.npy" if cmd[0] == "embed" else "idx")
        assert main([*cmd, "--out", str(out), *flags]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_engine_ray_without_ray_says_how_to_get_it(shared_data, tmp_path, capsys, monkeypatch):
    from harken.store import engines

    real = engines.importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n, *a)
    )
    clip = sorted((shared_data / "kitchen20/audio/chopping").glob("*.flac"))[0]
    argv = ["embed", str(clip), "--out", str(tmp_path / "x.npy"), "--engine", "ray"]
    assert main(argv) == 2
    assert "pip install 'harken[ray]'" in capsys.readouterr().err


def test_run_encodes_with_a_process_pool_into_the_same_features(small_csv, tmp_path):
    """`harken run --engine process`: a cold store filled by 2 workers gives the features (by
    their hashes) and results of the local engine; resuming under another engine is allowed."""
    config = _small_config(small_csv, tmp_path / "exp.toml", folds=1, seeds="[0]")
    local, pool = tmp_path / "local", tmp_path / "pool"
    assert main(["run", str(config), "--out", str(local)]) == 0
    store = ["--store-dir", str(tmp_path / "store")]
    assert main(["run", str(config), "--out", str(pool), *store, "--engine", "process"]) == 0
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (local, pool)]
    digests = [{k: v["sha256"] for k, v in m["features"].items()} for m in manifests]
    assert digests[0] == digests[1] and digests[0]
    results = [json.loads((d / "results.json").read_text())["methods"] for d in (local, pool)]
    assert results[0] == results[1]
    assert list((tmp_path / "store").rglob("task-*.json"))  # written by the workers
    (pool / "results.json").unlink()
    assert main(["run", str(config), "--out", str(pool), "--resume", "--engine", "local"]) == 0
