"""Imports every built-in method so it registers itself: a new method is one line here."""

from harken.methods import (  # noqa: F401
    bilinear,
    bridge,
    clipclap,
    conse,
    contrastive,
    fusion,
    kda,
    linear,
    mc3,
    zeroshot,
)
