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


# SQLite says a full disk (and a failing one) in words, not with an errno: the MLflow store and the answers index
SQLITE_DISK_FULL = "database or disk is full"
SQLITE_DISK_IO = "disk I/O error"
SQLITE_DAMAGED = ("database disk image is malformed", "file is not a database")


def disk_fault(exc: BaseException | None) -> tuple[str, str] | None:
    """(what failed, how to say it) when EXC or an error in its chain (libraries wrap it) is a full disk: ENOSPC or
    EDQUOT, or SQLite's "database or disk is full"; or a disk SQLite could not write ("disk I/O error": full,
    failing, or the file taken away); None otherwise."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc.filename or "while writing outputs", "no space left on the device"
        if "No space left on device" in text:
            return "while writing outputs", "no space left on the device"
        if SQLITE_DISK_FULL in text:
            return "SQLite: database or disk is full", "no space left on the device"
        if SQLITE_DISK_IO in text:
            return "SQLite: disk I/O error", "the disk could not be written (full, failing, or unmounted)"
        exc = exc.__cause__ or exc.__context__
    return None


def damaged_sqlite(exc: BaseException | None) -> str | None:
    """SQLite's words, when EXC or an error in its chain (MLflow and SQLAlchemy wrap it) says a database file is
    damaged: the check of the store before a command reads only its first pages, a damaged one further in is found
    later, by whatever reads there."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found = next((text for text in SQLITE_DAMAGED if text in str(exc)), None)
        if found:
            return found
        exc = exc.__cause__ or exc.__context__
    return None


def disk_message(exc: BaseException, command: str) -> str | None:
    """The one paragraph for a `disk_fault` that stopped COMMAND; None when EXC is no such fault."""
    fault = disk_fault(exc)
    if fault is None:
        return None
    where, what = fault
    sqlite = " The MLflow store (mlflow.db) and the answers index are SQLite files on it." if "SQLite" in where else ""
    return (
        f"{what} ({where}): `{command}` stopped.{sqlite} Every stage writes its outputs aside and swaps them in at "
        "the end, and SQLite rolls back a write it could not finish, so what was there before is unchanged, and a "
        "training resumes from its last complete checkpoint. Free some space (`df -h .` shows it) and run it again."
    )


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of the JSON TEXT nest (strings skipped): what to name when Python's parser
    gives up on it (RecursionError, past about a thousand levels)."""
    import re

    depth = deepest = 0
    for bracket in re.finditer(r"[\[\]{}]", re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def too_deep(where: str, text: str, what: str) -> DataError:
    """The DataError for the JSON TEXT at WHERE that nests too deeply to be WHAT (a Label Studio export, a row)."""
    return DataError(
        f"{where}: the JSON nests {nesting_depth(text):,} levels deep, too deep to be {what} (a handful of levels "
        "is all it needs; Python's parser stops at about a thousand). Nothing was read or changed."
    )
