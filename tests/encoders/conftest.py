"""Fixtures for the encoder tests: real Kitchen20 clips and tiny random-weight checkpoints.

The tiny checkpoints have the architectures of the hub models harken loads (AST, BERT as a
sentence-transformers model) at toy sizes, saved with ``save_pretrained`` so that the tests run
harken's real loading, preprocessing and forward code by folder path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import load_audio, resample

KITCHEN20 = Path(__file__).resolve().parents[3] / "shared" / "data" / "kitchen20"

WORDS = "a the kitchen blender whirring dog barking water boiling pan sizzling knife chopping"


def kitchen_clip(index: int = 0) -> Path:
    """Path of the ``index``-th Kitchen20 clip (16 kHz FLAC, 5 s), sorted by path."""
    paths = sorted((KITCHEN20 / "audio").glob("*/*.flac"))
    if not paths:
        pytest.skip(f"Kitchen20 audio not found under {KITCHEN20}")
    return paths[index]


@pytest.fixture(scope="session")
def clip_path() -> Path:
    return kitchen_clip(0)


@pytest.fixture(scope="session")
def variant_files(tmp_path_factory, clip_path) -> dict[str, Path]:
    """The first Kitchen20 clip as: original 16 kHz FLAC, 44.1 kHz WAV, mono WAV, stereo WAV
    with two equal channels."""
    out = tmp_path_factory.mktemp("variants")
    wave, sr = load_audio(clip_path)
    files = {"16k": clip_path}
    files["44k"] = out / "clip44k.wav"
    sf.write(files["44k"], resample(wave, sr, 44100), 44100, subtype="FLOAT")
    files["mono"] = out / "mono.wav"
    sf.write(files["mono"], wave, sr, subtype="FLOAT")
    files["stereo"] = out / "stereo.wav"
    sf.write(files["stereo"], np.stack([wave, wave], axis=1), sr, subtype="FLOAT")
    return files


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="session")
def tiny_ast_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer, 32-d AST with the real feature extractor settings."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    folder = tmp_path_factory.mktemp("tiny_ast")
    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_mel_bins=128,
        max_length=1024,
    )
    ASTModel(config).eval().save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=128, max_length=1024, sampling_rate=16000).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer, 32-d BERT with a WordPiece tokenizer over a toy vocab."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS.split(), "##s", "##ing"]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(vocab_file)).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_sbert_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """The tiny BERT wrapped as a sentence-transformers folder (Transformer + mean Pooling)."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer

    folder = tmp_path_factory.mktemp("tiny_sbert")
    transformer = Transformer(str(tiny_bert_dir), max_seq_length=32)
    pooling = Pooling(32, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder
