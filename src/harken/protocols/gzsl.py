"""The generalised zero-shot protocol (``protocol = "gzsl"``) and the published-features run.

Two stages per split (Kurzendörfer et al. 2024 §4.1; Mercea et al. 2022):

1. :func:`stage_one` trains a fresh method on ``stage_1_train`` and, on the validation clips
   (``stage_1_val_seen ∪ stage_1_val_unseen``, all stage-1 classes as candidates), chooses the
   epoch (through the method's ``criterion``: validation HM at the best calibration) and the
   calibrated-stacking constant ``γ``. It receives **only** training and validation clips.
2. :func:`stage_two` trains another fresh method on ``stage_2_train`` (train ∪ val) replaying
   those choices — the same number of epochs and learning-rate drops, no validation data — and
   scores the test clips once, with ``γ`` fixed: S, U, HM with all stage-2 classes as
   candidates, ZSL with only the unseen test classes.

No function that sees a test clip chooses anything, so nothing can be selected on test (the
defect of KDA's published code, which picked calibration and epochs on its test split).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harken.errors import ConfigError, DataError
from harken.knowledge.base import get_generator
from harken.knowledge.cache import CachedGenerator
from harken.knowledge.classes import class_knowledge, class_texts, export_descriptions
from harken.methods.base import Batch, Classes, Method
from harken.metrics.classification import mean_std
from harken.metrics.gzsl import (
    DEFAULT_GRID,
    calibrated_stacking,
    calibration_curve,
    gzsl_report,
    select_calibration,
)
from harken.protocols.base import PROTOCOLS, Protocol, at_least
from harken.protocols.common import chosen_configs, compact
from harken.protocols.gzsl_splits import (
    DISJOINT_STAGES,
    STAGES,
    GzslSplit,
    make_gzsl_split,
    read_gzsl_split,
    write_gzsl_split,
)
from harken.reports.results import GZSL_METRICS, gzsl_markdown, gzsl_table
from harken.store.features import array_digest
from harken.store.runs import RunFolder

if TYPE_CHECKING:
    from harken.experiment import Experiment, ExperimentConfig

CHOSEN_ON = "stage_1_val_seen ∪ stage_1_val_unseen (validation HM)"
#: What every GZSL method chooses its epoch, settings and ``γ`` on.
SELECTION_CRITERION = "HM on stage-1 validation clips (stage_1_val_seen ∪ stage_1_val_unseen)"


class ValidationHM:
    """Selection criterion of stage 1: the best validation HM over the ``γ`` grid.

    ``criterion(scores, labels, names)`` with ``names`` = the stage-1 classes (seen and
    validation-unseen) and ``seen`` = the stage-1 training classes.
    """

    def __init__(self, seen: Sequence[str], grid: Sequence[float] = DEFAULT_GRID) -> None:
        self.seen = list(seen)
        self.grid = tuple(grid)

    def __call__(self, scores: np.ndarray, labels: list[str], names: list[str]) -> float:
        return select_calibration(scores, labels, names, self.seen, self.grid)[1]


@dataclass
class StageOneChoice:
    """What stage 1 chose on validation data (all stage 2 may use)."""

    gamma: float
    val: dict[str, float]
    fit_log: dict
    #: The method's settings after the stage-1 fit (what it chose, e.g. bridge's ``(T, δ, γ)``).
    config: dict | None = None
    #: S, U, HM on the validation clips at every ``γ`` of the grid (for the report's figure).
    curve: dict | None = None


def calibration_grid(method: Method, default: Sequence[float] | None) -> tuple[float, ...]:
    """The ``γ`` grid for ``method``: the run's grid, else the method's own (methods whose
    scores live on a small scale, e.g. cosine similarities, declare a finer one), else
    ClipClap's 0–5 in 76 steps."""
    if default is not None:
        return tuple(default)
    return tuple(getattr(method, "calibration_grid", None) or DEFAULT_GRID)


