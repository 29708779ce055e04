"""From descriptions to class embeddings.

Gebhard et al. (2024, §3 "Text embeddings") write one LLaMA-2 description per EPIC-KITCHENS
narration, embed every description with SBERT, and average "all of these files and their
corresponding LLAMA-2 descriptions" into one text embedding per class: the class embedding is the
mean over the class's *clips*, so a narration shared by many clips weighs as many times.
:func:`class_texts` produces exactly that multiset (each distinct narration described once),
:func:`class_embeddings` averages it, and :func:`export_descriptions` writes it for inspection.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from harken.errors import ConfigError, DataError
from harken.knowledge.base import DescriptionGenerator
from harken.knowledge.templates import humanize


def _check_classes(classes: Sequence[str]) -> list[str]:
    if isinstance(classes, str):
        raise ConfigError(f"classes must be a list of class names, got the string {classes!r}")
    classes = list(classes)
    if not classes:
        raise ConfigError("the class list is empty; give at least one class name")
    seen: set[str] = set()
    for i, c in enumerate(classes):
        if not isinstance(c, str) or not c.strip():
            raise ConfigError(f"class #{i} is {c!r}; class names must be non-empty strings")
        if c in seen:
            raise ConfigError(f"class {c!r} appears twice in the class list")
        seen.add(c)
    return classes


def class_texts(
    generator: DescriptionGenerator,
    classes: Sequence[str],
    narrations: Iterable[tuple[str, str]] | None = None,
) -> dict[str, list[str]]:
    """Descriptions per class, ready to embed and average.

    Args:
        generator: Any description generator (wrap it in
            :class:`~harken.knowledge.cache.CachedGenerator` to never generate twice).
        classes: Class names, in the order the result keeps.
        narrations: Optional ``(class, narration)`` pairs, one per clip. Without them each class
            name is described (after :func:`~harken.knowledge.templates.humanize`). With them
            each *distinct* narration is described once, and a class gets its clips'
            descriptions with multiplicity — Gebhard et al. (2024), §3.

    Returns:
        ``{class: [description, ...]}`` for every class, in the order of ``classes``.

    Raises:
        ConfigError: For an empty or malformed class list.
        DataError: For a narration row with an unknown class or empty text, a class without
            narrations, or a class the generator gave no description.
    """
    classes = _check_classes(classes)
    if narrations is None:
        items = [humanize(c) for c in classes]
        described = generator.describe(items)
        texts = dict(zip(classes, (list(d) for d in described), strict=True))
    else:
        texts = _narration_texts(generator, classes, narrations)
    empty = [c for c, t in texts.items() if not t]
    if empty:
        raise DataError(
            f"generator {generator.name!r} gave no description for class(es) {empty[:10]}; "
            "try a larger max_new_tokens or another prompt/model"
        )
    return texts


def _narration_texts(
    generator: DescriptionGenerator, classes: list[str], narrations: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    known = set(classes)
    rows: list[tuple[str, str]] = []
    for i, row in enumerate(narrations):
        if isinstance(row, str) or len(row) != 2:
            raise DataError(f"narration row {i} is {row!r}; expected a (class, narration) pair")
        cls, text = row
        if cls not in known:
            raise DataError(f"narration row {i}: class {cls!r} is not in the class list")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"narration row {i} (class {cls!r}) has an empty narration")
        rows.append((cls, text.strip()))
    missing = [c for c in classes if c not in {cls for cls, _ in rows}]
    if missing:
        raise DataError(
            f"{len(missing)} class(es) have no narration, e.g. {missing[:10]}; every class "
            "needs at least one (class, narration) row, or drop it from the class list"
        )
    distinct = list(dict.fromkeys(text for _, text in rows))
    described = dict(zip(distinct, generator.describe(distinct), strict=True))
    texts: dict[str, list[str]] = {c: [] for c in classes}
    for cls, text in rows:
        texts[cls].extend(described[text])
    return texts


def _l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def class_embeddings(
    texts: Mapping[str, Sequence[str]],
    encoder,
    classes: Sequence[str],
    normalize: bool = True,
) -> np.ndarray:
    """One embedding per class: the mean of its texts' embeddings.

    Each distinct text is embedded once (``encoder.embed`` on the whole list); a text listed
    k times for a class counts k times in its mean.

    With ``normalize=True`` (default) every text embedding is L2-normalised before averaging and
    the mean is L2-normalised again — the CLIP/CLAP prompt-ensemble rule (Radford et al., 2021),
    also used by ClipClap-GZSL. Gebhard et al. (2024, §3) average the raw SBERT embeddings of a
    class's descriptions: that is ``normalize=False``.

    Args:
        texts: ``{class: [text, ...]}``, e.g. from :func:`class_texts`.
        encoder: A text encoder (``embed(list[str]) -> float32 [N, D]``).
        classes: Class order of the output rows.
        normalize: Normalise text embeddings and class means (see above).

    Returns:
        float32 array ``[len(classes), D]``.

    Raises:
        ConfigError: For an empty class list.
        DataError: If a class has no texts, or the encoder returns the wrong shape.
    """
    return class_knowledge(texts, encoder, classes, normalize)[0]


def class_knowledge(
    texts: Mapping[str, Sequence[str]],
    encoder,
    classes: Sequence[str],
    normalize: bool = True,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`class_embeddings` and the embedding of every text behind them, from one pass of
    the encoder: ``([C, D] class embeddings, [[n_c, D] per class, rows in texts[c] order])``,
    float32 (the per-text rows L2-normalised with ``normalize``)."""
    members = _members(texts, encoder, _check_classes(classes), normalize)
    means = np.stack([m.mean(axis=0) for m in members])
    if normalize:
        means = _l2(means)
    return means.astype(np.float32), [m.astype(np.float32) for m in members]


