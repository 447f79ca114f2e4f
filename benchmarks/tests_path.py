"""Puts the checkout's tests/ on sys.path, so that a benchmark imports what it shares with the tests: `support`
(a throwaway project, `textops` and `dvc` runners, serving, load, the production shape's servers), which is no part
of the wheel. A benchmark imports this module first, for that effect alone."""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