def stage_one(
    method: Method,
    train: Batch,
    val: Batch,
    classes: Classes,
    split: GzslSplit,
    grid: Sequence[float] | None,
    seed: int,
) -> StageOneChoice:
    """Fit on ``stage_1_train``; choose epoch and ``γ`` on the validation clips only."""
    seen, candidates = list(split.seen_1), list(split.seen_1) + list(split.unseen_1)
    grid = calibration_grid(method, grid)
    method.criterion = ValidationHM(seen, grid)
    method.n_candidates = len(candidates)
    val_classes = classes.subset(candidates)
    log = method.fit(train, classes.subset(seen), val, val_classes, seed)
    scores = method.score(val, val_classes)
    gamma, _ = select_calibration(scores, val.labels, candidates, seen, grid)
    val_report = gzsl_report(scores, val.labels, candidates, seen, gamma)
    curve = calibration_curve(scores, val.labels, candidates, seen, grid)
    return StageOneChoice(gamma, val_report, log, method.config(), curve)


def stage_two(
    method: Method,
    choice: StageOneChoice,
    train: Batch,
    test: Batch,
    classes: Classes,
    split: GzslSplit,
    seed: int,
) -> tuple[dict[str, float], np.ndarray, list[str], dict]:
    """Retrain on ``stage_2_train`` with stage 1's choices; score the test clips once.

    Returns the report (S, U, HM at ``γ``; ZSL among unseen classes), the test scores, their
    column names and the fit log.
    """
    seen, candidates = list(split.seen_2), list(split.seen_2) + list(split.unseen_2)
    method.replay(choice.fit_log)
    method.n_candidates = len(candidates)
    log = method.fit(train, classes.subset(seen), None, None, seed)
    test_classes = classes.subset(candidates)
    scores = method.score(test, test_classes)
    return gzsl_report(scores, test.labels, candidates, seen, choice.gamma), scores, candidates, log


def run_split(
    make_method: Callable[[], Method],
    data: Batch,
    classes: Classes,
    split: GzslSplit,
    grid: Sequence[float] | None,
    seed: int,
) -> dict:
    """Both stages of one split and seed; returns the row of ``results.json``."""
    index = {cid: i for i, cid in enumerate(data.clip_ids)}

    def part(*stages: str) -> Batch:
        ids = [cid for s in stages for cid in split.clips[s]]
        missing = [cid for cid in ids if cid not in index]
        if missing:
            raise DataError(
                f"GZSL split {split.name!r}: clips {missing[:3]} ({len(missing)} in all) are "
                "not in the dataset; check the split file against the data"
            )
        return data.subset(np.array([index[cid] for cid in ids], dtype=int))

    choice = stage_one(
        make_method(),
        part("stage_1_train"),
        part("stage_1_val_seen", "stage_1_val_unseen"),
        classes,
        split,
        grid,
        seed,
    )
    test = part("stage_2_test_seen", "stage_2_test_unseen")
    report, scores, names, log2 = stage_two(
        make_method(), choice, part("stage_2_train"), test, classes, split, seed
    )
    # the predictions the reported S and U count: seen-class scores lowered by the chosen γ
    calibrated = calibrated_stacking(scores, np.isin(names, list(split.seen_2)), choice.gamma)
    pred = [names[i] for i in np.argmax(calibrated, axis=1)]
    grid_used = choice.curve["gamma"] if choice.curve else calibration_grid(None, grid)
    test_curve = calibration_curve(scores, test.labels, names, list(split.seen_2), grid_used)
    return {
        "split": split.name,
        "seed": seed,
        **report,
        "calibration": {"value": choice.gamma, "chosen_on": CHOSEN_ON},
        "validation": choice.val,
        # S / U / HM at every γ of the grid, on validation (where γ was chosen) and on test
        # (shown, never used to choose)
        "calibration_curve": {
            "gamma": test_curve["gamma"],
            "validation": {k: choice.curve[k] for k in ("S", "U", "HM")} if choice.curve else None,
            "test": {k: test_curve[k] for k in ("S", "U", "HM")},
        },
        "stage_1": compact(choice.fit_log),
        "stage_2": compact(log2),
        "config": choice.config,
        "selection": {"criterion": SELECTION_CRITERION, "score": float(choice.val["HM"])},
        "_predictions": [list(p) for p in zip(test.clip_ids, test.labels, pred, strict=True)],
    }


