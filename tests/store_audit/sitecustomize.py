"""Counts the SQLite connections a process opens to an `mlflow.db` (`helpers.audited`): on PYTHONPATH with
STORE_AUDIT_LOG set, each open appends a line to that file, the process id then the innermost textops frames. An
audit hook (the `sqlite3.connect` event): nothing is imported, nothing changes in the process."""

import os
import sys
import traceback

_log = os.environ.get("STORE_AUDIT_LOG")
if _log:

    def _hook(event, args):
        if event == "sqlite3.connect" and args and "mlflow.db" in str(args[0]):
            frames = [
                f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}"
                for f in traceback.extract_stack()
                if "/textops/" in f.filename or "/flows/" in f.filename
            ]
            with open(_log, "a") as out:
                out.write(f"{os.getpid()} {' < '.join(reversed(frames[-4:]))}\n")

    sys.addaudithook(_hook)
