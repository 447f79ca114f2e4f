"""Where MLflow runs live, and the one way into MLflow: a `Session` (store URI, client, experiment) that every
stage opens explicitly with `connect`, so training, evaluation, the registry and serving always talk to the
same store and nothing relies on MLflow's process-global tracking URI.

Also who owns a run: a process killed with SIGKILL cannot end its run, so the next stage on the same machine
finds it RUNNING with a dead owner and marks it KILLED.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textops.adapters.relocation import artifact_location, backup_sqlite, relocate_store
from textops.core.config import Params
from textops.core.env import copy_if_absent, template_dir
from textops.core.lineage import KILLED, OWNER_HOST, OWNER_PID, OWNER_START
from textops.core.params_file import relative_sqlite_path

if TYPE_CHECKING:
    from mlflow import MlflowClient

STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def tracking_uri(root: Path, params: Params) -> str:
    """MLFLOW_TRACKING_URI if set (a tracking server), else params.mlflow.tracking_uri.

    A relative SQLite path (`sqlite:///mlruns/mlflow.db`) is resolved against the project root, so the
    same store is used whatever the current directory (DVC runs stages from the root, tests elsewhere).
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    uri = params.mlflow.tracking_uri
    relative = relative_sqlite_path(uri)
    if relative is not None:
        db = Path(root).resolve() / relative
        db.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{db}"
    if "://" not in uri and not Path(uri).is_absolute():  # a plain directory: the file store
        return str(Path(root).resolve() / uri)
    return uri


def check_store(uri: str, timeout: float = 10) -> None:
    """Fail at once, with a message that says what to do, when the tracking store cannot be used: a server
    that does not answer (MLflow itself would retry for minutes), or a SQLite file another process holds
    locked. Called before a stage writes anything, so nothing is half done."""
    from textops.core.errors import StateError
    from textops.core.params_file import redact

    if uri.startswith(("http://", "https://")):
        import httpx

        try:
            httpx.get(uri.rstrip("/") + "/health", timeout=timeout)
            return  # it answered, whatever it said (an auth proxy may refuse /health): reachable
        except (httpx.TransportError, OSError) as exc:
            reason = exc
            raise StateError(
                f"the MLflow tracking server {redact(uri)} does not answer ({reason}): start it, or fix "
                "MLFLOW_TRACKING_URI / mlflow.tracking_uri. Nothing was changed."
            ) from exc
    if uri.startswith("sqlite:///"):
        with checked_sqlite(Path(uri.removeprefix("sqlite:///")), timeout):
            pass


@contextmanager
def checked_sqlite(db: Path, timeout: float = 10) -> Iterator[sqlite3.Connection | None]:
    """An open connection to the SQLite store DB once it proved usable (`check_store`'s errors otherwise), for the
    block; None when the file does not exist yet (MLflow creates it). `connect` repairs a moved store through it:
    one open of the file for both."""
    from textops.core.errors import StateError

    if not db.exists():
        yield None
        return
    try:
        con = sqlite3.connect(db, timeout=timeout)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a damaged file fails here, at once
            con.execute("BEGIN IMMEDIATE")  # the write lock MLflow will need
            con.rollback()
        except BaseException:
            con.close()
            raise
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise StateError(f"the MLflow store {db} cannot be used ({exc}). Nothing was changed.") from exc
        raise StateError(
            f"the MLflow store {db} cannot be written ({exc}; waited {timeout:.0f} s): another process holds "
            "it (an open `sqlite3` shell, a stuck `mlflow ui`?). Nothing was changed; try again once it is free."
        ) from exc
    except sqlite3.DatabaseError as exc:
        raise StateError(damaged_store(str(db), exc)) from exc
    try:
        yield con
    finally:
        con.close()


def damaged_store(db: str, exc: BaseException) -> str:
    """What to say of the MLflow store DB that SQLite found damaged (EXC: "file is not a database", "database disk
    image is malformed"): at once, never as a lock another process holds."""
    return (
        f"the MLflow store {db} is damaged ({exc}): SQLite cannot read it as a database any more. Nothing was "
        f"changed. Restore it from a backup, or move it aside to start a new store (`mv {db} {db}.damaged`: the "
        "registry and the runs in it are then gone from textops' view; the DVC data and the model files are not "
        "affected; `sqlite3 DB .recover` may save some of it)."
    )


