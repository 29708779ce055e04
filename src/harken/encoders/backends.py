"""Imports every encoder backend so it registers itself: a new backend is one line here."""

from harken.encoders import (  # noqa: F401
    aisfx,
    ast,
    clap,
    clip,
    efficientnet,
    hf,
    minilm,
    msclap,
    packaged_text,
    sbert,
    yamnet,
)
