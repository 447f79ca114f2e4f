"""A landing file's life after an ingest: in, to ingested/; refused for its data, to held/ with the reason."""

from __future__ import annotations

from pathlib import Path

from textops.core.config import Params
from textops.lifecycle.landed import landing_keys, named_in, settle_ingested, settle_refused


def landed(tmp_path: Path, params: Params, *names: str) -> list[Path]:
    landing = tmp_path / params.data.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    for name in names:
        (landing / name).write_text("text,label\nfine,positive\n")
    return [landing / name for name in names]


def test_a_refusal_holds_the_files_it_names_with_the_reason_and_the_rest_keep_waiting(tmp_path):
    params = Params()
    bad, good = landed(tmp_path, params, "bad.csv", "good.csv")
    reason = "bad.csv: unknown label(s) ['positve']; the data so far has ['negative', 'positive']."
    held = settle_refused(tmp_path, params, [bad, good], reason)
    assert [p.name for p in held] == ["bad.csv"] and held[0].parent.name == "held"
    assert held[0].read_text().startswith("text,label")
    assert Path(f"{held[0]}.reason.txt").read_text().strip() == reason
    assert [p.name for p in landing_keys(tmp_path, params).values()] == ["good.csv"]  # still waiting

    # A second file of the same name refused later: both are kept.
    (again,) = landed(tmp_path, params, "bad.csv")
    assert settle_refused(tmp_path, params, [again], reason)[0].name != "bad.csv"
    assert len(list((bad.parent / "held").glob("bad*.csv"))) == 2


def test_what_went_in_moves_to_ingested_and_files_outside_the_landing_directory_stay(tmp_path):
    params = Params()
    (inside,) = landed(tmp_path, params, "reviews.csv")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("text,label\n")
    moved = settle_ingested(tmp_path, params, [inside, outside])
    assert moved == [inside.parent / "ingested" / "reviews.csv"] and moved[0].exists()
    assert outside.exists() and not inside.exists() and landing_keys(tmp_path, params) == {}


def test_a_refusal_names_a_file_only_as_a_whole_word():
    assert named_in(Path("landing/a.csv"), "with a.csv, b.csv the cleaned data would fail")
    assert named_in(Path("landing/a.csv"), "landing/a.csv: no text column")
    assert not named_in(Path("landing/a.csv"), "data.csv: no text column")
    assert not named_in(Path("landing/data"), "data/ differs from the data version data.dvc names")
