"""The ``machine`` block every benchmark prints beside its figures."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version


def package_version(package: str) -> str | None:
    """Installed version of ``package`` (None when absent)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_info(packages: Iterable[str], **extra) -> dict:
    """Platform, CPU count, 1-minute load, Python and the versions of ``packages``, plus any
    benchmark-specific ``extra`` fields (threads, FFmpeg version, ...)."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        **extra,
        "versions": {p: package_version(p) for p in ("harken", *packages)},
    }
