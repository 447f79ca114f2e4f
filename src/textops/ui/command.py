"""How a CLI command runs: the project it works on, the options every command has, and one mapping from a
user error to a message and an exit code.

`command(group)` registers a function as a Typer command with the same `--params FILE` and `-S key=value`
options, hands it a `Project` (the root and the validated params, loaded on first use), and turns a user
error into one paragraph on stderr and the error's exit code (`textops.core.errors.exit_code`). Light imports only:
this runs at CLI start-up.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from textops.adapters.logs import start_logging
from textops.core.errors import TextopsError, damaged_sqlite, disk_fault, disk_message, exit_code

if TYPE_CHECKING:
    from textops.adapters.tracking import Session
    from textops.core.config import Params


@dataclass
class Project:
    """The project a command works on: the root (where params.yaml lives; every path in params is relative to
    it) and the params with the command line's overrides, validated when first asked for."""

    params_path: Path
    overrides: tuple[str, ...] = ()
    _params: Params | None = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        return self.params_path.resolve().parent

    @property
    def params(self) -> Params:
        if self._params is None:
            from textops.core.config import load_params

            self._params = load_params(self.params_path, self.overrides)
        return self._params


def verbose() -> bool:
    """Whether the command line asked for the libraries' own output (`textops -v ...`)."""
    import click

    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("verbose"))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a user error as one paragraph on stderr and exit non-zero."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def damaged_message(exc: BaseException, project: Project | None) -> str | None:
    """The one paragraph for a damaged SQLite file met after the store's check (`errors.damaged_sqlite`), naming
    the project's MLflow store when it is a SQLite file; None when EXC is not that."""
    found = damaged_sqlite(exc)
    if found is None:
        return None
    from textops.adapters.tracking import damaged_store, tracking_uri

    try:
        uri = tracking_uri(project.root, project.params) if project is not None else ""
    except TextopsError:
        uri = ""
    if uri.startswith("sqlite:///"):
        return damaged_store(uri.removeprefix("sqlite:///"), RuntimeError(found))
    return (
        f"a SQLite file textops reads is damaged ({found}): the MLflow store, or the answers index of `textops "
        "serve` (answers.sqlite beside the request log). Nothing was changed. Restore it from a backup, or move it "
        "aside (a new answers index then matches feedback only to the answers served after it)."
    )


def stop_on_sigterm() -> None:
    """SIGTERM raises `Stopped` in the main thread instead of ending the process at once (Python's default), so
    the command gives back what it holds on the way out. Prefect puts its own bridge in place while a flow runs."""
    import signal

    from textops.core.errors import Stopped

    def handler(signum, frame):
        raise Stopped()

    signal.signal(signal.SIGTERM, handler)


def _stopped(exc: BaseException) -> str | None:
    """Why EXC ended the command when a signal did: SIGTERM (ours, or Prefect's TerminationSignal) or Ctrl-C."""
    if type(exc).__name__ in ("Stopped", "TerminationSignal"):
        return "SIGTERM"
    return "Ctrl-C (SIGINT)" if isinstance(exc, KeyboardInterrupt) else None


@contextmanager
def user_errors(name: str, project: Project | None = None) -> Iterator[None]:
    """Turn a TextopsError (bad data, bad params, failed suite, bad state), a full disk and a tracking server that
    stopped answering into a message and a non-zero exit code instead of a traceback."""
    import logging

    import click

    log = logging.getLogger("traceback")  # the root logger's handler: the log file only (stderr with -v)
    try:
        yield
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise  # typer.Exit from fail(), usage errors: click reports them itself
    except TextopsError as exc:
        log.info("`textops %s` failed", name, exc_info=True)
        if verbose():
            raise
        fail(str(exc), exit_code(exc))
    except Exception as exc:
        log.error("`textops %s` failed", name, exc_info=True)
        if verbose():
            raise
        disk = disk_message(exc, f"textops {name}") or damaged_message(exc, project)
        if disk is not None:
            fail(disk)
        from textops.adapters.tracking import server_gone

        gone = server_gone(exc)
        if gone is None:
            from textops.adapters import logs

            where = f"the traceback is in {logs.CURRENT}" if logs.CURRENT else "run it with -v for the traceback"
            fail(
                f"`textops {name}` stopped on an unexpected {type(exc).__name__}: {exc} ({where}). This is "
                "likely a bug in textops: please report it with that log."
            )
        fail(
            f"the MLflow tracking server stopped answering during `textops {name}` ({gone}). Nothing is half "
            "done: a model version is registered in one call with all its evidence and the aliases move last, and "
            "a training resumes from its last complete checkpoint. Start the server (or wait for it) and run the "
            f"command again; MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR set how long "
            "textops keeps retrying first (MLflow's defaults: 7 retries over about 4 minutes)."
        )
    except BaseException as exc:  # last: a signal (SIGTERM, Ctrl-C) is no Exception
        signal = _stopped(exc)
        if signal is None:
            raise
        log.info("`textops %s` stopped by %s", name, signal, exc_info=True)
        fail(
            f"`textops {name}` stopped ({signal}). What it held is given back: the project's locks, the training "
            "slot and a temporary Prefect server; a half-done data change is undone. Run it again: a training "
            "resumes from its last complete checkpoint.",
            143 if signal == "SIGTERM" else 130,
        )


