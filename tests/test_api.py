"""``predict --model RUN``: the method and settings a run chose on dev/validation data only, and
the run's templates when its knowledge generator cannot describe new labels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from harken import api
from harken.errors import ConfigError


def _row(fold, seed, test_ua, score, criterion="UA on train+dev classes", **config):
    return {
        "fold": fold,
        "seed": seed,
        "UA": test_ua,
        "config": {"top_t": 50, "sim_threshold": 0.3, "sim_power": 2.0, **config},
        "selection": {"criterion": criterion, "score": score},
    }


def _summary(rows):
    return {
        "UA": {"mean": sum(r["UA"] for r in rows) / len(rows), "std": 0.0},
        "config": {"top_t": 50, "sim_threshold": 0.3, "sim_power": 2.0},
        "folds": rows,
    }


def _run(tmp_path: Path, methods: dict, generator="template:harken") -> Path:
    """A run folder's results.json and manifest.json with the given per-fold rows."""
    folder = tmp_path / "run"
    folder.mkdir()
    results = {
        "protocol": {"name": "kfold"},
        "methods": {n: _summary(r) for n, r in methods.items()},
    }
    (folder / "results.json").write_text(json.dumps(results))
    config = {
        "generator": generator,
        "generator_options": {},
        "text_encoder": "minilm",
        "tagger": "yamnet",
    }
    (folder / "manifest.json").write_text(json.dumps({"config": config}))
    return folder


def test_the_method_is_chosen_on_dev_scores_never_on_test(tmp_path):
    # zeroshot has the better *test* UA, bridge the better selection (dev) score
    folder = _run(
        tmp_path,
        {
            "zeroshot": [_row(0, 0, 0.9, 0.2, "UA on the fold's dev classes")],
            "bridge": [_row(0, 0, 0.1, 0.6)],
        },
    )
    settings = api._model_settings(folder)
    assert settings["method"] == "bridge"
    assert settings["method_chosen_on"] == "mean UA on train+dev classes = 0.6000"


def test_methods_without_dev_scores_are_taken_only_when_none_has_one(tmp_path):
    fixed = "none (fixed settings)"
    folder = _run(
        tmp_path,
        {"conse": [_row(0, 0, 0.9, None, fixed)], "bridge": [_row(0, 0, 0.2, 0.3)]},
    )
    assert api._model_settings(folder)["method"] == "bridge"
    (tmp_path / "b").mkdir()
    folder2 = _run(
        tmp_path / "b",
        {"conse": [_row(0, 0, 0.9, None, fixed)], "zeroshot": [_row(0, 0, 0.1, None, fixed)]},
    )
    settings = api._model_settings(folder2)
    assert settings["method"] == "conse"
    assert "no method recorded a dev/validation score" in settings["method_chosen_on"]


def test_settings_are_the_most_common_choice_across_folds(tmp_path):
    rows = [
        _row(0, 0, 0.5, 0.40, top_t=10, sim_threshold=0.2),
        _row(1, 0, 0.5, 0.45, top_t=10, sim_threshold=0.2),
        _row(2, 0, 0.5, 0.90, top_t=100, sim_threshold=0.5),  # best score, chosen once
    ]
    settings = api._model_settings(_run(tmp_path, {"bridge": rows}))
    assert settings["space_options"] == {"top_t": 10, "sim_threshold": 0.2, "sim_power": 2.0}
    ties = [_row(0, 0, 0.5, 0.40, top_t=10), _row(1, 0, 0.5, 0.70, top_t=20)]
    (tmp_path / "t").mkdir()
    settings = api._model_settings(_run(tmp_path / "t", {"bridge": ties}))
    assert settings["space_options"]["top_t"] == 20  # a tie goes to the better dev score


def test_a_run_without_per_fold_choices_asks_for_a_rerun(tmp_path):
    folder = _run(tmp_path, {"bridge": [_row(0, 0, 0.5, 0.5)]})
    results = json.loads((folder / "results.json").read_text())
    del results["methods"]["bridge"]["folds"][0]["config"]  # written by an older harken
    (folder / "results.json").write_text(json.dumps(results))
    with pytest.raises(ConfigError, match=r"older harken.*--overwrite"):
        api._model_settings(folder)


def test_gzsl_runs_choose_on_validation_hm(tmp_path):
    hm = "HM on stage-1 validation clips"
    rows = [{**_row(0, 0, 0.0, 0.3, hm), "split": "s0"}]
    folder = _run(tmp_path, {"bridge": rows})
    results = json.loads((folder / "results.json").read_text())
    summary = results["methods"]["bridge"]
    summary["runs"] = summary.pop("folds")
    (folder / "results.json").write_text(json.dumps(results))
    settings = api._model_settings(folder)
    assert settings["method"] == "bridge" and hm in settings["method_chosen_on"]


