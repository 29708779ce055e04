"""Shared helpers for the Hugging Face backends (``sbert``, ``ast``, ``hf``, ``clap``, ``clip``,
``msclap``): spec resolution, bounded hub access, loading with actionable errors, strict-loading
checks, revisions, mean pooling and batching.

**Network.** huggingface_hub retries a failed metadata request for minutes when the file is not
cached yet (60 s timeouts, five retries), and DNS lookups are not bounded by socket timeouts at
all, so an offline machine or a proxy that never answers used to hang a load. Before a hub id is
loaded, :func:`hub_access` therefore checks that the hub endpoint answers at all (one ``HEAD``
through the same proxy settings, bounded by ``$HARKEN_HUB_TIMEOUT`` seconds, default 5, DNS
included). When it does not, or when ``HF_HUB_OFFLINE=1``, the load is made with
``local_files_only=True``: a cached copy still loads, anything else fails at once with a message
that says how to use a local folder. The result of a check is reused for a minute.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from harken.encoders.device import OnDevice, device_config
from harken.errors import ConfigError, ModelUnavailableError

T = TypeVar("T")

OFFLINE_HINT = (
    "it is neither a local folder nor obtainable from the Hugging Face hub: check the id and the "
    "network, or pass a folder holding the model (a save_pretrained output); "
    "HF_HUB_OFFLINE=1 makes hub ids fail at once instead of after retries"
)
LOCAL_FOLDER_HINT = (
    "pass a local folder instead of the hub id (a save_pretrained copy, e.g. "
    "'clap:/path/to/folder'), or download it once where the hub is reachable"
)

#: Inputs above this count get a tqdm progress bar.
PROGRESS_MIN = 64
#: Seconds the hub reachability check may take, DNS included (``$HARKEN_HUB_TIMEOUT``).
HUB_TIMEOUT = 5.0
#: Seconds a reachability result is reused.
PROBE_TTL = 60.0
_PROBES: dict[tuple, tuple[float, str | None]] = {}
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def hub_timeout() -> float:
    """The reachability-check budget in seconds (``$HARKEN_HUB_TIMEOUT``, default 5).

    Raises:
        ConfigError: the variable is not a positive number.
    """
    raw = os.environ.get("HARKEN_HUB_TIMEOUT", "").strip()
    if not raw:
        return HUB_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"HARKEN_HUB_TIMEOUT={raw!r}: expected a positive number of seconds")
    return value


def hub_offline() -> bool:
    """Whether hub access is switched off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``, read
    now or when huggingface_hub was imported)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(
        (f or "").strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags
    )


