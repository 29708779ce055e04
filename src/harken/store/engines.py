"""Executors for the encoding job: the same shards of clips, encoded here, in a process pool or
on a cluster.

The unit of work is a :class:`ShardTask`: up to ``shard_size`` clips (by content key) of one
feature-store folder. A worker rebuilds the encoder once from its :class:`EncoderRecipe`, runs
:func:`encode_shard` on each task it gets — encode, write the shard atomically into the store
folder (content-named, so two workers meeting write identical bytes), return a small
:class:`ShardDone` — and the driver only gathers those and reads each finished shard back, one
at a time. An :class:`Engine` decides where tasks run; engines are registered in
:data:`ENGINES`:

* ``local``: in this process, one task after another (the store's historical loop);
* ``process``: a pool of ``workers`` processes on this machine (:mod:`concurrent.futures`, the
  ``spawn`` context), each with one thread per library;
* ``ray``: Ray (``pip install 'harken[ray]'``), registered lazily by
  :mod:`harken.store.ray_engine` — importing harken never imports Ray.

Resumption: besides its shard, every finished task leaves ``task-<sha256 of its keys>.json`` in
the store folder, naming the shard that holds its keys; a task whose record names a valid
shard holding all its keys is not encoded again (:func:`encode_shard` returns the record), so a
retried task, a second worker or a second job meeting the same shard costs one small read.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harken.data.manifest import Clip
from harken.encoders.base import Encoder
from harken.errors import ConfigError
from harken.registry import Registry

#: Attribute that :func:`harken.encoders.base.get_encoder` sets on what it returns:
#: ``(registry name, options dict)``.
RECIPE_ATTR = "harken_recipe"

_TASK_FORMAT = "harken-shard-task-1"


# --- how a worker rebuilds the encoder -----------------------------------------------------------


@dataclass(frozen=True)
class EncoderRecipe:
    """How to rebuild an encoder in another process: ``get_encoder(name, **options)``, then
    :func:`~harken.encoders.base.frames_encoder` with ``frames`` when set.

    Picklable and small. In the driver process a recipe made by :func:`recipe_of` also holds the
    encoder itself (``instance``, not pickled, not compared), so the ``local`` engine reuses it
    instead of loading the model twice, and encoders that cannot be rebuilt (made by hand, not
    by ``get_encoder``) still run locally.

    Attributes:
        name: Registry name (``"yamnet"``, ``"clap:<id>"``...); None when the encoder was not
            made by ``get_encoder`` (it can then only run in this process).
        options: ``get_encoder``'s keyword options, as sorted ``(key, value)`` pairs.
        frames: Frames per clip of a :class:`~harken.encoders.base.FramesMean` wrapper.
        module: Module to import first in a worker (where the encoder class is defined; it
            registers encoders that live outside harken, e.g. plugins or tests).
        label: The encoder's name, for messages.
    """

    name: str | None
    options: tuple[tuple[str, Any], ...] = ()
    frames: int | None = None
    module: str | None = None
    label: str = ""
    instance: Any = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict:
        state = {k: getattr(self, k) for k in ("name", "options", "frames", "module", "label")}
        state["instance"] = None  # a model does not travel; the worker rebuilds it
        return state

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def portable(self) -> bool:
        """Whether another process can rebuild the encoder (it was made by ``get_encoder``)."""
        return self.name is not None

    def build(self) -> Encoder:
        """The encoder: ``instance`` when this recipe still holds it, else rebuilt.

        Raises:
            ConfigError: the encoder was not made by ``get_encoder`` and this is another process.
        """
        if self.instance is not None:
            return self.instance
        if self.name is None:
            raise ConfigError(
                f"encoder {self.label!r} was not made by harken.encoders.get_encoder, so a "
                "worker process cannot rebuild it; use --engine local, or register it in "
                "harken.encoders.base.ENCODERS and create it with get_encoder"
            )
        from harken.encoders.base import frames_encoder, get_encoder

        if self.module:
            importlib.import_module(self.module)
        encoder = get_encoder(self.name, **dict(self.options))
        if self.frames is not None:
            encoder = frames_encoder(encoder, self.frames)
        return encoder


def recipe_of(encoder: Encoder) -> EncoderRecipe:
    """The recipe of ``encoder`` (holding ``encoder`` itself for this process).

    Encoders from :func:`~harken.encoders.base.get_encoder` carry their ``(name, options)``;
    a :class:`~harken.encoders.base.FramesMean` adds its frame count to its inner encoder's.
    Any other encoder gets a recipe that only this process can use (``name=None``).
    """
    from harken.encoders.base import FramesMean

    frames = None
    inner = encoder
    if isinstance(encoder, FramesMean):
        frames, inner = encoder.frames_per_clip, encoder.inner
    made = getattr(inner, RECIPE_ATTR, None)
    label = str(getattr(encoder, "name", type(encoder).__name__))
    if made is None:
        return EncoderRecipe(None, frames=frames, label=label, instance=encoder)
    name, options = made
    base = getattr(inner, "inner", inner)  # a text-cache wrapper: the class that registered
    return EncoderRecipe(
        name,
        tuple(sorted(dict(options).items())),
        frames,
        type(base).__module__,
        label,
        instance=encoder,
    )


# --- the unit of work ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """One shard to encode: clips (one per content key) of one store folder.

    Attributes:
        folder: The feature-store folder (``FeatureStore.folder(dataset, encoder)``), created.
        keys: Content keys of the shard's clips, in shard order.
        clips: The clip to decode for each key (the first request position holding it).
        skip_bad: Report unusable clips in :attr:`ShardDone.bad` instead of raising.
    """

    folder: str
    keys: tuple[str, ...]
    clips: tuple[Clip, ...]
    skip_bad: bool = False

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.clips):
            raise ValueError(f"{len(self.keys)} keys but {len(self.clips)} clips")

    @property
    def task_id(self) -> str:
        """sha256 of the task's keys (in order): names its record in the store folder."""
        blob = "\n".join((_TASK_FORMAT, *self.keys)).encode()
        return hashlib.sha256(blob).hexdigest()

    def describe(self, limit: int = 3) -> str:
        """The task's clips for messages: ids and files of the first ``limit``."""
        shown = ", ".join(f"{c.clip_id} ({c.audio_path})" for c in self.clips[:limit])
        more = len(self.clips) - limit
        return shown + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class ShardDone:
    """What :func:`encode_shard` did for one task.

    Attributes:
        keys: Keys whose embeddings are now in ``shard`` (the task's usable keys).
        shard: The shard file holding them, or None when no clip was usable.
        bad: ``(key, reason)`` of the clips that could not be used (``skip_bad`` only).
        reused: True when a finished shard already held the keys (nothing was encoded).
        task_id: :attr:`ShardTask.task_id` of the task.
    """

    keys: tuple[str, ...]
    shard: str | None
    bad: tuple[tuple[str, str], ...] = ()
    reused: bool = False
    task_id: str = ""


