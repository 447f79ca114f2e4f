"""Prefect events that must not be lost: emitted, then confirmed stored by the server.

`prefect.events.emit_event` is fire-and-forget. It queues the event for a background worker that sends it over a
websocket later, and every step after the call can drop it with no more than a log line: the worker logs and
drops an event whose send fails (`Service ... failed to process item`), the server's event persister drops a
batch after five failed flushes in a row (`Max flush retries (5) reached, dropping ...`; a Prefect server on SQLite
logs `database is locked` under load), and a process that ends before the worker has sent its queue takes the
event with it. A flow run is COMPLETED before any of that is known. For the monitor flow a lost
`textops.data.landed` is a file that never triggers its retrain (issue 39).

`emit_confirmed` makes delivery part of the flow run: it sends at once, then asks the server for the event by its
id until it is stored, sending it again under a new id when it is not there after a while, and fails (so the
caller does not record the event as sent) when it never arrives.

Prefect is imported inside the functions: the process's Prefect settings must be in place first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from textops.adapters.logs import note
from textops.core.errors import StateError

# Stored within seconds normally (the persister flushes every 5 s); a loaded machine with a SQLite server takes
# longer. Not there after RESEND_AFTER_S: the event is lost, not late, and is sent again under a new id (the server
# would drop the same id as a duplicate for 5 minutes). Not stored after CEILING_S: the flow fails.
RESEND_AFTER_S = 60.0
CEILING_S = 300.0
POLL_S = 1.0


def flush_events(timeout: float = CEILING_S) -> None:
    """Send what `emit_event` queued in this process now, instead of at some point before the process ends."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=timeout)


def stored(event_ids: list[UUID]) -> bool:
    """Whether the Prefect server has stored one of EVENT_IDS (the same announcement, sent more than once)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventIDFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter(id=EventIDFilter(id=event_ids)), limit=len(event_ids))
    return bool(page.events)


def emit_confirmed(
    name: str,
    resource: dict[str, str],
    payload: dict,
    *,
    resend_after_s: float | None = None,
    ceiling_s: float | None = None,
    is_stored: Callable[[list[UUID]], bool] = stored,
) -> UUID | None:
    """Emit the event NAME and return once the Prefect server has stored it: the id it was stored under, or None
    when this process emits no events at all (no Prefect API; nothing to confirm). StateError when it was not
    stored within CEILING_S, after a resend every RESEND_AFTER_S."""
    from prefect.events import emit_event

    resend_after_s = RESEND_AFTER_S if resend_after_s is None else resend_after_s
    ceiling_s = CEILING_S if ceiling_s is None else ceiling_s
    sent: list[UUID] = []
    started = time.monotonic()
    while True:
        event = emit_event(name, resource=resource, payload=payload)
        if event is None:
            return None
        if sent:
            waited = time.monotonic() - started
            note("%s %s not stored after %.0f s: sent again as %s", name, sent[-1], waited, event.id, warning=True)
        sent.append(event.id)
        flush_events(timeout=ceiling_s)
        attempt_ends = min(time.monotonic() + resend_after_s, started + ceiling_s)
        while time.monotonic() < attempt_ends:
            if is_stored(sent):
                return event.id
            time.sleep(POLL_S)
        if time.monotonic() >= started + ceiling_s:
            raise StateError(
                f"the Prefect server did not store the event {name} within {ceiling_s:.0f} s ({len(sent)} sends): "
                "what it announces is not recorded as announced, so the next monitor run announces it again. "
                "See the Prefect server's log (a SQLite database that stays locked, a full disk)."
            )
