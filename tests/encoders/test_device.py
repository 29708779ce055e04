"""``--device``: resolution and its errors (GPU availability monkeypatched: this machine has no
GPU), the ``use_device`` block, the feature-store key, CPU bit-identity through the flag, and
that every torch encoder sends its model *and* inputs to its device (checked with torch's
``meta`` device, whose tensors hold no data: an output that reaches ``.cpu()`` from there
raises "Cannot copy out of meta tensor")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harken.cli import main
from harken.data.audio import load_audio
from harken.encoders.base import config_hash, get_encoder
from harken.encoders.device import current_device, resolve_device, use_device
from harken.errors import ConfigError, HarkenWarning
from tiny_models import save_tiny_clap, save_tiny_clip

from .conftest import kitchen_clip
from .test_msclap import _save_folder as save_tiny_msclap

TEXTS = ["a dog barking", "water boiling in a pan", "the blender whirring"]
META_COPY = "Cannot copy out of meta tensor"


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees ``cuda`` NVIDIA GPUs and (or not) an Apple MPS device."""

    def pretend(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return pretend


@pytest.fixture(scope="module")
def wave16k() -> np.ndarray:
    return load_audio(kitchen_clip(0), 16000)[0]


@pytest.fixture(scope="module")
def wave44k() -> np.ndarray:
    return load_audio(kitchen_clip(0), 44100)[0]


# --- resolution -------------------------------------------------------------------------------


def test_cpu_and_unset_resolve_without_importing_torch():
    code = (
        "import sys; from harken.encoders.device import resolve_device; "
        "print(resolve_device(None), resolve_device('cpu'), resolve_device(' CPU '), "
        "'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "cpu", "cpu", "False"]


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(2, True, "cuda"), (1, False, "cuda"), (0, True, "mps"), (0, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(gpus, cuda, mps, expected):
    gpus(cuda=cuda, mps=mps)
    assert resolve_device("auto") == expected


def test_available_devices_are_kept_as_asked(gpus):
    gpus(cuda=2, mps=True)
    assert [resolve_device(d) for d in ("cuda", "cuda:1", "mps", "cpu")] == [
        "cuda",
        "cuda:1",
        "mps",
        "cpu",
    ]


def test_cuda_without_a_gpu_says_what_is_available(gpus):
    gpus(cuda=0, mps=True)
    with pytest.raises(ConfigError) as err:
        resolve_device("cuda")
    message = str(err.value)
    assert "--device cuda" in message and "available here: cpu, mps" in message
    assert "--device auto" in message
    if torch.version.cuda is None:  # this machine's CPU build says so
        assert "CPU-only build" in message


def test_cuda_index_beyond_the_gpus_is_refused(gpus):
    gpus(cuda=2)
    with pytest.raises(ConfigError, match=r"cuda:2: torch sees 2 GPUs \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def test_mps_without_apple_silicon_is_refused(gpus):
    gpus(cuda=1, mps=False)
    with pytest.raises(ConfigError, match="no Apple-silicon") as err:
        resolve_device("mps")
    assert "available here: cpu, cuda:0" in str(err.value)


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "", "tpu", "cpu:0"])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ConfigError, match="cpu, cuda, cuda:N, mps, auto"):
        resolve_device(name)


# --- the use_device block ---------------------------------------------------------------------


def test_encoders_without_a_device_follow_the_innermost_block(gpus):
    gpus(cuda=2)
    enc, pinned = get_encoder("aisfx"), get_encoder("aisfx", device="cpu")
    assert enc.device == "cpu" and current_device() is None
    with use_device("auto") as outer:
        assert outer == "cuda" and enc.device == "cuda" and pinned.device == "cpu"
        assert get_encoder("minilm").device == "cuda"
        with use_device("cuda:1"):
            assert enc.device == "cuda:1"
        with use_device(None):  # no --device given: the block is unchanged
            assert enc.device == "cuda"
        assert enc.device == "cuda"
    assert enc.device == "cpu" and current_device() is None


def test_a_block_ends_with_an_error_inside_it(gpus):
    gpus(cuda=1)
    with pytest.raises(RuntimeError, match="boom"), use_device("cuda"):
        raise RuntimeError("boom")
    assert current_device() is None


def test_an_unavailable_device_fails_when_the_block_is_entered(gpus):
    gpus(cuda=0)
    entered = []
    with pytest.raises(ConfigError, match="--device cuda"), use_device("cuda"):
        entered.append(True)
    assert entered == [] and current_device() is None


def test_explicit_device_is_checked_when_the_encoder_is_made(gpus):
    gpus(cuda=0)
    with pytest.raises(ConfigError, match="available here: cpu"):
        get_encoder("ast", device="cuda")


# --- feature-store key ------------------------------------------------------------------------


def test_cpu_leaves_the_store_key_unchanged_and_a_gpu_is_part_of_it(gpus):
    gpus(cuda=2)
    default = get_encoder("aisfx").config()
    assert "device" not in default
    assert get_encoder("aisfx", device="cpu").config() == default
    with use_device("cpu"):
        assert get_encoder("aisfx").config() == default
    on_gpu = get_encoder("aisfx", device="cuda:1").config()
    assert on_gpu == {**default, "device": "cuda"}  # the type, not the index
    assert config_hash(on_gpu) != config_hash(default)
    with use_device("cuda"):
        assert get_encoder("aisfx").config() == on_gpu
        assert get_encoder("minilm").config()["device"] == "cuda"


# --- CPU results are bit-identical ------------------------------------------------------------


def test_cpu_embeddings_are_bit_identical_to_the_default(wave44k):
    default = get_encoder("aisfx").embed([wave44k])
    assert np.array_equal(get_encoder("aisfx", device="cpu").embed([wave44k]), default)
    with use_device("cpu"):
        assert np.array_equal(get_encoder("aisfx").embed([wave44k]), default)
    texts = get_encoder("minilm").embed(TEXTS)
    with use_device("auto"):  # no GPU here: auto is the CPU
        assert np.array_equal(get_encoder("minilm").embed(TEXTS), texts)


def test_cli_device_cpu_gives_the_default_bytes(tmp_path, capsys):
    clip = str(kitchen_clip(3))
    runs = {}
    for tag, extra in (("default", []), ("cpu", ["--device", "cpu"])):
        out = tmp_path / f"{tag}.npy"
        store = tmp_path / f"store-{tag}"  # separate stores: both really compute
        argv = ["embed", clip, "--encoder", "aisfx", "--out", str(out), "--store-dir", str(store)]
        assert main([*argv, *extra]) == 0
        runs[tag] = np.load(out)
    assert runs["default"].shape == (1, 512)
    assert np.array_equal(runs["cpu"], runs["default"])


@pytest.mark.parametrize(
    ("device", "message"),
    [("cuda", "available here: cpu"), ("gpu", "is not one of cpu, cuda, cuda:N, mps, auto")],
)
def test_cli_refuses_a_device_before_any_model_loads(tmp_path, capsys, device, message):
    missing = str(tmp_path / "missing.wav")
    assert main(["predict", missing, "--labels", "a,b", "--device", device]) == 2
    err = capsys.readouterr().err
    assert message in err and "missing.wav" not in err  # refused before the input is read


# --- yamnet is not torch ----------------------------------------------------------------------


def test_yamnet_refuses_a_gpu_and_runs_on_the_cpu_under_a_block(gpus, wave16k):
    gpus(cuda=1)
    with pytest.raises(ConfigError, match="onnxruntime's CPU provider"):
        get_encoder("yamnet", device="cuda")
    default = get_encoder("yamnet").embed([wave16k])
    with use_device("cuda"), pytest.warns(HarkenWarning, match="yamnet runs on the CPU"):
        on_block = get_encoder("yamnet")
        emb = on_block.embed([wave16k])
    assert on_block.device == "cpu" and "device" not in on_block.config()
    assert np.array_equal(emb, default)


# --- every torch encoder moves model and inputs -----------------------------------------------


def _on_meta(encoder):
    """Point an encoder at the ``meta`` device (bypassing the availability check)."""
    encoder._device = "meta"
    return encoder


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tiny_ast_dir, tiny_bert_dir, tiny_sbert_dir) -> dict[str, Path]:
    """Model folders only this module uses: a model moved to ``meta`` cannot come back, and the
    two-tower checkpoints are shared per folder."""
    root = tmp_path_factory.mktemp("device")
    folders = {"ast": tiny_ast_dir, "bert": tiny_bert_dir, "sbert": tiny_sbert_dir}
    for name in ("clap", "clap-text"):
        folders[name] = save_tiny_clap(root / name, fused=False)
    for name in ("clip-image", "clip-text"):
        folders[name] = save_tiny_clip(root / name)
    for name in ("msclap", "msclap-text"):
        (root / name).mkdir()
        folders[name] = save_tiny_msclap(root / name)
    return folders


