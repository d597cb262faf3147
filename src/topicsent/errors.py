"""The small exception hierarchy of topicsent.

Every error a user can cause derives from :class:`TopicsentError`, so the CLI can
print its one-line message instead of a traceback. The classes also subclass the
builtin a caller would naturally catch (``ValueError``, ``KeyError``).
"""

from __future__ import annotations


class TopicsentError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class InputDataError(TopicsentError, ValueError):
    """A review file or dataset cannot be read as reviews (names file, row and problem)."""


class InputTooLargeError(InputDataError):
    """An input passes a size bound (decompressed bytes, one line): the REST service answers 413."""


class NotFittedError(TopicsentError, ValueError, AttributeError):
    """A method was used before ``fit``."""


class InvalidParameterError(TopicsentError, ValueError, TypeError):
    """A constructor parameter or option has a value the method cannot use."""


class UnsupportedTaskError(TopicsentError, ValueError):
    """A method was asked for a task it does not declare in ``supported_tasks``."""


class UnknownNameError(TopicsentError, KeyError):
    """A name or id is not known where it was looked up: a method or dataset name, a
    labelling project, a review id of a project."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelFileError(TopicsentError, ValueError):
    """A saved model directory is missing, incomplete or from an incompatible version."""


class EditConflictError(TopicsentError):
    """Someone saved the same item since the caller read it (the REST service answers
    409); the message names the version saved and the one the caller started from."""
