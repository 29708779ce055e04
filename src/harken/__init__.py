"""harken: zero-shot recognition of sounding actions from audio.

The package is layered along the data flow (see ARCHITECTURE in the docs):
``data`` → ``knowledge`` / ``encoders`` → ``store`` → ``protocols`` → ``methods`` → ``metrics``
→ ``reports``; ``experiment``, ``api`` and ``cli`` are thin shells over the layers.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``harken.Classifier`` without importing the models' code at ``import harken``."""
    if name == "Classifier":
        from harken.classify import Classifier

        return Classifier
    raise AttributeError(f"module 'harken' has no attribute {name!r}")
