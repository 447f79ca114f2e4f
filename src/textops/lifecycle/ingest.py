"""Ingest: labelled files become immutable, DVC-versioned batches in data/raw.

Raw batches are JSON Lines written by this module (`data/raw/batch-<sha256 of content>.jsonl`, columns
`text` and `label` as strings): byte-stable across library versions, so the same rows always give the
same DVC hash. `data/` is tracked by `data.dvc` and pushed to the default DVC remote.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from textops.adapters import dvc, git
from textops.core.artifacts import landing_files
from textops.core.config import Params
from textops.core.errors import DataError, PushFailed, ValidationFailed
from textops.data.landing import batch_bytes, batch_path, demo_files, demo_marker, source_path, source_record
from textops.data.recovery import data_lock, drop_removed, journal, read_text, remove_files, staging_dir
from textops.lifecycle.ingest_checks import check_candidate, check_files, existing_rows, read_files, set_aside_rows
from textops.registry.guards import champion_collapse

log = logging.getLogger("textops")


@dataclass
class IngestResult:
    source: str
    batch: str
    rows: int
    added: bool
    dropped_lines: list[int] = field(default_factory=list)  # rows with an empty text or label, left out
    replaced_demo: int = 0  # rows of the built-in demo sample this ingest took out of the data (the first result)
    set_aside: int = 0  # rows left out for a check of their own (`textops.data.set_aside`), written beside the file
    set_aside_file: str | None = None

    def describe(self) -> str:
        dropped = ""
        if self.dropped_lines:
            shown = ", ".join(map(str, self.dropped_lines[:10])) + (", ..." if len(self.dropped_lines) > 10 else "")
            dropped = f" (left out {len(self.dropped_lines)} row(s) with an empty text or label: line {shown})"
        if self.set_aside:
            where = f" -> {self.set_aside_file}" if self.set_aside_file else " (the folder is read-only: not written)"
            dropped += f" (set aside {self.set_aside} row(s) holding a spreadsheet formula{where})"
        if self.replaced_demo:
            dropped += (
                f"\nyour data replaces the built-in demo sample ({self.replaced_demo} rows), so the next model learns "
                "from your rows alone; `textops data versions` lists the demo's data version, and `textops data "
                "checkout` brings it back (ingest with --keep-demo to add to the demo instead)"
            )
        if self.added:
            return f"ingested {self.source}: {self.rows} rows -> {self.batch}{dropped}"
        return f"already ingested {self.source} ({self.batch}); nothing to do{dropped}"


def write_batch(root: Path, rel: str, content: bytes) -> None:
    """Write a batch file: staged outside data/, fsynced, read-only, then renamed into place."""
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="batch-", dir=staging_dir(root))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def push_raw(root: Path, params: Params) -> None:
    """`dvc push` data.dvc when a default remote is configured."""
    repo = dvc.dvc_repo(root)
    pointer = root / dvc.raw_pointer(params)
    if not repo.config["core"].get("remote") or not pointer.exists():
        return
    try:
        repo.push([str(pointer)])
    except Exception as exc:  # the batch is safe in the local cache; say so instead of failing ingest
        raise PushFailed(
            f"the data is versioned in the local DVC cache, but `dvc push` to the default remote failed: {exc}. "
            "Fix the remote (`dvc remote list`) and run `dvc push`, or ingest again: nothing was lost."
        ) from exc


def track_raw(root: Path, params: Params, message: str | None) -> None:
    """`dvc add data` and, with MESSAGE, a git commit of data.dvc."""
    # Absolute target: DVC resolves relative ones against the process's cwd, not the repo.
    dvc.dvc_repo(root).add([str(root / dvc.tracked_dir(params))])
    if message:
        git.commit_files(root, [dvc.raw_pointer(params), ".gitignore"], message)


def ingest(
    paths: list[Path],
    root: Path,
    params: Params,
    text_column: str | None = None,
    label_column: str | None = None,
    commit: bool = False,
    allow_new_labels: bool = False,
    gate: bool = True,
    accept_shift: bool = False,
    header: bool = True,
    allow_relabel: bool = False,
    keep_demo: bool = False,
    demo: bool = False,
    license: str | None = None,
    source: str | None = None,
) -> list[IngestResult]:
    """Check every file, then add each as an immutable batch and version data/ with DVC (and push).

    Checks, all before anything is written: each file is readable and passes the raw suite; all files
    together pass the batch checks; no unknown label (unless ALLOW_NEW_LABELS); no file relabels texts already in the
    data (unless ALLOW_RELABEL); unless ACCEPT_SHIFT (a person looked), the champion still scores on them about as
    well as it expects there; with GATE, the data with these files added still passes the clean suites. A bad file
    in a list leaves data/ as it was, and so does a killed ingest (see textops.data.recovery).

    Into a project whose data is the embedded demo alone (`textops run` on an empty project), the files replace
    the demo (unless KEEP_DEMO): the labels, relabel and champion checks then have nothing to compare with. DEMO
    marks the batch written as that demo (`ingest_sample`). LICENSE and SOURCE (default: params' `dataset`) are
    recorded beside each batch (`landing.source_record`).
    """
    from textops.data.validate import validate_raw

    root = Path(root)
    columns = (text_column or params.data.text_column, label_column or params.data.label_column)
    if commit:
        git.require_commit(root)
    with data_lock(root):
        dvc.require_untouched_raw(root, params)  # a hand-edited batch must not slip into the next data version
        files, aside = set_aside_rows(root, params, read_files(paths, params, columns, header))
        validate_raw(files, params)
        replacing = [] if keep_demo or demo else demo_files(root, params)
        existing = existing_rows(root, params, replacing)
        check_files(files, existing, params, allow_new_labels, allow_relabel)

        about = (license or params.dataset.license, source or params.dataset.source)
        results, planned = plan_batches(root, params, files, demo, about, aside)
        if not planned:
            # Nothing new, but an earlier ingest may have failed to push: push is a no-op when up to date.
            push_raw(root, params)
            return results
        new = [f for (_, f), r in zip(files, results, strict=True) if r.added]
        if gate:
            check_candidate(root, params, existing, new, [Path(r.source).name for r in results if r.added])
        # On by default: a batch of wrong labels passes every data check, and only the champion sees it.
        # Against the demo's champion (it knows only the synthetic sample) the check would judge nothing real.
        checked = not (accept_shift or replacing)
        held = champion_collapse(root, params, pd.concat(new, ignore_index=True)) if checked else None
        if held:
            raise ValidationFailed(f"{', '.join(Path(r.source).name for r in results if r.added)}: {held}")

        write_batches(root, params, planned, results, replacing, commit)
        # After the journal: a failed push keeps the batches (they are versioned in the local cache).
        push_raw(root, params)
    return results


def plan_batches(
    root: Path,
    params: Params,
    files: list[tuple[str, pd.DataFrame]],
    demo: bool,
    about: tuple = (None, None),
    aside: dict | None = None,
):
    """One result per file, and the batches to write ({path: bytes}, with the demo marker when DEMO): a file whose
    rows are already a batch (or another file's in this list) adds nothing."""
    results, planned = [], {}
    for source, frame in files:
        content = batch_bytes(frame)
        rel = batch_path(params, content)
        added = not (root / rel).exists() and rel not in planned
        if added:
            planned[rel] = content
            planned[source_path(rel)] = source_record(source, frame, *about)
        result = IngestResult(source, rel, len(frame), added, frame.attrs.get("dropped_lines", []))
        result.set_aside, result.set_aside_file = (aside or {}).get(source, (0, None))
        results.append(result)
    if demo and planned:
        marker, marker_bytes = demo_marker(params, next(iter(planned.values())))  # the batch: written first
        planned[marker] = marker_bytes
    return results, planned


def write_batches(
    root: Path,
    params: Params,
    planned: dict[str, bytes],
    results: list[IngestResult],
    replacing: list[str],
    commit: bool,
) -> None:
    """Under the journal: take REPLACING (the demo) out, write the PLANNED batches, `dvc add` (and commit)."""
    pointer = dvc.raw_pointer(params)
    names = [Path(r.source).name for r in results if r.added]
    demo_rows = len((root / replacing[0]).read_bytes().splitlines()) if replacing else 0
    saved = {"pointer": pointer, "pointer_text": read_text(root / pointer), "batches": list(planned)}
    with journal(root, "ingest", **saved, sources=names, removed=replacing):
        remove_files(root, replacing)
        for rel, content in planned.items():
            write_batch(root, rel, content)
        track_raw(root, params, f"data: ingest {', '.join(names)}" if commit else None)
    drop_removed(root)
    if replacing:
        next(r for r in results if r.added).replaced_demo = demo_rows


def ingest_sample(root: Path, params: Params, output: Path | None = None, ingest_it: bool = True, demo: bool = False):
    """Write the built-in sample (see textops.data.sample) and ingest it; None when only written. DEMO marks it as the
    embedded demo (`textops run` on an empty project), which the user's own data then replaces."""
    from textops.data.sample import make_sample

    frame = make_sample(params.sample.rows, params.sample.seed)
    if output is not None:
        frame.to_csv(output, index=False)
    if not ingest_it:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sample-{params.sample.rows}-seed{params.sample.seed}.csv"
        frame.to_csv(path, index=False)
        # The built-in sample is labelled by construction: no champion check.
        result = ingest(
            [path],
            Path(root),
            params,
            text_column="text",
            label_column="label",
            gate=False,
            accept_shift=True,
            demo=demo,
        )[0]
    return replace(result, source=f"the built-in sample ({params.sample.rows} rows, seed {params.sample.seed})")


# --------------------------------------------------------------------------------------------------
# the landing directory (the scheduled `retrain` flow)


def ingest_landing(root: Path, params: Params) -> list[IngestResult]:
    """Ingest every landing file as one gated batch (all are checked before any is written) and commit data.dvc
    (`ingest_settled`: the files then move to `ingested/`, a refused one to `held/`)."""
    files = landing_files(root, params)
    if not files:
        return []
    return ingest_settled(files, root, params, commit=True, gate=True)


def ingest_settled(paths: list[Path], root: Path, params: Params, **options) -> list[IngestResult]:
    """`ingest`, then the landing files among PATHS leave the landing directory: to `ingested/` when they went in,
    and, when the data refused them, those the refusal names to `held/` with the reason beside each
    (`textops.lifecycle.landed`). Any other failure (a lock, the store, the remote) leaves them waiting."""
    from textops.lifecycle.landed import settle_ingested, settle_refused

    try:
        results = ingest(paths, root, params, **options)
    except (DataError, ValidationFailed) as exc:
        held = settle_refused(root, params, paths, str(exc))
        if held:
            folder = f"{params.data.landing_dir}/{held[0].parent.name}"
            exc.args = (f"{exc} Moved {', '.join(p.name for p in held)} to {folder}/ with the reason beside it.",)
        raise
    settle_ingested(root, params, paths)
    return results
