"""The small exception hierarchy of topicsent: every exception a user can catch.

Every error a user can cause derives from :class:`TopicsentError`, so the CLI can
print its one-line message instead of a traceback. The classes also subclass the
builtin a caller would naturally catch (``ValueError``, ``KeyError``, ``ImportError``).
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


class MissingExtraError(TopicsentError, ImportError):
    """An optional dependency is not installed; the message names the extra to install
    (``pip install 'topicsent[EXTRA]'``), see :func:`topicsent._extras.missing_extra`."""


class BackendError(TopicsentError):
    """An LLM call failed. ``retryable`` (timeouts, 429, 5xx, dropped connections) means
    the same request may succeed later; ``retry_after`` is the server's hint in seconds;
    ``status`` the HTTP status when there was one."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class BudgetExceededError(TopicsentError):
    """The next LLM call could take spending past ``max_cost``; it was not made."""


class AnswerError(ValueError):
    """An LLM's answer is not usable; the message says what is wrong, for the repair
    prompt (a row whose answer stays unusable comes back ``unparsed``, never guessed)."""


class EditConflictError(TopicsentError):
    """Someone saved the same item since the caller read it (the REST service answers
    409); the message names the version saved and the one the caller started from."""
