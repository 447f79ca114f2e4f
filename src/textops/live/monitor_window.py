"""Which part of the serving request log a monitor reads (`monitor.window`): everything since the last monitor of
it (`since_last`, the end recorded in `.textops/monitor-requests.json`), the whole retained log, or a duration.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import cast

from textops.live.retention import log_time

REQUESTS_STATE = "monitor-requests.json"  # in .textops/: the end of the request-log window last monitored


def window_bounds(root: Path, window: str, now: float | None = None) -> tuple[str | None, str, str]:
    """(since, until, how it was chosen) of the request-log window WINDOW (monitor.window) names: `since_last` (the rows
    after the last monitor of the log; all of them the first time), `all`, or a duration (`90m`, `24h`, `7d`)."""
    from textops.adapters.locks import state_path

    now = time.time() if now is None else now
    until = log_time(now)
    if window == "all":
        return None, until, "the whole retained log"
    if window == "since_last":
        state = state_path(root, REQUESTS_STATE)
        try:
            since = json.loads(state.read_text(encoding="utf-8"))["until"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None, until, "the whole retained log (no earlier monitor of it)"
        return since, until, f"since the last monitor ({since})"
    amount, unit = cast("re.Match[str]", re.fullmatch(r"(\d+)([mhd])", window)).groups()  # config's pattern: a match
    start = now - int(amount) * {"m": 60, "h": 3600, "d": 86400}[unit]
    since = log_time(start)
    return since, until, f"the last {window} (since {since})"


def remember_window(root: Path, until: str) -> None:
    """The request log was monitored up to UNTIL: the next `since_last` window starts there."""
    from textops.adapters.locks import state_dir
    from textops.core.artifacts import atomic_write_json

    atomic_write_json(state_dir(root) / REQUESTS_STATE, {"until": until})
