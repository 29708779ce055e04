"""The ``ray`` engine: shard tasks encoded by a pool of Ray actors, on one machine or a cluster.

**Why Ray Data ``map_batches`` with an actor pool.** Ray's batch-inference guide ("Running
batch inference with Ray", docs.ray.io, Ray Data user guide) recommends ``map_batches`` over a
*callable class* as the default for model inference: Ray Data runs the class on a pool of
stateful actors, ``__init__`` loads the model once per actor and ``__call__`` runs each batch;
plain functions (stateless tasks) are for transformations that hold no model. Ray Core tasks
would reload the encoder for every shard, and a hand-made actor pool would redo what Ray Data
already does: stream the inputs to whichever actor is free, restart an actor that dies and
re-run its in-flight batch (the actor pool's defaults are ``max_restarts=-1`` and retried actor
tasks), and hand results back as they finish. So here one dataset row is one JSON-encoded
:class:`~harken.store.engines.ShardTask`, a batch is one row, and each actor:

* rebuilds the encoder once from the :class:`~harken.store.engines.EncoderRecipe` (with one
  thread per library per CPU it holds, set inside the actor only), and
* runs :func:`~harken.store.engines.encode_shard` per task, which writes the shard into the
  content-addressed store folder (atomic, content-named) and returns a small
  :class:`~harken.store.engines.ShardDone` — the driver gathers those, never embeddings.

**Faults.** A killed actor is restarted by Ray and its shard re-run (``max_retries`` times per
shard); nothing finished is recomputed, because :func:`encode_shard` first looks in the store
(the shard files are the truth) and only returns the record of a shard already written.
Errors raised by harken inside a worker (a bad clip, a missing model) come back as the same
exception type; a shard that keeps killing its worker ends the job with an error naming its
clips' shards.

**Where.** ``address`` is ``None`` (start a one-machine Ray in this process and stop it
afterwards), ``"auto"`` (the cluster ``ray start`` runs on this machine), ``"host:port"`` (a
cluster's head node, from a node of that cluster) or ``"ray://host:10001"`` (Ray Client, from
outside; needs ``ray[client]``). Every node must have harken (same version) and the model
weights installed, and see the feature store at the same path (a shared file system).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harken import errors
from harken.data.manifest import Clip
from harken.encoders.threads import limit
from harken.errors import ConfigError
from harken.store.engines import (
    ENGINES,
    EncoderRecipe,
    Engine,
    ShardDone,
    ShardTask,
    encode_shard,
)

log = logging.getLogger(__name__)

#: Seconds to wait for a cluster's head node to accept a connection.
CONNECT_TIMEOUT_S = 30.0


# Rows carry JSON text, not pickles: what a worker sends back is data the driver parses, never
# code it would run (a pickle can).

#: Error types a worker's exception keeps when it reaches the driver; any other becomes a
#: RuntimeError carrying its type name and message.
_ERRORS = {
    cls.__name__: cls
    for cls in (
        errors.AudioError,
        errors.VideoError,
        errors.DataError,
        errors.ConfigError,
        errors.ModelUnavailableError,
        errors.HarkenError,
    )
}
_PATHS = ("audio_path", "video_path")


def _task_json(task: ShardTask) -> str:
    clips = [
        {
            f.name: (str(v) if f.name in _PATHS and v is not None else v)
            for f in dataclasses.fields(c)
            for v in (getattr(c, f.name),)
        }
        for c in task.clips
    ]
    return json.dumps(
        {"folder": task.folder, "keys": task.keys, "clips": clips, "skip_bad": task.skip_bad}
    )


def _task_from_json(text: str) -> ShardTask:
    d = json.loads(text)
    clips = tuple(
        Clip(**{k: (Path(v) if k in _PATHS and v is not None else v) for k, v in c.items()})
        for c in d["clips"]
    )
    return ShardTask(d["folder"], tuple(d["keys"]), clips, bool(d["skip_bad"]))


def _done_json(done: ShardDone) -> str:
    return json.dumps(dataclasses.asdict(done))


def _done_from_json(text: str) -> ShardDone:
    d = json.loads(text)
    bad = tuple((str(k), str(r)) for k, r in d["bad"])
    return ShardDone(tuple(d["keys"]), d["shard"], bad, bool(d["reused"]), d["task_id"])


def _portable_error(exc: BaseException, task: ShardTask | None) -> str:
    """``exc`` as JSON for the driver: its type name and message."""
    where = f" (shard of {task.describe()})" if task is not None else ""
    known = type(exc).__name__ in _ERRORS and isinstance(exc, _ERRORS[type(exc).__name__])
    message = str(exc) if known else f"{type(exc).__name__}: {exc}{where}"
    return json.dumps({"type": type(exc).__name__ if known else "RuntimeError", "message": message})


def _error_from_json(text: str) -> Exception:
    d = json.loads(text)
    return _ERRORS.get(d["type"], RuntimeError)(d["message"])


class _ShardEncoder:
    """The Ray Data callable class: one instance per actor, holding the encoder it built once.

    A row in is ``{"task": ShardTask as JSON}``; a row out is ``{"done": ShardDone as JSON or
    "", "error": the exception as JSON or "", "pid", "node"}`` (the worker's process id and Ray
    node, for monitoring and the fault tests). Exceptions travel as data so that the driver
    re-raises harken's own error types unchanged.
    """

    def __init__(self, recipe: EncoderRecipe, threads: int) -> None:
        import ray

        self.pid = os.getpid()
        self.node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        self.threads = threads
        self.encoder = None
        self.failure = ""
        try:
            with limit(threads):  # onnxruntime fixes its threads when a model loads
                self.encoder = recipe.build()
        except Exception as exc:  # reported with the first task (a constructor error would
            self.failure = _portable_error(exc, None)  # only say "actor died" in the driver)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        done, errors = [], []
        for blob in batch["task"]:
            task = _task_from_json(str(blob))
            result, error = "", self.failure
            if not error:
                try:
                    with limit(self.threads):
                        result = _done_json(encode_shard(self.encoder, task))
                except Exception as exc:
                    error = _portable_error(exc, task)
            done.append(result)
            errors.append(error)
        n = len(done)
        return {"done": done, "error": errors, "pid": [self.pid] * n, "node": [self.node] * n}


def _bound(recipe: EncoderRecipe, threads: int) -> type[_ShardEncoder]:
    """:class:`_ShardEncoder` with its arguments built in: Ray pickles a class defined here by
    value, so the small recipe travels with the class instead of as constructor arguments in
    the object store (which a restarted actor could find gone)."""

    class ShardEncoder(_ShardEncoder):
        def __init__(self) -> None:
            super().__init__(recipe, threads)

    return ShardEncoder


@ENGINES.register("ray")
class RayEngine(Engine):
    """Encode shards on Ray actors (Ray Data ``map_batches`` with an actor pool).

    Args:
        address: The cluster: None (a one-machine Ray started in this process for the job),
            ``"auto"``, ``"host:port"`` of the head node or ``"ray://host:port"`` (Ray Client).
        cpus_per_worker: CPUs each actor reserves; its encoder uses that many threads.
        max_retries: Times a shard is re-run after its worker died, before the job fails.
        connect_timeout: Seconds to wait for the head node to answer.

    Attributes:
        worker_pids: Process id of the actor that produced each result, in arrival order.
        nodes: Ray node ids of the actors that produced results.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus_per_worker: int = 1,
        max_retries: int = 3,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if cpus_per_worker < 1:
            raise ConfigError(f"cpus_per_worker must be >= 1, got {cpus_per_worker}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        self.address = address or None
        self.cpus_per_worker = int(cpus_per_worker)
        self.max_retries = int(max_retries)
        self.connect_timeout = float(connect_timeout)
        self.worker_pids: list[int] = []
        self.nodes: set[str] = set()

    def default_workers(self) -> int:
        """0: one worker per ``cpus_per_worker`` CPUs of the cluster (known once connected)."""
        return 0

    # --- connection --------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        """Fail fast (``ray.init`` waits minutes) when nothing listens at ``host:port``."""
        if self.address in (None, "auto", "local"):
            return
        hostport = self.address.removeprefix("ray://")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                f"--ray-address {self.address!r}: expected auto, HOST:PORT of the head node "
                "(ray start --head --port PORT) or ray://HOST:PORT (Ray Client)"
            )
        try:
            socket.create_connection((host.strip("[]"), int(port)), self.connect_timeout).close()
        except OSError as exc:
            raise ConfigError(
                f"no Ray cluster answers at {self.address} ({exc.strerror or exc}); start its "
                "head node there with `ray start --head --port PORT`, or fix --ray-address"
            ) from None

    def _connect(self, workers: int) -> bool:
        """Connect to (or start) Ray; True when this call initialised it (and must shut it)."""
        import ray

        if ray.is_initialized():
            return False
        self._check_reachable()
        options: dict[str, Any] = {
            "logging_level": logging.WARNING,
            "configure_logging": False,
        }
        if self.address is None:  # a private one-machine Ray for this job
            options["include_dashboard"] = False
            if workers > 0:  # else Ray takes this machine's cores
                options["num_cpus"] = workers * self.cpus_per_worker
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "this machine"
            raise ConfigError(f"could not connect to Ray at {where}: {exc}") from exc
        return True

    def _pool_size(self, workers: int) -> int:
        """``workers`` actors, fewer when the cluster has not the CPUs (0: as many as fit)."""
        import ray

        fit = int(ray.cluster_resources().get("CPU", 0) // self.cpus_per_worker)
        if fit < 1:
            raise ConfigError(
                f"the Ray cluster has {ray.cluster_resources().get('CPU', 0)} CPUs; each "
                f"worker needs {self.cpus_per_worker} (lower cpus_per_worker or add nodes)"
            )
        if workers <= 0:
            return fit
        if workers > fit:
            log.warning("Ray cluster fits %d workers of %d CPUs; using %d, not %d",
                        fit, self.cpus_per_worker, fit, workers)  # fmt: skip
        return min(workers, fit)

    # --- the job -----------------------------------------------------------------------------

    def run(
        self, recipe: EncoderRecipe, tasks: Iterable[ShardTask], workers: int
    ) -> Iterator[ShardDone]:
        """Encode ``tasks`` on ``workers`` Ray actors; yield each :class:`ShardDone` as it
        arrives (any order).

        Raises:
            ConfigError: Ray is missing, the cluster is unreachable or too small, or the
                encoder cannot be rebuilt in a worker (made by hand, not by ``get_encoder``).
            AudioError / VideoError / DataError: an unusable clip of a task without
                ``skip_bad`` (raised in the worker, re-raised here).
            RuntimeError: workers died more than ``max_retries`` times on a shard.
        """
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "engine 'ray' needs the 'ray' package, which is not installed: "
                "pip install 'harken[ray]'"
            ) from None
        pending = {task.task_id: task for task in tasks}
        if not pending:
            return
        if not recipe.portable:  # say why (and what to do) before starting anything
            dataclasses.replace(recipe, instance=None).build()
        started = self._connect(workers)
        try:
            yield from self._stream(ray, recipe, pending, self._pool_size(workers))
        finally:
            if started:
                ray.shutdown()

    def _stream(
        self, ray: Any, recipe: EncoderRecipe, pending: dict[str, ShardTask], size: int
    ) -> Iterator[ShardDone]:
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        saved = context.enable_progress_bars, context.print_on_execution_start
        context.enable_progress_bars = False  # the driver's own bar counts finished shards
        context.print_on_execution_start = False
        quiet = logging.getLogger("ray.data._internal.progress")  # "progress bars disabled"
        quiet_level = quiet.level
        quiet.setLevel(logging.ERROR)
        size = min(size, len(pending))  # no idle actors (Ray Data warns about them)
        try:
            rows = [{"task": _task_json(task)} for task in pending.values()]
            with warnings.catch_warnings():
                # Ray 2.60 deprecates remote args as keywords, yet offers no named parameter
                # to bound the retries of the actor pool's tasks (its default is forever).
                warnings.simplefilter("ignore", DeprecationWarning)
                dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                    _bound(recipe, self.cpus_per_worker),
                    batch_size=1,
                    batch_format="numpy",
                    # One shard queued per actor: a free actor takes the next shard, and a
                    # killed one takes at most its own shard down with it.
                    compute=ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
                    num_cpus=self.cpus_per_worker,
                    max_restarts=-1,
                    max_task_retries=self.max_retries,
                )
            del rows
            try:
                for row in dataset.iter_rows():
                    if len(row["error"]):
                        raise _error_from_json(str(row["error"]))
                    done = _done_from_json(str(row["done"]))
                    self.worker_pids.append(int(row["pid"]))
                    self.nodes.add(str(row["node"]))
                    pending.pop(done.task_id, None)
                    yield done
            except ray.exceptions.RayError as exc:
                left = list(pending.values())
                first = left[0].describe() if left else "none"
                raise RuntimeError(
                    f"Ray workers kept failing ({type(exc).__name__}; each shard is retried "
                    f"{self.max_retries} times after its worker dies): {len(left)} shards not "
                    f"encoded, the first holding {first}. Finished shards are kept in the "
                    "store: run the same command again to resume."
                ) from exc
        finally:
            context.enable_progress_bars, context.print_on_execution_start = saved
            quiet.setLevel(quiet_level)
