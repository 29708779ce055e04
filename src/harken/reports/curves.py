"""Sounding action discovery curves (Chen et al. 2024, Fig. 5): ROC and precision–recall.

One PNG with two panels — ROC (false vs true positive rate) and PR (recall vs precision) — with
a line per model from :func:`harken.metrics.discovery.discovery_curves` (its AUC in the legend)
and the random baseline dashed: the diagonal for ROC, the positive rate for PR. Rendered by a
bare matplotlib ``Figure`` (Agg canvas, no pyplot, no display) and written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from harken.errors import DataError
from harken.store.atomic import atomic_write_bytes


def plot_discovery_curves(curves: Mapping[str, dict], path: str | Path, title: str = "") -> Path:
    """Write the ROC and PR curves of several models to one PNG.

    Args:
        curves: ``{model name: discovery_curves(...) output}`` (at least one; all on the same
            clips, so they share the positive rate).
        path: The PNG to write.
        title: Figure title (e.g. ``"audio–video discovery, Ego4D-Sounds test"``).

    Returns:
        ``path``.

    Raises:
        DataError: no curves, or a curve without the ``roc``/``pr`` lists.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    if not curves:
        raise DataError("no curves to plot; pass {model name: discovery_curves(...)}")
    for name, c in curves.items():
        if not isinstance(c, Mapping) or not {"roc", "pr", "positive_rate"} <= set(c):
            raise DataError(
                f"curves[{name!r}] is not a discovery_curves() result (needs 'roc', 'pr' and "
                "'positive_rate')"
            )
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, c in curves.items():
        roc_label = f"{name} ({c['roc_auc']:.3f})" if "roc_auc" in c else name
        pr_label = f"{name} ({c['pr_auc']:.3f})" if "pr_auc" in c else name
        roc_ax.plot(c["roc"]["fpr"], c["roc"]["tpr"], linewidth=1.4, label=roc_label)
        pr_ax.step(
            c["pr"]["recall"], c["pr"]["precision"], where="post", linewidth=1.4, label=pr_label
        )
    rates = sorted({round(float(c["positive_rate"]), 6) for c in curves.values()})
    roc_ax.plot([0, 1], [0, 1], "k--", linewidth=0.9, label="random (0.500)")
    for rate in rates:
        pr_ax.axhline(rate, color="k", linestyle="--", linewidth=0.9, label=f"random ({rate:.3f})")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision–recall")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is roc_ax else "upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
