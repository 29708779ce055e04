"""Broken TOML configs of `harken run cfg.toml --out DIR`.

Every case is a usage/config error (exit 2) that names the key (and, for what the file alone
shows, the TOML file), raised **before any encoding work**: the command returns within seconds
and the feature store under a fresh ``HARKEN_CACHE_DIR`` stays empty. Checks that need the
dataset (fold counts against 4 classes) run right after the CSV is read.
"""

from __future__ import annotations

import pytest

from .conftest import QUICK_SECONDS, assert_clean_error, cli, feature_files

#: A valid config on the 4-class CSV (2 class-disjoint folds × 1 test / 1 dev class).
BASE = """\
[data]
dataset = "{csv}"
[protocol]
folds = 2
n_test = 1
n_dev = 1
[methods]
names = ["linear", "bridge"]
seeds = [0]
[methods.linear]
features = ["yamnet"]
epochs = 2
"""


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


def _append(extra: str):
    return lambda text: text + extra


# case id: (edit of BASE, words the message must contain, whether it must name the TOML file)
CASES = {
    "syntax-error": (_replace("folds = 2", "folds = = 2"), ["line 4"], True),
    "unknown-key": (_replace("folds = 2", "foldz = 2"), ["foldz"], True),
    "folds-is-a-string": (_replace("folds = 2", 'folds = "five"'), ["folds", "five"], True),
    "n_test-is-a-float": (_replace("n_test = 1", "n_test = 1.5"), ["n_test", "1.5"], True),
    "seeds-is-an-int": (_replace("seeds = [0]", "seeds = 3"), ["seeds"], True),
    "epochs-is-a-string": (_replace("epochs = 2", 'epochs = "ten"'), ["epochs", "linear"], True),
    "names-is-a-string": (
        _replace('names = ["linear", "bridge"]', 'names = "bridge"'),
        ["names", '["bridge"]'],
        True,
    ),
    "n_test-negative": (_replace("n_test = 1", "n_test = -1"), ["n_test", "-1"], True),
    "n_dev-negative": (_replace("n_dev = 1", "n_dev = -3"), ["n_dev", "-3"], True),
    "epochs-negative": (_replace("epochs = 2", "epochs = -5"), ["epochs", "-5", "linear"], True),
    "folds-50-on-4-classes": (_replace("folds = 2", "folds = 50"), ["folds", "50", "4"], False),
    "n_test-plus-n_dev-covers-every-class": (
        _replace("n_test = 1\nn_dev = 1", "n_test = 2\nn_dev = 2"),
        ["n_test", "n_dev", "4"],
        False,
    ),
    "unknown-method": (
        _replace('names = ["linear", "bridge"]', 'names = ["linear", "bridgg"]'),
        ["bridgg", "bridge"],  # the unknown name and the valid ones
        False,
    ),
    "unknown-encoder-tagger": (_append('[encoders]\ntagger = "yamnett"\n'), ["yamnett"], False),
    "unknown-encoder-features": (
        _replace('features = ["yamnet"]', 'features = ["yamnett"]'),
        ["yamnett", "linear"],
        False,
    ),
    "unknown-method-option": (_append("epochz = 3\n"), ["epochz", "linear", "epochs"], False),
}


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """Import the library once so that a case's time is its own work, not Python imports."""
    import harken.api  # noqa: F401


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_fails_before_any_work(case, four_class_csv, fresh_cache, tmp_path, capsys):
    edit, words, names_file = CASES[case]
    config = tmp_path / f"{case}.toml"
    config.write_text(edit(BASE.format(csv=four_class_csv)), encoding="utf-8")
    result = cli(capsys, "run", config, "--out", tmp_path / "run")
    assert_clean_error(result, 2, *words, *([config.name] if names_file else []))
    if case == "names-is-a-string":
        assert "'b'" not in result.err, "the string was iterated character by character"
    assert result.seconds < QUICK_SECONDS, f"took {result.seconds:.1f} s: work was done first"
    assert feature_files(fresh_cache) == [], "features were encoded before the config was checked"