def summarise_gzsl(rows: list[dict]) -> dict:
    """Per method: ``{"S", "U", "HM", "ZSL": {"mean", "std"}, "calibration": {"value",
    "chosen_on", "values"}, "runs": rows}`` over split × seed rows."""
    gammas = [r["calibration"]["value"] for r in rows]
    return {
        **{m: mean_std([r[m] for r in rows]) for m in GZSL_METRICS},
        "calibration": {
            "value": float(np.median(gammas)),
            "chosen_on": CHOSEN_ON,
            "values": gammas,
        },
        "runs": rows,
    }


def chance_gzsl(splits: list[GzslSplit]) -> dict[str, float]:
    """Expected S/U/HM/ZSL of a uniform random guess: ``1/K`` among all ``K`` stage-2 classes
    (S, U, HM) and ``1/|U₂|`` among the unseen ones (ZSL), averaged over splits."""
    k = [1 / (len(s.seen_2) + len(s.unseen_2)) for s in splits]
    zsl = [1 / len(s.unseen_2) for s in splits]
    return {
        "S": float(np.mean(k)),
        "U": float(np.mean(k)),
        "HM": float(np.mean(k)),
        "ZSL": float(np.mean(zsl)),
    }


def build_views(exp: Experiment, classes: Classes, views: dict) -> tuple[Classes, dict]:
    """Add the configured class-knowledge *views* (e.g. ClipClap's ``clip`` and ``clap`` text
    embeddings; KDA's LLM descriptions) to ``classes.alternatives`` / ``classes.members``.

    ``views = {name: {"generator": spec, "text_encoder": encoder}}``; each view's texts are
    generated, embedded with its text encoder, L2-normalised and averaged per class (the
    prompt-ensemble rule). Returns the classes and the views' texts.
    """
    alternatives, members, texts_out = dict(classes.alternatives), dict(classes.members), {}
    for name, spec in views.items():
        if not isinstance(spec, dict) or "generator" not in spec:
            raise ConfigError(
                f"views.{name}: give {{generator = '...', text_encoder = '...'}}, not {spec!r}"
            )
        generator = CachedGenerator(get_generator(spec["generator"]))
        texts = class_texts(generator, classes.names)
        encoder = exp.encoder(spec.get("text_encoder", exp.config.text_encoder))
        alternatives[name], members[name] = class_knowledge(texts, encoder, classes.names)
        texts_out[name] = texts
    return Classes(list(classes.names), classes.embeddings, alternatives, members), texts_out


def gzsl_splits(
    c: GzslOptions,
    clip_ids: list[str],
    labels: list[str],
    groups: list[str | None],
    dataset: str,
) -> list[GzslSplit]:
    """The run's splits: the benchmark's split folder (``gzsl_split`` = a ``class-split/<split>``
    folder with the six stage files) or a harken split file (JSON), else ``gzsl_splits``
    harken-made splits with seeds ``split_seed, split_seed + 1, …``."""
    if c.gzsl_split and Path(c.gzsl_split).is_dir():
        from harken.data.readers.avgzsl import read_avgzsl_split
        from harken.protocols.gzsl_splits import from_avgzsl

        return [from_avgzsl(read_avgzsl_split(Path(c.gzsl_split)), clip_ids)]
    if c.gzsl_split:
        return [read_gzsl_split(Path(c.gzsl_split))]
    return [
        make_gzsl_split(
            clip_ids,
            labels,
            groups,
            n_val_unseen=c.n_val_unseen,
            n_test_unseen=c.n_test_unseen,
            held_out=c.held_out,
            seed=c.split_seed + k,
            name=f"{dataset}/gzsl-seed{c.split_seed + k}",
        )
        for k in range(c.gzsl_splits)
    ]