_PROJECT_OPTIONS = [
    inspect.Parameter(
        "params_path",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(Path("params.yaml"), "--params", help="The parameters file."),
        annotation=Path,
    ),
    inspect.Parameter(
        "overrides",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            [],
            "--set",
            "-S",
            metavar="KEY=VALUE",
            help="Override a parameter for this command, e.g. -S train.epochs=1 (repeatable).",
        ),
        annotation=list[str],
    ),
]


def command(group: typer.Typer, name: str | None = None) -> Callable:
    """Register FUNC as a command of GROUP with the project options; FUNC gets `project: Project`."""

    def register(func: Callable) -> Callable:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != "project"]
        label = name or func.__name__.replace("_", " ")

        @functools.wraps(func)
        def wrapper(*args, params_path: Path, overrides: list[str], **kwargs):
            project = Project(params_path, tuple(overrides or ()))
            start_logging(project.root, label, verbose())
            stop_on_sigterm()
            with user_errors(label, project):
                return func(*args, project=project, **kwargs)

        wrapper.__dict__["__signature__"] = signature.replace(parameters=own + _PROJECT_OPTIONS)  # inspect reads it
        wrapper.__annotations__ = {
            **{k: v for k, v in func.__annotations__.items() if k != "project"},
            "params_path": Path,
            "overrides": list[str],
        }
        group.command(name)(wrapper)
        return func

    return register


def run_flow(project: Project, module: str, flow: str, session: Session | None = None, **kwargs):
    """Run flow FLOW of textops.flows.MODULE in this process and return its final state: against the server in
    PREFECT_API_URL, or else a temporary one that lives exactly as long as this run (textops.runtime.prefect_server).
    SESSION: the command's MLflow store, lent to the flow (`tracking.lend`): its stages open no other."""
    import importlib
    import os

    from textops.adapters.locks import project_runs, state_dir
    from textops.adapters.logs import quiet_prefect
    from textops.adapters.tracking import lend
    from textops.flows import configure_prefect
    from textops.runtime.prefect_server import temporary_server

    quiet_prefect()  # these three before Prefect is first imported
    configure_prefect(project.root)
    kwargs.update(
        project_dir=str(project.root),
        params_file=project.params_path.name,
        overrides=list(project.overrides),
        return_state=True,
    )
    if os.environ.get("PREFECT_API_URL"):
        with lend(session):
            return getattr(importlib.import_module(f"textops.flows.{module}"), flow)(**kwargs)
    log = state_dir(project.root) / "logs" / "prefect-server.log"
    server = temporary_server(Path(os.environ["PREFECT_HOME"]), log)
    with server, project_runs(project.root, reclaim_slots), lend(session):
        try:
            return getattr(importlib.import_module(f"textops.flows.{module}"), flow)(**kwargs)
        finally:  # the run's last logs and events reach the server before it stops
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            for worker in (APILogWorker, EventsWorker):
                worker.drain_all(timeout=10)


def reclaim_slots() -> None:
    """Give back the training slot a run that no longer lives left in the project's temporary Prefect server (no
    other run of the project is alive: `locks.project_runs`), saying so."""
    from textops.runtime.training_slot import reclaim_orphaned_slots

    freed = reclaim_orphaned_slots()
    if freed:
        import logging

        logging.getLogger("textops").warning(
            "took back %d training slot(s) left taken by a run that no longer lives (stopped before it could give "
            "the slot back)",
            freed,
        )


def finish(state) -> dict:
    """A flow's final state: its summary when it completed; a user error or the failure message otherwise."""
    if state.is_completed():
        result = state.result(raise_on_failure=False)
        return result if isinstance(result, dict) else {"message": state.message}
    error = state.result(raise_on_failure=False)
    if isinstance(error, TextopsError):
        raise error
    if isinstance(error, BaseException) and (disk_fault(error) or damaged_sqlite(error)):
        raise error  # the user_errors mapping says it as a full disk or a damaged store, not as the library's error
    fail(state.message if state.name == "Failed" else f"the run ended {state.name}: {state.message}")


def json_text(value) -> str:
    """A command's `--json` output: indented, anything JSON lacks (paths, times) as text."""
    import json

    return json.dumps(value, indent=2, default=str)