def _silent_failure(exc: BaseException) -> bool:
    """Whether a failed check means *nothing answered* (timeout, DNS, refused, no route), as
    opposed to an answer the hub client will report itself (HTTP or TLS errors, a proxy that
    refuses the tunnel)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError | socket.gaierror | ConnectionError):
        return True
    return isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS


def _head(url: str, timeout: float) -> str | None:
    """``None`` when something answers ``HEAD url``, else why nothing did."""
    import http.client  # here, not at the top: importing the encoders stays fast
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "harken"})
    opener = urllib.request.build_opener()  # reads the proxy variables now (urlopen's cached
    try:  # opener keeps those of its first use)
        with opener.open(request, timeout=timeout):
            return None
    except (urllib.error.HTTPError, http.client.HTTPException, ValueError):
        return None  # an (odd) answer, or an odd endpoint: the hub client reports those itself
    except OSError as exc:  # URLError, TLS and tunnel errors, timeouts
        if not _silent_failure(exc):
            return None
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"


def hub_unreachable(endpoint: str | None = None, timeout: float | None = None) -> str | None:
    """Check, within ``timeout`` seconds, that the hub endpoint answers at all.

    The request goes through the proxies of the environment (``HTTPS_PROXY`` etc.), as the hub
    client's would. It runs on a daemon thread so that a DNS lookup, which socket timeouts do
    not bound, cannot hold the caller longer than ``timeout``.

    Args:
        endpoint: Hub root URL; default huggingface_hub's ``ENDPOINT`` (``$HF_ENDPOINT``).
        timeout: Seconds; default :func:`hub_timeout`.

    Returns:
        ``None`` when it answered (any HTTP status), else a short reason.
    """
    import urllib.request

    from huggingface_hub import constants

    url = (endpoint or constants.ENDPOINT).rstrip("/") + "/"
    timeout = hub_timeout() if timeout is None else timeout
    key = (url, tuple(sorted(urllib.request.getproxies().items())), timeout)
    cached = _PROBES.get(key)
    if cached is not None and time.monotonic() - cached[0] < PROBE_TTL:
        return cached[1]
    result: list[str | None] = []
    worker = threading.Thread(
        target=lambda: result.append(_head(url, timeout)), name="harken-hub-check", daemon=True
    )
    worker.start()
    worker.join(timeout)
    reason = result[0] if result else f"{url} did not answer within {timeout:g} s"
    _PROBES[key] = (time.monotonic(), reason)
    return reason


def hub_access(resolved: str) -> tuple[dict[str, Any], str | None]:
    """Loader options for a resolved spec, and why the hub is not used (if it is not).

    Args:
        resolved: A local folder path or a hub id (see :func:`resolve_model`).

    Returns:
        ``({}, None)`` for a folder or a reachable hub; ``({"local_files_only": True}, why)``
        when ``HF_HUB_OFFLINE`` is set or the hub does not answer.
    """
    if Path(resolved).is_dir():
        return {}, None
    if hub_offline():
        return {"local_files_only": True}, "HF_HUB_OFFLINE is set"
    reason = hub_unreachable()
    if reason is None:
        return {}, None
    return {"local_files_only": True}, f"the Hugging Face hub is unreachable ({reason})"


def unavailable_message(
    spec: str, what: str, why_local: str | None, exc: Exception, hint: str = ""
) -> str:
    """The message of a failed load: why the hub was not used, the remedies, and the cause."""
    if why_local is None:
        message = f"cannot load {what} {spec!r}: {OFFLINE_HINT}"
    else:
        message = (
            f"cannot load {what} {spec!r}: {why_local} and it is not in the local Hugging Face "
            f"cache; {LOCAL_FOLDER_HINT}"
        )
        if not why_local.startswith("HF_HUB_OFFLINE"):
            message += " (HF_HUB_OFFLINE=1 skips the network check)"
    if hint:
        message += f"; {hint}"
    return message + f" (cause: {type(exc).__name__}: {str(exc)[:300]})"


def resolve_model(spec: str) -> str:
    """Return a local folder path (expanded) or the hub id unchanged.

    Args:
        spec: A hub id (``"owner/name"``) or a folder path.

    Returns:
        The absolute folder path when ``spec`` names an existing folder, else ``spec``.

    Raises:
        ModelUnavailableError: ``spec`` looks like a path (starts with ``/``, ``.`` or ``~``)
            but no such folder exists.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if spec.startswith(("/", ".", "~")):
        raise ModelUnavailableError(
            f"model folder {spec!r} not found: check the path (it should hold config.json and "
            "the weights written by save_pretrained)"
        )
    return spec


def load_or_unavailable(load: Callable[..., T], spec: str, what: str, hint: str = "") -> T:
    """Call ``load(resolve_model(spec), **options)``, turning hub/file failures into
    ModelUnavailableError.

    ``options`` is ``{"local_files_only": True}`` when the hub is off or unreachable
    (:func:`hub_access`), so a load never waits on the network for long.

    Args:
        load: Loader taking the resolved id or folder and ``from_pretrained``'s keyword
            arguments (e.g. ``AutoModel.from_pretrained``).
        spec: Model id or folder, as the user gave it.
        what: What is being loaded, for the message (``"sentence-transformers model"``).
        hint: Extra advice appended to the message (e.g. an offline alternative).

    Returns:
        Whatever ``load`` returns.

    Raises:
        ModelUnavailableError: the weights cannot be found or fetched (OSError) or the id is
            malformed (ValueError, e.g. huggingface_hub's HFValidationError).
    """
    resolved = resolve_model(spec)
    options, why_local = hub_access(resolved)
    try:
        return load(resolved, **options)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(unavailable_message(spec, what, why_local, exc, hint)) from exc


