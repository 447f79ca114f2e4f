"""Texts a spreadsheet would run as a formula when someone opens a CSV holding them (OWASP's "CSV injection"): one
definition for the raw suite that refuses them (textops.data.validate) and for the files textops writes for people
and for the next ingest (the label queue, the feedback export)."""

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
