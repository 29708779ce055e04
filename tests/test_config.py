"""ExperimentConfig: every field type-checked, ranges, method options, class-count checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from harken.errors import ConfigError
from harken.experiment import ExperimentConfig


def _write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_toml(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message  # every error names the file
    return message[len(str(path)) + 2 :]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[protocol]\nfolds = "five"', "[protocol] folds must be an integer, not 'five' (string)"),
        ("[protocol]\nfolds = true", "[protocol] folds must be an integer, not True (boolean)"),
        ("[protocol]\nn_test = 1.5", "[protocol] n_test must be an integer or none, not 1.5"),
        ("[methods]\nseeds = 3", "[methods] seeds must be a list of integers such as [3]"),
        ('[methods]\nseeds = [0, "1"]', "[methods] seeds must be a list of integers"),
        (
            '[methods]\nnames = "bridge"',
            "[methods] names must be a list of strings such as [\"bridge\"], not 'bridge'",
        ),
        ("[protocol]\ntest_fraction = 1", "[protocol] test_fraction must be a fraction in (0, 1)"),
        ("[knowledge]\ngenerator = 3", "[knowledge] generator must be a string or a list of"),
        ("[knowledge]\nnormalize_text = 1", "[knowledge] normalize_text must be true or false"),
        ('[data]\ndataset = ["a.csv"]', "[data] dataset must be a string, not ['a.csv'] (list)"),
        ("[knowledge]\ngenerator_options = 3", "[knowledge] generator_options must be a table"),
    ],
)
def test_wrong_types_name_the_key_and_what_was_expected(tmp_path, toml, expected):
    assert _error(tmp_path, toml).startswith(expected)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[protocol]\nfolds = 0", "[protocol] folds must be an integer ≥ 1, not 0"),
        ("[protocol]\nn_test = -1", "[protocol] n_test must be an integer ≥ 1, not -1"),
        ("[protocol]\nn_dev = -3", "[protocol] n_dev must be an integer ≥ 0, not -3"),
        ("[protocol]\ndev_fraction = 0.0", "[protocol] dev_fraction must be a fraction in (0, 1)"),
        (
            "[protocol]\ntest_fraction = 0.5\ndev_fraction = 0.5",
            "[protocol] test_fraction + dev_fraction = 1 leaves no training class",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\ngzsl_splits = 0',
            "[protocol] gzsl_splits must be an integer ≥ 1",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\nheld_out = 0.5',
            "[protocol] held_out must be a fraction in (0, 0.5)",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\nn_val_unseen = 0',
            "[protocol] n_val_unseen must be an integer ≥ 1",
        ),
        ("[methods]\nseeds = []", "[methods] seeds must list at least one seed"),
        ("[methods]\nseeds = [1, 1]", "[methods] seeds lists a seed twice"),
        ("[methods]\nseeds = [-1]", "[methods] seeds must be a list of integers ≥ 0"),
        ("[methods]\nnames = []", "[methods] names must name at least one method"),
        ('[methods]\nnames = ["linear", "linear"]', "[methods] names lists ['linear'] more than"),
        (
            '[protocol]\nprotocol = "kfolds"',
            "[protocol] protocol must be one of 'all-classes', 'discovery', 'gzsl', 'kfold', "
            "'linear-probe', 'retrieval', not 'kfolds'",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\ncalibration_grid = "0:5"',
            "[protocol] calibration_grid '0:5': write 'lo:",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\ncalibration_grid = "5:0:10"',
            "[protocol] calibration_grid '5:0:10'",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\ncalibration_grid = "0:5:x"',
            "[protocol] calibration_grid '0:5:x'",
        ),
        (
            '[protocol]\nprotocol = "gzsl"\ncalibration_grid = []',
            "[protocol] calibration_grid must list at least",
        ),
    ],
)
def test_out_of_range_values_are_refused(tmp_path, toml, expected):
    assert _error(tmp_path, toml).startswith(expected)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[methods]\nnames = ["linear"]\n[methods.linear]\nepochs = "ten"',
            "[methods.linear]: method 'linear' option 'epochs' must be an integer, not 'ten'",
        ),
        (
            '[methods]\nnames = ["linear"]\n[methods.linear]\nepochs = -5',
            "[methods.linear]: method 'linear': option 'epochs' must be ≥ 1, not -5",
        ),
        (
            '[methods]\nnames = ["linear"]\n[methods.linear]\nepoch = 5',
            "[methods.linear]: unknown option 'epoch' for method 'linear'; valid options: "
            "batch_size, epochs, features, loss, lr, margin, weight_decay",
        ),
        ('[methods]\nnames = ["lineer"]', "[methods] names: unknown method 'lineer'; choose one"),
        ("[methods.lineer]\nepochs = 3", "[methods.lineer]: unknown method 'lineer'; choose one"),
        (
            '[knowledge]\ntext_encoder = "minlm"',
            "[knowledge] text_encoder: unknown encoder 'minlm'",
        ),
        ('[knowledge]\ngenerator = ["templat"]', "[knowledge] generator: unknown description "),
        ("[knowledge.views.clip]\ntext_encoder = 'minilm'", "[knowledge] views.clip must be a"),
    ],
)
def test_methods_options_and_names_are_checked_before_any_work(tmp_path, toml, expected):
    assert _error(tmp_path, toml).startswith(expected)


def test_unknown_method_lists_the_valid_names(tmp_path):
    message = _error(tmp_path, '[methods]\nnames = ["nope"]')
    assert "choose one of: " in message and "bridge" in message and "linear" in message


def test_file_problems_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        ExperimentConfig.from_toml(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"is a folder; give the experiment's \.toml file"):
        ExperimentConfig.from_toml(tmp_path)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[data]\ntarget = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin\.toml, line 2: not UTF-8 text \(byte 20: "):
        ExperimentConfig.from_toml(latin)
    assert _error(tmp_path, "[protocol\nfolds = 3").startswith("invalid TOML")


def test_keys_set_twice_or_in_unknown_sections_are_errors(tmp_path):
    assert _error(tmp_path, "[protocol]\nfolds = 3\n[data]\nfolds = 4").startswith(
        "[data] folds repeats [protocol] folds; set each key once"
    )
    message = _error(tmp_path, "[protcol]\nfolds = 3")
    assert message.startswith("unknown config key(s) protcol; known keys: ")


def test_a_valid_file_reads_and_a_bom_is_ignored(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_bytes(
        "\ufeff[data]\ndataset = 'kitchen20'\n[protocol]\nfolds = 5\nn_test = 4\nn_dev = 3\n"
        "[methods]\nnames = ['linear', 'bridge']\nseeds = [0, 1]\n"
        "[methods.linear]\nfeatures = ['aisfx']\nepochs = 3\nlr = 1\n".encode()
    )
    config = ExperimentConfig.from_toml(path)
    assert config.protocol_options == {"folds": 5, "n_test": 4, "n_dev": 3}
    assert config.protocol_runner().options.folds == 5
    assert config.seeds == [0, 1]
    assert config.method_options == {"linear": {"features": ["aisfx"], "epochs": 3, "lr": 1}}


def test_each_protocol_accepts_only_its_own_options(tmp_path):
    message = _error(tmp_path, "[protocol]\ngzsl_splits = 2")
    assert message.startswith("[protocol] gzsl_splits: protocol 'kfold' has no option")
    assert "its options: folds, n_test" in message
    assert _error(tmp_path, '[protocol]\nprotocol = "gzsl"\nfolds = 2').startswith(
        "[protocol] folds: protocol 'gzsl' has no option 'folds'"
    )
    # a protocol's key at the top level of the file belongs to its section
    path = _write(tmp_path, 'protocol = "gzsl"\ngzsl_splits = 2')
    assert ExperimentConfig.from_toml(path).protocol_runner().options.gzsl_splits == 2


def test_configs_made_in_code_are_validated_with_section_names():
    with pytest.raises(ConfigError, match=r"^\[protocol\] folds must be an integer ≥ 1, not 0"):
        ExperimentConfig(protocol_options={"folds": 0}).validate()
    with pytest.raises(ConfigError, match=r"^\[methods.linear\]: unknown option 'x'"):
        ExperimentConfig(method_options={"linear": {"x": 1}}).validate()


# --- checks that need the dataset's class count -------------------------------------------


def _config(tmp_path: Path, protocol: str) -> ExperimentConfig:
    return ExperimentConfig.from_toml(_write(tmp_path, protocol))


def test_fold_counts_are_checked_against_the_class_count(tmp_path):
    config = _config(tmp_path, "[protocol]\nfolds = 5\nn_test = 4\nn_dev = 3")
    config.check_against(20)  # 5 × 4 = 20 test classes: fits exactly
    with pytest.raises(ConfigError) as err:
        config.check_against(12)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'run.toml'}: [protocol] folds = 5")
    assert "[protocol] n_test" in message and "needs 20 classes" in message
    assert "the dataset has 12 classes" in message


def test_test_and_dev_classes_must_leave_training_classes(tmp_path):
    config = _config(tmp_path, "[protocol]\nfolds = 1\nn_test = 4\nn_dev = 3")
    config.check_against(8)
    with pytest.raises(ConfigError, match=r"4 test \+ 3 dev classes per fold .* leave no training"):
        config.check_against(7)


def test_fractions_are_turned_into_counts_as_the_splitter_does(tmp_path):
    config = _config(tmp_path, "[protocol]\nfolds = 10\ntest_fraction = 0.1")
    config.check_against(100)  # 10 folds × 10 test classes
    with pytest.raises(ConfigError, match=r"\[protocol\] test_fraction\) needs 10 classes"):
        config.check_against(9)  # 10 folds × max(1, round(0.9)) = 10 > 9


def test_gzsl_unseen_counts_are_checked(tmp_path):
    config = _config(tmp_path, '[protocol]\nprotocol = "gzsl"\nn_test_unseen = 5\nn_val_unseen = 5')
    config.check_against(11)
    with pytest.raises(ConfigError, match=r"n_test_unseen = 5 and .* leave no seen class"):
        config.check_against(10)


def test_fewer_than_two_classes_is_an_error(tmp_path):
    config = _config(tmp_path, '[protocol]\nprotocol = "all-classes"')
    config.check_against(2)
    with pytest.raises(ConfigError, match=r"\[data\] target: the dataset has 1 classes"):
        config.check_against(1)


def test_path_fields_take_path_objects_and_empty_values_are_named():
    ExperimentConfig(
        dataset=Path("clips.csv"), data_dir=Path("/data"), store_dir=Path("s")
    ).validate()
    with pytest.raises(ConfigError, match=r"^\[data\] target is empty"):
        ExperimentConfig(target=" ").validate()


def test_paths_in_the_file_are_relative_to_it_and_on_the_command_line_to_the_cwd(
    tmp_path, monkeypatch
):
    configs = tmp_path / "configs"
    configs.mkdir()
    cfg = configs / "run.toml"
    cfg.write_text('[data]\ndata_dir = "data"\n[store]\nstore_dir = "features"\n')
    monkeypatch.chdir(tmp_path)
    from_file = ExperimentConfig.from_toml(cfg)
    assert from_file.data_dir == str(configs / "data")
    assert from_file.store_dir == str(configs / "features")
    given = ExperimentConfig.from_toml(
        cfg, data_dir="../shared/data", store_dir="cache", dataset="kitchen20"
    )
    assert given.data_dir == str((tmp_path / "../shared/data").resolve())
    assert given.store_dir == str(tmp_path / "cache")
    assert given.dataset == "kitchen20"  # a registered name, not a path
