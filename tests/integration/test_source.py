"""The source a build records (provenance): the checked-out commit and whether tracked files changed, from a
real git repository."""

from __future__ import annotations

import subprocess

from toolkit import provenance


def test_the_source_is_the_checked_out_commit_and_whether_tracked_files_changed(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    assert provenance.source(tmp_path) == {"commit": "", "dirty": True}  # not a repository
    git("init", "-q")
    (tmp_path / "matrix.toml").write_text("a\n")
    git("add", "matrix.toml")
    assert provenance.source(tmp_path) == {"commit": "", "dirty": True}  # no commit yet
    git("commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    (tmp_path / "untracked.txt").write_text("not part of the source\n")
    assert provenance.source(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "matrix.toml").write_text("b\n")
    assert provenance.source(tmp_path) == {"commit": head, "dirty": True}
