"""``harken serve``: a local web app over :mod:`harken.api` (FastAPI + one small page).

Classify an uploaded or recorded clip against typed labels, search an index by text and listen
to the hits, and browse the report HTML files of a runs folder. Safe by default: it binds
127.0.0.1, refuses any other host unless an access token is set, checks uploads by decoding them
(not by their name), limits their size and duration, keeps them in a private temporary folder
that is removed after the request, and serves no path outside the folders it was given.

FastAPI and uvicorn are the ``serve`` extra (``pip install harken[serve]``); importing
:mod:`harken.serve` needs them, ``import harken`` does not.
"""

from __future__ import annotations

from harken.serve.app import ServeSettings, check_host, create_app, serve

__all__ = ["ServeSettings", "check_host", "create_app", "serve"]