def server_gone(exc: BaseException) -> str | None:
    """What failed, when EXC is (or wraps) a request to a tracking server that did not answer after MLflow's
    retries (connections refused or dropped, or server errors only); None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        if kind.__module__.startswith("requests") and kind.__name__ in ("ConnectionError", "RetryError"):
            from textops.core.params_file import redact

            return redact(str(exc).splitlines()[0] if str(exc) else kind.__name__)[:300]
        current = current.__cause__ or current.__context__
    return None


def store_exists(uri: str) -> bool:
    """False for a SQLite store whose file does not exist yet (opening it would create an empty one)."""
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


STORE_TEMPLATE = "mlflow.db"


def seed_store(uri: str) -> bool:
    """Start a new SQLite store from the migrated empty one textops keeps (MLflow's migrations of a new store take
    seconds to tens of seconds); False where URI is no SQLite file, the file exists, or there is no template."""
    import sqlite3

    if not uri.startswith("sqlite:///"):
        return False
    db = Path(uri.removeprefix("sqlite:///"))
    template = template_dir("mlflow", "mlflow") / STORE_TEMPLATE
    if db.exists() or not template.is_file() or not copy_if_absent(template, db):
        return False
    # The Default experiment's artifact location, as MLflow would have set it here (./mlruns/0).
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                (str(Path("mlruns").resolve() / "0"),),
            )
    finally:
        con.close()
    return True


class Snapshot:
    """What a session read from the registry once (the aliases' versions), for the rest of its command. An object,
    not a collection: Prefect rebuilds the collections in a task's arguments, a copied session shares this one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}


@dataclass(frozen=True)
class Session:
    """A project's MLflow store, opened once per command (the CLI command, or the flow on a worker) and handed
    down to the stages: its URI, a client bound to it (tracking and registry), the experiment and the registered
    model's name, and a snapshot of the registry's aliases (`once`). Stages call the client; MLflow's fluent API
    (`log_model`, `start_run`, `pyfunc.load_model` of a `models:/` URI) only inside `with session.active():`.
    A process that lives on (the server) asks the client for what may change, not `once`."""

    uri: str
    client: MlflowClient
    experiment_id: str | None
    model_name: str
    snapshot: Snapshot = field(default_factory=Snapshot, compare=False, repr=False)

    def once(self, key: str, read: Callable[[], Any]) -> Any:
        """READ's answer the first time KEY is asked in this session, the same answer after (`forget` ends it)."""
        if key not in self.snapshot.values:
            self.snapshot.values[key] = read()
        return self.snapshot.values[key]

    def forget(self) -> None:
        """After this session moved an alias: the next `once` reads the registry again."""
        self.snapshot.values.clear()

    @contextmanager
    def active(self) -> Iterator[None]:
        """Point MLflow's fluent API at this store for the block, then back at what the process had chosen
        before (nothing, usually), with MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI as they were."""
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        # What was set explicitly, not what MLflow would fall back to: restoring a fallback as if it had been
        # chosen would pin it, and later changes of MLFLOW_TRACKING_URI would be ignored.
        before = getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None)
        env = {name: os.environ.get(name) for name in STORE_VARIABLES}
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        # set_*_uri export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI: textops reads the first as the user's
        # choice of store, and a child process (`mlflow models serve`) would inherit both. Put them back.
        _restore_env(env)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])
            _restore_env(env)


