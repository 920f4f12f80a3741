"""Every error the toolkit raises, each class with its own exit code.

Only ``toolkit.cli`` turns these into exit codes; stages raise and never exit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ToolkitError(Exception):
    """Base class: a failure the user can act on, with a readable message."""

    exit_code = 1


class ProblemsError(ToolkitError):
    """Holds one message per problem so that a user fixes them all in one pass."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(ProblemsError):
    """Bad input: a matrix file, a CLI filter or an environment variable."""

    exit_code = 2


class CommandError(ToolkitError):
    """An external tool was missing or exited non-zero."""

    exit_code = 3


class EngineError(ToolkitError):
    """A component of the local build engine could not be brought up or reached."""

    exit_code = 4


class BuildError(ToolkitError):
    """A wheel or image build, or its audit, failed."""

    exit_code = 5


class SmokeError(ToolkitError):
    """An artifact failed its smoke test."""

    exit_code = 6


class PublishError(ProblemsError):
    """A publish gate failed or a target refused an upload; nothing more is sent."""

    exit_code = 7


class DriftError(ConfigError):
    """A committed generated file differs from what the matrix and templates render."""

    exit_code = 8


class BusyError(ToolkitError):
    """Another run holds the release directory or the engine: two at once would corrupt them."""

    exit_code = 9


class RehearsalError(ToolkitError):
    """A job of the rehearsed workflow failed, as it would have failed on GitHub."""

    exit_code = 10


def suggest(value: str, allowed: Iterable[str]) -> str:
    """Return ' (did you mean "x"?)' for a close match among ``allowed``, else ''."""
    match = difflib.get_close_matches(value, list(allowed), n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""


def allowed_list(allowed: Iterable[str]) -> str:
    """Format allowed values for a message: 'a, b, c'."""
    return ", ".join(sorted(allowed, key=str))
