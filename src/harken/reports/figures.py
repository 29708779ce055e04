"""The report's static figures as PNG bytes: recall bars, confusion matrices, GZSL γ curves,
R@k curves. Each is drawn on a bare matplotlib ``Figure`` (Agg canvas, no pyplot, no display)
and returned as bytes; :mod:`harken.reports.html` writes them beside the page and inlines them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def recall_bars(recalls: Mapping[str, Mapping[str, float]], title: str = "") -> bytes:
    """Grouped horizontal bars: one group per class, one bar per method (recall in [0, 1]).

    Args:
        recalls: ``{method: {class: recall}}``.
        title: Figure title.
    """
    from matplotlib.figure import Figure

    methods = list(recalls)
    classes = sorted({c for r in recalls.values() for c in r})
    height = 0.8 / max(len(methods), 1)
    fig = Figure(figsize=(8, 1.2 + 0.22 * len(classes) * max(1, len(methods) ** 0.6)))
    ax = fig.subplots()
    y = np.arange(len(classes))
    for k, m in enumerate(methods):
        values = [recalls[m].get(c, np.nan) for c in classes]
        ax.barh(y + k * height - 0.4 + height / 2, values, height=height, label=m)
    ax.set_yticks(y, classes)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("recall (test clips of the class predicted as it)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    fig.set_layout_engine("constrained")
    return _png(fig)


def confusion_matrix_png(
    labels: Sequence[str], predicted: Sequence[str], title: str = ""
) -> tuple[bytes, list[str], np.ndarray]:
    """A row-normalised confusion matrix (rows: true class, columns: predicted class).

    Returns:
        ``(png, class order, counts [C, C])``.
    """
    from matplotlib.figure import Figure

    classes = sorted(set(labels) | set(predicted))
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(labels, predicted, strict=True):
        counts[index[t], index[p]] += 1
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, np.maximum(rows, 1))
    size = 2.5 + 0.32 * len(classes)
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize="small")
    ax.set_yticks(range(len(classes)), classes, fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(classes) <= 25:
        for i in range(len(classes)):
            for j in range(len(classes)):
                if counts[i, j]:
                    colour = "white" if share[i, j] > 0.5 else "black"
                    ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=6, color=colour)
    fig.colorbar(im, ax=ax, label="share of the true class's clips")
    if title:
        ax.set_title(title)
    return _png(fig), classes, counts


def gzsl_gamma_curves(curves: Mapping[str, dict], gamma: float, title: str = "") -> bytes:
    """S and U (and HM dotted) against the calibration constant ``γ``, validation and test side
    by side, with the chosen ``γ`` marked.

    Args:
        curves: ``{"validation": {"gamma", "S", "U", "HM"}, "test": {...}}`` (mean curves).
        gamma: The chosen ``γ`` (marked by a vertical line).
        title: Figure title.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, part in zip(axes, ("validation", "test"), strict=True):
        c = curves.get(part)
        if not c:
            ax.text(0.5, 0.5, f"no {part} curve stored", ha="center", transform=ax.transAxes)
            continue
        ax.plot(c["gamma"], c["S"], label="S (seen)")
        ax.plot(c["gamma"], c["U"], label="U (unseen)")
        ax.plot(c["gamma"], c["HM"], ":", color="k", label="HM")
        ax.axvline(gamma, color="tab:red", linestyle="--", label=f"chosen γ = {gamma:.3g}")
        ax.set_xlim(0, _changing_range(c, gamma))
        ax.set(xlabel="γ (subtracted from seen-class scores)", title=part)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("per-class accuracy")
    axes[0].set_ylim(0, 1.01)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _png(fig)


