"""Unit tests are pure: anything that tries to start a process fails loudly."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture(autouse=True)
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"unit test tried to start a process: {args[:1]}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
