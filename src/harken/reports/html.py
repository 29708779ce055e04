"""``harken report RUN_DIR``: one self-contained HTML page per run folder, figures beside it.

The page opens offline: styles are inline, every figure is a PNG inlined as a ``data:`` URI
(and also written to a folder next to the page, e.g. ``report.html`` → ``report/``), and no
script or stylesheet is fetched from anywhere.

What the page holds depends on the folder's *kind* (:class:`RunKind`, registered with
:func:`run_kind`; the first whose ``recognises`` accepts the folder wins): protocol runs
(``harken run``/``harken demo``: ``results.json`` naming a protocol) here, and the
``harken detect --out``, ``harken bench detect`` and ``harken bench zeroshot`` folders in
:mod:`harken.reports.kinds`. Within protocol runs, each protocol's sections come from a
function registered with :func:`reporter`; protocols without one get their ``results.md``
tables.

A report never replaces a file harken did not write: an existing page must be a harken report
(it carries :data:`GENERATOR`), and the figure folder may hold only figures a report wrote
(listed in its :data:`FIGURES_MARKER` file).

Uncertainty is labelled by kind: **spread** is the standard deviation over the run's folds ×
seeds (or GZSL splits × seeds), as in ``results.md``; **95% CI** is a percentile bootstrap over
the test clips (:func:`harken.metrics.bootstrap.bootstrap_ci`, 1,000 resamples, seed 0). The
tri-modal protocols store their per-clip output (discovery ``scores.csv``, retrieval
``ranks.csv``, linear probe ``predictions.csv``) and resample clips or queries once for all
seeds (:func:`harken.metrics.bootstrap.paired_bootstrap_ci`).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from harken.errors import DataError
from harken.store.atomic import atomic_write_bytes

#: Bootstrap settings of every report (stated on the page).
RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass
class Figure:
    """One figure: a PNG (written beside the page and inlined) and its caption."""

    name: str
    caption: str
    png: bytes


@dataclass
class Section:
    """A titled part of the page: HTML text and figures."""

    title: str
    body: str = ""
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Run:
    """What a reporter reads: the folder, ``results.json`` and the manifest (if any)."""

    path: Path
    results: dict
    manifest: dict
    #: The folder of the page being written (links to audio files are relative to it).
    page_dir: Path | None = None
    #: The name of the folder's :class:`RunKind`.
    kind: str = "protocol run"

    def link(self, target: Path) -> str:
        """A link to ``target`` relative to the page (absolute when the page's folder is
        unknown), so the page and the run folder can move together."""
        if self.page_dir is None:
            return str(target)
        return os.path.relpath(target, self.page_dir)

    def rows(self, name: str) -> list[dict]:
        """The rows of a CSV in the run folder (empty when the file is missing)."""
        f = self.path / name
        if not f.exists():
            return []
        return list(csv.DictReader(f.read_text(encoding="utf-8").splitlines()))


Reporter = Callable[[Run], list[Section]]
REPORTERS: dict[str, Reporter] = {}
#: Protocols whose runs classify a dataset's clips into its classes: their reports add the
#: class-text heatmaps and the clip map (:mod:`harken.reports.maps`).
WITH_MAPS: set[str] = set()


def reporter(*protocols: str, maps: bool = False) -> Callable[[Reporter], Reporter]:
    """Register the section builder of one or more protocols (the per-protocol hook);
    ``maps``: also draw the embedding figures (class-text heatmaps, clip map)."""

    def decorator(fn: Reporter) -> Reporter:
        for name in protocols:
            if name in REPORTERS:
                raise ValueError(f"protocol {name!r} has two reporters")
            REPORTERS[name] = fn
            if maps:
                WITH_MAPS.add(name)
        return fn

    return decorator


# --- building blocks ---------------------------------------------------------------------------


def esc(text) -> str:
    return html.escape(str(text))


class Markup(str):
    """A table cell that is already HTML (a link built with :func:`esc`): not escaped again."""


def table(header: list[str], rows: list[list[str]], note: str = "") -> str:
    """An HTML table (cells are escaped, except :class:`Markup` ones)."""

    def cell(c) -> str:
        return c if isinstance(c, Markup) else esc(c)

    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    caption = f"<p class='note'>{esc(note)}</p>" if note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{caption}"


def markdown_to_html(text: str) -> str:
    """The subset of Markdown that ``results.md`` files use: ``#`` titles, pipe tables and
    paragraphs (everything escaped)."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            header, *body = rows
            body = [r for r in body if not all(set(c) <= set("-: ") for c in r)]
            out.append(table(header, body))
            rows.clear()

    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|"):
            rows.append([c.strip() for c in s.strip("|").split("|")])
            continue
        flush()
        if s.startswith("#"):
            level = min(len(s) - len(s.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{esc(s.lstrip('#').strip())}</h{level}>")
        elif s:
            out.append(f"<p>{esc(s)}</p>")
    flush()
    return "\n".join(out)


def ci_cell(mean: float, std: float | None, ci: dict | None) -> str:
    """``mean ± spread [low, high]``."""
    text = f"{mean:.3f}"
    if std is not None:
        text += f" ± {std:.3f}"
    if ci is not None:
        text += f"  [{ci['low']:.3f}, {ci['high']:.3f}]"
    return text


def consistent(ci: dict, method: dict, tolerance: float = 1e-6) -> dict:
    """The CIs whose point value (recomputed from predictions.csv) matches the run's own mean;
    a mismatch means the stored predictions are not the ones the score counted (an older run
    format), so no interval is shown for that metric rather than a misleading one."""
    return {k: v for k, v in ci.items() if abs(v["value"] - method[k]["mean"]) <= tolerance}


def encode_rows(rows: list[dict], classes: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the rows' ``label`` and ``predicted`` (``classes`` grows as needed)."""
    labels = [r["label"] for r in rows]
    predicted = [r["predicted"] for r in rows]
    for c in (*labels, *predicted):
        classes.setdefault(c, len(classes))
    return (
        np.array([classes[c] for c in labels], dtype=np.int64),
        np.array([classes[c] for c in predicted], dtype=np.int64),
    )


def grouped_predictions(run: Run, unit_column: str) -> dict[str, dict[tuple, list[dict]]]:
    """``predictions.csv`` as ``{method: {(unit, seed): rows}}``."""
    out: dict[str, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in run.rows("predictions.csv"):
        out[r["method"]][(r[unit_column], r["seed"])].append(r)
    return out


def per_class_recall(rows: list[dict]) -> dict[str, float]:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        h = hits[r["label"]]
        h[0] += r["label"] == r["predicted"]
        h[1] += 1
    return {c: h / n for c, (h, n) in hits.items()}


def confusion_section(by_method: dict[str, dict[tuple, list[dict]]], what: str) -> Section:
    from harken.reports.figures import confusion_matrix_png

    figures = []
    for name, units in by_method.items():
        rows = [r for unit in units.values() for r in unit]
        png, _, _ = confusion_matrix_png(
            [r["label"] for r in rows], [r["predicted"] for r in rows], title=name
        )
        figures.append(Figure(f"confusion-{slug(name)}", f"{name}: confusion over {what}", png))
    return Section(
        "Confusion matrices",
        "<p>Rows: true class; columns: predicted class; colour: share of the row's clips, "
        f"numbers: clip counts, pooled over {esc(what)}.</p>",
        figures,
    )


def recall_section(by_method: dict[str, dict[tuple, list[dict]]], what: str) -> Section:
    from harken.reports.figures import recall_bars

    recalls = {
        name: per_class_recall([r for unit in units.values() for r in unit])
        for name, units in by_method.items()
    }
    png = recall_bars(recalls, title="per-class recall")
    return Section(
        "Per-class recall",
        f"<p>Recall of each class on its test clips, pooled over {esc(what)}.</p>",
        [Figure("per-class-recall", "per-class recall", png)],
    )


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-") or "x"


# --- protocols ---------------------------------------------------------------------------------


@reporter("kfold", "all-classes", maps=True)
def kfold_sections(run: Run) -> list[Section]:
    """Results with spread and bootstrap CIs, per-class recall, confusion matrices."""
    from harken.metrics.bootstrap import bootstrap_ci, unweighted_accuracy, weighted_accuracy

    r = run.results
    by_method = grouped_predictions(run, "fold")
    rows = [["chance", *(f"{r['chance'][m]:.3f}" for m in ("UA", "WA", "UP"))]]
    for name, m in r["methods"].items():
        units = by_method.get(name, {})
        ci: dict = {}
        if units:
            classes: dict[str, int] = {}
            metrics = {"UA": unweighted_accuracy, "WA": weighted_accuracy}
            data = [(*encode_rows(u, classes), metrics) for u in units.values()]
            ci = consistent(bootstrap_ci(data, n=RESAMPLES, seed=BOOTSTRAP_SEED), m)
        rows.append(
            [name]
            + [ci_cell(m[k]["mean"], m[k]["std"], ci.get(k)) for k in ("UA", "WA")]
            + [ci_cell(m["UP"]["mean"], m["UP"]["std"], None)]
        )
    n_units = {n: len(m["folds"]) for n, m in r["methods"].items()}
    note = (
        "mean ± spread (standard deviation over folds × seeds) [95% CI: bootstrap over test "
        f"clips, {RESAMPLES} resamples, seed {BOOTSTRAP_SEED}, clips resampled within each fold "
        "× seed]. UP has no CI. Folds × seeds: "
        + ", ".join(f"{n}: {k}" for n, k in n_units.items())
    )
    sections = [Section("Results", table(["method", "UA", "WA", "UP"], rows, note))]
    if by_method:
        what = "all folds × seeds"
        sections += [recall_section(by_method, what), confusion_section(by_method, what)]
    else:
        sections.append(Section("Predictions", "<p>This run has no predictions.csv.</p>"))
    return sections


def _gzsl_seen(run: Run) -> dict[str, list[str]]:
    """Split name → its stage-2 seen classes, from ``splits/gzsl*.json``."""
    out = {}
    for f in sorted((run.path / "splits").glob("gzsl*.json")):
        split = json.loads(f.read_text(encoding="utf-8"))
        out[split["name"]] = list(split["classes"]["stage_2_train"])
    return out


def _mean_curve(curves: list[dict]) -> dict | None:
    curves = [c for c in curves if c]
    if not curves or any(c["gamma"] != curves[0]["gamma"] for c in curves):
        return curves[0] if curves else None
    return {
        "gamma": curves[0]["gamma"],
        **{k: np.mean([c[k] for c in curves], axis=0).tolist() for k in ("S", "U", "HM")},
    }


@reporter("gzsl", maps=True)
def gzsl_sections(run: Run) -> list[Section]:
    """S/U/HM/ZSL with spread and CIs, γ curves, per-class recall, confusion matrices."""
    from harken.metrics.bootstrap import bootstrap_ci, seen_unseen
    from harken.reports.figures import gzsl_gamma_curves

    r = run.results
    by_method = grouped_predictions(run, "split")
    seen = _gzsl_seen(run)
    rows = [["chance", *(f"{r['chance'][m]:.3f}" for m in ("S", "U", "HM", "ZSL")), "–"]]
    gamma_figures, missing_curves = [], []
    for name, m in r["methods"].items():
        units = by_method.get(name, {})
        ci: dict = {}
        curves_stored = all(row.get("calibration_curve") for row in m.get("runs", []))
        # runs from before calibration curves were stored also wrote uncalibrated predictions
        if units and curves_stored and all(split in seen for split, _ in units):
            classes: dict[str, int] = {}
            data = []
            for (split, _), u in units.items():
                y, p = encode_rows(u, classes)
                codes = [classes.setdefault(c, len(classes)) for c in seen[split]]
                data.append((y, p, seen_unseen(codes)))
            ci = consistent(bootstrap_ci(data, n=RESAMPLES, seed=BOOTSTRAP_SEED), m)
        rows.append(
            [name]
            + [ci_cell(m[k]["mean"], m[k]["std"], ci.get(k)) for k in ("S", "U", "HM")]
            + [ci_cell(m["ZSL"]["mean"], m["ZSL"]["std"], None), f"{m['calibration']['value']:.3g}"]
        )
        stored = [row.get("calibration_curve") for row in m.get("runs", [])]
        if all(stored) and stored:
            curves = {
                part: _mean_curve([{"gamma": c["gamma"], **c[part]} for c in stored if c[part]])
                for part in ("validation", "test")
            }
            png = gzsl_gamma_curves(curves, m["calibration"]["value"], title=name)
            gamma_figures.append(
                Figure(f"gzsl-gamma-{slug(name)}", f"{name}: S and U against γ", png)
            )
        else:
            missing_curves.append(name)
    note = (
        "mean ± spread (standard deviation over splits × seeds) [95% CI: bootstrap over test "
        f"clips, {RESAMPLES} resamples, seed {BOOTSTRAP_SEED}, within each split × seed; from "
        "predictions.csv, which holds the predictions at the chosen γ]. ZSL has no CI "
        "(predictions.csv holds the GZSL predictions only). Runs written before harken "
        "stored γ curves have no CI (their predictions.csv is uncalibrated)."
    )
    sections = [
        Section("Results", table(["method", "S", "U", "HM", "ZSL", "γ (median)"], rows, note))
    ]
    text = (
        "<p>Calibrated stacking subtracts γ from every seen-class score: S falls and U rises "
        "as γ grows. γ is chosen by validation HM (left); the test curves (right) are shown, "
        "never used to choose. Curves are means over splits × seeds; the dashed line is the "
        "median chosen γ.</p>"
    )
    if missing_curves:
        text += (
            "<p class='note'>No stored γ curves for "
            + esc(", ".join(missing_curves))
            + ": this run predates them (each unit's <code>calibration_curve</code>); rerun it "
            "with this harken version to see them.</p>"
        )
    sections.append(Section("Seen and unseen accuracy against γ", text, gamma_figures))
    if by_method:
        what = "all splits × seeds (predictions at the chosen γ)"
        sections += [recall_section(by_method, what), confusion_section(by_method, what)]
    return sections


def results_md_section(run: Run, note: str) -> Section:
    """The protocol's own ``results.md`` tables (they carry mean ± spread over seeds)."""
    md = run.path / "results.md"
    text = md.read_text(encoding="utf-8").split(FIGURES_START)[0] if md.exists() else ""
    body = markdown_to_html(text)
    return Section("Results", (body or "<p>No results.md in this run.</p>") + note)


# --- tri-modal protocols (discovery, retrieval, linear probe) ------------------------------------


def per_unit(run: Run, name: str, *keys: str) -> dict[tuple, dict[str, list[dict]]]:
    """The rows of the per-clip file ``name`` as ``{(method, *keys): {seed: rows}}``."""
    out: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in run.rows(name):
        out[(r["method"], *(r[k] for k in keys))][r["seed"]].append(r)
    return out


def aligned(units: dict[str, list[dict]], key: str) -> list[list[dict]] | None:
    """Each seed's rows sorted by ``key``; None unless every seed has the same rows (a paired
    bootstrap resamples the same clips or queries in every seed)."""
    out = [sorted(rows, key=lambda r: r[key]) for rows in units.values()]
    ids = [[r[key] for r in rows] for rows in out]
    if not out or any(i != ids[0] for i in ids) or len(set(ids[0])) != len(ids[0]):
        return None
    return out


def paired_ci(
    units: list[list[dict]] | None, columns: dict[str, Callable], metrics: dict, strata=None
) -> dict:
    """:func:`harken.metrics.bootstrap.paired_bootstrap_ci` of per-clip rows (empty without
    rows); ``columns`` maps a column name to the function reading it from a row."""
    from harken.metrics.bootstrap import paired_bootstrap_ci

    if not units:
        return {}
    data = [{c: np.array([get(r) for r in rows]) for c, get in columns.items()} for rows in units]
    strata_values = data[0][strata] if strata else None
    return paired_bootstrap_ci(
        data, metrics, n=RESAMPLES, seed=BOOTSTRAP_SEED, strata=strata_values
    )


def trimodal_note(what: str, file: str, present: bool, extra: str = "") -> str:
    text = (
        "mean ± spread (standard deviation over training seeds) [95% CI: percentile bootstrap "
        f"over the {what}, {RESAMPLES} resamples, seed {BOOTSTRAP_SEED}; each resample is "
        f"applied to every seed, then averaged over seeds; from {file}]. {extra}"
    )
    if not present:
        text += (
            f" This run has no {file} (written by harken since the report's intervals), so "
            "no CI is shown; rerun it to get them."
        )
    return text.strip()


@reporter("discovery")
def discovery_sections(run: Run) -> list[Section]:
    """AUCs with the seed spread and bootstrap CIs over the evaluation clips (from
    ``scores.csv``, resampled within sounding / silent clips), ROC and PR curves per modality
    pair (first seed of each method, from ``curves/``)."""
    from harken.metrics.bootstrap import average_precision, roc_auc
    from harken.reports.figures import discovery_png

    r, pairs, metrics = run.results, ("AV", "AL"), ("roc_auc", "pr_auc")
    by_method = per_unit(run, "scores.csv")
    c = r["chance"]
    rows = [["random", *(f"{c[p][m]:.3f}" for p in pairs for m in metrics)]]
    for name, m in r["methods"].items():
        units = aligned(by_method.get((name,), {}), "clip_id")
        cells = []
        for pair in pairs:
            if pair not in m:
                cells += ["–", "–"]
                continue
            ci = paired_ci(
                units,
                {"y": lambda row: int(row["sounding"]), "s": lambda row, p=pair: float(row[p])},
                {
                    "roc_auc": lambda x: roc_auc(x["y"], x["s"]),
                    "pr_auc": lambda x: average_precision(x["y"], x["s"]),
                },
                strata="y",
            )
            ci = consistent(ci, m[pair]) if ci else {}
            cells += [ci_cell(m[pair][k]["mean"], m[pair][k]["std"], ci.get(k)) for k in metrics]
        rows.append([name, *cells])
    p = r["protocol"]
    note = trimodal_note(
        f"{p['clips']} evaluation clips (resampled within the sounding and the silent ones)",
        "scores.csv",
        bool(by_method),
        "PR = average precision (step-wise area under the PR curve).",
    )
    intro = (
        f"<p>{p['clips']} evaluation clips, {p['positives']} sounding (rate "
        f"{p['positive_rate']:.3f}); methods trained on {p['train_clips']} clips (text: "
        f"{esc(p['text'])}), seeds {esc(p['seeds'])}. AV: audio–video cosine, AL: "
        "audio–language cosine.</p>"
    )
    header = ["method", "AV ROC-AUC", "AV PR-AUC", "AL ROC-AUC", "AL PR-AUC"]
    sections = [Section("Results", intro + table(header, rows, note))]
    first: dict[str, dict] = {}
    for f in sorted((run.path / "curves").glob("*-seed*.json")):
        method, _, seed_text = f.stem.rpartition("-seed")
        seed = int(seed_text) if seed_text.isdigit() else 0
        if method in run.results.get("methods", {}) and (
            method not in first or seed < first[method][0]
        ):
            first[method] = (seed, json.loads(f.read_text(encoding="utf-8")))
    figures = []
    pairs_drawn = sorted({p for _, c in first.values() for p in c})
    for pair in pairs_drawn:
        curves = {m: c[pair] for m, (_, c) in first.items() if pair in c}
        title = f"{pair}: " + ("audio–video" if pair == "AV" else "audio–language") + " discovery"
        figures.append(Figure(f"discovery-{pair}", title, discovery_png(curves, title)))
    text = (
        "<p>ROC and precision–recall of telling sounding from silent actions, each method's "
        "first seed; the dashed lines are the random baseline.</p>"
        if figures
        else "<p>This run has no curves/ folder.</p>"
    )
    sections.append(Section("ROC and precision–recall curves", text, figures))
    return sections


RETRIEVAL_KS = (1, 5, 10)
RETRIEVAL_METRICS = ("R@1", "R@5", "R@10", "mAP@10", "median_rank")


def recall_at_k_section(panels: dict[str, dict[str, dict[int, float]]], text: str) -> Section:
    """The R@k figure: one panel per direction, ``{panel: {line: {k: R@k}}}``."""
    from harken.reports.figures import recall_at_k

    png = recall_at_k(panels, title="recall at k")
    figure = Figure("recall-at-k", "R@k per method and direction", png)
    return Section("Recall at k", text, [figure])


def _recall_curve(units: list[list[dict]]) -> dict[int, float]:
    """R@k at every k from 1 to the pool size, the mean over seeds of ``mean(rank ≤ k)``."""
    items = int(units[0][0]["items"])
    curves = []
    for rows in units:
        counts = np.bincount([int(r["rank"]) for r in rows], minlength=items + 1)[1 : items + 1]
        curves.append(np.cumsum(counts) / len(rows))
    return dict(zip(range(1, items + 1), np.mean(curves, axis=0).tolist(), strict=True))


@reporter("retrieval")
def retrieval_sections(run: Run) -> list[Section]:
    """R@1/5/10, mAP@10 and median rank with the seed spread and bootstrap CIs over the queries
    (from ``ranks.csv``); R@k curves at every k per direction, with the random baseline."""
    from harken.metrics.bootstrap import mean_of, median, recall_at
    from harken.protocols.retrieval import random_recall_curve

    r = run.results
    by_unit = per_unit(run, "ranks.csv", "direction")
    metrics = {
        **{f"R@{k}": recall_at(k) for k in RETRIEVAL_KS},
        "mAP@10": mean_of("ap"),
        "median_rank": median("rank"),
    }
    columns = {"rank": lambda row: int(row["rank"]), "ap": lambda row: float(row["ap@10"])}
    rows = []
    for kind, chance in r.get("chance", {}).items():
        rows.append(
            ["random", kind.replace("_", " ")]
            + [f"{chance[k]:.3f}" if k in chance else "–" for k in RETRIEVAL_METRICS]
        )
    panels: dict[str, dict[str, dict[int, float]]] = defaultdict(dict)
    baselines: dict[str, dict[int, float]] = {}
    for name, m in r["methods"].items():
        for direction, v in m.get("directions", {}).items():
            units = aligned(by_unit.get((name, direction), {}), "query_id")
            ci = consistent(paired_ci(units, columns, metrics), v) if units else {}
            rows.append(
                [name, direction.replace("_", " ")]
                + [ci_cell(v[k]["mean"], v[k]["std"], ci.get(k)) for k in RETRIEVAL_METRICS]
            )
            if units:
                panel = direction.replace("_", " ")
                panels[panel][name] = _recall_curve(units)
                if panel not in baselines:
                    first = units[0]
                    ks = list(range(1, int(first[0]["items"]) + 1))
                    values = random_recall_curve(
                        [int(q["relevant"]) for q in first], [int(q["items"]) for q in first], ks
                    )
                    baselines[panel] = dict(zip(ks, values, strict=True))
    p = r["protocol"]
    note = trimodal_note(
        "queries of each direction",
        "ranks.csv",
        bool(by_unit),
        "A retrieval is correct when both clips share a group; median rank: the rank of the "
        "first correct item, lower is better.",
    )
    intro = (
        f"<p>{p['groups']} groups ({esc(r.get('target'))}); {p['queries']} queries, "
        f"{p['items']} retrieval items; methods trained on {p['train_clips']} clips (text: "
        f"{esc(p['text'])}), seeds {esc(p['seeds'])}.</p>"
    )
    header = ["method", "direction", *RETRIEVAL_METRICS]
    sections = [Section("Results", intro + table(header, rows, note))]
    if panels:
        for panel, curve in baselines.items():
            panels[panel]["random"] = curve
        text = (
            "<p>Recall at every k from 1 to the retrieval pool's size (log scale), from each "
            "query's rank in ranks.csv, the mean over seeds; one panel per direction, the "
            "dashed line is the expected R@k of a random ranking of the same pool.</p>"
        )
    else:
        lines: dict[str, dict[int, float]] = {}
        for name, m in r["methods"].items():
            for direction, metrics_ in m.get("directions", {}).items():
                label = f"{name}, {direction.replace('_', ' ')}"
                lines[label] = {k: metrics_[f"R@{k}"]["mean"] for k in RETRIEVAL_KS}
        for kind, chance in r.get("chance", {}).items():
            lines[f"random ({kind.replace('_', ' ')})"] = {
                k: chance[f"R@{k}"] for k in RETRIEVAL_KS
            }
        panels = {"all directions": lines}
        text = (
            "<p>Recall at k = 1, 5, 10 (means over seeds), the random baselines included. This "
            "run has no ranks.csv (each query's rank), so only these three points are drawn; "
            "rerun it for the curve at every k.</p>"
        )
    sections.append(recall_at_k_section(dict(panels), text))
    return sections


PROBE_METRICS = ("top1", "top5", "mca", "map", "mauc")
PROBE_NAMES = {"top1": "Top-1", "top5": "Top-5", "mca": "mCA", "map": "mAP", "mauc": "mAUC"}


@reporter("linear-probe")
def linear_probe_sections(run: Run) -> list[Section]:
    """The probe table with the seed spread of the trained heads and bootstrap CIs of Top-1,
    Top-5 and mCA over the test clips (from ``predictions.csv``); validation top-1 against C."""
    from harken.metrics.bootstrap import recall_at, unweighted_accuracy, weighted_accuracy
    from harken.reports.figures import validation_grid

    r = run.results
    p = r["protocol"]
    by_method = per_unit(run, "predictions.csv")
    codes: dict[str, int] = {}
    columns = {
        "y": lambda row: codes.setdefault(row["label"], len(codes)),
        "p": lambda row: codes.setdefault(row["predicted"], len(codes)),
        "rank": lambda row: int(row["true_rank"]),
    }
    metrics = {
        "top1": lambda c: weighted_accuracy(c["y"], c["p"]),
        "top5": recall_at(min(5, p["classes"])),
        "mca": lambda c: unweighted_accuracy(c["y"], c["p"]),
    }
    ch = r["chance"]
    rows = [["chance (training prior)", *(f"{ch[m]:.3f}" for m in PROBE_METRICS), "–"]]
    for name, m in r["methods"].items():
        units = aligned(by_method.get((name,), {}), "clip_id")
        ci = consistent(paired_ci(units, columns, metrics), m) if units else {}
        frozen = m.get("kind") == "encoder"
        cells = [
            ci_cell(m[k]["mean"], None if frozen else m[k]["std"], ci.get(k)) for k in PROBE_METRICS
        ]
        rows.append([name, *cells, ", ".join(f"{c:g}" for c in m.get("C", []))])
    clips = p["clips"]
    note = trimodal_note(
        f"{clips['test']} test clips",
        "predictions.csv",
        bool(by_method),
        "Frozen encoders have one run (no spread). mAP and mAUC have no CI (they need every "
        "class's score, which predictions.csv does not keep).",
    )
    intro = (
        f"<p>{p['classes']} classes; {clips['train']} training / {clips['val']} validation / "
        f"{clips['test']} test clips (split by recording); C chosen on validation from "
        f"{esc(p['grid'])}; trained heads over seeds {esc(p['seeds'])}.</p>"
    )
    header = ["representation", *(PROBE_NAMES[m] for m in PROBE_METRICS), "C"]
    sections = [Section("Results", intro + table(header, rows, note))]
    curves = {}
    for name, m in r["methods"].items():
        runs = m.get("runs") or []
        grid = runs[0].get("validation", {}).get("grid") if runs else None
        if grid:
            chosen = runs[0]["validation"]["C"]
            curves[name] = ([g["C"] for g in grid], [g["top1"] for g in grid], chosen)
    if curves:
        png = validation_grid(curves)
        sections.append(
            Section(
                "Choosing C",
                "<p>Validation top-1 at each C of the grid (first seed); ★ marks the chosen C.</p>",
                [Figure("probe-validation", "validation top-1 against C", png)],
            )
        )
    return sections


def generic_sections(run: Run) -> list[Section]:
    """Protocols without a reporter: their own results.md."""
    return [results_md_section(run, "")]


# --- the page ----------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;white-space:nowrap}
th{background:#f3f3f3} .note{color:#555;font-size:13px} figure{margin:1em 0}
figure img{max-width:100%} figcaption{color:#555;font-size:13px} code{background:#f3f3f3}
"""


def read_json(path: Path):
    """A JSON file of a run folder.

    Raises:
        DataError: it is not valid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); rerun what wrote it") from e


@dataclass(frozen=True)
class RunKind:
    """One kind of folder ``harken report`` reads.

    Attributes:
        name: Short name (shown on the page).
        what: What writes such a folder and how it is recognised (for errors).
        recognises: Whether a folder is of this kind (cheap: file names and top-level keys).
        results: The folder's main record (``Run.results``).
        sections: ``(run, maps) -> sections``; ``maps`` is ``write_report``'s flag.
        title: The page title.
        meta: Rows ``[name, value]`` of the table under the title (the run folder, kind,
            commit and date are added to them).
        markdown: The folder's Markdown summary that gets a "Figures" section linking the
            report (when the page is written into the folder), if any.
    """

    name: str
    what: str
    recognises: Callable[[Path], bool]
    results: Callable[[Path], dict]
    sections: Callable[[Run, bool], list[Section]]
    title: Callable[[Run], str]
    meta: Callable[[Run], list[list[str]]]
    markdown: str | None = None


RUN_KINDS: list[RunKind] = []


def run_kind(kind: RunKind) -> RunKind:
    """Register a kind of folder (kinds are tried in registration order)."""
    if any(k.name == kind.name for k in RUN_KINDS):
        raise ValueError(f"run kind {kind.name!r} is registered twice")
    RUN_KINDS.append(kind)
    return kind


def registered_kinds() -> list[RunKind]:
    """Every kind: protocol runs (here) and those of :mod:`harken.reports.kinds`."""
    import harken.reports.kinds  # noqa: F401  (registers its kinds on import)

    return RUN_KINDS


def kind_named(name: str) -> RunKind:
    """The registered kind called ``name``."""
    for kind in registered_kinds():
        if kind.name == name:
            return kind
    raise ValueError(f"no run kind {name!r}; known: {[k.name for k in RUN_KINDS]}")


def kind_of(path: Path) -> RunKind:
    """The kind of the folder ``path``.

    Raises:
        DataError: no kind recognises it (the message lists what each expects).
    """
    kinds = registered_kinds()
    if path.is_dir():
        for kind in kinds:
            if kind.recognises(path):
                return kind
    if not path.exists():
        found = "it does not exist"
    elif not path.is_dir():
        found = "it is a file, not a folder"
    elif (path / "results.json").is_file():
        found = "its results.json names no protocol and holds no benchmark table"
    else:
        found = "it holds none of these files"
    expected = "; ".join(k.what for k in kinds)
    raise DataError(
        f"{path}: no results.json, bench.json or segments.json that harken can report "
        f"({found}). `harken report` reads {expected}. Pass one of those folders."
    )


def load_run(run_dir: str | Path) -> Run:
    """The folder ``run_dir`` as a :class:`Run` of its kind (its main record and
    ``manifest.json``).

    Raises:
        DataError: the folder is of no known kind, or a file of it is not valid JSON.
    """
    path = Path(run_dir)
    kind = kind_of(path)
    manifest_file = path / "manifest.json"
    manifest = read_json(manifest_file) if manifest_file.exists() else {}
    return Run(path, kind.results(path), manifest, kind=kind.name)


def _results_json(path: Path) -> dict:
    results = read_json(path / "results.json") if (path / "results.json").is_file() else {}
    return results if isinstance(results, dict) else {}


def _is_protocol_run(path: Path) -> bool:
    protocol = _results_json(path).get("protocol")
    return isinstance(protocol, dict) and isinstance(protocol.get("name"), str)


def protocol_sections(run: Run, maps: bool = True) -> list[Section]:
    """The protocol's sections (its registered reporter, else its results.md), then the
    embedding figures where the protocol has them and ``maps`` is on."""
    from harken.reports.maps import class_similarity_section, clip_map_section

    name = run.results.get("protocol", {}).get("name")
    sections = REPORTERS.get(name, generic_sections)(run)
    if maps and name in WITH_MAPS:
        sections += [class_similarity_section(run), clip_map_section(run)]
    return sections


def _protocol_title(run: Run) -> str:
    r = run.results
    return f"{r.get('dataset', '?')} — {r.get('target', '?')} — {r['protocol']['name']}"


def _protocol_meta(run: Run) -> list[list[str]]:
    r = run.results
    return [
        ["protocol", r["protocol"]["name"]],
        ["encoders", json.dumps(r.get("encoders", {}))],
    ]


run_kind(
    RunKind(
        name="protocol run",
        what="a `harken run` / `harken demo` folder (results.json naming its protocol)",
        recognises=_is_protocol_run,
        results=_results_json,
        sections=protocol_sections,
        title=_protocol_title,
        meta=_protocol_meta,
        markdown="results.md",
    )
)


def sections_for(run: Run, maps: bool = True) -> list[Section]:
    """The sections of the run's kind (for protocol runs: the protocol's reporter, then the
    embedding figures where the protocol has them and ``maps`` is on)."""
    kind = kind_named(run.kind)
    return kind.sections(run, maps)


#: Marks a page as a harken report (an existing page without it is never replaced).
GENERATOR = "<meta name='generator' content='harken report'>"
#: The file in a figure folder listing the figures reports wrote there (JSON).
FIGURES_MARKER = ".harken-report.json"


def render(run: Run, sections: list[Section], figure_dir: Path, page: Path) -> str:
    """The HTML page; writes each figure's PNG into ``figure_dir``."""
    kind = kind_named(run.kind)
    title = kind.title(run)
    meta = [
        ["run folder", str(run.path)],
        ["kind", kind.name],
        *kind.meta(run),
        ["harken commit", str(run.manifest.get("git_commit") or run.manifest.get("source", "?"))],
        ["report written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")],
    ]
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{GENERATOR}",
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        table(["", ""], meta),
    ]
    for s in sections:
        parts.append(f"<section><h2>{esc(s.title)}</h2>{s.body}")
        for fig in s.figures:
            png_path = figure_dir / f"{fig.name}.png"
            atomic_write_bytes(png_path, fig.png)
            data = base64.b64encode(fig.png).decode("ascii")
            rel = f"{figure_dir.name}/{png_path.name}"
            parts.append(
                f"<figure><img alt='{esc(fig.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{esc(fig.caption)} ({esc(rel)})</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def is_harken_page(text: str) -> bool:
    """Whether an HTML file's text is a harken report: it carries :data:`GENERATOR`, or (pages
    written before the marker) it starts as :func:`render`'s pages do and holds their style."""
    legacy = text.startswith("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")
    return GENERATOR in text or (legacy and STYLE in text)


def owned_figures(page: Path, figure_dir: Path) -> set[str]:
    """The files of ``figure_dir`` that reports wrote: those listed in its
    :data:`FIGURES_MARKER`, and those an existing harken page beside it names as its figures
    (pages written before the marker)."""
    owned = _listed(figure_dir / FIGURES_MARKER)
    if page.is_file():
        text = page.read_text(encoding="utf-8", errors="replace")
        if is_harken_page(text):
            folder = re.escape(figure_dir.name)
            owned |= set(re.findall(rf"\({folder}/([^/()<>'\"]+\.png)\)", text))
    return owned


def _listed(marker: Path) -> set[str]:
    """The figure names a :data:`FIGURES_MARKER` file lists (none when it is missing or
    broken: a broken marker vouches for nothing)."""
    if not marker.is_file():
        return set()
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return set()
    figures = data.get("figures") if isinstance(data, dict) else None
    return {f for f in figures if isinstance(f, str)} if isinstance(figures, list) else set()


def check_ownership(page: Path, figure_dir: Path) -> set[str]:
    """Refuse to replace what harken did not write; returns the report files already in
    ``figure_dir``.

    Raises:
        DataError: ``page`` exists and is not a harken report, or ``figure_dir`` exists and
            holds anything a report did not write there.
    """
    if page.exists() and not page.is_file():
        raise DataError(f"{page} is a folder; name the report FILE.html")
    if page.is_file() and not is_harken_page(page.read_text(encoding="utf-8", errors="replace")):
        raise DataError(
            f"{page} exists and is not a harken report; harken does not replace files it did "
            "not write: pass another --out (or move that file away)"
        )
    if not figure_dir.exists():
        return set()
    if not figure_dir.is_dir():
        raise DataError(
            f"{figure_dir} exists and is not a folder; the report's figures go there: pass "
            "another --out"
        )
    owned = owned_figures(page, figure_dir)
    foreign = sorted(
        p.name for p in figure_dir.iterdir() if p.name != FIGURES_MARKER and p.name not in owned
    )
    if foreign:
        shown = ", ".join(foreign[:5])
        if len(foreign) > 5:
            shown += f" and {len(foreign) - 5} more"
        raise DataError(
            f"{figure_dir}: the report's figure folder holds files no harken report wrote "
            f"({shown}); harken does not replace or mix with them: pass another --out (the "
            f"figures go to the folder named after the page)"
        )
    return owned


def _mark_figures(figure_dir: Path, page: Path, names: set[str]) -> None:
    marker = {"format": "harken report figures", "page": page.name, "figures": sorted(names)}
    atomic_write_bytes(figure_dir / FIGURES_MARKER, json.dumps(marker, indent=1).encode("utf-8"))


def write_report(run_dir: str | Path, out: str | Path | None = None, maps: bool = True) -> Path:
    """Write the report of the folder ``run_dir``.

    Args:
        run_dir: A run folder: ``harken run``/``demo`` (``results.json`` and what its protocol
            writes), ``harken detect --out``, ``harken bench detect`` or ``harken bench
            zeroshot`` (see :func:`kind_of`).
        out: The HTML file (default ``RUN_DIR/report.html``); its figures go to a folder named
            after it beside it (``report.html`` → ``report/``).
        maps: Draw the embedding figures (class-text heatmaps, t-SNE clip map); they load
            the run's text and audio encoders and read the feature store.

    Returns:
        The HTML file's path.

    Raises:
        DataError: ``run_dir`` is of no kind harken reports, ``out`` is not an HTML file name,
            or writing would replace a file harken did not write (:func:`check_ownership`).
    """
    run = load_run(run_dir)
    page = Path(out) if out is not None else run.path / "report.html"
    if page.suffix.lower() not in (".html", ".htm"):
        raise DataError(f"{page}: the report is an HTML file; name it FILE.html")
    figure_dir = page.parent / page.stem
    earlier = check_ownership(page, figure_dir)
    run.page_dir = page.parent
    sections = sections_for(run, maps)
    figures = [f for s in sections for f in s.figures]
    names = {f"{f.name}.png" for f in figures}
    if len(names) != len(figures):
        raise ValueError("two figures of one report share a name")  # a reporter's bug
    figure_dir.mkdir(parents=True, exist_ok=True)
    _mark_figures(figure_dir, page, earlier | names)  # before writing: a crash leaves them owned
    text = render(run, sections, figure_dir, page)
    atomic_write_bytes(page, text.encode("utf-8"))
    for stale in earlier - names:
        (figure_dir / stale).unlink(missing_ok=True)
    _mark_figures(figure_dir, page, names)
    markdown = kind_named(run.kind).markdown
    if markdown and page.resolve().parent == run.path.resolve() and (run.path / markdown).exists():
        link_figures(run.path / markdown, page, figures)
    return page


FIGURES_START = "<!-- harken report: figures -->"
FIGURES_END = "<!-- end of harken report figures -->"


def link_figures(results_md: Path, page: Path, figures: list[Figure]) -> None:
    """Add (or replace) a "Figures" section at the end of ``results.md`` that links the report
    and each figure (relative links, so the folder can move)."""
    text = results_md.read_text(encoding="utf-8")
    if FIGURES_START in text:
        text = text[: text.index(FIGURES_START)].rstrip("\n") + "\n"
    folder = page.stem
    lines = [
        FIGURES_START,
        "## Figures",
        "",
        f"Report: [{page.name}]({page.name}) (opens offline).",
        "",
        *(f"- [{f.caption}]({folder}/{f.name}.png)" for f in figures),
        FIGURES_END,
        "",
    ]
    atomic_write_bytes(results_md, (text + "\n" + "\n".join(lines)).encode("utf-8"))
