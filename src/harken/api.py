"""The Python API: the same verbs as the CLI (``run``, ``demo``, ``predict``, ``embed``,
``index``, ``search``, ``export``, ``bench_zeroshot``), plus :class:`Classifier` (labels chosen
and embedded once) and :func:`embed_text`.

>>> from harken import api
>>> clip = "../shared/data/kitchen20/audio/blender/0-158737-A-0.flac"
>>> result = api.predict(clip, ["chop onion", "pour water", "blender"])
>>> result.label, result.score_kind in api.SCORE_KINDS
('blender', True)
>>> api.embed_text(["chop onion", "pour water"]).shape
(2, 384)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harken.classify import (
    SCORE_KINDS,
    ArrayInput,
    Classifier,
    FileInput,
    LabelScore,
    Prediction,
    Predictions,
    Skipped,
    as_inputs,
    check_file,
    check_top_k,
    embed_inputs,
    preflight,
)
from harken.data.manifest import Clip
from harken.encoders.base import get_encoder
from harken.errors import AudioError, ConfigError, DataError
from harken.knowledge.base import get_generator
from harken.knowledge.cache import CachedGenerator
from harken.knowledge.classes import class_embeddings, class_texts
from harken.knowledge.templates import TemplateGenerator, humanize
from harken.methods.base import get_method
from harken.methods.conse import l2_normalize
from harken.methods.joint import JointSpace, get_joint_space
from harken.methods.zeroshot import ZeroShot
from harken.store.atomic import NpyRowWriter, atomic_write_text
from harken.store.features import BadClip, FeatureStore, FillReport, Usable, encode_clips
from harken.store.index import EmbeddingIndex, exact_search
from harken.store.runs import RunFolder

if TYPE_CHECKING:  # imported where used: `import harken.api` stays fast
    from harken.experiment import ExperimentConfig

MAX_PREDICT_SECONDS = 3600.0

__all__ = [
    "SCORE_KINDS",
    "Classifier",
    "Embedded",
    "LabelScore",
    "Prediction",
    "Predictions",
    "Skipped",
    "bench_zeroshot",
    "demo",
    "embed",
    "embed_text",
    "export",
    "index",
    "predict",
    "report",
    "run",
    "search",
]


def run(
    config: str | Path | ExperimentConfig, out: str | Path, mode: str = "new", **overrides
) -> dict:
    """Run one experiment from a TOML file (or config object) into the folder ``out``.

    ``mode``: ``new`` (``out`` must be empty), ``overwrite`` (clear an earlier harken run
    there) or ``resume`` (continue it; the config must be the recorded one).
    """
    from harken.experiment import ExperimentConfig, run_experiment

    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_toml(Path(config), **overrides)
    return run_experiment(config, Path(out), mode=mode)


def report(run_dir: str | Path, out: str | Path | None = None, maps: bool = True) -> Path:
    """Write the HTML report of a run folder (figures inline, so it opens offline) and its
    figures as PNG files beside it.

    Args:
        run_dir: A folder written by :func:`run` (or the demo), :func:`detect` (``out``),
            :func:`bench_detect` or :func:`bench_zeroshot` (which also reports each dataset's
            run).
        out: The HTML file (default ``RUN_DIR/report.html``; figures in ``RUN_DIR/report/``).
            An existing file or figure folder that harken did not write is refused.
        maps: Also draw the class-text heatmaps and the t-SNE clip map (loads the run's
            encoders and reads its features from the feature store).

    Returns:
        The HTML file's path.

    Raises:
        DataError: ``run_dir`` is no folder harken reports on, or ``out`` would replace a
            file harken did not write.
    """
    from harken.reports.html import write_report

    return write_report(run_dir, out, maps=maps)


#: The demo's tasks: ``zsl`` (class-disjoint k-fold and all-classes), ``gzsl`` and ``mc3`` (the
#: SoundingActions evaluations). ``all`` (``make demo``) runs :data:`DEFAULT_DEMO_TASKS`.
DEMO_TASKS = {
    "zsl": ("kfold", "all-classes"),
    "gzsl": ("gzsl",),
    "mc3": ("discovery", "retrieval-avmini", "retrieval", "linear-probe"),
}
DEFAULT_DEMO_TASKS = ("zsl", "gzsl")

#: MC3 and the baselines / ablations of its Table 2, each a method name.
MC3_VARIANTS = [
    "mc3",
    "clap-style",
    "cm-acc-style",
    "cmc",
    "imagebind-style",
    "mc3-no-consensus",
    "mc3-no-contrastive",
    "mc3-no-align",
]

#: Optimiser settings of the mc3 demo. The paper's (Adam, lr 3e-5, batch 256, 5 epochs per
#: stage) move heads little on a few hundred clips — one step per epoch on av-mini — so the
#: demo trains longer at a larger rate; these were set once, not tuned on any result.
MC3_DEMO_TRAINING = {"lr": 1e-3, "batch_size": 64, "epochs": 50}

#: Audio features every trainable GZSL method of the demo reads (the fusion expert's too).
GZSL_AUDIO = ["aisfx", "yamnet"]


def demo_configs(data_dir: str | None = None, **overrides) -> dict[str, ExperimentConfig]:
    """Every demo experiment (:data:`DEMO_TASKS`): the Kitchen20 zero-shot ones and
    :func:`mc3_demo_configs`.

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
    return {**zsl_demo_configs(common, trained), **mc3_demo_configs(data_dir, **overrides)}


def mc3_demo_configs(data_dir: str | None = None, **overrides) -> dict[str, ExperimentConfig]:
    """The SoundingActions demo (``harken demo --task mc3``; Chen et al. 2024 §6).

    * ``discovery``: av-mini's VGGSounder audible/visible tags as sounding / not-sounding pairs
      (``avmini:sounding``); MC3 and every Table-2 baseline and ablation trained on half of the
      recordings (audio aiSFX, video EfficientNet-Lite0 over 4 frames, narration MiniLM),
      AV and AL discovery on the other half; 3 seeds. Toy scale.
    * ``retrieval-avmini``: the same models, instance retrieval in all six directions on
      av-mini's held-out clips. Toy scale.
    * ``retrieval``: Kitchen20 audio ↔ class text retrieval by class (the A–L half: Kitchen20
      has no video), ``clap-style``, ``mc3`` and ``contrastive`` trained on half of the
      recordings.
    * ``linear-probe``: Kitchen20's 20 classes from frozen aiSFX and YAMNet embeddings and from
      the audio heads of ``contrastive`` and ``mc3`` (C chosen on validation recordings).
    """
    from harken.experiment import ExperimentConfig

    data_dir = data_dir or os.environ.get("HARKEN_DATA_DIR")
    common = {"data_dir": data_dir, **overrides}
    av = {"audio": "aisfx", "video": "efficientnet-lite0", **MC3_DEMO_TRAINING}
    audio_only = {"audio": "aisfx", "video": None, **MC3_DEMO_TRAINING}
    k20_heads = {
        "clap-style": audio_only,
        "mc3": audio_only,
        "contrastive": {"features": ["aisfx"]},
    }
    return {
        "discovery": ExperimentConfig(
            dataset="avmini:sounding",
            protocol="discovery",
            frames=4,
            methods=list(MC3_VARIANTS),
            method_options={v: dict(av) for v in MC3_VARIANTS},
            seeds=[0, 1, 2],
            **common,
        ),
        "retrieval-avmini": ExperimentConfig(
            dataset="avmini",
            protocol="retrieval",
            protocol_options={"group_by": "clip"},
            frames=4,
            methods=list(MC3_VARIANTS),
            method_options={v: dict(av) for v in MC3_VARIANTS},
            seeds=[0, 1, 2],
            **common,
        ),
        "retrieval": ExperimentConfig(
            dataset="kitchen20",
            protocol="retrieval",
            methods=list(k20_heads),
            method_options=k20_heads,
            seeds=[0, 1, 2],
            **common,
        ),
        "linear-probe": ExperimentConfig(
            dataset="kitchen20",
            protocol="linear-probe",
            protocol_options={"features": ["aisfx", "yamnet"]},
            methods=["contrastive", "mc3"],
            method_options={"contrastive": k20_heads["contrastive"], "mc3": audio_only},
            seeds=[0, 1, 2],
            **common,
        ),
    }


