"""The length check of predict/index/search: no file passes because its header is unreadable."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from harken import api
from harken.errors import AudioError, ConfigError, DataError


@pytest.fixture()
def two_seconds(tmp_path):
    path = tmp_path / "two.wav"
    sf.write(str(path), 0.1 * np.ones(2 * 8000, np.float32), 8000)
    return path


def test_limit_is_configurable_and_named(two_seconds, monkeypatch):
    api._check_size(two_seconds)  # under the default limit
    monkeypatch.setenv("HARKEN_MAX_AUDIO_SECONDS", "1.5")
    with pytest.raises(DataError, match=r"two\.wav: 2 s long, over the 2 s limit") as err:
        api._check_size(two_seconds)
    assert "HARKEN_MAX_AUDIO_SECONDS" in str(err.value) and err.value.exit_code == 1
    monkeypatch.setenv("HARKEN_MAX_AUDIO_SECONDS", "2.5")
    api._check_size(two_seconds)
    for bad in ("ten", "0", "-3", "nan"):
        monkeypatch.setenv("HARKEN_MAX_AUDIO_SECONDS", bad)
        with pytest.raises(ConfigError, match=rf"HARKEN_MAX_AUDIO_SECONDS='{bad}'"):
            api._check_size(two_seconds)


def test_unreadable_header_is_an_error_not_a_pass(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(AudioError, match=r"bad\.wav: cannot decode audio \(unreadable header"):
        api._check_size(bad)
    api._check_size(tmp_path / "missing.wav")  # decoding reports a missing file by name
