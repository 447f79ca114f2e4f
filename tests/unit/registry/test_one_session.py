"""One MLflow session per command (issue 34): the store is opened once by the entry point, the stages take that
session, and the aliases are read once (a snapshot) until the session moves one."""

from __future__ import annotations

from helpers import store_opens

from textops.adapters.tracking import connect, session_for
from textops.core import lineage
from textops.core.config import Params
from textops.registry.noop import nothing_to_retrain
from textops.registry.registry import champion, set_alias


def test_a_command_opens_the_store_once_and_reads_the_champion_once(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    params = Params()
    session = connect(tmp_path, params)  # a new store: seeded, MLflow's engine made (once per process)
    with store_opens() as opens:
        again = connect(tmp_path, params)
    # Checking the store and repairing a moved project's share one open of the file; MLflow's own connection pool
    # serves the rest.
    assert len(opens) == 1, opens
    with store_opens() as opens:
        assert session_for(tmp_path, params, session) is session  # a stage handed the session opens nothing
        assert nothing_to_retrain(tmp_path, params, session) is None  # no data version yet
        assert champion(session) is None
    assert len(opens) <= 1, opens  # at most MLflow's registry store making its connection pool

    # The champion is a snapshot of the session: moved by someone else (another session), this one still sees the
    # version it first read, the one its no-op check judged; moved through this session, it reads it again.
    client = again.client
    client.create_registered_model(again.model_name)
    version = client.create_model_version(again.model_name, source=str(tmp_path / "model")).version
    set_alias(again, lineage.CHAMPION_ALIAS, version)
    assert champion(again).version == version
    assert champion(session) is None
    set_alias(session, lineage.CHALLENGER_ALIAS, version)
    assert champion(session).version == version
