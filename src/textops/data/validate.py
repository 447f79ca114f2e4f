"""The data gate: Great Expectations suites on raw input (before ingest) and on the cleaned splits.

Suites are defined here in code and run in an ephemeral GX context that is built fresh for every call,
so there is no stored context whose "datasource already exists" state can go stale between runs. One
context validates every suite of a call (GX costs seconds to import and set up, milliseconds per suite).

Checks that count things (rows per class, class imbalance, texts shared between splits) validate a
small derived frame with an ordinary GX suite, so that they show up in the report and in the error message
like any other expectation.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from textops.adapters.dvc import record_stage
from textops.core.artifacts import (
    SPLITS,
    VALIDATE_METRICS,
    atomic_write_json,
    atomic_write_text,
    load_split,
    read_labels,
)
from textops.core.config import DataParams, Params
from textops.core.errors import ValidationFailed
from textops.core.formulas import FORMULA

# Raw text is not cleaned yet (whitespace runs, markup): allow this many times data.max_chars before
# refusing a file; preprocess drops the rows that are still too long after cleaning.
RAW_LENGTH_FACTOR = 10
# How many failing values the error message shows per expectation (the report shows as many).
EXAMPLES = 5
# Derived column holding each text's Python type name: pandas 3's `str` dtype does not match GX's
# type-list expectation, and a non-string value would make the length and regex checks raise.
TEXT_TYPE = "text_type"


# --------------------------------------------------------------------------------------------------
# suites


def raw_expectations(max_chars: int, refuse_formulas: bool = True) -> list:
    """The raw suite: a canonical frame (text, label as strings) about to enter data/raw."""
    import great_expectations.expectations as gxe

    formulas = (
        [gxe.ExpectColumnValuesToNotMatchRegex(column=c, regex=FORMULA) for c in ("text", "label")]
        if refuse_formulas
        else []
    )
    return formulas + [
        gxe.ExpectColumnToExist(column="text"),
        gxe.ExpectColumnToExist(column="label"),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="text"),
        gxe.ExpectColumnValuesToBeInSet(column=TEXT_TYPE, value_set=["str"]),
        # Non-empty: at least one non-space character (an all-blank text carries no signal).
        gxe.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="text", max_value=max_chars * RAW_LENGTH_FACTOR),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToMatchRegex(column="label", regex=r"\S"),
    ]


def batch_expectations(min_classes: int, max_duplicate_fraction: float) -> list:
    """All files of one ingest together: enough classes, not mostly copies of a few rows."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="label", min_value=min_classes),
        # GX counts every copy of a repeated text as unexpected; `mostly` is the share that must be unique.
        gxe.ExpectColumnValuesToBeUnique(column="text", mostly=round(1.0 - max_duplicate_fraction, 6)),
    ]


def split_expectations(split: str, n_labels: int, data: DataParams, min_rows: int) -> list:
    """One cleaned split: columns, types, text lengths, label ids, no duplicate text, enough rows."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnToExist(column="text"),
        gxe.ExpectColumnToExist(column="label"),
        gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
        gxe.ExpectColumnValuesToNotBeNull(column="text"),
        gxe.ExpectColumnValuesToBeInSet(column=TEXT_TYPE, value_set=["str"]),
        gxe.ExpectColumnValueLengthsToBeBetween(column="text", min_value=data.min_chars, max_value=data.max_chars),
        # preprocess dedupes; a duplicate here means the splits were written by something else.
        gxe.ExpectColumnValuesToBeUnique(column="text"),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToBeInTypeList(column="label", type_list=["int64", "int32", "int16", "int8"]),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(n_labels))),
    ]


def class_expectations(min_per_class: int, max_ratio: float | None) -> list:
    """A split's class counts (one row per known class, zeros included): enough rows, bounded imbalance."""
    import great_expectations.expectations as gxe

    exps = [
        gxe.ExpectTableRowCountToBeBetween(min_value=2),  # a classifier needs two classes (rows: one per class)
        gxe.ExpectColumnValuesToBeBetween(column="count", min_value=min_per_class),
    ]
    if max_ratio is not None:
        exps.append(gxe.ExpectColumnValuesToBeBetween(column="ratio_to_smallest", max_value=max_ratio))
    return exps


def overlap_expectations() -> list:
    """Every split's distinct texts together: a text in two splits leaks test data into training."""
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnValuesToBeUnique(column="text")]


# --------------------------------------------------------------------------------------------------
# derived frames


def with_text_type(frame: pd.DataFrame) -> pd.DataFrame:
    """FRAME plus the type name of each non-null text (see TEXT_TYPE)."""
    if "text" not in frame.columns:
        return frame
    kinds = frame["text"].map(
        lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else type(v).__name__
    )
    return frame.assign(**{TEXT_TYPE: kinds.astype(object)})


