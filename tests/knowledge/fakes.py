"""Test doubles for the generator and encoder contracts (not stand-ins for a model's output)."""

from __future__ import annotations

import hashlib

import numpy as np


class CountingGenerator:
    """Deterministic generator: ``k`` descriptions per item; counts calls and items."""

    def __init__(self, k: int = 1, tag: str = "v1") -> None:
        self.name = "counting"
        self.k = k
        self.tag = tag
        self.calls = 0
        self.items: list[str] = []

    def config(self) -> dict:
        return {"generator": "counting", "k": self.k, "tag": self.tag}

    def describe(self, items):
        self.calls += 1
        self.items.extend(items)
        return [[f"{item} sounds #{j}" for j in range(self.k)] for item in items]


class HashTextEncoder:
    """Deterministic text encoder: a fixed pseudo-random vector per string; logs its batches."""

    name = "hash-text"
    modality = "text"
    sample_rate = None

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim
        self.batches: list[list[str]] = []

    def vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)

    def embed(self, batch):
        self.batches.append(list(batch))
        return np.stack([self.vector(t) for t in batch]).astype(np.float32)

    def config(self) -> dict:
        return {"encoder": self.name, "dim": self.dim}
