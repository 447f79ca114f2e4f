"""`textops monitor` and the `monitor` flow on a real champion (tiny model, FAST params, real DVC cache, MLflow,
a temporary Prefect server): held-back rows of the training distribution are no drift, out-of-domain texts are
input drift, flipped labels are performance drift, each named by its kind; the flow announces landed files once
and drift with its figures, as events that the `retrain` deployment's triggers in prefect.yaml match."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO, copy_project, in_process, textops

from textops.data.sample import make_sample


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory, champion_template: Path) -> Path:
    """A project whose champion was trained on the built-in sample (seed 13), and three files beside it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = copy_project(champion_template, tmp_path_factory.mktemp("monitor") / "proj")
        held = make_sample(400, seed=99)  # the same generator, other rows: the training distribution
        held.to_csv(root.parent / "held.csv", index=False)
        flipped = held.assign(label=held["label"].map({"positive": "negative", "negative": "positive"}))
        flipped.to_csv(root.parent / "flipped.csv", index=False)
        rng = random.Random(5)
        words = ["kernel", "eth0", "timeout", "segfault", "heap", "mutex", "daemon", "socket", "checksum", "inode"]
        logs = [
            f"ERROR {rng.randint(1000, 9999)} " + " ".join(rng.choice(words) for _ in range(rng.randint(8, 20)))
            for _ in range(300)
        ]
        pd.DataFrame({"text": logs}).to_csv(root.parent / "logs.csv", index=False)
        yield root


def monitor_json(root: Path, *args: str) -> dict:
    return json.loads(textops(root, "monitor", *args, "--json").stdout)


def by_name(result: dict) -> dict[str, dict]:
    return {c["name"]: c for c in result["checks"]}


def test_held_back_rows_of_the_training_distribution_are_no_drift(champion):
    result = monitor_json(champion, str(champion.parent / "held.csv"))
    assert result["drift"] is False and result["kinds"] == [], result
    checks = by_name(result)
    assert not any("skipped" in c for c in checks.values())  # labelled: every check ran
    assert checks["accuracy"]["reference"] > 0.6 and checks["accuracy"]["current"] > 0.6
    assert result["champion"]["version"] == "1" and result["rows"] == 400
    # the same result in metrics/monitor.json, the report renders offline, the run is in MLflow
    assert json.loads((champion / "metrics" / "monitor.json").read_text())["mlflow_run_id"] == result["mlflow_run_id"]
    page = (champion / result["report"]).read_text()
    assert "no drift" in page and "<script" not in page and "http" not in page.replace("http-equiv", "")
    run = in_process(
        champion,
        "from textops.core.config import load_params\nfrom textops.adapters.tracking import connect\n"
        "s = connect(__import__('pathlib').Path('.'), load_params('params.yaml'), experiment=False)\n"
        f"r = s.client.get_run({result['mlflow_run_id']!r})\n"
        "e = s.client.get_experiment(r.info.experiment_id).name\n"
        "files = [f.path for f in s.client.list_artifacts(r.info.run_id, 'monitor')]\n"
        "print(json.dumps({'experiment': e, 'metrics': r.data.metrics, 'files': files, 'status': r.info.status}))\n",
    )
    assert run["experiment"] == "textops-monitoring" and run["status"] == "FINISHED"
    assert run["metrics"]["drift"] == 0.0 and "input.embeddings_domain_classifier.statistic" in run["metrics"]
    assert sorted(run["files"]) == ["monitor/index.html", "monitor/monitor.json"]


def test_out_of_domain_texts_in_the_request_log_are_input_drift(champion):
    # What `textops serve` logs with serve.log_texts on, written by its own RequestLog; with the texts in the log
    # the monitor scores them again with the champion, so the logged answers here are placeholders.
    from textops.live.request_log import RequestLog

    texts = pd.read_csv(champion.parent / "logs.csv")["text"].tolist()
    log = RequestLog(champion / "logs" / "requests", "jsonl", texts=True)
    log.start()
    for i in range(0, len(texts), 10):
        batch = texts[i : i + 10]
        log.add(
            f"req-{i}", "1", batch, [{"label": "positive", "prob_negative": 0.5, "prob_positive": 0.5}] * len(batch)
        )
    log.close()
    proc = textops(champion, "monitor", "--requests")
    assert "DRIFT (input)" in proc.stdout, proc.stdout  # the console table
    result = json.loads((champion / "metrics" / "monitor.json").read_text())
    assert result["drift"] is True and result["kinds"] == ["input"] and result["rows"] == 300
    checks = by_name(result)
    assert checks["embeddings (domain classifier)"]["drifted"] and checks["out-of-vocabulary words"]["drifted"]
    assert "skipped" in checks["label shares"]  # unlabelled: no label or performance figures

    # The next monitor compares only what was logged since (monitor.window: since_last), not the whole log again;
    # `-S monitor.window=all` compares everything retained.
    assert result["window"]["since"] is None and result["window"]["rows"] == 300
    log = RequestLog(champion / "logs" / "requests", "jsonl", texts=True)
    log.start()
    log.add("req-new", "1", texts[:40], [{"label": "positive", "prob_negative": 0.5, "prob_positive": 0.5}] * 40)
    log.close()
    textops(champion, "monitor", "--requests")
    again = json.loads((champion / "metrics" / "monitor.json").read_text())
    assert again["rows"] == 40 and again["window"]["chosen"].startswith("since the last monitor"), again["window"]
    textops(champion, "monitor", "--requests", "-S", "monitor.window=all")
    assert json.loads((champion / "metrics" / "monitor.json").read_text())["rows"] == 340
    # Nothing logged since the last monitor: said, not an error (exit 0), and that window stays open.
    quiet = json.loads(textops(champion, "monitor", "--requests", "--json").stdout)
    assert quiet["drift"] is False and quiet["window"]["rows"] == 0, quiet
    assert quiet["nothing_new"].startswith("nothing new to monitor in the request log"), quiet["nothing_new"]


