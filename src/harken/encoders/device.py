"""Where the torch encoders run: ``cpu`` (the default), ``cuda[:N]``, ``mps`` or ``auto``.

Every torch encoder (``aisfx``, ``ast``, ``hf``, ``sbert``/``minilm``, ``clap``/``clap-text``,
``msclap``/``msclap-text``, ``clip-image``/``clip-text``, ``efficientnet-lite0``) and the local
LLM generator (``llm``) take ``device=`` (also as a registry keyword:
``get_encoder("ast", device="cuda")``). With ``device=None`` (the default) an encoder runs where
the innermost :func:`use_device` block says, and on the CPU outside any block. The command line's
``--device`` enters such a block around the whole command, so encoders created anywhere inside
(experiments, bridges, indexes) follow it without every layer passing the option on.

* ``"cpu"``: the default, because it is bit-reproducible: the same input gives the same bytes,
  run after run and machine after machine of the same build.
* ``"cuda"`` / ``"cuda:N"``: an NVIDIA GPU (refused, saying what is available, when torch sees
  none or fewer than N+1).
* ``"mps"``: Apple-silicon GPU.
* ``"auto"``: ``cuda`` when available, then ``mps``, else ``cpu``.

**Results and the feature store.** On the CPU nothing changes: an encoder's ``config()`` — the
feature-store key and the manifest entry — has no device in it, so features stored before
``--device`` existed stay valid, and a CPU run through ``--device cpu`` gives the default's
bytes. On a GPU the same maths runs with other kernels (cuDNN convolution algorithms, TF32
convolutions, other reduction orders), so embeddings differ from the CPU's in float rounding
(typically 1e-6 to 1e-3 relative; rankings almost never change). Because the feature store
promises that one key means one set of bytes, a non-CPU device type is part of the key
(``config()["device"] = "cuda"`` or ``"mps"``; the GPU index is not): GPU features never mix
with CPU features, and the manifest says where a run's features were computed (checks of model
identity, such as ``harken search``'s of an index, use :func:`without_device`). harken sets no
global torch flags (TF32, deterministic algorithms): those are the caller's to choose.

**Not torch.** ``yamnet`` runs on onnxruntime's CPU provider whatever the device: an explicit
``device="cuda"`` is refused, and under a ``--device cuda`` block it warns once and runs on the
CPU (the torch encoders of the same command, e.g. MiniLM in the ``bridge`` backend, do use the
GPU).

A :func:`use_device` block is a :class:`contextvars.ContextVar` setting: it ends with the block
(nothing leaks past the call) and does not reach threads started inside it unless they run in a
copied context (:func:`contextvars.copy_context`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from harken.errors import ConfigError

#: The device names ``--device`` accepts (``cuda:N`` picks one GPU).
CHOICES = ("cpu", "cuda", "cuda:N", "mps", "auto")
DEFAULT = "cpu"

_SYNTAX = re.compile(r"cpu|cuda(:\d+)?|mps|auto")
_CURRENT: ContextVar[str | None] = ContextVar("harken_device", default=None)


def check_device_name(device: str) -> str:
    """``device`` when it is a device name harken knows (syntax only: torch is not imported).

    Raises:
        ConfigError: any other text, listing the valid names.
    """
    text = str(device).strip().lower()
    if not _SYNTAX.fullmatch(text):
        raise ConfigError(
            f"device {device!r} is not one of {', '.join(CHOICES)}: choose cpu (the default, "
            "bit-reproducible), cuda or cuda:N for an NVIDIA GPU, mps for Apple silicon, or auto"
        )
    return text


def available_devices() -> list[str]:
    """The devices torch can use here, e.g. ``["cpu", "cuda:0", "cuda:1"]`` (imports torch)."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available(torch):
        found.append("mps")
    return found


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | None = None) -> str:
    """The concrete device for a requested one, checked against what torch can use here.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"``, or None for the
            current :func:`use_device` block's device (``"cpu"`` outside any block).

    Returns:
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. ``"cpu"`` (and None outside a block)
        never imports torch.

    Raises:
        ConfigError: an unknown name, or a device torch cannot use here (the message lists the
            available ones).
    """
    if device is None:
        return _CURRENT.get() or DEFAULT
    name = check_device_name(device)
    if name == "cpu":
        return name
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "cpu"
    if name.startswith("cuda"):
        _check_cuda(torch, name)
    elif not _mps_available(torch):
        raise ConfigError(_unavailable("mps", "torch sees no Apple-silicon (MPS) GPU"))
    return name


def _check_cuda(torch, name: str) -> None:
    if not torch.cuda.is_available():
        why = (
            f"this torch ({torch.__version__}) is a CPU-only build"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable GPU"
        )
        raise ConfigError(_unavailable(name, why))
    index = int(name.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            _unavailable(
                name,
                f"torch sees {count} GPU{'s' if count != 1 else ''} (cuda:0"
                f"{f' to cuda:{count - 1}' if count > 1 else ''})",
            )
        )


def _unavailable(name: str, why: str) -> str:
    return (
        f"--device {name}: {why}; available here: {', '.join(available_devices())}. Use "
        "--device cpu (the default) or --device auto (the best available device)"
    )


def current_device() -> str | None:
    """The device of the innermost :func:`use_device` block (already resolved), or None."""
    return _CURRENT.get()


@contextmanager
def use_device(device: str | None) -> Iterator[str | None]:
    """Run the torch encoders of the block (those created with ``device=None``) on ``device``.

    The device is resolved and checked when the block is entered, so ``--device cuda`` on a
    machine without a GPU fails before any model loads.

    Args:
        device: A device name (see :func:`resolve_device`); None leaves the current setting.

    Yields:
        The resolved device (None when ``device`` is None).

    Raises:
        ConfigError: the device is unknown or unavailable here.
    """
    if device is None:
        yield None
        return
    token = _CURRENT.set(resolve_device(device))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def encoder_device(explicit: str | None) -> str:
    """Where an encoder runs now: its own resolved ``device`` if set, else the block's, else
    ``"cpu"``."""
    return explicit or _CURRENT.get() or DEFAULT


def device_config(device: str) -> dict:
    """What an encoder adds to its ``config()`` for a device: nothing on the CPU (CPU keys stay
    as they were), else ``{"device": <type>}`` (``"cuda"`` or ``"mps"``; not the GPU index).
    """
    return {} if device == "cpu" else {"device": device.partition(":")[0]}


def without_device(config):
    """A config (nested dicts and lists) without its ``"device"`` entries: what identifies the
    model, for checks that should not care where it runs (an index built on the CPU is searched
    on a GPU within float rounding)."""
    if isinstance(config, dict):
        return {k: without_device(v) for k, v in config.items() if k != "device"}
    if isinstance(config, list | tuple):
        return [without_device(v) for v in config]
    return config


def to_numpy(tensor):
    """A float tensor on any device as a numpy array (on the CPU: no copy, the same bytes)."""
    return tensor.detach().cpu().numpy()


class OnDevice:
    """Mixin of the torch encoders: ``device`` is the explicit one (resolved when set) or,
    when None, the current :func:`use_device` block's, else ``"cpu"``."""

    _device: str | None = None

    def _set_device(self, device: str | None) -> None:
        self._device = None if device is None else resolve_device(device)

    @property
    def device(self) -> str:
        """Where this encoder's model and inputs go now (``"cpu"``, ``"cuda"``, ...)."""
        return encoder_device(self._device)
