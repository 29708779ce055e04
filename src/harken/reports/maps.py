"""The report's embedding figures: class-text cosine heatmaps and a 2-D map of the clips.

* **Class similarity** (Gebhard et al. 2024, Fig. 3): for each knowledge source of the run
  (each ``generator`` spec), the class embeddings — the normalised mean of a class's text
  embeddings, as the run built them (:func:`harken.knowledge.classes.class_embeddings`, with the
  run's text encoder) — and their pairwise cosines. Each source's texts, LLM-written ones
  included, are read from the run's ``descriptions-by-source.csv``; for runs older than that
  file, template and description sources are regenerated offline, an LLM source is read from
  ``descriptions.csv`` when it was the run's first source, and skipped otherwise (the page
  says so).
* **Clip map**: t-SNE (scikit-learn, seed 0) of the clips' audio embeddings from the feature
  store, coloured by class; the interactive version (plotly, its script inlined) shows each
  clip's id, label and prediction on hover.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import urllib.parse
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from harken.errors import HarkenError

if TYPE_CHECKING:
    from harken.reports.html import Run, Section

#: Sources regenerated offline (no model, no network).
OFFLINE_SOURCES = ("template", "descriptions")


def run_config(run: Run):
    """The run's :class:`~harken.experiment.ExperimentConfig` from its manifest."""
    from harken.experiment import ExperimentConfig

    recorded = run.manifest.get("config")
    if not recorded:
        raise HarkenError(f"{run.path / 'manifest.json'} records no config")
    names = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"progress"}
    return ExperimentConfig(**{k: v for k, v in recorded.items() if k in names}, progress=False)


def _descriptions(run: Run) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = defaultdict(list)
    f = run.path / "descriptions.csv"
    if f.exists():
        for r in csv.DictReader(f.read_text(encoding="utf-8").splitlines()):
            texts[r["class"]].append(r["text"])
    return dict(texts)


def source_texts(run: Run) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """``{source: {class: texts}}`` and notes on the sources that could not be shown.

    Runs store each source's texts (``descriptions-by-source.csv``), which are read as they
    are; for older runs the offline sources are regenerated and the first source is read from
    ``descriptions.csv``."""
    stored_by_source = run.path / "descriptions-by-source.csv"
    if stored_by_source.exists():
        by_source: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for r in csv.DictReader(stored_by_source.read_text(encoding="utf-8").splitlines()):
            by_source[r["source"]][r["class"]].append(r["text"])
        return {s: {c: by_source[s][c] for c in sorted(by_source[s])} for s in by_source}, []
    from harken.knowledge.base import get_generator
    from harken.knowledge.cache import CachedGenerator
    from harken.knowledge.classes import class_texts

    config = run_config(run)
    stored = _descriptions(run)
    classes = sorted(stored)
    specs = [config.generator] if isinstance(config.generator, str) else list(config.generator)
    out, notes = {}, []
    for k, spec in enumerate(specs):
        if spec.split(":", 1)[0] in OFFLINE_SOURCES:
            generator = CachedGenerator(get_generator(spec, **config.generator_options))
            out[spec] = class_texts(generator, classes)
        elif k == 0 and stored:
            out[spec] = stored
        else:
            notes.append(f"{spec}: not regenerated (it needs a model); rerun to store its texts")
    return out, notes


def class_similarity_section(run: Run) -> Section:
    """One cosine heatmap per knowledge source."""
    from harken.encoders.base import get_encoder
    from harken.knowledge.classes import class_embeddings
    from harken.reports.figures import cosine_heatmap
    from harken.reports.html import Figure, Section, esc, slug

    title = "Class-text similarity per knowledge source"
    try:
        config = run_config(run)
        texts, notes = source_texts(run)
        encoder = get_encoder(config.text_encoder)
    except (HarkenError, OSError, KeyError) as e:
        return Section(title, f"<p class='note'>Not drawn: {esc(e)}</p>")
    figures = []
    for spec, by_class in texts.items():
        classes = list(by_class)
        emb = class_embeddings(by_class, encoder, classes, normalize=config.normalize_text)
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        sim = emb @ emb.T
        off = sim[~np.eye(len(classes), dtype=bool)]
        caption = f"{spec}: mean cosine between different classes {off.mean():.3f}"
        png = cosine_heatmap(sim, classes, title=f"{spec} ({config.text_encoder})")
        figures.append(Figure(f"class-similarity-{slug(spec)}", caption, png))
    body = (
        "<p>Cosine similarity of the class embeddings (mean of each class's text embeddings, "
        f"text encoder {esc(config.text_encoder)}). Bright off-diagonal cells are classes "
        "whose texts a zero-shot method can hardly tell apart.</p>"
    )
    body += "".join(f"<p class='note'>{esc(n)}</p>" for n in notes)
    return Section(title, body, figures)


class _NoFolder:
    """What :class:`~harken.experiment.Experiment` needs of a run folder to read features
    (nothing is written to the run being reported)."""

    def stage(self, name: str):
        return contextlib.nullcontext()


