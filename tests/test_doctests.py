"""The examples are tested: the README's ```python blocks (pycon-style ``>>>`` examples, run in
order in one namespace, as a session would) and the docstrings of :mod:`harken.classify` and
:mod:`harken.api`, on real Kitchen20 clips (paths relative to the repository root)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import harken.api
import harken.classify

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _run(tests: list[doctest.DocTest], shared: bool = False) -> tuple[int, int, str]:
    """Run ``tests`` (with ``shared``, each in the namespace the previous one left); ``(failed,
    attempted, report of the failures)``."""
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    session: dict = {}
    for test in tests:
        if shared:
            test.globs = session
        runner.run(test, out=report.append, clear_globs=not shared)
    failed, attempted = runner.summarize(verbose=False)
    return failed, attempted, "".join(report)


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_python_examples_run(shared_data, monkeypatch):
    monkeypatch.chdir(ROOT)
    blocks = readme_python_blocks()
    assert len(blocks) >= 2, "the README's Python API section has no ```python blocks"
    parser = doctest.DocTestParser()
    tests = [
        parser.get_doctest(block, {}, f"README.md python block {i}", str(README), 0)
        for i, block in enumerate(blocks)
    ]
    assert all(t.examples for t in tests), "a ```python block without >>> examples"
    # one namespace: later blocks use what earlier ones defined
    failed, attempted, report = _run(tests, shared=True)
    assert attempted >= 15
    assert failed == 0, report


@pytest.mark.parametrize("module", [harken.classify, harken.api], ids=lambda m: m.__name__)
def test_docstring_examples_run(module, shared_data, monkeypatch):
    monkeypatch.chdir(ROOT)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{module.__name__} has no docstring examples"
    failed, attempted, report = _run(tests)
    assert attempted >= 3
    assert failed == 0, report


def test_a_wrong_example_fails():
    """The runner reports a failing example (so a passing run means something)."""
    test = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "wrong", None, 0)
    failed, attempted, report = _run([test])
    assert (failed, attempted) == (1, 1) and "Expected:\n    3" in report
