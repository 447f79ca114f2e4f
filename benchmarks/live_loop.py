"""From live labels to a promoted challenger answering: the loop of promotion on live evidence, timed by step.

    python benchmarks/live_loop.py [--labels 200] [--project DIR]

A throwaway project on the built-in sample: a weak champion (v1: one step at a vanishing learning rate) and a better
challenger (all rows, three epochs) registered with promotion.live_min_labels = LABELS, so it waits as `challenger`.
Then `textops serve` with shadow on, the request log with texts, polling the alias every second; LABELS texts of the
test split are served (20 a request) and labelled through POST /feedback, one call. Timed from the feedback's 200:
- until the shadow's answers to all of them are in the request log (the shadow scores after answering);
- `textops model promote-check` (what the hourly `monitor` flow runs; the wait for its schedule is not counted);
- until the running server answers with the new champion (it follows the alias; no restart).
Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)


def build(root: Path, labels: int) -> str:
    """The project with v1 champion and a better challenger waiting for LABELS live labels; the challenger's version."""
    from support import make_project, set_params, textops

    make_project(root)
    # v1 learns next to nothing (one step at a vanishing learning rate): the challenger must beat it clearly
    set_params(
        root,
        {
            "sample": {"rows": 4000},
            "model": {"base": "tiny"},
            "train": {
                "epochs": 1,
                "max_train_samples": 32,
                "learning_rate": 1e-9,
                "warmup_ratio": 0.0,
                "save_steps": 1000,
            },
            "promotion": {"floor": 0.0, "beat_baseline": False},
        },
    )
    for step in ("sample", "preprocess", "validate", "train", "evaluate", "register"):
        textops(root, step, timeout=3600)
    set_params(
        root,
        {
            "train": {
                "epochs": 3,
                "max_train_samples": 100000,
                "learning_rate": 2e-3,
                "warmup_ratio": 0.1,
                "save_steps": 50,
            },
            "promotion": {"live_min_labels": labels},
        },
    )
    for step in ("train", "evaluate"):
        textops(root, step, timeout=3600)
    out = textops(root, "register", timeout=3600).stdout
    assert "stays challenger" in out, out
    return out.split(" v", 1)[1].split(" ", 1)[0]


def main() -> None:
    from support import request, serving, textops, wait_for

    from textops.live.feedback import shadow_figures

    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--project")
    args = parser.parse_args()
    root = Path(args.project or tempfile.mkdtemp(prefix="textops-live-")) / "proj"
    version = build(root, args.labels)
    test = pd.read_parquet(root / "artifacts/clean/test.parquet").head(args.labels)
    names = json.loads((root / "artifacts/clean/labels.json").read_text())["labels"]
    truth = [names[int(i)] for i in test["label"]]
    assert len(test) == args.labels, f"the test split has {len(test)} rows: lower --labels"
    live = ("-S", f"promotion.live_min_labels={args.labels}")
    with serving(
        root,
        "-S",
        "serve.poll_seconds=1",
        "-S",
        "serve.log_requests=true",
        "-S",
        "serve.shadow=true",
        "-S",
        "serve.log_texts=true",
        *live,
    ) as server:
        wait_for(lambda: (server.version().get("shadow") or {}).get("model_version") == version, 300, "the shadow")
        items = []
        for start in range(0, len(test), 20):
            body = json.dumps({"inputs": test["text"].iloc[start : start + 20].tolist()}).encode()
            status, headers, _ = request(server.url, "POST", "/invocations", body, {"Content-Type": "application/json"})
            assert status == 200, status
            items += [
                {"request_id": headers["x-request-id"], "index": i, "label": label}
                for i, label in enumerate(truth[start : start + 20])
            ]
        begin = time.monotonic()
        status, _, body = request(
            server.url, "POST", "/feedback", json.dumps(items).encode(), {"Content-Type": "application/json"}
        )
        accepted = time.monotonic()
        assert status == 200, body
        logs = root / "logs" / "requests"
        wait_for(
            lambda: (shadow_figures(logs).get(f"1->{version}") or {}).get("labelled", 0) >= args.labels,
            600,
            "the shadow's answers logged",
            interval=0.1,
        )
        shadowed = time.monotonic()
        checked_out = textops(root, "model", "promote-check", *live, timeout=3600).stdout
        checked = time.monotonic()
        assert "promoted, now the champion" in checked_out, checked_out
        wait_for(lambda: server.version()["model_version"] == version, 600, "the server following", interval=0.05)
        answering = time.monotonic()
    out = {
        "labels": args.labels,
        "feedback_post_s": accepted - begin,
        "shadow_logged_s": shadowed - accepted,
        "promote_check_s": checked - shadowed,
        "server_follows_s": answering - checked,
        "total_s": answering - begin,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg(),
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
    }
    print("| step | seconds |\n|---|---|")
    for key in ("feedback_post_s", "shadow_logged_s", "promote_check_s", "server_follows_s", "total_s"):
        print(f"| {key[:-2].replace('_', ' ')} | {out[key]:.2f} |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
