"""Errors a user can act on: each names the file/row, what was expected and what to do.

The command line prints them as one paragraph (no traceback unless ``--debug``) and exits with
:attr:`HarkenError.exit_code`: 2 for usage and configuration errors, 1 for data errors.
"""


class HarkenError(Exception):
    """Base class of every error harken raises on purpose."""

    #: The command line's exit status for this error.
    exit_code = 1


class AudioError(HarkenError):
    """An audio file could not be used (missing, corrupt, empty, silent, ...)."""


class DataError(HarkenError):
    """A dataset, manifest or CSV row is malformed."""


class VideoError(DataError):
    """A video file could not be used (missing, not a container, no video track, no frames, ...)."""


class ConfigError(HarkenError):
    """A run configuration or argument is invalid."""

    exit_code = 2


class ModelUnavailableError(HarkenError):
    """A model's weights cannot be loaded here (e.g. no hub access)."""


class HarkenWarning(UserWarning):
    """Base class of every warning harken issues on purpose."""


class UnreliableAudioWarning(HarkenWarning):
    """A clip is embedded, but too short or too quiet for its result to be trusted."""
