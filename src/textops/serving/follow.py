"""The served model and how it follows the registry: one immutable `Loaded` (the model, its version, when it
was loaded) held by a `Follower` that swaps it atomically.

Every `serve.poll_seconds`, on `request_reload()` (SIGHUP) or on `reload()` (POST /reload), the follower's
poller thread asks the source which version the alias points at. When that is another version it loads it and
warms it with a prediction in that thread (at a lower CPU priority than the threads answering requests), then
replaces its one reference: a request reads `follower.current` once at its start and finishes on that model, none
waits for a load. A version that fails to load (missing artifacts, corrupt weights, registry unreachable) is not
swapped in: the current model keeps serving, the error is kept in `last_error`, and that version is tried again on
a forced check or after `RETRY_FAILED_POLLS` polls.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from textops.core import lineage

if TYPE_CHECKING:
    from textops.adapters.tracking import Session
    from textops.core.config import ServeParams

log = logging.getLogger("textops.serve")
RETRY_FAILED_POLLS = 6
LOADER_NICE = 10  # the poller's nice value (a load yields the CPU to inference)
WARM_TEXTS = ["a warm-up text: the model answers before it serves"]


@dataclass(frozen=True)
class Loaded:
    """One loaded version of the registered model, as it answers requests."""

    model: Any
    model_name: str
    model_version: str
    alias: str | None
    loaded_at: float  # time.time()
    load_seconds: float
    data: dict = field(default_factory=dict)  # raw_md5, rev
    run_id: str | None = None
    runtime: str | None = None  # torch, onnx or onnx-int8 (a transformer), sklearn (a tfidf model): what runs it


class Source(Protocol):
    """Where the versions come from (the MLflow registry, `RegistrySource`)."""

    alias: str | None

    def target(self) -> str | None: ...  # the version to serve now; None: none now (a shadow)

    def load(self, version: str) -> Loaded: ...


class Follower:
    """Holds the current `Loaded` and swaps in the version SOURCE names."""

    def __init__(
        self,
        source: Source,
        poll_seconds: float,
        on_event: Callable[[str, dict], None] | None = None,
        role: str = "serving",
    ):
        self.source = source
        self.role = role  # what a log line says this follower does: "serving", or "shadow" for the challenger
        self.poll_seconds = poll_seconds
        self.current: Loaded | None = None
        self.last_error: dict | None = None
        self.last_check: float | None = None
        self._on_event = on_event or (lambda kind, info: None)
        self._lock = threading.Lock()  # one check at a time (poller, /reload)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failed: dict[str, float] = {}  # version -> when it failed (time.monotonic)
        self._thread: threading.Thread | None = None
        self._waiters: list[tuple[threading.Event, dict]] = []  # POST /reload calls waiting for the poller
        self._waiters_lock = threading.Lock()

    def load_initial(self) -> Loaded:
        """Load the version the source names now; raises what the source raises (the server cannot start)."""
        with self._lock:
            version = self.source.target()
            assert version is not None  # the served source (RegistrySource) always names one; a shadow only checks
            self.current = self._load(version)
            self.last_check = time.time()
            return self.current

    def check(self, force: bool = False) -> dict:
        """Ask the source for its version; load, warm and swap in a new one. Never raises: a failure is
        reported in the result and kept in `last_error`, and the current model keeps serving."""
        with self._lock:
            self.last_check = time.time()
            current = self.current.model_version if self.current else None
            try:
                version = self.source.target()
            except Exception as exc:
                return self._failure(None, f"cannot read the registry: {_first_line(exc)}")
            if version is None:  # nothing to hold now (a shadow when there is no challenger apart from the champion)
                self.current, self.last_error = None, None
                return {"result": "none", "model_version": None, "previous": current}
            version = str(version)
            if version == current:  # the registry and the server agree: an earlier failure is over
                self._failed.clear()
                self.last_error = None
                return {"result": "unchanged", "model_version": current}
            failed_at = self._failed.get(version)
            retry_after = RETRY_FAILED_POLLS * self.poll_seconds
            if not force and failed_at is not None and time.monotonic() - failed_at < retry_after:
                return {"result": "failed", "model_version": current, "error": self.last_error}
            try:
                loaded = self._load(version)
            except Exception as exc:
                self._failed[version] = time.monotonic()
                return self._failure(version, f"cannot load v{version}: {_first_line(exc)}")
            self.current = loaded  # the swap: one reference replaced
            self._failed.pop(version, None)
            self.last_error = None
            self._on_event("swapped", {"from": current, "to": version, "load_seconds": loaded.load_seconds})
            before = f"v{current}" if current else "none"
            log.warning(
                "now %s %s v%s (was %s; loaded in %.1f s)",
                self.role,
                loaded.model_name,
                version,
                before,
                loaded.load_seconds,
            )
            return {"result": "swapped", "model_version": version, "previous": current}

    def _load(self, version: str) -> Loaded:
        import pandas as pd

        start = time.monotonic()
        loaded = self.source.load(version)
        loaded.model.predict(pd.DataFrame({"text": WARM_TEXTS}))  # warm, and a model that cannot answer fails here
        return Loaded(**{**loaded.__dict__, "load_seconds": time.monotonic() - start, "loaded_at": time.time()})

    def _failure(self, version: str | None, message: str) -> dict:
        current = self.current.model_version if self.current else None
        self._on_event("failed", {"version": version, "message": message})
        if self.role == "serving":
            log.warning("%s; still serving v%s", message, current)
        else:
            held = f"v{current}" if current else "none"
            log.warning("%s %s; it stays %s (the served model is not affected)", self.role, message, held)
        # Published last: whoever sees last_error (/version, a test) also sees the failure counted and logged.
        self.last_error = {"version": version, "message": message, "at": time.time()}
        return {"result": "failed", "model_version": current, "error": self.last_error}

    # ----------------------------------------------------------------------------------------------
    # the background poller

    def start(self) -> None:
        """Poll in a daemon thread every poll_seconds (0: only on request_reload) while the server runs."""
        if self._thread is None and self.source.alias is not None:
            self._thread = threading.Thread(target=self._run, name="textops-follow", daemon=True)
            self._thread.start()

    def request_reload(self) -> None:
        """Check now, in the poller's thread (safe from a signal handler)."""
        self._wake.set()

    def reload(self, timeout: float = 900) -> dict:
        """Check now, forced, and return the result (POST /reload). The poller does it when there is one, so every
        load runs in its thread, at its lower CPU priority."""
        if self._thread is None:
            return self.check(force=True)
        waiter: tuple[threading.Event, dict] = (threading.Event(), {})
        with self._waiters_lock:
            self._waiters.append(waiter)
        self._wake.set()
        if not waiter[0].wait(timeout):
            return {
                "result": "failed",
                "model_version": self.current.model_version if self.current else None,
                "error": {"message": f"the check did not finish within {timeout:.0f} s"},
            }
        return waiter[1]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        lower_priority()
        while not self._stop.is_set():
            forced = self._wake.wait(self.poll_seconds or None)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._waiters_lock:  # those who asked before this check began get its result
                waiters, self._waiters = self._waiters, []
            result = self.check(force=forced or bool(waiters))
            for done, box in waiters:
                box.update(result)
                done.set()


