"""One experiment end to end: data → knowledge → features → protocol → methods → metrics → run.

:class:`ExperimentConfig` is what a ``harken run CONFIG.toml`` file holds (sections ``[data]``,
``[knowledge]``, ``[encoders]``, ``[protocol]``, ``[methods]``, ``[store]``). The ``[protocol]``
section names a protocol (``protocol = "kfold"``) and holds that protocol's own keys, which its
module defines and checks (:mod:`harken.protocols`). :class:`Experiment` holds the services every
protocol uses (data, class knowledge, features, methods); :func:`run_experiment` hands them to the
protocol, which writes ``results.json``, ``results.md``, ``manifest.json`` and its own files into
the run folder (``mode``: ``new``, ``overwrite`` or ``resume``).
"""

from __future__ import annotations

import json
import os
import tomllib
import typing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from harken.data.manifest import Manifest
from harken.data.readers import read_dataset
from harken.encoders.base import Encoder, get_encoder
from harken.errors import ConfigError, DataError
from harken.knowledge.base import get_generator
from harken.knowledge.cache import CachedGenerator
from harken.knowledge.classes import class_embeddings, class_texts
from harken.methods.base import Classes, Method, get_method
from harken.protocols.base import Protocol, available_protocols, get_protocol
from harken.store.features import FeatureStore, Usable, array_digest
from harken.store.runs import RunFolder
from harken.textfiles import read_utf8
from harken.typecheck import describe, matches, shown

DEFAULT_METHODS = ("linear", "conse", "bridge")