def test_flipped_labels_are_performance_drift_only(champion):
    result = monitor_json(champion, str(champion.parent / "flipped.csv"))
    # the texts are the training distribution and the two classes keep their shares: only the champion's
    # accuracy on them says something is wrong
    assert result["drift"] is True and result["kinds"] == ["performance"], result
    checks = by_name(result)
    assert checks["accuracy"]["drifted"] and checks["accuracy"]["current"] < 0.4
    assert not checks["embeddings (domain classifier)"]["drifted"] and not checks["label shares"]["drifted"]


def test_user_errors_are_one_paragraph_and_a_non_zero_exit(champion, tmp_path):
    missing = textops(champion, "monitor", "nowhere.csv", check=False)
    assert missing.returncode == 1 and "nowhere.csv: no such file" in missing.stderr
    nothing = textops(champion, "monitor", check=False)
    assert nothing.returncode == 1 and "nothing to monitor" in nothing.stderr
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    no_champion = textops(tmp_path, "monitor", str(champion.parent / "held.csv"), check=False)
    assert no_champion.returncode == 1 and "has no champion yet" in no_champion.stderr
    assert "Traceback" not in missing.stderr + nothing.stderr + no_champion.stderr


FLOW = """
import time
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.events.worker import EventsWorker
from prefect.server.events.schemas.automations import EventTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from textops.flows.monitor import monitor_flow

first = monitor_flow(project_dir='.')
second = monitor_flow(project_dir='.')  # nothing new landed
EventsWorker.drain_all(timeout=60)
names = ['textops.data.landed', 'textops.drift.detected']
for _ in range(60):
    with get_client(sync_client=True) as client:
        events = client.read_events(EventFilter(event=EventNameFilter(name=names)), limit=50).events
    if len(events) >= 2:
        break
    time.sleep(1)
triggers = [EventTrigger.model_validate({k: t[k] for k in ('match', 'expect', 'posture', 'threshold', 'within')})
            for t in json.loads(sys.argv[1])]
matched = {e.event: [t.covers(ReceivedEvent.model_validate(e.model_dump(mode='json'))) for t in triggers]
           for e in events}
print(json.dumps({'first': first, 'second': second, 'matched': matched,
                  'events': [{'event': e.event, 'payload': e.payload} for e in events]}))
"""


def test_monitor_flow_announces_landed_files_once_and_drift_with_its_figures(champion):
    landing = champion / "landing"
    landing.mkdir(exist_ok=True)
    (landing / "logs.csv").write_bytes((champion.parent / "logs.csv").read_bytes())
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    triggers = next(d for d in deployments if d["name"] == "retrain")["triggers"]
    out = in_process(champion, f"sys.argv[1:] = [{json.dumps(triggers)!r}]\n" + FLOW)
    # promote_check None: promotion.live_min_labels is off
    assert out["first"] == {"landed": ["logs.csv"], "drift": {"landing": ["input"]}, "promote_check": None}
    assert out["second"] == {"landed": [], "drift": {}, "promote_check": None}  # announced once, not every hour
    events = {e["event"]: e["payload"] for e in out["events"]}
    assert sorted(events) == ["textops.data.landed", "textops.drift.detected"], out["events"]  # one of each
    assert events["textops.data.landed"]["files"] == ["logs.csv"]
    drifted = events["textops.drift.detected"]
    assert drifted["kinds"] == ["input"] and drifted["champion_version"] == "1"
    assert {c["name"] for c in drifted["checks"]} >= {"embeddings (domain classifier)", "text length (characters)"}
    # both are covered by the retrain deployment's one trigger (Prefect's own matching): one cool-down for both
    assert out["matched"] == {"textops.data.landed": [True], "textops.drift.detected": [True]}
