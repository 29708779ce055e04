"""What the SoundingActions protocols share (Chen et al. 2024, §5–6): clips with audio, video
frames and a text, the features of each modality, and a split into clips that train the
embedding methods and clips that evaluate them.

The language modality of a clip is its narration when every clip has one (EPIC-KITCHENS and
Ego4D narrations, a CSV's ``narration`` column, av-mini's VGGSounder tags), embedded by the
knowledge ``text_encoder``; otherwise the class knowledge of its ``target`` label (Kitchen20: the
class's descriptions, so only the audio–language half of MC3 applies). It is passed to methods as
the feature ``"narration"``.

Training and evaluation clips never share a recording: the split is by recording group (a clip's
``group``, else its video / audio file); the linear probe splits per class, so every class keeps
clips on every side. With ``train_dataset`` the methods train on a separate narrated dataset
instead (the paper's setting: 250K unlabelled Ego4D clips for training, the annotated clips for
evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from harken.data.manifest import Manifest
from harken.data.readers import read_dataset
from harken.errors import ConfigError, DataError
from harken.methods.base import Batch, Classes, Method
from harken.protocols.base import FRACTION, at_least

if TYPE_CHECKING:
    from harken.experiment import Experiment
    from harken.protocols.base import Protocol

#: The feature name of the per-clip text embedding.
TEXT = "narration"


@dataclass
class TrainSplitOptions:
    """The ``[protocol]`` keys that choose the clips the embedding methods train on.

    Attributes:
        train_fraction: Share of the recordings whose clips train the methods (split by
            recording); the rest are evaluated.
        train_dataset: Train on this narrated dataset instead (a registered name or CSV path)
            and evaluate every clip of ``dataset`` (the paper's setting).
        train_dataset_options: Keyword options of ``train_dataset``'s reader (e.g. the
            ``narrations`` file and ``media_dir`` of ``ego4d``).
        split_seed: Seed of the train / evaluation split.
    """

    train_fraction: float = 0.5
    train_dataset: str | None = None
    train_dataset_options: dict = field(default_factory=dict)
    split_seed: int = 0


#: The ranges of :class:`TrainSplitOptions` (see :attr:`Protocol.RANGES`).
TRAIN_SPLIT_RANGES = (("train_fraction", *FRACTION), ("split_seed", *at_least(0)))


@dataclass
class TriModalData:
    """Clips of one dataset as a :class:`Batch` (audio / image features by encoder name and the
    text rows as ``"narration"``), with what the protocols need beside them.

    Attributes:
        manifest: The clips every feature could embed, in row order.
        batch: Their features; ``labels`` = the ``target`` column when the dataset has it.
        groups: The recording group of each row (clips of one recording share it).
        texts: The text of each row (its narration, or its class name).
        text_source: ``"narration"`` or ``"class knowledge"``.
        classes: The target classes with their knowledge embeddings (None without labels).
        features: The run's feature provenance (see :meth:`Experiment.provenance`).
    """

    manifest: Manifest
    batch: Batch
    groups: list[str]
    texts: list[str]
    text_source: str
    classes: Classes | None
    generator_config: dict | list | None = None

    def subset(self, mask: np.ndarray) -> TriModalData:
        idx = np.flatnonzero(mask) if mask.dtype == bool else np.asarray(mask)
        return replace(
            self,
            manifest=replace(self.manifest, clips=[self.manifest.clips[i] for i in idx]),
            batch=self.batch.subset(idx),
            groups=[self.groups[i] for i in idx],
            texts=[self.texts[i] for i in idx],
        )

    @property
    def sounding(self) -> list[bool | None]:
        return self.manifest.sounding()


def group_of(clip) -> str:
    """A clip's recording group: its ``group``, else its video file, else its audio file."""
    return str(clip.group or clip.video_path or clip.audio_path)


