"""Errors a user can cause, and the one mapping from an error to an exit code.

The CLI prints a TextopsError's message as one paragraph (no traceback unless -v) and exits with its
`exit_code`; the flows end Failed with the same message and never retry one (bad data, bad params and
a bad project state do not heal by waiting).
"""

from __future__ import annotations


class TextopsError(Exception):
    """Base class: the message is meant for the user, not a traceback."""

    exit_code = 1


class ParamsError(TextopsError):
    """params.yaml (or an override) is missing, not YAML, or has an unknown key, a wrong type or a bad value."""

    exit_code = 2


class DataError(TextopsError):
    """An input file or the data directory is not usable (bad format, columns, labels, size)."""


class ValidationFailed(TextopsError):
    """A Great Expectations suite failed; the message lists the failed expectations."""


class StateError(TextopsError):
    """The project is not in a state the command can work on (no git repo, no data, no champion...)."""


class ModelError(TextopsError):
    """model.base names nothing that can be loaded offline."""

    exit_code = 2


class RegistryError(TextopsError):
    """The registry cannot do what was asked (unknown version, no champion, nothing to roll back to)."""


class PushFailed(StateError):
    """`dvc push` failed after the data was added to the local cache (nothing is lost)."""


class Stopped(BaseException):  # noqa: N818 (not an error: a person or a supervisor asked the command to stop)
    """SIGTERM (a terminal closing, systemd, a CI runner): raised in the main thread, so every `finally` and
    every journal runs and what the command holds (locks, the training slot, a temporary server) is given back."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports a process the signal ended


def exit_code(exc: BaseException) -> int:
    """The process exit code for EXC: its own for a user error, 1 for anything else."""
    return exc.exit_code if isinstance(exc, TextopsError) else 1
