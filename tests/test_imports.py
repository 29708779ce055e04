"""Which libraries a fresh process imports: help and argument errors before any heavy library,
``import harken.api`` without model libraries, and warm ``predict`` / text ``search`` (features
and texts cached) without torch, transformers or sentence-transformers.

Each check runs in a subprocess (a fresh ``sys.modules``); a heavy import added at the top of a
module on these paths makes it fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harken import api

SRC = Path(__file__).resolve().parents[1] / "src"
#: Model and scientific libraries that cost seconds to import.
HEAVY = {"torch", "transformers", "sentence_transformers", "sklearn", "scipy", "onnxruntime"}
LABELS = [
    "blender",
    "boiling water",
    "chopping",
    "frying pan",
    "microwave",
    "peel",
    "sweep",
    "water flowing",
    "drawer",
    "cupboard",
]

PROBE = textwrap.dedent(
    """
    import json, sys
    argv = json.loads(sys.argv[1])
    code = None
    if argv is None:
        import harken.api
    else:
        from harken.cli import main
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help and usage errors
            code = exc.code
    top = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"code": code, "modules": top}))
    """
)


def run_probe(argv: list[str] | None) -> tuple[int | None, set[str], str]:
    """Run the CLI (or ``import harken.api`` for None) in a fresh process; returns its exit
    code, the top-level modules it imported, and its stdout before the probe's own line."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.strip().splitlines()
    probe = json.loads(last)
    return probe["code"], set(probe["modules"]), "\n".join(printed)


def test_import_api_imports_no_model_library():
    _, modules, _ = run_probe(None)
    assert "harken" in modules
    assert not modules & (HEAVY | {"pandas", "matplotlib"})


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        (["predict", "--help"], 0),
        (["search", "--help"], 0),
        (["predict"], 2),  # missing files
        (["predict", "a.wav", "--top-k", "three"], 2),
        (["no-such-command"], 2),
    ],
)
def test_help_and_usage_errors_answer_before_heavy_imports(argv, code):
    got, modules, _ = run_probe(argv)
    assert got == code
    assert not modules & (HEAVY | {"numpy"})


@pytest.fixture(scope="module")
def kitchen_clips(shared_data) -> list[Path]:
    clips = sorted((shared_data / "kitchen20" / "audio").glob("*/*.flac"))
    if len(clips) < 3:
        pytest.skip("Kitchen20 audio not found")
    return [clips[0], clips[400], clips[800]]


def test_warm_predict_imports_no_model_library(kitchen_clips):
    clip = str(kitchen_clips[0])
    expected = api.predict([clip], LABELS)  # fills the feature store and the text cache
    code, modules, printed = run_probe(["predict", clip, "--labels", ",".join(LABELS), "--json"])
    assert code == 0
    got = json.loads(printed)
    assert [r["label"] for r in got[0]["ranking"]] == [r.label for r in expected[0].ranking]
    assert not modules & HEAVY


def test_warm_text_search_loads_no_audio_model(kitchen_clips, tmp_path):
    index = tmp_path / "index"
    api.index([str(c) for c in kitchen_clips], index, progress=False)
    expected = api.search(index, "a blender whirring", top_k=3)  # caches the query's text
    code, modules, printed = run_probe(["search", str(index), "a blender whirring", "--json"])
    assert code == 0
    got = json.loads(printed)[:3]
    assert [h["file"] for h in got] == [h["file"] for h in expected]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in expected], abs=1e-6)
    assert not modules & HEAVY
