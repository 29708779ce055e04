"""No code runs from data: every loader of a user-supplied file refuses a pickle that would
execute something while it loads, with a harken error, and the payload never runs.

Each payload's ``__reduce__`` asks the unpickler to call ``open(marker, "w")``: if a loader
unpickled it with the standard machinery, the marker file would exist afterwards."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from harken.data.readers.avgzsl import load_published_features, write_synthetic_features
from harken.errors import DataError, ModelUnavailableError

DIMS = {"audio": 4, "video": 4, "w2v": 3, "clip": 3, "clap": 3}


class Payload:
    """Unpickling this object creates ``marker`` (an empty file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "payload-ran"
    assert not path.exists()
    return path


def test_payload_runs_under_plain_pickle(marker):
    """The payload is live: the standard unpickler does create the marker."""
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.exists()


# -- MS-CLAP weights (msclap:<file>) --------------------------------------------------------


def test_msclap_checkpoint_with_code_is_refused(tmp_path, marker):
    import torch

    from harken.encoders.msclap import load_msclap

    path = tmp_path / "CLAP_weights_2023.pth"
    torch.save({"model": {"logit_scale": torch.zeros(())}, "extra": Payload(marker)}, path)
    with pytest.raises(ModelUnavailableError) as info:
        load_msclap(str(path))
    message = str(info.value)
    assert str(path) in message and "weights_only=True" in message
    # Never advice to unpickle in full; the needed global is named, with a warning about
    # functions (this payload needs builtins.open).
    assert "weights_only=False" not in message
    assert "builtins.open" in message and "never a function" in message
    assert not marker.exists()


def test_msclap_refusal_snippet_converts_a_trusted_checkpoint(tmp_path):
    """Running the snippet from the message (on a harmless file) yields a loadable file."""
    import argparse
    import re
    import textwrap

    import torch

    from harken.encoders import msclap

    path = tmp_path / "trusted.pth"
    state = {"logit_scale": torch.tensor(2.0)}
    # Training arguments saved with the weights, as many checkpoints do: harmless, but not
    # something weights_only rebuilds.
    torch.save({"model": state, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ModelUnavailableError) as info:
        msclap._read_state_dict(path)
    assert "weights_only=False" not in str(info.value)
    snippet = textwrap.dedent(
        "\n".join(line for line in str(info.value).splitlines() if line.startswith("    "))
    )
    assert "safe_globals([argparse.Namespace])" in snippet and snippet.count("\n") == 3
    exec(compile(snippet, "<snippet>", "exec"), {})  # trusted file: the user's own step
    converted = Path(re.findall(r"'([^']+\.weights\.pth)'", snippet)[0])
    loaded = msclap._read_state_dict(converted)
    assert set(loaded) == {"logit_scale"} and float(loaded["logit_scale"]) == 2.0


# -- AV-GZSL feature releases (.npy dicts, ClipClap .pkl) --------------------------------------


def _release(tmp_path) -> Path:
    return write_synthetic_features(tmp_path, "UCF", "cls_split", "clipclap", dims=DIMS)


def test_avgzsl_npy_dict_with_code_is_refused(tmp_path, marker):
    ds_root = _release(tmp_path)
    text = ds_root / "features" / "cls_features_non_averaged" / "text"
    path = sorted(text.glob("*.npy"))[0]
    table = {"Archery": np.zeros(3, np.float32), "Bowling": Payload(marker)}
    np.save(path, np.array(table, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"wants (io|builtins)\.open.*refusing") as info:
        load_published_features(tmp_path, "UCF")
    assert path.name in str(info.value)
    assert not marker.exists()


def test_avgzsl_pkl_with_code_is_refused(tmp_path, marker):
    ds_root = _release(tmp_path)
    audio = ds_root / "features" / "cls_features_non_averaged" / "audio" / "stage_1_train"
    path = sorted(audio.glob("*.pkl"))[0]
    path.write_bytes(pickle.dumps({"features": [Payload(marker)], "video_names": [b"x"]}))
    with pytest.raises(DataError, match=r"wants (io|builtins)\.open.*refusing") as info:
        load_published_features(tmp_path, "UCF")
    assert path.name in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_avgzsl_pkl_of_plain_data_loads_at_any_protocol(tmp_path, protocol):
    """What the allow-list keeps: numpy arrays and scalars, builtin containers, str, numbers."""
    from harken.data.readers.avgzsl import _unpickle

    value = {
        "features": [np.arange(3, dtype=np.float32), np.float64(1.5)],
        "names": ("a", b"b", 3, 2.5, 1j, None, True),
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "bytes": bytearray(b"ab"),
    }
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    with open(path, "rb") as f:
        loaded = _unpickle(f, path)
    assert loaded["names"] == value["names"] and loaded["set"] == {1, 2}
    assert loaded["frozen"] == frozenset({"x"}) and loaded["bytes"] == bytearray(b"ab")
    assert np.array_equal(loaded["features"][0], value["features"][0])
    assert loaded["features"][1] == 1.5 and isinstance(loaded["features"][1], np.float64)


# -- the feature store's shards (.npz) --------------------------------------------------------


class _ShardReader:
    """Names a store folder and embeds every clip as ones (what the store re-encodes after it
    sets a refused shard aside)."""

    name = "security-probe"
    modality = "audio"
    dim = 3
    sample_rate = 16000

    def config(self) -> dict:
        return {"name": self.name}

    def embed(self, batch):
        return np.ones((len(batch), self.dim), np.float32)


def test_store_shard_with_object_array_is_refused(tmp_path, marker):
    """A shard holding a pickled object array — even one whose name carries its true sha256 —
    is never unpickled: the store sets it aside with a warning naming it and re-encodes."""
    import hashlib
    import io

    import soundfile as sf

    from harken.data.manifest import Clip
    from harken.store.features import FeatureStore, clip_key

    store = FeatureStore(tmp_path / "features", progress=False)
    encoder = _ShardReader()
    folder = store.folder("ds", encoder)
    folder.mkdir(parents=True)
    audio = tmp_path / "clip.wav"
    sf.write(audio, np.full(1600, 0.1, np.float32), 16000)
    clip = Clip(clip_id="c", audio_path=audio, labels={"label": "x"})
    keys = np.array([clip_key(clip, store.hashes), Payload(marker)], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, keys=keys, embeddings=np.zeros((2, 3), np.float32), allow_pickle=True)
    data = buffer.getvalue()
    shard = folder / f"shard-{hashlib.sha256(data).hexdigest()}.npz"
    shard.write_bytes(data)
    with pytest.warns(RuntimeWarning, match=rf"{shard.name} is unreadable .*moved aside"):
        emb = store.get("ds", encoder, [clip])
    assert not marker.exists()
    np.testing.assert_array_equal(emb, np.ones((1, 3), np.float32))
    assert not shard.exists() and shard.with_name(shard.name + ".corrupt").exists()


def test_aisfx_load_leaves_the_process_allow_list_as_it_was():
    """The packaged aiSFX checkpoint needs numpy scalars allowed for a weights_only load; that
    allowance is temporary and does not remove what the process allowed itself."""
    pytest.importorskip("aisfx")
    import torch

    from harken.encoders.aisfx import AisfxEncoder, _numpy_scalar_globals

    original = list(torch.serialization.get_safe_globals())
    own = _numpy_scalar_globals()[1]  # np.dtype, as if the application had allowed it
    torch.serialization.add_safe_globals([own])
    try:
        before = set(torch.serialization.get_safe_globals())
        AisfxEncoder()._load()
        assert set(torch.serialization.get_safe_globals()) == before
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(original)