def _case(name: str, dirs: dict[str, Path], wave16k, wave44k):
    """``(encoder, batch, its torch module)`` for one torch encoder."""
    frames = [np.full((40, 60, 3), 128, np.uint8)]
    clap_wave = np.resize(wave16k, 48000 * 2)
    cases = {
        "aisfx": ("aisfx", [wave44k[:44100]], lambda e: e._load()),
        "ast": (f"ast:{dirs['ast']}", [wave16k[:16000]], lambda e: e._load()[1]),
        "hf-audio": (f"hf:{dirs['ast']}", [wave16k[:16000]], lambda e: e._load()),
        "hf-text": (f"hf:{dirs['bert']}", TEXTS, lambda e: e._load()),
        "sbert": (f"sbert:{dirs['sbert']}", TEXTS, lambda e: e._load()),
        "clap": (f"clap:{dirs['clap']}", [clap_wave], lambda e: e.checkpoint().model),
        "clap-text": (f"clap-text:{dirs['clap-text']}", TEXTS, lambda e: e.checkpoint().model),
        "msclap": (f"msclap:{dirs['msclap']}", [wave44k[:44100]], lambda e: e.model().net),
        "msclap-text": (f"msclap-text:{dirs['msclap-text']}", TEXTS, lambda e: e.model().net),
        "clip-image": (f"clip-image:{dirs['clip-image']}", frames, lambda e: e.checkpoint().model),
        "clip-text": (f"clip-text:{dirs['clip-text']}", TEXTS, lambda e: e.checkpoint().model),
        "efficientnet-lite0": ("efficientnet-lite0", frames, lambda e: e.model),
    }
    spec, batch, module_of = cases[name]
    return get_encoder(spec), batch, module_of


