"""Imports every built-in method so it registers itself: a new method is one line here."""

from harken.methods import bilinear, bridge, conse, contrastive, linear, zeroshot  # noqa: F401
