"""Imports every built-in protocol so it registers itself: a new protocol is one line here."""

from harken.protocols import discovery, gzsl, kfold, linear_probe, retrieval  # noqa: F401
