"""Errors a user can cause. The CLI prints their message as one paragraph and exits non-zero."""


class TextopsError(Exception):
    """Base class: the message is meant for the user, not a traceback."""

    exit_code = 1


class DataError(TextopsError):
    """An input file or the data directory is not usable (bad format, columns, labels, size)."""


class ValidationFailed(TextopsError):
    """A Great Expectations suite failed; the message lists the failed expectations."""


class StateError(TextopsError):
    """The project is not in a state the command can work on (no git repo, no data, no champion...)."""
