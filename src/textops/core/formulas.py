"""Texts a spreadsheet would run as a formula when someone opens a CSV holding them (OWASP's "CSV injection"): one
definition for the raw suite that refuses them (textops.data.validate) and for the files textops writes for people
and for the next ingest (the label queue, the feedback export, the CSV and TSV files `textops predict` writes on
either engine)."""

from __future__ import annotations

import re

# A leading =, +, -, @ and a function call (=HYPERLINK(, @SUM(), or a DDE call anywhere (cmd|' /C calc'!A0).
# Linear time on long texts: the first branch is anchored, the second starts only at a word boundary (an
# unanchored `[A-Za-z]+\|` backtracks quadratically over a 1 MB run of letters).
FORMULA = r"""^[\s"']*[=+\-@][\s"']*[A-Za-z_][A-Za-z0-9_.]*\(|\b[A-Za-z]+\|\s*'[^']*'\s*!"""
_FORMULA = re.compile(FORMULA)


def is_formula(text: object) -> bool:
    return isinstance(text, str) and _FORMULA.search(text) is not None


def neutralized(text: object) -> object:
    """TEXT as a spreadsheet shows it instead of running it: a formula gets a leading apostrophe (OWASP's advice),
    anything else is returned as it is."""
    return f"'{text}" if is_formula(text) else text


def neutralized_table(frame):
    """FRAME (a pandas DataFrame) with every formula cell neutralized, for a CSV or TSV a person may open in a
    spreadsheet: a copy when one was found, else FRAME itself. Number columns cannot hold one and are skipped."""
    out = frame
    for column in frame.columns:
        values = frame[column]
        # Plain iteration, not Series.map: a column may be any array type (Ray's Python-object columns included).
        if values.dtype.kind in "biufcmM" or not any(is_formula(v) for v in values):
            continue
        if out is frame:
            out = frame.copy()
        out[column] = [neutralized(v) for v in values]
    return out
