"""Tiny randomly initialised checkpoints of hub architectures, built offline for tests.

They have the architecture of the models harken loads from the hub at toy sizes and are saved
with ``save_pretrained``, so tests run harken's real loading, preprocessing and forward code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

WORDS = "a the kitchen blender whirring dog barking water boiling pan sizzling knife chopping"


def roberta_tokenizer(folder: Path):
    """A byte-level BPE RoBERTa tokenizer trained on a few words (no download)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(
        [WORDS] * 3, vocab_size=300, special_tokens=specials, show_progress=False
    )
    bpe.save_model(str(folder))
    lines = (folder / "merges.txt").read_text().splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#")]
    return RobertaTokenizer(vocab=bpe.get_vocab(), merges=merges)


def save_tiny_clap(folder: Path, *, fused: bool, seed: int = 0) -> Path:
    """A 2-stage, 16-d HTSAT + 1-layer, 16-d RoBERTa CLAP with 12-d joint space."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    config = ClapConfig(
        text_config={
            "vocab_size": 300,
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 20,
            "max_position_embeddings": 80,
        },
        audio_config={  # 128² spectrogram image: 16 mel bins folded 8×
            "spec_size": 128,
            "num_mel_bins": 16,
            "depths": [1, 1],
            "num_attention_heads": [1, 2],
            "patch_embeds_hidden_size": 8,
            "hidden_size": 16,
            "enable_fusion": fused,
            "fusion_type": "aff_2d" if fused else None,
        },
        projection_dim=12,
    )
    model = ClapModel(config).eval()
    with torch.no_grad():  # distinct audio/text temperatures, to check which one is exposed
        model.logit_scale_a.fill_(math.log(20.0))
        model.logit_scale_t.fill_(math.log(30.0))
    model.save_pretrained(folder)
    truncation = "fusion" if fused else "rand_trunc"
    extractor = ClapFeatureExtractor(feature_size=16, truncation=truncation, padding="repeatpad")
    extractor.save_pretrained(folder)
    roberta_tokenizer(folder).save_pretrained(folder)
    return folder


def clip_tokenizer():
    """A CLIP BPE tokenizer (``</w>`` word ends, byte-level alphabet) with merges trained on a
    few words (no download); the special tokens get the last ids, as in OpenAI CLIP."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=600, end_of_word_suffix="</w>", initial_alphabet=[], show_progress=False
    )
    bpe.train_from_iterator([WORDS] * 3, trainer)
    merges = [tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in [*alphabet, *(c + "</w>" for c in alphabet), *("".join(m) for m in merges)]:
        vocab.setdefault(token, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges)


#: OpenAI CLIP's preprocessor_config.json at a 32-pixel input (``CLIPImageProcessor`` cannot
#: be built here: it needs PIL or torchvision).
TINY_CLIP_PROCESSOR = {
    "crop_size": {"height": 32, "width": 32},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 32},
}


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A 1-layer, 16-d ViT (32 px, 8 px patches) + 1-layer, 16-d text CLIP, 12-d joint space,
    with its tokenizer and image-processor config."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    tokenizer = clip_tokenizer()
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 20,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 20,
        },
        projection_dim=12,
    )
    model = CLIPModel(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(50.0))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(TINY_CLIP_PROCESSOR, indent=2))
    return folder
