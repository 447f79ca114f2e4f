"""The champion's moves in a real MLflow registry (a SQLite store in the test's folder, conftest.py): a promotion
moves the alias, then appends to the history; a rollback replays that history (two rollbacks go two champions back,
not back and forth), marks the data it left when it changed data, and refuses what would change nothing."""

from __future__ import annotations

import json

import pytest

from textops.adapters.tracking import connect
from textops.core import lineage
from textops.core.config import Params
from textops.core.errors import RegistryError
from textops.registry import registry
from textops.registry.registry import (
    champion,
    history,
    move_champion,
    promote,
    rollback,
    rolled_back_from,
    rolled_back_versions,
)

PARAMS = Params()


def state(root) -> tuple[str | None, list[tuple[str, str]]]:
    """The champion's version and the history's (version, kind) pairs, read by a new session (no snapshot)."""
    session = connect(root, PARAMS, experiment=False)
    current = champion(session)
    return (str(current.version) if current else None), [(e["version"], e["kind"]) for e in history(session)]


def test_a_manual_promotion_needs_a_reason_and_an_existing_version(registry_project):
    assert state(registry_project) == (None, [])
    with pytest.raises(RegistryError, match="needs a reason"):
        promote(registry_project, PARAMS, "2", "  ")
    with pytest.raises(RegistryError, match="has no version '9'"):
        promote(registry_project, PARAMS, "9", "a person said so")
    assert state(registry_project) == (None, [])  # refused: nothing moved, nothing recorded

    said = promote(registry_project, PARAMS, "2", "the reviewers liked it")
    assert said.startswith(f"{PARAMS.mlflow.registered_model} v2 is now the champion (manual: the reviewers liked it)")
    assert state(registry_project) == ("2", [("2", "manual")])
    session = connect(registry_project, PARAMS, experiment=False)
    tags = session.client.get_model_version(session.model_name, "2").tags
    assert tags[lineage.MANUAL_PROMOTION] == "the reviewers liked it"


def test_rollback_replays_the_history_two_champions_back_and_marks_the_data_it_left(registry_project):
    session = connect(registry_project, PARAMS, experiment=False)
    for version in ("1", "2", "3"):
        move_champion(session, version, "auto", f"beat v{int(version) - 1}")
    assert state(registry_project) == ("3", [("1", "auto"), ("2", "auto"), ("3", "auto")])

    assert rollback(registry_project, PARAMS).endswith("champion rolled back from v3 to v2")
    assert rollback(registry_project, PARAMS).endswith("champion rolled back from v2 to v1")  # not back to v3
    assert state(registry_project)[0] == "1"
    with pytest.raises(RegistryError, match="no previous champion in the promotion history"):
        rollback(registry_project, PARAMS)
    assert state(registry_project)[0] == "1"

    session = connect(registry_project, PARAMS, experiment=False)
    entries = history(session)[-2:]
    assert [(e["version"], e["from"]) for e in entries] == [("2", "3"), ("1", "2")]
    # v3 -> v2 kept the data version (the person rolled back from the model): no mark; v2 -> v1 changed it, and
    # v2's data is suspect from now on (a model trained on it again waits for a person).
    assert "from_raw_md5" not in entries[0]
    v2_data = session.client.get_run(session.client.get_model_version(session.model_name, "2").run_id).data.tags
    assert rolled_back_from(session) == {v2_data[lineage.RAW_MD5]: "2"}
    assert rolled_back_versions(session) == {"2", "3"}


def test_a_rollback_to_a_version_named_pushes_it_and_the_next_rollback_comes_back(registry_project):
    session = connect(registry_project, PARAMS, experiment=False)
    move_champion(session, "1", "auto", "first")
    move_champion(session, "2", "auto", "better")
    rollback(registry_project, PARAMS, to="3")  # not on the stack: pushed
    assert state(registry_project)[0] == "3"
    rollback(registry_project, PARAMS)
    assert state(registry_project)[0] == "2"
    with pytest.raises(RegistryError, match="v2 is already the champion"):
        rollback(registry_project, PARAMS, to="2")


def test_a_rollback_without_a_champion_is_refused_and_changes_nothing(registry_project):
    with pytest.raises(RegistryError, match="has no champion: nothing to roll back"):
        rollback(registry_project, PARAMS)
    assert state(registry_project) == (None, [])


def test_an_alias_moved_before_its_history_entry_is_the_newest_champion(registry_project):
    """`move_champion` moves the alias first: a process killed before the history write (or an alias moved outside
    textops) leaves a history one move short, and rollback still goes back from the alias, to the history's top."""
    session = connect(registry_project, PARAMS, experiment=False)
    move_champion(session, "1", "auto", "first")
    move_champion(session, "2", "auto", "better")
    session.client.set_registered_model_alias(session.model_name, lineage.CHAMPION_ALIAS, "3")  # the kill's state
    assert state(registry_project) == ("3", [("1", "auto"), ("2", "auto")])
    assert rollback(registry_project, PARAMS).endswith("rolled back from v3 to v2")


def test_the_history_keeps_its_newest_entries_with_short_reasons(registry_project, monkeypatch):
    monkeypatch.setattr(registry, "HISTORY_MAX", 3)  # a tag value is limited: the history is a window
    session = connect(registry_project, PARAMS, experiment=False)
    for version in ("1", "2", "3", "1", "2"):
        move_champion(session, version, "auto", "x" * 500)
    kept = history(session)
    assert [e["version"] for e in kept] == ["3", "1", "2"] and {len(e["reason"]) for e in kept} == {200}
    raw = session.client.get_registered_model(session.model_name).tags[lineage.CHAMPION_HISTORY]
    assert json.loads(raw) == kept