@dataclass
class ExperimentConfig:
    """A resolved experiment configuration (every field has a documented default).

    Attributes:
        dataset: Registered dataset name (``kitchen20``, ``epic100:validation``) or a CSV path.
        data_dir: Where the dataset lives (None: the reader's default / ``HARKEN_DATA_DIR``).
        dataset_options: Keyword options of the dataset's reader (e.g. ``media_dir`` of
            ``epic100-sounding`` and ``ego4d``, ``narrations`` = an Ego4D ``narration.json``).
        target: Label column to classify (``label``, ``verb``, ``noun``, ``action``).
        generator: Description generator (``template``, ``template:<set>``, ``llm``, ``openai``,
            ``descriptions:<file or set>``), or a list of them: the first is the default class
            knowledge, and ``bridge`` picks among them per fold on non-test classes.
        generator_options: Keyword arguments of the generator.
        per_narration: Describe each clip's narration (Gebhard §3) instead of class names.
        text_encoder: Text encoder of the class knowledge.
        normalize_text: L2-normalise text embeddings before/after averaging.
        tagger: Audio tagger whose label space ConSE-style methods bridge through.
        frames: Frames per clip for image encoders, sampled over the clip and averaged (1: the
            middle frame, ClipClap §4.1).
        engine: Where missing features are encoded (``[encoders] engine``): ``local`` (this
            process), ``process`` (a pool on this machine) or ``ray`` (a Ray cluster); the
            features are the same whichever encodes, so it may change on resume.
        workers: Workers of ``process``/``ray`` (None: the engine's default, e.g. the cores).
        ray_address: The Ray cluster of ``engine = "ray"`` (``auto``, ``ray://host:10001``).
        protocol: A registered protocol: ``kfold`` (class-disjoint folds), ``all-classes``
            (training-free, every class a candidate), ``gzsl``, ``discovery``, ``retrieval``,
            ``linear-probe`` (:func:`harken.protocols.base.available_protocols`).
        protocol_options: The protocol's own ``[protocol]`` keys (its module's ``Options``
            dataclass documents them, e.g. ``folds`` for ``kfold``); see :meth:`protocol_runner`.
        methods: Method names to compare.
        method_options: ``{method: {option: value}}``.
        seeds: Seeds of trainable methods (training-free methods run once per fold).
        store_dir: Feature-store folder (None: ``<cache>/features``).
        strict: Stop at the first clip that cannot be encoded (default: skip such clips, list
            them in the run manifest and run on the others).
        views: Extra class-knowledge views for methods that read several text spaces
            (ClipClap's ``clip``/``clap``, KDA's descriptions):
            ``{name: {"generator": spec, "text_encoder": encoder}}``.

    Every field is checked by :meth:`validate` (``from_toml`` calls it) before any work: its
    type from the annotation above (``bool`` is not an integer; a string is not a list — only
    ``generator`` also takes a single string), its range, the protocol's options (names, types,
    ranges: :meth:`harken.protocols.base.Protocol.parse`), the method names and each method's
    options (names, types and ranges, see
    :meth:`harken.registry.Registry.check`). Checks that need the dataset's class count are in
    :meth:`check_against`. Errors name the file and the key (``run.toml: [protocol] folds``).
    """

    dataset: str = "kitchen20"
    data_dir: str | None = None
    dataset_options: dict = field(default_factory=dict)
    target: str = "label"
    generator: str | list[str] = "template:harken"
    generator_options: dict = field(default_factory=dict)
    per_narration: bool = False
    text_encoder: str = "minilm"
    normalize_text: bool = True
    tagger: str = "yamnet"
    frames: int = 1
    engine: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    protocol: str = "kfold"
    protocol_options: dict = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    method_options: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    store_dir: str | None = None
    strict: bool = False
    progress: bool = True
    views: dict = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: Path, **overrides) -> ExperimentConfig:
        """Read and validate a TOML file (sections are flattened; unknown keys are an error).

        Args:
            path: The experiment file.
            **overrides: Values that replace the file's (None values are ignored), e.g. the
                command line's ``--store-dir``.

        Raises:
            ConfigError: the file cannot be read or parsed, or a value is invalid (the message
                names the file and the key, e.g. ``run.toml: [protocol] folds``).
        """
        raw = _read_toml(Path(path))
        flat, origins = _flatten(raw, path)
        for key, value in overrides.items():
            if value is not None:
                if key in FOLDER_FIELDS and isinstance(value, str | Path):
                    value = str(Path(value).resolve())  # the command line's: from the cwd
                flat[key], origins[key] = value, f"{key} (from the command line)"
        known = set(cls.__dataclass_fields__)
        protocol = flat.get("protocol", cls.protocol)
        options = flat.setdefault("protocol_options", {})
        if isinstance(protocol, str) and protocol.partition(":")[0] in available_protocols():
            # top-level keys the protocol defines belong to its section
            for key in sorted(set(flat) - known):
                if key in get_protocol(protocol).option_names():
                    options[key] = flat.pop(key)
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ConfigError(
                f"{path}: unknown config key(s) {', '.join(origins[k] for k in unknown)}; "
                f"known keys: {', '.join(sorted(known - {'method_options', 'protocol_options'}))}"
                f" and the protocol's own (sections {', '.join(f'[{s}]' for s in SECTIONS)}, "
                "options under [methods.<name>])"
            )
        _resolve_paths(flat, Path(path))  # the file's relative paths: from the file's folder
        config = cls(**flat)
        config._source, config._origins = str(path), origins
        config.validate()
        return config

    def protocol_runner(self) -> Protocol:
        """The configured protocol with its options parsed and checked."""
        cls = get_protocol(self.protocol)
        options = cls.parse(self.protocol_options, self.key)
        return cls(options)

    def key(self, name: str, source: bool = True) -> str:
        """How messages name the config key ``name``: ``run.toml: [protocol] folds`` (without
        the file name if not ``source``)."""
        origins = getattr(self, "_origins", {})
        label = origins.get(name) or f"[{DEFAULT_SECTION.get(name, 'protocol')}] {name}"
        if name == "methods" and name not in origins:
            label = "[methods] names"
        elif name.startswith("method_options.") and name not in origins:
            label = f"[methods.{name.partition('.')[2]}]"
        path = getattr(self, "_source", None)
        return f"{path}: {label}" if path and source else label

    def validate(self) -> None:
        """Check every field's type and range, and the methods and their options, before any
        work is done (checks that need the dataset's class count: :meth:`check_against`).

        Raises:
            ConfigError: naming the file and the key, what was expected and what was found.
        """
        self._check_types()
        self._check_ranges()
        self._check_protocol()
        self._check_names()
        self._check_methods()
        self.engine_and_workers()

    def engine_and_workers(self):
        """The feature store's engine and worker count (``[encoders] engine, workers,
        ray_address``).

        Raises:
            ConfigError: naming the key: an unknown engine, Ray not installed, ``workers``
                with ``local`` or ``ray_address`` without ``ray``.
        """
        from harken.store.engines import engine_from_options

        where = self.key("engine").rpartition("engine")[0]  # "run.toml: [encoders] "
        return engine_from_options(self.engine, self.workers, self.ray_address, where=where)

    def check_against(self, n_classes: int) -> None:
        """Check the protocol's split sizes against the dataset's ``n_classes`` (right after
        reading it).

        Raises:
            ConfigError: the protocol's counts (folds, test/dev or unseen classes) cannot be met.
        """
        runner = self.protocol_runner()
        if runner.needs_classes and n_classes < 2:
            have = f"the dataset has {n_classes} classes in column {self.target!r}"
            raise ConfigError(f"{self.key('target')}: {have}; zero-shot needs at least 2")
        runner.check_against(self, n_classes)

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for name in self.__dataclass_fields__:
            value, hint = getattr(self, name), hints[name]
            if matches(value, hint) or (name in PATH_FIELDS and isinstance(value, os.PathLike)):
                continue
            if isinstance(value, str | int | float) and "list" in describe(hint):
                example = json.dumps([value])
                raise ConfigError(
                    f"{self.key(name)} must be {describe(hint)} such as {example}, not "
                    f"{shown(value)}"
                )
            raise ConfigError(f"{self.key(name)} must be {describe(hint)}, not {shown(value)}")

    def _check_ranges(self) -> None:
        for name, ok, expected in RANGES:
            value = getattr(self, name)
            if value is not None and not ok(value):
                raise ConfigError(f"{self.key(name)} must be {expected}, not {value!r}")
        if not self.seeds:
            raise ConfigError(f"{self.key('seeds')} must list at least one seed, e.g. [0, 1, 2]")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{self.key('seeds')} lists a seed twice: {self.seeds}")
        for name in ("dataset", "target"):
            if not str(getattr(self, name)).strip():
                raise ConfigError(f"{self.key(name)} is empty; give a value or leave the key out")

    def _check_protocol(self) -> None:
        known = available_protocols()
        if self.protocol not in known:
            raise ConfigError(
                f"{self.key('protocol')} must be one of {', '.join(map(repr, known))}, "
                f"not {self.protocol!r}"
            )
        self.protocol_runner()

    def _check_names(self) -> None:
        from harken.encoders.base import available_encoders
        from harken.knowledge.base import available_generators

        generators = [self.generator] if isinstance(self.generator, str) else self.generator
        if not generators:
            raise ConfigError(f"{self.key('generator')}: give at least one description generator")
        encoders, known_generators = available_encoders(), available_generators()
        for spec in generators:
            _check_name(spec, known_generators, "description generator", self.key("generator"))
        for name in ("text_encoder", "tagger"):
            _check_name(getattr(self, name), encoders, "encoder", self.key(name))
        for view, spec in self.views.items():
            where = f"{self.key('views')}.{view}"
            if not isinstance(spec, dict) or not isinstance(spec.get("generator"), str):
                raise ConfigError(
                    f'{where} must be a table {{generator = "...", text_encoder = "..."}}, '
                    f"not {spec!r}"
                )
            extra = sorted(set(spec) - {"generator", "text_encoder"})
            if extra:
                raise ConfigError(
                    f"{where}: unknown key(s) {extra}; known: generator, text_encoder"
                )
            _check_name(spec["generator"], known_generators, "description generator", where)
            if "text_encoder" in spec:
                _check_name(str(spec["text_encoder"]), encoders, "encoder", where)

    def _check_methods(self) -> None:
        from harken.methods import catalog  # noqa: F401  (registers the built-in methods)
        from harken.methods.base import METHODS

        if not self.methods:
            raise ConfigError(
                f'{self.key("methods")} must name at least one method, e.g. ["linear"]'
            )
        repeated = sorted({m for m in self.methods if self.methods.count(m) > 1})
        if repeated:
            raise ConfigError(f"{self.key('methods')} lists {repeated} more than once")
        for name in self.methods:
            _check_name(name, sorted(METHODS), "method", self.key("methods"))
        for name, options in self.method_options.items():
            where = self.key(f"method_options.{name}")
            _check_name(name, sorted(METHODS), "method", where)
            if not isinstance(options, dict):
                raise ConfigError(f"{where} must be a table of options, not {shown(options)}")
            METHODS.check(name, options, context=where)
            self._check_feature_options(name, options, where)

    @staticmethod
    def _check_feature_options(name: str, options: dict, where: str) -> None:
        """Encoder names in a method's feature options (``features``, ``audio``, ``video``)
        are checked before any clip is encoded."""
        from harken.encoders.base import available_encoders

        encoders = available_encoders()
        for key in FEATURE_OPTIONS:
            value = options.get(key)
            names = [value] if isinstance(value, str) else value or []
            for encoder in names:
                _check_name(str(encoder), encoders, "encoder", f"{where}.{key} (method {name!r})")