def load(
    exp: Experiment,
    feature_names: Sequence[str],
    dataset: str | None = None,
    options: dict | None = None,
    require_target: bool = False,
) -> TriModalData:
    """Read ``dataset`` (default: the config's), embed its clips with every encoder in
    ``feature_names`` (image encoders with the config's ``frames``) and its texts.

    Raises:
        ConfigError: the clips have neither narrations nor the ``target`` labels (checked
            before any clip is encoded).
    """
    c = exp.config
    if dataset is None:
        manifest = exp.load_data(require_target=require_target)
    else:
        manifest = read_dataset(dataset, c.data_dir, **(options or {}))
    has_labels = c.target in manifest.targets
    narrated = all(clip.narration for clip in manifest)
    if not narrated and not has_labels:
        missing = [clip.clip_id for clip in manifest if not clip.narration]
        raise ConfigError(
            f"dataset {manifest.name!r}: {len(missing)} clips have no narration (e.g. "
            f"{missing[:3]}) and there is no label column {c.target!r} to describe them; give "
            "every clip a narration (CSV column 'narration') or choose a labelled target"
        )
    classes = generator_config = None
    if has_labels:
        classes, _, generator_config = exp.knowledge(manifest)
    manifest, features = exp.features(manifest, set(feature_names))
    labels = manifest.labels(c.target) if has_labels else None
    if narrated:
        texts = [clip.narration for clip in manifest]
        with exp.folder.stage("narrations"):
            emb = np.asarray(exp.encoder(c.text_encoder).embed(texts), np.float32)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        source = "narration"
    else:
        index = {name: i for i, name in enumerate(classes.names)}
        emb = classes.embeddings[[index[y] for y in labels]]
        texts = list(labels)
        source = "class knowledge"
    features = {**features, TEXT: emb}
    ids = [clip.clip_id for clip in manifest]
    batch = Batch(features, list(labels) if labels is not None else None, ids)
    return TriModalData(
        manifest,
        batch,
        [group_of(clip) for clip in manifest],
        texts,
        source,
        classes,
        generator_config,
    )


def group_split(
    groups: Sequence[str],
    fractions: Sequence[float],
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Split rows into parts by recording group: ``fractions`` of each class's groups (all rows
    as one class without labels) go to each part, after a seeded shuffle; every part gets at
    least one group of a class that has as many groups as parts. Returns one boolean mask per
    part; no group is in two parts.
    """
    groups = list(groups)
    if not np.isclose(sum(fractions), 1.0):
        raise ConfigError(f"split fractions {list(fractions)} must sum to 1")
    strata = list(labels) if labels is not None else [""] * len(groups)
    rng = np.random.default_rng(seed)
    part_of: dict[str, int] = {}
    for stratum in sorted(set(strata)):
        gs = sorted({g for g, s in zip(groups, strata, strict=True) if s == stratum})
        gs = [g for g in gs if g not in part_of]  # a group spanning classes: first class wins
        order = [gs[i] for i in rng.permutation(len(gs))]
        counts = _counts(len(order), fractions)
        k = 0
        for part, n in enumerate(counts):
            for g in order[k : k + n]:
                part_of[g] = part
            k += n
    assigned = np.array([part_of[g] for g in groups])
    return [assigned == p for p in range(len(fractions))]


def _counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Groups per part: rounded shares, each part ≥ 1 when ``n`` allows, summing to ``n``."""
    counts = [round(n * f) for f in fractions]
    if n >= len(fractions):
        counts = [max(1, c) for c in counts]
    while sum(counts) > n:
        counts[int(np.argmax(counts))] -= 1
    while sum(counts) < n:
        counts[int(np.argmax(fractions))] += 1
    return counts


def embedders(exp: Experiment, protocol: str) -> dict[str, Method]:
    """The configured methods, each checked to give embeddings (``embed(batch)``)."""
    out = {}
    for name in exp.config.methods:
        method = exp.make_method(name, None)
        if not callable(getattr(method, "embed", None)):
            raise ConfigError(
                f"{exp.config.key('methods')}: method {name!r} gives no clip embeddings, which "
                f"the {protocol} protocol compares; use mc3 or one of its baselines (cmc, "
                "clap-style, cm-acc-style, imagebind-style, mc3-no-*) or contrastive"
            )
        out[name] = method
    return out


