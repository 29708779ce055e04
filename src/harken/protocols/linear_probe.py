"""Linear probe on frozen embeddings (``protocol = "linear-probe"``; Chen et al. 2024, §6.3,
Table 4): how much of the ``target`` classes a representation holds linearly.

Representations: the clip embeddings of any encoder (``features``, e.g. ``aisfx``, ``yamnet``)
and the audio embeddings of trained heads (the run's ``methods``: ``contrastive``, ``mc3`` and its
baselines, each fitted on the training clips only). A multinomial logistic regression is trained
on the training clips for each value of its inverse regularisation ``C``; ``C`` is chosen on the
validation clips, then the probe scores the test clips once: top-1, top-5, mean class accuracy,
mAP and mAUC, as EPIC-SOUNDS evaluates them (classes present in the test clips). The clips are
split by recording group, per class (``train_fraction`` / ``val_fraction`` / the rest), so no
recording is on two sides.

Every test clip's outcome is kept in ``predictions.csv`` (representation, seed — empty for a
frozen encoder —, clip id, true and predicted class, and the rank of the true class among the
probe's scores) for the report's bootstrap intervals of Top-1, Top-5 and mCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from harken.errors import ConfigError
from harken.metrics.classification import mean_std
from harken.protocols import trimodal
from harken.protocols.base import FRACTION, PROTOCOLS, Protocol, at_least
from harken.reports.results import text_table

if TYPE_CHECKING:
    from harken.experiment import Experiment

METRICS = ("top1", "top5", "mca", "map", "mauc")
NAMES = {"top1": "Top-1", "top5": "Top-5", "mca": "mCA", "map": "mAP", "mauc": "mAUC"}
#: The per-clip file and its columns.
PREDICTIONS_FILE = "predictions.csv"
PREDICTIONS_HEADER = ["method", "seed", "clip_id", "label", "predicted", "true_rank"]


@dataclass
class LinearProbeOptions:
    """``[protocol]`` keys of ``linear-probe``.

    Attributes:
        features: Encoders whose frozen clip embeddings are probed directly.
        modality: Which embedding of a trained head is probed (``audio``, ``video``, ``text``).
        train_fraction, val_fraction: Shares of each class's recordings that train the heads
            and the probe / choose ``C``; the rest are the test clips.
        grid: The values of ``C`` tried (chosen by validation top-1).
        split_seed: Seed of the split.
    """

    features: list[str] = field(default_factory=lambda: ["aisfx", "yamnet"])
    modality: str = "audio"
    train_fraction: float = 0.6
    val_fraction: float = 0.2
    grid: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])
    split_seed: int = 0


@PROTOCOLS.register("linear-probe")
class LinearProbeProtocol(Protocol):
    """Top-1/5, mCA, mAP, mAUC of a linear probe per representation."""

    name = "linear-probe"
    Options = LinearProbeOptions
    RANGES = (
        ("train_fraction", *FRACTION),
        ("val_fraction", *FRACTION),
        ("grid", (lambda v: len(v) > 0 and all(c > 0 for c in v)), "a non-empty list of C > 0"),
        ("split_seed", *at_least(0)),
        ("modality", (lambda v: v in ("audio", "video", "text")), "audio, video or text"),
    )

    @classmethod
    def check(cls, options: LinearProbeOptions, key) -> None:
        if options.train_fraction + options.val_fraction >= 1:
            raise ConfigError(
                f"{key('train_fraction')} + val_fraction = "
                f"{options.train_fraction + options.val_fraction:g} leaves no test clip; "
                "expected a sum below 1"
            )
        from harken.encoders.base import available_encoders

        known = available_encoders()
        for name in options.features:
            if name.partition(":")[0] not in known:
                raise ConfigError(
                    f"{key('features')}: unknown encoder {name!r}; choose one of: "
                    f"{', '.join(known)}"
                )

    def run(self, exp: Experiment) -> dict:
        from harken.metrics.probe import probe_chance

        config, folder, o = exp.config, exp.folder, self.options
        methods = trimodal.embedders(exp, self.name)
        needs = sorted({*o.features, *(f for m in methods.values() for f in m.features)})
        data = trimodal.load(exp, needs, require_target=True)  # the probe's classes
        labels = data.batch.labels
        test_share = 1 - o.train_fraction - o.val_fraction
        train_m, val_m, test_m = trimodal.group_split(
            data.groups, (o.train_fraction, o.val_fraction, test_share), o.split_seed, labels
        )
        train, val, test = data.subset(train_m), data.subset(val_m), data.subset(test_m)
        for part, what in ((train, "training"), (val, "validation"), (test, "test")):
            trimodal.check_rows(part, what)
        classes = sorted(set(labels))

        reps: dict[str, dict] = {}
        predictions: list[tuple] = []
        ids = [c.clip_id for c in test.manifest.clips]
        with folder.stage("probes"):
            for name in o.features:
                row = folder.load_unit("features", name)
                if row is None:
                    row = probe(
                        train.batch.get(name),
                        val.batch.get(name),
                        test.batch.get(name),
                        train.batch.labels,
                        val.batch.labels,
                        test.batch.labels,
                        classes,
                        o.grid,
                        ids,
                    )
                    folder.save_unit(row, "features", name)
                predictions += trimodal.take_per_clip({name: [row]})
                reps[name] = {
                    "kind": "encoder",
                    **summarise([row]),
                    "config": exp.encoder(name).config(),
                }
            labels = (train.batch.labels, val.batch.labels, test.batch.labels)

            def head(name: str, seed: int) -> dict:
                method, log = trimodal.fit_embedder(exp, name, train, seed)
                x = [method.embed(p.batch).get(o.modality) for p in (train, val, test)]
                if any(v is None for v in x):
                    raise ConfigError(
                        f"method {name!r} has no {o.modality} embedding to probe; choose "
                        "[protocol] modality among the ones it learns"
                    )
                row = probe(*x, *labels, classes, o.grid, ids)
                return row | {"seed": seed, "epoch_seconds": log.get("epoch_seconds")}

            units = trimodal.seed_units(folder, methods, config.seeds, head)
            heads = {f"{n} ({o.modality} head)": runs for n, runs in units.items()}
            predictions += trimodal.take_per_clip(heads)
            for name, runs in units.items():
                reps[f"{name} ({o.modality} head)"] = {
                    "kind": "trained head",
                    **summarise(runs),
                    "config": methods[name].config(),
                }
        results = {
            "dataset": data.manifest.name,
            "target": config.target,
            "protocol": {
                "name": self.name,
                "classes": len(classes),
                "clips": {
                    "train": len(train.batch),
                    "val": len(val.batch),
                    "test": len(test.batch),
                },
                "grid": list(o.grid),
                "split_seed": o.split_seed,
                "seeds": config.seeds,
            },
            "encoders": {"features": needs, "text": config.text_encoder},
            "chance": probe_chance(train.batch.labels, test.batch.labels, classes),
            "methods": reps,
        }
        trimodal.write_results(
            exp,
            self,
            results,
            {"train": train, "val": val, "test": test},
            (PREDICTIONS_FILE, PREDICTIONS_HEADER, predictions),
        )
        return results

    @staticmethod
    def markdown(results: dict) -> str:
        p = results["protocol"]
        c = p["clips"]
        lines = [
            f"# {results['dataset']} — linear probe on {results['target']} "
            f"({p['classes']} classes)",
            "",
            f"{c['train']} training / {c['val']} validation / {c['test']} test clips (split by "
            f"recording); C chosen on validation from {p['grid']}. Trained heads: mean ± std "
            f"over seeds {p['seeds']}.",
            "",
            "| representation | " + " | ".join(NAMES[m] for m in METRICS) + " | C |",
            "|---|" + "---|" * (len(METRICS) + 1),
        ]
        ch = results["chance"]
        lines.append(
            "| chance (training prior) | " + " | ".join(f"{ch[m]:.3f}" for m in METRICS) + " | – |"
        )
        for name, r in results["methods"].items():
            cells = [f"{r[m]['mean']:.3f} ± {r[m]['std']:.3f}" for m in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['C']} |")
        lines.append("")
        return "\n".join(lines)

    @staticmethod
    def table(results: dict) -> str:
        rows = [("representation", *(NAMES[m] for m in METRICS))]
        ch = results["chance"]
        rows.append(("chance", *(f"{ch[m]:.3f}" for m in METRICS)))
        for name, r in results["methods"].items():
            rows.append((name, *(f"{r[m]['mean']:.3f}" for m in METRICS)))
        return text_table(rows)


def probe(x_train, x_val, x_test, y_train, y_val, y_test, classes, grid, ids=None) -> dict:
    """Fit the probe (``C`` chosen on validation), score the test clips once. With ``ids``
    (the test clips' ids) the row also holds each test clip's ``[id, label, predicted class,
    rank of the true class]`` under :data:`~harken.protocols.trimodal.PER_CLIP` (ties by
    class order, as :func:`~harken.metrics.probe.probe_report` breaks them)."""
    from harken.methods.probe import LinearProbe
    from harken.metrics.probe import probe_report

    model = LinearProbe(grid=list(grid), seed=0)
    log = model.fit(np.asarray(x_train), list(y_train), np.asarray(x_val), list(y_val))
    scores = model.scores(np.asarray(x_test))
    names = list(model.classes_)
    report = probe_report(scores, list(y_test), names)
    row = {**{m: float(report[m]) for m in METRICS}, "C": log["C"], "validation": log}
    if ids is not None:
        order = np.argsort(-np.asarray(scores, np.float64), axis=1, kind="stable")
        index = {c: k for k, c in enumerate(names)}
        true = np.array([index[y] for y in y_test])
        rank = np.argmax(order == true[:, None], axis=1) + 1
        row[trimodal.PER_CLIP] = [
            [i, y, names[o[0]], int(k)]
            for i, y, o, k in zip(ids, list(y_test), order, rank, strict=True)
        ]
    return row


def summarise(runs: list[dict]) -> dict:
    return {
        **{m: mean_std([r[m] for r in runs]) for m in METRICS},
        "C": sorted({r["C"] for r in runs}),
        "runs": runs,
    }