#: The sections of an experiment file; keys may sit in any of them (or at the top level).
SECTIONS = ("data", "knowledge", "encoders", "protocol", "methods", "store")

#: The section each key is documented under (how messages name keys of configs made in code).
DEFAULT_SECTION = {
    "dataset": "data",
    "data_dir": "data",
    "dataset_options": "data",
    "target": "data",
    "generator": "knowledge",
    "generator_options": "knowledge",
    "per_narration": "knowledge",
    "text_encoder": "knowledge",
    "normalize_text": "knowledge",
    "views": "knowledge",
    "tagger": "encoders",
    "engine": "encoders",
    "workers": "encoders",
    "ray_address": "encoders",
    "seeds": "methods",
    "store_dir": "store",
    "progress": "store",
    "strict": "store",
}

#: Method options that name feature encoders.
FEATURE_OPTIONS = ("features", "audio", "video")

#: Fields that hold a path: a :class:`~pathlib.Path` is as good as a string there.
PATH_FIELDS = ("dataset", "data_dir", "store_dir")

#: Path fields that always name a file or folder (``dataset`` may also be a registered name);
#: a protocol's own path options are listed in its ``PATH_OPTIONS``.
FOLDER_FIELDS = ("data_dir", "store_dir")


#: field → (check, expected value in words); None values are not checked (they mean "default").
RANGES = [
    ("frames", (lambda v: v >= 1), "an integer ≥ 1"),
    ("seeds", (lambda v: all(s >= 0 for s in v)), "a list of integers ≥ 0"),
]


