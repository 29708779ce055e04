"""A zero-shot classifier that stays loaded, the inputs it takes, and its plain results.

:class:`Classifier` chooses a joint audio–text space (backend), the candidate labels and their
knowledge (templates, or a run folder's choices) once, embeds the labels once, and then ranks
the labels for whatever it is given: a file, a folder, a list of files, or numpy waveforms with
their sample rate. Files go through the feature store (cached, content-addressed); arrays are
embedded directly, through the same downmix, resampling and encoder as files, so an array and
the same audio written to a file get the same ranking.

>>> from harken import Classifier
>>> clf = Classifier(["blender", "chopping", "water flowing"])
>>> clf.score_kind in ("compatibility", "probability")
True
>>> clf("../shared/data/kitchen20/audio/blender/0-158737-A-0.flac").label
'blender'

Every result says what its scores are (:data:`SCORE_KINDS`): ``"probability"`` (softmax over
the candidate labels, sums to 1), ``"probability (independent)"`` (one sigmoid per label,
``multi_label=True``) or ``"compatibility"`` (the backend's score, higher is better, not a
probability). Probabilities exist exactly when the joint space has a logit scale ``λ``
(:attr:`~harken.methods.joint.JointSpace.logit_scale`).

**Arrays.** One clip is a 1-D ``[samples]`` array (mono) or a 2-D ``[channels, samples]`` array
with at most :data:`MAX_CHANNELS` channels (downmixed by the mean of the channels). A 2-D array
whose shape could be read either way is refused rather than guessed: pass ``wave.T`` for
``[samples, channels]`` data (what ``soundfile.read`` returns). Floating-point samples are full
scale at ±1; integer PCM is scaled by ``2^(bits−1)``. Several clips are a *list* of arrays.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harken.errors import AudioError, ConfigError, DataError

#: What a result's ``score`` is, by ``score_kind``.
SCORE_KINDS = {
    "probability": "softmax over the candidate labels (sums to 1 over all of them)",
    "probability (independent)": "one sigmoid per label (multi-label; need not sum to 1)",
    "compatibility": "the backend's compatibility score (higher is better; not a probability)",
}

#: Most channels a 2-D ``[channels, samples]`` array may have.
MAX_CHANNELS = 8

#: Devices a classifier's torch encoders may run on (``cuda:<n>`` picks one GPU).
DEVICES = ("cpu", "cuda", "mps", "auto")


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelScore:
    """One candidate label's score for one input.

    Attributes:
        label: The candidate label, as given.
        score: Its score (what it is: the result's ``score_kind``).
        logit: The scaled similarity ``λ · a(x)ᵀ u(t)`` behind a probability (None for
            compatibilities, which are their own logits).
    """

    label: str
    score: float
    logit: float | None = None

    def to_dict(self) -> dict:
        """``{"label", "score"}`` and ``"logit"`` when there is one (JSON-serialisable)."""
        out = {"label": self.label, "score": self.score}
        if self.logit is not None:
            out["logit"] = self.logit
        return out


@dataclass(frozen=True)
class Prediction:
    """The ranked candidate labels of one input, best first.

    Attributes:
        file: The input file (None for an array).
        ranking: The labels, best first (the best ``top_k`` when the classifier has one).
        score_kind: What ``score`` is (a key of :data:`SCORE_KINDS`).
        index: Position of the input among the inputs (after folders were expanded).
        knowledge_fallback: ``{"from", "to", "reason"}`` when a run folder's knowledge generator
            could not describe the labels and its templates did.
    """

    file: str | None
    ranking: list[LabelScore]
    score_kind: str
    index: int = 0
    knowledge_fallback: dict | None = None

    @property
    def label(self) -> str:
        """The best label."""
        return self.ranking[0].label

    @property
    def score(self) -> float:
        """The best label's score."""
        return self.ranking[0].score

    def to_dict(self) -> dict:
        """``{"file", "index", "ranking": [{"label", "score", "logit"?}], "score_kind"}`` (and
        ``"knowledge_fallback"`` after a fallback); JSON-serialisable."""
        out = {
            "file": self.file,
            "index": self.index,
            "ranking": [r.to_dict() for r in self.ranking],
            "score_kind": self.score_kind,
        }
        if self.knowledge_fallback is not None:
            out["knowledge_fallback"] = dict(self.knowledge_fallback)
        return out


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, and why (the reason names the file or array)."""

    index: int
    file: str | None
    reason: str


class Predictions(list):
    """Results of several inputs: a list of :class:`Prediction` in input order (usable inputs
    only), with the inputs that could not be used in :attr:`skipped`."""

    def __init__(self, items: Sequence[Prediction] = (), skipped: Sequence[Skipped] = ()) -> None:
        super().__init__(items)
        self.skipped = list(skipped)

    def to_dicts(self) -> list[dict]:
        """Every prediction's :meth:`Prediction.to_dict` (what ``harken predict --json`` prints)."""
        return [p.to_dict() for p in self]

    def to_pandas(self):
        """One row per (input, ranked label): columns ``file``, ``index``, ``rank`` (1 = best),
        ``label``, ``score``, ``score_kind`` and ``logit`` (NaN where there is none).

        Returns:
            A ``pandas.DataFrame``.
        """
        import pandas as pd

        columns = ["file", "index", "rank", "label", "score", "score_kind", "logit"]
        rows = [
            (p.file, p.index, rank, r.label, r.score, p.score_kind, r.logit)
            for p in self
            for rank, r in enumerate(p.ranking, 1)
        ]
        frame = pd.DataFrame(rows, columns=columns)
        frame["logit"] = frame["logit"].astype(float)
        return frame


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInput:
    """An audio/video file given as input.

    Attributes:
        index: Position among the inputs.
        path: The file decoded.
        source: What the user gave when ``path`` is a copy harken made (a WebDataset member,
            ``/data/shards-000.tar#000123.flac``); None for ordinary files.
    """

    index: int
    path: str
    source: str | None = None

    @property
    def name(self) -> str:
        return self.source or self.path


@dataclass(frozen=True)
class ArrayInput:
    """A waveform given as input: mono float32 at its own ``sample_rate``."""

    index: int
    wave: np.ndarray
    sample_rate: int

    @property
    def name(self) -> str:
        return f"array {self.index}"


Input = FileInput | ArrayInput


def as_inputs(x, sample_rate: int | None = None) -> tuple[list[Input], bool]:
    """The inputs in ``x`` and whether ``x`` was a single input (a single result is wanted).

    Args:
        x: A path (``str``/``Path``; a folder expands to the media files inside it, sorted), a
            numpy array (one clip), or a list/tuple of paths and arrays.
        sample_rate: The rate of every array in ``x`` (required with arrays, refused without).

    Raises:
        ConfigError: an empty list, an input of another type, a badly shaped array, or a
            missing/unneeded ``sample_rate``.
        DataError: a folder holds no audio or video files.
    """
    from harken.api import expand_sources

    single = isinstance(x, str | os.PathLike | np.ndarray)
    items = [x] if single else x
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ConfigError(
            f"inputs must be a path, a folder, a numpy array or a list of them, not "
            f"{type(x).__name__}"
        )
    if not items:
        raise ConfigError("no inputs given: pass a file, a folder, an array or a list of them")
    rate = _check_rate(sample_rate, any(isinstance(i, np.ndarray) for i in items))
    out: list[Input] = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            out.append(ArrayInput(len(out), mono(item, f"input {i} (array)"), rate))
        elif isinstance(item, str | os.PathLike):
            found = expand_sources([item])
            if Path(item).is_dir() or found[0][1] is not None:  # a folder or WebDataset shards
                single = False
            out += [FileInput(len(out) + k, f, s) for k, (f, s) in enumerate(found)]
        else:
            raise ConfigError(
                f"input {i} is a {type(item).__name__}; give file paths (str or Path), "
                "folders, or numpy arrays with sample_rate="
            )
    return out, single


def _check_rate(sample_rate, arrays: bool) -> int | None:
    if not arrays:
        if sample_rate is not None:
            raise ConfigError(
                "sample_rate applies to numpy array inputs only; files carry their own rate"
            )
        return None
    if sample_rate is None:
        raise ConfigError(
            "numpy array inputs need their sample rate: pass sample_rate=<Hz>, e.g. 16000"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ConfigError(f"sample_rate must be an integer number of Hz, not {sample_rate!r}")
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, not {sample_rate}")
    return int(sample_rate)


def mono(wave: np.ndarray, name: str = "array") -> np.ndarray:
    """One clip's samples as mono float32 (see the module docstring for the accepted shapes).

    Raises:
        ConfigError: not 1-D / ``[channels, samples]``, an ambiguous 2-D shape, or samples that
            are not real numbers.
    """
    wave = np.asarray(wave)
    if wave.dtype.kind == "f":
        wave = wave.astype(np.float32, copy=False)
    elif wave.dtype.kind in "iu":
        bits = 8 * wave.dtype.itemsize
        if wave.dtype.kind == "u":  # unsigned PCM is centred on half scale
            wave = wave.astype(np.float64) - 2.0 ** (bits - 1)
        wave = (wave / 2.0 ** (bits - 1)).astype(np.float32)
    else:
        raise ConfigError(f"{name}: samples of type {wave.dtype} are not audio; give floats")
    if wave.ndim == 1:
        return wave
    if wave.ndim != 2:
        raise ConfigError(
            f"{name}: shape {wave.shape}; one clip is [samples] or [channels, samples] "
            "(give several clips as a list of arrays)"
        )
    channels, samples = wave.shape
    if channels <= MAX_CHANNELS < samples:
        from harken.data.audio import downmix

        return downmix(wave.T)  # the mean of the channels, as for files
    if samples <= MAX_CHANNELS < channels:
        raise ConfigError(
            f"{name}: shape {wave.shape} looks like [samples, channels]; harken takes "
            "[channels, samples]: pass wave.T"
        )
    raise ConfigError(
        f"{name}: shape {wave.shape} is ambiguous; give [channels, samples] with at most "
        f"{MAX_CHANNELS} channels and more samples than that, or a 1-D mono array"
    )


def check_wave(item: ArrayInput) -> None:
    """The checks a decoded file gets (:func:`harken.data.audio.load_audio`): samples present,
    finite, not all zero; a warning when the clip is very short or near-silent.

    Raises:
        AudioError: naming the array.
    """
    from harken.data.audio import warn_if_unreliable

    wave = item.wave
    if wave.size == 0:
        raise AudioError(f"{item.name}: no audio samples; give a non-empty array")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{item.name}: the array holds NaN/inf samples")
    if not np.any(wave):
        raise AudioError(f"{item.name}: the audio is entirely silent (all samples are zero)")
    warn_if_unreliable(item.name, wave.size / item.sample_rate, float(np.max(np.abs(wave))))


def check_file(path: str | Path, length_limit: bool = True) -> None:
    """What can be checked of an input file before any model loads: it exists, is a file, is
    not empty, and (``length_limit``) is within the length limit
    (:func:`harken.api._check_size`; ``detect``, made for long recordings, has none).

    Raises:
        AudioError: missing, a folder, empty, or an unreadable header.
        DataError: longer than the limit.
    """
    from harken.api import _check_size

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: file not found; check the path")
    if not p.is_file():
        raise AudioError(f"{p}: not a regular file; give an audio or video file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: the file is empty (0 bytes); re-export or remove it")
    if length_limit:
        _check_size(p)


def preflight(inputs: list[Input], strict: bool) -> tuple[list[Input], list[Skipped]]:
    """Split ``inputs`` into those that pass :func:`check_file` / :func:`check_wave` and the
    skipped ones, before any model loads.

    Raises:
        AudioError / DataError: with ``strict``, the first problem; without, when no input is
            usable (a single input's own error, else one naming the first problem).
    """
    ok: list[Input] = []
    bad: list[tuple[Skipped, Exception]] = []
    for item in inputs:
        try:
            check_file(item.path) if isinstance(item, FileInput) else check_wave(item)
        except (AudioError, DataError) as exc:
            if strict and isinstance(item, FileInput) and item.source:
                raise type(exc)(_named(item, exc)) from exc  # name the member, not the copy
            if strict:
                raise
            file = item.name if isinstance(item, FileInput) else None
            bad.append((Skipped(item.index, file, _named(item, exc)), exc))
            continue
        ok.append(item)
    if not ok:
        if len(inputs) == 1:
            raise bad[0][1]
        raise DataError(
            f"none of the {_count(inputs)} could be used; first problem: {bad[0][0].reason}"
        )
    return ok, [b for b, _ in bad]


def _count(inputs: list[Input]) -> str:
    """``"3 files"``, ``"2 arrays"`` or ``"4 inputs"`` (files and arrays)."""
    kinds = {type(i) for i in inputs}
    noun = "files" if kinds == {FileInput} else "arrays" if kinds == {ArrayInput} else "inputs"
    return f"{len(inputs)} {noun}"


def _named(item: Input, exc: Exception) -> str:
    reason = str(exc)
    if isinstance(item, FileInput) and item.source:  # name the member, not harken's copy
        reason = reason.replace(item.path, item.source)
    return reason if item.name in reason else f"{item.name}: {reason}"


def embed_inputs(
    encoder,
    inputs: list[Input],
    strict: bool,
    store_dir: str | Path | None = None,
    store=None,
) -> tuple[np.ndarray, list[Input], list[Skipped]]:
    """Embed usable inputs with an audio encoder: files through the feature store (``store``,
    else one at ``store_dir``), arrays directly (:func:`embed_arrays`).

    Returns:
        ``(float32 [len(kept), D], kept inputs in input order, skipped inputs)``.

    Raises:
        AudioError / DataError: with ``strict``, the first unusable input; without, when none
            could be used.
    """
    from harken.data.manifest import Clip
    from harken.store.features import FeatureStore

    files = [i for i in inputs if isinstance(i, FileInput)]
    arrays = [i for i in inputs if isinstance(i, ArrayInput)]
    rows: dict[int, np.ndarray] = {}
    skipped: list[Skipped] = []
    if files:
        if store is None:
            store = FeatureStore(Path(store_dir) if store_dir else None, progress=False)
        clips = [Clip(clip_id=f.name, audio_path=Path(f.path), source=f.source) for f in files]
        got = store.get_usable("files", encoder, clips, skip_bad=not strict)
        rows.update((files[k].index, e) for k, e in zip(got.kept, got.embeddings, strict=True))
        position = {id(c): f for c, f in zip(clips, files, strict=True)}
        for b in got.skipped:
            f = position[id(b.clip)]
            skipped.append(Skipped(f.index, f.name, b.reason))
    if arrays:
        emb, kept, bad = embed_arrays(encoder, arrays, strict)
        rows.update((item.index, e) for item, e in zip(kept, emb, strict=True))
        skipped += bad
    if not rows:
        first = min(skipped, key=lambda s: s.index).reason if skipped else "no inputs"
        raise DataError(f"none of the {_count(inputs)} could be used; first problem: {first}")
    order = sorted(rows)
    by_index = {i.index: i for i in inputs}
    emb = np.stack([rows[i] for i in order]).astype(np.float32, copy=False)
    return emb, [by_index[i] for i in order], sorted(skipped, key=lambda s: s.index)


#: Samples held before a batch of arrays is embedded (as the feature store bounds decoding).
MAX_BATCH_SAMPLES = 32 * 2**20


def embed_arrays(
    encoder, arrays: list[ArrayInput], strict: bool
) -> tuple[np.ndarray, list[ArrayInput], list[Skipped]]:
    """Resample each array to the encoder's rate (soxr "VHQ", as files are) and embed them in
    batches; an embedding with NaN/inf counts as unusable (as in the feature store).

    Returns:
        ``(float32 [len(kept), D], kept arrays, skipped arrays)``.
    """
    from harken.data.audio import resample

    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            out.extend(np.asarray(encoder.embed(pending), dtype=np.float32))
            pending.clear()

    for item in arrays:
        pending.append(resample(item.wave, item.sample_rate, encoder.sample_rate))
        if sum(p.size for p in pending) > MAX_BATCH_SAMPLES:
            flush()
    flush()
    kept, rows, bad = [], [], []
    for item, row in zip(arrays, out, strict=True):
        if np.all(np.isfinite(row)):
            kept.append(item)
            rows.append(row)
            continue
        reason = f"{item.name}: the encoder returned NaN/inf"
        if strict:
            raise AudioError(reason)
        bad.append(Skipped(item.index, None, reason))
    emb = np.stack(rows) if rows else np.zeros((0, encoder.dim), np.float32)
    return emb, kept, bad


# --- the classifier -----------------------------------------------------------------------------


def check_top_k(top_k: int | None) -> int | None:
    """``top_k`` as given, or :class:`ConfigError` unless None or an integer ≥ 1."""
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ConfigError(f"--top-k must be an integer of at least 1, not {top_k!r}")
    return int(top_k)


def check_device(device: str | None) -> str | None:
    """``device`` as given, or :class:`ConfigError` unless None, ``cpu``, ``cuda``,
    ``cuda:<n>``, ``mps`` or ``auto`` (syntax only: nothing is imported)."""
    if device is None:
        return None
    name = str(device).strip().lower()
    base, _, number = name.partition(":")
    if base not in DEVICES or (number and (base != "cuda" or not number.isdigit())):
        raise ConfigError(
            f"device {device!r} is not one of cpu, cuda, cuda:<n>, mps, auto (or None: the "
            "current --device block's, else cpu)"
        )
    return name


def device_block(device: str | None):
    """A context in which the torch encoders created or run use ``device``
    (:func:`harken.encoders.device.use_device`); nothing for None.

    Raises:
        ConfigError: a device other than ``cpu`` in a harken without device placement.
    """
    if device is None:
        return contextlib.nullcontext()
    try:
        from harken.encoders.device import use_device
    except ImportError:  # a build without device placement runs everything on the CPU
        if device == "cpu":
            return contextlib.nullcontext()
        raise ConfigError(
            f"device={device!r}: this harken cannot place encoders on a device; leave "
            "device=None or 'cpu'"
        ) from None
    return use_device(device)


def score_kind(space, multi_label: bool) -> str:
    """What a space's scores are: probabilities exist iff it has a logit scale ``λ``;
    independent (sigmoid) ones only where its logits were learnt as such
    (:attr:`~harken.methods.joint.JointSpace.independent_logits`: CLAP, MS-CLAP).

    Raises:
        ConfigError: ``multi_label`` on a space without independent logits.
    """
    if multi_label and not getattr(space, "independent_logits", False):
        what = (
            "compatibilities, not logits"
            if space.logit_scale is None
            else "calibrated for a softmax over the candidates only (a sigmoid of them is not "
            "a probability)"
        )
        raise ConfigError(
            f"multi-label (sigmoid) probabilities need a backend with learnt logits "
            f"(clap[:<id>], msclap); the {space.spec!r} backend's scores are {what}: drop "
            "--multi-label / multi_label=True or choose --backend clap"
        )
    if space.logit_scale is None:
        return "compatibility"
    return "probability (independent)" if multi_label else "probability"


class Classifier:
    """Zero-shot classification with everything chosen and loaded once.

    Args:
        labels: Candidate labels (plain language; at least two, no two with the same text).
        backend: Joint space: ``bridge`` (offline default), ``clap[:<hub id or folder>]``,
            ``msclap[:<2023|weights.pth>]``.
        model: A run folder: use the training-free method, settings and knowledge it chose on
            dev data (see :func:`harken.api._model_settings`).
        templates: Prompt ensemble for the labels (a set name such as ``harken``, a JSON/TXT
            file, or one template with ``{}``); default: the ``harken`` ensemble.
        top_k: Keep the best ``k`` labels per input (None: all).
        multi_label: Independent sigmoid probabilities instead of a softmax (only backends with
            a logit scale: CLAP, MS-CLAP).
        device: Where its torch encoders run (``cpu``, ``cuda``, ``cuda:<n>``, ``mps``,
            ``auto``; see :mod:`harken.encoders.device`); None: the current ``--device`` block's,
            else the CPU.
        strict: Fail on the first unusable input instead of skipping it.
        store_dir: Feature-store folder for file inputs (default ``$HARKEN_CACHE_DIR/features``).

    Raises:
        ConfigError: bad labels, ``top_k``, ``device``, or an option the backend does not
            support.

    >>> clf = Classifier(["blender", "chopping", "water flowing"], top_k=2)
    >>> found = clf("../shared/data/kitchen20/audio/chopping")  # a folder: a list of results
    >>> len(found) > 10, len(found[0].ranking)
    (True, 2)
    """

    def __init__(
        self,
        labels: Sequence[str],
        backend: str = "bridge",
        *,
        model: str | Path | None = None,
        templates: str | Sequence[str] | None = None,
        top_k: int | None = None,
        multi_label: bool = False,
        device: str | None = None,
        strict: bool = False,
        store_dir: str | Path | None = None,
    ) -> None:
        from harken import api
        from harken.knowledge.classes import class_embeddings
        from harken.methods.base import Classes

        self.labels = api._check_labels(labels)
        self.top_k = check_top_k(top_k)
        self.device = check_device(device)
        self.backend, self.multi_label, self.strict = backend, bool(multi_label), strict
        self.store_dir = store_dir
        with device_block(self.device):
            # spaces are shared per device: a classifier on a device gets encoders loaded there
            self.method, self.settings = api.zero_shot_classifier(backend, model, self.multi_label)
            self.space = self.method.space
            self.score_kind = score_kind(self.space, self.multi_label)
            texts, self.knowledge_fallback = api._label_texts(templates, self.settings, self.labels)
            embeddings = class_embeddings(texts, self.space.text_encoder, self.labels)
        self.classes = Classes(self.labels, embeddings)

    def __repr__(self) -> str:
        return (
            f"Classifier({len(self.labels)} labels, backend={self.backend!r}, "
            f"score_kind={self.score_kind!r}, top_k={self.top_k})"
        )

    def __call__(self, x, sample_rate: int | None = None) -> Prediction | Predictions:
        """Same as :meth:`predict`."""
        return self.predict(x, sample_rate=sample_rate)

    def predict(self, x, sample_rate: int | None = None) -> Prediction | Predictions:
        """Rank the labels for ``x``.

        Args:
            x: A file, a folder, a numpy array (one clip; see the module docstring for shapes),
                or a list of files/folders/arrays.
            sample_rate: The rate of the arrays in ``x`` (Hz).

        Returns:
            One :class:`Prediction` for a single file or array; :class:`Predictions` (a list
            in input order, unusable inputs in ``.skipped``) for a list or a folder.

        Raises:
            ConfigError: inputs of the wrong type or shape.
            AudioError / DataError: a single input cannot be used, none of several can, or
                (``strict``) the first that cannot.
        """
        inputs, single = as_inputs(x, sample_rate)
        ready, skipped = preflight(inputs, self.strict)
        return self.predict_ready(ready, skipped, single)

    def predict_ready(
        self, inputs: list[Input], skipped: Sequence[Skipped] = (), single: bool = False
    ) -> Prediction | Predictions:
        """:meth:`predict` of inputs already through :func:`preflight`."""
        from harken.methods.base import Batch

        with device_block(self.device):
            emb, kept, bad = embed_inputs(
                self.space.audio_encoder, inputs, self.strict, self.store_dir
            )
        batch = Batch({self.space.audio_name: emb})
        logits = self.method.score(batch, self.classes)
        probs = None
        if self.space.logit_scale is not None:
            probs = self.method.probabilities(batch, self.classes)
        found = [
            self._ranked(item, logits[i], None if probs is None else probs[i])
            for i, item in enumerate(kept)
        ]
        if single:
            return found[0]
        return Predictions(found, sorted([*skipped, *bad], key=lambda s: s.index))

    def _ranked(self, item: Input, logits: np.ndarray, probs: np.ndarray | None) -> Prediction:
        key = logits if probs is None else probs
        order = np.argsort(-key, kind="stable")[: self.top_k or len(self.labels)]
        ranking = [
            LabelScore(
                self.labels[c],
                float(key[c]),
                None if probs is None else float(logits[c]),
            )
            for c in order
        ]
        return Prediction(
            item.name if isinstance(item, FileInput) else None,
            ranking,
            self.score_kind,
            item.index,
            self.knowledge_fallback,
        )


__all__ = [
    "SCORE_KINDS",
    "Classifier",
    "LabelScore",
    "Prediction",
    "Predictions",
    "Skipped",
    "as_inputs",
]