def audio_link(clip, page_dir) -> str:
    """A link to the clip's audio relative to the page (with a ``#t=start,end`` media fragment
    for a span of a longer file), or ``""`` when the file is not there."""
    path = clip.audio_path
    if page_dir is None or not path or not os.path.isfile(path):
        return ""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(page_dir))
    link = urllib.parse.quote(rel.replace(os.sep, "/"))
    if clip.start is not None:
        end = f",{clip.end:g}" if clip.end is not None else ""
        link += f"#t={clip.start:g}{end}"
    return link


def clip_embeddings(run: Run) -> tuple[str, list[str], list[str], np.ndarray, list[str]]:
    """``(feature name, clip ids, labels, [N, D] embeddings, audio links)`` from the feature
    store (links relative to ``run.page_dir``; ``""`` where the audio is not reachable)."""
    from harken.experiment import Experiment

    config = run_config(run)
    features = sorted(run.manifest.get("features") or {})
    if not features:
        raise HarkenError(f"{run.path / 'manifest.json'} lists no audio features")
    exp = Experiment(config, _NoFolder())  # type: ignore[arg-type]
    manifest = exp.load_data()
    manifest, arrays = exp.features(manifest, {features[0]})
    ids = [clip.clip_id for clip in manifest]
    links = [audio_link(clip, run.page_dir) for clip in manifest]
    return features[0], ids, list(manifest.labels(config.target)), arrays[features[0]], links


def first_predictions(run: Run) -> dict[str, str]:
    """clip id → prediction of the run's first method at its first seed and unit."""
    out: dict[str, str] = {}
    first = None
    for r in run.rows("predictions.csv"):
        key = (r["method"], r["seed"])
        first = first or key
        if key == first and r["clip_id"] not in out:
            out[r["clip_id"]] = r["predicted"]
    return out


def clip_map_section(run: Run) -> Section:
    """t-SNE of the clips' audio embeddings (PNG and interactive plotly map)."""
    from sklearn.manifold import TSNE

    from harken.reports.figures import scatter_png
    from harken.reports.html import Figure, Section, esc

    title = "Clip map (t-SNE)"
    try:
        feature, ids, labels, emb, links = clip_embeddings(run)
    except (HarkenError, OSError, KeyError) as e:
        return Section(title, f"<p class='note'>Not drawn: {esc(e)}</p>")
    if len(ids) < 5:
        return Section(title, "<p class='note'>Not drawn: fewer than 5 clips.</p>")
    perplexity = float(min(30.0, (len(ids) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
        np.asarray(emb, dtype=np.float64)
    )
    predicted = first_predictions(run)
    method = next(iter(run.results.get("methods", {})), "")
    preds = [predicted.get(i, "–") for i in ids]
    png = scatter_png(xy, labels, title=f"{feature} embeddings, t-SNE")
    body = (
        f"<p>Each point is a clip ({esc(feature)} embedding, t-SNE with perplexity "
        f"{perplexity:.0f}, seed 0), coloured by its class. Hover for the clip id, its label and "
        f"{esc(method)}'s prediction (first seed; '–': not a test clip there); click a point "
        "to play the clip (when its audio file is reachable from the page).</p>"
        + interactive_map(xy, ids, labels, preds, links)
    )
    return Section(title, body, [Figure("clip-map", f"{feature} clip map (static copy)", png)])


PLAYER = """
<p><audio id="clip-audio" controls preload="none"></audio> <span id="clip-playing"></span></p>
<script>
window.addEventListener("load", function () {
  var map = document.getElementById("clip-map");
  var audio = document.getElementById("clip-audio");
  var label = document.getElementById("clip-playing");
  map.on("plotly_click", function (event) {
    var d = event.points[0].customdata;
    if (!d[3]) { label.textContent = d[0] + ": audio not reachable from this page"; return; }
    audio.src = d[3];
    label.textContent = d[0] + " (" + d[1] + ")";
    // play() is refused when the browser cannot decode the file: say so instead of nothing
    audio.play().catch(function (error) {
      if (error.name === "AbortError") return;  // another point was clicked meanwhile
      label.textContent = d[0] + ": cannot play (" + error.message + ")";
    });
  });
});
</script>
"""


def interactive_map(
    xy: np.ndarray, ids: list[str], labels: list[str], preds: list[str], links: list[str]
) -> str:
    """A plotly scatter as an HTML fragment with plotly.js inlined (no CDN), and a player that
    plays the clicked clip's audio (``links``: relative links, ``""`` where unreachable)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        fig.add_trace(
            go.Scattergl(
                x=xy[idx, 0],
                y=xy[idx, 1],
                mode="markers",
                name=c,
                marker={"size": 6},
                customdata=[[ids[i], labels[i], preds[i], links[i]] for i in idx],
                hovertemplate="%{customdata[0]}<br>label: %{customdata[1]}<br>"
                "predicted: %{customdata[2]}<extra></extra>",
            )
        )
    fig.update_layout(height=600, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    plot = fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="clip-map",
        config={"displaylogo": False},
    )
    return plot + PLAYER
