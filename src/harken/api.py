"""The Python API: the same verbs as the CLI (``run``, ``demo``, ``predict``, ``embed``,
``index``, ``search``, ``bench_zeroshot``).

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
from harken.knowledge.templates import TemplateGenerator
from harken.methods.base import Batch, Classes, get_method
from harken.methods.conse import l2_normalize
from harken.methods.joint import JointSpace, get_joint_space
from harken.methods.zeroshot import ZeroShot
from harken.store.atomic import atomic_save_npy
from harken.store.features import FeatureStore, encode_clips
from harken.store.index import EmbeddingIndex, exact_search
from harken.store.runs import RunFolder

MAX_PREDICT_SECONDS = 3600.0


def run(config: str | Path | ExperimentConfig, out: str | Path, **overrides) -> dict:
    """Run one experiment from a TOML file (or config object) into the folder ``out``."""
    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_toml(Path(config), **overrides)
    return run_experiment(config, Path(out))


#: The demo's tasks: ``zsl`` (class-disjoint k-fold and all-classes) and ``gzsl``.
DEMO_TASKS = {"zsl": ("kfold", "all-classes"), "gzsl": ("gzsl",)}

#: Audio features every trainable GZSL method of the demo reads (the fusion expert's too).
GZSL_AUDIO = ["aisfx", "yamnet"]


def demo_configs(data_dir: str | None = None, **overrides) -> dict[str, ExperimentConfig]:
    """The Kitchen20 demo.

    * ``kfold``: 5 class-disjoint folds × 4 test / 3 dev / 13 train classes, every class tested
      once; ``linear``, ``contrastive``, ``conse``, ``bridge``; 3 seeds;
    * ``all-classes``: training-free methods, all 20 classes as candidates;
    * ``gzsl``: the two-stage generalised zero-shot protocol on 5 harken-made splits (10 seen /
      5 validation-unseen / 5 test-unseen classes; held-out seen clips share no Freesound
      source with training clips), 2 seeds; ClipClap (audio branch, ``w^a`` from ClipClap's
      VGGSound audio prompts), KDA (knowledge: the shipped sound descriptions), DeViSE, ALE
      (= ``linear``'s loss), SJE, ``contrastive``, ``conse``, ``bridge`` and ``fusion``. Offline,
      every text view is embedded by MiniLM.
    """
    data_dir = data_dir or os.environ.get("HARKEN_DATA_DIR")
    common = {"dataset": "kitchen20", "data_dir": data_dir, **overrides}
    trained = {"features": GZSL_AUDIO}
    return {
        "kfold": ExperimentConfig(
            protocol="kfold",
            folds=5,
            n_test=4,
            n_dev=3,
            methods=["linear", "contrastive", "conse", "bridge"],
            seeds=[0, 1, 2],
            # the prompt ensemble (default knowledge of every method) and written sound
            # descriptions; bridge picks one per fold on the non-test classes
            generator=["template:harken", "descriptions:kitchen20"],
            **common,
        ),
        "all-classes": ExperimentConfig(
            protocol="all-classes", methods=["conse", "bridge"], seeds=[0], **common
        ),
        "gzsl": ExperimentConfig(
            protocol="gzsl",
            gzsl_splits=5,
            methods=[
                "clipclap",
                "kda",
                "devise",
                "ale",
                "sje",
                "contrastive",
                "conse",
                "bridge",
                "fusion",
            ],
            seeds=[0, 1],
            generator=["template:harken", "descriptions:kitchen20"],
            views={
                "clip": {"generator": "template:clipclap-vggsound-video"},
                "clap": {"generator": "template:clipclap-vggsound-audio"},
                "kda": {"generator": "descriptions:kitchen20"},
            },
            method_options={
                "clipclap": {"audio": GZSL_AUDIO, "modality": "audio"},
                "kda": {"audio": GZSL_AUDIO, "modality": "audio", "knowledge": "kda"},
                "devise": trained,
                "ale": trained,
                "sje": trained,
                "contrastive": trained,
                "fusion": trained,
            },
            **common,
        ),
    }


def demo(
    data_dir: str | None = None, out: str | Path = "runs/demo", task: str = "all", **overrides
) -> dict:
    """Run the demo experiments of ``task`` (``zsl``, ``gzsl`` or ``all``) into
    ``out/<experiment>`` (``kfold``, ``all-classes``, ``gzsl``)."""
    if task != "all" and task not in DEMO_TASKS:
        raise ConfigError(f"demo task must be one of {[*DEMO_TASKS, 'all']}, not {task!r}")
    names = [n for t, ns in DEMO_TASKS.items() if task in ("all", t) for n in ns]
    configs = demo_configs(data_dir, **overrides)
    return {name: run_experiment(configs[name], Path(out) / name) for name in names}


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


def _max_audio_seconds() -> float:
    """The length limit of ``predict``/``index``/``search`` inputs: ``$HARKEN_MAX_AUDIO_SECONDS``
    or :data:`MAX_PREDICT_SECONDS`.

    Long files are decoded and embedded in bounded memory (streaming), so the limit only guards
    against hour-long waits on a file given by mistake.

    Raises:
        ConfigError: the variable is not a positive number.
    """
    raw = os.environ.get("HARKEN_MAX_AUDIO_SECONDS")
    if raw is None or not raw.strip():
        return MAX_PREDICT_SECONDS
    try:
        limit = float(raw)
    except ValueError:
        limit = float("nan")
    if not limit > 0:
        raise ConfigError(
            f"HARKEN_MAX_AUDIO_SECONDS={raw!r} is not a positive number of seconds; "
            "set it to e.g. 7200 or unset it"
        )
    return limit


def _check_size(path: Path) -> None:
    """Refuse a file longer than :func:`_max_audio_seconds` before decoding anything.

    A missing file passes (decoding reports it); an unreadable header raises; a container that
    states no duration passes, as it is then decoded as a stream in bounded memory.

    Raises:
        AudioError: the header cannot be read (the message names the file).
        DataError: the file is longer than the limit.
    """
    from harken.data.audio import audio_duration

    if not Path(path).exists():
        return
    duration = audio_duration(path)
    limit = _max_audio_seconds()
    if duration is not None and duration > limit:
        raise DataError(
            f"{path}: {duration:.0f} s long, over the {limit:.0f} s limit for one input; "
            "cut it into clips (e.g. with ffmpeg -f segment) or raise the limit with "
            "HARKEN_MAX_AUDIO_SECONDS"
        )


def _model_settings(model_dir: str | Path | None) -> dict:
    """Scorer settings: defaults, or the best training-free method of a run folder.

    A run's ``conse``/``bridge``/``zeroshot`` settings become the bridge joint space's
    ``(T, δ, γ)`` (ConSE is the bridge with ``δ = −1, γ = 1``), with the run's tagger, text
    encoder and knowledge generator.
    """
    settings = {
        "space_options": {},
        "generator": "template:harken",
        "generator_options": {},
        "text_encoder": "minilm",
        "tagger": "yamnet",
        "method": "bridge",
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
    free = {
        n: r
        for n, r in results["methods"].items()
        if not get_method(n).trainable and "top_t" in r.get("config", {})
    }
    if not free:
        raise ConfigError(
            f"{folder}: the run has no training-free label-bridge method (conse, bridge) to "
            "predict with; use --backend instead"
        )
    best = max(free, key=lambda n: free[n]["UA"]["mean"])
    options = {
        k: v
        for k, v in free[best]["config"].items()
        if k in ("top_t", "sim_threshold", "sim_power")
    }
    generator = config["generator"]
    if not isinstance(generator, str):  # several knowledge sources: the one the method chose
        generator = free[best]["config"].get("knowledge") or generator[0]
    settings.update(
        method=best,
        space_options=options,
        generator=generator,
        generator_options=config["generator_options"],
        text_encoder=config["text_encoder"],
        tagger=config["tagger"],
    )
    return settings


def _check_labels(labels: Sequence[str]) -> list[str]:
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise ConfigError("give at least two candidate labels (e.g. --labels 'chop,pour')")
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise ConfigError(f"candidate labels contain duplicates: {duplicates}")
    return labels


def _generator(templates: str | Sequence[str] | None, settings: dict):
    if templates is not None:
        return CachedGenerator(TemplateGenerator(templates))
    return CachedGenerator(get_generator(settings["generator"], **settings["generator_options"]))


_SPACES: dict[tuple, JointSpace] = {}


def joint_space(spec: str = "bridge", **options) -> JointSpace:
    """A joint space, built once per process and argument set (models stay loaded between
    ``predict`` / ``search`` calls, as a pipeline object would keep them)."""
    key = (spec, tuple(sorted(options.items())))
    if key not in _SPACES:
        _SPACES[key] = get_joint_space(spec, **options)
    return _SPACES[key]


def zero_shot_classifier(
    backend: str = "bridge", model: str | Path | None = None, multi_label: bool = False
) -> tuple[ZeroShot, dict]:
    """The zero-shot scorer ``predict`` uses: a backend's joint space, or a run's settings."""
    s = _model_settings(model)
    activation = "sigmoid" if multi_label else "softmax"
    if model is not None:
        if backend != "bridge":
            raise ConfigError("--model takes its scorer from the run folder; drop --backend")
        space = joint_space(
            "bridge", tagger=s["tagger"], text=s["text_encoder"], **s["space_options"]
        )
        return ZeroShot(space, activation), s
    return ZeroShot(joint_space(backend), activation), s


def predict(
    files: Sequence[str | Path],
    labels: Sequence[str],
    model: str | Path | None = None,
    top_k: int | None = None,
    backend: str = "bridge",
    templates: str | Sequence[str] | None = None,
    multi_label: bool = False,
) -> list[dict]:
    """Rank candidate action names for each audio file, best first.

    Args:
        files: Audio/video files.
        labels: Candidate action names (plain language).
        model: A run folder: use its best training-free method and knowledge settings.
        top_k: Keep the best ``k`` labels per file.
        backend: Joint space: ``bridge`` (offline default: YAMNet's AudioSet labels bridged to
            the label texts), ``clap[:<hub id or folder>]``, ``msclap[:<2023|weights.pth>]``.
        templates: Prompt ensemble for the labels (a set name such as ``harken``, a JSON/TXT
            file, or one template with ``{}``); default: the ``harken`` ensemble.
        multi_label: Sigmoid instead of softmax probabilities (CLAP backends).

    Returns:
        ``[{"file": f, "ranking": [{"label", "score", ...}, ...]}, ...]`` in input order. For
        CLAP backends ``score`` is the softmax (or sigmoid) probability and ``logit`` the
        scaled cosine; for ``bridge`` ``score`` is the bridge compatibility (not a probability).
    """
    labels = _check_labels(labels)
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, not {top_k}")
    clips = _clips(files)
    for clip in clips:  # refuse oversized inputs before decoding anything
        _check_size(clip.audio_path)
    method, settings = zero_shot_classifier(backend, model, multi_label)
    space = method.space
    texts = class_texts(_generator(templates, settings), labels)
    classes = Classes(labels, class_embeddings(texts, space.text_encoder, labels))
    batch = Batch({space.audio_name: encode_clips(space.audio_encoder, clips)})
    logits = method.score(batch, classes)
    probs = method.probabilities(batch, classes) if space.logit_scale is not None else None
    out = []
    for i, f in enumerate(files):
        key = logits[i] if probs is None else probs[i]
        order = np.argsort(-key, kind="stable")[: top_k or len(labels)]
        ranking = []
        for c in order:
            item = {"label": labels[c], "score": float(key[c])}
            if probs is not None:
                item["logit"] = float(logits[i, c])
            ranking.append(item)
        out.append({"file": str(f), "ranking": ranking})
    return out


# ---------------------------------------------------------------------------------------------
# retrieval


def _index_clips(inputs: Sequence[str | Path], data_dir: str | None = None) -> list[Clip]:
    """Clips of a collection: one CSV dataset (generic reader) or files/folders."""
    if len(inputs) == 1 and str(inputs[0]).lower().endswith(".csv"):
        from harken.data.readers import read_dataset

        return list(read_dataset(str(inputs[0]), data_dir).clips)
    return [Clip(clip_id=f, audio_path=Path(f).resolve()) for f in expand_inputs(inputs)]


def index(
    inputs: Sequence[str | Path],
    out: str | Path,
    backend: str = "bridge",
    search_backend: str = "auto",
    store_dir: str | Path | None = None,
    progress: bool = True,
) -> EmbeddingIndex:
    """Embed a collection (files, folders, or one dataset CSV) and save a search index.

    The audio embeddings go through the feature store (resumable, reused by other commands);
    the index holds the joint-space vectors ``a(x)`` and the absolute file paths.

    Args:
        inputs: Audio/video files, folders, or a single CSV in the generic dataset layout.
        out: Index folder to write (replaced atomically).
        backend: Joint space (see :func:`predict`).
        search_backend: ``auto`` (exact below 50k clips, FAISS above when installed),
            ``exact`` or ``faiss``.
        store_dir: Feature-store folder (default ``$HARKEN_CACHE_DIR/features``).
    """
    clips = _index_clips(inputs)
    if not clips:
        raise DataError("nothing to index: no audio files found in the inputs")
    for clip in clips:
        if not Path(clip.audio_path).exists():
            raise DataError(f"{clip.audio_path}: file not found")
        _check_size(clip.audio_path)
    space = joint_space(backend)
    store = FeatureStore(Path(store_dir) if store_dir else None, progress=progress)
    features = store.get("files", space.audio_encoder, clips)
    vectors = space.audio_vectors(features)
    meta = {"space": backend, "space_config": space.config(), "clips": [c.clip_id for c in clips]}
    files = [str(Path(c.audio_path).resolve()) for c in clips]
    built = EmbeddingIndex.build(vectors, files, meta, backend=search_backend)
    built.save(Path(out))
    return built


def search(
    index_dir: str | Path,
    query: str | None = None,
    audio: str | Path | None = None,
    top_k: int = 10,
    templates: str | Sequence[str] | None = None,
) -> list[dict]:
    """Search an index with a text query or an audio clip.

    Args:
        index_dir: A folder written by :func:`index` / ``harken index``.
        query: Text to search for (text → audio).
        audio: An audio file to search with (audio → audio).
        top_k: Number of results.
        templates: Embed the text query through a prompt ensemble (as class labels are in
            :func:`predict`); default: the query text as given.

    Returns:
        ``[{"file": absolute path, "score": float}, ...]``, best first. Text queries score by
        the joint space (``λ · a(x)ᵀ u(t)``; FAISS on large indexes); audio queries by the
        cosine of the stored vectors (exact).
    """
    if (query is None) == (audio is None):
        raise ConfigError("give either a text query or --audio FILE (not both)")
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, not {top_k}")
    idx = EmbeddingIndex.load(Path(index_dir))
    space = joint_space(idx.meta["space"])
    if space.config() != idx.meta["space_config"]:
        raise ConfigError(
            f"{index_dir}: built with a different model configuration than "
            f"{idx.meta['space']!r} loads now; rebuild it with `harken index`"
        )
    if query is not None:
        if not query.strip():
            raise ConfigError("the text query is empty")
        if templates is None:
            emb = space.text_encoder.embed([query.strip()])
        else:
            texts = class_texts(CachedGenerator(TemplateGenerator(templates)), [query.strip()])
            emb = class_embeddings(texts, space.text_encoder, [query.strip()])
        vectors = space.text_vectors(emb)
        scores, rows = idx.search(np.asarray(vectors, np.float32), top_k)
        scores = scores * (space.logit_scale or 1.0)
    else:
        if not Path(audio).exists():
            raise DataError(f"{audio}: file not found")
        _check_size(Path(audio))
        clip = Clip(clip_id=str(audio), audio_path=Path(audio))
        query = space.audio_query_vectors(encode_clips(space.audio_encoder, [clip]))
        # audio → audio is the cosine of the stored vectors (exact: a clip finds itself first)
        unit = l2_normalize(idx.embeddings).astype(np.float32)
        scores, rows = exact_search(unit, np.asarray(query, np.float32), min(top_k, len(idx)))
    return [
        {"file": idx.files[j], "score": float(v)} for v, j in zip(scores[0], rows[0], strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# benchmarks


def bench_zeroshot(
    datasets: Sequence[str],
    out: str | Path = "runs/bench-zeroshot",
    backend: str = "bridge",
    data_dir: str | None = None,
    store_dir: str | None = None,
    generator: str = "template:harken",
) -> dict:
    """Training-free zero-shot accuracy of one backend on several datasets (MS-CLAP Table 2
    style): every class of each dataset is a candidate; one run folder per dataset under
    ``out`` and one table (``bench.json``, ``bench.md``) over all of them.

    Args:
        datasets: Registered dataset names (``kitchen20``) or generic CSV files.
        out: Output folder.
        backend: Joint space (see :func:`predict`).
        data_dir: Dataset folder for registered names (default ``$HARKEN_DATA_DIR``).
        store_dir: Feature-store folder.
        generator: Class-knowledge generator (default: the ``harken`` prompt ensemble).
    """
    if not datasets:
        raise ConfigError("give at least one dataset (--datasets kitchen20 my_clips.csv)")
    data_dir = data_dir or os.environ.get("HARKEN_DATA_DIR")
    out = Path(out)
    method = f"zeroshot:{backend}"
    rows = []
    for i, name in enumerate(datasets):
        slug = f"{i:02d}-" + "".join(ch if ch.isalnum() else "-" for ch in Path(name).stem)
        config = ExperimentConfig(
            dataset=name,
            data_dir=data_dir,
            generator=generator,
            protocol="all-classes",
            methods=[method],
            seeds=[0],
            store_dir=store_dir,
        )
        results = run_experiment(config, out / slug)
        r = results["methods"][method]
        rows.append(
            {
                "dataset": results["dataset"],
                "classes": results["protocol"]["test_classes_per_fold"][0],
                "run": slug,
                **{m: r[m]["mean"] for m in ("UA", "WA", "UP")},
                "chance_UA": results["chance"]["UA"],
                "text_to_audio_mAP@10": r["retrieval"]["text_to_audio"]["mAP@10"]["mean"],
                "audio_to_text_R@1": r["retrieval"]["audio_to_text"]["R@1"]["mean"],
            }
        )
    table = {"backend": backend, "generator": generator, "datasets": rows}
    folder = RunFolder(out)
    folder.write_json("bench.json", table)
    folder.write_text("bench.md", bench_markdown(table))
    folder.write_manifest(
        config={
            "datasets": list(datasets),
            "backend": backend,
            "generator": generator,
            "data_dir": data_dir,
        }
    )
    return table


def bench_markdown(table: dict) -> str:
    """The zero-shot benchmark table (one row per dataset)."""
    lines = [
        f"# zero-shot classification — backend `{table['backend']}`",
        "",
        "| dataset | classes | UA | WA | UP | chance UA | t→a mAP@10 | a→t R@1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table["datasets"]:
        lines.append(
            f"| {r['dataset']} | {r['classes']} | {r['UA']:.3f} | {r['WA']:.3f} | {r['UP']:.3f} "
            f"| {r['chance_UA']:.3f} | {r['text_to_audio_mAP@10']:.3f} "
            f"| {r['audio_to_text_R@1']:.3f} |"
        )
    return "\n".join(lines) + "\n"
