"""Batch scoring on a real Ray cluster: a head and a second node started as separate processes on 127.0.0.1
(`ray start --head`, `ray start --address`), `textops predict --engine ray --address` scoring a file through
model-holding actors on both nodes with the same rows, order, labels and probabilities as the in-process path,
and a directory of files into a directory of Parquet files. The cluster is stopped after the test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import (
    FLOW,
    TEXTS,
    data_state,
    free_port,
    in_process,
    mlflow_client,
    sampled_project,
    textops,
    wait_for,
)

from textops.core import lineage

pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install -e '.[ray]')")
pytestmark = pytest.mark.slow


def alive_nodes(address: str) -> int:
    code = f"import ray; ray.init(address={address!r}); print(sum(n['Alive'] for n in ray.nodes()))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 and proc.stdout.strip() else 0


@contextlib.contextmanager
def ray_cluster(head_cpus: int, node_cpus: int):
    """A Ray head and a second node on 127.0.0.1, each its own process group: (address, [head, node] processes)."""
    ray = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's sockets need a short path
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    procs = [
        subprocess.Popen(
            [
                ray,
                "start",
                "--head",
                "--port",
                str(port),
                "--num-cpus",
                str(head_cpus),
                "--temp-dir",
                temp,
                "--include-dashboard=false",
                *common,
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    address = f"127.0.0.1:{port}"
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 300, "the Ray head")
        procs.append(
            subprocess.Popen(
                [ray, "start", "--address", address, "--num-cpus", str(node_cpus), *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for(lambda: alive_nodes(address) == 2, 300, "two Ray nodes", interval=3)
        yield address, procs
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    """A Ray head (1 CPU: room for one actor) and a second node (2 CPUs: the other actor and the reads): two actors
    of one CPU each cannot both sit on one node."""
    with ray_cluster(1, 2) as (address, _):
        yield address


def ray_predict(root: Path, source: Path, output: Path, address: str, *args: str, **options):
    """`textops predict SOURCE -o OUTPUT --engine ray --address ADDRESS ARGS` in ROOT (helpers.textops)."""
    engine = ("--engine", "ray", "--address", address)
    return textops(root, "predict", str(source), "-o", str(output), *engine, *args, **options)


def test_predict_on_two_ray_nodes_matches_the_in_process_path(champion_template, cluster, tmp_path):
    root = champion_template
    # 4,000 rows (~250 KB): read in blocks, spread over the actors of both nodes
    texts = [f"{TEXTS[i % len(TEXTS)]} ({i})" for i in range(4000)]
    frame = pd.DataFrame({"id": [f"{i:04d}" for i in range(4000)], "text": texts})
    # One reading rule on both paths (textops.data.texts): `NA`, `null`, `None`, `N/A` are texts; an empty cell,
    # spaces and a blank line are rows of no text, left out and counted alike; a formula is written neutralized.
    frame.loc[7:10, "text"] = ["NA", "null", "None", "N/A"]
    frame.loc[11:13, "text"] = ["", "   ", '=HYPERLINK("http://x","y")']
    source = tmp_path / "in.csv"
    lines = frame.to_csv(index=False).splitlines(keepends=True)
    source.write_text("".join(lines[:30] + ["\n"] + lines[30:]))
    kept = frame.drop(index=[11, 12])
    written = kept["text"].where(kept.index != 13, "'" + kept["text"])

    out = textops(root, "predict", str(source), "-o", str(tmp_path / "local.csv")).stdout
    assert "3998 rows scored" in out and "(3 row(s) with an empty or blank text left out)" in out, out
    out = ray_predict(
        root, source, tmp_path / "ray.csv", cluster, "-S", "ray.actors=2", "-S", "ray.batch_size=100"
    ).stdout
    assert "3998 rows scored" in out and "2 node(s)" in out, out  # both nodes' actors did work
    assert "(3 row(s) with an empty or blank text left out)" in out, out
    local = pd.read_csv(tmp_path / "local.csv", dtype={"id": str}, keep_default_na=False)
    remote = pd.read_csv(tmp_path / "ray.csv", dtype={"id": str}, keep_default_na=False)
    assert list(remote.columns) == list(local.columns)
    assert remote["id"].tolist() == local["id"].tolist() == kept["id"].tolist()
    assert remote["text"].tolist() == local["text"].tolist() == written.tolist()
    assert remote["label"].tolist() == local["label"].tolist()
    probs = [c for c in local.columns if c.startswith("prob_")]
    assert np.allclose(remote[probs].to_numpy(), local[probs].to_numpy(), atol=1e-5)
    assert not list(tmp_path.glob(".*.part"))

    # A .txt file is a text per line on Ray as in-process (tests/unit/data/test_texts.py has the local side).
    (tmp_path / "lines.txt").write_text("NA\n\na fine film\n  \nnull\n")
    out = ray_predict(root, tmp_path / "lines.txt", tmp_path / "lines.csv", cluster).stdout
    assert "3 rows scored" in out and "(2 row(s) with an empty or blank text" in out, out
    assert pd.read_csv(tmp_path / "lines.csv", keep_default_na=False)["text"].tolist() == ["NA", "a fine film", "null"]

    # A directory of files (two formats) in, a directory of Parquet files out, every row once.
    folder = tmp_path / "incoming"
    folder.mkdir()
    kept.iloc[:1200].to_csv(folder / "a.csv", index=False)
    kept.iloc[1200:].to_json(folder / "b.jsonl", orient="records", lines=True)
    ray_predict(root, folder, tmp_path / "scored", cluster, "-S", "ray.actors=2")
    scored = pd.read_parquet(tmp_path / "scored")
    assert sorted(scored["id"]) == sorted(kept["id"]) and set(scored["label"]) <= set(local["label"])

    # An output directory that holds anything is refused; with --overwrite only the earlier part files go.
    (tmp_path / "scored" / "notes.txt").write_text("mine")
    (tmp_path / "scored" / "sub").mkdir()
    (tmp_path / "scored" / "sub" / "kept.csv").write_text("text\nmine\n")
    again = [*("predict", str(folder), "-o", str(tmp_path / "scored")), *("--engine", "ray", "--address", cluster)]
    refused = textops(root, *again, check=False)
    assert refused.returncode != 0 and "is not empty" in refused.stderr and "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    parts = sorted(p.name for p in (tmp_path / "scored").glob("part-*.parquet"))
    textops(root, *again, "--overwrite", "-S", "ray.actors=1")
    assert (tmp_path / "scored" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "scored" / "sub" / "kept.csv").read_text() == "text\nmine\n"
    rescored = pd.concat(pd.read_parquet(p) for p in (tmp_path / "scored").glob("part-*.parquet"))
    assert sorted(rescored["id"]) == sorted(kept["id"]), "every row once: the earlier parts were replaced"
    assert parts and not list(tmp_path.glob(".scored.part-*"))


def test_a_cluster_too_small_for_the_actors_is_a_message_not_a_hang(champion_template, cluster, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(source, index=False)
    proc = ray_predict(champion_template, source, tmp_path / "out.csv", cluster, "-S", "ray.actors=3", check=False)
    assert proc.returncode != 0 and "ray.actors" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out.csv").exists()


def test_an_address_where_no_cluster_answers_is_a_message_not_a_wait(champion_template, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(source, index=False)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc = ray_predict(champion_template, source, tmp_path / "out.csv", address, check=False, timeout=300)
    assert proc.returncode != 0 and f"nothing answers at {address}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out.csv").exists()


def test_tune_runs_trials_of_the_train_stage_on_the_cluster_and_applies_the_best(cluster, tmp_path_factory):
    """`textops tune` on the two-node cluster: every trial a child MLflow run of one parent run, ASHA's stops ended
    KILLED, the best written into params.yaml with --apply; no model registered, the data untouched. Then a second
    search stopped by Ctrl-C applies nothing and leaves no run RUNNING."""
    space = "{learning_rate: {loguniform: [1.0e-4, 3.0e-3]}, epochs: {int: [1, 2]}, batch_size: {choice: [16, 32]}}"
    with sampled_project(tmp_path_factory, "tune", {**FLOW, "train": {**FLOW["train"], "save_steps": None}}) as root:
        textops(root, "preprocess")
        data = data_state(root)
        before_train = yaml.safe_load((root / "params.yaml").read_text())["train"]
        out = textops(
            root,
            "tune",
            "--address",
            cluster,
            "--apply",
            "-S",
            "tune.trials=3",
            "-S",
            "tune.max_concurrent=2",
            "-S",
            f"tune.space={space}",
        ).stdout
        assert len([line for line in out.splitlines() if line.startswith("tune: trial ")]) == 3, out
        assert "tune: best val macro_f1" in out, out

        client, name = mlflow_client(root)
        experiment = client.get_experiment_by_name("textops-tune")
        runs = client.search_runs([experiment.experiment_id])
        parents = [r for r in runs if r.data.tags.get(lineage.STAGE) == "tune"]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        parent = parents[0]
        trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(trials) == 3 and all(r.data.tags[lineage.STAGE] == "tune-trial" for r in trials)
        assert all(r.info.status != "RUNNING" for r in trials)
        stopped = [r for r in trials if r.data.tags[lineage.TUNE_STOPPED_EARLY] == "true"]
        assert all(r.info.status in ("KILLED", "FAILED") for r in stopped)  # ASHA's stops ended, not RUNNING
        # the first trial is the current params: tiny's preset learning rate and batch, inside the space
        assert any(json.loads(r.data.tags[lineage.TUNE_CONFIG])["learning_rate"] == 5e-4 for r in trials)
        best = parent.data.metrics["best_val_macro_f1"]
        finished = [r.data.metrics["best_val_macro_f1"] for r in trials if "best_val_macro_f1" in r.data.metrics]
        assert finished and best >= max(finished) - 1e-9
        assert parent.data.tags["textops.data.clean_md5"]  # the data version searched on
        artifacts = {f.path for f in client.list_artifacts(parent.info.run_id, "tune")}
        assert {"tune/trials.csv", "tune/best_params.json", "tune/tune_trials.png"} <= artifacts

        best_params = json.loads(
            Path(
                client.download_artifacts(parent.info.run_id, "tune/best_params.json", str(root / ".textops"))
            ).read_text()
        )
        applied = yaml.safe_load((root / "params.yaml").read_text())["train"]
        start = next(
            json.loads(r.data.tags[lineage.TUNE_CONFIG])
            for r in trials
            if json.loads(r.data.tags[lineage.TUNE_CONFIG])["learning_rate"] == 5e-4
        )
        # --apply writes what the search changed; a value the current params already train with (a preset's null
        # resolved) stays as written, so a later change of base model still gets its own preset.
        for key, value in best_params.items():
            if value == start[key]:
                assert applied[key] == before_train[key], (key, applied, before_train)
            elif isinstance(value, float):
                assert applied[key] == pytest.approx(value, rel=1e-2)
            else:
                assert applied[key] == value
        assert ("+++ b/params.yaml" in out) == (best_params != start), out
        assert client.search_model_versions(f"name = '{name}'") == []  # trials never register
        assert data_state(root) == data
        assert not any((root / ".textops" / "tune").iterdir())  # the trials' checkpoints are gone
        interrupted_search(root, cluster, client, experiment.experiment_id, space)


def interrupted_search(root: Path, cluster: str, client, experiment_id: str, space: str) -> None:
    """Ctrl-C once a trial of a second `tune --apply` runs: exit 130, params.yaml byte for byte as it was, no run
    left RUNNING (Ray Tune's own Ctrl-C handler handed back the trials so far as a finished search, exit 0, and
    --apply pinned the presets; SIGTERM ended in Ray's abort dump with trial runs left RUNNING)."""
    before = (root / "params.yaml").read_bytes()
    argv = [str(Path(sys.executable).with_name("textops")), "tune", "--address", cluster, "--apply"]
    argv += ["-S", "tune.trials=4", "-S", "tune.max_concurrent=1", "-S", f"tune.space={space}"]
    # Its own process group, as a terminal's foreground job: Ctrl-C is SIGINT to the whole group (tests/reliability/
    # test_polite_stop.py); SIGINT's default handler, whatever the runner passes down.
    proc = subprocess.Popen(
        argv,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:

        def a_trial_runs() -> bool:
            runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
            return any(r.data.tags.get(lineage.STAGE) == "tune-trial" for r in runs) or proc.poll() is not None

        wait_for(a_trial_runs, 600, "a trial run of the second search", interval=0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (out, err)
    assert "stopped by Ctrl-C (SIGINT)" in err and "Traceback" not in err, err
    assert (root / "params.yaml").read_bytes() == before  # nothing applied
    runs = client.search_runs([experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}, [(r.info.run_name, r.info.status) for r in runs]
    parents = [r for r in runs if r.data.tags.get(lineage.STAGE) == "tune"]
    assert sorted(r.info.status for r in parents) == ["FINISHED", "KILLED"]


def test_the_batch_score_flow_scores_a_directory_on_the_cluster(champion_template, cluster, tmp_path):
    """The `batch-score` deployment's flow: a directory in, Parquet out on the cluster ray.address names; an empty
    input is "nothing to score", not a failure; paths outside the project and an output that exists are refused
    before anything is read or written."""
    root = champion_template  # shared: this test's folders carry its name and are removed afterwards
    folder, empty, scored = root / "incoming-flow-test", root / "empty-flow-test", root / "scored-flow-test"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "results.csv").write_text("mine")
    try:
        folder.mkdir(), empty.mkdir()
        pd.DataFrame({"text": TEXTS * 20}).to_csv(folder / "a.csv", index=False)
        overrides = [f"ray.address={cluster}", "ray.actors=2"]
        code = (
            "from textops.flows.scale import batch_score\n"
            "def refusal(**kwargs):\n"
            "    try:\n"
            "        batch_score(overrides=overrides, **kwargs)\n"
            "    except Exception as exc:\n"
            "        return str(exc)\n"
            f"overrides = {overrides!r}\n"
            f"r = batch_score(input={folder.name!r}, output={scored.name!r}, overrides=overrides)\n"
            f"e = batch_score(input={empty.name!r}, overrides=overrides)\n"
            f"out = refusal(input={folder.name!r}, output={str(outside)!r})\n"
            f"up = refusal(input='../outside', output='scored-elsewhere')\n"
            f"again = refusal(input={folder.name!r}, output={scored.name!r})\n"
            "print(json.dumps({'r': r, 'e': e, 'out': out, 'up': up, 'again': again}))\n"
        )
        result = in_process(root, code)
        assert result["r"]["rows"] == len(TEXTS) * 20 and result["e"] == {"rows": 0, "output": None}, result
        frame = pd.read_parquet(scored)
        assert len(frame) == len(TEXTS) * 20 and frame["label"].notna().all()
        assert "is outside the project" in result["out"] and "is outside the project" in result["up"], result
        assert "exists already" in result["again"], result
        assert [p.name for p in outside.iterdir()] == ["results.csv"] and not (root / "scored-elsewhere").exists()
        assert sorted(p.name for p in scored.iterdir()) == sorted(p.name for p in scored.glob("part-*.parquet"))
        assert not (root / "scored").exists()
    finally:
        for path in (folder, empty, scored):
            shutil.rmtree(path, ignore_errors=True)


def test_a_node_killed_mid_predict_ends_in_a_complete_output_or_a_clear_failure(champion_template, tmp_path):
    """SIGKILL the second node (its raylet and its actor) while `predict --engine ray` scores: Ray restarts the actor
    on the head, which has room for it, and retries its blocks; the output is then every row once, in order, with
    the in-process answers. Were it to fail instead, it must say so and leave no output, never a partial file."""
    texts = [f"{TEXTS[i % len(TEXTS)]} ({i})" for i in range(40000)]
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": texts}).to_csv(source, index=False)
    textops(champion_template, "predict", str(source), "-o", str(tmp_path / "local.csv"))
    output, part = tmp_path / "ray.csv", tmp_path / ".ray.csv.part"
    with ray_cluster(3, 1) as (address, procs):
        cmd = [
            str(Path(sys.executable).with_name("textops")),
            "predict",
            str(source),
            "-o",
            str(output),
            "--engine",
            "ray",
            "--address",
            address,
            "-S",
            "ray.actors=2",
            "-S",
            "ray.batch_size=100",
        ]
        proc = subprocess.Popen(cmd, cwd=champion_template, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(
                lambda: proc.poll() is not None or (part.exists() and part.stat().st_size > 0),
                900,
                "the first scored rows",
            )
            assert proc.poll() is None, "predict ended before the node could be killed: " + proc.stderr.read()
            os.killpg(procs[1].pid, signal.SIGKILL)  # the second node: its raylet and its worker processes
            stdout, stderr = proc.communicate(timeout=1800)
        finally:
            if proc.poll() is None:
                proc.kill()
    if proc.returncode == 0:
        local = pd.read_csv(tmp_path / "local.csv", keep_default_na=False)
        remote = pd.read_csv(output, keep_default_na=False)
        assert remote["text"].tolist() == texts and remote["label"].tolist() == local["label"].tolist()
    else:
        assert "error:" in stderr and "Traceback" not in stderr and not output.exists(), stderr
    assert not part.exists()