def evaluate_methods(
    methods: dict[str, tuple[Callable[[], Method], Classes]],
    data: Batch,
    splits: list[GzslSplit],
    seeds: Sequence[int],
    grid: Sequence[float] | None,
    folder: RunFolder | None = None,
) -> tuple[dict[str, dict], list[tuple]]:
    """Both stages for every method (name → (factory, its classes)), split and seed (trainable
    methods: every seed; training-free ones: the first). Returns the per-method summaries
    (:func:`summarise_gzsl` plus ``config``, the configured settings; each row holds the
    settings chosen on its split) and the prediction rows. With a run ``folder``, every finished
    (method, split, seed) is stored as a unit, and a resumed folder's units are reused."""
    out: dict[str, dict] = {}
    predictions: list[tuple] = []
    for name, (make, classes) in methods.items():
        probe = make()
        rows = []
        for split in splits:
            for seed in seeds if probe.trainable else list(seeds)[:1]:
                row = folder.load_unit(name, split.name, seed) if folder else None
                if row is None:
                    row = run_split(make, data, classes, split, grid, seed)
                    if folder is not None:
                        folder.save_unit(row, name, split.name, seed)
                predictions += [(name, split.name, seed, *p) for p in row.pop("_predictions")]
                rows.append(row)
        out[name] = {
            **summarise_gzsl(rows),
            "config": probe.config(),
            "selection_criterion": [SELECTION_CRITERION],
        }
    return out, predictions


def protocol_info(
    splits: list[GzslSplit], seeds: Sequence[int], grid: Sequence[float] | None
) -> dict:
    """The ``protocol`` section of a GZSL ``results.json``."""
    return {
        "name": "gzsl",
        "splits": [s.name for s in splits],
        "classes": [
            {
                "seen_1": len(s.seen_1),
                "unseen_1": len(s.unseen_1),
                "seen_2": len(s.seen_2),
                "unseen_2": len(s.unseen_2),
            }
            for s in splits
        ],
        "clips": [{st: len(v) for st, v in s.clips.items()} for s in splits],
        "seeds": list(seeds),
        "calibration_grid": list(grid) if grid is not None else "per method",
    }


def write_gzsl_run(folder: RunFolder, results: dict, predictions: list[tuple], **manifest) -> None:
    """``results.json``, ``results.md``, ``predictions.csv`` and ``manifest.json``."""
    folder.write_json("results.json", results)
    folder.write_text("results.md", gzsl_markdown(results))
    folder.write_csv(
        "predictions.csv", ["method", "split", "seed", "clip_id", "label", "predicted"], predictions
    )
    folder.write_manifest(
        **manifest,
        methods={n: chosen_configs(r, "runs") for n, r in results["methods"].items()},
    )


@dataclass
class GzslOptions:
    """``[protocol]`` keys of ``gzsl``.

    Attributes:
        gzsl_split: A split to use instead of harken-made ones: a harken split file (JSON, as
            written to a run's ``splits/``) or an AV-GZSL ``class-split/<split>`` folder.
        gzsl_splits: Number of harken-made splits (seeds ``split_seed``, +1, …).
        n_val_unseen, n_test_unseen: Validation-unseen / test-unseen classes per split (None:
            a quarter of the classes each).
        held_out: Share of each seen class's clips held out (by recording group) for
            validation and for testing.
        calibration_grid: The calibrated-stacking grid, ``"lo:hi:steps"`` or a list (None:
            each method's default — ClipClap's ``0:5:76`` unless the method declares a finer
            one for small-scale scores).
        split_seed: Seed of the first harken-made split.
    """

    gzsl_split: str | None = None
    gzsl_splits: int = 3
    n_val_unseen: int | None = None
    n_test_unseen: int | None = None
    held_out: float = 0.2
    calibration_grid: str | list[float] | None = None
    split_seed: int = 0