def zsl_demo_configs(common: dict, trained: dict) -> dict[str, ExperimentConfig]:
    """The Kitchen20 zero-shot (k-fold, all-classes) and GZSL demo experiments."""
    from harken.experiment import ExperimentConfig

    return {
        "kfold": ExperimentConfig(
            protocol="kfold",
            protocol_options={"folds": 5, "n_test": 4, "n_dev": 3},
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
            protocol_options={"gzsl_splits": 5},
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


def demo_heading(name: str, results: dict) -> str:
    """The line printed above a demo experiment's table."""
    p = results["protocol"]
    if name == "gzsl":
        return (
            f"Kitchen20, generalised zero-shot: {len(p['splits'])} splits × seeds; S / U on "
            "seen / unseen test clips among all 20 classes, HM, ZSL among the unseen ones"
        )
    if "test_classes_per_fold" in p:
        n = p["test_classes_per_fold"]
        return (
            f"Kitchen20, {name}: {len(n)} fold(s), {n[0]} test classes each; unseen-class "
            "scores, mean ± std over folds × seeds"
        )
    return f"{results['dataset']}, {name}"


def demo(
    data_dir: str | None = None,
    out: str | Path = "runs/demo",
    task: str = "all",
    mode: str = "overwrite",
    reports: bool = True,
    jobs: int | None = None,
    **overrides,
) -> dict:
    """Run the demo experiments of ``task`` into ``out/<experiment>``: ``zsl`` (``kfold``,
    ``all-classes``), ``gzsl`` (``gzsl``), ``mc3`` (``discovery``, ``retrieval-avmini``,
    ``retrieval``, ``linear-probe``) or ``all`` (zsl and gzsl: what ``make demo`` runs).

    ``mode`` defaults to ``overwrite``: the demo's folders are harken's own output, so a second
    demo replaces them (features and descriptions stay cached: it only re-scores); a folder
    harken did not write is still refused. ``resume`` continues interrupted demo runs.

    With ``reports`` (default) each experiment's folder also gets its HTML report
    (``out/<experiment>/report.html``, figures in ``report/``, linked from ``results.md``).

    **Every core.** On a machine with more than one core the demo encodes with the ``process``
    engine (one single-threaded worker per core; ``engine=`` overrides it) and runs up to
    ``jobs`` experiments at once, each in its own process (default: the cores, at most the
    number of experiments; ``jobs=1`` runs them one after another in this process). Experiments
    meeting in one feature-store folder take turns (:func:`~harken.store.features.
    encoding_lock`), so no clip is encoded twice; each experiment is seeded on its own, so the
    results are the same whatever ``jobs`` is.

    Raises:
        ConfigError: an unknown task or a ``jobs`` that is not a positive integer; any error
            of an experiment (the others are finished first: their folders resume).
    """
    if task != "all" and task not in DEMO_TASKS:
        raise ConfigError(f"demo task must be one of {[*DEMO_TASKS, 'all']}, not {task!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"--jobs must be a positive integer, not {jobs!r}")
    tasks = DEFAULT_DEMO_TASKS if task == "all" else (task,)
    names = [n for t in tasks for n in DEMO_TASKS[t]]
    from harken.encoders.threads import cpu_count

    cores = max(1, cpu_count())
    if cores > 1:
        overrides.setdefault("engine", "process")
    configs = demo_configs(data_dir, **overrides)
    jobs = min(jobs or cores, len(names))
    if jobs == 1:
        return {name: _demo_one(configs[name], Path(out) / name, mode, reports) for name in names}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # never fork a process holding models
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {
            name: pool.submit(_demo_one, configs[name], Path(out) / name, mode, reports)
            for name in names
        }
        failed = [f.exception() for f in futures.values() if f.exception() is not None]
    if failed:
        raise failed[0]
    return {name: future.result() for name, future in futures.items()}


def _demo_one(config: ExperimentConfig, out: Path, mode: str, reports: bool) -> dict:
    """One demo experiment and its report (run in a worker process of :func:`demo`)."""
    from harken.experiment import run_experiment

    results = run_experiment(config, out, mode)
    if reports:
        report(out)
    return results


def _clips(files: Sequence[str | Path]) -> list[Clip]:
    if not files:
        raise ConfigError("no audio files given")
    return [Clip(clip_id=str(f), audio_path=Path(f)) for f in files]


def expand_inputs(inputs: Sequence[str | Path]) -> list[str]:
    """Files as given; folders expand to the audio/video files and WebDataset ``.tar`` shards
    inside them (sorted); a shard brace pattern (``shards-{000..009}.tar``) to its shards."""
    from harken.data.audio import SOUNDFILE_SUFFIXES
    from harken.data.readers.webdataset import expand_shards, is_shard_spec

    media = SOUNDFILE_SUFFIXES | {".mp4", ".mkv", ".webm", ".m4a", ".mov", ".opus", ".tar"}
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in media)
            if not found:
                raise DataError(f"{p}: no audio or video files in this folder")
            out += found
        elif is_shard_spec(item) and not p.is_file():  # a brace pattern, or a missing shard
            out += [str(f) for f in expand_shards(item)]
        else:
            out.append(str(item))
    return out


def expand_sources(inputs: Sequence[str | Path]) -> list[tuple[str, str | None]]:
    """:func:`expand_inputs` with every WebDataset shard expanded to its audio members.

    Returns:
        ``(file, source)`` per input clip: ordinary files as ``(path, None)``; a shard's member
        as ``(its content-addressed copy, "<shard>#<member>")`` (see
        :mod:`harken.data.readers.webdataset`; the shard is streamed, one member in memory).

    Raises:
        DataError: a folder without media, a missing or corrupt shard (naming it and the member).
    """
    from harken.data.readers.webdataset import is_shard_spec, shard_clips

    out: list[tuple[str, str | None]] = []
    for f in expand_inputs(inputs):
        if is_shard_spec(f):
            out += [(str(c.audio_path), c.source) for c in shard_clips([f])]
        else:
            out.append((f, None))
    return out


@dataclass
class Embedded:
    """What :func:`embed` produced.

    Attributes:
        embeddings: float32 ``[N, D]``, one row per usable input in input order (memory-mapped
            from ``out`` when one was written).
        files: The file of each row (None for an array).
        skipped: The inputs that could not be used, with the reason.
        report: The feature store's counts (clips reused from finished shards, encoded, ...;
            None when only arrays were given).
        index: The position of each row's input among the inputs.
    """

    embeddings: np.ndarray
    files: list[str | None]
    skipped: list[Skipped]
    report: FillReport | None
    index: list[int] = field(default_factory=list)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(api.embed(...))`` is the embedding matrix."""
        return np.asarray(self.embeddings, dtype=dtype)

    def __len__(self) -> int:
        return len(self.embeddings)

    def __getitem__(self, item) -> np.ndarray:
        """Rows of :attr:`embeddings` (``embedded[0]`` is the first usable input's)."""
        return self.embeddings[item]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.embeddings.shape


def check_npy_out(out: str | Path) -> Path:
    """Refuse an output path that cannot take a ``.npy`` file, before any work is done.

    An existing file is replaced only when harken wrote it (its row list ``<stem>.files.txt``
    or its sidecar ``<stem>.json`` lies beside it); anything else is never overwritten.

    Raises:
        ConfigError: ``out`` is a folder, lacks the ``.npy`` suffix, its folder is missing, or
            it is a file harken did not write.
    """
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as {out / 'emb.npy'}")
    if out.suffix.lower() != ".npy":
        raise ConfigError(f"--out {out} must end in .npy (numpy array file), e.g. emb.npy")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist; create it first")
    if out.exists() and not (rows_file(out).is_file() or sidecar_file(out).is_file()):
        raise ConfigError(
            f"--out {out} exists and was not written by `harken embed` (no {rows_file(out).name} "
            f"or {sidecar_file(out).name} beside it); choose another name or remove it yourself"
        )
    return out


def rows_file(out: str | Path) -> Path:
    """The list of files beside an ``embed`` output: ``emb.npy`` → ``emb.files.txt``."""
    return Path(out).with_suffix(".files.txt")


def sidecar_file(out: str | Path) -> Path:
    """The record beside an ``embed`` output: ``emb.npy`` → ``emb.json``."""
    return Path(out).with_suffix(".json")


def embed(
    files,
    encoder: str,
    out: str | Path | None = None,
    strict: bool = False,
    store_dir: str | Path | None = None,
    progress: bool = False,
    sample_rate: int | None = None,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> Embedded:
    """Embed audio with an audio ``encoder``: files through the feature store (resumable,
    reused), arrays directly (the same downmix, resampling and encoder).

    With ``out``, rows stream into a ``.npy`` file (written atomically at the end, memory flat
    in the number of files); beside it ``<stem>.files.txt`` lists the file of each row, one per
    line, and ``<stem>.json`` records ``{"encoder", "encoder_config", "dim", "rows", "files",
    "skipped": [{"file", "reason"}], "harken_version"}``.

    Args:
        files: A file, a folder, a numpy array (one clip, with ``sample_rate``), or a list of
            them (see :func:`predict`).
        encoder: Encoder name (``yamnet``, ``aisfx``, ``clap``, ...).
        out: ``.npy`` file to write (checked before any work; files only).
        strict: Fail on the first unusable input instead of skipping it.
        store_dir: Feature-store folder (default ``$HARKEN_CACHE_DIR/features``).
        progress: Show progress while encoding.
        sample_rate: Sample rate of the array inputs (Hz).
        engine: Where missing shards of files are encoded: ``local`` (this process),
            ``process`` (a pool on this machine) or ``ray`` (a Ray cluster); the embeddings
            are the same, bit for bit, on CPU.
        workers: Workers of ``process``/``ray`` (default: the engine's, e.g. this machine's
            cores).
        ray_address: The Ray cluster for ``engine="ray"`` (``auto``, ``ray://host:10001``).

    Raises:
        ConfigError: a bad ``out`` path, ``out`` with arrays, bad inputs, a non-audio encoder
            or engine options that do not fit (``ray`` without the package: how to get it).
        AudioError / DataError: no input could be used (or, with ``strict``, the first one
            that cannot).
    """
    out = check_npy_out(out) if out is not None else None
    inputs, _ = as_inputs(files, sample_rate)
    if out is not None and any(isinstance(i, ArrayInput) for i in inputs):
        raise ConfigError(
            "out= writes the rows of files with their row → file list; for arrays, save the "
            "result yourself: np.save('emb.npy', api.embed(waves, encoder, "
            "sample_rate=sr).embeddings)"
        )
    store = _store(store_dir, progress, engine, workers, ray_address)  # before the model too
    ready, skipped = preflight(inputs, strict)  # before the model loads
    enc = get_encoder(encoder)
    if enc.modality != "audio":
        raise ConfigError(f"encoder {encoder!r} embeds {enc.modality}, not audio")
    if out is None:
        store.progress = False
        emb, kept, bad = embed_inputs(enc, ready, strict, store_dir, store=store)
        every = sorted([*skipped, *bad], key=lambda b: b.index)
        names = [i.name if isinstance(i, FileInput) else None for i in kept]
        return Embedded(emb, names, every, None, [i.index for i in kept])
    return _embed_to_file(enc, ready, skipped, out, strict, store)


def _store(store_dir, progress: bool, engine, workers, ray_address) -> FeatureStore:
    """The feature store of a command, with its engine (checked before any work)."""
    from harken.store.engines import engine_from_options

    executor, n = engine_from_options(engine, workers, ray_address)
    root = Path(store_dir) if store_dir else None
    return FeatureStore(root, progress=progress, engine=executor, workers=n)


def _embed_to_file(enc, ready, skipped, out, strict, store: FeatureStore) -> Embedded:
    """:func:`embed` of files into ``out``, with the row list and the sidecar."""
    from harken import __version__

    clips = [Clip(clip_id=i.name, audio_path=Path(i.path), source=i.source) for i in ready]
    with NpyRowWriter(out, len(clips)) as writer:
        report = store.fill("files", enc, clips, writer.write, skip_bad=not strict)
        bad = set(report.bad_positions)
        kept = [i for i in range(len(clips)) if i not in bad]
        every = sorted(
            [
                *skipped,
                *(
                    Skipped(ready[p].index, ready[p].name, b.reason)
                    for p, b in zip(report.bad_positions, report.bad, strict=True)
                ),
            ],
            key=lambda b: b.index,
        )
        if not kept:
            raise DataError(
                f"none of the {len(ready) + len(skipped)} files could be used; first problem: "
                f"{every[0].reason}"
            )
        names = [ready[i].name for i in kept]
        atomic_write_text(rows_file(out), "".join(f"{n}\n" for n in names))
        record = {
            "encoder": enc.name,
            "encoder_config": enc.config(),
            "dim": int(enc.dim),
            "rows": len(names),
            "files": names,
            "skipped": [{"file": b.file, "reason": b.reason} for b in every],
            "harken_version": __version__,
        }
        text = json.dumps(record, indent=2, default=str, ensure_ascii=False)
        atomic_write_text(sidecar_file(out), text + "\n")
        writer.commit(kept)
    emb = np.load(out, mmap_mode="r", allow_pickle=False)
    return Embedded(emb, names, every, report, [ready[i].index for i in kept])


def embed_text(texts: str | Sequence[str], encoder: str = "minilm") -> np.ndarray:
    """Embed texts with a text encoder (``minilm`` offline; ``sbert:<id>``, ``clap-text``, ...).

    Args:
        texts: The texts (a single string is one text).
        encoder: Text encoder name.

    Returns:
        float32 ``[len(texts), D]``, one row per text in order.

    Raises:
        ConfigError: no texts, an empty or non-string text, or an encoder of another modality.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ConfigError("no texts given to embed")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"text {i} of {len(texts)} is empty or not a string ({text!r})")
    enc = get_encoder(encoder)
    if enc.modality != "text":
        raise ConfigError(
            f"encoder {encoder!r} embeds {enc.modality}, not text; use a text encoder such as "
            "'minilm'"
        )
    return np.asarray(enc.embed(texts), dtype=np.float32)


def _require_some(kept: list[int], bad: list[BadClip], total: int) -> None:
    if not kept:
        raise DataError(
            f"none of the {total} files could be used; first problem: {bad[0].reason}"
            if bad
            else "no files to embed"
        )


def _usable(store: FeatureStore, encoder, clips: list[Clip], strict: bool) -> Usable:
    """The store's embeddings of ``clips``; all must be usable when ``strict``."""
    got = store.get_usable("files", encoder, clips, skip_bad=not strict)
    _require_some(got.kept, got.skipped, len(clips))
    return got


def _sized(clips: list[Clip], strict: bool) -> tuple[list[Clip], list[BadClip]]:
    """Clips whose file exists, is not empty and is within the length limit
    (:func:`harken.classify.check_file`); the others fail (``strict``) or are skipped."""
    ok, bad = [], []
    for clip in clips:
        try:
            check_file(clip.audio_path)
            ok.append(clip)
        except (AudioError, DataError) as exc:
            if strict:
                raise
            reason = str(exc)
            if clip.source:  # a WebDataset member: name it, not harken's copy
                reason = reason.replace(str(clip.audio_path), clip.source)
            bad.append(BadClip(clip, reason))
    return ok, bad


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


#: The bridge joint space's settings a run's ``conse``/``bridge``/``zeroshot`` method records.
SPACE_KEYS = ("top_t", "sim_threshold", "sim_power", "label_text")


def _model_settings(model_dir: str | Path | None) -> dict:
    """Scorer settings: defaults, or the training-free method a run folder chose on dev data.

    The method: among the run's training-free label-bridge methods (``conse``, ``bridge``,
    ``zeroshot``), the one with the best mean *selection* score over folds × seeds — the
    dev/validation figure each fit recorded (bridge: UA on the fold's train+dev classes; GZSL:
    validation HM); test figures never choose. Methods that record no selection score (fixed
    settings, e.g. ``conse``) are taken only when no method has one (then the first listed).
    Its settings: the choice made most often across folds × seeds (ties: the one with the best
    selection score). They become the bridge joint space's ``(T, δ, γ)`` (ConSE is the bridge
    with ``δ = −1, γ = 1``), with the run's tagger, text encoder and knowledge generator.
    """
    # Without a run folder, the bridge writes the tagger's labels in the sound templates with
    # δ = 0.518 (MiniLM; chosen on non-test text, see harken.methods.joint and
    # benchmarks/vocabulary.py; calibrated: harken.methods.calibration), and the labels are
    # described by the ``harken`` prompt ensemble.
    settings = {
        "space_options": {"label_text": "sound", "sim_threshold": 0.518},
        "generator": "template:harken",
        "generator_options": {},
        "fallback_generator": "template:harken",
        "text_encoder": "minilm",
        "tagger": "yamnet",
        "method": "bridge",
    }
    if model_dir is None:
        return settings
    folder = Path(model_dir)
    results, manifest = _read_run(folder)
    config = manifest["config"]
    free = {
        n: _rows(folder, r)
        for n, r in results["methods"].items()
        if not get_method(n).trainable and "top_t" in r.get("config", {})
    }
    if not free:
        raise ConfigError(
            f"{folder}: the run has no training-free label-bridge method (conse, bridge) to "
            "predict with; use --backend instead"
        )
    best, chosen_on = _choose_method(free)
    chosen = _most_common_choice(free[best])
    generators = (
        [config["generator"]] if isinstance(config["generator"], str) else list(config["generator"])
    )
    generator = chosen.get("knowledge") or generators[0]
    settings.update(
        method=best,
        method_chosen_on=chosen_on,
        space_options={k: chosen[k] for k in SPACE_KEYS if k in chosen},
        settings_chosen_on="the most common choice across folds × seeds",
        generator=generator,
        generator_options=config["generator_options"],
        fallback_generator=next(
            (g for g in generators if str(g).startswith("template")), "template:harken"
        ),
        text_encoder=config["text_encoder"],
        tagger=config["tagger"],
    )
    return settings


def _read_run(folder: Path) -> tuple[dict, dict]:
    try:
        results = json.loads((folder / "results.json").read_text())
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{folder}: not a harken run folder ({exc.filename} missing)") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{folder}: damaged results.json or manifest.json ({exc})") from exc
    return results, manifest


def _rows(folder: Path, summary: dict) -> list[dict]:
    """A method's per-fold (k-fold) or per-split (GZSL) rows, each with its chosen config."""
    rows = summary.get("folds") or summary.get("runs") or []
    if not rows or any("config" not in r or "selection" not in r for r in rows):
        raise ConfigError(
            f"{folder}: written by an older harken that did not record each fold's chosen "
            "settings; rerun it (harken run CONFIG --out FOLDER --overwrite)"
        )
    return rows


def _choose_method(free: dict[str, list[dict]]) -> tuple[str, str]:
    """The method with the best mean selection (dev/validation) score, and what it was."""
    scored = {
        n: float(np.mean(v))
        for n, rows in free.items()
        if (v := [r["selection"]["score"] for r in rows if r["selection"]["score"] is not None])
    }
    if not scored:
        first = next(iter(free))
        return first, "no method recorded a dev/validation score: the run's first method"
    best = max(scored, key=lambda n: scored[n])  # first listed on ties
    criteria = sorted({r["selection"]["criterion"] for r in free[best]})
    return best, f"mean {'; '.join(criteria)} = {scored[best]:.4f}"


def _most_common_choice(rows: list[dict]) -> dict:
    """The per-fold config chosen most often (ties: the one with the best selection score)."""
    counts: dict[str, list] = {}
    for r in rows:
        key = json.dumps(r["config"], sort_keys=True)
        score = r["selection"]["score"]
        entry = counts.setdefault(key, [0, float("-inf"), r["config"]])
        entry[0] += 1
        entry[1] = max(entry[1], float("-inf") if score is None else score)
    return max(counts.values(), key=lambda e: (e[0], e[1]))[2]


def _check_labels(labels: Sequence[str]) -> list[str]:
    """Candidate labels, stripped; at least two, none empty, none repeated, and no two that
    become the same text (labels are turned into text by
    :func:`~harken.knowledge.templates.humanize`, and compared case-folded).

    Raises:
        ConfigError: naming the offending labels and what to do.
    """
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a list of strings such as [{labels!r}], not a string")
    out = []
    for i, label in enumerate(labels, 1):
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"candidate label {i} of {len(labels)} is empty ({label!r})")
        out.append(label.strip())
    if len(out) < 2:
        raise ConfigError("give at least two candidate labels (e.g. --labels 'chop,pour')")
    counts = Counter(out)
    duplicates = sorted(x for x, n in counts.items() if n > 1)
    if duplicates:
        raise ConfigError(f"candidate labels contain duplicates: {duplicates}; keep one of each")
    groups: dict[str, list[str]] = {}
    for label in out:
        groups.setdefault(humanize(label).casefold(), []).append(label)
    same = [g for g in groups.values() if len(g) > 1]
    if same:
        shown = "; ".join(", ".join(repr(x) for x in g) for g in same[:5])
        raise ConfigError(
            f"candidate labels that become the same text: {shown}"
            f"{f' (and {len(same) - 5} more groups)' if len(same) > 5 else ''}; "
            "keep one label of each group"
        )
    return out


def _generator(templates: str | Sequence[str] | None, settings: dict):
    if templates is not None:
        return CachedGenerator(TemplateGenerator(templates))
    return CachedGenerator(get_generator(settings["generator"], **settings["generator_options"]))


def _label_texts(
    templates: str | Sequence[str] | None, settings: dict, labels: list[str]
) -> tuple[dict[str, list[str]], dict | None]:
    """The labels' texts from the run's knowledge generator; when it cannot describe them
    (e.g. ``descriptions:kitchen20`` knows only Kitchen20's classes), from the run's templates.
    Returns the texts and, after a fallback, ``{"from", "to", "reason"}``."""
    try:
        return class_texts(_generator(templates, settings), labels), None
    except DataError as exc:
        if templates is not None or settings["generator"] == settings["fallback_generator"]:
            raise
        fallback = {
            "from": settings["generator"],
            "to": settings["fallback_generator"],
            "reason": str(exc),
        }
    generator = CachedGenerator(get_generator(fallback["to"]))
    return class_texts(generator, labels), fallback


_SPACES: dict[tuple, JointSpace] = {}


def joint_space(spec: str = "bridge", **options) -> JointSpace:
    """A joint space, built once per process, argument set and device (models stay loaded
    between ``predict`` / ``search`` calls, as a pipeline object would keep them; a
    ``use_device`` block gets spaces whose encoders load on its device)."""
    key = (spec, tuple(sorted(options.items())), _device_now())
    if key not in _SPACES:
        _SPACES[key] = get_joint_space(spec, **options)
    return _SPACES[key]


def _device_now() -> str:
    """The device of the current ``use_device`` block (``harken.encoders.device``), else cpu."""
    try:
        from harken.encoders.device import current_device
    except ImportError:  # a harken without device placement: everything runs on the CPU
        return "cpu"
    return current_device() or "cpu"


def zero_shot_classifier(
    backend: str = "bridge", model: str | Path | None = None, multi_label: bool = False
) -> tuple[ZeroShot, dict]:
    """The zero-shot scorer ``predict`` uses: a backend's joint space, or a run's settings."""
    s = _model_settings(model)
    activation = "sigmoid" if multi_label else "softmax"
    if model is not None:
        if backend != "bridge":
            raise ConfigError("--model takes its scorer from the run folder; drop --backend")
        # conse/bridge runs chose (T, δ, γ) for plain label names (they record no label_text).
        options = {"label_text": "name", **s["space_options"]}
        space = joint_space("bridge", tagger=s["tagger"], text=s["text_encoder"], **options)
        return ZeroShot(space, activation), s
    options = s["space_options"] if backend == "bridge" else {}
    return ZeroShot(joint_space(backend, **options), activation), s


def predict(
    files,
    labels: Sequence[str],
    model: str | Path | None = None,
    top_k: int | None = None,
    backend: str = "bridge",
    templates: str | Sequence[str] | None = None,
    multi_label: bool = False,
    strict: bool = False,
    store_dir: str | Path | None = None,
    sample_rate: int | None = None,
    device: str | None = None,
) -> Prediction | Predictions:
    """Rank candidate action names for audio, best first: a one-off :class:`Classifier`.

    The inputs are checked (files exist, are not empty, are within the length limit; arrays
    have a usable shape and samples) before any model loads. Keep a :class:`Classifier` to
    rank many inputs against the same labels without choosing and embedding them again.

    Args:
        files: A file, a folder (its audio/video files, sorted), a numpy array (one clip, with
            ``sample_rate``; ``[samples]`` or ``[channels, samples]``), or a list of them.
        labels: Candidate action names (plain language).
        model: A run folder: use the training-free method and settings it chose on dev data
            (see :func:`_model_settings`) and its knowledge settings.
        top_k: Keep the best ``k`` labels per input (default: all).
        backend: Joint space: ``bridge`` (offline default: YAMNet's AudioSet labels bridged to
            the label texts), ``clap[:<hub id or folder>]``, ``msclap[:<2023|weights.pth>]``.
        templates: Prompt ensemble for the labels (a set name such as ``harken``, a JSON/TXT
            file, or one template with ``{}``); default: the ``harken`` ensemble.
        multi_label: Independent sigmoid probabilities instead of a softmax; only for backends
            with a logit scale (CLAP, MS-CLAP), a :class:`ConfigError` otherwise.
        strict: Fail on the first unusable input (missing, empty, silent, corrupt, too long)
            instead of skipping it.
        store_dir: Feature-store folder the file embeddings are cached in (default
            ``$HARKEN_CACHE_DIR/features``).
        sample_rate: Sample rate of the array inputs (Hz).
        device: Where torch encoders run (see :class:`Classifier`).

    Returns:
        A :class:`Prediction` for a single file or array; :class:`Predictions` (a list in input
        order, unusable inputs in ``.skipped``) for a list or a folder. Each has ``file``,
        ``ranking`` (``[LabelScore(label, score, logit)]``, best first) and ``score_kind``:
        ``"probability"`` (softmax over the labels; ``logit`` = the scaled cosine),
        ``"probability (independent)"`` (sigmoid, ``multi_label``) or ``"compatibility"`` (a
        backend without a logit scale: a score, not a probability). When ``model``'s
        knowledge generator cannot describe the labels (written descriptions of other
        classes), the run's templates describe them and ``knowledge_fallback`` says so:
        ``{"from", "to", "reason"}``. ``.to_dict()`` / ``.to_pandas()`` convert them.

    Raises:
        ConfigError: bad labels, ``top_k`` or inputs, or an option the backend does not support.
        AudioError / DataError: a single input cannot be used, none of several can, or (with
            ``strict``) the first that cannot.
    """
    labels = _check_labels(labels)
    check_top_k(top_k)
    inputs, single = as_inputs(files, sample_rate)
    ready, skipped = preflight(inputs, strict)  # before any model loads
    clf = Classifier(
        labels,
        backend,
        model=model,
        templates=templates,
        top_k=top_k,
        multi_label=multi_label,
        device=device,
        strict=strict,
        store_dir=store_dir,
    )
    return clf.predict_ready(ready, skipped, single)


# ---------------------------------------------------------------------------------------------
# retrieval


def _index_clips(inputs: Sequence[str | Path], data_dir: str | None = None) -> list[Clip]:
    """Clips of a collection: one CSV dataset (generic reader) or files/folders/WebDataset
    shards (a member's ``source`` is its ``<shard>#<member>`` address)."""
    if len(inputs) == 1 and str(inputs[0]).lower().endswith(".csv"):
        from harken.data.readers import read_dataset

        return list(read_dataset(str(inputs[0]), data_dir).clips)
    return [
        Clip(clip_id=s or f, audio_path=Path(f).resolve(), source=s)
        for f, s in expand_sources(inputs)
    ]


def index(
    inputs: Sequence[str | Path],
    out: str | Path,
    backend: str = "bridge",
    search_backend: str = "auto",
    store_dir: str | Path | None = None,
    progress: bool = True,
    strict: bool = False,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> EmbeddingIndex:
    """Embed a collection (files, folders, or one dataset CSV) and save a search index.

    The audio embeddings go through the feature store (resumable, reused by other commands);
    the index holds the joint-space vectors ``a(x)`` and the absolute file paths. Unusable
    files (missing, empty, silent, corrupt, too long) are left out and listed in the index's
    ``meta["skipped"]`` (``[{"file", "reason"}]``).

    Args:
        inputs: Audio/video files, folders, or a single CSV in the generic dataset layout.
        out: Index folder to write (replaced atomically; only ever a folder harken wrote).
        backend: Joint space (see :func:`predict`).
        search_backend: ``auto`` (exact below 50k clips, FAISS above when installed),
            ``exact`` or ``faiss``.
        store_dir: Feature-store folder (default ``$HARKEN_CACHE_DIR/features``).
        strict: Fail on the first unusable file instead of leaving it out.
        engine: Where missing shards are encoded (``local``, ``process``, ``ray``; see
            :func:`embed`); the index is the same whichever encodes.
        workers: Workers of ``process``/``ray``.
        ray_address: The Ray cluster for ``engine="ray"``.

    Raises:
        DataError: ``out`` is a folder harken did not write (checked before any work), or no
            file could be used.
        ConfigError: engine options that do not fit (checked before any work).
    """
    EmbeddingIndex.check_target(Path(out))
    store = _store(store_dir, progress, engine, workers, ray_address)
    clips = _index_clips(inputs)
    if not clips:
        raise DataError("nothing to index: no audio files found in the inputs")
    requested = clips
    clips, oversized = _sized(clips, strict)
    space = joint_space(backend)
    got = _usable(store, space.audio_encoder, clips, strict) if clips else None
    if got is None:
        _require_some([], oversized, len(oversized))
    kept = [clips[k] for k in got.kept]
    position = {id(c): i for i, c in enumerate(requested)}
    skipped = sorted(oversized + got.skipped, key=lambda b: position[id(b.clip)])
    vectors = space.audio_vectors(got.embeddings)
    meta = {
        "space": backend,
        "space_config": space.config(),
        "clips": [c.clip_id for c in kept],
        "skipped": [{"file": b.file, "reason": b.reason} for b in skipped],
    }
    if any(c.start is not None or c.end is not None for c in kept):  # for `harken export`
        meta["spans"] = [[c.start, c.end] for c in kept]
    if any(c.labels for c in kept):
        meta["labels"] = [c.labels for c in kept]
    files = [c.source or str(Path(c.audio_path).resolve()) for c in kept]
    built = EmbeddingIndex.build(vectors, files, meta, backend=search_backend)
    built.save(Path(out))
    return built


def export(
    source: str | Path,
    out: str | Path,
    format: str | None = None,
    encoder: str | None = None,
    data_dir: str | Path | None = None,
    store_dir: str | Path | None = None,
    strict: bool = False,
    progress: bool = True,
) -> Path:
    """Export embeddings to Parquet or ``.npy`` + a JSON manifest (:mod:`harken.store.export`).

    Args:
        source: An index folder written by :func:`index` (its rows as stored), or a dataset —
            a registered name (``kitchen20``), a CSV or WebDataset shards — with ``encoder``
            (the encoder's embeddings of its clips from the feature store, encoding those not
            stored yet).
        out: ``*.parquet`` or ``*.npy`` (checked before any work; replaced only when
            ``harken export`` wrote it).
        format: ``parquet`` or ``npy`` (default: from the suffix of ``out``).
        encoder: The encoder of a dataset source (refused with an index).
        data_dir: The dataset's folder (as for :func:`run`).
        store_dir: Feature-store folder (default ``$HARKEN_CACHE_DIR/features``).
        strict: Fail on the first unusable clip of a dataset instead of leaving it out.
        progress: Show progress while encoding.

    Returns:
        The file written.

    Raises:
        ConfigError: a bad ``out``, or a source / encoder combination that does not fit.
        DataError: a corrupt index, a missing dataset, or no usable clip.
    """
    from harken.store import export as exporter

    out_path, fmt = exporter.check_out(out, format)
    folder = Path(source)
    if (folder / "index.json").is_file():
        if encoder is not None:
            raise ConfigError(
                f"{folder} is an index: it holds its own vectors, drop --encoder (or give a "
                "dataset to export an encoder's embeddings)"
            )
        return exporter.write(exporter.index_rows(folder), out_path, fmt)
    if encoder is None:
        raise ConfigError(
            f"{source}: not an index folder (no index.json); to export a dataset's embeddings "
            "give its encoder too, e.g. --encoder yamnet"
        )
    from harken.data.readers import read_dataset

    manifest = read_dataset(str(source), data_dir)
    enc = get_encoder(encoder)
    store = FeatureStore(Path(store_dir) if store_dir else None, progress=progress)
    with exporter.dataset_rows(manifest.name, manifest.clips, enc, store, out_path, strict) as rows:
        return exporter.write(rows, out_path, fmt)


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
    from harken.encoders.device import without_device

    idx = EmbeddingIndex.load(Path(index_dir))
    space = joint_space(idx.meta["space"])
    # the device is not the model: an index built on a GPU is searched on the CPU and back
    if without_device(space.config()) != without_device(idx.meta["space_config"]):
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
        check_file(audio)
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
    mode: str = "new",
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
        mode: ``new`` (``out`` must be empty), ``overwrite`` (clear an earlier benchmark
            there) or ``resume`` (continue it: finished datasets are reused).
    """
    if not datasets:
        raise ConfigError("give at least one dataset (--datasets kitchen20 my_clips.csv)")
    from harken.experiment import ExperimentConfig, run_experiment

    data_dir = data_dir or os.environ.get("HARKEN_DATA_DIR")
    out = Path(out)
    bench_config = {
        "datasets": list(datasets),
        "backend": backend,
        "generator": generator,
        "data_dir": data_dir,
    }
    folder = RunFolder(out, mode)
    folder.begin(bench_config)
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
        results = run_experiment(config, out / slug, "resume" if mode == "resume" else "new")
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
    folder.write_json("bench.json", table)
    folder.write_text("bench.md", bench_markdown(table))
    folder.write_manifest(config=bench_config)
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


# ---------------------------------------------------------------------------------------------
# detection: long recordings as timelines


@dataclass
class Detections:
    """What :func:`detect` found.

    Attributes:
        segments: ``[{"file", "start", "end", "label", "score"}, ...]`` over all files, each
            file's sorted by start.
        timelines: Per file, its :class:`~harken.detection.detector.Timeline` (frame
            boundaries, raw and smoothed ``[N, C]`` scores).
        settings: Backend, score kind, window/hop, smoothing and the per-label thresholds
            (with how each was chosen).
    """

    segments: list[dict]
    timelines: list
    settings: dict

    def to_pandas(self):
        """The segments as a ``pandas.DataFrame`` (columns file, start, end, label, score)."""
        import pandas as pd

        return pd.DataFrame(self.segments, columns=["file", "start", "end", "label", "score"])


def _detection_files(files: Sequence[str | Path]) -> list[str]:
    """The inputs of :func:`detect` (folders expanded), each an existing, non-empty file
    (:func:`~harken.classify.check_file` without the length limit: detect streams any length).

    Raises:
        ConfigError: no files given.
        AudioError: a file is missing or empty (checked before any model loads).
    """
    if isinstance(files, str | Path):
        files = [files]
    if not files:
        raise ConfigError("no audio or video files given")
    found = [f for f, _ in expand_sources(files)]  # a WebDataset shard: its members' copies
    for f in found:
        check_file(f, length_limit=False)
    return found


def _detector(backend, templates, labels, window, hop, smooth, threshold):
    """The detector of :func:`detect` with one threshold for every label, and its space."""
    from harken.detection.detector import Detector, default_smooth
    from harken.detection.scoring import window_score_fn
    from harken.detection.thresholds import default_threshold
    from harken.detection.windows import WindowSpec, default_window

    spec = default_window(backend)
    spec = WindowSpec(spec.window if window is None else window, spec.hop if hop is None else hop)
    space = joint_space(backend)
    texts, _ = _label_texts(templates, _model_settings(None), labels)
    emb = class_embeddings(texts, space.text_encoder, labels)
    theta = default_threshold(backend) if threshold is None else float(threshold)
    smooth = default_smooth(backend) if smooth is None else smooth
    detector = Detector(
        space.audio_encoder,
        window_score_fn(space, emb),
        labels,
        spec,
        smooth,
        {label: theta for label in labels},
    )
    return detector, space


def detect(
    files: Sequence[str | Path] | str | Path,
    labels: Sequence[str],
    backend: str = "bridge",
    templates: str | Sequence[str] | None = None,
    window: float | None = None,
    hop: float | None = None,
    smooth: float | None = None,
    threshold: float | None = None,
    thresholds_from: str | Path | None = None,
    out: str | Path | None = None,
    mode: str = "new",
) -> Detections:
    """Find when each label sounds in long recordings: segments ``{file, start, end, label,
    score}`` and a timeline per file.

    Each file (audio, or a video's audio track) is streamed in bounded memory, scored in
    overlapping windows by the backend (per-label scores, no softmax: see
    :mod:`harken.detection.scoring`), median-smoothed over time, and a segment is emitted
    where a label's smoothed score is above its threshold (:mod:`harken.detection`).

    Args:
        files: Audio/video files or folders.
        labels: Candidate labels (any may be absent from a recording).
        backend: Joint space (see :func:`predict`).
        templates: Prompt ensemble for the labels (see :func:`predict`).
        window, hop: Window length and hop in seconds (default by backend:
            :data:`~harken.detection.windows.DEFAULT_WINDOWS`; ``bridge`` 1 s / 0.5 s).
        smooth: Median-filter length in seconds (default:
            :data:`~harken.detection.detector.DEFAULT_SMOOTH`; 0 = none).
        threshold: One threshold for every label (default:
            :data:`~harken.detection.thresholds.DEFAULT_THRESHOLDS`).
        thresholds_from: A CSV ``file,start,end,label`` of segments annotated on your own
            recordings: each annotated label gets the threshold maximising its event F1 there.
        out: Folder for ``segments.json``, ``segments.csv``, ``timelines/*.png`` and
            ``manifest.json`` (a harken run folder).
        mode: Run-folder mode of ``out`` (``new`` or ``overwrite``).

    Raises:
        ConfigError: bad settings, or both ``threshold`` and ``thresholds_from``.
        DataError: a missing input file or a bad annotations CSV (before any model loads).
    """
    from harken.detection.thresholds import choose_thresholds, read_annotations

    labels = _check_labels(labels)
    if threshold is not None and thresholds_from is not None:
        raise ConfigError("give either --threshold or --thresholds-from, not both")
    paths = _detection_files(files)
    annotations = read_annotations(thresholds_from, labels) if thresholds_from else None
    folder = None
    if out is not None:
        folder = RunFolder(Path(out), mode)
    detector, space = _detector(backend, templates, labels, window, hop, smooth, threshold)
    default = next(iter(detector.thresholds.values()))
    chosen = {c: {"threshold": default, "chosen_on": "default"} for c in labels}
    if threshold is not None:
        chosen = {c: {"threshold": default, "chosen_on": "--threshold"} for c in labels}
    annotated = {}
    if annotations is not None:
        from harken.detection.bench import tables

        annotated = {f: detector.timeline(f) for f in annotations}
        detector.thresholds, chosen = choose_thresholds(
            tables(annotated.values(), labels), annotations, labels, default
        )
    from harken.detection.scoring import score_kind

    settings = {
        "backend": backend,
        "space_config": space.config(),
        "score": score_kind(space),
        **detector.settings(),
        "thresholds": chosen,
        "thresholds_from": str(thresholds_from) if thresholds_from else None,
        "templates": templates,
        "labels": labels,
    }
    timelines, segments = [], []
    for path in paths:
        known = annotated.get(str(Path(path).resolve()))  # scored already: reuse
        timeline = detector.timeline(path) if known is None else replace(known, file=path)
        timelines.append(timeline)
        segments += detector.segments(timeline)
    result = Detections([s.to_dict() for s in segments], timelines, settings)
    if folder is not None:
        _write_detections(folder, result, detector)
    return result


def _write_detections(folder: RunFolder, result: Detections, detector) -> None:
    """``segments.json``/``.csv``, one timeline PNG per file and the manifest."""
    from harken.detection.segments import Segment
    from harken.reports.timeline import plot_timeline

    folder.begin(result.settings)
    folder.write_json("segments.json", result.segments)
    fields = ["file", "start", "end", "label", "score"]
    folder.write_csv("segments.csv", fields, ([s[k] for k in fields] for s in result.segments))
    (folder.path / "timelines").mkdir(exist_ok=True)
    pictures = []
    for i, timeline in enumerate(result.timelines):
        segs = [Segment(**s) for s in result.segments if s["file"] == timeline.file]
        stem = "".join(ch if ch.isalnum() else "-" for ch in Path(timeline.file).stem)
        name = f"timelines/{i:03d}-{stem}.png"
        plot_timeline(
            folder.path / name,
            timeline,
            detector.labels,
            segs,
            detector.thresholds,
            score_name=result.settings["score"].split(" (")[0],
        )
        pictures.append({"file": timeline.file, "timeline": name, "duration_s": timeline.duration})
    folder.write_manifest(config=result.settings, files=pictures)


def bench_detect(
    seeds: Sequence[int] = (0, 1, 2),
    out: str | Path = "runs/bench-detect",
    backend: str = "bridge",
    data_dir: str | None = None,
    mode: str = "new",
) -> dict:
    """Detection benchmark on soundscapes built from real Kitchen20 clips
    (:mod:`harken.detection.bench`): settings chosen on dev soundscapes (folds 1–4), event F1
    and PSDS on test soundscapes (folds 5–9), beside a fixed-window top-label baseline.

    Writes ``results.json``, ``results.md``, ``manifest.json``, the soundscapes and their
    ``ground_truth.csv`` (``file,start,end,label``: usable as ``--thresholds-from``) and the
    test timelines into ``out``.

    Args:
        seeds: Soundscape seeds (one dev and one test set per seed).
        out: Output folder (a harken run folder).
        backend: Joint space (see :func:`predict`).
        data_dir: Folder holding ``kitchen20/`` (default ``$HARKEN_DATA_DIR``).
        mode: ``new`` or ``overwrite``.
    """
    from harken.detection import bench, soundscapes
    from harken.detection.detector import Detector
    from harken.detection.scoring import score_kind, window_score_fn
    from harken.detection.thresholds import choose_thresholds
    from harken.detection.windows import WindowSpec

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("give at least one seed (--seeds 0,1,2)")
    data_dir = data_dir or os.environ.get("HARKEN_DATA_DIR")
    if not data_dir:
        raise ConfigError("give the folder holding kitchen20/ with --data-dir or $HARKEN_DATA_DIR")
    root = Path(data_dir) / "kitchen20"
    dev_clips = bench.kitchen20_clips(root, bench.DEV_FOLDS)
    test_clips = bench.kitchen20_clips(root, bench.TEST_FOLDS)
    for split, clips, folds in (
        ("dev", dev_clips, bench.DEV_FOLDS),
        ("test", test_clips, bench.TEST_FOLDS),
    ):
        if not clips:
            raise DataError(
                f"{root / 'labels.csv'}: no clips in folds {list(folds)}; the {split} "
                "soundscapes are built from them — use the full Kitchen20 labels.csv"
            )
    labels = sorted({label for _, label in dev_clips + test_clips})
    config = {
        "benchmark": "detect",
        "backend": backend,
        "seeds": seeds,
        "data_dir": str(data_dir),
        "split": {"dev_folds": list(bench.DEV_FOLDS), "test_folds": list(bench.TEST_FOLDS)},
        "labels": labels,
        "grid": bench.grid(backend),
        "baseline": {"window_s": bench.BASELINE.window, "hop_s": bench.BASELINE.hop},
    }
    folder = RunFolder(Path(out), mode)
    folder.begin(config)
    sets: dict[str, list] = {"dev": [], "test": []}
    with folder.stage("soundscapes"):
        for seed in seeds:
            for k, (split, clips) in enumerate((("dev", dev_clips), ("test", test_clips))):
                sets[split] += soundscapes.build(
                    clips, seed, k, folder.path / "soundscapes", f"{split}-s{seed}"
                )
    events = {s: {str(x.path): x.events for x in sets[s]} for s in sets}
    durations = {s: {str(x.path): x.duration for x in sets[s]} for s in sets}
    gt_rows = [(x.path.name, *event) for s in sets for x in sets[s] for event in x.events]
    folder.write_csv("soundscapes/ground_truth.csv", ["file", "start", "end", "label"], gt_rows)
    space = joint_space(backend)
    texts, _ = _label_texts(None, _model_settings(None), labels)
    score = window_score_fn(space, class_embeddings(texts, space.text_encoder, labels))
    encoder = space.audio_encoder
    with folder.stage("tune on dev"):
        chosen, tried, dev_scored = bench.tune(encoder, score, events["dev"], labels, backend)
    spec = WindowSpec(chosen["window_s"], chosen["hop_s"])
    detector = Detector(encoder, score, labels, spec, chosen["smooth_s"], {})
    table, per_label = [], {}
    for split in ("dev", "test"):
        with folder.stage(f"detector {split}"):
            scored = dev_scored if split == "dev" else None
            scored = scored or bench.score_all(encoder, list(events[split]), spec, score)
            timelines = [detector.smoothed(p, got) for p, got in scored.items()]
            tabs = bench.tables(timelines, labels)
        if split == "dev":
            per_label, _ = choose_thresholds(tabs, events["dev"], labels, chosen["threshold"])
        for system, thresholds in (
            ("detector (one threshold, chosen on dev)", chosen["threshold"]),
            ("detector (per-label thresholds from dev annotations)", per_label),
        ):
            row = bench.evaluate(tabs, events[split], durations[split], labels, thresholds)
            table.append({"system": system, "split": split, **row})
        with folder.stage(f"baseline {split}"):
            base = bench.baseline_timelines(
                bench.score_all(encoder, list(events[split]), bench.BASELINE, score)
            )
            row = bench.evaluate(
                bench.tables(base, labels, raw=True),
                events[split],
                durations[split],
                labels,
                bench.NOT_PICKED / 2,
            )
        table.append({"system": "baseline (5 s windows, top label)", "split": split, **row})
        if split == "test":
            one = {c: chosen["threshold"] for c in labels}
            _bench_pictures(folder, timelines, labels, one, events["test"])
    results = {
        "backend": backend,
        "score": score_kind(space),
        "seeds": seeds,
        "labels": labels,
        "split": {
            "dev_folds": list(bench.DEV_FOLDS),
            "test_folds": list(bench.TEST_FOLDS),
            "dev_soundscapes": len(sets["dev"]),
            "test_soundscapes": len(sets["test"]),
            "dev_events": sum(len(x.events) for x in sets["dev"]),
            "test_events": sum(len(x.events) for x in sets["test"]),
        },
        "chosen_on_dev": chosen,
        "per_label_thresholds_from_dev": per_label,
        "tried_on_dev": tried,
        "table": table,
    }
    folder.write_json("results.json", results)
    folder.write_text("results.md", bench.results_markdown(results))
    folder.write_manifest(
        config=config,
        split=results["split"],
        soundscapes={
            s: [{"file": str(x.path), "duration_s": x.duration, "clips": x.sources} for x in xs]
            for s, xs in sets.items()
        },
        space_config=space.config(),
        chosen_on_dev=chosen,
    )
    return results


def _bench_pictures(folder, timelines, labels, thresholds, events) -> None:
    """One timeline PNG per test soundscape, with its annotated events beneath."""
    from harken.detection.segments import extract_segments
    from harken.reports.timeline import plot_timeline

    (folder.path / "timelines").mkdir(exist_ok=True)
    for timeline in timelines:
        segs = extract_segments(
            timeline.file, timeline.boundaries, timeline.smoothed, labels, thresholds
        )
        plot_timeline(
            folder.path / "timelines" / f"{Path(timeline.file).stem}.png",
            timeline,
            labels,
            segs,
            thresholds,
            events=events[timeline.file],
        )