def check_loading_info(spec: str, info: dict, what: str) -> None:
    """Raise when transformers reports missing, unexpected or mismatched weights.

    Args:
        spec: Model id or folder, as the user gave it.
        info: The ``loading_info`` of ``from_pretrained(..., output_loading_info=True)``.
        what: What was loaded, for the message (``"CLAP checkpoint"``).

    Raises:
        ModelUnavailableError: naming the offending keys, instead of the silent random
            initialisation of a ``strict=False`` load.
    """
    bad = {
        kind: sorted(str(k) for k in info.get(kind) or ())
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    if not any(bad.values()):
        return
    detail = "; ".join(
        f"{kind.replace('_', ' ')} ({len(keys)}): {', '.join(keys[:8])}"
        + (", ..." if len(keys) > 8 else "")
        for kind, keys in bad.items()
        if keys
    )
    raise ModelUnavailableError(
        f"{what} {spec!r} does not match its architecture ({detail}); refusing to run "
        "with randomly initialised weights: re-download or re-save the checkpoint"
    )


def folder_fingerprint(folder: Path) -> str:
    """sha256 (first 16 hex digits) of a model folder's config, tokenizer and weight files."""
    digest = hashlib.sha256()
    names = ("config.json", "preprocessor_config.json", "tokenizer.json", "vocab.json")
    files = [folder / n for n in names if (folder / n).is_file()]
    files += sorted(p for ext in ("*.safetensors", "*.bin") for p in folder.glob(ext))
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def hub_commit(model_id: str) -> str | None:
    """Commit hash of the cached hub snapshot holding ``model_id``'s config, if any."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(model_id, "config.json")
    if not isinstance(path, str):
        return None
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def progress(iterable, total: int, desc: str, n_items: int) -> Any:
    """Wrap ``iterable`` in a tqdm bar when there are at least :data:`PROGRESS_MIN` items."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=n_items < PROGRESS_MIN, leave=False)


def masked_mean(hidden, mask):
    """Mean over tokens that the attention mask keeps.

    ``mean_t = sum_t m_t h_t / max(1, sum_t m_t)`` for ``hidden`` ``[B, T, D]`` and ``mask``
    ``[B, T]`` (a torch tensor pair); ``mask=None`` averages over every token.

    Returns:
        ``[B, D]`` torch tensor.
    """
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def pooled(output):
    """``get_*_features`` returns a tensor (transformers 4) or a pooled output (transformers 5)."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


def joint_text_embeddings(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int,
    max_tokens: int,
    desc: str,
    device: str = "cpu",
):
    """Unit-norm ``get_text_features`` of a two-tower transformers model (CLAP, CLIP): texts
    padded and truncated to ``max_tokens``, in batches of ``batch_size``, on ``device`` (the
    model is moved there); float32 ``[N, D]``."""
    import numpy as np
    import torch

    model.to(device)
    out = []
    parts = list(chunks(list(texts), batch_size))
    with torch.inference_mode():
        for part in progress(parts, len(parts), desc, len(texts)):
            tokens = tokenizer(
                list(part),
                padding="max_length",
                truncation=True,
                max_length=max_tokens,
                return_tensors="pt",
            ).to(device)
            emb = pooled(
                model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )
            )
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


class SharedCheckpointEncoder(OnDevice):
    """Base of the towers of one two-tower hub checkpoint (CLAP, CLIP): every tower of a model
    id shares one loaded checkpoint (``load(model_id)``, cached by the subclass's loader), and
    the dimension is known without loading it for the default model.

    The shared model is moved to a tower's ``device`` when that tower embeds (a no-op when it is
    there already), so towers of one checkpoint on different devices work, at the cost of a copy
    per switch.

    Subclasses set ``default_model``, ``default_dim`` and ``load`` (a staticmethod).
    """

    default_model: str = ""
    default_dim: int = 0
    load: Callable[[str], Any]

    def __init__(self, model: str, name: str, device: str | None = None) -> None:
        self._set_device(device)
        self.model_id = model
        self.name = name
        self._dim = self.default_dim if model == self.default_model else None

    def checkpoint(self):
        """The shared loaded checkpoint (loads it on first use)."""
        return self.load(self.model_id)

    @property
    def dim(self) -> int:
        """Joint-space size (``projection_dim``), read from the checkpoint unless the default."""
        if self._dim is None:
            self._dim = self.checkpoint().dim
        return self._dim

    def _base_config(self) -> dict:
        ckpt = self.checkpoint()
        return {
            "name": self.name,
            "model": self.model_id,
            "revision": ckpt.revision,
            "dim": ckpt.dim,
            "normalize": "L2",
            **device_config(self.device),
        }
