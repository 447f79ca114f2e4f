"""Where MLflow runs live: one function every stage uses, so training, evaluation, the registry and
serving always talk to the same store.
"""

from __future__ import annotations

import os
from pathlib import Path

from textops.config import Params


def tracking_uri(root: Path, params: Params) -> str:
    """MLFLOW_TRACKING_URI if set (a tracking server), else params.mlflow.tracking_uri.

    A relative SQLite path (`sqlite:///mlruns/mlflow.db`) is resolved against the project root, so the
    same store is used whatever the current directory (DVC runs stages from the root, tests elsewhere).
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    uri = params.mlflow.tracking_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        db = Path(root).resolve() / uri[len(prefix) :]
        db.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(db)
    if "://" not in uri and not Path(uri).is_absolute():  # a plain directory: the file store
        return str(Path(root).resolve() / uri)
    return uri


def artifact_location(root: Path, params: Params) -> str:
    """The artifact root for new experiments, as a file URI under the project root."""
    return (Path(root).resolve() / params.mlflow.artifact_location).as_uri()


def setup(root: Path, params: Params) -> str:
    """Point MLflow at the project's store and make sure the experiment exists; return the experiment id.

    Creating the experiment ourselves is what puts its artifacts under params.mlflow.artifact_location
    (the default would be ./mlartifacts relative to wherever the process runs).
    """
    import mlflow

    uri = tracking_uri(root, params)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(params.mlflow.experiment)
    if experiment is None:
        try:
            # A tracking server decides where its artifacts go (it may proxy them); only the local
            # default store gets the project's artifact directory.
            location = None if os.environ.get("MLFLOW_TRACKING_URI") else artifact_location(root, params)
            experiment_id = client.create_experiment(params.mlflow.experiment, artifact_location=location)
        except Exception:  # created meanwhile by a concurrent process
            experiment = client.get_experiment_by_name(params.mlflow.experiment)
            if experiment is None:
                raise
            experiment_id = experiment.experiment_id
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
