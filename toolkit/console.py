"""Terminal output: plain tables and step messages, all to the given stream."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format ``rows`` as an aligned plain-text table under ``headers``."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def say(text: str, stream: TextIO | None = None) -> None:
    """One line to stderr in a single write, so that the lines of parallel builds never interleave."""
    out = stream or sys.stderr
    out.write(text + "\n")
    out.flush()


def step(message: str, stream: TextIO | None = None) -> None:
    """Announce a step of a long-running stage (to stderr, so --json stdout stays clean)."""
    say(f"==> {message}", stream)
