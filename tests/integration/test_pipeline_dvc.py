"""The DVC pipeline as a user runs it: `dvc repro` on the sample, then again with nothing to do."""

from __future__ import annotations

import pandas as pd
from helpers import dvc, textops


def test_repro_validate_runs_once_then_does_nothing(project):
    textops(project, "sample")
    first = dvc(project, "repro", "validate", check=True).stdout
    assert "Running stage 'preprocess'" in first and "Running stage 'validate'" in first
    assert (project / "dvc.lock").exists() and (project / "metrics" / "validate.json").exists()
    second = dvc(project, "repro", "validate", check=True).stdout
    assert "Running stage" not in second
    assert "didn't change" in second or "up to date" in second
    # A params change that preprocess reads reruns it; metrics diff shows it.
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("lowercase: false", "lowercase: true"))
    third = dvc(project, "repro", "validate", check=True).stdout
    assert "Running stage 'preprocess'" in third
    train = pd.read_parquet(project / "artifacts" / "clean" / "train.parquet")
    assert (train["text"] == train["text"].str.lower()).all()


def test_repro_on_sst2(project, sst2):
    """The real SST-2 data goes through preprocess and the Great Expectations gate."""
    rows = pd.read_csv(sst2 / "train.tsv", sep="\t", quoting=3).sample(20_000, random_state=0)
    src = project.parent / "sst2.tsv"
    rows.to_csv(src, sep="\t", index=False)
    textops(project, "ingest", str(src), "--text-column", "sentence", "--label-column", "label")
    dvc(project, "repro", "validate", check=True)
    stats = (project / "metrics" / "preprocess.json").read_text()
    assert '"labels": [\n    "0",\n    "1"\n  ]' in stats
