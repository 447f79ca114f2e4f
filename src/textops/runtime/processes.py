"""Processes textops starts beside itself: a free port for a server, and a child that dies with its parent."""

from __future__ import annotations

import signal
import socket
import sys


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send SIG to this process when its parent dies (Linux's PR_SET_PDEATHSIG): a server textops
    starts must not outlive a textops that was SIGKILLed. False where the kernel cannot (not Linux); usable as a
    child's preexec_fn."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False
