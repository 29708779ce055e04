"""results.json / results.md for a run: per-fold scores, mean ± std, chance beside them.

The tables of the classification protocols: UA / WA / UP (+ retrieval) for ``kfold`` and
``all-classes`` (:func:`kfold_markdown`, :func:`kfold_table`), S / U / HM / ZSL for ``gzsl``
(:func:`gzsl_markdown`, :func:`gzsl_table`). Each protocol module picks its own;
:func:`harken.protocols.base.results_markdown` dispatches on ``results["protocol"]["name"]``.
"""

from __future__ import annotations

from harken.metrics.classification import mean_std

METRICS = ("UA", "WA", "UP")
GZSL_METRICS = ("S", "U", "HM", "ZSL")


RETRIEVAL = ("R@1", "R@5", "R@10", "mAP@10", "mean_rank", "median_rank")
DIRECTIONS = ("text_to_audio", "audio_to_text")


def summarise(folds: list[dict]) -> dict:
    """``{"UA": {"mean", "std"}, "WA": ..., "UP": ..., "folds": folds}`` over fold×seed rows,
    plus ``"retrieval": {direction: {metric: {"mean", "std"}}}`` when the rows carry it."""
    out = {**{m: mean_std([f[m] for f in folds]) for m in METRICS}, "folds": folds}
    if folds and all("retrieval" in f for f in folds):
        out["retrieval"] = {
            d: {m: mean_std([f["retrieval"][d][m] for f in folds]) for m in RETRIEVAL}
            for d in DIRECTIONS
        }
    return out


def text_table(rows: list[tuple]) -> str:
    """Rows of cells as left-aligned columns for the terminal (the first row is the header)."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def kfold_markdown(results: dict) -> str:
    """A Markdown table: one row per method, chance first (UA / WA / UP), then retrieval."""
    title = f"# {results['dataset']} — {results['target']} — {results['protocol']['name']}"
    lines = [title, "", "| method | UA | WA | UP |", "|---|---|---|---|"]
    chance = results["chance"]
    lines.append("| chance | " + " | ".join(f"{chance[m]:.3f}" for m in METRICS) + " |")
    for name, r in results["methods"].items():
        cells = [f"{r[m]['mean']:.3f} ± {r[m]['std']:.3f}" for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    with_retrieval = {n: r for n, r in results["methods"].items() if "retrieval" in r}
    if with_retrieval:
        lines += [
            "",
            "Retrieval on the same test clips (class texts ↔ clips), mean over folds × seeds:",
            "",
            "| method | direction | " + " | ".join(RETRIEVAL) + " |",
            "|---|---|" + "---|" * len(RETRIEVAL),
        ]
        for name, r in with_retrieval.items():
            for d in DIRECTIONS:
                cells = [f"{r['retrieval'][d][m]['mean']:.3f}" for m in RETRIEVAL]
                lines.append(f"| {name} | {d.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Folds × seeds per method: "
        + ", ".join(f"{n}: {len(r['folds'])}" for n, r in results["methods"].items()),
        f"Encoders: {results['encoders']}",
        "",
    ]
    return "\n".join(lines)


def kfold_table(results: dict) -> str:
    """A plain-text table for the terminal (UA / WA / UP)."""
    rows = [("method", "UA", "WA", "UP")]
    rows.append(("chance", *(f"{results['chance'][m]:.3f}" for m in METRICS)))
    for name, r in results["methods"].items():
        rows.append((name, *(f"{r[m]['mean']:.3f}±{r[m]['std']:.3f}" for m in METRICS)))
    return text_table(rows)


def gzsl_markdown(results: dict) -> str:
    """A Markdown table: one row per method, chance first."""
    lines = [
        f"# {results['dataset']} — {results['target']} — GZSL (two stages)",
        "",
        "| method | S | U | HM | ZSL | γ (median; chosen on validation) |",
        "|---|---|---|---|---|---|",
    ]
    chance = results["chance"]
    lines.append("| chance | " + " | ".join(f"{chance[m]:.3f}" for m in GZSL_METRICS) + " | – |")
    for name, r in results["methods"].items():
        cells = [f"{r[m]['mean']:.3f} ± {r[m]['std']:.3f}" for m in GZSL_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['calibration']['value']:.3g} |")
    p = results["protocol"]
    lines += [
        "",
        f"Splits: {', '.join(p['splits'])}; seeds of trainable methods: {p['seeds']}.",
        "S and U: mean per-class accuracy on seen / unseen test clips with all classes as "
        "candidates; HM = 2SU/(S+U); ZSL: unseen clips among unseen classes only.",
        "",
    ]
    return "\n".join(lines)


def gzsl_table(results: dict) -> str:
    """A plain-text table for the terminal."""
    rows = [("method", *GZSL_METRICS, "γ")]
    rows.append(("chance", *(f"{results['chance'][m]:.3f}" for m in GZSL_METRICS), "–"))
    for name, r in results["methods"].items():
        cells = [f"{r[m]['mean']:.3f}±{r[m]['std']:.3f}" for m in GZSL_METRICS]
        rows.append((name, *cells, f"{r['calibration']['value']:.3g}"))
    return text_table(rows)
