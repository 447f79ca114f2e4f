"""A new user's path: the demo first (`textops run` on an empty project), then their own file with no flag. It
replaces the demo (the demo's champion cannot judge real data, and the demo's rows must not train their model),
and the demo's data version comes back with `data checkout`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from helpers import FAST, FLOW, easy_reviews, make_project, mlflow_client, registry, set_params, textops


def test_your_own_data_after_the_demo_replaces_it_and_trains_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW, {"model": {"tiny": {"num_layers": 2}}})  # two layers: `distill` halves them
    assert "now the champion" in textops(root, "run").stdout
    raw = root / "data" / "raw"
    assert (raw / "demo.json").exists()
    # What the run itself wrote (data.dvc, dvc.lock, metrics/) is not a change of the code it ran.
    client, name = mlflow_client(root)
    assert client.get_run(client.get_model_version(name, "1").run_id).data.tags["textops.git.dirty"] == "false"

    # Their own reviews, labelled 0/1 (the demo says positive/negative), ingested with no flag; params.yaml says
    # under which licence their data is (each batch records it, and the model card shows it).
    set_params(root, {"dataset": {"license": "CC-BY-4.0"}})
    own = easy_reviews(480, seed=3)
    own["label"] = (own["label"] == "positive").astype(int)
    own.to_csv(tmp_path / "reviews.csv", index=False)
    out = textops(root, "ingest", str(tmp_path / "reviews.csv")).stdout
    assert "replaces the built-in demo sample (400 rows)" in out, out
    batch = out.split("-> ")[1].split()[0].split("/")[-1]
    assert sorted(p.name for p in raw.iterdir()) == [batch, batch.replace(".jsonl", ".source.json")]
    source = json.loads((raw / batch.replace(".jsonl", ".source.json")).read_text())
    assert source["source"] == "reviews.csv" and source["rows"] == 480 and source["format"] == "csv"
    assert source["license"] == "CC-BY-4.0"

    # The next model learns from their rows alone and is judged as a first champion, not against the demo's.
    textops(root, "run")
    assert registry(root)["champion"] == "2"
    clean = root / "artifacts" / "clean"
    assert json.loads((clean / "labels.json").read_text())["labels"] == ["0", "1"]
    texts = pd.concat(pd.read_parquet(clean / f"{s}.parquet") for s in ("train", "val", "test"))["text"]
    assert set(texts) <= set(own["text"])
    shown = json.loads(textops(root, "model", "show", "2").stdout)
    assert "the demo's champion" in shown["decision"]["reason"], shown["decision"]
    exported_model_agrees_with_predict(root, tmp_path, own["text"].head(20).tolist())
    distilled_student(root)

    # A second file of theirs is checked against their champion as usual: nothing is replaced any more.
    more = easy_reviews(200, seed=4)
    more["label"] = (more["label"] == "positive").astype(int)
    more.to_csv(tmp_path / "more.csv", index=False)
    assert "replaces" not in textops(root, "ingest", str(tmp_path / "more.csv"), "--commit").stdout
    assert len(list(raw.glob("batch-*.jsonl"))) == 2

    # A new class (2: questions) goes in with --allow-new-labels alone: the champion cannot be right about a label it
    # has never seen, so those rows are left out of its check (and counted), and the ordinary rows beside them judged.
    questions = pd.DataFrame({"text": [f"how do i return the item from order {i}?" for i in range(150)], "label": 2})
    mixed = pd.concat(
        [questions, easy_reviews(200, seed=5).assign(label=lambda f: (f.label == "positive").astype(int))]
    )
    mixed.to_csv(tmp_path / "questions.csv", index=False)
    assert "unknown label" in textops(root, "ingest", str(tmp_path / "questions.csv"), check=False).stderr
    textops(root, "ingest", str(tmp_path / "questions.csv"), "--allow-new-labels", "--commit")
    assert len(list(raw.glob("batch-*.jsonl"))) == 3

    # The demo's data version comes back whole, marker and all.
    textops(root, "data", "checkout", "--model", "1")
    assert (raw / "demo.json").exists() and len(list(raw.glob("batch-*.jsonl"))) == 1


def exported_model_agrees_with_predict(root: Path, tmp_path: Path, texts: list[str]) -> None:
    """Their champion leaves as a Hugging Face folder: transformers alone, in a fresh offline interpreter, loads it
    with the same labels and the probabilities `textops predict` gives on the PyTorch runtime; its card parses."""
    out = tmp_path / "hub"
    assert "export: v2" in textops(root, "export", str(out)).stdout
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["pipeline_tag"] == "text-classification" and header["license"] == "CC-BY-4.0"
    assert header["model-index"][0]["results"][0]["metrics"][0]["type"] == "accuracy"
    assert card == textops(root, "model", "show", "2", "--card").stdout.rstrip("\n") + "\n"
    client, name = mlflow_client(root)  # logged at registration, beside the decision report
    logged = client.download_artifacts(
        client.get_model_version(name, "2").run_id, "model_card/README.md", str(tmp_path)
    )
    assert yaml.safe_load(Path(logged).read_text().split("---\n")[1])["license"] == "CC-BY-4.0"
    assert textops(root, "export", str(out), check=False).returncode == 1  # not into a folder with files
    exported_data_card(root, out, client.get_model_version(name, "2").run_id, tmp_path)

    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    textops(root, "predict", str(tmp_path / "in.csv"), "-o", str(tmp_path / "ours.csv"), "-S", "serve.runtime=torch")
    ours = pd.read_csv(tmp_path / "ours.csv")
    code = (
        "import json, sys; from transformers import pipeline; "
        f"p = pipeline('text-classification', model={str(out)!r}, top_k=None); "
        "print(json.dumps(p(json.load(sys.stdin))))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = [sys.executable, "-c", code]
    proc = subprocess.run(
        args, input=json.dumps(texts), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    for row, scores in zip(ours.itertuples(), theirs, strict=True):
        for score in scores:
            assert abs(getattr(row, f"prob_{score['label']}") - score["score"]) < 1e-4, (row, scores)


def exported_data_card(root: Path, out: Path, run_id: str, tmp_path: Path) -> None:
    """The export carries the Croissant file of the data the version was trained on: the one its training run logged,
    byte for byte the project's own (the data has not changed since), which mlcroissant reads."""
    import mlcroissant as mlc

    from textops.core.lineage import RAW_MD5

    client, _ = mlflow_client(root)
    logged = Path(client.download_artifacts(run_id, "data/croissant.json", str(tmp_path / "card")))
    current = root / "artifacts" / "croissant.json"
    assert (out / "croissant.json").read_bytes() == logged.read_bytes() == current.read_bytes()
    raw_md5 = client.get_run(run_id).data.tags[RAW_MD5]
    assert json.loads(logged.read_text())["identifier"] == f"dvc-md5:{raw_md5}"
    train = pd.read_parquet(root / "artifacts" / "clean" / "train.parquet")
    assert len(list(mlc.Dataset(jsonld=str(current)).records("train"))) == len(train)