NAMES = [
    "aisfx",
    "ast",
    "hf-audio",
    "hf-text",
    "sbert",
    "clap",
    "clap-text",
    "msclap",
    "msclap-text",
    "clip-image",
    "clip-text",
    "efficientnet-lite0",
]


def _tensor_devices(args, kwargs) -> list[str]:
    values = [*args, *kwargs.values()]
    values += [v for d in values if isinstance(d, dict) for v in d.values()]
    return [v.device.type for v in values if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("name", NAMES)
def test_torch_encoders_run_model_and_inputs_on_their_device(
    name, tiny_dirs, wave16k, wave44k, monkeypatch
):
    # the bare encoders: a text-embedding cache hit would skip the forward pass on meta
    monkeypatch.setenv("HARKEN_TEXT_CACHE", "0")
    encoder, batch, module_of = _case(name, tiny_dirs, wave16k, wave44k)
    on_cpu = encoder.embed(batch)
    assert on_cpu.dtype == np.float32 and np.isfinite(on_cpu).all()
    model = module_of(encoder)
    seen: list[str] = []

    def record(module, args, kwargs):
        seen.extend(_tensor_devices(args, kwargs))

    hooks = [m.register_forward_pre_hook(record, with_kwargs=True) for m in model.modules()]
    try:
        # meta tensors hold no data: the forward pass fails somewhere (at the latest when the
        # output is copied back to numpy), but every tensor reaching a layer before that must
        # be on the encoder's device, and so must the weights.
        with pytest.raises((NotImplementedError, RuntimeError), match="meta"):
            _on_meta(encoder).embed(batch)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and set(seen) == {"meta"}
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_model_identity_checks_can_ignore_the_device():
    from harken.encoders.device import without_device

    built_on_gpu = {"name": "bridge", "audio": {"name": "yamnet"}, "text": {"device": "cuda"}}
    on_cpu = {"name": "bridge", "audio": {"name": "yamnet"}, "text": {}}
    assert without_device(built_on_gpu) == on_cpu == without_device(on_cpu)
    assert without_device([{"device": "mps", "dim": 3}]) == [{"dim": 3}]
    assert without_device({**on_cpu, "text": {"name": "clap-text"}}) != on_cpu