def _changing_range(curve: Mapping[str, list[float]], gamma: float) -> float:
    """The γ up to which S or U still change (with a margin), so a fine grid's flat tail does
    not squeeze the interesting part into a corner."""
    g = curve["gamma"]
    last = 0
    for k in range(1, len(g)):
        if curve["S"][k] != curve["S"][k - 1] or curve["U"][k] != curve["U"][k - 1]:
            last = k
    end = g[min(len(g) - 1, last + max(2, len(g) // 20))]
    return float(max(end, 1.2 * gamma, g[1] if len(g) > 1 else 1.0))


def recall_at_k(panels: Mapping[str, Mapping[str, Mapping[int, float]]], title: str = "") -> bytes:
    """R@k against k (log scale), one panel per direction and one line per method; lines named
    ``random…`` (the expected R@k of a random ranking) are dashed grey.

    Args:
        panels: ``{panel title (e.g. "audio to video"): {line name: {k: recall at k}}}``.
        title: Figure title.
    """
    from matplotlib.figure import Figure

    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.2 * cols + 0.6, 3.4 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    colours = {}
    cycle = __import__("matplotlib").colormaps["tab10"]
    for ax, (panel, curves) in zip(axes, panels.items(), strict=False):
        all_ks: set[int] = set()
        for name, points in curves.items():
            ks = sorted(points)
            all_ks |= set(ks)
            if name.startswith("random"):
                style = {"linestyle": "--", "color": "0.4"}
            else:
                style = {"color": colours.setdefault(name, cycle(len(colours) % 10))}
            marker = "o" if len(ks) <= 12 else None
            ax.plot(ks, [points[k] for k in ks], marker=marker, label=name, **style)
        ax.set_xscale("log")
        if 0 < len(all_ks) <= 6:
            ax.set_xticks(sorted(all_ks), [str(k) for k in sorted(all_ks)])
            ax.minorticks_off()
        else:
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set(xlabel="k", ylim=(0, 1.01), title=panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="lower right")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("recall at k")
    if title:
        fig.suptitle(title)
    return _png(fig)


def validation_grid(curves: Mapping[str, tuple[list[float], list[float], float]]) -> bytes:
    """Validation top-1 against the probe's regularisation ``C`` (log scale), the chosen ``C``
    marked, one line per representation.

    Args:
        curves: ``{representation: (C values, validation top-1, chosen C)}``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for name, (cs, top1, chosen) in curves.items():
        (line,) = ax.plot(cs, top1, marker="o", label=name)
        if chosen in cs:
            ax.plot([chosen], [top1[cs.index(chosen)]], "*", markersize=14, color=line.get_color())
    ax.set(xlabel="C (inverse L2 strength)", ylabel="validation top-1", xscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("linear probe: C chosen on validation (★)")
    return _png(fig)


def discovery_png(curves: Mapping[str, dict], title: str) -> bytes:
    """:func:`harken.reports.curves.plot_discovery_curves` as PNG bytes."""
    import tempfile
    from pathlib import Path

    from harken.reports.curves import plot_discovery_curves

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_discovery_curves(curves, Path(tmp) / "curves.png", title)
        return path.read_bytes()


def cosine_heatmap(sim: np.ndarray, classes: Sequence[str], title: str = "") -> bytes:
    """A class × class cosine-similarity heatmap."""
    from matplotlib.figure import Figure

    size = 2.5 + 0.32 * len(classes)
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize="small")
    ax.set_yticks(range(len(classes)), classes, fontsize="small")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    if title:
        ax.set_title(title)
    return _png(fig)


def scatter_png(xy: np.ndarray, labels: Sequence[str], title: str = "") -> bytes:
    """A 2-D map of points coloured by label (the static copy of the clip map)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 7), layout="constrained")
    ax = fig.subplots()
    classes = sorted(set(labels))
    cmap = __import__("matplotlib").colormaps["tab20"]
    labels_arr = np.asarray(labels, dtype=object)
    for k, c in enumerate(classes):
        pts = xy[labels_arr == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=10, color=cmap(k % 20), label=c)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1, 0.5), markerscale=1.5)
    if title:
        ax.set_title(title)
    return _png(fig)


def class_bars(values: Mapping[str, Mapping[str, float]], xlabel: str, title: str = "") -> bytes:
    """Grouped horizontal bars in [0, 1]: one group per class, one bar per system (e.g. the
    per-class event F1 of each detector).

    Args:
        values: ``{system: {class: value}}``.
        xlabel: What the values are.
        title: Figure title.
    """
    from matplotlib.figure import Figure

    systems = list(values)
    classes = sorted({c for v in values.values() for c in v})
    height = 0.8 / max(len(systems), 1)
    fig = Figure(
        figsize=(8, 1.8 + 0.2 * len(systems) + 0.22 * len(classes) * max(1, len(systems) ** 0.6))
    )
    ax = fig.subplots()
    y = np.arange(len(classes))
    for k, name in enumerate(systems):
        row = [values[name].get(c, np.nan) for c in classes]
        ax.barh(y + k * height - 0.4 + height / 2, row, height=height, label=name)
    ax.set_yticks(y, classes)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.set_layout_engine("constrained")
    fig.legend(fontsize="small", loc="outside lower center")  # below: never over the bars
    return _png(fig)


def tried_settings(tried: Sequence[Mapping], chosen: Mapping) -> bytes:
    """What a detection benchmark tried on dev: dev macro event F1 (each setting at its best
    single threshold) against the median-filter length, one line per window/hop, the chosen
    setting marked ★.

    Args:
        tried: ``[{"window_s", "hop_s", "smooth_s", "threshold", "dev_F1"}, ...]``.
        chosen: The chosen row (same keys).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    windows = sorted({(t["window_s"], t["hop_s"]) for t in tried})
    for window, hop in windows:
        rows = sorted(
            (t for t in tried if (t["window_s"], t["hop_s"]) == (window, hop)),
            key=lambda t: t["smooth_s"],
        )
        ax.plot(
            [t["smooth_s"] for t in rows],
            [t["dev_F1"] for t in rows],
            marker="o",
            label=f"window {window:g} s, hop {hop:g} s",
        )
    ax.plot(
        [chosen["smooth_s"]],
        [chosen["dev_F1"]],
        "*",
        markersize=16,
        color="black",
        label=f"chosen (threshold {chosen['threshold']:.3g})",
    )
    ax.set(xlabel="median filter (s)", ylabel="dev macro event F1 (best threshold)")
    ax.set_ylim(0, max(1.0, max(t["dev_F1"] for t in tried) * 1.05))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("settings tried on dev (★ chosen)")
    return _png(fig)


def accuracy_vs_chance(rows: Sequence[Mapping], metric: str = "UA") -> bytes:
    """One bar per dataset (its ``metric``) with that dataset's chance level drawn across the
    bar (black line).

    Args:
        rows: ``[{"dataset", "classes", metric, "chance_UA"}, ...]`` (``bench.json`` rows).
        metric: The plotted value.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.5, 1.2 + 1.1 * len(rows)), 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.bar(x, [r[metric] for r in rows], width=0.6, label=metric)
    for k, r in enumerate(rows):
        ax.plot([k - 0.35, k + 0.35], [r["chance_UA"]] * 2, color="black", linewidth=2)
    ax.plot([], [], color="black", linewidth=2, label="chance")
    names = [f"{r['dataset']}\n({r['classes']} classes)" for r in rows]
    ax.set_xticks(x, names, fontsize="small")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{metric} (all classes are candidates)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"zero-shot {metric} per dataset against chance")
    return _png(fig)
