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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textops.core.config import Params
from textops.core.env import backup_sqlite, copy_if_absent, template_dir
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
        import sqlite3

        db = Path(uri.removeprefix("sqlite:///"))
        if not db.exists():
            return  # MLflow creates it
        try:
            con = sqlite3.connect(db, timeout=timeout)
            try:
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a damaged file fails here, at once
                con.execute("BEGIN IMMEDIATE")  # the write lock MLflow will need
                con.rollback()
            finally:
                con.close()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StateError(f"the MLflow store {db} cannot be used ({exc}). Nothing was changed.") from exc
            raise StateError(
                f"the MLflow store {db} cannot be written ({exc}; waited {timeout:.0f} s): another process holds "
                "it (an open `sqlite3` shell, a stuck `mlflow ui`?). Nothing was changed; try again once it is free."
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise StateError(damaged_store(str(db), exc)) from exc


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


def artifact_location(root: Path, params: Params) -> str:
    """The artifact root for new experiments, as a file URI under the project root."""
    return (Path(root).resolve() / params.mlflow.artifact_location).as_uri()


@dataclass(frozen=True)
class Session:
    """A project's MLflow store: its URI, a client bound to it (tracking and registry), the experiment and the
    registered model's name. Stages call the client; MLflow's fluent API (`log_model`, `start_run`,
    `pyfunc.load_model` of a `models:/` URI) only inside `with session.active():`."""

    uri: str
    client: MlflowClient
    experiment_id: str | None
    model_name: str

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
    """Open the project's store: check that it can be used (a clear error, nothing changed, when not); with
    EXPERIMENT also make sure the experiment exists and mark KILLED the runs of dead processes."""
    from mlflow import MlflowClient

    uri = tracking_uri(root, params)
    check_store(uri)
    fresh = not store_exists(uri) and not seed_store(uri)
    relocate_store(root, params)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if fresh:  # MLflow creates and migrates it now; keep a copy for the next new project
        client.search_experiments(max_results=1)
        backup_sqlite(Path(uri.removeprefix("sqlite:///")), template_dir("mlflow", "mlflow") / STORE_TEMPLATE)
    experiment_id = ensure_experiment(client, root, params, uri) if experiment else None
    if experiment_id is not None:
        reap_stale_runs(client, experiment_id)
    return Session(uri, client, experiment_id, params.mlflow.registered_model)


# Where MLflow's SQL store keeps absolute artifact locations of a local store.
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


def relocate_store(root: Path, params: Params) -> str | None:
    """Keep the project's own SQLite store usable after the project directory moved (a new clone path, a renamed
    folder): MLflow records artifact locations as absolute paths, so every run, logged model and model version
    would point at the old place. When the experiment's artifact location names another project directory that
    is gone (moved) or still there (copied: the copy's own artifacts were copied with it), rewrite that prefix to
    this one (one transaction) and say so; None when nothing moved."""
    import sqlite3

    from textops.core.errors import StateError

    db = relative_sqlite_path(params.mlflow.tracking_uri)
    if db is None or os.environ.get("MLFLOW_TRACKING_URI") or not (Path(root) / db).exists():
        return None  # a server or a store you chose: its locations are yours
    new_root = Path(root).resolve()
    expected = artifact_location(root, params)
    con = sqlite3.connect(Path(root) / db, timeout=10)
    try:
        row = con.execute("SELECT artifact_location FROM experiments WHERE name = ?", (params.mlflow.experiment,))
        found = row.fetchone()
        old = found[0] if found else None
        suffix = "/" + params.mlflow.artifact_location.strip("/")
        if not old or old == expected or not old.startswith("file://") or not old.endswith(suffix):
            return None
        old_root = old.removeprefix("file://")[: -len(suffix)]
        # The store file is inside this project (params cannot point it elsewhere), so an original that still
        # exists means a copy (`cp -a project copy`): left as it is, the copy would write its models into the
        # original's artifacts, and lose its champion when the original is deleted.
        copied = Path(old_root).exists()
        if copied and not (new_root / params.mlflow.artifact_location).is_dir():
            raise StateError(
                f"this project's MLflow store ({db}) records its models in {old_root}: it was copied from there "
                f"without its {params.mlflow.artifact_location}/. Copy that folder "
                "along (or copy the whole project, e.g. `cp -a`), or remove the copied store to start an empty one; "
                "textops will not write into another project's artifacts."
            )
        with con:
            for table, column in LOCATION_COLUMNS:
                for before, after in ((f"file://{old_root}/", f"file://{new_root}/"), (f"{old_root}/", f"{new_root}/")):
                    pattern = before.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                    con.execute(
                        f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) '
                        f"WHERE \"{column}\" LIKE ? ESCAPE '\\'",
                        (after, len(before) + 1, pattern),
                    )
    except sqlite3.OperationalError:
        return None  # an older or newer MLflow schema: leave it to MLflow
    finally:
        con.close()
    if copied:
        message = (
            f"the project was copied from {old_root}: this copy's MLflow store now points at its own "
            f"artifacts in {new_root} (the original is untouched)"
        )
    else:
        message = f"the project moved from {old_root} to {new_root}: its MLflow store now points at the new place"
    logging.getLogger("textops").warning(message)
    return message


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
