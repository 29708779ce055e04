"""Sounding-action discovery (``protocol = "discovery"``; Chen et al. 2024, §6.1, Table 2).

Embedding methods (``mc3`` and its baselines, ``contrastive``) are trained on the training clips —
without any sounding label, only audio, video and narrations — then every evaluation clip is
scored by the cosine of its audio and video embeddings (AV) and of its audio and narration
embeddings (AL): "that score indicates how likely it is that the action in the video sounds".
ROC-AUC and PR-AUC against the clips' sounding labels (scikit-learn), beside the random
baseline (ROC 0.5; PR = the positive rate), and both curves, saved for the report
(``curves/<method>-seed<k>.json`` and ``discovery.png``). Every clip's scores are kept in
``scores.csv`` (method, seed, clip id, sounding 0/1, AV, AL) for the report's bootstrap
intervals.

Sounding labels come from the data: a CSV's ``sounding`` column, the paper's annotations joined
to Ego4D narrations, av-mini's VGGSounder audible/visible tags (``avmini:sounding``) or the
EPIC-KITCHENS-100 proxy (``epic100-sounding``: a narrated segment sounds when an EPIC-SOUNDS event
overlaps it). Evaluation clips without a label are left out (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harken.errors import DataError
from harken.metrics.classification import mean_std
from harken.protocols import trimodal
from harken.protocols.base import PROTOCOLS, Protocol, at_least
from harken.reports.results import text_table

if TYPE_CHECKING:
    from harken.experiment import Experiment

#: Score name → the two modalities whose cosine it is.
PAIRS = {"AV": ("audio", "video"), "AL": ("audio", "text")}
METRICS = ("roc_auc", "pr_auc")
#: The per-clip file and its columns.
SCORES_FILE = "scores.csv"
SCORES_HEADER = ["method", "seed", "clip_id", "sounding", *PAIRS]


@dataclass
class DiscoveryOptions(trimodal.TrainSplitOptions):
    """``[protocol]`` keys of ``discovery``: those of
    :class:`~harken.protocols.trimodal.TrainSplitOptions` and

    Attributes:
        curve_points: Points kept per saved curve.
    """

    curve_points: int = 200


@PROTOCOLS.register("discovery")
class Discovery(Protocol):
    """Sounding-action discovery: AV and AL cosine scores against sounding labels."""

    name = "discovery"
    Options = DiscoveryOptions
    needs_classes = False
    PATH_OPTIONS = ("train_dataset",)
    RANGES = (*trimodal.TRAIN_SPLIT_RANGES, ("curve_points", *at_least(2)))

    def run(self, exp: Experiment) -> dict:
        from harken.reports.curves import plot_discovery_curves

        config, folder, o = exp.config, exp.folder, self.options
        methods = trimodal.embedders(exp, self.name)
        needs = sorted({f for m in methods.values() for f in m.features})
        train, test = trimodal.split(exp, needs, o)
        labelled = np.array([s is not None for s in test.sounding])
        skipped_unlabelled = int((~labelled).sum())
        test = test.subset(labelled)
        if not len(test.batch):
            raise DataError(
                f"dataset {test.manifest.name!r}: no evaluation clip has a sounding label; "
                "give a 'sounding' column (yes/no) or use a dataset that has one"
            )
        y = np.array(test.sounding, dtype=bool)

        methods_out: dict[str, dict] = {}
        curves: dict[str, dict] = {}
        with folder.stage("methods"):
            units = trimodal.seed_units(
                folder,
                methods,
                config.seeds,
                lambda name, seed: self._evaluate(exp, name, train, test, y, seed, o.curve_points),
            )
        per_clip = trimodal.take_per_clip(units)
        for name, runs in units.items():
            for row in runs:
                curve = row.pop("curves")
                folder.write_json(f"curves/{name}-seed{row['seed']}.json", curve)
                curves.setdefault(name, curve)
            methods_out[name] = summarise(runs, methods[name].config())
        rate = float(y.mean())
        chance = {p: {"roc_auc": 0.5, "pr_auc": rate} for p in PAIRS}
        results = {
            "dataset": test.manifest.name,
            "target": "sounding",
            "protocol": {
                "name": self.name,
                "clips": len(test.batch),
                "positives": int(y.sum()),
                "positive_rate": rate,
                "unlabelled_left_out": skipped_unlabelled,
                "train_clips": len(train.batch),
                "train_dataset": o.train_dataset,
                "text": test.text_source,
                "seeds": config.seeds,
            },
            "encoders": {"features": needs, "text": config.text_encoder, "frames": config.frames},
            "chance": chance,
            "methods": methods_out,
        }
        for pair in PAIRS:
            with_pair = {n: c[pair] for n, c in curves.items() if pair in c}
            if with_pair:
                plot_discovery_curves(
                    with_pair,
                    folder.path / f"discovery-{pair}.png",
                    f"{results['dataset']}: sounding-action discovery ({pair})",
                )
        trimodal.write_results(
            exp,
            self,
            results,
            {"train": train, "test": test},
            (SCORES_FILE, SCORES_HEADER, per_clip),
        )
        return results

    @staticmethod
    def _evaluate(exp, name, train, test, y, seed, points) -> dict:
        from harken.metrics.discovery import discovery_curves, discovery_report

        method, log = trimodal.fit_embedder(exp, name, train, seed)
        emb = method.embed(test.batch)
        row: dict = {"seed": seed, "config": method.config(), "curves": {}}
        columns = {}
        for pair, (a, b) in PAIRS.items():
            if a not in emb or b not in emb:
                continue
            scores = np.sum(trimodal.unit_rows(emb[a]) * trimodal.unit_rows(emb[b]), axis=1)
            report = discovery_report(scores, y)
            row[pair] = {m: report[m] for m in METRICS}
            row["curves"][pair] = discovery_curves(scores, y, max_points=points)
            columns[pair] = scores.tolist()
        row["epoch_seconds"] = log.get("epoch_seconds")
        row["selection"] = {"criterion": "none (final checkpoint, §4.4)", "score": None}
        row[trimodal.PER_CLIP] = [
            [clip.clip_id, int(label), *(columns[p][i] if p in columns else "" for p in PAIRS)]
            for i, (clip, label) in enumerate(zip(test.manifest.clips, y, strict=True))
        ]
        return row

    @staticmethod
    def markdown(results: dict) -> str:
        p = results["protocol"]
        lines = [
            f"# {results['dataset']} — sounding-action discovery",
            "",
            f"{p['clips']} evaluation clips, {p['positives']} sounding "
            f"(rate {p['positive_rate']:.3f}); methods trained on {p['train_clips']} clips "
            f"(text: {p['text']}). AUC mean ± std over seeds {p['seeds']}.",
            "",
            "| method | AV ROC | AV PR | AL ROC | AL PR | s / epoch |",
            "|---|---|---|---|---|---|",
        ]
        c = results["chance"]
        lines.append(
            f"| random | {c['AV']['roc_auc']:.3f} | {c['AV']['pr_auc']:.3f} | "
            f"{c['AL']['roc_auc']:.3f} | {c['AL']['pr_auc']:.3f} | – |"
        )
        for name, r in results["methods"].items():
            cells = [_cell(r, pair, m) for pair in PAIRS for m in METRICS]
            sec = r.get("epoch_seconds")
            cells.append(f"{sec:.2f}" if sec is not None else "–")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "PR = average precision (area under the step-wise PR curve).", ""]
        return "\n".join(lines)

    @staticmethod
    def table(results: dict) -> str:
        rows = [("method", "AV ROC", "AV PR", "AL ROC", "AL PR")]
        c = results["chance"]
        rows.append(("random", *(f"{c[p][m]:.3f}" for p in PAIRS for m in METRICS)))
        for name, r in results["methods"].items():
            rows.append((name, *(_cell(r, p, m, " ± ") for p in PAIRS for m in METRICS)))
        return text_table(rows)


def _cell(r: dict, pair: str, metric: str, sep: str = " ± ") -> str:
    if pair not in r:
        return "–"
    v = r[pair][metric]
    return f"{v['mean']:.3f}{sep}{v['std']:.3f}"


def summarise(runs: list[dict], config: dict) -> dict:
    """Per method: ``{pair: {metric: {"mean", "std"}}}`` over seeds, the runs and settings."""
    out: dict = {"runs": runs, "config": config}
    for pair in PAIRS:
        if all(pair in r for r in runs):
            out[pair] = {m: mean_std([r[pair][m] for r in runs]) for m in METRICS}
    secs = [s for r in runs if (s := r.get("epoch_seconds"))]
    out["epoch_seconds"] = float(np.mean([np.mean(s) for s in secs])) if secs else None
    return out
