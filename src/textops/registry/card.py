"""A model version's card, in Hugging Face's format: README.md with YAML front matter (license, base_model,
pipeline_tag, tags, model-index with the test metrics) and a body a person reads: what the model does, what it was
trained on (the data version, its licence as far as known), how it scored against the baseline and per class, why it
was or was not promoted, and its limits. Built from what the registry records (`registry.show_version`): shown by
`textops model show N --card`, logged to the version's run at registration, and written by `textops export`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from textops.core import lineage

if TYPE_CHECKING:
    from textops.adapters.tracking import Session

CARD_PATH = "model_card/README.md"  # the version's model card (Hugging Face's format), logged at registration
PRETRAINED = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}  # what `model.base` names on the Hub


def labels_of(shown: dict) -> list[str]:
    """The label names the version predicts (its run's `labels` param; [] when it cannot be read)."""
    try:
        labels = json.loads(shown["params"].get("labels", "[]"))
    except ValueError:
        return []
    return [str(x) for x in labels] if isinstance(labels, list) else []


def hub_license(licences: str | None) -> str:
    """The Hub's one licence field: the data's licence, "other" when its batches have several (the body names them),
    "unknown" when none was recorded."""
    if not licences:
        return "unknown"
    return "other" if "," in licences else licences


def front_matter(shown: dict) -> dict:
    """The card's YAML header: what the Hub reads to list and evaluate the model."""
    metrics = shown["metrics"]
    base = shown.get("base_model") or ""
    results = [
        {"type": name, "value": round(float(metrics[lineage.test_metric(name)]), 4), "name": f"test {name}"}
        for name in ("accuracy", "macro_f1")
        if lineage.test_metric(name) in metrics
    ]
    header: dict = {
        "license": hub_license(shown.get("license")),
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["textops", "text-classification"],
    }
    if base in PRETRAINED:
        header["base_model"] = PRETRAINED[base]
    header["model-index"] = [
        {
            "name": f"{shown['name']}-v{shown['version']}",
            "results": [
                {
                    "task": {"type": "text-classification", "name": "Text Classification"},
                    "dataset": {"type": "textops-data", "name": f"data version {shown['data'].get('raw_md5')}"},
                    "metrics": results,
                }
            ],
        }
    ]
    return header


def model_card(shown: dict) -> str:
    """The card of the version SHOWN (`registry.show_version`'s dict)."""
    metrics, decision, data = shown["metrics"], shown["decision"], shown["data"]
    labels = labels_of(shown)

    def figure(key: str) -> str:
        return f"{metrics[key]:.4f}" if key in metrics else "-"

    rows = [
        f"| {name} | {figure(lineage.test_metric(name))} | {shown['baseline'].get(name, '-')} |"
        for name in ("accuracy", "macro_f1")
    ]
    per_class = [
        f"| {label} | {figure(f'test_class/{i}_{label}/precision')} | {figure(f'test_class/{i}_{label}/recall')} | "
        f"{figure(f'test_class/{i}_{label}/f1')} |"
        for i, label in enumerate(labels)
    ]
    verdict = decision.get("decision", "unknown")
    reason = decision.get("reason") or decision.get("evidence.reason") or ""
    body = [
        f"# {shown['name']} v{shown['version']}",
        "",
        f"A text classifier trained by textops ({shown.get('base_model') or 'unknown'} base model, fine-tuned with "
        f"Hugging Face transformers): it gives each text one of {len(labels)} labels ({', '.join(labels[:20])}), "
        "with a probability for each.",
        "",
        "## Intended use",
        "",
        "Classifying texts like the ones it was trained on. Check its figures below on your own labelled texts before "
        "relying on it: a classifier answers every text, also the ones unlike its training data.",
        "",
        "## Training data",
        "",
        f"Data version `{data.get('raw_md5')}` (raw, DVC), cleaned `{data.get('clean_md5')}`, git revision "
        f"`{data.get('rev')}`; licence: {shown.get('license') or 'unknown (not recorded at ingest)'}. "
        f"`textops data checkout --model {shown['version']}` restores it byte for byte.",
        "",
        "## Evaluation (its test split)",
        "",
        "| metric | this model | TF-IDF baseline |",
        "|---|---|---|",
        *rows,
        "",
        *(["| label | precision | recall | F1 |", "|---|---|---|---|", *per_class, ""] if per_class else []),
        "## Promotion",
        "",
        f"{verdict}: {reason}" if reason else verdict,
        "",
        "## Limitations",
        "",
        "Figures are on a held-out split of the same data version, not on the texts it will meet; labels it never saw "
        "are never predicted. Trained with `textops` params `" + str(shown["git"].get("params_md5")) + "`.",
    ]
    return (
        "---\n"
        + yaml.safe_dump(front_matter(shown), sort_keys=False, allow_unicode=True)
        + "---\n\n"
        + ("\n".join(body) + "\n")
    )


def log_card(root: Path, session: Session, run_id: str, version: str) -> None:
    """The version's model card (`registry.card`) as an artifact of its run, `model_card/README.md`: what the
    registry shows of it at registration. A card that cannot be made is a warning: the version stands."""
    from textops.registry.registry import get_version, version_facts

    try:
        card = model_card(version_facts(root, session, get_version(session, version)))
        session.client.log_text(run_id, card, CARD_PATH)
    except Exception as exc:  # the registration is done; the card is a description of it
        logging.getLogger("textops").warning("the model card of v%s was not logged: %s", version, exc)
