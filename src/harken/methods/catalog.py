"""Imports every built-in method so it registers itself: a new method is one line here."""

from harken.methods import bridge, conse, linear  # noqa: F401
