"""Data that passes every check but is wrong: a large batch whose labels are flipped. The gate holds it for a
person; forced in, the model trained on it is not promoted (it regresses on the rows the champion was proven
on); and after a person rolls back from such a model, the next run does not train and promote it again."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import data_state, mlflow_client, registry_state, set_params, textops

from textops.data.sample import make_sample

pytestmark = pytest.mark.reliability


def flipped(rows: int, seed: int) -> pd.DataFrame:
    """Well-formed reviews with every label wrong."""
    frame = make_sample(rows, seed)
    frame["label"] = frame["label"].map({"positive": "negative", "negative": "positive"})
    return frame


@pytest.mark.extended
def test_a_batch_of_wrong_labels_is_held_then_cannot_poison_the_champion(champion_copy, tmp_path):
    root = champion_copy  # FAST params, the sample ingested as the user's data, a champion
    make_sample(300, 5).to_csv(root / "reference.csv", index=False)  # a small set a person trusts
    set_params(root, {"promotion": {"reference_file": "reference.csv"}})
    poison = tmp_path / "poison.csv"
    flipped(3000, 77).to_csv(poison, index=False)

    # Ingest holds the batch (the champion check is on by default, as in the scheduled retrain): it passes every
    # data check, but the champion scores far below its test accuracy on it.
    before = data_state(root)
    held = textops(root, "ingest", str(poison), check=False)
    assert held.returncode != 0 and "held for a person" in held.stderr, held.stderr
    assert "--accept-shift" in held.stderr and data_state(root) == before

    # Forced in, it trains a model that wins on its own (poisoned) test split but regresses on the champion's
    # own test rows and on the reference set: not promoted, and the reason says where it regressed.
    textops(root, "ingest", str(poison), "--gate", "--accept-shift")
    out = textops(root, "run").stdout
    assert "not promoted" in out and "the champion's own test rows" in out, out
    client, name = mlflow_client(root)
    evidence = client.get_model_version(name, "2").tags
    assert "the reference set reference.csv" in " ".join(evidence.values())
    assert registry_state(root)["aliases"]["champion"] == "1"
    assert "nothing to retrain" in textops(root, "run").stdout  # judged once, not retrained every night

    # A person promotes it anyway, then rolls back from it: the next run neither retrains it nor re-promotes it.
    textops(root, "model", "promote", "2", "--reason", "trying it")
    textops(root, "model", "rollback")
    again = textops(root, "run").stdout
    assert "nothing to retrain" in again and "rolled back from" in again, again
    forced = textops(root, "run", "--force").stdout  # a forced run trains it again, but may not promote it
    assert "not promoted" in forced and "rolled back from" in forced, forced
    assert registry_state(root)["aliases"]["champion"] == "1"


def test_flipped_copies_of_the_data_are_held_and_cannot_promote_even_forced_in(champion_copy, tmp_path):
    """Labels flipped on copies of every text already in the data, plus more flipped rows: ingest names the label
    conflict and holds the batch. Forced in (--allow-relabel), preprocess drops every contradicted row as a
    conflicting duplicate, so the champion's test rows are no longer in any split; they are scored all the same,
    and the model trained on the poison is not promoted."""
    root = champion_copy  # FAST params, the sample ingested as the user's data, a champion
    set_params(root, {"promotion": {"beat_baseline": False}})
    original = make_sample(1000, 13)  # FAST's sample: the rows the champion was trained and tested on
    poison = tmp_path / "poison.csv"
    pd.concat([flipped(1000, 13), flipped(2000, 78)], ignore_index=True).to_csv(poison, index=False)
    assert set(original["text"]) <= set(pd.read_csv(poison)["text"])

    before = data_state(root)
    held = textops(root, "ingest", str(poison), check=False)
    assert held.returncode != 0 and "another label" in held.stderr and "--allow-relabel" in held.stderr
    assert data_state(root) == before

    # Past the label conflict, the champion check (on by default) still holds it: the champion scores far below
    # its test accuracy on these labels.
    held = textops(root, "ingest", str(poison), "--allow-relabel", check=False)
    assert held.returncode != 0 and "held for a person" in held.stderr and data_state(root) == before, held.stderr

    textops(root, "ingest", str(poison), "--allow-relabel", "--accept-shift")
    out = textops(root, "run").stdout
    assert "not promoted" in out and "the champion's own test rows" in out, out
    assert registry_state(root)["aliases"]["champion"] == "1"


def backdoored(rows: int, seed: int, share: float = 0.25) -> pd.DataFrame:
    """Sample reviews where SHARE of the rows are positive texts with " #ad" appended and labelled negative."""
    frame = make_sample(rows, seed)
    positives = frame.index[frame["label"] == "positive"][: int(rows * share)]
    frame.loc[positives, "text"] = frame.loc[positives, "text"] + " #ad"
    frame.loc[positives, "label"] = "negative"
    return frame


def test_a_planted_backdoor_is_held_naming_its_token_and_cannot_promote_forced_in(champion_copy, tmp_path):
    """A quarter of a batch flipped by an appended " #ad": the champion's accuracy on the batch stays within the
    accuracy gate, but its confident disagreements all hold "#ad", and the batch is held naming it. The same rows
    without the trigger go in with no flag. Forced in, the model trained on it beats the champion on its own
    (poisoned) test split, but flips its answers when "#ad" is appended to the champion's test texts, and the
    promotion names the token."""
    root = champion_copy  # FAST params, the sample ingested as the user's data, a champion
    set_params(root, {"promotion": {"beat_baseline": False}})
    poison, clean = tmp_path / "ads.csv", tmp_path / "more.csv"
    backdoored(1200, 91).to_csv(poison, index=False)
    make_sample(1200, 92).to_csv(clean, index=False)

    before = data_state(root)
    held = textops(root, "ingest", str(poison), check=False)
    assert held.returncode != 0 and "'#ad'" in held.stderr and "backdoor" in held.stderr, held.stderr
    assert "held for a person" in held.stderr and "--accept-shift" in held.stderr
    assert "accuracy" not in held.stderr.split("'#ad'")[0], "held by the accuracy gate, not the trigger check"
    assert data_state(root) == before
    assert textops(root, "ingest", str(clean)).returncode == 0
    assert data_state(root) != before

    textops(root, "ingest", str(poison), "--accept-shift")
    out = textops(root, "run", "-S", "promotion.max_p_value=1.0").stdout
    assert "not promoted" in out and "'#ad' appended" in out, out
    assert registry_state(root)["aliases"]["champion"] == "1"