def test_descriptions_of_other_classes_fall_back_to_the_run_s_templates(
    tmp_path, shared_data, capsys
):
    from harken.cli import main

    folder = _run(
        tmp_path,
        {"bridge": [_row(0, 0, 0.5, 0.5, knowledge="descriptions:kitchen20")]},
        generator=["template:harken", "descriptions:kitchen20"],
    )
    settings = api._model_settings(folder)
    assert settings["generator"] == "descriptions:kitchen20"
    assert settings["fallback_generator"] == "template:harken"
    clip = str(shared_data / "kitchen20/audio/blender/0-158737-A-0.flac")
    # Kitchen20 classes: the run's written descriptions describe them, no fallback
    out = api.predict([clip], ["blender", "chopping"], model=folder)
    assert out[0].knowledge_fallback is None
    # new labels: the descriptions cannot describe them; the templates do, and it is said
    argv = ["predict", clip, "--labels", "dog barking,blender motor", "--model", str(folder)]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    item = json.loads(captured.out)[0]
    assert item["knowledge_fallback"]["from"] == "descriptions:kitchen20"
    assert item["knowledge_fallback"]["to"] == "template:harken"
    assert "dog barking" in item["knowledge_fallback"]["reason"]
    assert "warning" in captured.err and "'template:harken' instead" in captured.err
    assert item["ranking"][0]["label"] == "blender motor"


# --- predict / embed / embed_text take what you have ----------------------------------------------

BLENDER = "kitchen20/audio/blender/0-158737-A-0.flac"


def test_predict_takes_a_path_a_folder_and_an_array(shared_data):
    import soundfile as sf

    from harken.classify import Prediction, Predictions

    clip = shared_data / BLENDER
    labels = ["blender", "chopping", "water flowing"]
    one = api.predict(str(clip), labels, top_k=2)
    assert isinstance(one, Prediction) and one.file == str(clip)  # not iterated by character
    assert one.label == "blender" and len(one.ranking) == 2
    folder = api.predict(clip.parent, labels)
    assert isinstance(folder, Predictions)
    assert [p.file for p in folder] == api.expand_inputs([clip.parent])
    wave, rate = sf.read(clip, dtype="float32")
    from_array = api.predict(wave, labels, sample_rate=rate, top_k=2)
    assert from_array.file is None
    assert [(r.label, round(r.score, 6)) for r in from_array.ranking] == [
        (r.label, round(r.score, 6)) for r in one.ranking
    ]


def test_predict_checks_inputs_before_any_model_loads(tmp_path, monkeypatch):
    from harken.errors import AudioError, DataError

    def no_models(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(api, "joint_space", no_models)
    with pytest.raises(AudioError, match=r"nope\.wav: file not found; check the path$"):
        api.predict(tmp_path / "nope.wav", ["a", "b"])
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 2 files could be used.*nope\.wav"):
        api.predict([tmp_path / "nope.wav", tmp_path / "empty.wav"], ["a", "b"])
    (tmp_path / "notes").mkdir()
    with pytest.raises(DataError, match="no audio or video files in this folder"):
        api.predict(tmp_path / "notes", ["a", "b"])
    with pytest.raises(AudioError, match="empty"):
        api.predict([tmp_path / "empty.wav"], ["a", "b"], strict=True)


def test_a_missing_file_fails_without_importing_model_code(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from harken.cli import main; "
        f"rc = main(['predict', {str(tmp_path / 'nope.wav')!r}, '--labels', 'a,b']); "
        "print(rc, sorted(m for m in ('torch', 'onnxruntime', 'tensorflow', 'transformers', "
        "'sentence_transformers') if m in sys.modules))"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        timeout=120,
    )
    assert done.stdout.split("\n")[0] == "1 []", done.stderr
    assert "nope.wav: file not found" in done.stderr and "--data-dir" not in done.stderr


def test_embed_takes_arrays_through_the_same_encoder_path_as_files(shared_data, tmp_path):
    import soundfile as sf

    from harken.errors import ConfigError

    clips = [shared_data / BLENDER, *sorted((shared_data / "kitchen20/audio/sweep").glob("*"))[:1]]
    files = api.embed(clips, "yamnet", store_dir=tmp_path / "store")
    waves = [sf.read(c, dtype="float32") for c in clips]
    arrays = api.embed([w for w, _ in waves], "yamnet", sample_rate=waves[0][1])
    assert arrays.files == [None, None] and arrays.index == [0, 1] and arrays.report is None
    assert files.files == [str(c) for c in clips]
    np.testing.assert_allclose(arrays.embeddings, files.embeddings, rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match=r"for arrays, save the result yourself"):
        api.embed([waves[0][0]], "yamnet", tmp_path / "e.npy", sample_rate=16000)


def test_embed_text_is_the_text_encoder_s_float32_rows():
    from harken.encoders.base import get_encoder
    from harken.errors import ConfigError

    texts = ["chop onion", "pour water", "chop onion"]
    emb = api.embed_text(texts)
    assert emb.dtype == np.float32 and emb.shape == (3, 384)
    np.testing.assert_allclose(emb, get_encoder("minilm").embed(texts), rtol=1e-6)
    np.testing.assert_array_equal(emb[0], emb[2])
    assert not np.allclose(emb[0], emb[1])
    assert api.embed_text("pour water").shape == (1, 384)
    with pytest.raises(ConfigError, match="no texts"):
        api.embed_text([])
    with pytest.raises(ConfigError, match="text 1 of 2 is empty"):
        api.embed_text(["chop", " "])
    with pytest.raises(ConfigError, match="embeds audio, not text"):
        api.embed_text(["chop"], encoder="yamnet")
