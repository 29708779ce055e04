"""The Python API: the same verbs as the CLI (``run``, ``demo``, ``predict``, ``embed``).

>>> from harken import api
>>> api.predict(["clip.wav"], ["chop onion", "pour water"])        # doctest: +SKIP
[{'file': 'clip.wav', 'ranking': [{'label': 'pour water', 'score': 0.41}, ...]}]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harken.data.manifest import Clip
from harken.encoders.base import get_encoder
from harken.errors import ConfigError, DataError
from harken.experiment import ExperimentConfig, run_experiment
from harken.knowledge.base import get_generator
from harken.knowledge.cache import CachedGenerator
from harken.knowledge.classes import class_embeddings, class_texts
from harken.methods.base import Batch, Classes, get_method
from harken.store.atomic import atomic_save_npy
from harken.store.features import encode_clips

MAX_PREDICT_SECONDS = 3600.0


def run(config: str | Path | ExperimentConfig, out: str | Path, **overrides) -> dict:
    """Run one experiment from a TOML file (or config object) into the folder ``out``."""
    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_toml(Path(config), **overrides)
    return run_experiment(config, Path(out))


def demo_configs(data_dir: str | None = None, **overrides) -> dict[str, ExperimentConfig]:
    """The Kitchen20 demo: ``kfold`` (5 class-disjoint folds × 4 test / 3 dev / 13 train classes,
    every class tested once, all methods, 3 seeds) and ``all-classes`` (training-free methods,
    all 20 classes as candidates)."""
    data_dir = data_dir or os.environ.get("HARKEN_DATA_DIR")
    common = {"dataset": "kitchen20", "data_dir": data_dir, **overrides}
    return {
        "kfold": ExperimentConfig(
            protocol="kfold",
            folds=5,
            n_test=4,
            n_dev=3,
            methods=["linear", "conse", "bridge"],
            seeds=[0, 1, 2],
            **common,
        ),
        "all-classes": ExperimentConfig(
            protocol="all-classes", methods=["conse", "bridge"], seeds=[0], **common
        ),
    }


def demo(data_dir: str | None = None, out: str | Path = "runs/demo", **overrides) -> dict:
    """Run both demo experiments into ``out/kfold`` and ``out/all-classes``."""
    return {
        name: run_experiment(cfg, Path(out) / name)
        for name, cfg in demo_configs(data_dir, **overrides).items()
    }


def _clips(files: Sequence[str | Path]) -> list[Clip]:
    if not files:
        raise ConfigError("no audio files given")
    return [Clip(clip_id=str(f), audio_path=Path(f)) for f in files]


def expand_inputs(inputs: Sequence[str | Path]) -> list[str]:
    """Files as given; folders expand to the audio/video files inside them (sorted)."""
    from harken.data.audio import SOUNDFILE_SUFFIXES

    media = SOUNDFILE_SUFFIXES | {".mp4", ".mkv", ".webm", ".m4a", ".mov", ".opus"}
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in media)
            if not found:
                raise DataError(f"{p}: no audio or video files in this folder")
            out += found
        else:
            out.append(str(item))
    return out


def embed(files: Sequence[str | Path], encoder: str, out: str | Path | None = None) -> np.ndarray:
    """Embed ``files`` with ``encoder``: float32 ``[N, D]`` in input order (saved to ``out``)."""
    enc = get_encoder(encoder)
    if enc.modality != "audio":
        raise ConfigError(f"encoder {encoder!r} embeds {enc.modality}, not audio files")
    emb = encode_clips(enc, _clips(files))
    if out is not None:
        atomic_save_npy(Path(out), emb)
    return emb


def _check_size(path: Path) -> None:
    from harken.data.audio import audio_duration

    duration = audio_duration(path) if Path(path).exists() else None
    if duration is not None and duration > MAX_PREDICT_SECONDS:
        raise DataError(
            f"{path}: {duration:.0f} s long, over the {MAX_PREDICT_SECONDS:.0f} s limit of "
            "`predict`; cut it into clips (e.g. with ffmpeg -f segment) and predict those"
        )


def _model_settings(model_dir: str | Path | None) -> dict:
    """Scorer settings: defaults, or the best training-free method of a run folder."""
    settings = {
        "method": "bridge",
        "options": {},
        "generator": "template:harken",
        "generator_options": {},
        "text_encoder": "minilm",
        "tagger": "yamnet",
    }
    if model_dir is None:
        return settings
    folder = Path(model_dir)
    try:
        results = json.loads((folder / "results.json").read_text())
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{folder}: not a harken run folder ({exc.filename} missing)") from exc
    config = manifest["config"]
    free = {n: r for n, r in results["methods"].items() if not get_method(n).trainable}
    if not free:
        raise ConfigError(f"{folder}: the run has no training-free method to predict with")
    best = max(free, key=lambda n: free[n]["UA"]["mean"])
    options = {
        k: v
        for k, v in free[best].get("config", {}).items()
        if k in ("top_t", "sim_threshold", "sim_power")
    }
    settings.update(
        method=best,
        options=options,
        generator=config["generator"],
        generator_options=config["generator_options"],
        text_encoder=config["text_encoder"],
        tagger=config["tagger"],
    )
    return settings


def predict(
    files: Sequence[str | Path],
    labels: Sequence[str],
    model: str | Path | None = None,
    top_k: int | None = None,
) -> list[dict]:
    """Rank candidate action names for each audio file, best first.

    Args:
        files: Audio/video files.
        labels: Candidate action names (plain language).
        model: A run folder: use its best training-free method and knowledge settings;
            None uses the offline defaults (``bridge`` over YAMNet with template knowledge).
        top_k: Keep the best ``k`` labels per file.

    Returns:
        ``[{"file": f, "ranking": [{"label", "score"}, ...]}, ...]`` in input order.
    """
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise ConfigError("give at least two candidate labels (e.g. --labels 'chop,pour')")
    if len(set(labels)) != len(labels):
        raise ConfigError("candidate labels contain duplicates")
    s = _model_settings(model)
    text_encoder = get_encoder(s["text_encoder"])
    tagger = get_encoder(s["tagger"])
    generator = CachedGenerator(get_generator(s["generator"], **s["generator_options"]))
    texts = class_texts(generator, labels)
    classes = Classes(labels, class_embeddings(texts, text_encoder, labels))
    label_space = Classes(
        list(tagger.class_names), np.asarray(text_encoder.embed(list(tagger.class_names)))
    )
    method = get_method(s["method"], label_space=label_space, tagger=s["tagger"], **s["options"])
    clips = _clips(files)
    for clip in clips:  # refuse oversized inputs before decoding anything
        _check_size(clip.audio_path)
    batch = Batch({s["tagger"]: encode_clips(tagger, clips)})
    scores = method.score(batch, classes)
    out = []
    for f, row in zip(files, scores, strict=True):
        order = np.argsort(-row, kind="stable")[: top_k or len(labels)]
        out.append(
            {
                "file": str(f),
                "ranking": [{"label": labels[i], "score": float(row[i])} for i in order],
            }
        )
    return out
