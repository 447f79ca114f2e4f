"""The one training slot: a Prefect global concurrency limit every training run of a project holds for its
whole pipeline, as a lease, with a record of its holder beside the project's locks so that the next run on this
machine can give back the slot of a run that died holding it (SIGKILL, the OOM killer).

Prefect is imported inside the functions: the process's Prefect settings must be in place first (the entry
points set them), and importing this module must not import Prefect.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from textops.adapters.logs import note
from textops.core import lineage

# A global concurrency limit with one slot: two runs never train, evaluate or move aliases at once (the
# second waits for the slot). It covers the whole pipeline because all stages write the same project files.
TRAINING_LIMIT = "textops-training"
# The slot is a lease the run renews every 45 s while it lives. A run whose machine died (SIGKILL, power) cannot
# give it back: the server takes it back when the lease runs out, about when the heartbeat automation of
# docs/orchestration.md marks that run Crashed. Prefect's default (300 s) would stall the next run for minutes.
TRAINING_LEASE_S = 60


def ensure_limit(name: str = TRAINING_LIMIT, slots: int = 1) -> None:
    """Create the global concurrency limit if the Prefect server does not have it yet."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


class SlotWaitTimeout(Exception):
    """Another run held the training slot longer than this run was willing to wait."""


# Who holds the training slot, next to the project's locks: a run killed with SIGKILL cannot give its slot back,
# and the temporary server's leases die with it, so the next run on this machine checks the holder instead.
HOLDER_FILE = "training-slot.json"
WAIT_REPORT_S = 30.0


def release_if_holder_died(root: Path) -> str | None:
    """Give back the training slot of a run on this machine whose process is gone; a message saying so."""
    import json
    import time

    from prefect import get_client

    from textops.adapters.locks import project_lock, state_dir
    from textops.adapters.tracking import owner_alive

    with project_lock(root, "training-slot.lock"):
        path = state_dir(root) / HOLDER_FILE
        try:
            holder = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if owner_alive(holder) is not False:
            return None  # alive, or on another machine: a server's lease expiry frees that one
        with get_client(sync_client=True) as client:
            if client.read_global_concurrency_limit_by_name(TRAINING_LIMIT).active_slots > 0:
                # Prefect wants how long the slot was held (> 0); the holder recorded when it took it.
                held = time.time() - holder.get("at", time.time() - 1)
                client.release_concurrency_slots(names=[TRAINING_LIMIT], slots=1, occupancy_seconds=max(held, 1.0))
        path.unlink(missing_ok=True)
    return (
        f"released the training slot held by process {holder.get(lineage.OWNER_PID)} (flow run "
        f"{holder.get('flow_run')}, since {holder.get('since')}), which died without giving it back"
    )


def reclaim_orphaned_slots() -> int:
    """Set the training limit's taken slots to 0 and return how many there were. Only for the project's temporary
    server while no other run of the project is alive (`textops.adapters.locks.project_runs`): its slots then
    belong to no live run, and that server runs no lease reaper to take them back."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            taken = client.read_global_concurrency_limit_by_name(TRAINING_LIMIT).active_slots
        except ObjectNotFound:
            return 0
        if taken:
            client.update_global_concurrency_limit(TRAINING_LIMIT, GlobalConcurrencyLimitUpdate(active_slots=0))
        return taken


def release_failed(exc: BaseException) -> bool:
    """Whether EXC, leaving the slot's block, is the failure to give the slot back (the server unreachable): an
    HTTP client error raised while an exception of the block was being handled, or in place of it."""
    import httpx

    return isinstance(exc, httpx.HTTPError | OSError) or isinstance(exc.__context__, httpx.HTTPError | OSError)


@contextmanager
def training_slot(root: Path, timeout_s: float | None):
    """Hold the one training slot (global concurrency limit `textops-training`) for the block; while another run
    holds it, say who holds it and for how long this one still waits, at once and every WAIT_REPORT_S seconds.
    Yields whether it waited (another run held the slot): what that run did may have made this one a no-op."""
    import json
    import time

    from prefect import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.runtime import flow_run

    from textops.adapters.locks import state_dir
    from textops.adapters.tracking import owner_tags

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    path = state_dir(root) / HOLDER_FILE
    report_at = time.monotonic()  # say so at once when the slot is taken
    waited = False
    while True:
        released = release_if_holder_died(root)
        if released:
            note(released, warning=True)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise SlotWaitTimeout(timeout_s)
        with get_client(sync_client=True) as client:
            taken = client.read_global_concurrency_limit_by_name(TRAINING_LIMIT).active_slots > 0
        waited = waited or taken
        if taken and time.monotonic() >= report_at:
            who = path.read_text(encoding="utf-8").strip() if path.exists() else "a run on another machine"
            until = "" if left is None else f"; giving up in {left:.0f} s"
            note("waiting for the training slot %r, held by %s%s", TRAINING_LIMIT, who, until, warning=True)
            report_at = time.monotonic() + WAIT_REPORT_S
        acquired = False
        try:
            with concurrency(
                TRAINING_LIMIT,
                occupy=1,
                timeout_seconds=min(WAIT_REPORT_S, left or WAIT_REPORT_S),
                lease_duration=TRAINING_LEASE_S,
            ):
                acquired = True
                holder = {
                    **owner_tags(),
                    "flow_run": str(flow_run.id),
                    "at": time.time(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
                path.write_text(json.dumps(holder), encoding="utf-8")
                yield waited
        except TimeoutError:
            if acquired:  # raised by the block itself, not by the wait
                path.unlink(missing_ok=True)  # the slot was given back on the way out
                raise
            waited = True  # taken between the look and the wait
            continue
        except BaseException as exc:
            # Left in place when giving the slot back failed (the server gone first): the record of this process
            # is what lets the next run reclaim the slot once this process has ended, whatever stopped it.
            if acquired and not release_failed(exc):
                path.unlink(missing_ok=True)
            raise
        path.unlink(missing_ok=True)  # after the slot was given back, not before
        return
