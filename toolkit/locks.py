"""One run at a time per release directory and per engine state: a file lock that names its holder.

The lock itself is filelock's (an OS lock, released when the process dies, so a crash leaves none
behind); beside it a small JSON note says who holds it, for the message a second run prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import BusyError
from .manifest import now


@contextlib.contextmanager
def hold(path: Path, what: str) -> Iterator[None]:
    """Hold ``path``'s lock for the block; BusyError naming the holder when another run has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock, note = FileLock(f"{path}.lock"), Path(f"{path}.holder")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BusyError(f"{what} is in use by {_holder(note)}; wait for that run to end, or stop it") from None
    try:
        note.write_text(json.dumps({"pid": os.getpid(), "command": " ".join(["toolkit", *sys.argv[1:]]),
                                    "since": now()}))
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()


def _holder(note: Path) -> str:
    try:
        held = json.loads(note.read_text())
    except (OSError, ValueError):  # the holder has not written its note yet
        return "another run"
    return f"pid {held['pid']} (`{held['command']}`, since {held['since']})"