def fit_embedder(exp: Experiment, name: str, train: TriModalData, seed: int) -> tuple[Method, dict]:
    """A fresh ``name`` fitted on the training clips (no dev data: the paper takes the final
    checkpoint)."""
    method = exp.make_method(name, None)
    classes = None
    if train.classes is not None and train.batch.labels is not None:
        present = [n for n in train.classes.names if n in set(train.batch.labels)]
        classes = train.classes.subset(present)
    log = method.fit(train.batch, classes, None, None, seed) or {}
    return method, log


def seed_units(folder, names, seeds, evaluate) -> dict[str, list[dict]]:
    """Every (method, seed) unit of a run: reused from a resumed run folder (``units/``), else
    ``evaluate(name, seed)`` and stored at once (a killed run loses at most one unit)."""
    out: dict[str, list[dict]] = {}
    for name in names:
        for seed in seeds:
            row = folder.load_unit(name, "seed", seed)
            if row is None:
                row = evaluate(name, seed)
                folder.save_unit(row, name, "seed", seed)
            out.setdefault(name, []).append(row)
    return out


#: The key under which a unit keeps its per-clip output (stored in ``units/`` so a resumed run
#: still writes it; taken out before the unit's row enters ``results.json``).
PER_CLIP = "per_clip"


def take_per_clip(units: dict[str, list[dict]], seed_key: str = "seed") -> list[tuple]:
    """Remove every unit's per-clip rows and return them as ``(method, seed, *row)``, in unit
    order. A unit from a run folder written before harken stored them has none (its clips are
    then missing from the per-clip file, and the report shows no interval for its method)."""
    out: list[tuple] = []
    for name, runs in units.items():
        for row in runs:
            for clip in row.pop(PER_CLIP, None) or []:
                out.append((name, row.get(seed_key, ""), *clip))
    return out


def check_rows(data: TriModalData, what: str, minimum: int = 2) -> None:
    if len(data.batch) < minimum:
        raise DataError(
            f"dataset {data.manifest.name!r}: only {len(data.batch)} {what} clips; the "
            f"protocol needs at least {minimum} (add clips or change the split fractions)"
        )


def unit_rows(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, np.float64)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def split(
    exp: Experiment, needs: Sequence[str], o: TrainSplitOptions
) -> tuple[TriModalData, TriModalData]:
    """Training and evaluation clips: a separate ``o.train_dataset`` (read with
    ``o.train_dataset_options``), or a split by recording."""
    if o.train_dataset:
        test = load(exp, needs)
        train = load(exp, needs, dataset=o.train_dataset, options=o.train_dataset_options)
    else:
        data = load(exp, needs)
        # by recording only: the methods learn from audio, video and text, not labels
        fractions = (o.train_fraction, 1 - o.train_fraction)
        train_mask, _ = group_split(data.groups, fractions, o.split_seed)
        train, test = data.subset(train_mask), data.subset(~train_mask)
    check_rows(train, "training")
    check_rows(test, "evaluation")
    return train, test


def write_results(
    exp,
    protocol: Protocol,
    results: dict,
    parts: dict,
    per_clip: tuple[str, list[str], list[tuple]] | None = None,
) -> None:
    """``results.json``, ``results.md``, ``clips.csv`` (which part each clip was in: ``train``,
    ``val``, ``test``), the per-clip output ``per_clip = (file name, header, rows)`` (one row
    per method, seed and test clip or query: what the report's bootstrap intervals resample)
    and the run manifest (provenance of the evaluated clips' features)."""
    folder = exp.folder
    if per_clip is not None:
        folder.write_csv(*per_clip)
    folder.write_json("results.json", results)
    folder.write_text("results.md", protocol.markdown(results))
    rows = [
        (part, c.clip_id, t)
        for part, d in parts.items()
        for c, t in zip(d.manifest.clips, d.texts, strict=True)
    ]
    folder.write_csv("clips.csv", ["part", "clip_id", "text"], rows)
    test = parts["test"]
    features = {k: v for k, v in test.batch.features.items() if k != TEXT}
    folder.write_manifest(
        config=asdict(exp.config),
        **exp.provenance(
            test.manifest,
            len(test.classes.names) if test.classes else 0,
            features,
            test.generator_config,
        ),
        methods={n: {"config": r.get("config")} for n, r in results.get("methods", {}).items()},
    )