def lower_priority() -> None:
    """Let the calling thread yield the CPU to the threads that answer requests: a load and its warm-up compete
    less with inference (Linux: a thread's nice value; elsewhere nothing)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOADER_NICE)
    except (AttributeError, OSError):
        pass


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:500] if text.strip() else type(exc).__name__


class RegistrySource:
    """The MLflow registry of a project: `models:/NAME@ALIAS`, or one pinned VERSION (alias None), loaded with the
    serving runtime of SERVE (params.serve; None: PyTorch)."""

    def __init__(
        self,
        session: Session,
        alias: str | None = lineage.CHAMPION_ALIAS,
        version: str | None = None,
        serve: ServeParams | None = None,
    ):
        self.session, self.alias, self.version = session, (None if version else alias), version
        self.serve = serve

    def target(self) -> str | None:  # a subclass (ShadowSource) may name none
        if self.alias is None:
            return str(self.version)
        return str(self.session.client.get_model_version_by_alias(self.session.model_name, self.alias).version)

    def load(self, version: str) -> Loaded:
        from textops.modeling.predict import load_model

        mv = self.session.client.get_model_version(self.session.model_name, version)
        model = load_model(self.session, lineage.model_uri(self.session.model_name, version), self.serve)
        runtime = getattr(model.unwrap_python_model(), "runtime", "torch")
        return Loaded(
            model,
            self.session.model_name,
            str(version),
            self.alias,
            time.time(),
            0.0,
            self.data_version(mv),
            mv.run_id,
            runtime,
        )

    def data_version(self, mv) -> dict:
        """The data a version was trained on: its evidence tags, else its training run's lineage tags."""
        raw = mv.tags.get(lineage.challenger_evidence("data.raw_md5"))
        rev = mv.tags.get(lineage.challenger_evidence("data.rev"))
        if (raw is None or rev is None) and mv.run_id:
            try:
                tags = self.session.client.get_run(mv.run_id).data.tags
            except Exception:  # the run was deleted: the version still serves
                tags = {}
            raw, rev = raw or tags.get(lineage.RAW_MD5), rev or tags.get(lineage.DATA_REV)
        return {"raw_md5": raw, "rev": rev}