def class_counts(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Rows per known class (label names, zeros included) and each count over the smallest one."""
    ids = pd.to_numeric(frame["label"], errors="coerce") if "label" in frame.columns else pd.Series(dtype=float)
    per_id = ids.value_counts()
    counts = pd.DataFrame({"label": labels, "count": [int(per_id.get(i, 0)) for i in range(len(labels))]})
    smallest = counts["count"].min() if len(counts) else 0
    # A class with no rows makes the ratio infinite: it fails the bound too, next to the count check.
    counts["ratio_to_smallest"] = counts["count"] / smallest if smallest else math.inf
    return counts


def shared_texts(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The distinct texts of each split, stacked: a text that appears twice is in two splits."""
    parts = [
        pd.DataFrame({"text": frame["text"].drop_duplicates(), "split": name})
        for name, frame in splits.items()
        if "text" in frame.columns
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"text": [], "split": []})


# --------------------------------------------------------------------------------------------------
# running suites


def gx_context():
    """A fresh ephemeral GX context with no Data Docs site: the report is textops' own page (textops.data.reports),
    because GX's pages load their scripts from CDNs (blank offline) and put data values into the HTML unescaped."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        # No temporary docs site: GX would otherwise write a copy of the docs under /tmp.
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),  # tqdm bars would flood DVC and Prefect logs
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suites(context, checks: list[tuple[str, pd.DataFrame, list, list[str]]]) -> list:
    """Validate each (suite name, frame, expectations, id columns) in CONTEXT; GX's suite results."""
    import great_expectations as gx

    source = context.data_sources.add_pandas("textops")
    results = []
    for name, frame, expectations, id_columns in checks:
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
        if id_columns:
            # Names the failing rows (e.g. which class is short) instead of only their values. SUMMARY,
            # not COMPLETE: a big leak between splits would otherwise put every row into the report.
            result_format["unexpected_index_column_names"] = id_columns
        results.append((name, definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)))
    return results


def _examples(result: dict) -> list:
    rows = result.get("partial_unexpected_index_list") or []
    # With unexpected_index_column_names the rows are dicts naming them; else bare row numbers.
    if rows and all(isinstance(row, dict) for row in rows):
        return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows[:EXAMPLES]]
    return list(result.get("partial_unexpected_list") or [])[:EXAMPLES]


def _exception_message(info: dict) -> str | None:
    """The error an expectation raised (a missing column, a non-string value), if any.

    GX puts it at the top level, or per failed metric in a dict keyed by metric id.
    """
    if "raised_exception" in info:
        return str(info["exception_message"]) if info["raised_exception"] else None
    for value in info.values():
        if isinstance(value, dict) and value.get("exception_message"):
            return str(value["exception_message"]).strip().splitlines()[-1]
    return None


def expectation_record(suite: str, item) -> dict:
    """What a person needs of one expectation's result: what was checked, whether it held, and how it failed."""
    config = item.expectation_config
    result = item.result or {}
    record = {
        "suite": suite,
        "column": config.kwargs.get("column"),
        "expectation": config.type,
        "success": bool(item.success),
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": result.get("unexpected_percent"),
        "observed_value": result.get("observed_value"),
        "bounds": {k: config.kwargs[k] for k in ("min_value", "max_value") if config.kwargs.get(k) is not None},
        "examples": _examples(result),
    }
    error = _exception_message(item.exception_info or {})
    if error:
        record["error"] = error
    return record


def summarise(results: list) -> dict:
    """Counts per suite, every expectation's record (for the report) and the failed ones (for the message and
    the metrics)."""
    suites, records = {}, []
    for name, suite_result in results:
        mine = [expectation_record(name, item) for item in suite_result.results]
        records += mine
        failed = sum(not r["success"] for r in mine)
        suites[name] = {"success": failed == 0, "evaluated": len(mine), "failed": failed}
    failures = [{k: v for k, v in r.items() if k != "success"} for r in records if not r["success"]]
    return {
        "success": not failures,
        "evaluated": len(records),
        "failed": len(failures),
        "suites": suites,
        "failures": failures,
        "expectations": records,
    }


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def describe_failures(summary: dict, heading: str, docs: str | None) -> str:
    """The ValidationFailed message: one line per failed expectation, then where the report is."""
    lines = [f"{heading}: {summary['failed']} of {summary['evaluated']} expectations failed."]
    for f in summary["failures"]:
        where = f"{f['suite']}" + (f" / column {f['column']!r}" if f["column"] else "")
        what = f"  - {where}: {f['expectation']}"
        if f["bounds"]:
            # GX stores bounds as floats: show 20, not 20.0.
            shown = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in f["bounds"].items()}
            what += " (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"
        if f.get("error"):
            what += f" could not run ({f['error']})"
        elif f["unexpected_count"] is not None:
            what += f": {f['unexpected_count']} unexpected ({f['unexpected_percent']:.2f}%)"
            if f["examples"]:
                what += ", e.g. " + ", ".join(_short(v) for v in f["examples"])
        elif f["expectation"] == "expect_column_to_exist":
            what += ": no such column"
        elif f["observed_value"] is not None:
            what += f": observed {_short(f['observed_value'])}"
        lines.append(what)
    if docs:
        lines.append(f"Details per expectation: {docs} (summary: {VALIDATE_METRICS}).")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# the two gates