def _restore_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def connect(root: Path, params: Params, experiment: bool = True) -> Session:
    """Open the project's store: check that it can be used (a clear error, nothing changed, when not), repair a
    moved project's (one open of the SQLite file for both); with EXPERIMENT also make sure the experiment exists
    and mark KILLED the runs of dead processes. Once per command: the stages take the session (`session_for`)."""
    from mlflow import MlflowClient

    uri = tracking_uri(root, params)
    if uri.startswith("sqlite:///"):
        with checked_sqlite(Path(uri.removeprefix("sqlite:///"))) as con:
            if con is not None:
                relocate_store(root, params, con)
    else:
        check_store(uri)
    fresh = not store_exists(uri) and not seed_store(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if fresh:  # MLflow creates and migrates it now; keep a copy for the next new project
        client.search_experiments(max_results=1)
        backup_sqlite(Path(uri.removeprefix("sqlite:///")), template_dir("mlflow", "mlflow") / STORE_TEMPLATE)
    experiment_id = ensure_experiment(client, root, params, uri) if experiment else None
    if experiment_id is not None:
        reap_stale_runs(client, experiment_id)
    return Session(uri, client, experiment_id, params.mlflow.registered_model)


def session_for(root: Path, params: Params, session: Session | None, experiment: bool = True) -> Session:
    """SESSION, the one its caller opened for this command (with the experiment when EXPERIMENT and it has none),
    else a new one: a stage called alone (a DVC stage, `textops train`) opens its own."""
    if session is None:
        return connect(root, params, experiment)
    if experiment and session.experiment_id is None:
        experiment_id = ensure_experiment(session.client, root, params, session.uri)
        reap_stale_runs(session.client, experiment_id)
        return replace(session, experiment_id=experiment_id)
    return session


_LENT: ContextVar[Session | None] = ContextVar("textops_session", default=None)


@contextmanager
def lend(session: Session | None) -> Iterator[None]:
    """Hand SESSION to the flow the block runs in this process (`ui.command.run_flow`): a flow's parameters go to
    the Prefect server as JSON, a session cannot travel as one."""
    token = _LENT.set(session)
    try:
        yield
    finally:
        _LENT.reset(token)


def lent(root: Path, params: Params) -> Session | None:
    """The session lent to this flow (`lend`) when it is this project's store and model; None on a worker."""
    session = _LENT.get()
    if session is None or session.uri != tracking_uri(root, params):
        return None
    return session if session.model_name == params.mlflow.registered_model else None


def ensure_experiment(client: MlflowClient, root: Path, params: Params, uri: str, name: str | None = None) -> str:
    """The id of experiment NAME (default: mlflow.experiment), creating it with the project's artifact location
    on a local store URI (MLflow's default would be ./mlartifacts relative to wherever the process runs)."""
    name = name or params.mlflow.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        # A tracking server decides where its artifacts go (it proxies them: `mlflow-artifacts:/...`); only a
        # local store (SQLite, a directory) gets the project's artifact directory.
        remote = uri.startswith(("http://", "https://", "databricks"))
        location = None if remote else artifact_location(root, params)
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # created meanwhile by a concurrent process
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


# --------------------------------------------------------------------------------------------------
# run owners


def _process_start(pid: int) -> str | None:
    """When PID started (psutil's create time): with the pid it names one process, even after the pid is
    reused. None when no such process runs."""
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return None


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the one that has a run open."""
    pid = os.getpid()
    return {OWNER_HOST: socket.gethostname(), OWNER_PID: str(pid), OWNER_START: _process_start(pid) or ""}


def owner_alive(tags: dict[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags still runs; None when this machine cannot tell
    (no owner tags, or another host: a GPU worker's run is that worker's business)."""
    if tags.get(OWNER_HOST) != socket.gethostname() or not tags.get(OWNER_PID, "").isdigit():
        return None
    pid, recorded = int(tags[OWNER_PID]), tags.get(OWNER_START)
    start = _process_start(pid)
    # A start in another format (clock ticks, before psutil) cannot be compared: the pid alone decides.
    return start is not None and (start == recorded or not recorded or "." not in recorded)


def reap_stale_runs(client, experiment_id: str) -> list[str]:
    """Mark KILLED every RUNNING run of the experiment whose owner process on this machine is gone."""
    reaped = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=200):
        if owner_alive(run.data.tags) is False:
            client.set_tag(
                run.info.run_id,
                KILLED,
                f"process {run.data.tags.get(OWNER_PID)} on {run.data.tags.get(OWNER_HOST)} died with the run open",
            )
            client.set_terminated(run.info.run_id, status="KILLED")
            reaped.append(run.info.run_id)
            logging.getLogger("textops").warning(
                "MLflow run %s was left RUNNING by a process that died (pid %s): marked KILLED",
                run.info.run_id,
                run.data.tags.get(OWNER_PID),
            )
    return reaped
