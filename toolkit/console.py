"""Terminal output: plain tables, step messages and the progress of long tasks, all on stderr.

A task (one artifact's build, one builder image) sends the output of the tools it runs to its own log
file. How its progress shows depends on where the output goes (:func:`configure`): on a terminal, one
line per running task with its elapsed time, updated in place (rich); without a terminal or with
``--plain``, one line per state change and no control characters; with ``-v``, the tools' output streams
as it comes, between those lines. A failed task shows the last lines of its log and the log's path.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

LIVE, PLAIN, VERBOSE = "live", "plain", "verbose"
TAIL = 25  # lines of a failed task's log shown


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format ``rows`` as an aligned plain-text table under ``headers``."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _View:
    """The running tasks and, on a terminal, the live display of them."""

    def __init__(self) -> None:
        self.mode = PLAIN
        self.lock = threading.Lock()
        self.running: dict[str, tuple[str, float]] = {}  # task -> (what it does, when it started)
        self.live: Live | None = None

    def __rich__(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for key, (what, started) in list(self.running.items()):
            grid.add_row("[bold cyan]running[/]", key, what, f"{now - started:.0f} s")
        return grid

    def start(self, key: str, what: str) -> None:
        with self.lock:
            self.running[key] = (what, time.monotonic())
            if self.mode == LIVE and self.live is None:
                self.live = Live(self, console=Console(file=sys.stderr), refresh_per_second=4, transient=True)
                self.live.start(refresh=True)  # drawn now: a task done within 1/4 s still shows it ran
        if self.mode != LIVE:
            say(f"==> {key}: {what}")

    def stop(self, key: str) -> float:
        with self.lock:
            seconds = time.monotonic() - self.running.pop(key)[1]
            if self.live is not None and not self.running:
                self.live.stop()
                self.live = None
        return seconds


_view = _View()
_SECRETS: set[str] = set()
_task_log: contextvars.ContextVar[Path | None] = contextvars.ContextVar("task_log", default=None)


def configure(*, verbose: bool = False, plain: bool = False, stream: TextIO | None = None) -> str:
    """Choose how progress shows for this run (``-v``, ``--plain``, and whether stderr is a terminal)."""
    tty = (stream or sys.stderr).isatty()
    _view.mode = VERBOSE if verbose else LIVE if tty and not plain else PLAIN
    return _view.mode


def verbose() -> bool:
    """True when the tools' output streams to the terminal (``-v``)."""
    return _view.mode == VERBOSE


def task_log() -> Path | None:
    """The log file of the task this thread runs, where the tools' output goes (None: no task, or -v)."""
    return None if verbose() else _task_log.get()


def register_secret(value: str) -> None:
    """Never print ``value``: commands, captured output and task logs shown show *** instead."""
    if value:
        _SECRETS.add(value)


def mask(text: str) -> str:
    """Replace every registered secret in ``text`` with ***."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


def say(text: str, stream: TextIO | None = None) -> None:
    """One line to stderr in a single write, so that the lines of parallel builds never interleave; above the
    live display when there is one."""
    live = _view.live
    if live is not None and stream is None:
        live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    out = stream or sys.stderr
    out.write(text + "\n")
    out.flush()


def step(message: str, stream: TextIO | None = None) -> None:
    """Announce a step of a long-running stage (to stderr, so --json stdout stays clean)."""
    say(f"==> {message}", stream)


@contextlib.contextmanager
def task(key: str, what: str, log: Path) -> Iterator[None]:
    """Run a long task (``key``: the artifact or image it makes) whose tools write to ``log`` (emptied first)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    log.chmod(0o600)  # tools' output can show addresses, user names, tokens: readable by its owner only
    token = _task_log.set(log)
    _view.start(key, what)
    try:
        yield
    except BaseException:
        seconds = _view.stop(key)
        lines = log.read_text(errors="replace").splitlines()[-TAIL:]
        say("\n".join([f"==> {key}: {what} FAILED after {seconds:.0f} s; the last lines of {log}:",
                       *(f"    {mask(line)}" for line in lines)]))
        raise
    finally:
        _task_log.reset(token)
    say(f"==> {key}: {what} done in {_view.stop(key):.0f} s (log: {log})")
