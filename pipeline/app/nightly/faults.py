"""A test hook: COARCHIVE_NIGHTLY_FAULT makes a stage fail or its process die, to prove resume and retry.

The value is a comma-separated list of STAGE:MODE[:ATTEMPT]. MODE 'raise' raises at the stage's start; 'kill' sends
SIGKILL to the process after the stage's work, before its done-marker. With ATTEMPT, only that attempt faults.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "COARCHIVE_NIGHTLY_FAULT"
MODES = ("raise", "kill")


class InjectedFaultError(RuntimeError):
    """The failure asked for by COARCHIVE_NIGHTLY_FAULT."""


def _faults() -> list[tuple[str, str, int | None]]:
    out = []
    for item in filter(None, (p.strip() for p in os.environ.get(FAULT_ENV, "").split(","))):
        parts = item.split(":")
        if len(parts) not in (2, 3) or parts[1] not in MODES or (len(parts) == 3 and not parts[2].isdigit()):
            raise ValueError(f"{FAULT_ENV}: bad entry {item!r}; use STAGE:raise|kill[:ATTEMPT]")
        out.append((parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None))
    return out


def maybe_fault(stage: str, mode: str, attempt: int) -> None:
    """Raise InjectedFaultError or SIGKILL this process if COARCHIVE_NIGHTLY_FAULT asks for it here."""
    for name, wanted, only in _faults():
        if name == stage and wanted == mode and only in (None, attempt):
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise InjectedFaultError(f"injected failure in stage {stage} (attempt {attempt}, {FAULT_ENV})")
