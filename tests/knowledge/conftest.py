"""Shared fixtures: a tiny randomly initialised Llama causal LM with a real BPE tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

SMOLLM_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "the sound of water running from a tap into a metal sink",
    "a knife chopping an onion on a wooden board, rhythmic thuds",
    "a cupboard door opens with a creak and closes with a bang",
    "This action sounds like: a soft clink of glass and a splash of liquid.",
    '"kitchen action" audio engineer describe sound produced specific action phrase',
]


def build_tiny_lm(folder: Path, chat_template: bool = True) -> Path:
    """Save a 2-layer random Llama (hidden 32) and a byte-level BPE tokenizer to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    )
    if chat_template:
        tokenizer.chat_template = SMOLLM_CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """Folder of a tiny random Llama whose tokenizer has a (SmolLM2-style) chat template."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-llama-chat"))


@pytest.fixture(scope="session")
def tiny_lm_plain(tmp_path_factory) -> Path:
    """Folder of a tiny random Llama whose tokenizer has no chat template."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-llama-plain"), chat_template=False)