def _members(texts, encoder, classes: list[str], normalize: bool) -> list[np.ndarray]:
    for c in classes:
        if c not in texts or not list(texts[c]):
            raise DataError(f"class {c!r} has no texts to embed; run class_texts() for it")
    distinct = list(dict.fromkeys(t for c in classes for t in texts[c]))
    emb = np.asarray(encoder.embed(distinct), dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != len(distinct):
        raise DataError(
            f"encoder {getattr(encoder, 'name', encoder)!r} returned shape {emb.shape} for "
            f"{len(distinct)} texts; expected [{len(distinct)}, D]"
        )
    if normalize:
        emb = _l2(emb)
    row = {t: i for i, t in enumerate(distinct)}
    return [emb[[row[t] for t in texts[c]]] for c in classes]


def export_descriptions(texts: Mapping[str, Sequence[str]], path: str | Path) -> Path:
    """Write ``descriptions.csv`` (columns ``class,text``), one row per distinct (class, text).

    The file is written to a temporary name in the same folder and renamed into place, so it is
    never seen half-written.

    Args:
        texts: ``{class: [text, ...]}``.
        path: The CSV file, or a folder to write ``descriptions.csv`` into.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "descriptions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "text"])
            for cls, items in texts.items():
                for text in dict.fromkeys(items):
                    writer.writerow([cls, text])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_descriptions(path: str | Path) -> dict[str, list[str]]:
    """Read descriptions per class from a CSV file.

    Two layouts are read: harken's long ``class,text`` (from :func:`export_descriptions`), and
    the wide ``name,description_1,description_2,...`` of KDA's published descriptions.

    Args:
        path: The CSV file.

    Returns:
        ``{class: [text, ...]}`` in file order.

    Raises:
        DataError: If the file is missing or has neither layout.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except FileNotFoundError as e:
        raise DataError(f"description file {path} does not exist") from e
    out: dict[str, list[str]] = {}
    if {"class", "text"} <= set(header):
        for row in rows:
            out.setdefault(row["class"], []).append(row["text"])
    elif "name" in header and any(h.startswith("description") for h in header):
        cols = [h for h in header if h.startswith("description")]
        for row in rows:
            out.setdefault(row["name"], []).extend(row[c] for c in cols if row[c].strip())
    else:
        raise DataError(
            f"{path}: expected columns 'class,text' or 'name,description_1,...'; got {header}"
        )
    return out
