"""``predict --model RUN``: the method and settings a run chose on dev/validation data only, and
the run's templates when its knowledge generator cannot describe new labels."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert "knowledge_fallback" not in out[0]
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