@PROTOCOLS.register("gzsl")
class Gzsl(Protocol):
    """Two-stage generalised zero-shot learning (Kurzendörfer et al. 2024 §4.1)."""

    name = "gzsl"
    Options = GzslOptions
    PATH_OPTIONS = ("gzsl_split",)
    RANGES = (
        ("gzsl_splits", *at_least(1)),
        ("n_val_unseen", *at_least(1)),
        ("n_test_unseen", *at_least(1)),
        # make_gzsl_split holds out at least one recording group per seen class for validation
        # and as many for testing, so less than half of a class's clips can be held out
        ("held_out", (lambda v: 0 < v < 0.5), "a fraction in (0, 0.5)"),
        ("split_seed", *at_least(0)),
    )

    @classmethod
    def check(cls, options: GzslOptions, key) -> None:
        if options.calibration_grid is not None:
            check_grid(options.calibration_grid, key("calibration_grid"))

    def check_against(self, config: ExperimentConfig, n_classes: int) -> None:
        o = self.options
        if o.gzsl_split:
            return
        have = f"the dataset has {n_classes} classes in column {config.target!r}"
        n_test = o.n_test_unseen or max(1, n_classes // 4)
        n_val = o.n_val_unseen or max(1, n_classes // 4)
        if n_test + n_val >= n_classes:
            raise ConfigError(
                f"{config.key('n_test_unseen')} = {n_test} and "
                f"{config.key('n_val_unseen', False)} = {n_val} leave no seen class: "
                f"{have}; expected n_test_unseen + n_val_unseen < {n_classes}"
            )

    def run(self, exp: Experiment) -> dict:
        config, folder, o = exp.config, exp.folder, self.options
        manifest = exp.load_data()
        classes, texts, generator_config = exp.knowledge(manifest)
        classes, view_texts = build_views(exp, classes, config.views)
        every = {c: list(texts[c]) + [t for v in view_texts.values() for t in v[c]] for c in texts}
        export_descriptions(every, folder.path / "descriptions.csv")
        exp.write_sources()

        probes = {m: exp.make_method(m, None) for m in config.methods}
        needs = {f for p in probes.values() for f in p.features}
        manifest, features = exp.features(manifest, needs)
        uses_label_space = any(p.uses_label_space for p in probes.values())
        label_space = exp.label_space() if uses_label_space else None

        clip_ids = [clip.clip_id for clip in manifest]
        labels = manifest.labels(config.target)
        data = Batch(features, list(labels), clip_ids)
        splits = gzsl_splits(o, clip_ids, labels, [c.group for c in manifest], manifest.name)
        for k, split in enumerate(splits):
            write_gzsl_split(split, folder.path / "splits" / f"gzsl{k}.json")
        grid = _grid(o.calibration_grid)

        methods = {}
        for name in config.methods:
            own = exp.classes_for(probes[name], texts, classes)
            # a method's own text tower re-embeds the default knowledge; the views carry their
            # own text encoders, so they stay as configured
            own = Classes(own.names, own.embeddings, classes.alternatives, classes.members)
            methods[name] = (lambda n=name: exp.make_method(n, label_space), own)
        with folder.stage("methods"):
            methods_out, predictions = evaluate_methods(
                methods, data, splits, config.seeds, grid, folder
            )

        results = {
            "dataset": manifest.name,
            "target": config.target,
            "protocol": protocol_info(splits, config.seeds, grid),
            "encoders": {"features": sorted(needs), "text": config.text_encoder},
            "chance": chance_gzsl(splits),
            "methods": methods_out,
        }
        write_gzsl_run(
            folder,
            results,
            predictions,
            config=asdict(config),
            **exp.provenance(manifest, len(classes.names), features, generator_config),
        )
        return results

    @staticmethod
    def markdown(results: dict) -> str:
        return gzsl_markdown(results)

    @staticmethod
    def table(results: dict) -> str:
        return gzsl_table(results)


def check_grid(grid: str | list[float], where: str) -> None:
    """``"lo:hi:steps"`` with lo ≤ hi and an integer steps ≥ 1, or a non-empty list."""
    if isinstance(grid, str):
        parts = grid.split(":")
        try:
            lo, hi, steps = float(parts[0]), float(parts[1]), int(parts[2])
            ok = len(parts) == 3 and math.isfinite(lo) and math.isfinite(hi)
        except (ValueError, IndexError):
            ok = False
        if not ok or lo > hi or steps < 1 or (steps == 1 and lo != hi):
            raise ConfigError(
                f"{where} {grid!r}: write 'lo:hi:steps' with lo ≤ hi and an integer number of "
                "steps ≥ 2 (e.g. '0:5:76'), or a list of values"
            )
        return
    if not grid or not all(math.isfinite(v) for v in grid):
        raise ConfigError(f"{where} must list at least one finite value, not {grid!r}")


def _grid(spec) -> tuple[float, ...] | None:
    """``"lo:hi:steps"`` → ``steps`` evenly spaced values; a list is the grid itself."""
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            lo, hi, steps = spec.split(":")
            return tuple(np.linspace(float(lo), float(hi), int(steps)).round(6).tolist())
        except ValueError:
            raise ConfigError(
                f"calibration_grid {spec!r}: write 'lo:hi:steps' (e.g. '0:5:76') or a list"
            ) from None
    values = [float(v) for v in spec]
    if not values:
        raise ConfigError("calibration_grid is empty")
    return tuple(values)


#: Per-dataset settings of the papers (ClipClap §4.1: learning rate and stage-1 epochs; KDA
#: §4.1: encoder / projector dropout), applied by :func:`run_published` unless overridden.
PAPER_SETTINGS: dict[str, dict[str, dict]] = {
    "clipclap": {
        "UCF": {"lr": 7e-5, "epochs": 20},
        "ActivityNet": {"lr": 1e-4, "epochs": 15},
        "VGGSound": {"lr": 1e-4, "epochs": 15},
    },
    "kda": {
        "UCF": {"enc_dropout": 0.2, "proj_dropout": 0.3},
        "ActivityNet": {"enc_dropout": 0.2, "proj_dropout": 0.2},
        "VGGSound": {"enc_dropout": 0.0, "proj_dropout": 0.0},
    },
}


def published_data(features) -> tuple[Batch, Classes, GzslSplit]:
    """A :class:`~harken.data.readers.avgzsl.PublishedFeatures` release as the protocol's
    inputs: one batch (features ``audio`` and ``video``) of the five disjoint stages, the classes
    with one knowledge view per published text embedding (``clip``, ``clap`` or ``w2v``; the
    default embeddings are the first of ``clip``, ``w2v``, ``clap``), and the split."""
    stages = features.stages
    ids = [f"{s}/{cid}" for s in DISJOINT_STAGES for cid in stages[s].ids]
    data = Batch(
        {
            "audio": np.concatenate([stages[s].audio for s in DISJOINT_STAGES]),
            "video": np.concatenate([stages[s].video for s in DISJOINT_STAGES]),
        },
        [y for s in DISJOINT_STAGES for y in stages[s].labels],
        ids,
    )
    clips = {s: tuple(f"{s}/{cid}" for cid in stages[s].ids) for s in DISJOINT_STAGES}
    clips["stage_2_train"] = (
        clips["stage_1_train"] + clips["stage_1_val_seen"] + clips["stage_1_val_unseen"]
    )
    classes_of = {s: tuple(dict.fromkeys(stages[s].labels)) for s in DISJOINT_STAGES}
    classes_of["stage_2_train"] = tuple(
        dict.fromkeys(classes_of["stage_1_train"] + classes_of["stage_1_val_unseen"])
    )
    split = GzslSplit(
        f"{features.dataset}/{features.split}",
        {s: clips[s] for s in STAGES},
        {s: classes_of[s] for s in STAGES},
    )
    names = sorted({y for s in DISJOINT_STAGES for y in classes_of[s]})
    views = {}
    for source, table in features.class_embeddings.items():
        missing = [n for n in names if n not in table]
        if missing:
            raise DataError(
                f"{features.dataset}: the {source!r} class embeddings lack {missing[:3]}"
            )
        views[source] = np.stack([np.asarray(table[n], dtype=np.float32) for n in names])
    if not views:
        raise DataError(f"{features.dataset}: the release has no class embeddings")
    default = next(v for k in ("clip", "w2v", "clap", *views) if (v := views.get(k)) is not None)
    return data, Classes(names, default, views), split


def run_published(
    root: str | Path,
    dataset: str,
    out: str | Path,
    methods: Sequence[str] = ("clipclap", "kda"),
    split: str = "cls_split",
    release: str = "auto",
    seeds: Sequence[int] = (0,),
    method_options: dict | None = None,
    calibration: str | list[float] | None = None,
    split_dir: str | Path | None = None,
    mode: str = "new",
) -> dict:
    """Table 1 of ClipClap / KDA from a downloaded feature release, in one call.

    Loads the release (:func:`harken.data.readers.avgzsl.load_published_features`), runs both
    GZSL stages for every method and seed with the papers' per-dataset settings
    (:data:`PAPER_SETTINGS`, overridden by ``method_options``) and writes ``results.json``,
    ``results.md``, ``predictions.csv`` and ``manifest.json`` into ``out`` (``mode``: ``new``,
    ``overwrite`` or ``resume``, see :class:`~harken.store.runs.RunFolder`).
    """
    from harken.data.readers.avgzsl import load_published_features
    from harken.methods.base import get_method

    folder = RunFolder(Path(out), mode)
    folder.begin(
        {
            "root": str(root),
            "dataset": dataset,
            "methods": list(methods),
            "split": split,
            "release": release,
            "seeds": list(seeds),
            "method_options": method_options or {},
            "calibration": calibration,
            "split_dir": None if split_dir is None else str(split_dir),
        }
    )
    features = load_published_features(root, dataset, split, release, split_dir=split_dir)
    data, classes, gsplit = published_data(features)
    grid = _grid(calibration)
    options = method_options or {}
    factories = {}
    for name in methods:
        if get_method(name).uses_label_space:
            raise ConfigError(
                f"method {name!r} bridges through an audio tagger's label space, which "
                "published features do not have; use clipclap, kda, devise, ale, sje, "
                "linear or contrastive"
            )
        opts = {**PAPER_SETTINGS.get(name, {}).get(features.dataset, {})}
        if name in ("clipclap", "kda"):
            opts |= {"audio": ("audio",), "video": ("video",)}
        else:
            opts |= {"features": ("audio", "video")}
        opts |= options.get(name, {})
        factories[name] = (lambda n=name, o=opts: get_method(n, **o), classes)
    with folder.stage("methods"):
        methods_out, predictions = evaluate_methods(factories, data, [gsplit], seeds, grid, folder)
    results = {
        "dataset": f"{features.dataset}-GZSL ({features.release} {features.feature_set})",
        "target": features.split,
        "protocol": protocol_info([gsplit], seeds, grid),
        "encoders": {"features": ["audio", "video"], "text": sorted(classes.alternatives)},
        "chance": chance_gzsl([gsplit]),
        "methods": methods_out,
        "notes": features.notes,
    }
    write_gzsl_run(
        folder,
        results,
        predictions,
        release={
            "root": str(features.root),
            "release": features.release,
            "dataset": features.dataset,
            "split": features.split,
            "feature_set": features.feature_set,
            "sha256": {k: array_digest(v) for k, v in data.features.items()},
        },
    )
    return results
