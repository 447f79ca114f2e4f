"""Where a command's output goes: stage lines and results to the console, everything else to a log file.

A person at the console wants one line per stage, progress bars for long work and a summary; the logs and
warnings of MLflow, transformers, DVC, Great Expectations and Prefect (and their progress bars) go to
`.textops/logs/<command>-<time>.log` in the project, created only when something is written there. `-v` sends
them to stderr instead, as the libraries print them. Light imports only: this runs at CLI start-up.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGES = "textops.stages"  # stage start/end lines: printed by the CLI, sent to Prefect's logs on a worker
LOG_DIR = Path(".textops") / "logs"
KEEP_LOGS = 50
CURRENT: Path | None = None  # this command's log file

# Library switches for a quiet console (a user's own setting wins). tqdm's switch silences the progress bars of
# transformers, huggingface_hub and MLflow; textops draws its own with rich.
QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_CONFIGURE_LOGGING": "false",  # MLflow's loggers then propagate to the log file
    "TRANSFORMERS_VERBOSITY": "error",  # transformers prints to its own stderr handler
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


@contextmanager
def stage(name: str, step: str = "") -> Iterator[dict]:
    """Log NAME's start and its end with the time it took and the `note` the block may set in the yielded dict
    (or that it failed: the error itself is printed once, by whoever reports it)."""
    log = logging.getLogger(STAGES)
    label = f"{step} {name}".strip()
    log.info("%s ...", label)
    start = time.monotonic()
    result: dict = {}
    try:
        yield result
    except BaseException:
        log.info("%s failed after %s", label, took(start))
        raise
    note = result.get("note")
    log.info("%s done in %s%s", label, took(start), f": {note}" if note else "")


def note(message: str, *args, warning: bool = False) -> None:
    """A line for the person running the pipeline: on the console of a CLI run (a warning on stderr), and in the
    flow run's logs on a worker (textops' loggers are Prefect "extra loggers")."""
    if warning:
        logging.getLogger("textops.flows").warning(message, *args)
    else:
        logging.getLogger(STAGES).info(message, *args)


def took(start: float) -> str:
    seconds = time.monotonic() - start
    return f"{seconds:.1f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def stage_lines_to_stderr() -> None:
    """The stage lines on stderr: stdout carries a command's `--json` result alone."""
    for handler in logging.getLogger(STAGES).handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def start_logging(root: Path, command: str, verbose: bool) -> Path | None:
    """Send this process's logs where a person wants them; returns the log file (None with VERBOSE)."""
    global CURRENT
    stages, textops = logging.getLogger(STAGES), logging.getLogger("textops")
    textops.setLevel(logging.INFO)
    if not stages.handlers:
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(logging.Formatter("%(message)s"))
        stages.addHandler(out)
    if verbose:  # everything to stderr, as the libraries print it; the stage lines once, on stdout
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stages.propagate = False
        return None
    # textops' own warnings are for people: on the console as well as in the file.
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("textops: %(message)s"))
    textops.handlers = [err]
    textops.propagate = False  # as Prefect sets it when it attaches its API handler: the file handler is explicit
    if not Path(root).is_dir() or _planted_link(Path(root)):
        return None  # the command itself refuses it (`locks.state_path`): no log is written through it
    path = Path(root) / LOG_DIR / f"{command.replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    prune(path.parent)
    handler = FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Prefect replaces the root logger's handlers with its own config (quiet_prefect points those at this file);
    # here only an earlier command's file handler (several commands in one process) makes way.
    logging.root.handlers = [h for h in logging.root.handlers if not isinstance(h, FileHandler)] + [handler]
    logging.root.setLevel(logging.INFO)
    textops.addHandler(handler)
    logging.captureWarnings(True)
    # A log record that cannot be written (a full disk) is dropped, not printed as a "--- Logging error ---" block
    # on stderr for every record: the command's own error says what happened, once.
    logging.raiseExceptions = False
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    CURRENT = path
    return path


def _planted_link(root: Path) -> bool:
    """Whether `.textops` or `.textops/logs` under ROOT is a symbolic link."""
    from textops.adapters.locks import state_path
    from textops.core.errors import StateError

    try:
        state_path(root, LOG_DIR.name)
    except StateError:
        return True
    return False


def quiet_prefect() -> None:
    """Before Prefect is first imported by a command that runs a flow in this process: Prefect's console output
    to this command's log file too (nothing to do with -v, or where the user set a logging config)."""
    if CURRENT is not None and "PREFECT_LOGGING_SETTINGS_PATH" not in os.environ:
        os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(prefect_logging_config(CURRENT))


class FileHandler(logging.FileHandler):
    """A log file made only when a record arrives (`delay`), with its directory."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def prefect_logging_config(log: Path) -> Path:
    """Prefect's own logging config with its console handlers writing to LOG instead: Prefect replaces the root
    logger's handlers when it sets up logging, so this is how the log file survives it."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        return log.with_suffix(".prefect.yml")
    default = Path(spec.origin).parent / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text(encoding="utf-8"))
    for name in ("console", "debug"):
        level = config["handlers"][name].get("level", 0)
        config["handlers"][name] = {
            "level": level,
            "class": "logging.FileHandler",
            "filename": str(log),
            "formatter": "standard",
            "encoding": "utf-8",
            "delay": True,
        }
    out = log.with_suffix(".prefect.yml")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Prefect substitutes ${SETTING} templates in this file, as in its own.
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out


def prune(log_dir: Path, keep: int = KEEP_LOGS) -> None:
    """Keep the newest KEEP command logs."""
    if not log_dir.is_dir():
        return
    logs = sorted(log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".prefect.yml").unlink(missing_ok=True)


@contextmanager
def printed_to_log(logger: str) -> Iterator[None]:
    """What a library prints to stderr inside the block (MLflow's `eprint`, e.g. "Successfully registered
    model") as INFO records of LOGGER instead: in the log file, or on stderr with -v."""
    import io
    from contextlib import redirect_stderr

    buffer = io.StringIO()
    try:
        with redirect_stderr(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                logging.getLogger(logger).info("%s", line)
