"""Integration fixtures: the real engine, brought up once per test session."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from toolkit import engine, settings
from toolkit.engine import credentials
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_copy(tmp_path):
    """A copy of the project: its matrix, the files rendered from it, and what the matrix names."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("matrix.toml", "container", ".github", "docs", "examples", "patches"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, root / name)
    return root


@pytest.fixture
def wheels_only():
    """The repo's matrix text as a wheels-only project's: no framework axis or image tables, CUDA 13.0."""

    def convert(python: str) -> str:
        text = (REPO / "matrix.toml").read_text()
        body = text[:text.index("[axes]")] + text[text.index("[cuda."):text.index("# --- image variants")]
        return body + text[text.index("[package.saxpy]"):] + (
            f'\n[axes]\narch = ["x86_64", "aarch64"]\npython = [{python}]\ncuda = ["13.0"]\n')

    return convert


@pytest.fixture(scope="session")
def repo_matrix():
    return load_matrix(REPO / "matrix.toml")


@pytest.fixture(scope="session")
def engine_up(repo_matrix):
    """`toolkit engine up` for the CUDA 13.0 part of the repo's matrix (idempotent)."""
    state = settings.state_dir()
    statuses = engine.up(repo_matrix, make_plan(repo_matrix, Selection(cuda=("13.0",))), state)
    down = [s.name for s in statuses if not s.up]
    assert not down, f"engine components down: {down}"
    return state


@pytest.fixture(scope="session")
def registry_cred(engine_up):
    return credentials.load(engine_up, "registry")


@pytest.fixture(scope="session")
def index_cred(engine_up):
    return credentials.load(engine_up, "index")


@pytest.fixture(scope="session")
def built_wheels(engine_up, repo_matrix, tmp_path_factory):
    """`toolkit wheels` for the demo on CUDA 13.0, both arches (x86_64 native, aarch64 cross: the matrix's auto)."""
    from toolkit import wheels

    dist = tmp_path_factory.mktemp("dist")
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",)))
    records = wheels.build(repo_matrix, plan, REPO, dist)
    return dist, {r["id"]: r for r in records}


@pytest.fixture(scope="session")
def built_images(built_wheels, repo_matrix):
    """`toolkit images --framework none --push` for CUDA 13.0 on both platforms."""
    from toolkit import images

    dist, _ = built_wheels
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",)))
    records = images.build(repo_matrix, plan, REPO, dist, push=True)
    return dist, {r["id"]: r for r in records}


@contextlib.contextmanager
def _no_aarch64_emulation():
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    entry.write_text("0")
    try:
        yield
    finally:
        entry.write_text("1")


@pytest.fixture
def aarch64_emulation_off():
    """A context manager that switches the kernel's qemu-aarch64 handler off: no aarch64 program can run on
    this host meanwhile (a cross build that still succeeds emulated nothing)."""
    return _no_aarch64_emulation
