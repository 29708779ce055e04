"""One experiment end to end: data → knowledge → features → splits → methods → metrics → run.

:class:`ExperimentConfig` is what a ``harken run CONFIG.toml`` file holds (sections ``[data]``,
``[knowledge]``, ``[encoders]``, ``[protocol]``, ``[methods]``); :func:`run_experiment` executes it
and writes ``results.json``, ``results.md``, ``manifest.json``, ``splits/fold<k>.json``,
``predictions.csv``, ``descriptions.csv`` and one ``units/*.json`` per finished (method, fold,
seed) into the run folder (``mode``: ``new``, ``overwrite`` or ``resume``).

Model selection only ever sees a fold's train and dev classes: test clips are scored once, after
every choice is made.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harken.data.manifest import Manifest
from harken.data.readers import read_dataset
from harken.encoders.base import Encoder, get_encoder
from harken.errors import ConfigError
from harken.knowledge.base import get_generator
from harken.knowledge.cache import CachedGenerator
from harken.knowledge.classes import class_embeddings, class_texts, export_descriptions
from harken.methods.base import Batch, Classes, Method, get_method
from harken.metrics.classification import chance_level, classification_report
from harken.metrics.retrieval import class_relevance, retrieval_report
from harken.protocols.splits import (
    Split,
    all_classes_split,
    class_disjoint_folds,
    read_splits,
    write_splits,
)
from harken.reports.results import results_markdown, summarise
from harken.store.features import FeatureStore, array_digest
from harken.store.runs import RunFolder

DEFAULT_METHODS = ("linear", "conse", "bridge")


@dataclass
class ExperimentConfig:
    """A resolved experiment configuration (every field has a documented default).

    Attributes:
        dataset: Registered dataset name (``kitchen20``, ``epic100:validation``) or a CSV path.
        data_dir: Where the dataset lives (None: the reader's default / ``HARKEN_DATA_DIR``).
        target: Label column to classify (``label``, ``verb``, ``noun``, ``action``).
        generator: Description generator (``template``, ``template:<set>``, ``llm``, ``openai``,
            ``descriptions:<file or set>``), or a list of them: the first is the default class
            knowledge, and ``bridge`` picks among them per fold on non-test classes.
        generator_options: Keyword arguments of the generator.
        per_narration: Describe each clip's narration (Gebhard §3) instead of class names.
        text_encoder: Text encoder of the class knowledge.
        normalize_text: L2-normalise text embeddings before/after averaging.
        tagger: Audio tagger whose label space ConSE-style methods bridge through.
        protocol: ``kfold`` (class-disjoint folds) or ``all-classes`` (training-free, every
            class a candidate).
        folds, n_test, n_dev, test_fraction, dev_fraction, split_seed: fold layout (§3.2);
            ``n_test``/``n_dev`` override the fractions.
        splits_dir: Read ``fold<k>.json`` splits from here instead of generating them.
        methods: Method names to compare.
        method_options: ``{method: {option: value}}``.
        seeds: Seeds of trainable methods (training-free methods run once per fold).
        store_dir: Feature-store folder (None: ``<cache>/features``).
        views: Extra class-knowledge views for methods that read several text spaces
            (ClipClap's ``clip``/``clap``, KDA's descriptions):
            ``{name: {"generator": spec, "text_encoder": encoder}}``.
        gzsl_split: ``protocol = "gzsl"``: a split file (JSON, as written to a run's
            ``splits/``) to use instead of harken-made splits.
        gzsl_splits: Number of harken-made GZSL splits (seeds ``split_seed``, +1, …).
        n_val_unseen, n_test_unseen: Validation-unseen / test-unseen classes per GZSL split
            (None: a quarter of the classes each).
        held_out: Share of each seen class's clips held out (by recording group) for
            validation and for testing.
        calibration_grid: The calibrated-stacking grid, ``"lo:hi:steps"`` or a list (None:
            each method's default — ClipClap's ``0:5:76`` unless the method declares a finer
            one for small-scale scores).
    """

    dataset: str = "kitchen20"
    data_dir: str | None = None
    target: str = "label"
    generator: str | list[str] = "template:harken"
    generator_options: dict = field(default_factory=dict)
    per_narration: bool = False
    text_encoder: str = "minilm"
    normalize_text: bool = True
    tagger: str = "yamnet"
    protocol: str = "kfold"
    folds: int = 5
    n_test: int | None = None
    n_dev: int | None = None
    test_fraction: float = 0.1
    dev_fraction: float = 0.1
    split_seed: int = 0
    splits_dir: str | None = None
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    method_options: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    store_dir: str | None = None
    progress: bool = True
    views: dict = field(default_factory=dict)
    gzsl_split: str | None = None
    gzsl_splits: int = 3
    n_val_unseen: int | None = None
    n_test_unseen: int | None = None
    held_out: float = 0.2
    calibration_grid: str | list[float] | None = None

    @classmethod
    def from_toml(cls, path: Path, **overrides) -> ExperimentConfig:
        """Read a TOML file (sections are flattened; unknown keys are an error)."""
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
        flat: dict = {}
        for key, value in raw.items():
            if isinstance(value, dict) and key in (
                "data",
                "knowledge",
                "encoders",
                "protocol",
                "methods",
                "store",
            ):
                for k, v in value.items():
                    if key == "methods" and isinstance(v, dict):
                        flat.setdefault("method_options", {})[k] = v
                    elif key == "methods" and k == "names":
                        flat["methods"] = v
                    else:
                        flat[k] = v
            else:
                flat[key] = value
        flat.update({k: v for k, v in overrides.items() if v is not None})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown config keys {unknown}; known keys: {sorted(known)}")
        for key in ("gzsl_split", "splits_dir"):
            if flat.get(key) and not Path(flat[key]).is_absolute():
                flat[key] = str((Path(path).parent / flat[key]).resolve())
        if flat.get("data_dir") and not Path(flat["data_dir"]).is_absolute():
            flat["data_dir"] = str((Path(path).parent / flat["data_dir"]).resolve())
        if str(flat.get("dataset", "")).endswith(".csv"):
            csv_path = Path(flat["dataset"])
            if not csv_path.is_absolute() and (Path(path).parent / csv_path).exists():
                flat["dataset"] = str((Path(path).parent / csv_path).resolve())
        return cls(**flat)

    def validate(self) -> None:
        if self.protocol not in ("kfold", "all-classes", "gzsl"):
            raise ConfigError(
                f"protocol must be 'kfold', 'all-classes' or 'gzsl', not {self.protocol!r}"
            )
        if not self.methods:
            raise ConfigError("no methods to run")
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")


class Experiment:
    """Holds the loaded pieces of one experiment (manifest, encoders, features, knowledge)."""

    def __init__(self, config: ExperimentConfig, folder: RunFolder) -> None:
        config.validate()
        self.config = config
        self.folder = folder
        self.store = FeatureStore(
            Path(config.store_dir) if config.store_dir else None, progress=config.progress
        )
        self._encoders: dict[str, Encoder] = {}
        self._classes: dict[str, Classes] = {}

    def encoder(self, name: str) -> Encoder:
        if name not in self._encoders:
            self._encoders[name] = get_encoder(name)
        return self._encoders[name]

    def load_data(self) -> Manifest:
        c = self.config
        with self.folder.stage("data"):
            manifest = read_dataset(c.dataset, c.data_dir)
            if c.target not in manifest.targets:
                raise ConfigError(
                    f"dataset {manifest.name!r} has no label column {c.target!r}; "
                    f"choose one of {manifest.targets}"
                )
        return manifest

    def classes_for(self, method: Method, texts: dict[str, list[str]], default: Classes) -> Classes:
        """Class embeddings in the text space ``method`` needs (its own ``text_encoder``, e.g. a
        CLAP text tower, or the knowledge text encoder); each text space is embedded once."""
        name = getattr(method, "text_encoder", None) or self.config.text_encoder
        if name == self.config.text_encoder:
            return default
        if name not in self._classes:
            emb = class_embeddings(
                texts, self.encoder(name), default.names, normalize=self.config.normalize_text
            )
            self._classes[name] = Classes(list(default.names), emb)
        return self._classes[name]

    def knowledge(self, manifest: Manifest) -> tuple[Classes, dict[str, list[str]], dict]:
        """Class embeddings from the knowledge generator(s).

        With several generators (``generator = ["template:harken", "descriptions:kitchen20"]``)
        the first one gives ``Classes.embeddings`` and every one an entry of
        ``Classes.alternatives``, which methods that select on non-test classes (``bridge``)
        choose among per fold. Returns the classes, the texts of every generator per class,
        and the generator config(s).
        """
        c = self.config
        specs = [c.generator] if isinstance(c.generator, str) else list(c.generator)
        if not specs:
            raise ConfigError("generator: give at least one description generator")
        with self.folder.stage("knowledge"):
            classes = manifest.classes(c.target)
            narrations = None
            if c.per_narration:
                missing = [clip.clip_id for clip in manifest if not clip.narration]
                if missing:
                    raise ConfigError(
                        f"per_narration needs a narration for every clip; {len(missing)} have "
                        f"none (e.g. {missing[:3]})"
                    )
                narrations = [(clip.label(c.target), clip.narration) for clip in manifest]
            text_encoder = self.encoder(c.text_encoder)
            texts_by: dict[str, dict[str, list[str]]] = {}
            embeddings: dict[str, np.ndarray] = {}
            configs = []
            for spec in specs:
                generator = CachedGenerator(get_generator(spec, **c.generator_options))
                texts_by[spec] = class_texts(generator, classes, narrations)
                embeddings[spec] = class_embeddings(
                    texts_by[spec], text_encoder, classes, normalize=c.normalize_text
                )
                configs.append(generator.config())
        self.texts_by_generator = texts_by
        alternatives = embeddings if len(specs) > 1 else {}
        return (
            Classes(classes, embeddings[specs[0]], alternatives),
            texts_by[specs[0]],
            configs[0] if len(configs) == 1 else configs,
        )

    def label_space(self) -> Classes:
        """The tagger's label names embedded with the knowledge text encoder."""
        tagger = self.encoder(self.config.tagger)
        names = list(tagger.class_names)
        text_encoder = self.encoder(self.config.text_encoder)
        emb = np.asarray(text_encoder.embed(names), dtype=np.float32)
        return Classes(names, emb)

    def features(self, manifest: Manifest, names: set[str]) -> dict[str, np.ndarray]:
        out = {}
        with self.folder.stage("features"):
            for name in sorted(names):
                out[name] = self.store.get(manifest.name, self.encoder(name), manifest.clips)
        return out

    def splits(self, classes: list[str]) -> list[Split]:
        c = self.config
        if c.splits_dir:
            return read_splits(Path(c.splits_dir), classes)
        if c.protocol == "all-classes":
            return [all_classes_split(classes)]
        return class_disjoint_folds(
            classes,
            c.folds,
            test_fraction=c.test_fraction,
            dev_fraction=c.dev_fraction,
            n_test=c.n_test,
            n_dev=c.n_dev,
            seed=c.split_seed,
        )

    def provenance(
        self,
        manifest: Manifest,
        n_classes: int,
        features: dict[str, np.ndarray],
        generator_config,
    ) -> dict:
        """The run manifest's ``dataset``, ``knowledge``, ``encoders`` and ``features``
        sections (ids, fingerprints, model configs, feature-store folders and hashes)."""
        c = self.config
        names = sorted(features)
        return {
            "dataset": {
                "name": manifest.name,
                "root": str(manifest.root),
                "clips": len(manifest),
                "classes": n_classes,
                "fingerprint": manifest.fingerprint(),
            },
            "knowledge": {
                "generator": generator_config,
                "text_encoder": self.encoder(c.text_encoder).config(),
                "method_text_encoders": {
                    n: self.encoder(n).config() for n in sorted(self._classes)
                },
                "views": c.views,
            },
            "encoders": {n: self.encoder(n).config() for n in names},
            "features": {
                n: {
                    "store": str(self.store.folder(manifest.name, self.encoder(n))),
                    "sha256": array_digest(features[n]),
                }
                for n in names
            },
        }

    def make_method(self, name: str, label_space: Classes | None) -> Method:
        options = dict(self.config.method_options.get(name, {}))
        method = get_method(name, **options)
        if method.uses_label_space:
            method = get_method(name, label_space=label_space, tagger=self.config.tagger, **options)
        return method


def run_experiment(config: ExperimentConfig, out: Path, mode: str = "new") -> dict:
    """Run ``config`` and write its run folder at ``out``; returns ``results.json``'s content.

    Args:
        config: The experiment.
        out: The run folder.
        mode: ``new`` (the folder must be empty), ``overwrite`` (clear a harken run folder
            first) or ``resume`` (continue one: finished (method, fold, seed) units stored
            under ``units/`` are reused; the config must match the recorded one). See
            :class:`~harken.store.runs.RunFolder`.
    """
    if config.protocol == "gzsl":
        from harken.experiment_gzsl import run_gzsl_experiment

        return run_gzsl_experiment(config, out, mode=mode)
    folder = RunFolder(out, mode)
    folder.begin(asdict(config))
    exp = Experiment(config, folder)
    manifest = exp.load_data()
    all_classes, texts, generator_config = exp.knowledge(manifest)
    every_text = {
        c: [t for by_class in exp.texts_by_generator.values() for t in by_class[c]] for c in texts
    }
    export_descriptions(every_text, folder.path / "descriptions.csv")

    # Unfitted instances tell which features and resources the methods need.
    probes = {m: exp.make_method(m, None) for m in config.methods}
    needs = {f for p in probes.values() for f in p.features}
    features = exp.features(manifest, needs)
    label_space = exp.label_space() if any(p.uses_label_space for p in probes.values()) else None

    labels = np.asarray(manifest.labels(config.target), dtype=object)
    clip_ids = [clip.clip_id for clip in manifest]
    data = Batch(features, list(labels), clip_ids)
    splits = exp.splits(all_classes.names)
    write_splits(splits, folder.path / "splits")

    methods_out: dict[str, dict] = {}
    predictions: list[tuple] = []
    fit_logs: dict[str, list] = {}
    with folder.stage("methods"):
        for name in config.methods:
            trainable = probes[name].trainable
            method_classes = exp.classes_for(probes[name], texts, all_classes)
            rows = []
            for split in splits:
                if trainable and not split.train:
                    raise ConfigError(
                        f"method {name!r} needs training classes; the {config.protocol} "
                        "protocol has none (use a training-free method)"
                    )
                for seed in config.seeds if trainable else [config.seeds[0]]:
                    unit = folder.load_unit(name, split.fold, seed)
                    if unit is None:
                        unit = evaluate_fold(
                            lambda n=name: exp.make_method(n, label_space),
                            data,
                            method_classes,
                            split,
                            seed,
                        )
                        folder.save_unit(unit, name, split.fold, seed)
                    rows.append(unit["row"])
                    fit_logs.setdefault(name, []).append(
                        {"fold": split.fold, "seed": seed, **unit["log"]}
                    )
                    predictions += [(name, split.fold, seed, *p) for p in unit["predictions"]]
            methods_out[name] = {
                **summarise(rows),
                "config": probes[name].config(),
                "selection_criterion": _criteria(rows),
            }

    chance = _chance(splits, labels)
    results = {
        "dataset": manifest.name,
        "target": config.target,
        "protocol": {
            "name": config.protocol,
            "folds": len(splits),
            "test_classes_per_fold": [len(s.test) for s in splits],
            "dev_classes_per_fold": [len(s.dev) for s in splits],
            "split_seed": config.split_seed,
            "seeds": config.seeds,
        },
        "encoders": {"audio": sorted(needs), "text": config.text_encoder},
        "chance": chance,
        "methods": methods_out,
    }
    folder.write_json("results.json", results)
    folder.write_text("results.md", results_markdown(results))
    folder.write_csv(
        "predictions.csv", ["method", "fold", "seed", "clip_id", "label", "predicted"], predictions
    )
    folder.write_manifest(
        config=asdict(config),
        **exp.provenance(manifest, len(all_classes.names), features, generator_config),
        splits={"folds": [s.fold for s in splits], "folder": "splits"},
        methods={n: chosen_configs(methods_out[n], "folds") for n in methods_out},
        selection=fit_logs,
    )
    return results


#: What a k-fold method's ``dev_score`` is (the foundation's dev-class UA).
DEV_CRITERION = "UA on the fold's dev classes"


def evaluate_fold(make_method, data: Batch, classes: Classes, split: Split, seed: int) -> dict:
    """Fit a fresh method on one fold's train (and dev) classes and score its test clips.

    Returns the unit stored for resuming: ``{"row", "log", "predictions"}`` — ``row`` is the
    fold's ``results.json`` row with the method's chosen ``config`` and its ``selection``
    (criterion and dev/selection score; test clips never enter it).
    """
    labels = np.asarray(data.labels, dtype=object)
    test = data.subset(np.isin(labels, split.test))
    test_classes = classes.subset(list(split.test))
    train = data.subset(np.isin(labels, split.train)) if split.train else None
    dev = data.subset(np.isin(labels, split.dev)) if split.dev else None
    method = make_method()
    method.n_candidates = len(split.test)
    log = method.fit(
        train,
        classes.subset(list(split.train)) if train else None,
        dev,
        classes.subset(list(split.dev)) if dev else None,
        seed,
    )
    scores = method.score(test, test_classes)
    pred = [test_classes.names[i] for i in np.argmax(scores, axis=1)]
    report = classification_report(test.labels, pred, list(split.test))
    row = {
        "fold": split.fold,
        "seed": seed,
        "test_classes": list(split.test),
        **report,
        "retrieval": retrieval_both_ways(scores, test.labels, test_classes.names),
        "config": method.config(),
        "selection": selection_of(log, DEV_CRITERION),
    }
    return {
        "row": row,
        "log": log,
        "predictions": [list(p) for p in zip(test.clip_ids, test.labels, pred, strict=True)],
    }


def selection_of(log: dict, criterion: str) -> dict:
    """``{"criterion", "score"}``: what a fit chose its settings on (never test clips) and
    the best score there; ``score`` is None for fixed settings."""
    if "selection_UA" in log:
        return {"criterion": f"UA on {log['selected_on']}", "score": float(log["selection_UA"])}
    if log.get("dev_score") is not None:
        return {"criterion": criterion, "score": float(log["dev_score"])}
    if log.get("selected_on"):
        return {"criterion": f"none ({log['selected_on']})", "score": None}
    return {"criterion": "none (fixed settings)", "score": None}


def _criteria(rows: list[dict]) -> list[str]:
    return sorted({r["selection"]["criterion"] for r in rows})


def chosen_configs(summary: dict, rows_key: str) -> dict:
    """A method's manifest entry: its configured settings and, per fold (split) and seed, the
    settings it chose and what it chose them on."""
    keys = ("fold", "split", "seed")
    return {
        "config": summary["config"],
        "chosen": [
            {
                **{k: r[k] for k in keys if k in r},
                "config": r["config"],
                "selection": r["selection"],
            }
            for r in summary[rows_key]
        ],
    }


def retrieval_both_ways(
    scores: np.ndarray, clip_labels: list[str], class_names: list[str]
) -> dict[str, dict[str, float]]:
    """Retrieval metrics of one clip × class score matrix: text→audio (each class text queries
    the clips; every clip of that class is relevant) and audio→text (each clip queries the
    class texts; its own class is relevant)."""
    return {
        "text_to_audio": retrieval_report(scores.T, class_relevance(class_names, clip_labels)),
        "audio_to_text": retrieval_report(scores, class_relevance(clip_labels, class_names)),
    }


def _chance(splits: list[Split], labels: np.ndarray) -> dict[str, float]:
    per_fold = [chance_level(labels[np.isin(labels, s.test)], len(s.test)) for s in splits]
    return {m: float(np.mean([c[m] for c in per_fold])) for m in ("UA", "WA", "UP")}