class ShadowSource(RegistrySource):
    """The `challenger` alias while it names another version than `champion` (serve.shadow), else nothing."""

    def __init__(self, session: Session, serve: ServeParams | None = None):
        super().__init__(session, alias=lineage.CHALLENGER_ALIAS, serve=serve)

    def target(self) -> str | None:
        from mlflow.exceptions import MlflowException

        client, name = self.session.client, self.session.model_name
        try:
            challenger = str(client.get_model_version_by_alias(name, lineage.CHALLENGER_ALIAS).version)
        except MlflowException:
            return None
        try:
            champion = str(client.get_model_version_by_alias(name, lineage.CHAMPION_ALIAS).version)
        except MlflowException:
            champion = None
        return None if challenger == champion else challenger


# --------------------------------------------------------------------------------------------------
# what `GET /version` says of a follower


def describe_shadow(shadow: Follower | None) -> dict | None:
    """`GET /version`'s `shadow`: the challenger scoring in shadow, and why it could not be loaded when that is so;
    None with serve.shadow off or nothing to shadow."""
    if shadow is None or (shadow.current is None and shadow.last_error is None):
        return None  # shadow off, or nothing to shadow (no challenger apart from the champion)
    current = shadow.current
    about: dict[str, str | None] = {"model_version": None, "alias": None, "runtime": None}
    if current is not None:
        about = {"model_version": current.model_version, "alias": current.alias, "runtime": current.runtime}
    error = shadow.last_error
    if error is not None:
        error = {**error, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(error["at"]))}
    return {**about, "last_load_error": error}


def describe(follower: Follower) -> dict:
    """`GET /version`: the model that answers now, and how following the registry goes."""
    cur = follower.current

    def iso(t: float | None) -> str | None:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None

    error = dict(follower.last_error, at=iso(follower.last_error["at"])) if follower.last_error else None
    return {
        "model_name": cur.model_name if cur else None,
        "model_version": cur.model_version if cur else None,
        "alias": follower.source.alias,
        "data": cur.data if cur else {},
        "run_id": cur.run_id if cur else None,
        "runtime": cur.runtime if cur else None,
        "loaded_at": iso(cur.loaded_at) if cur else None,
        "load_seconds": round(cur.load_seconds, 3) if cur else None,
        "last_check": iso(follower.last_check),
        "poll_seconds": follower.poll_seconds if follower.source.alias else None,
        "last_reload_error": error,
    }
