"""The protocol registry: each protocol owns its options, its run and its tables."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harken.errors import ConfigError
from harken.experiment import ExperimentConfig
from harken.protocols.base import (
    PROTOCOLS,
    available_protocols,
    get_protocol,
    results_markdown,
    results_table,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "harken"


def test_every_built_in_protocol_is_registered():
    assert available_protocols() == [
        "all-classes",
        "discovery",
        "gzsl",
        "kfold",
        "linear-probe",
        "retrieval",
    ]
    for name in available_protocols():
        cls = get_protocol(name)
        assert cls.name == name
        cls.Options()  # every option has a default


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ConfigError, match="unknown protocol 'kfolds'; choose one of: "):
        get_protocol("kfolds")


def test_options_are_parsed_and_checked_per_protocol():
    def key(name):
        return f"[protocol] {name}"

    assert get_protocol("kfold").parse({"folds": 3}, key).folds == 3
    with pytest.raises(ConfigError, match=r"^\[protocol\] folds must be an integer, not 'x'"):
        get_protocol("kfold").parse({"folds": "x"}, key)
    with pytest.raises(ConfigError, match=r"^\[protocol\] train_fraction must be a fraction"):
        get_protocol("discovery").parse({"train_fraction": 1.5}, key)
    with pytest.raises(ConfigError, match=r"protocol 'retrieval' has no option 'folds'"):
        get_protocol("retrieval").parse({"folds": 3}, key)
    with pytest.raises(ConfigError, match=r"train_fraction \+ val_fraction = 1 leaves no test"):
        get_protocol("linear-probe").parse({"train_fraction": 0.5, "val_fraction": 0.5}, key)
    with pytest.raises(ConfigError, match=r"features: unknown encoder 'nope'"):
        get_protocol("linear-probe").parse({"features": ["nope"]}, key)


def test_a_config_reads_the_protocol_section_into_the_protocol(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[protocol]\nprotocol = "discovery"\ntrain_fraction = 0.25\n')
    config = ExperimentConfig.from_toml(path)
    assert config.protocol_options == {"train_fraction": 0.25}
    runner = config.protocol_runner()
    assert type(runner) is get_protocol("discovery")
    assert runner.options.train_fraction == 0.25
    # relative path options are read from the file's folder
    path.write_text('[protocol]\nprotocol = "discovery"\ntrain_dataset = "train.csv"\n')
    options = ExperimentConfig.from_toml(path).protocol_runner().options
    assert options.train_dataset == str(tmp_path / "train.csv")


def test_results_are_printed_by_the_protocol_that_wrote_them():
    ms = {"mean": 0.5, "std": 0.0}
    results = {
        "dataset": "d",
        "target": "sounding",
        "protocol": {
            "name": "discovery",
            "clips": 4,
            "positives": 2,
            "positive_rate": 0.5,
            "train_clips": 4,
            "text": "narration",
            "seeds": [0],
        },
        "chance": {"AV": {"roc_auc": 0.5, "pr_auc": 0.5}, "AL": {"roc_auc": 0.5, "pr_auc": 0.5}},
        "methods": {"mc3": {"AV": {"roc_auc": ms, "pr_auc": ms}, "epoch_seconds": 0.1}},
    }
    md = results_markdown(results)
    assert "| mc3 | 0.500 ± 0.000 | 0.500 ± 0.000 | – | – | 0.10 |" in md
    assert results_table(results).splitlines()[0].split()[:3] == ["method", "AV", "ROC"]
    with pytest.raises(ConfigError, match="no protocol"):
        results_markdown({"methods": {}})


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_code_branches_on_a_protocol_name_and_runners_do_not_import_each_other():
    runners = {"kfold", "gzsl", "discovery", "retrieval", "linear_probe"}
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for name in ("kfold", "gzsl", "all-classes", "discovery", "retrieval"):
            assert f'protocol == "{name}"' not in text, path
            assert f"protocol == '{name}'" not in text, path
        if path.parent.name == "protocols" and path.stem in runners:
            others = {f"harken.protocols.{r}" for r in runners - {path.stem}}
            assert not _imports(path) & others, path
    assert not (SRC / "experiment_gzsl.py").exists()


def test_a_new_protocol_is_one_class_and_one_registration():
    from dataclasses import dataclass

    from harken.protocols.base import Protocol
    from harken.registry import Registry

    registry: Registry = Registry("protocol")

    @dataclass
    class EchoOptions:
        word: str = "hello"

    @registry.register("echo")
    class Echo(Protocol):
        name = "echo"
        Options = EchoOptions

        def run(self, exp):
            return {"protocol": {"name": "echo"}, "word": self.options.word}

        @staticmethod
        def markdown(results):
            return results["word"]

        @staticmethod
        def table(results):
            return results["word"]

    cls = registry.get("echo")
    runner = cls(cls.parse({"word": "hi"}, lambda k: k))
    assert runner.run(None) == {"protocol": {"name": "echo"}, "word": "hi"}
    assert "echo" not in PROTOCOLS  # a private registry: nothing leaked