def distilled_student(root: Path) -> None:
    """`textops distill` halves their champion (v2, two layers) on its soft labels over the train split and the request
    log's texts (each once, none of the test split's) and registers the student as v3, the challenger, with its
    lineage and both latencies: one of the project's models, judged by the promotion rules."""
    from textops.core import lineage

    clean = root / "artifacts" / "clean"
    train, test = (pd.read_parquet(clean / f"{s}.parquet")["text"].tolist() for s in ("train", "test"))
    logged = ["a <EMAIL> wrote: the blender broke", "a <EMAIL> wrote: the blender broke", test[0], train[0], "fine"]
    log_dir = root / "logs" / "requests"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"time": "2026-12-07T10:00:00Z", "text": t, "label": "1"} for t in logged]
    (log_dir / "requests-20261207T100000-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    refused = textops(root, "distill", "--layers", "2", check=False)
    assert refused.returncode != 0 and "fewer than the champion's 2" in refused.stderr, refused.stderr
    out = textops(root, "distill", "-S", "train.epochs=1").stdout
    assert "distill: v2's 2 layers -> 1 (teacher layers 0)" in out and "2 from the request log" in out, out
    assert "v3 (challenger)" in out, out
    client, name = mlflow_client(root)
    student = client.get_model_version(name, "3")
    assert lineage.CHALLENGER_ALIAS in student.aliases
    run = client.get_run(student.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags[lineage.DISTILL_TEACHER] == "2" and tags[lineage.DISTILL_LAYERS] == "1"
    assert tags[lineage.DISTILL_TEACHER_LAYERS] == "2" and tags[lineage.DISTILL_TEMPERATURE] == "2.0"
    assert tags[lineage.DISTILL_TEXTS] == str(len(set(train)) + 2) and tags[lineage.DISTILL_LOG_TEXTS] == "2"
    assert (
        tags[lineage.STAGE] == "distill"
        and tags[lineage.CLEAN_MD5]
        == client.get_run(client.get_model_version(name, "2").run_id).data.tags[lineage.CLEAN_MD5]
    )
    student_ms = metrics[lineage.test_metric(lineage.LATENCY_P50)]
    assert student_ms > 0 and metrics[lineage.TEACHER_LATENCY_P50] > 0
    assert lineage.test_metric("macro_f1") in metrics  # evaluated like a training
    assert float(student.tags[lineage.evidence_tag("latency.p50_ms")]) == round(student_ms, 3)
    assert student.tags[lineage.evidence_tag("champion.version")] == "2"
