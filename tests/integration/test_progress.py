"""What a person sees: a live view on a terminal, one line per state change without one, everything with -v."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUILDKIT = "load build definition"  # a line of BuildKit's own progress


def _images(dist: Path, *flags: str, tty: bool) -> str:
    """``toolkit images --force`` of the x86_64 none image, its stderr as a terminal (or a pipe) shows it."""
    argv = [sys.executable, "-m", "toolkit", "images", "--matrix", str(REPO / "matrix.toml"), "--dist", str(dist),
            "--cuda", "13.0", "--framework", "none", "--arch", "x86_64", "--force", *flags]
    if not tty:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=REPO, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    while select.select([leader], [], [], 900)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0, out.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


def test_a_terminal_gets_a_live_view_a_pipe_plain_lines_and_v_everything(built_images, tmp_path):
    dist = tmp_path / "dist"  # a copy: these builds are not pushed, and other tests read the session's records
    shutil.copytree(built_images[0], dist)
    image = "image:none:cu130:x86_64"

    live = _images(dist, tty=True)
    frames = [f for f in live.split("\r\x1b[2K") if image in f and "running" in f]
    assert frames, live[-2000:]  # the running line (a cached build of 0.3 s may be drawn only once)
    # ... then erased in place (cursor up, clear line) and replaced by the done line
    assert f"\x1b[1A\x1b[2K==> {image}: docker buildx build (linux/amd64) done in" in live, live[-2000:]
    assert BUILDKIT not in live and "+ docker buildx build" not in live  # the tool's output went to its log
    log = dist / "logs" / "image_none_cu130_x86_64.log"
    assert BUILDKIT in log.read_text()

    plain = _images(dist, tty=False)
    assert "\x1b" not in plain and "\r" not in plain
    assert f"==> {image}: docker buildx build (linux/amd64)\n" in plain
    assert f"==> {image}: docker buildx build (linux/amd64) done in" in plain and BUILDKIT not in plain
    assert _images(dist, "--plain", tty=True).count("\x1b[2K") == 0  # --plain on a terminal too

    verbose = _images(dist, "-v", tty=False)
    assert BUILDKIT in verbose and "+ docker buildx build" in verbose
