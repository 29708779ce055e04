"""Class-disjoint k-fold zero-shot classification (``protocol = "kfold"``) and its training-free
special case, every class a candidate (``protocol = "all-classes"``).

Gebhard et al. (2024) §3.2: the classes are split into ``folds`` folds, each with its own test
classes (every class is tested at most once), dev classes for model selection and training
classes; no test class is a train or dev class of its fold. A method is fitted on a fold's train
(and dev) classes and scores its test clips once, among the fold's test classes: UA, WA and UP
(§3.3) plus retrieval both ways (class texts ↔ clips). Model selection only ever sees a fold's
train and dev classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harken.errors import ConfigError
from harken.knowledge.classes import export_descriptions
from harken.methods.base import Batch, Classes
from harken.metrics.classification import chance_level, classification_report
from harken.metrics.retrieval import class_relevance, retrieval_report
from harken.protocols.base import FRACTION, PROTOCOLS, NoOptions, Protocol, at_least
from harken.protocols.common import chosen_configs, criteria, selection_of
from harken.protocols.splits import (
    Split,
    all_classes_split,
    class_disjoint_folds,
    read_splits,
    write_splits,
)
from harken.reports.results import kfold_markdown, kfold_table, summarise

if TYPE_CHECKING:
    from harken.experiment import Experiment, ExperimentConfig

#: What a k-fold method's ``dev_score`` is (the foundation's dev-class UA).
DEV_CRITERION = "UA on the fold's dev classes"


@dataclass
class KFoldOptions:
    """``[protocol]`` keys of ``kfold``.

    Attributes:
        folds: Number of folds.
        n_test, n_dev: Test / dev classes per fold (None: from the fractions).
        test_fraction, dev_fraction: Share of the classes tested / used for selection per fold.
        split_seed: Seed of the class shuffle (the folds are reproducible from it).
        splits_dir: Read ``fold<k>.json`` splits from here instead of generating them.
    """

    folds: int = 5
    n_test: int | None = None
    n_dev: int | None = None
    test_fraction: float = 0.1
    dev_fraction: float = 0.1
    split_seed: int = 0
    splits_dir: str | None = None


def _share(n_classes: int, fraction: float) -> int:
    """Classes per fold for a fraction (as :func:`class_disjoint_folds` computes it)."""
    return max(1, round(n_classes * fraction))


class ClassSplitProtocol(Protocol):
    """The run both protocols share; they differ only in their splits."""

    def splits(self, classes: list[str]) -> list[Split]:
        raise NotImplementedError

    def run(self, exp: Experiment) -> dict:
        config, folder = exp.config, exp.folder
        manifest = exp.load_data()
        all_classes, texts, generator_config = exp.knowledge(manifest)
        every_text = {
            c: [t for by_class in exp.texts_by_generator.values() for t in by_class[c]]
            for c in texts
        }
        export_descriptions(every_text, folder.path / "descriptions.csv")
        exp.write_sources()

        # Unfitted instances tell which features and resources the methods need.
        probes = {m: exp.make_method(m, None) for m in config.methods}
        needs = {f for p in probes.values() for f in p.features}
        manifest, features = exp.features(manifest, needs)
        uses_label_space = any(p.uses_label_space for p in probes.values())
        label_space = exp.label_space() if uses_label_space else None

        labels = np.asarray(manifest.labels(config.target), dtype=object)
        data = Batch(features, list(labels), [clip.clip_id for clip in manifest])
        splits = self.splits(all_classes.names)
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
                            f"method {name!r} needs training classes; the {self.name} "
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
                    "selection_criterion": criteria(rows),
                }

        results = {
            "dataset": manifest.name,
            "target": config.target,
            "protocol": {
                "name": self.name,
                "folds": len(splits),
                "test_classes_per_fold": [len(s.test) for s in splits],
                "dev_classes_per_fold": [len(s.dev) for s in splits],
                "split_seed": getattr(self.options, "split_seed", 0),
                "seeds": config.seeds,
            },
            "encoders": {"audio": sorted(needs), "text": config.text_encoder},
            "chance": _chance(splits, labels),
            "methods": methods_out,
        }
        folder.write_json("results.json", results)
        folder.write_text("results.md", self.markdown(results))
        folder.write_csv(
            "predictions.csv",
            ["method", "fold", "seed", "clip_id", "label", "predicted"],
            predictions,
        )
        folder.write_manifest(
            config=asdict(config),
            **exp.provenance(manifest, len(all_classes.names), features, generator_config),
            splits={"folds": [s.fold for s in splits], "folder": "splits"},
            methods={n: chosen_configs(methods_out[n], "folds") for n in methods_out},
            selection=fit_logs,
        )
        return results

    @staticmethod
    def markdown(results: dict) -> str:
        return kfold_markdown(results)

    @staticmethod
    def table(results: dict) -> str:
        return kfold_table(results)


@PROTOCOLS.register("kfold")
class KFold(ClassSplitProtocol):
    """Class-disjoint folds (Gebhard et al. §3.2)."""

    name = "kfold"
    Options = KFoldOptions
    PATH_OPTIONS = ("splits_dir",)
    RANGES = (
        ("folds", *at_least(1)),
        ("n_test", *at_least(1)),
        ("n_dev", *at_least(0)),
        ("test_fraction", *FRACTION),
        ("dev_fraction", *FRACTION),
        ("split_seed", *at_least(0)),
    )

    @classmethod
    def check(cls, options: KFoldOptions, key) -> None:
        if options.test_fraction + options.dev_fraction >= 1:
            raise ConfigError(
                f"{key('test_fraction')} + dev_fraction = "
                f"{options.test_fraction + options.dev_fraction:g} leaves no training class; "
                "expected a sum below 1"
            )

    def check_against(self, config: ExperimentConfig, n_classes: int) -> None:
        o = self.options
        if o.splits_dir:
            return
        have = f"the dataset has {n_classes} classes in column {config.target!r}"
        n_test = o.n_test if o.n_test is not None else _share(n_classes, o.test_fraction)
        n_dev = o.n_dev if o.n_dev is not None else _share(n_classes, o.dev_fraction)
        test_key = config.key("n_test" if o.n_test is not None else "test_fraction", False)
        dev_key = config.key("n_dev" if o.n_dev is not None else "dev_fraction", False)
        if o.folds * n_test > n_classes:
            raise ConfigError(
                f"{config.key('folds')} = {o.folds} with {n_test} test classes per fold "
                f"({test_key}) needs {o.folds * n_test} classes, but {have} (every class is "
                "tested at most once); lower folds or the test classes per fold"
            )
        if n_test + n_dev >= n_classes:
            raise ConfigError(
                f"{config.key('folds')}: {n_test} test + {n_dev} dev classes per fold "
                f"({test_key}, {dev_key}) leave no training class: {have}; expected "
                f"n_test + n_dev < {n_classes}"
            )

    def splits(self, classes: list[str]) -> list[Split]:
        o = self.options
        if o.splits_dir:
            return read_splits(Path(o.splits_dir), classes)
        return class_disjoint_folds(
            classes,
            o.folds,
            test_fraction=o.test_fraction,
            dev_fraction=o.dev_fraction,
            n_test=o.n_test,
            n_dev=o.n_dev,
            seed=o.split_seed,
        )


@PROTOCOLS.register("all-classes")
class AllClasses(ClassSplitProtocol):
    """Training-free: one split, every class a test candidate."""

    name = "all-classes"
    Options = NoOptions

    def splits(self, classes: list[str]) -> list[Split]:
        return [all_classes_split(classes)]


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
