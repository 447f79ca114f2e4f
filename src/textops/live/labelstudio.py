"""Label Studio, the way out: a labelling queue of the served texts the champion is least sure of, written as Label
Studio tasks with the champion's answer as a pre-annotation (`textops label queue`). The way back, its exports read
as labelled rows, is textops.data.labelstudio_export (`textops ingest export.json`).

The queue reads the request log (textops.live.request_log; texts are there only with serve.log_texts), skips answers
that already have feedback (textops.live.feedback), keeps one row per text, and spreads its picks over the predicted
classes and the hours they were served in, so one busy hour or one confusing class does not fill it.
"""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

from textops.core.artifacts import LABEL_STUDIO_FROM as FROM_NAME
from textops.core.artifacts import LABEL_STUDIO_TO as TO_NAME
from textops.core.errors import DataError, StateError
from textops.live.request_log_reader import log_files, read_rows

POOL_PER_PICK = 20  # candidates kept per text asked for (the least sure ones), before spreading


def margin(probabilities: dict) -> tuple[float, float]:
    """(top-1 minus top-2 probability, top-1): small margins are the answers the model is least sure of."""
    top = sorted((float(v) for v in probabilities.values()), reverse=True) + [0.0, 0.0]
    return top[0] - top[1], top[0]


def candidates(directory: Path, labelled: set, keep: int) -> list[dict]:
    """The KEEP least sure logged answers with a text and no feedback yet, one per text."""
    heap: list[tuple] = []  # (-margin, n, row): the KEEP smallest margins
    seen_text = False
    for n, row in enumerate(read_rows(directory)):
        if row.get("text") is None:
            continue
        seen_text = True
        if (row.get("request_id"), row.get("index")) in labelled or not row.get("probabilities"):
            continue
        gap, top = margin(row["probabilities"])
        item = (-gap, n, {**row, "margin": gap, "confidence": top})
        if len(heap) < keep:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    if not seen_text:
        raise StateError(
            f"the request log in {directory} has no texts: the server keeps the texts it scores only with "
            "serve.log_texts: true (personal data: think first). Turn it on, let traffic come, and ask again."
        )
    by_text: dict[str, dict] = {}
    for _, _, row in sorted(heap, key=lambda item: (-item[0], item[1])):
        by_text.setdefault(row.get("text_sha256") or row["text"], row)
    return list(by_text.values())


def spread(rows: list[dict], n: int) -> list[dict]:
    """N of ROWS (least sure first), at most an even share from each predicted class and each hour served, then
    the least sure of the rest."""
    classes = {str(r.get("label")) for r in rows}
    hours = {str(r.get("time", ""))[:13] for r in rows}
    per_class, per_hour = math.ceil(n / max(len(classes), 1)), math.ceil(n / max(len(hours), 1))
    picked: list[dict] = []
    count_class: dict[str, int] = {}
    count_hour: dict[str, int] = {}
    for row in rows:
        c, h = str(row.get("label")), str(row.get("time", ""))[:13]
        if len(picked) < n and count_class.get(c, 0) < per_class and count_hour.get(h, 0) < per_hour:
            picked.append(row)
            count_class[c], count_hour[h] = count_class.get(c, 0) + 1, count_hour.get(h, 0) + 1
    chosen = {id(r) for r in picked}
    picked += [r for r in rows if id(r) not in chosen][: n - len(picked)]
    return sorted(picked, key=lambda r: r["margin"])


def task(row: dict) -> dict:
    """One Label Studio task: the text (with where it was served), and the served answer as a pre-annotation."""
    return {
        "data": {
            TO_NAME: row["text"],
            "request_id": row.get("request_id"),
            "index": row.get("index"),
            "served_at": row.get("time"),
            "model_version": row.get("model_version"),
        },
        "predictions": [
            {
                "model_version": f"v{row.get('model_version')}",
                "score": round(row["confidence"], 6),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [str(row.get("label"))]},
                    }
                ],
            }
        ],
    }


def labelling_config(classes: list[str]) -> str:
    """Label Studio's labelling config for the tasks: the text and one choice among CLASSES."""
    from xml.sax.saxutils import quoteattr

    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (
        f'<View>\n  <Text name="{TO_NAME}" value="${TO_NAME}"/>\n  <Choices name="{FROM_NAME}" '
        f'toName="{TO_NAME}" choice="single">\n{choices}\n  </Choices>\n</View>\n'
    )


def label_queue(root: Path, params, n: int, output: Path) -> dict:
    """Write the N least sure served texts without feedback as Label Studio tasks (OUTPUT `.json`, with the labelling
    config beside it as `.xml`) or as CSV (`.csv`)."""
    import pandas as pd

    from textops.core.artifacts import atomic_write_text
    from textops.core.formulas import neutralized
    from textops.live.feedback import read_feedback

    if n < 1:
        raise DataError(f"-n {n}: ask for at least one text.")
    output = Path(output)
    if output.suffix.lower() not in (".json", ".csv"):
        raise DataError(f"{output}: write the queue as .json (Label Studio tasks) or .csv.")
    directory = Path(root) / params.serve.request_log_dir
    if not log_files(directory):
        raise StateError(
            f"no request log in {directory}: serve with serve.log_requests: true and "
            "serve.log_texts: true, then ask again."
        )
    labelled = {(r["request_id"], r.get("index")) for r in read_feedback(directory, latest=False)}
    picked = spread(candidates(directory, labelled, max(n * POOL_PER_PICK, 1000)), n)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        frame = pd.DataFrame(
            [
                {
                    k: r.get(k)
                    for k in ("text", "label", "confidence", "margin", "request_id", "index", "time", "model_version")
                }
                for r in picked
            ]
        )
        frame["text"] = frame["text"].map(neutralized)  # opened in a spreadsheet, a formula text is shown, not run
        atomic_write_text(output, frame.rename(columns={"label": "predicted"}).to_csv(index=False))
    else:
        atomic_write_text(output, json.dumps([task(r) for r in picked], ensure_ascii=False, indent=1))
        classes = sorted({c for r in picked for c in r["probabilities"]})
        atomic_write_text(output.with_suffix(".xml"), labelling_config(classes))
    return {"rows": len(picked), "output": str(output), "labelled_skipped": len(labelled)}