def task_record(folder: Path, task_id: str) -> Path:
    """The file recording which shard holds a finished task's keys."""
    return Path(folder) / f"task-{task_id}.json"


def encode_shard(encoder: Encoder, task: ShardTask) -> ShardDone:
    """Pure worker function: encode ``task``'s clips and write their shard into the store.

    If the task's record names a valid shard holding all its keys (a retry, another worker or
    another job got there first), nothing is encoded and that shard is returned. Otherwise the
    clips are encoded (:func:`~harken.store.features.encode_usable` with ``skip_bad``, else
    :func:`~harken.store.features.encode_clips`), the shard is written atomically under its
    content name (identical bytes whoever writes it) and the record after it.

    Raises:
        AudioError / VideoError: an unusable clip when not ``task.skip_bad``.
    """
    from harken.store import features

    folder = Path(task.folder)
    task_id = task.task_id
    done = _reuse(folder, task, task_id)
    if done is not None:
        return done
    clips = list(task.clips)
    if task.skip_bad:
        emb, kept, bad_clips = features.encode_usable(encoder, clips)
        bad = tuple((task.keys[clips.index(b.clip)], b.reason) for b in bad_clips)
    else:
        emb, kept, bad = features.encode_clips(encoder, clips), list(range(len(clips))), ()
    keys = tuple(task.keys[k] for k in kept)
    shard = features._write_shard(folder, list(keys), emb) if keys else None
    if not bad:  # a task with bad clips is tried again next time (the file may be fixed)
        record = {"format": _TASK_FORMAT, "shard": shard.name, "keys": len(keys)}
        features.atomic_write_text(task_record(folder, task_id), json.dumps(record) + "\n")
    return ShardDone(keys, str(shard) if shard else None, bad, False, task_id)


