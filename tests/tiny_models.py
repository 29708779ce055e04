"""Tiny randomly initialised checkpoints of hub architectures, built offline for tests.

They have the architecture of the models harken loads from the hub at toy sizes and are saved
with ``save_pretrained``, so tests run harken's real loading, preprocessing and forward code.
"""

from __future__ import annotations

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
