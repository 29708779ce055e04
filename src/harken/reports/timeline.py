"""A recording's timeline picture: per-label score curves and the segments emitted.

Top panel: the smoothed score of each shown label over time (one step curve per frame) with
its threshold dashed in the same colour. Bottom panel: one row per shown label with the
emitted segments as bars (and, when given, the annotated ground truth as thin grey bars
beneath). Shown labels: those with a segment or an annotated event, then the highest-scoring
others, at most ``max_labels``. Rendered by a bare matplotlib ``Figure`` (Agg canvas, no
pyplot, no display) and written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from harken.store.atomic import atomic_write_bytes


def shown_labels(
    labels: Sequence[str],
    scores: np.ndarray,
    segments: Sequence,
    events: Sequence[tuple[float, float, str]] = (),
    max_labels: int = 8,
) -> list[str]:
    """The labels a timeline shows (see the module docstring), in candidate order."""
    first = {s.label for s in segments} | {e[2] for e in events}
    peak = np.max(scores, axis=0) if len(scores) else np.zeros(len(labels))
    ranked = sorted(range(len(labels)), key=lambda c: (labels[c] not in first, -peak[c]))
    keep = set(ranked[: max(max_labels, len(first))])
    return [label for c, label in enumerate(labels) if c in keep]


def plot_timeline(
    path: Path,
    timeline,
    labels: Sequence[str],
    segments: Sequence,
    thresholds: Mapping[str, float],
    events: Sequence[tuple[float, float, str]] = (),
    score_name: str = "score",
    max_labels: int = 8,
) -> Path:
    """Write the timeline PNG of one recording.

    Args:
        path: The PNG to write.
        timeline: A :class:`~harken.detection.detector.Timeline`.
        labels: The candidate labels (columns of the timeline's scores).
        segments: Its segments (``label``, ``start``, ``end``).
        thresholds: ``{label: θ}``.
        events: Annotated ``(onset, offset, label)`` to draw beneath, if any.
        score_name: Axis label of the scores.
        max_labels: Most labels drawn.
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    shown = shown_labels(labels, timeline.smoothed, segments, events, max_labels)
    fig = Figure(figsize=(12, 2.5 + 0.35 * len(shown)), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, max(1, len(shown)) * 0.35])
    colours = matplotlib.colormaps["tab10"]
    edges = timeline.boundaries
    for k, label in enumerate(shown):
        c = labels.index(label)
        colour = colours(k % 10)
        values = np.append(timeline.smoothed[:, c], timeline.smoothed[-1, c])
        top.step(edges, values, where="post", color=colour, label=label, linewidth=1.2)
        top.axhline(thresholds[label], color=colour, linestyle="--", linewidth=0.8)
        row = len(shown) - 1 - k
        for s in segments:
            if s.label == label:
                bottom.barh(row, s.end - s.start, left=s.start, height=0.6, color=colour)
        for onset, offset, name in events:
            if name == label:
                bottom.barh(row - 0.38, offset - onset, left=onset, height=0.15, color="0.45")
    top.set_ylabel(score_name)
    top.set_title(Path(timeline.file).name)
    top.legend(loc="upper right", fontsize="small", ncols=min(4, max(1, len(shown))))
    bottom.set_yticks(range(len(shown)), list(reversed(shown)), fontsize="small")
    bottom.set_xlabel("time (s)" + (" — grey: annotated" if events else ""))
    bottom.set_xlim(0, timeline.duration)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