def _reuse(folder: Path, task: ShardTask, task_id: str) -> ShardDone | None:
    """The finished shard named by the task's record, if it is valid and holds every key."""
    from harken.store import features

    try:
        record = json.loads(task_record(folder, task_id).read_text())
        name = str(record["shard"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    match = features._SHARD_NAME.match(name)
    if match is None or not (folder / name).is_file():
        return None
    loaded = features._read_shard(folder / name, match.group(1))
    if loaded is None:  # corrupt: move it aside, encode again
        features._move_aside(folder / name)
        return None
    if not set(task.keys) <= set(loaded[0]):
        return None
    return ShardDone(task.keys, str(folder / name), (), True, task_id)


# --- engines -------------------------------------------------------------------------------------


class Engine(ABC):
    """Runs shard tasks somewhere and yields their :class:`ShardDone` as they finish.

    An engine rebuilds the encoder from the recipe once per worker (``recipe.build()``) and
    calls :func:`encode_shard` for each task; it never returns embeddings to the driver (the
    driver reads each finished shard). Results may come in any order. A failed worker costs at
    most its task, retried; a task that keeps failing raises an error naming its clips.
    """

    #: Registry name.
    name: str = ""

    def default_workers(self) -> int:
        """Workers when the user gives none (``local``: 1; a pool: this machine's cores)."""
        return 1

    @abstractmethod
    def run(
        self, recipe: EncoderRecipe, tasks: Iterable[ShardTask], workers: int
    ) -> Iterator[ShardDone]:
        """Encode ``tasks`` with ``workers`` workers; yield each task's result when it is done.

        Raises:
            AudioError / VideoError: an unusable clip of a task without ``skip_bad``.
            ConfigError: the engine cannot run here (missing package, unreachable cluster).
        """


ENGINES: Registry[Engine] = Registry("engine")


@ENGINES.register("local")
class LocalEngine(Engine):
    """This process, one task after another (``workers`` is ignored)."""

    name = "local"

    def run(
        self, recipe: EncoderRecipe, tasks: Iterable[ShardTask], workers: int = 1
    ) -> Iterator[ShardDone]:
        encoder = None
        for task in tasks:
            if encoder is None:
                encoder = recipe.build()
            yield encode_shard(encoder, task)


_WORKER: dict[str, Any] = {}  # in a pool worker: the encoder built once, or why it failed


def _init_worker(recipe: EncoderRecipe, threads: int, started=None) -> None:
    """Pool initializer: limit every thread pool to ``threads`` for the worker's life, then
    build the encoder once (a failure is kept and raised by the first task, so it reaches the
    driver as itself rather than as a broken pool). ``started`` (a shared counter) tells the
    driver that a worker got this far."""
    import contextlib
    import os

    if started is not None:
        with started.get_lock():
            started.value += 1

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # for libraries loaded from here on
    stack = contextlib.ExitStack()
    _WORKER["limits"] = stack  # kept open until the process exits
    from harken.encoders.threads import limit

    stack.enter_context(limit(threads))
    try:
        _WORKER["encoder"] = recipe.build()
    except Exception as exc:  # re-raised by the first task
        _WORKER["error"] = exc
        return
    from threadpoolctl import threadpool_limits

    stack.enter_context(threadpool_limits(threads))  # BLAS/OpenMP libraries loaded by now
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _work(task: ShardTask) -> ShardDone:
    """A pool worker's task: :func:`encode_shard` with the worker's encoder."""
    if "error" in _WORKER:
        raise _WORKER["error"]
    return encode_shard(_WORKER["encoder"], task)


@ENGINES.register("process")
class ProcessEngine(Engine):
    """A pool of ``workers`` processes on this machine, each with its own encoder (built once)
    and one thread per library, so ``workers`` processes use ``workers`` cores.

    A worker that dies (killed, out of memory, a crash in native code) breaks the pool: the
    pool is restarted and the unfinished tasks are submitted again. Tasks that were in flight
    when a pool broke are retried one at a time, so the next failure names its culprit; a task
    that breaks an isolated pool more than ``retries`` times is given up: the other tasks are
    finished, then :class:`WorkerDied` names its clips. Finished shards are never encoded
    again (:func:`encode_shard` reuses them).

    Args:
        retries: Isolated retries of a task whose worker died, before giving up.
        start_method: ``"spawn"`` (default, safe with threads and models loaded in the
            driver) or ``"forkserver"``.
        threads: Threads per worker for BLAS, onnxruntime and torch.
        in_flight: Tasks submitted per worker ahead of the results (bounds driver memory).
    """

    name = "process"

    def __init__(
        self,
        retries: int = 2,
        start_method: str = "spawn",
        threads: int = 1,
        in_flight: int = 2,
    ) -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ConfigError(
                f"engine 'process': start_method must be 'spawn' or 'forkserver', not "
                f"{start_method!r} (fork is unsafe once a model's threads are running)"
            )
        for key, value, least in (("retries", retries, 0), ("threads", threads, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"engine 'process': {key} must be an integer ≥ {least}")
        self.retries = retries
        self.start_method = start_method
        self.threads = threads
        self.in_flight = max(1, int(in_flight))
        self.pools_started = 0  # pools started by the last run (1 + restarts)

    def default_workers(self) -> int:
        """This process's cores (its affinity mask), one single-threaded worker each."""
        from harken.encoders.threads import cpu_count

        return max(1, cpu_count())

    def _pool(self, recipe: EncoderRecipe, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pools_started += 1
        context = multiprocessing.get_context(self.start_method)
        self._started = context.Value("i", 0)
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(recipe, self.threads, self._started),
        )

    def _check_started(self) -> None:
        """After a broken pool: raise if no worker of it ever started (a bootstrap failure,
        not a shard's fault)."""
        if self._started.value == 0:
            raise ConfigError(
                f"the {self.start_method!r} worker processes of --engine process could not "
                "start (each died before it could load the encoder). Calling harken from a "
                "script? Put the call under `if __name__ == '__main__':` — workers re-import "
                "the main module — or use the local engine"
            )

    def run(
        self, recipe: EncoderRecipe, tasks: Iterable[ShardTask], workers: int = 2
    ) -> Iterator[ShardDone]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"--workers must be a positive integer, not {workers!r}")
        if not recipe.portable:
            recipe.build()  # raises the ConfigError that says why
        self.pools_started = 0
        source = iter(tasks)
        suspects: list[tuple[ShardTask, int]] = []  # (task, failures while run alone)
        pending: dict[Any, tuple[ShardTask, int]] = {}
        lost: list[tuple[ShardTask, int]] = []  # tasks given up on
        pool = None
        try:
            while True:
                if pool is None:
                    pool = self._pool(recipe, workers)
                isolated = bool(suspects)
                if isolated and not pending:  # a suspect runs alone: its failure is its own
                    task, failures = suspects.pop(0)
                    pending[pool.submit(_work, task)] = (task, failures)
                while not isolated and len(pending) < workers * self.in_flight:
                    task = next(source, None)
                    if task is None:
                        break
                    pending[pool.submit(_work, task)] = (task, -1)
                if not pending:
                    if lost:
                        raise WorkerDied(*lost[0], more=len(lost) - 1)
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    task, failures = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        self._check_started()
                        broken = True
                        if failures >= 0:  # it ran alone: it killed its worker
                            if failures + 1 > self.retries:
                                lost.append((task, failures + 1))  # finish the rest first
                            else:
                                suspects.insert(0, (task, failures + 1))
                        else:
                            suspects.append((task, 0))
                        continue
                    yield result
                if broken:
                    for task, failures in pending.values():  # every other one failed too
                        suspects.append((task, max(failures, 0)))
                    pending.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = None
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


class WorkerDied(RuntimeError):
    """A task's worker process died every time it ran (killed, out of memory, a native crash)."""

    def __init__(self, task: ShardTask, times: int, more: int = 0) -> None:
        self.task = task
        others = f" ({more} more shards failed the same way)" if more else ""
        super().__init__(
            f"a worker process died {times} times while encoding the shard of clips "
            f"{task.describe()}{others}; it is probably one of these files (a decoder crash or "
            "running out of memory): check them, or run with --engine local to see the error. "
            "Every other shard is stored: running again encodes only what is missing"
        )


#: Engines that need a package harken does not install by default: name → (module, extra).
NEEDS: dict[str, tuple[str, str]] = {"ray": ("ray", "ray")}

#: Modules that register further engines when imported (one line per engine; imported only
#: when an engine is looked up, so importing harken never imports Ray).
CATALOG: tuple[str, ...] = ("harken.store.ray_engine",)


def get_engine(name: str, **options: Any) -> Engine:
    """Create a registered engine (``local``, ``process``, ``ray``).

    Args:
        name: The engine.
        options: Its options (``ray``: ``address``).

    Raises:
        ConfigError: unknown engine, unknown option, or its package is not installed (the
            message says which ``pip install`` gets it).
    """
    need = NEEDS.get(name)
    if need is not None and importlib.util.find_spec(need[0]) is None:
        raise ConfigError(
            f"engine {name!r} needs the {need[0]!r} package, which is not installed: "
            f"pip install 'harken[{need[1]}]'"
        )
    _import_engines()
    return ENGINES.create(name, **options)


def engine_from_options(
    engine: str | Engine = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    where: str = "--",
) -> tuple[Engine, int]:
    """The engine and worker count of ``--engine/--workers/--ray-address`` (or the run
    config's ``engine``, ``workers``, ``ray_address``), checked before any work.

    Args:
        engine: Engine name (or an engine, returned as is).
        workers: Workers (None: the engine's :meth:`Engine.default_workers`).
        ray_address: The Ray cluster (``auto``, ``ray://host:10001``); ``ray`` only.
        where: Prefix of the option names in messages (``"--"`` for flags, ``"[encoders] "``).

    Raises:
        ConfigError: unknown engine, Ray not installed, ``ray_address`` without ``ray``,
            ``workers`` not a positive integer or given to ``local``.
    """
    flag = (lambda name: f"--{name.replace('_', '-')}") if where == "--" else (lambda n: where + n)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise ConfigError(f"{flag('workers')} must be a positive integer, not {workers!r}")
    if workers is not None and workers < 1:
        raise ConfigError(f"{flag('workers')} must be a positive integer, not {workers}")
    name = engine if isinstance(engine, str) else engine.name
    if ray_address is not None and name != "ray":
        raise ConfigError(
            f"{flag('ray_address')} is an option of the ray engine; add {flag('engine')} ray"
        )
    if name == "local" and workers not in (None, 1):
        raise ConfigError(
            f"{flag('workers')} {workers} needs an engine with workers: add "
            f"{flag('engine')} process (this machine) or ray (a cluster)"
        )
    if isinstance(engine, str):
        engine = get_engine(name, **({"address": ray_address} if ray_address else {}))
    return engine, workers if workers is not None else engine.default_workers()


def available_engines() -> list[str]:
    _import_engines()
    return sorted(ENGINES)


def _import_engines() -> None:
    """Engines that live in their own modules register themselves on import (one line each;
    lazily, so importing harken imports neither multiprocessing pools nor Ray)."""
    for module in CATALOG:
        if module in _IMPORTED:
            continue
        _IMPORTED.add(module)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but something it imports does not
                raise


_IMPORTED: set[str] = set()
