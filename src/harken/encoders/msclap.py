"""MS-CLAP 2023 (``msclap`` / ``msclap-text``, ``:<2023 | weights file | folder>``), 1024-d.

Elizalde et al. (2023), "Natural language supervision for general-purpose audio
representations" (MS-CLAP 2023): an HTSAT audio encoder pretrained on 22 audio tasks
("HTSAT-22", §2.2) and a GPT-2 (base, 124M) text encoder whose sentence representation is the
hidden state of an ``<|endoftext|>`` token appended to every text (§2.2), each followed by a
projection into a 1024-d joint space (§3). Two encoders share one loaded model per process:

* ``msclap[:<spec>]`` (audio): HTSAT latent (mean of its last tokens) → projection, L2-normalised;
* ``msclap-text[:<spec>]`` (text): GPT-2 state at the appended ``<|endoftext|>`` → projection,
  L2-normalised.

Both expose :attr:`logit_scale` = ``exp(logit_scale)``, the temperature of the released
``compute_similarity`` (``logit_scale · â·t̂``). ``spec`` is ``2023`` (default: downloads
``CLAP_weights_2023.pth`` from the hub repo ``microsoft/msclap``), the path of that file, or a
folder holding it (optionally with GPT-2 tokenizer files and an ``msclap_arch.json``). The
tokenizer defaults to the hub's ``gpt2`` (or the folder's own tokenizer files); offline, pass
``tokenizer=<folder>``.

**Why a re-implementation.** The ``msclap`` wheel (1.3.4) cannot be imported here:
``msclap/__init__.py`` imports ``CLAPWrapper``, which imports torchaudio (no CPU build on these
machines) at import time, ``models/htsat.py`` needs torchlibrosa (and so librosa), the text
encoder calls ``AutoModel.from_pretrained("gpt2")`` while it is being built, and the wheel pins
``transformers<5`` and ``numpy<2``. This module therefore rebuilds the released network with
the same module tree and parameter names (``audio_encoder.base.htsat.*``,
``audio_encoder.projection.*``, ``caption_encoder.base.*`` (a transformers ``GPT2Model``),
``caption_encoder.projection.*``, ``logit_scale``), so ``load_state_dict(strict=True)`` applies
the released checkpoint as is; the STFT kernels and the mel filterbank are parameters of that
checkpoint (torchlibrosa stores them), so they come from the file, not from this code.

**Architecture, as released.** ``HTSATWrapper`` ignores the sizes of ``config_2023.yml`` and
builds HTSAT from HTSAT's own ``config.py``: Swin depths (2, 2, 6, 2), heads (4, 8, 16, 32),
patch 4, window 8, spec size 256, 64 mel bins, n_fft 1024, hop 320, and a mel filterbank that
the released code lays out for 32 kHz, 50–14,000 Hz (applied to 44.1 kHz input: ≈69 Hz–19.3 kHz,
not the 50–8,000 Hz of §3). Where they differ we follow the released weights: the filterbank
actually used is the ``melW`` tensor stored in the checkpoint (this module's initial values
only matter for randomly initialised test networks).

**Pre-processing (§3: 44.1 kHz, 7 s segments), deterministic.** Audio arrives mono at 44.1 kHz:
:func:`harken.store.features.encode_clips` averages the channels (the released
``reshape(-1)`` of torchaudio's ``[channels, samples]`` array concatenated the channels, so a
5 s stereo file became 10 s of left-then-right audio) and resamples with soxr (the released
code used torchaudio's ``Resample``). Clips longer than 7 s are cut into 7 s windows (hop
3.5 s, last window at the clip's end) whose unit embeddings are averaged and re-normalised,
instead of the released random 7 s crop (``random.randrange``), which made embeddings change
between calls. Shorter windows are tiled ``ceil(7 s / length)`` times and cut to 7 s, exactly
as the released ``load_audio_into_tensor`` does.

**Text.** As released: ``text + " <|endoftext|>"`` through the GPT-2 tokenizer, padded to 77
tokens (with ``"!"``, the released pad token). We pool at the appended ``<|endoftext|>``, as
§2.2 describes; the released code pooled at ``count(input_ids != 0) - 1`` (id 0 is ``"!"``),
which picks an earlier token whenever a text itself contains a ``"!"`` token. Texts of more
than 77 tokens keep their first 76 tokens plus the ``<|endoftext|>`` (the released code did not
truncate and failed to batch them).

**Weights.** Loaded strictly: any missing or unexpected key raises
:class:`~harken.errors.ModelUnavailableError` naming them (the released loader used
``strict=False``, and filtered every warning). The one exception is GPT-2's causal-mask
buffers ``h.<i>.attn.bias`` / ``h.<i>.attn.masked_bias``, which checkpoints saved with
transformers < 4.31 contain (microsoft/CLAP issue #27) and current ``GPT2Model`` no longer has:
they are constants, not weights, and are dropped by name before the strict load. The file is
read with ``torch.load(weights_only=True)`` only: a checkpoint that pickles anything beyond
tensors and containers (it could run code while loading) is refused with a
:class:`~harken.errors.ModelUnavailableError` that shows how to re-save a trusted one as weights.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import pickle
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders._hf import chunks, hub_access, load_or_unavailable, progress
from harken.encoders.base import ENCODERS, UnitWindowMean
from harken.encoders.device import OnDevice, device_config, to_numpy
from harken.errors import AudioError, ConfigError, ModelUnavailableError

HUB_REPO = "microsoft/msclap"
#: Released versions this module can build, and their weight files in :data:`HUB_REPO`.
VERSIONS = {"2023": "CLAP_weights_2023.pth"}
DEFAULT_VERSION = "2023"
WEIGHTS_FILE = VERSIONS[DEFAULT_VERSION]
#: Optional architecture override stored next to the weights (tests, retrained variants).
ARCH_FILE = "msclap_arch.json"
DEFAULT_TOKENIZER = "gpt2"
SAMPLE_RATE = 44100
WINDOW_SECONDS = 7.0
TEXT_LEN = 77
EOT = "<|endoftext|>"
PAD = "!"
DIM = 1024

_LEGACY_GPT2_BUFFER = re.compile(r"caption_encoder\.base\.h\.\d+\.attn\.(bias|masked_bias)")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


@dataclass(frozen=True)
class MsClapArch:
    """Sizes of the MS-CLAP network; the defaults are those of ``CLAP_weights_2023.pth``.

    The HTSAT fields are the values the released ``HTSATWrapper`` takes from HTSAT's
    ``config.py`` (not from ``config_2023.yml``); ``text`` holds ``GPT2Config`` overrides
    (empty: GPT-2 base, as ``AutoModel.from_pretrained("gpt2")``).
    """

    spec_size: int = 256
    patch_size: int = 4
    patch_stride: int = 4
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mlp_ratio: float = 4.0
    num_classes: int = 527
    mel_bins: int = 64
    n_fft: int = 1024
    hop_size: int = 320
    mel_sample_rate: int = 32000
    fmin: float = 50.0
    fmax: float = 14000.0
    d_proj: int = DIM
    text: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MsClapArch:
        """Build from a JSON-style dict (lists become tuples)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown MS-CLAP architecture fields {unknown}; known: {sorted(known)}"
            )
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**fixed)

    @property
    def num_features(self) -> int:
        """HTSAT's output width: ``embed_dim · 2^(stages - 1)`` (768 released)."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@functools.cache
def _net() -> SimpleNamespace:
    """The torch modules of the released network, defined on first use so that importing this
    backend (every ``get_encoder`` call imports all backends) does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class STFT(nn.Module):
        """torchlibrosa's ``STFT``: a periodic-Hann-windowed DFT as two strided Conv1d."""

        def __init__(self, n_fft: int, hop: int) -> None:
            super().__init__()
            self.n_fft = n_fft
            n = np.arange(n_fft)
            window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
            bins = n_fft // 2 + 1
            angle = -2 * np.pi * np.outer(np.arange(bins), n) / n_fft
            self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
            self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
            with torch.no_grad():
                self.conv_real.weight.copy_(torch.from_numpy(np.cos(angle) * window)[:, None])
                self.conv_imag.weight.copy_(torch.from_numpy(np.sin(angle) * window)[:, None])
            self.requires_grad_(False)

        def forward(self, wave):  # [B, T] → real, imag [B, 1, frames, bins]
            x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
            real = self.conv_real(x)[:, None].transpose(2, 3)
            imag = self.conv_imag(x)[:, None].transpose(2, 3)
            return real, imag

    class Spectrogram(nn.Module):
        """torchlibrosa's ``Spectrogram`` (power 2, centred, reflect padding)."""

        def __init__(self, n_fft: int, hop: int) -> None:
            super().__init__()
            self.stft = STFT(n_fft, hop)

        def forward(self, wave):
            real, imag = self.stft(wave)
            return real**2 + imag**2

    class LogmelFilterBank(nn.Module):
        """torchlibrosa's ``LogmelFilterBank``: Slaney mel matrix, ``10·log10(max(x, 1e-10))``
        (ref 1, no ``top_db`` clipping, so no dependence on the batch's maximum)."""

        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            from transformers.audio_utils import mel_filter_bank

            mel = mel_filter_bank(
                num_frequency_bins=arch.n_fft // 2 + 1,
                num_mel_filters=arch.mel_bins,
                min_frequency=arch.fmin,
                max_frequency=arch.fmax,
                sampling_rate=arch.mel_sample_rate,
                norm="slaney",
                mel_scale="slaney",
            )
            self.melW = nn.Parameter(torch.tensor(mel, dtype=torch.float32), requires_grad=False)

        def forward(self, power):
            return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=1e-10))

    class PatchEmbed(nn.Module):
        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            self.proj = nn.Conv2d(
                1, arch.embed_dim, kernel_size=arch.patch_size, stride=arch.patch_stride
            )
            self.norm = nn.LayerNorm(arch.embed_dim)

        def forward(self, x):
            return self.norm(self.proj(x).flatten(2).transpose(1, 2))

    class Mlp(nn.Module):
        def __init__(self, dim: int, hidden: int) -> None:
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(hidden, dim)
            self.drop = nn.Dropout(0.0)

        def forward(self, x):
            return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))

    class WindowAttention(nn.Module):
        """Swin window attention with a learned relative-position bias."""

        def __init__(self, dim: int, window: int, heads: int) -> None:
            super().__init__()
            self.window = window
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * window - 1) ** 2, heads)
            )
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            coords = torch.stack(
                torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
            ).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
            self.register_buffer(
                "relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1]
            )
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(0.0)
            self.proj = nn.Linear(dim, dim)
            self.proj_drop = nn.Dropout(0.0)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x, mask):
            b, n, c = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
            attn = q @ k.transpose(-2, -1)
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
            attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
            if mask is not None:
                windows = mask.shape[0]
                attn = attn.view(b // windows, windows, self.heads, n, n) + mask[None, :, None]
                attn = attn.view(-1, self.heads, n, n)
            attn = self.attn_drop(self.softmax(attn))
            return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))

    def partition(x, window: int):  # [B, H, W, C] → [B·nW, window², C]
        b, h, w, c = x.shape
        x = x.view(b, h // window, window, w // window, window, c)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)

    def reverse(windows, window: int, h: int, w: int):  # inverse of partition → [B, H, W, C]
        b = windows.shape[0] // (h * w // window // window)
        x = windows.view(b, h // window, w // window, window, window, -1)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)

    class SwinTransformerBlock(nn.Module):
        def __init__(self, dim: int, resolution: int, heads: int, window: int, shift: int, arch):
            super().__init__()
            self.resolution = resolution
            self.window, self.shift = window, shift
            if resolution <= window:  # one window covers the map: no shift
                self.window, self.shift = resolution, 0
            self.norm1 = nn.LayerNorm(dim)
            self.attn = WindowAttention(dim, self.window, heads)
            self.drop_path = nn.Identity()  # stochastic depth: training only
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, int(dim * arch.mlp_ratio))
            self.register_buffer("attn_mask", self._shift_mask() if self.shift else None)

        def _shift_mask(self):
            size, window, shift = self.resolution, self.window, self.shift
            img = torch.zeros((1, size, size, 1))
            spans = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            for i, (hs, ws) in enumerate((h, w) for h in spans for w in spans):
                img[:, hs, ws, :] = i
            ids = partition(img, window).squeeze(-1)
            mask = ids.unsqueeze(1) - ids.unsqueeze(2)
            return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

        def forward(self, x):
            b, _, c = x.shape
            size = self.resolution
            shortcut = x
            x = self.norm1(x).view(b, size, size, c)
            if self.shift:
                x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            x = self.attn(partition(x, self.window), self.attn_mask)
            x = reverse(x, self.window, size, size)
            if self.shift:
                x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
            x = shortcut + self.drop_path(x.reshape(b, size * size, c))
            return x + self.drop_path(self.mlp(self.norm2(x)))

    class PatchMerging(nn.Module):
        def __init__(self, resolution: int, dim: int) -> None:
            super().__init__()
            self.resolution = resolution
            self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
            self.norm = nn.LayerNorm(4 * dim)

        def forward(self, x):
            b, _, c = x.shape
            x = x.view(b, self.resolution, self.resolution, c)
            parts = (x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2])
            return self.reduction(self.norm(torch.cat(parts, -1).view(b, -1, 4 * c)))

    class BasicLayer(nn.Module):
        def __init__(self, stage: int, resolution: int, arch: MsClapArch) -> None:
            super().__init__()
            dim = arch.embed_dim * 2**stage
            window = arch.window_size
            self.blocks = nn.ModuleList(
                SwinTransformerBlock(
                    dim, resolution, arch.num_heads[stage], window, window // 2 * (i % 2), arch
                )
                for i in range(arch.depths[stage])
            )
            last = stage == len(arch.depths) - 1
            self.downsample = None if last else PatchMerging(resolution, dim)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x if self.downsample is None else self.downsample(x)

    class HTSAT(nn.Module):
        """``HTSAT_Swin_Transformer`` in eval mode (token-semantic head kept for the weights)."""

        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            self.arch = arch
            self.freq_ratio = arch.spec_size // arch.mel_bins
            self.spectrogram_extractor = Spectrogram(arch.n_fft, arch.hop_size)
            self.logmel_extractor = LogmelFilterBank(arch)
            self.bn0 = nn.BatchNorm2d(arch.mel_bins)
            self.patch_embed = PatchEmbed(arch)
            self.pos_drop = nn.Dropout(0.0)
            grid = arch.spec_size // arch.patch_stride
            self.layers = nn.ModuleList(
                BasicLayer(i, grid // 2**i, arch) for i in range(len(arch.depths))
            )
            self.norm = nn.LayerNorm(arch.num_features)
            self.avgpool = nn.AdaptiveAvgPool1d(1)
            self.maxpool = nn.AdaptiveMaxPool1d(1)
            sf = arch.spec_size // 2 ** (len(arch.depths) - 1) // arch.patch_stride
            sf //= self.freq_ratio
            self.tscam_conv = nn.Conv2d(
                arch.num_features, arch.num_classes, kernel_size=(sf, 3), padding=(0, 1)
            )
            self.head = nn.Linear(arch.num_classes, arch.num_classes)

        def _to_image(self, x):
            """``reshape_wav2img``: stretch ``[B, 1, T, F]`` to ``spec_size · freq_ratio``
            frames (bicubic) and fold time into ``freq_ratio`` bands of a square image."""
            target_t = self.arch.spec_size * self.freq_ratio
            target_f = self.arch.spec_size // self.freq_ratio
            frames, bins = x.shape[2], x.shape[3]
            if frames > target_t or bins > target_f:
                raise ConfigError(
                    f"HTSAT input of {frames} frames × {bins} bins exceeds its "
                    f"{target_t} × {target_f} image; use windows of at most {WINDOW_SECONDS} s"
                )
            if frames < target_t:
                x = F.interpolate(x, (target_t, bins), mode="bicubic", align_corners=True)
            if bins < target_f:
                x = F.interpolate(x, (x.shape[2], target_f), mode="bicubic", align_corners=True)
            x = x.permute(0, 1, 3, 2)
            b, c, f, t = x.shape
            x = x.reshape(b, c, f, self.freq_ratio, t // self.freq_ratio)
            return x.permute(0, 1, 3, 2, 4).reshape(b, c, f * self.freq_ratio, -1)

        def forward(self, wave):
            """``[B, samples]`` → ``latent_output`` ``[B, num_features]``."""
            x = self.logmel_extractor(self.spectrogram_extractor(wave))
            x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
            x = self.pos_drop(self.patch_embed(self._to_image(x)))
            for layer in self.layers:
                x = layer(x)
            # The released latent_output is AdaptiveAvgPool1d over a permutation of the
            # normed tokens, i.e. their mean (tscam_conv/head only feed the unused class
            # outputs).
            return self.norm(x).mean(dim=1)

    class HTSATWrapper(nn.Module):
        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            self.htsat = HTSAT(arch)

        def forward(self, wave):
            return self.htsat(wave)

    class Projection(nn.Module):
        """``LayerNorm(h + Dropout(W2 · GELU(h)))`` with ``h = W1 · x`` (no biases)."""

        def __init__(self, d_in: int, d_out: int) -> None:
            super().__init__()
            self.linear1 = nn.Linear(d_in, d_out, bias=False)
            self.linear2 = nn.Linear(d_out, d_out, bias=False)
            self.layer_norm = nn.LayerNorm(d_out)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            h = self.linear1(x)
            return self.layer_norm(h + self.drop(self.linear2(F.gelu(h))))

    class AudioEncoder(nn.Module):
        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            self.base = HTSATWrapper(arch)
            self.projection = Projection(arch.num_features, arch.d_proj)

        def forward(self, wave):
            return self.projection(self.base(wave))

    class TextEncoder(nn.Module):
        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            from transformers import GPT2Config, GPT2Model

            config = GPT2Config(**arch.text)
            config._attn_implementation = "eager"  # the attention the checkpoint was trained with
            self.base = GPT2Model(config)
            self.projection = Projection(config.n_embd, arch.d_proj)

        def forward(self, input_ids, attention_mask, last):
            hidden = self.base(input_ids=input_ids, attention_mask=attention_mask)[0]
            pooled = hidden[torch.arange(len(hidden), device=hidden.device), last]
            return self.projection(pooled)

    class CLAP(nn.Module):
        def __init__(self, arch: MsClapArch) -> None:
            super().__init__()
            self.audio_encoder = AudioEncoder(arch)
            self.caption_encoder = TextEncoder(arch)
            self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    return SimpleNamespace(CLAP=CLAP, HTSAT=HTSAT)


def build_msclap(arch: MsClapArch | None = None):
    """A randomly initialised MS-CLAP network (``torch.nn.Module``) with the released
    parameter names; :func:`load_msclap` fills it from a checkpoint."""
    return _net().CLAP(arch or MsClapArch())


def _read_state_dict(path: Path) -> dict:
    """The ``"model"`` state dict of a released checkpoint (or a bare state dict).

    The file is read with ``torch.load(weights_only=True)`` only: a checkpoint is data, and a
    pickle that needs more than tensors and containers could run code while it loads.

    Raises:
        ModelUnavailableError: the file is unreadable, pickles more than weights (the message
            says how to convert it), or holds no state dict.
    """
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelUnavailableError(_not_weights_only(path, exc)) from exc
    except (OSError, RuntimeError, EOFError) as exc:
        raise ModelUnavailableError(f"cannot read MS-CLAP weights {path}: {exc}") from exc
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ModelUnavailableError(
            f"{path}: not an MS-CLAP checkpoint (expected a dict with a 'model' state dict)"
        )
    return state


def _not_weights_only(path: Path, exc: Exception) -> str:
    """Why a checkpoint was refused, and how to convert a trusted one without a full unpickle.

    torch names the first global the file needs (e.g. ``argparse.Namespace``, training
    arguments saved beside the weights); the snippet allows exactly that one class for a
    ``weights_only`` load and saves the bare state dict.
    """
    text = str(exc)
    needed = re.search(r"GLOBAL ([\w.]+)", text)
    out = str(path.with_suffix(".weights.pth"))
    head = (
        f"refusing to load MS-CLAP weights {path}: the file pickles more than tensors"
        f"{f' ({needed.group(1)})' if needed else ''}, and unpickling it could run code. harken "
        "only loads weights (torch.load(weights_only=True))."
    )
    if needed is None:
        return f"{head} Save the model's state_dict() with torch.save and pass that file."
    name = needed.group(1)
    return (
        f"{head} If you trust the file and {name} is plain data (a class such as "
        "argparse.Namespace, never a function such as builtins.open or os.system), allow just "
        "it and save the weights once (torch names one class at a time: add any further ones "
        "it asks for):\n"
        f"    import torch, {name.rpartition('.')[0]}\n"
        f"    with torch.serialization.safe_globals([{name}]):\n"
        f"        ckpt = torch.load({str(path)!r}, map_location='cpu', weights_only=True)\n"
        f"    torch.save({{'model': ckpt.get('model', ckpt)}}, {out!r})"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MsClapModel:
    """One loaded MS-CLAP network with its tokenizer, shared by the audio and text encoders.

    Use :func:`load_msclap`, which caches one instance per (weights, architecture, tokenizer).

    Args:
        weights: The resolved weights file.
        arch: Network sizes.
        tokenizer: GPT-2 tokenizer id or folder.
        revision: Hub commit the weights came from, when downloaded.

    Raises:
        ModelUnavailableError: the file is unreadable or its keys or shapes do not match the
            architecture.
    """

    def __init__(
        self, weights: Path, arch: MsClapArch, tokenizer: str, revision: str | None = None
    ) -> None:
        self.weights = weights
        self.arch = arch
        self.tokenizer_spec = tokenizer
        self.revision = revision
        self.net = self._load()
        self._tokenizer = None
        self._sha256: str | None = None

    def _load(self):
        state = _read_state_dict(self.weights)
        state = {k: v for k, v in state.items() if not _LEGACY_GPT2_BUFFER.fullmatch(k)}
        net = build_msclap(self.arch)
        expected = net.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            parts = [
                f"{what} keys ({len(keys)}): {', '.join(keys[:8])}"
                + (", ..." if len(keys) > 8 else "")
                for what, keys in (("missing", missing), ("unexpected", unexpected))
                if keys
            ]
            raise ModelUnavailableError(
                f"MS-CLAP weights {self.weights} do not match the architecture "
                f"({'; '.join(parts)}); refusing to run with randomly initialised weights: "
                f"re-download {WEIGHTS_FILE} or pass the architecture it was trained with"
            )
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # shape mismatches
            raise ModelUnavailableError(
                f"MS-CLAP weights {self.weights} do not fit the architecture: {exc}"
            ) from exc
        return net.eval()

    @property
    def sha256(self) -> str:
        """Content hash of the weights file (computed once)."""
        if self._sha256 is None:
            self._sha256 = _sha256(self.weights)
        return self._sha256

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)``, the released ``compute_similarity`` temperature."""
        return float(self.net.logit_scale.detach().exp())

    @property
    def tokenizer(self):
        """The GPT-2 tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tok = load_or_unavailable(
                AutoTokenizer.from_pretrained,
                self.tokenizer_spec,
                "GPT-2 tokenizer",
                "pass tokenizer=<folder holding the gpt2 tokenizer files>",
            )
            if EOT not in tok.get_vocab() or tok(EOT)["input_ids"] != [
                tok.convert_tokens_to_ids(EOT)
            ]:
                raise ConfigError(
                    f"tokenizer {self.tokenizer_spec!r} has no {EOT} token: MS-CLAP needs the "
                    "GPT-2 tokenizer"
                )
            self._tokenizer = tok
        return self._tokenizer


_MODELS: dict[tuple[str, str, str], MsClapModel] = {}


def resolve_weights(spec: str) -> tuple[Path, str | None]:
    """The weights file a spec names, and the hub commit when it was downloaded.

    Args:
        spec: ``"2023"`` (download from :data:`HUB_REPO`), a ``.pth`` file, or a folder holding
            ``CLAP_weights_2023.pth`` (or a single ``.pth``).

    Raises:
        ModelUnavailableError: the download fails or the file does not exist.
    """
    if spec in VERSIONS:
        from huggingface_hub import hf_hub_download

        options, why_local = hub_access(HUB_REPO)
        try:
            path = Path(hf_hub_download(HUB_REPO, VERSIONS[spec], **options))
        except (OSError, ValueError) as exc:
            offline = f"{why_local} and the file is not in the local cache: " if why_local else ""
            raise ModelUnavailableError(
                f"cannot download MS-CLAP {spec} weights ({HUB_REPO}/{VERSIONS[spec]}): "
                f"{offline}check the network, or pass the path of a downloaded copy, e.g. "
                f"'msclap:/path/to/{VERSIONS[spec]}' (cause: {type(exc).__name__}: {exc})"
            ) from exc
        parts = path.parts
        commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
        return path, commit
    path = Path(spec).expanduser()
    if path.is_dir():
        found = (
            [path / WEIGHTS_FILE] if (path / WEIGHTS_FILE).is_file() else sorted(path.glob("*.pth"))
        )
        if len(found) != 1:
            raise ModelUnavailableError(
                f"MS-CLAP folder {spec!r} holds {len(found)} .pth files; expected {WEIGHTS_FILE}"
            )
        path = found[0]
    if not path.is_file():
        raise ModelUnavailableError(
            f"MS-CLAP weights {spec!r} not found: pass '2023' (downloads {WEIGHTS_FILE} from "
            f"{HUB_REPO}) or the path of that file or of a folder holding it"
        )
    return path.resolve(), None


def load_msclap(
    spec: str = DEFAULT_VERSION,
    *,
    tokenizer: str | None = None,
    arch: MsClapArch | dict | None = None,
) -> MsClapModel:
    """The process-wide :class:`MsClapModel` for a spec (loaded on first use).

    Args:
        spec: ``"2023"``, a weights file, or a folder (see :func:`resolve_weights`).
        tokenizer: GPT-2 tokenizer id or folder; default: the folder's own tokenizer files when
            ``spec`` is a folder holding them, else ``"gpt2"``.
        arch: Network sizes; default: the folder's ``msclap_arch.json`` if any, else the
            released ``MsClapArch()``.
    """
    weights, revision = resolve_weights(spec)
    folder = Path(spec).expanduser() if Path(spec).expanduser().is_dir() else None
    if tokenizer is None:
        has_files = folder is not None and any((folder / n).is_file() for n in _TOKENIZER_FILES)
        tokenizer = str(folder.resolve()) if has_files else DEFAULT_TOKENIZER
    if arch is None and folder is not None and (folder / ARCH_FILE).is_file():
        arch = json.loads((folder / ARCH_FILE).read_text())
    if isinstance(arch, dict):
        arch = MsClapArch.from_dict(arch)
    arch = arch or MsClapArch()
    key = (str(weights), arch.key(), tokenizer)
    if key not in _MODELS:
        _MODELS[key] = MsClapModel(weights, arch, tokenizer, revision)
    return _MODELS[key]


class _MsClapBase(OnDevice):
    def __init__(
        self,
        spec: str,
        name: str,
        tokenizer: str | None,
        arch: MsClapArch | dict | None,
        device: str | None,
    ) -> None:
        self._set_device(device)
        self.spec = spec
        self.name = name
        self._tokenizer = tokenizer
        self._arch = arch
        self._loaded: MsClapModel | None = None

    @property
    def dim(self) -> int:
        """Joint-space size: 1024 for the release (read from the architecture otherwise)."""
        if self._loaded is None and self._arch is None and self.spec in VERSIONS:
            return DIM
        return self.model().arch.d_proj

    def model(self) -> MsClapModel:
        """The shared loaded model (loads it on first use)."""
        if self._loaded is None:
            self._loaded = load_msclap(self.spec, tokenizer=self._tokenizer, arch=self._arch)
        return self._loaded

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)``: multiply audio·text cosines by it to get the released
        ``compute_similarity`` logits (loads the model)."""
        return self.model().logit_scale

    def _base_config(self) -> dict:
        model = self.model()
        default_arch = model.arch == MsClapArch()
        return {
            "name": self.name,
            "weights": self.spec,
            "weights_sha256": model.sha256[:16],
            "revision": model.revision,
            "arch": "2023 release" if default_arch else asdict(model.arch),
            "dim": model.arch.d_proj,
            "normalize": "L2",
            **device_config(self.device),
        }


class MsClapAudioEncoder(UnitWindowMean, _MsClapBase):
    """MS-CLAP 2023 audio tower: unit-norm 1024-d embeddings of 7 s windows, averaged.

    Args:
        spec: ``"2023"``, a weights file, or a folder (see :func:`resolve_weights`).
        policy: Clip policy; default: 7 s windows, hop 3.5 s (short windows are tiled to 7 s).
        batch_size: Windows per forward pass.
        tokenizer: GPT-2 tokenizer (only part of the shared model's cache key here).
        arch: Network sizes (default: the release).
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU. The shared network moves to the device of the tower that embeds.
    """

    modality = "audio"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        spec: str = DEFAULT_VERSION,
        policy: ClipPolicy | None = None,
        batch_size: int = 8,
        tokenizer: str | None = None,
        arch: MsClapArch | dict | None = None,
        device: str | None = None,
    ) -> None:
        name = "msclap" if spec == DEFAULT_VERSION else f"msclap:{spec}"
        super().__init__(spec, name, tokenizer, arch, device)
        self.policy = policy or ClipPolicy(
            min_seconds=0.0, max_seconds=WINDOW_SECONDS, long="window", hop_fraction=0.5
        )
        if self.policy.max_seconds is None or self.policy.max_seconds > WINDOW_SECONDS:
            raise ConfigError(
                f"MS-CLAP takes {WINDOW_SECONDS:g} s inputs: use a policy with "
                f"max_seconds <= {WINDOW_SECONDS:g}"
            )
        self.batch_size = batch_size

    def config(self) -> dict:
        return {
            **self._base_config(),
            "modality": "audio",
            "sample_rate": SAMPLE_RATE,
            "window_seconds": WINDOW_SECONDS,
            "padding": "tile ceil(7 s / length) times, cut to 7 s (released repeat rule)",
            "pooling": "HTSAT latent (token mean) -> projection, L2-normalised; clip = "
            "re-normalised mean over policy windows",
            "policy": self.policy.describe(),
        }

    @staticmethod
    def _fit(window: np.ndarray) -> np.ndarray:
        """Tile a window ``ceil(7 s / length)`` times and cut it to exactly 7 s."""
        size = round(WINDOW_SECONDS * SAMPLE_RATE)
        if len(window) == 0:
            raise AudioError("MS-CLAP cannot embed an empty waveform (0 samples)")
        reps = math.ceil(size / len(window))
        return np.tile(np.asarray(window, dtype=np.float32), reps)[:size]

    def _embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-norm embeddings ``[W, dim]`` of windows of at most 7 s."""
        import torch

        device = self.device
        net = self.model().net.to(device)
        out = []
        batches = list(chunks([self._fit(w) for w in windows], self.batch_size))
        with torch.inference_mode():
            for batch in progress(batches, len(batches), self.name, len(windows)):
                emb = net.audio_encoder(torch.from_numpy(np.stack(batch)).to(device))
                out.append(to_numpy(torch.nn.functional.normalize(emb, dim=-1)))
        return np.concatenate(out).astype(np.float32)


class MsClapTextEncoder(_MsClapBase):
    """MS-CLAP 2023 text tower: GPT-2 state at the appended ``<|endoftext|>``, projected.

    Args:
        spec: ``"2023"``, a weights file, or a folder (see :func:`resolve_weights`).
        batch_size: Texts per forward pass.
        tokenizer: GPT-2 tokenizer id or folder (default ``"gpt2"`` or the folder's own).
        arch: Network sizes (default: the release).
        max_tokens: Padded length, ``<|endoftext|>`` included (released: 77).
        device: Torch device (:mod:`harken.encoders.device`); None: the current block's, else
            the CPU. The shared network moves to the device of the tower that embeds.
    """

    modality = "text"
    sample_rate = None

    def __init__(
        self,
        spec: str = DEFAULT_VERSION,
        batch_size: int = 32,
        tokenizer: str | None = None,
        arch: MsClapArch | dict | None = None,
        max_tokens: int = TEXT_LEN,
        device: str | None = None,
    ) -> None:
        name = "msclap-text" if spec == DEFAULT_VERSION else f"msclap-text:{spec}"
        super().__init__(spec, name, tokenizer, arch, device)
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def config(self) -> dict:
        model = self.model()
        return {
            **self._base_config(),
            "modality": "text",
            "tokenizer": model.tokenizer_spec,
            "tokens": f"text + ' {EOT}', at most {self.max_tokens} (first {self.max_tokens - 1} "
            f"+ {EOT}), padded with {PAD!r}",
            "pooling": f"GPT-2 hidden state at the appended {EOT} -> projection, L2-normalised",
        }

    def tokenize(self, texts: Sequence[str]) -> tuple[Any, Any, Any]:
        """``(input_ids, attention_mask, eot_position)`` tensors, padded to ``max_tokens``."""
        import torch

        tok = self.model().tokenizer
        eot = tok.convert_tokens_to_ids(EOT)
        # The released pad token; padding never reaches the pooled state (GPT-2 is causal).
        pad = tok.convert_tokens_to_ids(PAD) if PAD in tok.get_vocab() else eot
        ids = torch.full((len(texts), self.max_tokens), pad, dtype=torch.long)
        mask = torch.zeros((len(texts), self.max_tokens), dtype=torch.long)
        last = torch.zeros(len(texts), dtype=torch.long)
        for i, text in enumerate(texts):
            row = tok(f"{text} {EOT}")["input_ids"]
            if len(row) > self.max_tokens:
                row = [*row[: self.max_tokens - 1], eot]
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            last[i] = len(row) - 1
        return ids, mask, last

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            batch: Strings (batched internally, progress bar on long inputs).

        Returns:
            float32 ``[N, dim]``, unit rows.
        """
        import torch

        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        device = self.device
        net = self.model().net.to(device)
        out = []
        batches = list(chunks(texts, self.batch_size))
        with torch.inference_mode():
            for part in progress(batches, len(batches), self.name, len(texts)):
                ids, mask, last = (t.to(device) for t in self.tokenize(part))
                emb = net.caption_encoder(ids, mask, last)
                out.append(to_numpy(torch.nn.functional.normalize(emb, dim=-1)))
        return np.concatenate(out).astype(np.float32)


@ENCODERS.register("msclap")
def _make_msclap(spec: str | None = None, **kwargs) -> MsClapAudioEncoder:
    return MsClapAudioEncoder(spec or kwargs.pop("weights", DEFAULT_VERSION), **kwargs)


@ENCODERS.register("msclap-text")
def _make_msclap_text(spec: str | None = None, **kwargs) -> MsClapTextEncoder:
    return MsClapTextEncoder(spec or kwargs.pop("weights", DEFAULT_VERSION), **kwargs)
