"""The one door to the outside: every external command goes through :func:`run`.

It echoes the command with secrets masked, checks the tool exists, and raises
a typed error instead of returning a failed status.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from .console import mask, say, task_log
from .errors import CommandError


def which(tool: str) -> str | None:
    """Full path of ``tool`` on PATH, or None."""
    return shutil.which(tool)


def _require(args: list[str]) -> None:
    if which(args[0]) is None and not Path(args[0]).exists():
        raise CommandError(f"{args[0]}: command not found (needed for: {mask(shlex.join(args))})")


def spawn(argv: Sequence[str | Path], log: Path, *, env: Mapping[str, str] | None = None) -> int:
    """Start a long-running service in its own session, output to ``log``; return its pid."""
    args = [str(a) for a in argv]
    _require(args)
    say(f"+ {mask(shlex.join(args))} &> {log}")
    full_env = {**os.environ, **env} if env is not None else None
    # Service logs may show addresses, user names and tokens: readable by their owner only.
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        os.fchmod(out.fileno(), 0o600)
        # In the log's folder: a service outlives the caller's working directory (a CI job's checkout).
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=full_env, cwd=log.parent)
    return proc.pid


def run(argv: Sequence[str | Path], *, capture: bool = False, check: bool = True, quiet: bool = False,
        env: Mapping[str, str | None] | None = None, cwd: Path | None = None, input: str | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (never through a shell); raise CommandError when it fails and ``check``.

    ``env`` is laid over this process's environment; a None value removes that variable.
    Uncaptured output goes to the log of the running task (console.task), unless -v streams it.
    """
    args = [str(a) for a in argv]
    _require(args)
    log = None if capture else task_log()
    if log:
        with open(log, "a") as out:
            out.write(f"+ {mask(shlex.join(args))}\n")
    elif not quiet:
        say(f"+ {mask(shlex.join(args))}")
    full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None} if env is not None else None
    try:
        # Uncaptured output goes to stderr so that stdout stays clean for --json.
        with open(log, "a") if log else contextlib.nullcontext() as out:
            proc = subprocess.run(args, stdout=subprocess.PIPE if capture else out or 2,
                                  stderr=subprocess.PIPE if capture else subprocess.STDOUT if out else None,
                                  text=True, env=full_env, cwd=cwd, input=input, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CommandError(f"{mask(shlex.join(args))}: no answer after {timeout} s") from None
    if check and proc.returncode != 0:
        if log:  # the task shows the log's last lines as it ends
            detail = f" (its output: {log})"
        else:
            output = mask((proc.stderr or proc.stdout or "").strip()[-2000:]) if capture else ""
            detail = f":\n{output}" if output else ""
        raise CommandError(f"{mask(shlex.join(args))} exited with {proc.returncode}{detail}")
    return proc


@contextlib.contextmanager
def stream(argv: Sequence[str | Path], *, quiet: bool = False) -> Iterator[IO[bytes]]:
    """Run ``argv`` and give its standard output as a byte stream to read while it runs (an export too big
    to hold); CommandError when it fails."""
    args = [str(a) for a in argv]
    _require(args)
    if not quiet:
        say(f"+ {mask(shlex.join(args))}")
    with tempfile.TemporaryFile() as err, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err) as proc:
        yield proc.stdout
        proc.stdout.read()  # what the reader left, so that the command can finish
        proc.wait()
        if proc.returncode != 0:
            err.seek(0)
            detail = mask(err.read().decode(errors="replace").strip()[-2000:])
            raise CommandError(f"{mask(shlex.join(args))} exited with {proc.returncode}:\n{detail}")
