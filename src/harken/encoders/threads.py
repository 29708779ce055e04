"""Thread counts for encoding, set locally around the work and chosen by measurement.

Three thread pools do an encoder's work: numpy's BLAS (OpenBLAS: the mel filterbank product of
the audio front ends), onnxruntime's intra-op pool (YAMNet) and torch's intra-op pool (aisfx,
EfficientNet, MiniLM). Their defaults take every core, which on a small, busy machine is
slower, not faster: threads spin-wait for each other (measured on a 2-core machine, YAMNet at
one thread everywhere encodes Kitchen20 clips ~3.9× faster than at the defaults; see
:data:`MEASURED` and ``benchmarks/encoders.py``).

:func:`limit` sets all three for the duration of a block and restores them afterwards; nothing
is set at import. :func:`encoding` applies an encoder's measured default (or the
``HARKEN_THREADS`` override); :func:`around_encoding` is the same as a decorator for functions
whose first argument is the encoder (``harken.store.features``' encoding functions).

onnxruntime fixes a session's thread count when the session is built, so an onnxruntime encoder
asks :func:`onnx_threads` for the count of the block it is loaded (or run) in and keeps one
session per count.

Thread counts change no result of yamnet, aisfx or minilm: their outputs are bit-identical at
1 and 2 threads (``tests/encoders/test_threads.py``), which is why the count is not part of an
encoder's config (nor of the feature store's key). EfficientNet-Lite0's convolutions are not:
its features differ by float rounding (≈4e-6) between counts, so every worker of one job must
run at the same count — :func:`default_threads` gives them the same one.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from harken.errors import ConfigError

ENV = "HARKEN_THREADS"
"""Environment variable overriding every encoder's default thread count (a positive integer)."""

MEASURED: dict[str, int] = {
    "yamnet": 1,
    "aisfx": 2,
    "efficientnet-lite0": 1,
    "minilm": 1,
}
"""The fastest intra-op thread count per offline encoder for one worker, measured on the 2-core
development machine (``benchmarks/encoders.py`` and ``benchmarks/scale.py``, interleaved
rounds; tables in ``benchmarks/README.md``). One thread beat two by 4.1× (yamnet), 4.1×
(minilm) and 3.3× (efficientnet-lite0) under load, and by 1.63× for yamnet on a quiet machine
(all 1,070 Kitchen20 clips): their per-operation work is small, so a second thread mostly
spin-waits. aiSFX's convolutions are large enough to share: on the quiet machine two threads
encoded the 1,070 clips 1.63× faster than one (3.98 vs 2.45 clips/s), while under load
(average 9–11) one thread was 1.3× faster — a user's own machine is closer to the first case.
It is an upper bound: with ``workers`` processes sharing the cores, each gets at most
``cores // workers`` (the process engine runs one thread per worker). Only 1 and 2 were
measurable here; on a many-core machine more may pay for the torch encoders
(``HARKEN_THREADS`` sets it)."""

FALLBACK = 1
"""Threads for an encoder that was not measured: spin-waiting pools cost more than they gain on
shared machines, and one thread per worker is what scales out (one process per core)."""

_active: ContextVar[int | None] = ContextVar("harken_threads", default=None)

F = TypeVar("F", bound=Callable)


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _positive(value: object, what: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1 or isinstance(value, bool):
        raise ConfigError(
            f"{what}={value!r}: expected a positive whole number of threads (e.g. 1); "
            f"unset {ENV} to use harken's measured per-encoder defaults"
        )
    return n


def env_threads() -> int | None:
    """The ``HARKEN_THREADS`` override, or None when unset or empty.

    Raises:
        ConfigError: the variable is set to anything but a positive integer.
    """
    raw = os.environ.get(ENV, "").strip()
    return None if not raw else _positive(raw, ENV)


def _encoder_name(encoder: object) -> str:
    return encoder if isinstance(encoder, str) else str(getattr(encoder, "name", ""))


def default_threads(encoder: object, workers: int = 1) -> int:
    """Intra-op threads for ``encoder`` (an encoder or its name) in each of ``workers`` workers.

    ``HARKEN_THREADS`` wins when set; otherwise the encoder's :data:`MEASURED` best count
    (:data:`FALLBACK` for others), capped at this process's cores divided by ``workers``.

    Raises:
        ConfigError: ``workers`` < 1, or a bad ``HARKEN_THREADS``.
    """
    workers = _positive(workers, "workers")
    override = env_threads()
    if override is not None:
        return override
    best = MEASURED.get(_encoder_name(encoder), FALLBACK)
    return max(1, min(best, cpu_count() // workers))


def current() -> int | None:
    """The thread count of the innermost :func:`limit` block, or None outside one."""
    return _active.get()


def onnx_threads(encoder: object) -> int:
    """intra_op_num_threads for an onnxruntime session built now: the active block's count,
    else the encoder's default."""
    return current() or default_threads(encoder)


def _torch():
    return sys.modules.get("torch")


@contextmanager
def limit(n: int, *, torch: bool = False) -> Iterator[int]:
    """Run the block with ``n`` threads in BLAS/OpenMP (threadpoolctl), torch and onnxruntime
    sessions built inside it; the previous counts are restored on exit.

    Args:
        n: Threads (≥ 1).
        torch: Import torch if it is not imported yet, so that a torch model loaded inside the
            block runs at ``n`` too (torch's count is otherwise set only when torch is already
            imported: importing torch for an onnxruntime encoder would cost a second).

    Yields:
        ``n``.

    Raises:
        ConfigError: ``n`` is not a positive integer.
    """
    n = _positive(n, "threads")
    from threadpoolctl import threadpool_limits

    if torch:
        import torch as _  # noqa: F401
    th = _torch()
    before = th.get_num_threads() if th is not None else None
    token = _active.set(n)
    try:
        with threadpool_limits(limits=n):
            if th is not None and before != n:
                th.set_num_threads(n)
            yield n
    finally:
        _active.reset(token)
        if th is not None and th.get_num_threads() != before:
            th.set_num_threads(before)


def _uses_torch(encoder: object) -> bool:
    from harken.encoders.device import OnDevice  # the torch encoders' mixin

    return isinstance(encoder, OnDevice)


@contextmanager
def encoding(encoder: object, workers: int = 1) -> Iterator[int]:
    """:func:`limit` at ``encoder``'s :func:`default_threads`, unless a :func:`limit` block is
    already active (an executor or a user chose the count: it is kept).

    Yields:
        The thread count in force.
    """
    if current() is not None:
        yield current()
        return
    with limit(default_threads(encoder, workers), torch=_uses_torch(encoder)) as n:
        yield n


def around_encoding(fn: F) -> F:
    """Decorator: run ``fn(encoder, ...)`` inside :func:`encoding` for its encoder."""

    @functools.wraps(fn)
    def wrapper(encoder, *args, **kwargs):
        with encoding(encoder):
            return fn(encoder, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
