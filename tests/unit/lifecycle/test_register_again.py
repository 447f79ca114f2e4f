"""`textops register` of a run that has a version already (by hand after a hold, or after a kill between the
registration and the alias moves): the decision is written again over that version, never a second version of the
same run; the champion's own run is refused."""

from __future__ import annotations

import mlflow
import pytest

from textops.adapters.tracking import Session
from textops.core import lineage
from textops.core.errors import RegistryError
from textops.registry.registry import registered_before, write_version


def test_a_run_registered_again_keeps_its_one_version_and_the_new_decision(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri, uri)
    session = Session(uri, client, client.create_experiment("e"), "m")
    runs = [client.create_run(session.experiment_id).info.run_id for _ in range(2)]
    client.create_registered_model("m")
    held = {lineage.DECISION: "rejected", lineage.evidence_tag("champion.broken"): "cannot load", "keep": "x"}
    client.create_model_version("m", f"{tmp_path}/a", run_id=runs[0])  # the champion's run
    client.create_model_version("m", f"{tmp_path}/b", run_id=runs[1], tags=held)  # held for a person
    client.set_registered_model_alias("m", lineage.CHAMPION_ALIAS, "1")
    assert registered_before(session, "no-such-run") is None

    before = registered_before(session, runs[1])
    assert before is not None and str(before.version) == "2"
    decided = {lineage.DECISION: "promoted", lineage.evidence_tag("champion.accuracy"): "0.8"}
    assert write_version(session, f"runs:/{runs[1]}/model", decided, before) == "2"
    assert sorted(str(v.version) for v in client.search_model_versions("name = 'm'")) == ["1", "2"]  # no third
    tags = client.get_model_version("m", "2").tags
    assert tags[lineage.DECISION] == "promoted" and tags[lineage.evidence_tag("champion.accuracy")] == "0.8"
    assert lineage.evidence_tag("champion.broken") not in tags and tags["keep"] == "x"  # the old comparison's gone

    with pytest.raises(RegistryError, match="v1, the champion: nothing to register"):
        registered_before(session, runs[0])