def _read_toml(path: Path) -> dict:
    text = read_utf8(path, "config file", ConfigError, "give the experiment's .toml file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc


def _flatten(raw: dict, path: Path) -> tuple[dict, dict[str, str]]:
    """``{key: value}`` over every section, and where each key was written
    (``"[protocol] folds"``); a key written twice is an error."""
    flat: dict = {}
    origins: dict[str, str] = {}

    def put(key: str, value, origin: str) -> None:
        if key in origins:
            raise ConfigError(f"{path}: {origin} repeats {origins[key]}; set each key once")
        flat[key], origins[key] = value, origin

    for section, value in raw.items():
        if section not in SECTIONS or not isinstance(value, dict):
            put(section, value, section)
            continue
        for k, v in value.items():
            if section == "methods" and isinstance(v, dict):
                flat.setdefault("method_options", {})[k] = v
                origins[f"method_options.{k}"] = f"[methods.{k}]"
            elif section == "methods" and k == "names":
                put("methods", v, "[methods] names")
            elif section == "protocol" and k not in ("protocol", "name"):
                if k in origins:
                    raise ConfigError(
                        f"{path}: [protocol] {k} repeats {origins[k]}; set each key once"
                    )
                flat.setdefault("protocol_options", {})[k] = v
                origins[k] = f"[protocol] {k}"
            elif section == "protocol":
                put("protocol", v, f"[protocol] {k}")
            else:
                put(k, v, f"[{section}] {k}")
    return flat, origins


def _resolve_paths(flat: dict, path: Path) -> None:
    """Paths in the file are relative to the file's folder (the protocol's path options too)."""
    for key in FOLDER_FIELDS:
        if isinstance(flat.get(key), str) and flat[key] and not Path(flat[key]).is_absolute():
            flat[key] = str((path.parent / flat[key]).resolve())
    options = flat.get("protocol_options", {})
    protocol = flat.get("protocol", "kfold")
    if isinstance(protocol, str) and protocol in available_protocols():
        for key in get_protocol(protocol).PATH_OPTIONS:
            value = options.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                options[key] = str((path.parent / value).resolve())
    dataset = flat.get("dataset")
    if isinstance(dataset, str) and dataset.endswith(".csv"):
        csv_path = Path(dataset)
        if not csv_path.is_absolute() and (path.parent / csv_path).exists():
            flat["dataset"] = str((path.parent / csv_path).resolve())
    if isinstance(dataset, str) and dataset.lower().endswith(".tar"):  # WebDataset shards
        shards = Path(dataset)  # maybe a brace pattern: its folder must exist beside the file
        if not shards.is_absolute() and (path.parent / shards.parent).is_dir():
            flat["dataset"] = str(path.parent.resolve() / shards)


def _check_name(name: str, known: list[str], kind: str, where: str) -> None:
    if name.partition(":")[0] not in known:
        raise ConfigError(f"{where}: unknown {kind} {name!r}; choose one of: {', '.join(known)}")


class Experiment:
    """Holds the loaded pieces of one experiment (manifest, encoders, features, knowledge)."""

    def __init__(self, config: ExperimentConfig, folder: RunFolder) -> None:
        config.validate()
        self.config = config
        self.folder = folder
        engine, workers = config.engine_and_workers()
        self.store = FeatureStore(
            Path(config.store_dir) if config.store_dir else None,
            progress=config.progress,
            engine=engine,
            workers=workers,
        )
        self._encoders: dict[str, Encoder] = {}
        self._classes: dict[str, Classes] = {}
        #: Clips the features stage skipped: ``[{"clip_id", "file", "reasons"}]``.
        self.skipped: list[dict] = []

    def encoder(self, name: str) -> Encoder:
        """The encoder ``name`` (loaded once); image encoders embed ``frames`` frames per clip
        and average them (:func:`harken.encoders.base.frames_encoder`)."""
        if name not in self._encoders:
            encoder = get_encoder(name)
            if getattr(encoder, "modality", None) == "image" and self.config.frames > 1:
                from harken.encoders.base import frames_encoder

                encoder = frames_encoder(encoder, self.config.frames)
            self._encoders[name] = encoder
        return self._encoders[name]

    def load_data(self, require_target: bool = True) -> Manifest:
        """Read the dataset; check the ``target`` column and the protocol's class counts
        (``require_target=False``: a dataset without that label column is fine, e.g.
        narrated clips for the discovery protocol)."""
        c = self.config
        with self.folder.stage("data"):
            manifest = read_dataset(c.dataset, c.data_dir, **c.dataset_options)
            if c.target not in manifest.targets and not require_target:
                return manifest
            if c.target not in manifest.targets:
                raise ConfigError(
                    f"dataset {manifest.name!r} has no label column {c.target!r}; "
                    f"choose one of {manifest.targets}"
                )
            c.check_against(len(manifest.classes(c.target)))
        return manifest

    def classes_for(self, method: Method, texts: dict[str, list[str]], default: Classes) -> Classes:
        """Class embeddings in the text space ``method`` needs (its own ``text_encoder``, e.g. a
        CLAP text tower, or the knowledge text encoder); each text space is embedded once."""
        name = getattr(method, "text_encoder", None) or self.config.text_encoder
        if name == self.config.text_encoder:
            return default
        if name not in self._classes:
            emb = class_embeddings(
                texts, self.encoder(name), default.names, normalize=self.config.normalize_text
            )
            self._classes[name] = Classes(list(default.names), emb)
        return self._classes[name]

    def knowledge(self, manifest: Manifest) -> tuple[Classes, dict[str, list[str]], dict]:
        """Class embeddings from the knowledge generator(s).

        With several generators (``generator = ["template:harken", "descriptions:kitchen20"]``)
        the first one gives ``Classes.embeddings`` and every one an entry of
        ``Classes.alternatives``, which methods that select on non-test classes (``bridge``)
        choose among per fold. Returns the classes, the texts of every generator per class,
        and the generator config(s).
        """
        c = self.config
        specs = [c.generator] if isinstance(c.generator, str) else list(c.generator)
        if not specs:
            raise ConfigError("generator: give at least one description generator")
        with self.folder.stage("knowledge"):
            classes = manifest.classes(c.target)
            narrations = None
            if c.per_narration:
                missing = [clip.clip_id for clip in manifest if not clip.narration]
                if missing:
                    raise ConfigError(
                        f"per_narration needs a narration for every clip; {len(missing)} have "
                        f"none (e.g. {missing[:3]})"
                    )
                narrations = [(clip.label(c.target), clip.narration) for clip in manifest]
            text_encoder = self.encoder(c.text_encoder)
            texts_by: dict[str, dict[str, list[str]]] = {}
            embeddings: dict[str, np.ndarray] = {}
            configs = []
            for spec in specs:
                generator = CachedGenerator(get_generator(spec, **c.generator_options))
                texts_by[spec] = class_texts(generator, classes, narrations)
                embeddings[spec] = class_embeddings(
                    texts_by[spec], text_encoder, classes, normalize=c.normalize_text
                )
                configs.append(generator.config())
        self.texts_by_generator = texts_by
        alternatives = embeddings if len(specs) > 1 else {}
        return (
            Classes(classes, embeddings[specs[0]], alternatives),
            texts_by[specs[0]],
            configs[0] if len(configs) == 1 else configs,
        )

    def write_sources(self) -> None:
        """``descriptions-by-source.csv`` (columns ``source,class,text``): each knowledge
        source's texts as the run used them, so reports can compare the sources without
        regenerating them (an LLM source needs its model for that)."""
        rows = (
            (spec, cls, text)
            for spec, by_class in self.texts_by_generator.items()
            for cls, texts in by_class.items()
            for text in dict.fromkeys(texts)
        )
        self.folder.write_csv("descriptions-by-source.csv", ["source", "class", "text"], rows)

    def label_space(self) -> Classes:
        """The tagger's label names embedded with the knowledge text encoder."""
        tagger = self.encoder(self.config.tagger)
        names = list(tagger.class_names)
        text_encoder = self.encoder(self.config.text_encoder)
        emb = np.asarray(text_encoder.embed(names), dtype=np.float32)
        return Classes(names, emb)

    def features(
        self, manifest: Manifest, names: set[str]
    ) -> tuple[Manifest, dict[str, np.ndarray]]:
        """Embeddings of the manifest's clips for each audio/image feature in ``names``.

        Unusable clips (missing, empty, silent, corrupt files) are skipped unless the config is
        ``strict``: they are listed in :attr:`skipped` (and in the run manifest through
        :meth:`provenance`) and the run proceeds on the remaining clips.

        Returns:
            The manifest of the clips every feature could embed, and ``{name: [N, D]}`` rows in
            that manifest's order.

        Raises:
            DataError: every clip failed (with ``strict``: the first clip that fails).
        """
        usable: dict[str, Usable] = {}
        with self.folder.stage("features"):
            for name in sorted(names):
                usable[name] = self.store.get_usable(
                    manifest.name,
                    self.encoder(name),
                    manifest.clips,
                    skip_bad=not self.config.strict,
                )
        return self._keep_usable(manifest, usable)

    def _keep_usable(
        self, manifest: Manifest, usable: dict[str, Usable]
    ) -> tuple[Manifest, dict[str, np.ndarray]]:
        """Keep the clips every feature embedded; record the others in :attr:`skipped`."""
        good = set(range(len(manifest)))
        bad: dict[int, list[str]] = {}
        for name, got in usable.items():
            good &= set(got.kept)
            for b in got.skipped:
                bad.setdefault(manifest.clips.index(b.clip), []).append(f"{name}: {b.reason}")
        self.skipped = [
            {
                "clip_id": manifest.clips[i].clip_id,
                "file": str(manifest.clips[i].audio_path),
                "reasons": bad[i],
            }
            for i in sorted(bad)
        ]
        if usable and not good:
            raise DataError(
                f"{manifest.name}: none of the {len(manifest)} clips could be encoded; first "
                f"problem: {self.skipped[0]['reasons'][0] if self.skipped else 'unknown'}"
            )
        if len(good) == len(manifest):
            return manifest, {n: got.embeddings for n, got in usable.items()}
        keep = sorted(good)
        out = {}
        for name, got in usable.items():
            row = {clip: r for r, clip in enumerate(got.kept)}
            out[name] = got.embeddings[[row[i] for i in keep]]
        kept = replace(manifest, clips=[manifest.clips[i] for i in keep])
        return kept, out

    def provenance(
        self,
        manifest: Manifest,
        n_classes: int,
        features: dict[str, np.ndarray],
        generator_config,
    ) -> dict:
        """The run manifest's ``dataset``, ``knowledge``, ``encoders`` and ``features``
        sections (ids, fingerprints, model configs, feature-store folders and hashes) and the
        clips the features stage skipped (``skipped_clips``)."""
        c = self.config
        names = sorted(features)
        return {
            "dataset": {
                "name": manifest.name,
                "root": str(manifest.root),
                "clips": len(manifest),
                "classes": n_classes,
                "fingerprint": manifest.fingerprint(),
            },
            "knowledge": {
                "generator": generator_config,
                "text_encoder": self.encoder(c.text_encoder).config(),
                "method_text_encoders": {
                    n: self.encoder(n).config() for n in sorted(self._classes)
                },
                "views": c.views,
            },
            "encoders": {n: self.encoder(n).config() for n in names},
            "features": {
                n: {
                    "store": str(self.store.folder(manifest.name, self.encoder(n))),
                    "sha256": array_digest(features[n]),
                }
                for n in names
            },
            "skipped_clips": self.skipped,
        }

    def make_method(self, name: str, label_space: Classes | None) -> Method:
        options = dict(self.config.method_options.get(name, {}))
        method = get_method(name, **options)
        if method.uses_label_space:
            method = get_method(name, label_space=label_space, tagger=self.config.tagger, **options)
        return method


def run_experiment(config: ExperimentConfig, out: Path, mode: str = "new") -> dict:
    """Run ``config`` with its protocol and write its run folder at ``out``; returns
    ``results.json``'s content.

    Args:
        config: The experiment.
        out: The run folder.
        mode: ``new`` (the folder must be empty), ``overwrite`` (clear a harken run folder
            first) or ``resume`` (continue one: finished units stored under ``units/`` are
            reused; the config must match the recorded one). See
            :class:`~harken.store.runs.RunFolder`.
    """
    protocol = config.protocol_runner()
    folder = RunFolder(out, mode)
    folder.begin(asdict(config))
    return protocol.run(Experiment(config, folder))
