"""Promotion on live evidence (`promotion.live_min_labels`): a challenger that passes every offline rule waits as
challenger for labelled answers in shadow beside the champion (`awaiting_live`, at register), and `live_check`
(`textops model promote-check`, a task of the monitor flow) decides once enough of them came back.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textops.adapters.locks import registry_lock
from textops.adapters.tracking import connect
from textops.core import lineage
from textops.core.config import Params
from textops.registry.registry import champion, move_champion


def awaiting_live(params: Params, decision, has_champion: bool):
    """(the decision, its tag): with promotion.live_min_labels, a challenger that would replace a champion on
    offline evidence waits as challenger for live answers in shadow (`live_check` decides then)."""
    if decision.promote and params.promotion.live_min_labels and has_champion:
        labels = params.promotion.live_min_labels
        reason = (
            f"passes offline ({decision.reason}); stays challenger until {labels} of its answers in shadow are "
            "labelled and it does not lose to the champion on them (promotion.live_min_labels; `textops model "
            "promote-check`)"
        )
        return replace(decision, promote=False, reason=reason), lineage.AWAITING_LIVE
    return decision, lineage.PROMOTED if decision.promote else lineage.REJECTED


def live_check(root: Path, params: Params) -> dict:
    """promotion.live_min_labels: decide on the challenger that waits for live evidence. Once that many of its
    answers in shadow beside the champion got a label (POST /feedback), it is promoted unless it loses to the
    champion on them (less accurate with McNemar p < promotion.max_p_value, the offline rule), and rejected if it
    does; the live figures go into its evidence. Until then nothing changes. `result` says which."""
    from mlflow.exceptions import MlflowException

    from textops.live.feedback import shadow_figures

    need = params.promotion.live_min_labels
    if not need:
        return {"result": "off", "message": "promotion.live_min_labels is 0: promotion does not wait for live labels"}
    session = connect(root, params, experiment=False)
    with registry_lock(root):
        current = champion(session)
        try:
            waiting = session.client.get_model_version_by_alias(session.model_name, lineage.CHALLENGER_ALIAS)
        except MlflowException:
            waiting = None
        if current is None or waiting is None or waiting.tags.get(lineage.DECISION) != lineage.AWAITING_LIVE:
            return {"result": "none", "message": "no challenger waits for live evidence"}
        version = str(waiting.version)
        figures = shadow_figures(root / params.serve.request_log_dir).get(f"{current.version}->{version}") or {}
        labelled = figures.get("labelled", 0)
        if labelled < need:
            return {
                "result": "waiting",
                "version": version,
                "labelled": labelled,
                "message": (
                    f"v{version} waits: {labelled} of {need} labelled live answers in shadow beside champion "
                    f"v{current.version} (serve.shadow: true and POST /feedback bring them; the shadow scores "
                    f"serve.shadow_fraction = {params.serve.shadow_fraction:g} of the requests)"
                ),
            }
        ours, theirs, p = figures["shadow_accuracy"], figures["served_accuracy"], figures["mcnemar_p"]
        loses = ours < theirs and p < params.promotion.max_p_value
        on = (
            f"on {labelled} labelled live texts in shadow, accuracy {ours:.4f} vs champion v{current.version} "
            f"{theirs:.4f} (McNemar p={p:.3g})"
        )
        reason = f"live: {on}: " + ("loses to the champion" if loses else "does not lose to the champion")
        tags = {lineage.live_tag(k): str(v) for k, v in figures.items()}
        tags.update({lineage.DECISION: lineage.REJECTED if loses else lineage.PROMOTED, lineage.REASON: reason[:5000]})
        for key, value in tags.items():
            session.client.set_model_version_tag(session.model_name, version, key, value)
        if not loses:
            move_champion(session, version, "live", reason)
    return {
        "result": "rejected" if loses else "promoted",
        "version": version,
        "labelled": labelled,
        "message": f"v{version} {'not promoted' if loses else 'promoted, now the champion'}: {reason}",
    }