def validate_raw(files: list[tuple[str, pd.DataFrame]], params: Params) -> dict:
    """Gate before ingest: each file's canonical frame (text, label as str) must be fit to enter data/raw,
    and all of them together (one ingest) must hold enough classes and not be mostly duplicates.

    Raises ValidationFailed naming each failed expectation and the file. No report page: ingest runs on a
    user's files and the message (with examples) is the report.
    """
    data, bounds = params.data, params.validation
    checks: list[tuple[str, pd.DataFrame, list, list[str]]] = [
        (f"raw[{i}]", with_text_type(df), raw_expectations(data.max_chars, bounds.refuse_formulas), [])
        for i, (_, df) in enumerate(files)
    ]
    if files:
        batch = pd.concat([df.reindex(columns=["text", "label"]) for _, df in files], ignore_index=True)
        batch_suite = batch_expectations(bounds.min_batch_classes, bounds.max_duplicate_fraction)
        checks.append(("raw.batch", batch, batch_suite, []))
    summary = summarise(run_suites(gx_context(), checks))
    if not summary["success"]:
        names = {f"raw[{i}]": source for i, (source, _) in enumerate(files)}
        names["raw.batch"] = "all files of this ingest" if len(files) > 1 else files[0][0]
        failed = {f["suite"] for f in summary["failures"]}
        for f in summary["failures"]:
            f["suite"] = names.get(f["suite"], f["suite"])
        heading = f"{', '.join(sorted(names[s] for s in failed))}: raw data check failed, nothing was ingested"
        raise ValidationFailed(describe_failures(summary, heading, None))
    return {"success": True, "evaluated": summary["evaluated"], "failed": 0, "report": None}


def clean_checks(splits: dict[str, pd.DataFrame], labels: list[str], params: Params) -> list:
    """Every suite on the cleaned data: per split, per split's class counts, and across splits."""
    bounds = params.validation
    checks: list[tuple[str, pd.DataFrame, list, list[str]]] = []
    for name, frame in splits.items():
        # val/test are ~1/10 of the data each: they get a tenth of the row bound and 1 row per class.
        train = name == "train"
        min_rows = bounds.min_rows if train else max(1, math.ceil(bounds.min_rows / 10))
        checks.append(
            (f"clean.{name}", with_text_type(frame), split_expectations(name, len(labels), params.data, min_rows), [])
        )
        per_class = bounds.min_rows_per_class if train else 1
        # The imbalance bound is for the training data; small val/test counts would make it noisy.
        ratio = bounds.max_class_ratio if train else None
        checks.append(
            (f"clean.{name}.classes", class_counts(frame, labels), class_expectations(per_class, ratio), ["label"])
        )
    checks.append(("clean.splits", shared_texts(splits), overlap_expectations(), ["split"]))
    return checks


def check_clean(splits: dict[str, pd.DataFrame], labels: list[str], params: Params) -> dict:
    """Run every clean suite on SPLITS (in memory); the summary."""
    return summarise(run_suites(gx_context(), clean_checks(splits, labels, params)))


def validate(root: Path, params: Params) -> dict:
    """The `validate` stage: run the clean suites on artifacts/clean, write the metrics and the report.

    metrics/validate.json and the report (`validate.report_dir`/index.html: one self-contained page, every value
    from the data escaped, nothing loaded from the network) are written whether or not the data passes; a
    failure then raises ValidationFailed listing each failed expectation and pointing to the report.
    """
    from textops.data.reports import validation_page

    root = Path(root)
    labels = read_labels(root, params)
    splits = {name: load_split(root, params, name) for name in SPLITS}
    summary = check_clean(splits, labels, params)
    index = root / params.validation.report_dir / "index.html"
    docs = str(index.relative_to(root))  # the metric is committed: no machine-specific path in it
    rows = {name: len(frame) for name, frame in splits.items()}
    atomic_write_text(index, validation_page(summary, rows, labels))

    metrics = {k: summary[k] for k in ("success", "evaluated", "failed", "suites", "failures")}
    metrics["rows"] = rows
    metrics["report"] = docs
    atomic_write_json(root / VALIDATE_METRICS, metrics)
    record_stage(root, "validate")  # a failure too: dvc.lock says what the suites saw

    if not summary["success"]:
        raise ValidationFailed(describe_failures(summary, "validate: the cleaned data failed its checks", str(index)))
    return {
        "success": True,
        "evaluated": summary["evaluated"],
        "failed": 0,
        "report": str(index),
        "suites": summary["suites"],
    }
