"""Host plumbing for the engine: apt installs, detached services with pid files, waiting."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import tools
from ..console import step
from ..errors import EngineError

_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
_apt_updated = False


def apt_install(packages: Sequence[str], why: str) -> None:
    """Install Debian packages, once per process updating the lists first; root only."""
    global _apt_updated
    require_root(why, f"run `apt-get install {' '.join(packages)}` as root")
    step(f"installing {', '.join(packages)} ({why})")
    if not _apt_updated:
        tools.run(["apt-get", "update", "-qq"], env=_APT_ENV)
        _apt_updated = True
    tools.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=_APT_ENV,
              capture=True)


def require_root(what: str, manual: str) -> None:
    """Raise EngineError saying what to do by hand when not root."""
    if os.geteuid() != 0:
        raise EngineError(f"{what} is missing and installing it needs root: {manual}, then retry")


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 60.0, log: Path | None = None) -> None:
    """Poll ``ready`` until it holds; raise EngineError naming ``what`` (and its log) on timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            hint = f"; its log: {log}" if log else ""
            raise EngineError(f"{what} did not come up within {timeout:.0f} s{hint}")
        time.sleep(0.3)


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces
    return None if fields[0] == "Z" else fields[19]


def read_pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` if that very process still runs, else None.

    The file records the process's start time too: after a reboot the pid may belong to another
    process, which must never be taken for (or signalled as) the one the toolkit started.
    """
    try:
        record = json.loads(pidfile.read_text())
        pid, started = int(record["pid"]), str(record["start"])
    except (OSError, ValueError, TypeError, KeyError):  # absent, or not written by this toolkit
        return None
    return pid if _start_time(pid) == started else None


def start_service(name: str, argv: Sequence[str | Path], state: Path,
                  env: dict[str, str] | None = None) -> int:
    """Start ``argv`` detached; its pid goes to STATE/NAME.pid and its output to STATE/NAME.log."""
    state.mkdir(parents=True, exist_ok=True)
    pid = tools.spawn(argv, state / f"{name}.log", env=env)
    write_pid(state / f"{name}.pid", pid)
    return pid


def write_pid(pidfile: Path, pid: int) -> None:
    """Record ``pid`` with its start time, so that a later reader can tell it from a reused pid."""
    pidfile.write_text(json.dumps({"pid": pid, "start": _start_time(pid)}) + "\n")


def stop_service(name: str, state: Path, timeout: float = 20.0) -> bool:
    """Stop the service the toolkit started (by its pid file); False when none ran."""
    pidfile = state / f"{name}.pid"
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    step(f"stopping {name} (pid {pid})")
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise EngineError(f"{name} (pid {pid}) was started by another user; stop it as that user "
                          "(e.g. `sudo toolkit engine down`)") from None
    deadline = time.monotonic() + timeout
    while read_pid(pidfile) is not None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    pidfile.unlink(missing_ok=True)
    return True


@dataclasses.dataclass(frozen=True, kw_only=True)
class Status:
    """One engine component as `engine status` reports it."""

    name: str
    up: bool
    version: str = ""
    address: str = ""
    started_by: str = ""  # "toolkit", "external" (the user's), or "" when down
    detail: str = ""


def started_by(state: Path, name: str) -> str:
    """"toolkit" when our pid file names a live process, else "external"."""
    return "toolkit" if read_pid(state / f"{name}.pid") else "external"
